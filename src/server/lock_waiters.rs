//! Clients of this node blocked in `LOCK ... WAIT`, by resource and owner. The queue itself
//! is replicated state; this registry only knows which local connection to answer when
//! apply reports a grant or a timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::state::{Event, LockEvent};

/// How a queued lock request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOutcome {
    Granted(u64),
    TimedOut,
}

type Waiting = Vec<(u64, oneshot::Sender<LockOutcome>)>;

#[derive(Default)]
pub struct LockWaiters {
    next_id: AtomicU64,
    waiting: Mutex<HashMap<(Bytes, Bytes), Waiting>>,
}

impl LockWaiters {
    /// Registers interest before the request is proposed, so an outcome applied before
    /// the proposal's own reply comes back is not missed.
    pub fn register(
        &self,
        resource: &Bytes,
        owner: &Bytes,
    ) -> (u64, oneshot::Receiver<LockOutcome>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .expect("waiters lock")
            .entry((resource.clone(), owner.clone()))
            .or_default()
            .push((id, tx));
        (id, rx)
    }

    /// Withdraws a registration whose request was answered at once (or was dropped).
    pub fn unregister(&self, resource: &Bytes, owner: &Bytes, id: u64) {
        let mut waiting = self.waiting.lock().expect("waiters lock");
        let key = (resource.clone(), owner.clone());
        if let Some(list) = waiting.get_mut(&key) {
            list.retain(|(waiter, _)| *waiter != id);
            if list.is_empty() {
                waiting.remove(&key);
            }
        }
    }

    /// Hands apply's events to the clients waiting for them.
    pub fn deliver(&self, events: Vec<Event>) {
        let mut waiting = self.waiting.lock().expect("waiters lock");
        if waiting.is_empty() {
            return;
        }
        for event in events {
            let (resource, owner, outcome) = match event {
                Event::Lock(LockEvent::Granted {
                    resource,
                    owner,
                    token,
                }) => (resource, owner, LockOutcome::Granted(token)),
                Event::Lock(LockEvent::WaitTimedOut { resource, owner }) => {
                    (resource, owner, LockOutcome::TimedOut)
                }
                Event::Lock(LockEvent::Released { .. })
                | Event::Filled(_)
                | Event::Published { .. }
                | Event::Keyspace { .. } => continue,
            };
            if let Some(list) = waiting.remove(&(resource, owner)) {
                for (_, tx) in list {
                    let _ = tx.send(outcome);
                }
            }
        }
    }

    /// How many registrations are open (INFO `blocked_clients`).
    pub fn count(&self) -> usize {
        self.waiting
            .lock()
            .expect("waiters lock")
            .values()
            .map(Vec::len)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(resource: &str, owner: &str, token: u64) -> Event {
        Event::Lock(LockEvent::Granted {
            resource: Bytes::copy_from_slice(resource.as_bytes()),
            owner: Bytes::copy_from_slice(owner.as_bytes()),
            token,
        })
    }

    #[test]
    fn outcome_reaches_the_registered_waiter_only() {
        let w = LockWaiters::default();
        let (_, mut a) = w.register(&Bytes::from("r"), &Bytes::from("a"));
        let (_, mut b) = w.register(&Bytes::from("r"), &Bytes::from("b"));
        w.deliver(vec![granted("r", "a", 7)]);
        assert_eq!(a.try_recv().unwrap(), LockOutcome::Granted(7));
        assert!(b.try_recv().is_err());
        assert_eq!(w.count(), 1);
    }

    #[test]
    fn outcome_delivered_before_the_reply_is_kept() {
        let w = LockWaiters::default();
        let (_, mut rx) = w.register(&Bytes::from("r"), &Bytes::from("a"));
        w.deliver(vec![Event::Lock(LockEvent::WaitTimedOut {
            resource: Bytes::from("r"),
            owner: Bytes::from("a"),
        })]);
        assert_eq!(rx.try_recv().unwrap(), LockOutcome::TimedOut);
    }

    #[test]
    fn unregister_forgets_the_waiter() {
        let w = LockWaiters::default();
        let (id, _rx) = w.register(&Bytes::from("r"), &Bytes::from("a"));
        w.unregister(&Bytes::from("r"), &Bytes::from("a"), id);
        assert_eq!(w.count(), 0);
    }
}
