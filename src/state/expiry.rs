//! Time ending things: keys whose deadline passed, lock leases and waits whose time came,
//! and the next deadline the leader must carry an entry past.

use std::num::NonZeroU64;

use super::{Key, Keyspace};

impl Keyspace {
    /// Keys that exist at `now_ms` (DBSIZE, INFO keyspace); like `query`, never at a time
    /// before the last entry's.
    pub(crate) fn key_count(&self, now_ms: u64) -> usize {
        let now_ms = now_ms.max(self.replicated.last_now_ms);
        let expired = self
            .replicated
            .expiry
            .iter()
            .take_while(|(deadline, _)| self.replicated.hold.passed(*deadline, now_ms))
            .count();
        self.replicated.entries.len().saturating_sub(expired)
    }

    /// Keys with a deadline (INFO keyspace `expires=`).
    pub(crate) fn expires_count(&self) -> usize {
        self.replicated.expiry.len()
    }

    /// The earliest time at which a key, a lease or a wait can end, so the leader knows
    /// when to propose an entry that carries time past it. Nothing ends inside a hold.
    pub(crate) fn next_deadline_ms(&self) -> Option<u64> {
        let key = self
            .replicated
            .expiry
            .first()
            .map(|(deadline, _)| *deadline);
        let lock = self
            .replicated
            .lock_timers
            .first()
            .map(|(deadline, _)| deadline);
        let due = key.into_iter().chain(lock).min()?;
        Some(due.max(self.replicated.hold.until_ms))
    }

    /// Sets or clears the deadline of an existing key without touching its value or token;
    /// a deadline at or before `now_ms` removes the key. Returns false if there is no key.
    pub(crate) fn set_deadline(
        &mut self,
        key: &[u8],
        deadline_ms: Option<i64>,
        now_ms: u64,
    ) -> bool {
        let deadline_ms = match deadline_ms {
            Some(at) if at <= 0 || at as u64 <= now_ms => return self.remove(key).is_some(),
            Some(at) => Some(at as u64),
            None => None,
        };
        let Some(entry) = self.replicated.entries.get(key) else {
            return false;
        };
        let old_deadline = entry.deadline_ms();
        if old_deadline != deadline_ms {
            self.note_change(key);
            self.reindex(key, old_deadline, deadline_ms);
            if let Some(entry) = self.replicated.entries.get_mut(key) {
                entry.deadline = deadline_ms.and_then(NonZeroU64::new);
            }
            self.modified(key);
        }
        true
    }

    pub(super) fn reindex(&mut self, key: &[u8], old: Option<u64>, new: Option<u64>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.replicated.expiry.remove(&(old, Key::from(key)));
        }
        if let Some(new) = new {
            self.replicated.expiry.insert((new, Key::from(key)));
        }
    }

    /// Removes every key whose deadline is at or before `now_ms`.
    pub(super) fn purge_expired(&mut self, now_ms: u64) {
        while let Some((deadline, _)) = self.replicated.expiry.first() {
            if self.replicated.hold.live(*deadline, now_ms) {
                break;
            }
            if let Some((_, key)) = self.replicated.expiry.pop_first() {
                self.take_entry(&key);
                self.removed(&key);
                self.notice_expired(&key);
            }
        }
    }

    /// Ends the leases and waits whose time has come, granting the next waiters.
    pub(super) fn advance_locks(&mut self, now_ms: u64) {
        while let Some((deadline, slot)) = self.replicated.lock_timers.first() {
            if self.replicated.hold.live(deadline, now_ms) {
                break;
            }
            let (key, _) = self
                .replicated
                .entries
                .get_index(slot)
                .expect("a timer's entry");
            let key = key.clone();
            // `with_lock` moves the lock's timer to its next deadline, which is later, or
            // removes it.
            let _ = self.with_lock(&key, now_ms, false, |lock, fx| lock.advance(now_ms, fx));
        }
    }
}
