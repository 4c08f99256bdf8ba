//! The lock timers: when each lock's next lease ends or wait times out, so apply finds the
//! locks whose time has come without a walk of the keyspace.

use std::collections::hash_map::RandomState;

use indexmap::IndexMap;

use crate::state::{Entry, Key};

type Entries = IndexMap<Key, Entry, RandomState>;

/// A binary min-heap of `(deadline_ms, key)`, one element for every lock with a next
/// deadline. An element names its lock by the entry's index in the keyspace's map (its
/// slot) and the entry knows the element's position (`HeapPos`), so a lock's timer is
/// moved or removed in place, O(log n), and the heap holds nothing else: 16 bytes a timer,
/// where a `BTreeSet` of `(u64, Bytes)` cost about 80 in half-filled nodes (deadlines
/// arrive mostly in increasing order).
///
/// Elements are ordered by deadline, then by key, so replicas whose maps differ in layout
/// (one restored from a snapshot) still take due timers in one order.
///
/// Whoever moves an entry within the map (`IndexMap::swap_remove` moves the last one into
/// the hole) tells the heap (`moved`); the keyspace does all removals in one place.
#[derive(Debug, Default)]
pub(crate) struct LockTimers {
    heap: Vec<Timer>,
}

#[derive(Clone, Copy, Debug)]
struct Timer {
    deadline_ms: u64,
    /// The entry's index in the map. A map of more than 4 billion keys is out of reach of
    /// memory long before.
    slot: u32,
}

/// Where an entry's lock timer sits in the heap, if it has one. Not state: not persisted,
/// equal to any other, and not cloned (a copy of an entry is in no heap).
#[derive(Default)]
pub(crate) struct HeapPos(Option<u32>);

impl Clone for HeapPos {
    fn clone(&self) -> HeapPos {
        HeapPos(None)
    }
}

impl PartialEq for HeapPos {
    fn eq(&self, _: &HeapPos) -> bool {
        true
    }
}

impl Eq for HeapPos {}

impl std::fmt::Debug for HeapPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

fn slot_u32(slot: usize) -> u32 {
    u32::try_from(slot).expect("fewer than 2^32 keys")
}

impl LockTimers {
    /// The earliest timer: its deadline and its entry's slot.
    pub fn first(&self) -> Option<(u64, usize)> {
        self.heap
            .first()
            .map(|timer| (timer.deadline_ms, timer.slot as usize))
    }

    /// Locks with a timer.
    #[cfg(any(test, fuzzing))]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Sets the timer of the entry in `slot` to `deadline_ms`, or removes it (`None`).
    pub fn set(&mut self, entries: &mut Entries, slot: usize, deadline_ms: Option<u64>) {
        match (entries[slot].timer.0, deadline_ms) {
            (None, None) => {}
            (None, Some(deadline_ms)) => {
                self.heap.push(Timer {
                    deadline_ms,
                    slot: slot_u32(slot),
                });
                self.sift_up(entries, self.heap.len() - 1);
            }
            (Some(pos), Some(deadline_ms)) => {
                let pos = pos as usize;
                if self.heap[pos].deadline_ms != deadline_ms {
                    self.heap[pos].deadline_ms = deadline_ms;
                    self.resift(entries, pos);
                }
            }
            (Some(pos), None) => {
                entries[slot].timer = HeapPos(None);
                let last = self.heap.pop().expect("a timer is in the heap");
                let pos = pos as usize;
                if pos < self.heap.len() {
                    self.heap[pos] = last;
                    self.resift(entries, pos);
                }
            }
        }
    }

    /// The entry that was in slot `from` is now in slot `to` (the map's swap_remove).
    pub fn moved(&mut self, entries: &Entries, from: usize, to: usize) {
        if let Some(pos) = entries[to].timer.0 {
            debug_assert_eq!(self.heap[pos as usize].slot as usize, from);
            self.heap[pos as usize].slot = slot_u32(to);
        }
    }

    #[cfg(test)]
    pub fn heap_capacity(&self) -> usize {
        self.heap.capacity()
    }

    /// The slots of the entries with a timer, in heap order (the earliest first, the rest
    /// in no particular order).
    pub fn slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.heap.iter().map(|timer| timer.slot as usize)
    }

    /// Drops every timer and the heap's memory with them.
    pub fn clear(&mut self) {
        self.heap = Vec::new();
    }

    /// Whether `a` comes before `b`: the earlier deadline, then the smaller key.
    fn before(entries: &Entries, a: Timer, b: Timer) -> bool {
        let key = |timer: Timer| -> &[u8] {
            entries
                .get_index(timer.slot as usize)
                .expect("a timer's entry")
                .0
        };
        match a.deadline_ms.cmp(&b.deadline_ms) {
            std::cmp::Ordering::Equal => key(a) < key(b),
            order => order.is_lt(),
        }
    }

    /// Puts the element at `pos` where it belongs after its deadline changed.
    fn resift(&mut self, entries: &mut Entries, pos: usize) {
        let pos = self.sift_up(entries, pos);
        self.sift_down(entries, pos);
    }

    /// Moves the element at `pos` up past every later parent; records every position it
    /// changes. Returns where it ends.
    fn sift_up(&mut self, entries: &mut Entries, mut pos: usize) -> usize {
        let timer = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if !Self::before(entries, timer, self.heap[parent]) {
                break;
            }
            self.put(entries, pos, self.heap[parent]);
            pos = parent;
        }
        self.put(entries, pos, timer);
        pos
    }

    /// Moves the element at `pos` down past every earlier child; records every position it
    /// changes.
    fn sift_down(&mut self, entries: &mut Entries, mut pos: usize) {
        let timer = self.heap[pos];
        loop {
            let left = 2 * pos + 1;
            if left >= self.heap.len() {
                break;
            }
            let right = left + 1;
            let child = if right < self.heap.len()
                && Self::before(entries, self.heap[right], self.heap[left])
            {
                right
            } else {
                left
            };
            if !Self::before(entries, self.heap[child], timer) {
                break;
            }
            self.put(entries, pos, self.heap[child]);
            pos = child;
        }
        self.put(entries, pos, timer);
    }

    fn put(&mut self, entries: &mut Entries, pos: usize, timer: Timer) {
        self.heap[pos] = timer;
        entries[timer.slot as usize].timer = HeapPos(Some(slot_u32(pos)));
    }

    /// Every element is where its entry says, with the entry's lock deadline, and no
    /// element comes before its parent.
    #[cfg(any(test, fuzzing))]
    pub fn assert_consistent(&self, entries: &Entries) {
        for (pos, timer) in self.heap.iter().enumerate() {
            let entry = &entries[timer.slot as usize];
            assert_eq!(entry.timer.0, Some(pos as u32), "the entry knows its timer");
            assert_eq!(
                entry
                    .as_lock()
                    .and_then(super::lock::Lock::next_deadline_ms),
                Some(timer.deadline_ms),
                "a timer holds its lock's next deadline"
            );
            if pos > 0 {
                let parent = self.heap[(pos - 1) / 2];
                assert!(!Self::before(entries, *timer, parent), "heap order");
            }
        }
        let with_timer = entries.values().filter(|e| e.timer.0.is_some()).count();
        assert_eq!(
            with_timer,
            self.heap.len(),
            "no entry points at a missing timer"
        );
    }
}
