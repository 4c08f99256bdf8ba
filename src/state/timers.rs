//! The lock timers: when each lock's next lease ends or wait times out, so apply finds the
//! locks whose time has come without a walk of the keyspace.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::Key;
use crate::config::state_memory::LOCK_TIMER_STALE_SLACK;

/// A min-heap of `(deadline_ms, key)` with lazy deletion: one element for every lock with
/// a next deadline, plus stale ones. A lock whose next deadline changes gets a new element
/// and its old one stays behind until it reaches the top (`settle` drops it there) or the
/// stale ones outnumber the live ones by `LOCK_TIMER_STALE_SLACK` (`settle` compacts).
///
/// A heap is a flat vector, 32 bytes a timer (a short key inline), where a `BTreeSet` of
/// the same pairs costs about twice that in half-filled nodes (deadlines arrive mostly in
/// increasing order).
///
/// Which stale elements a heap holds can differ between replicas (one restored from a
/// snapshot has none), but never what apply does: an element counts only while it names
/// the lock's current deadline, and the live ones come out in `(deadline_ms, key)` order.
#[derive(Debug, Default)]
pub(crate) struct LockTimers {
    heap: BinaryHeap<Reverse<(u64, Key)>>,
    /// Locks with a next deadline: the live elements. The rest are stale.
    live: usize,
}

impl LockTimers {
    /// Records that the lock at `key` went from next deadline `before` to `after` (`None`:
    /// no deadline, or no lock). Call `settle` once the change is in the keyspace.
    pub fn retime(&mut self, key: &[u8], before: Option<u64>, after: Option<u64>) {
        self.live = self.live + usize::from(after.is_some()) - usize::from(before.is_some());
        if let Some(after) = after.filter(|&after| Some(after) != before) {
            self.heap.push(Reverse((after, Key::from(key))));
        }
    }

    /// The earliest live timer, once `settle` has run since the last change.
    pub fn first(&self) -> Option<(u64, &Key)> {
        self.heap
            .peek()
            .map(|Reverse((deadline, key))| (*deadline, key))
    }

    /// Drops the stale elements on top, so `first` is live; compacts the heap when the
    /// stale ones are too many. `current` answers the next deadline of the lock at a key.
    pub fn settle(&mut self, current: impl Fn(&[u8]) -> Option<u64>) {
        while let Some(Reverse((deadline, key))) = self.heap.peek() {
            if current(key) == Some(*deadline) {
                break;
            }
            self.heap.pop();
        }
        let stale = self.heap.len() - self.live;
        if stale > self.live + LOCK_TIMER_STALE_SLACK {
            let mut elements = std::mem::take(&mut self.heap).into_vec();
            // A lock whose deadline went back to an earlier value has it twice.
            elements.sort_unstable();
            elements.dedup();
            elements.retain(|Reverse((deadline, key))| current(key) == Some(*deadline));
            if elements.capacity() > 2 * elements.len() + LOCK_TIMER_STALE_SLACK {
                elements.shrink_to_fit();
            }
            self.heap = BinaryHeap::from(elements);
        }
    }

    pub fn clear(&mut self) {
        *self = LockTimers::default();
    }

    /// Locks with a next deadline.
    #[cfg(test)]
    pub fn live(&self) -> usize {
        self.live
    }

    /// Every element, stale ones included, in no particular order.
    #[cfg(test)]
    pub fn elements(&self) -> impl Iterator<Item = (u64, &Key)> {
        self.heap
            .iter()
            .map(|Reverse((deadline, key))| (*deadline, key))
    }
}
