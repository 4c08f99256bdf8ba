//! Changing a stored value where it lies (a lock, a list, a hash, a set, a sorted set):
//! the type check, the undo record, the new token and revision, the lock timers and
//! events, and the removal of a value left empty, in one place for every command.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{locks, Entry, Event, Key, Keyspace, Value};
use crate::reply::Reply;

impl Keyspace {
    /// Runs `f` on the lock stored at `key`, creating an empty one when `create` is set and
    /// the key is missing. Keeps the lock timers, the changed-key record and the events
    /// right, and removes the key once nobody holds or waits for the lock. `Ok(None)`: no
    /// lock there and none created; `Err`: the key holds another type.
    pub(crate) fn with_lock<R>(
        &mut self,
        key: &[u8],
        now_ms: u64,
        create: bool,
        f: impl FnOnce(&mut locks::Lock, &mut locks::Effects) -> R,
    ) -> Result<Option<R>, Reply> {
        let is_lock = |entry: &Entry| match entry.as_lock() {
            Some(_) => Ok(()),
            None => Err(Reply::wrong_type()),
        };
        let empty = create.then(|| Value::Lock(locks::Lock::default()));
        if self
            .prepare_in_place(key, now_ms, is_lock, empty)?
            .is_none()
        {
            return Ok(None);
        }
        let entry = self
            .replicated
            .entries
            .get_mut(key)
            .expect("the lock entry exists");
        let Value::Lock(lock) = &mut entry.value else {
            unreachable!("checked to be a lock above");
        };
        let before = lock.next_deadline_ms();
        // Only a real change is a new revision: a refused UNLOCK or a busy try-lock must
        // not fail a WATCH. The lock operations report it; debug builds check them against
        // a copy of the lock.
        #[cfg(debug_assertions)]
        let unchanged = lock.clone();
        let mut fx = locks::Effects {
            resource: key,
            hold: self.replicated.hold,
            fence_counter: &mut self.replicated.fence_counter,
            events: &mut Vec::new(),
            changed: false,
            now_ms,
            tally: &mut self.runtime.lock_tally,
        };
        let result = f(lock, &mut fx);
        let changed = fx.changed;
        #[cfg(debug_assertions)]
        debug_assert_eq!(changed, *lock != unchanged, "a lock change was misreported");
        let lock_events = std::mem::take(fx.events);
        let after = lock.next_deadline_ms();
        let idle = lock.is_idle();
        let queued = lock.queue.is_present();
        self.runtime
            .events
            .extend(lock_events.into_iter().map(Event::Lock));
        if after != before {
            let slot = self
                .replicated
                .entries
                .get_index_of(key)
                .expect("the lock entry exists");
            self.replicated
                .lock_timers
                .set(&mut self.replicated.entries, slot, after);
        }
        if queued != self.replicated.queued.contains(key) {
            if queued {
                self.replicated.queued.insert(Key::from(key));
            } else {
                self.replicated.queued.remove(key);
            }
        }
        if idle {
            self.take_entry(key);
            self.modified(key);
        } else if changed {
            self.modified(key);
        }
        Ok(Some(result))
    }

    /// Runs `f` on the list stored at `key`, creating an empty one first when `create` is
    /// set and the key is missing. `f` answers whether it changed the list: a changed list
    /// gets a new fencing token and is recorded, and one left empty is removed (Redis keeps
    /// no empty lists). A list that grew reports `Event::Filled`. The key's deadline
    /// stays. `Ok(None)`: no list there and none created; `Err`: the key holds another type.
    pub(crate) fn with_list<R>(
        &mut self,
        key: &[u8],
        now_ms: u64,
        create: bool,
        f: impl FnOnce(&mut VecDeque<Bytes>) -> (R, bool),
    ) -> Result<Option<R>, Reply> {
        let is_list = |entry: &Entry| entry.as_list().map(|_| ());
        let empty = create.then(|| Value::List(Box::default()));
        if self
            .prepare_in_place(key, now_ms, is_list, empty)?
            .is_none()
        {
            return Ok(None);
        }
        let entry = self
            .replicated
            .entries
            .get_mut(key)
            .expect("the list entry exists");
        let Value::List(list) = &mut entry.value else {
            unreachable!("checked to be a list above");
        };
        let len_before = list.len();
        let (result, changed) = f(list);
        let grew = list.len() > len_before;
        let empty = list.is_empty();
        if changed {
            self.replicated.fence_counter += 1;
            entry.token = self.replicated.fence_counter;
        }
        if empty {
            self.remove(key);
        } else if changed {
            self.modified(key);
        }
        if grew {
            self.runtime
                .events
                .push(Event::Filled(Bytes::copy_from_slice(key)));
        }
        Ok(Some(result))
    }

    /// Changes the value at `key` in place (a hash, a set, a sorted set), creating `empty`
    /// first when the key is missing and `empty` is given. `f` answers its result and
    /// whether it changed the value. A change keeps the deadline and takes a new fencing
    /// token (a sorted set that grew also reports `Event::Filled`); a collection left empty is removed, as Redis removes empty hashes, sets and
    /// sorted sets. `None`: no key there and none created.
    pub(crate) fn update<R>(
        &mut self,
        key: &[u8],
        now_ms: u64,
        empty: Option<Value>,
        f: impl FnOnce(&mut Value) -> (R, bool),
    ) -> Option<R> {
        // The handlers check the type themselves (their error depends on the command).
        let existed = self
            .prepare_in_place(key, now_ms, |_| Ok(()), empty)
            .ok()??;
        let entry = self
            .replicated
            .entries
            .get_mut(key)
            .expect("the entry exists");
        let zset_len = |value: &Value| match value {
            Value::Zset(zset) => zset.len(),
            _ => 0,
        };
        let len_before = zset_len(&entry.value);
        let (result, changed) = f(&mut entry.value);
        if entry.value.is_empty_collection() {
            if existed {
                self.remove(key);
            } else {
                // Created and left empty: it never existed for anyone.
                self.take_entry(key);
            }
        } else if changed {
            self.replicated.fence_counter += 1;
            entry.token = self.replicated.fence_counter;
            // A sorted set that grew may serve a client blocked in BZPOPMIN and the like.
            let filled = zset_len(&entry.value) > len_before;
            self.modified(key);
            if filled {
                self.runtime
                    .events
                    .push(Event::Filled(Bytes::copy_from_slice(key)));
            }
        }
        Some(result)
    }

    /// Readies the entry at `key` for a change in place: a live entry must pass `check`
    /// (its error, typically WRONGTYPE, otherwise), and only then is the key recorded for
    /// a running script's undo; an entry whose deadline passed is removed, and a missing
    /// one is created from `empty` if given. Whether the entry existed; `Ok(None)`:
    /// missing, not made. A refusal records nothing: a script's DEL of a string tries the
    /// key as a lock first.
    pub(super) fn prepare_in_place(
        &mut self,
        key: &[u8],
        now_ms: u64,
        check: impl FnOnce(&Entry) -> Result<(), Reply>,
        empty: Option<Value>,
    ) -> Result<Option<bool>, Reply> {
        let expired = match self.replicated.entries.get(key) {
            Some(entry) if entry.is_live(now_ms, &self.replicated.hold) => {
                check(entry)?;
                self.note_change(key);
                return Ok(Some(true));
            }
            Some(_) => true,
            None => false,
        };
        if expired {
            // Recorded for undo by `remove`.
            self.remove(key);
        }
        let Some(value) = empty else {
            return Ok(None);
        };
        self.note_change(key);
        let entry = Entry {
            value,
            deadline: None,
            token: 0,
            revision: 0,
            timer: Default::default(),
        };
        self.replicated.entries.insert(Key::from(key), entry);
        Ok(Some(false))
    }
}
