//! The undo log that makes a script all-or-nothing: while a script runs, the first change
//! of each key records the entry it had, and a failed script puts every one back, with the
//! fence and revision counters, the recent removals and the events as they were. Nothing
//! of a failed script is applied, on any node (Redis keeps the writes made before a
//! runtime error; raftlock does not).

use std::collections::HashMap;

use super::{Entry, Key, Keyspace, Removals};

#[derive(Debug)]
pub(super) struct UndoLog {
    /// The entry each changed key had before the script's first change of it.
    before: HashMap<Key, Option<Entry>>,
    fence_counter: u64,
    revision_counter: u64,
    removals: Removals,
    events_len: usize,
}

impl Keyspace {
    /// Starts recording; every change until `commit_undo` or `rollback_undo` is undoable.
    pub(super) fn begin_undo(&mut self) {
        debug_assert!(self.runtime.undo.is_none(), "scripts do not nest");
        self.runtime.undo = Some(UndoLog {
            before: HashMap::new(),
            fence_counter: self.replicated.fence_counter,
            revision_counter: self.replicated.revision_counter,
            removals: self.replicated.removals.clone(),
            events_len: self.runtime.events.len(),
        });
    }

    /// Keeps the script's changes.
    pub(super) fn commit_undo(&mut self) {
        self.runtime.undo = None;
    }

    /// Puts back every key the script changed, the fence counter and the events.
    pub(super) fn rollback_undo(&mut self) {
        let Some(undo) = self.runtime.undo.take() else {
            return;
        };
        for (key, entry) in undo.before {
            self.replace_entry(key, entry);
        }
        self.replicated.fence_counter = undo.fence_counter;
        self.replicated.revision_counter = undo.revision_counter;
        self.replicated.removals = undo.removals;
        self.runtime.events.truncate(undo.events_len);
    }

    /// Records `key`'s entry before its first change in the running script.
    pub(super) fn note_change(&mut self, key: &[u8]) {
        if let Some(undo) = self.runtime.undo.as_mut() {
            if !undo.before.contains_key(key) {
                let entry = self.replicated.entries.get(key).cloned();
                undo.before.insert(Key::from(key), entry);
            }
        }
    }

    /// Records every key before FLUSHALL inside a script.
    pub(super) fn note_clear(&mut self) {
        if self.runtime.undo.is_none() {
            return;
        }
        let keys: Vec<Key> = self.replicated.entries.keys().cloned().collect();
        for key in keys {
            self.note_change(&key);
        }
    }

    /// Sets `key` to exactly `entry` (or nothing), keeping the expiry and lock indexes
    /// (timers, queued locks) right.
    fn replace_entry(&mut self, key: Key, entry: Option<Entry>) {
        if let Some((_, current)) = self.take_entry(&key) {
            if let Some(deadline) = current.deadline_ms() {
                self.replicated.expiry.remove(&(deadline, key.clone()));
            }
        }
        if let Some(entry) = entry {
            if let Some(deadline) = entry.deadline_ms() {
                self.replicated.expiry.insert((deadline, key.clone()));
            }
            let lock_deadline = entry.as_lock().and_then(|l| l.next_deadline_ms());
            if entry.as_lock().is_some_and(|l| l.queue.is_present()) {
                self.replicated.queued.insert(key.clone());
            }
            let (slot, _) = self.replicated.entries.insert_full(key, entry);
            self.replicated
                .lock_timers
                .set(&mut self.replicated.entries, slot, lock_deadline);
        }
    }
}
