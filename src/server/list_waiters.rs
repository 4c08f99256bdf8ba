//! Clients of this node blocked in BLPOP, BRPOP, BLMOVE or BRPOPLPUSH. The design makes
//! these waits node-local: nothing here is replicated. Each key has a FIFO of the clients
//! waiting on it; a push that apply reports wakes the first of them, which proposes its
//! pop again as an ordinary write. A client that finds nothing again keeps its place.
//!
//! No push may be lost between a client's pop and its parking: a waiter is registered
//! before its first pop is proposed, and a push reported while its pop is in flight makes
//! it pop again at once instead of parking. A client that leaves (served, timed out,
//! gone) hands any wake it may have absorbed to the next waiter: see `unregister`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::state::Event;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for a push; a wake goes to it.
    Parked,
    /// Its pop is in flight (or about to be proposed). `pushed`: a push to one of its keys
    /// was reported meanwhile, so finding nothing must not park it.
    Popping { pushed: bool },
}

struct Waiter {
    keys: Vec<Bytes>,
    state: State,
    wake: Arc<Notify>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// Waiter ids per key, in arrival order.
    queues: HashMap<Bytes, VecDeque<u64>>,
    waiters: HashMap<u64, Waiter>,
}

impl Inner {
    /// A push to `key`: wake its first waiter if it is parked, or tell it that a push
    /// came while its pop was in flight.
    fn signal(&mut self, key: &[u8]) {
        let Some(first) = self.queues.get(key).and_then(|queue| queue.front()) else {
            return;
        };
        let Some(waiter) = self.waiters.get_mut(first) else {
            return;
        };
        match waiter.state {
            State::Parked => {
                waiter.state = State::Popping { pushed: false };
                waiter.wake.notify_one();
            }
            State::Popping { .. } => waiter.state = State::Popping { pushed: true },
        }
    }
}

/// One registered blocking pop.
pub struct ListWait {
    pub id: u64,
    /// Notified when the waiter should propose its pop again.
    pub wake: Arc<Notify>,
}

#[derive(Default)]
pub struct ListWaiters {
    inner: Mutex<Inner>,
}

impl ListWaiters {
    /// Puts a blocking pop at the end of the line of each of its keys, before its first
    /// pop is proposed, so a push applied meanwhile is not missed. `ahead`: the keys on
    /// which someone was already waiting.
    pub fn register(&self, keys: &[Bytes]) -> (ListWait, Vec<Bytes>) {
        let mut inner = self.inner.lock().expect("list waiters lock");
        let id = inner.next_id;
        inner.next_id += 1;
        let mut ahead = Vec::new();
        for key in keys {
            let queue = inner.queues.entry(key.clone()).or_default();
            if !queue.is_empty() {
                ahead.push(key.clone());
            }
            queue.push_back(id);
        }
        let wake = Arc::new(Notify::new());
        inner.waiters.insert(
            id,
            Waiter {
                keys: keys.to_vec(),
                state: State::Popping { pushed: false },
                wake: wake.clone(),
            },
        );
        (ListWait { id, wake }, ahead)
    }

    /// The waiter's pop found nothing. `true`: it is parked, and waits for its wake;
    /// `false`: a push was reported while the pop was in flight, so it must pop again now.
    pub fn park(&self, id: u64) -> bool {
        let mut inner = self.inner.lock().expect("list waiters lock");
        let Some(waiter) = inner.waiters.get_mut(&id) else {
            return false;
        };
        match waiter.state {
            State::Popping { pushed: true } => {
                waiter.state = State::Popping { pushed: false };
                false
            }
            State::Popping { pushed: false } | State::Parked => {
                waiter.state = State::Parked;
                true
            }
        }
    }

    /// Wakes the first waiter of each key apply pushed to.
    pub fn deliver(&self, events: &[Event]) {
        let mut inner = self.inner.lock().expect("list waiters lock");
        if inner.waiters.is_empty() {
            return;
        }
        for event in events {
            if let Event::Filled(key) = event {
                inner.signal(key);
            }
        }
    }

    /// Takes the waiter out of every line and returns its keys. A wake it absorbed would
    /// be lost with it, so the caller must then `signal` each returned key that holds a
    /// list in the current state: a push applied before that check is seen by it, and
    /// one applied after reports its own event to the waiters that remain.
    pub fn unregister(&self, id: u64) -> Vec<Bytes> {
        let mut inner = self.inner.lock().expect("list waiters lock");
        let Some(waiter) = inner.waiters.remove(&id) else {
            return Vec::new();
        };
        for key in &waiter.keys {
            if let Some(queue) = inner.queues.get_mut(key) {
                queue.retain(|waiting| *waiting != id);
                if queue.is_empty() {
                    inner.queues.remove(key);
                }
            }
        }
        waiter.keys
    }

    /// As a push to `key` would.
    pub fn signal(&self, key: &[u8]) {
        self.inner.lock().expect("list waiters lock").signal(key);
    }

    /// How many blocking pops are registered (INFO `blocked_clients`).
    pub fn count(&self) -> usize {
        self.inner.lock().expect("list waiters lock").waiters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<Bytes> {
        names
            .iter()
            .map(|n| Bytes::copy_from_slice(n.as_bytes()))
            .collect()
    }

    fn pushed(key: &str) -> Vec<Event> {
        vec![Event::Filled(Bytes::copy_from_slice(key.as_bytes()))]
    }

    /// Whether the waiter has a wake waiting for it.
    fn woken(wait: &ListWait) -> bool {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("test runtime");
        runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::ZERO, wait.wake.notified())
                .await
                .is_ok()
        })
    }

    #[test]
    fn a_push_wakes_only_the_first_parked_waiter() {
        let w = ListWaiters::default();
        let (a, _) = w.register(&keys(&["k"]));
        let (b, _) = w.register(&keys(&["k"]));
        assert!(w.park(a.id));
        assert!(w.park(b.id));
        w.deliver(&pushed("k"));
        assert!(woken(&a));
        assert!(!woken(&b));
        w.deliver(&pushed("other"));
        assert!(!woken(&b));
    }

    #[test]
    fn a_woken_waiter_that_finds_nothing_stays_first() {
        let w = ListWaiters::default();
        let (a, _) = w.register(&keys(&["k"]));
        let (b, _) = w.register(&keys(&["k"]));
        assert!(w.park(a.id));
        assert!(w.park(b.id));
        w.deliver(&pushed("k"));
        assert!(woken(&a));
        // Someone else took the element: `a` parks again, still ahead of `b`.
        assert!(w.park(a.id));
        w.deliver(&pushed("k"));
        assert!(woken(&a));
        assert!(!woken(&b));
    }

    #[test]
    fn a_push_during_the_pop_makes_the_waiter_pop_again_instead_of_parking() {
        let w = ListWaiters::default();
        let (a, _) = w.register(&keys(&["k"]));
        w.deliver(&pushed("k"));
        assert!(
            !w.park(a.id),
            "pop again: the push may have come after the pop"
        );
        assert!(w.park(a.id));
    }

    #[test]
    fn a_waiter_waits_on_all_its_keys_at_once() {
        let w = ListWaiters::default();
        let (a, _) = w.register(&keys(&["x", "y"]));
        let (b, _) = w.register(&keys(&["y"]));
        assert!(w.park(a.id));
        assert!(w.park(b.id));
        w.deliver(&pushed("y"));
        assert!(woken(&a));
        // `a` is popping; a second push to y is remembered for it, not given to `b`.
        w.deliver(&pushed("y"));
        assert!(!woken(&b));
        // `a` is served and leaves: the caller passes the wake on for keys still holding
        // a list.
        assert_eq!(w.unregister(a.id), keys(&["x", "y"]));
        w.signal(b"y");
        assert!(woken(&b));
        assert_eq!(w.count(), 1);
    }

    #[test]
    fn unregister_forgets_the_waiter_everywhere() {
        let w = ListWaiters::default();
        let (a, _) = w.register(&keys(&["x", "y"]));
        assert_eq!(w.count(), 1);
        w.unregister(a.id);
        assert_eq!(w.count(), 0);
        assert!(w.inner.lock().unwrap().queues.is_empty());
        assert!(w.unregister(a.id).is_empty());
        assert!(!w.park(a.id));
    }

    #[test]
    fn registering_tells_on_which_keys_someone_waits_already() {
        let w = ListWaiters::default();
        let (_, ahead) = w.register(&keys(&["x"]));
        assert!(ahead.is_empty());
        let (_, ahead) = w.register(&keys(&["x", "y"]));
        assert_eq!(ahead, keys(&["x"]));
    }
}
