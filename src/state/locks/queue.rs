//! Who waits for a lock: its FIFO queue of waiters, and the grants from the queue that
//! their owners have not confirmed yet.

use std::collections::VecDeque;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::LockMode;
use crate::state::session::SessionRef;

/// A grant from the queue its owner has not confirmed yet: what the owner held before, so
/// that giving the grant back restores it exactly (an upgrade returns to shared, with its
/// token), and when it is given back by itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnconfirmedGrant {
    pub owner: Box<[u8]>,
    pub prior: Option<(LockMode, u64)>,
    /// Set while the owner's session is detached by a new term: unless the owner confirms
    /// the grant before then, it is given back at this time.
    pub reclaim_deadline_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiter {
    pub owner: Bytes,
    pub mode: LockMode,
    /// The lease the grant will carry.
    pub ttl_ms: u64,
    /// When the wait gives up; `None` waits without limit (`WAIT 0`).
    pub wait_deadline_ms: Option<u64>,
    /// The session of the client that asked (`None`: before sessions existed).
    pub session: Option<SessionRef>,
    /// Set while the session is detached by a new term: unless the owner asks again from
    /// a live connection before then, the waiter leaves the queue at this time.
    pub reclaim_deadline_ms: Option<u64>,
}

/// The FIFO queue of waiters, with the grants from it that their owners have not
/// confirmed yet: boxed, and absent while both are empty (as they almost always are), so
/// a lock spends 8 bytes on them rather than an empty `VecDeque`'s 32. Read it as the
/// waiters' `VecDeque`; change it through its methods, which keep "absent" and "empty"
/// one state. Persisted as the pair it reads as.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
// The box is the point: 8 bytes in every lock rather than an empty deque's 32.
#[allow(clippy::box_collection)]
pub struct Queue(pub(super) Option<Box<QueueBox>>);

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct QueueBox {
    pub(super) waiters: VecDeque<Waiter>,
    pub(super) grants: Vec<UnconfirmedGrant>,
}

static NO_WAITERS: VecDeque<Waiter> = VecDeque::new();

impl std::ops::Deref for Queue {
    type Target = VecDeque<Waiter>;

    fn deref(&self) -> &VecDeque<Waiter> {
        self.0.as_ref().map_or(&NO_WAITERS, |b| &b.waiters)
    }
}

impl Queue {
    pub(super) fn from_box(queue: QueueBox) -> Queue {
        let empty = queue.waiters.is_empty() && queue.grants.is_empty();
        Queue((!empty).then(|| Box::new(queue)))
    }

    /// Whether the box exists: there are waiters or unconfirmed grants.
    pub fn is_present(&self) -> bool {
        self.0.is_some()
    }

    /// The grants from the queue not confirmed yet.
    pub fn grants(&self) -> &[UnconfirmedGrant] {
        self.0.as_ref().map_or(&[], |b| &b.grants)
    }

    #[cfg(test)]
    pub(super) fn grant_of(&self, owner: &[u8]) -> Option<&UnconfirmedGrant> {
        self.grants().iter().find(|g| *g.owner == *owner)
    }

    /// Changes the box in place, then drops it if nothing is left.
    pub(super) fn update<R>(&mut self, f: impl FnOnce(&mut QueueBox) -> R) -> R {
        let queue = self.0.get_or_insert_with(Box::default);
        let result = f(queue);
        if queue.waiters.is_empty() && queue.grants.is_empty() {
            self.0 = None;
        }
        result
    }

    /// Changes the waiters in place.
    pub(super) fn update_waiters<R>(&mut self, f: impl FnOnce(&mut VecDeque<Waiter>) -> R) -> R {
        self.update(|queue| f(&mut queue.waiters))
    }

    pub fn push_back(&mut self, waiter: Waiter) {
        self.update_waiters(|waiters| waiters.push_back(waiter));
    }

    pub fn pop_front(&mut self) -> Option<Waiter> {
        self.0.as_ref()?;
        self.update_waiters(VecDeque::pop_front)
    }

    pub fn remove(&mut self, index: usize) -> Option<Waiter> {
        self.0.as_ref()?;
        self.update_waiters(|waiters| waiters.remove(index))
    }

    #[cfg(test)]
    pub fn extend(&mut self, more: impl IntoIterator<Item = Waiter>) {
        self.update_waiters(|waiters| waiters.extend(more));
    }

    /// The waiter of `owner`, to change in place.
    pub(super) fn find_mut(&mut self, owner: &[u8]) -> Option<&mut Waiter> {
        self.0
            .as_mut()?
            .waiters
            .iter_mut()
            .find(|w| w.owner == owner)
    }

    pub(super) fn push_grant(&mut self, grant: UnconfirmedGrant) {
        self.update(|queue| queue.grants.push(grant));
    }

    /// Takes the unconfirmed grant of `owner` out, if it has one.
    pub(super) fn take_grant(&mut self, owner: &[u8]) -> Option<UnconfirmedGrant> {
        self.0.as_ref()?;
        self.update(|queue| {
            let i = queue.grants.iter().position(|g| *g.owner == *owner)?;
            Some(queue.grants.remove(i))
        })
    }
}

impl Serialize for Queue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&**self, self.grants()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Queue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Queue, D::Error> {
        let (waiters, grants) = Deserialize::deserialize(deserializer)?;
        Ok(Queue::from_box(QueueBox { waiters, grants }))
    }
}
