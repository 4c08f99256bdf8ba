//! The keyspace's consistency check, for unit tests and the fuzz targets: every index
//! agrees with the entries it indexes.

use std::collections::BTreeSet;

use super::{locks, Entry, Key, Keyspace};

#[cfg(any(test, fuzzing))]
impl Keyspace {
    /// The expiry index holds exactly the deadlines of the entries, and no token is above
    /// the counter.
    pub(crate) fn assert_consistent(&self) {
        let from_entries: BTreeSet<(u64, Key)> = self
            .replicated
            .entries
            .iter()
            .filter_map(|(key, entry)| entry.deadline_ms().map(|d| (d, key.clone())))
            .collect();
        assert_eq!(from_entries, self.replicated.expiry);
        assert!(self
            .replicated
            .entries
            .values()
            .all(|e| e.token <= self.replicated.fence_counter));
        assert!(self
            .replicated
            .entries
            .values()
            .all(|e| e.revision > 0 && e.revision <= self.replicated.revision_counter));
        // Every lock with a next deadline has its timer, and only those.
        let locks_with_deadline = self
            .replicated
            .entries
            .values()
            .filter_map(|entry| entry.as_lock()?.next_deadline_ms())
            .count();
        assert_eq!(locks_with_deadline, self.replicated.lock_timers.len());
        self.replicated
            .lock_timers
            .assert_consistent(&self.replicated.entries);
        assert!(
            self.replicated
                .entries
                .values()
                .all(|e| !e.value.is_empty_collection()),
            "an empty list, hash, sorted set or set is removed"
        );
        let queued: BTreeSet<Key> = self
            .replicated
            .entries
            .iter()
            .filter(|(_, e)| e.as_lock().is_some_and(|l| l.queue.is_present()))
            .map(|(key, _)| key.clone())
            .collect();
        assert_eq!(
            queued, self.replicated.queued,
            "the queued locks are indexed"
        );
        for lock in self.replicated.entries.values().filter_map(Entry::as_lock) {
            lock.assert_consistent();
            assert!(!lock.is_idle(), "an idle lock is removed");
            assert!(lock
                .holders
                .iter()
                .all(|h| h.token <= self.replicated.fence_counter && h.count > 0));
            let exclusive = lock
                .holders
                .iter()
                .filter(|h| h.mode == locks::LockMode::Exclusive)
                .count();
            assert!(
                exclusive == 0 || lock.holders.len() == 1,
                "exclusive means alone"
            );
        }
    }
}
