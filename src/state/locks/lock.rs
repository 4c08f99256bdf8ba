//! One lock: its holders, their leases, and the FIFO queue of waiters. Pure: time comes in
//! as the entry's `now_ms`, tokens from the keyspace's fencing counter, and what happened
//! goes out as events the node turns into replies for blocked clients.
//!
//! Every holder and waiter records its session (`state::session`): the client connection
//! that took, renewed or asked for it. A waiter, or a grant from the queue that its owner
//! has not confirmed, whose session ended with an earlier term gets a reclaim deadline;
//! past it, it leaves as a LOCKCANCEL would make it leave.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::holders::{Holder, Holders, LockMode};
use super::queue::{UnconfirmedGrant, Waiter};
use super::{Queue, Tally};
use crate::state::session::{self, SessionId, SessionRef};

/// What happened to a lock that someone outside the state machine must hear about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockEvent {
    /// A queued request was granted (unless a new term had detached its session: see
    /// `Lock::grant_next_waiters`).
    Granted {
        resource: Bytes,
        owner: Bytes,
        token: u64,
    },
    /// A queued request left the queue ungranted: its WAIT timed out, or its session was
    /// detached past its reclaim deadline.
    WaitTimedOut { resource: Bytes, owner: Bytes },
    /// The last holder let go (UNLOCK, lease expiry or DEL).
    Released { resource: Bytes },
}

#[derive(Debug, PartialEq, Eq)]
pub enum Acquire {
    Granted {
        token: u64,
    },
    /// Joined (or stayed in) the queue; a `Granted` or `WaitTimedOut` event follows.
    Queued,
    /// A try-lock that could not be granted now.
    Busy,
    /// The queue is at its limit.
    QueueFull,
}

/// The owner named holds nothing here (UNLOCK and RENEW by a non-holder).
#[derive(Debug, PartialEq, Eq)]
pub struct NotOwner;

/// What a request asks for.
pub struct Request<'a> {
    pub owner: &'a Bytes,
    pub mode: LockMode,
    pub ttl_ms: u64,
    /// `None`: try-lock. `Some(None)`: wait forever. `Some(Some(t))`: wait until `t`.
    pub wait: Option<Option<u64>>,
    /// The client's session; `None` inside MULTI or a script (no client connection to
    /// attach to), which leaves the owner's hold and wait in the session they had.
    pub session: Option<&'a SessionRef>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub holders: Holders,
    pub queue: Queue,
}

/// Hands out fencing tokens and collects events while one lock operation runs.
pub struct Effects<'a> {
    pub resource: &'a [u8],
    /// Leases and waits end by their deadlines only outside a new leader's hold.
    pub hold: crate::state::ExpiryHold,
    pub fence_counter: &'a mut u64,
    pub events: &'a mut Vec<LockEvent>,
    /// Set by an operation that changed the lock (a hold, a lease, the queue), so the
    /// keyspace knows whether to record a new revision without comparing whole locks.
    pub changed: bool,
    /// The time of the operation, and the node's count of what it did (`tally`).
    pub now_ms: u64,
    pub tally: &'a mut Tally,
}

impl Effects<'_> {
    pub(super) fn changed(&mut self) {
        self.changed = true;
    }

    fn next_token(&mut self) -> u64 {
        *self.fence_counter += 1;
        *self.fence_counter
    }

    fn emit(&mut self, event: LockEvent) {
        self.events.push(event);
    }
}

impl Lock {
    /// Neither held nor waited for: the key can go.
    pub fn is_idle(&self) -> bool {
        self.holders.is_empty() && self.queue.is_empty()
    }

    /// The next time something happens by itself: a lease ends, a wait times out, or a
    /// detached waiter or unconfirmed grant is reclaimed.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let leases = self.holders.iter().map(|h| h.lease_deadline_ms);
        let waits = self
            .queue
            .iter()
            .flat_map(|w| [w.wait_deadline_ms, w.reclaim_deadline_ms])
            .flatten();
        let grants = self
            .queue
            .grants()
            .iter()
            .filter_map(|g| g.reclaim_deadline_ms);
        leases.chain(waits).chain(grants).min()
    }

    /// The mode the lock is held in, if held.
    #[cfg(test)]
    pub fn mode(&self) -> Option<LockMode> {
        if self.holders.iter().any(|h| h.mode == LockMode::Exclusive) {
            Some(LockMode::Exclusive)
        } else if self.holders.is_empty() {
            None
        } else {
            Some(LockMode::Shared)
        }
    }

    pub fn holder(&self, owner: &[u8]) -> Option<&Holder> {
        self.holders.iter().find(|h| *h.owner == *owner)
    }

    pub(super) fn holder_index(&self, owner: &[u8]) -> Option<usize> {
        self.holders.iter().position(|h| *h.owner == *owner)
    }

    /// The grant from the queue `owner` has not confirmed yet, if any.
    #[cfg(test)]
    pub fn unconfirmed_grant(&self, owner: &[u8]) -> Option<&UnconfirmedGrant> {
        self.queue.grant_of(owner)
    }

    /// Ends leases and waits whose time has come, gives back the unconfirmed grants of
    /// detached sessions whose reclaim deadline passed, then grants whoever is now at the
    /// head.
    pub fn advance(&mut self, now_ms: u64, fx: &mut Effects) {
        let holders_before = self.holders.len();
        let hold = fx.hold;
        let tally = &mut *fx.tally;
        self.holders.retain(|h| {
            let live = hold.live(h.lease_deadline_ms, now_ms);
            if !live {
                tally.expired(h.token, now_ms);
            }
            live
        });
        if self.holders.len() != holders_before {
            fx.changed();
            self.drop_orphan_grants();
            if self.holders.is_empty() {
                fx.emit(LockEvent::Released {
                    resource: Bytes::copy_from_slice(fx.resource),
                });
            }
        }
        if !self.queue.is_present() {
            return;
        }
        let passed = |deadline: Option<u64>| deadline.is_some_and(|t| hold.passed(t, now_ms));
        self.queue.update_waiters(|waiters| {
            waiters.retain(|waiter| {
                let leaves = passed(waiter.wait_deadline_ms) || passed(waiter.reclaim_deadline_ms);
                if leaves {
                    fx.changed();
                    fx.tally.wait_timeouts += 1;
                    fx.emit(LockEvent::WaitTimedOut {
                        resource: Bytes::copy_from_slice(fx.resource),
                        owner: waiter.owner.clone(),
                    });
                }
                !leaves
            })
        });
        let reclaimed: Vec<Box<[u8]>> = self
            .queue
            .grants()
            .iter()
            .filter(|g| passed(g.reclaim_deadline_ms))
            .map(|g| g.owner.clone())
            .collect();
        for owner in reclaimed {
            self.give_back(&owner, fx);
        }
        self.grant_next_waiters(now_ms, fx);
    }

    /// The records of unconfirmed grants whose holder is gone (its lease ran out, DEL).
    fn drop_orphan_grants(&mut self) {
        if self.queue.grants().is_empty() {
            return;
        }
        let holders = &self.holders;
        self.queue.update(|queue| {
            queue
                .grants
                .retain(|g| holders.iter().any(|h| h.owner == g.owner))
        });
    }

    /// Whether `owner` could hold `mode` next to the other holders.
    fn compatible(&self, owner: &[u8], mode: LockMode) -> bool {
        self.holders
            .iter()
            .filter(|h| *h.owner != *owner)
            .all(|h| mode == LockMode::Shared && h.mode == LockMode::Shared)
    }

    /// Grants the head of the queue, and the waiters after it while they are compatible:
    /// shared waiters at the head go in together; an exclusive waiter that cannot go stops
    /// everyone behind it, so writers do not starve.
    fn grant_next_waiters(&mut self, now_ms: u64, fx: &mut Effects) {
        while let Some(head) = self.queue.front() {
            if !self.compatible(&head.owner, head.mode) {
                break;
            }
            let waiter = self.queue.pop_front().expect("head exists");
            fx.changed();
            let prior = self.holder(&waiter.owner).map(|h| (h.mode, h.token));
            let token = self.grant(
                &waiter.owner,
                waiter.mode,
                waiter.ttl_ms,
                waiter.session.as_ref(),
                now_ms,
                fx,
            );
            if let Some(i) = self.holder_index(&waiter.owner) {
                // A queued owner confirmed any earlier grant when it asked: one record.
                debug_assert!(!self.holders[i].unconfirmed);
                self.holders[i].unconfirmed = true;
                self.queue.push_grant(UnconfirmedGrant {
                    owner: Box::from(&waiter.owner[..]),
                    prior,
                    reclaim_deadline_ms: waiter.reclaim_deadline_ms,
                });
            }
            // A waiter whose session a new term detached has no connection to tell: no
            // connection of an earlier term may deliver a grant the state can still give
            // back. Its owner finds the grant by asking again.
            if waiter.reclaim_deadline_ms.is_none() {
                fx.emit(LockEvent::Granted {
                    resource: Bytes::copy_from_slice(fx.resource),
                    owner: waiter.owner,
                    token,
                });
            }
        }
    }

    /// Puts the holder at `i` in `session`, if one is given.
    pub(super) fn attach_holder(
        &mut self,
        i: usize,
        session: Option<&SessionRef>,
        fx: &mut Effects,
    ) {
        if let Some(session) = session {
            if self.holders[i].session.as_ref() != Some(session) {
                self.holders[i].session = Some(session.clone());
                fx.changed();
            }
        }
    }

    /// Adds one hold for `owner`: a new holder with a new token, a reentrant hold with the
    /// same token, or an upgrade from shared to exclusive with a new token (the exclusion
    /// it guarantees is new, so a storage service must see a new sequencer). The hold
    /// moves to `session`, if one is given.
    fn grant(
        &mut self,
        owner: &Bytes,
        mode: LockMode,
        ttl_ms: u64,
        session: Option<&SessionRef>,
        now_ms: u64,
        fx: &mut Effects,
    ) -> u64 {
        let lease_deadline_ms = now_ms.saturating_add(ttl_ms);
        match self.holder_index(owner) {
            Some(i) => {
                let upgrade = !self.holders[i].mode.covers(mode);
                let token = if upgrade {
                    fx.next_token()
                } else {
                    self.holders[i].token
                };
                let holder = &mut self.holders[i];
                let before = (holder.count, holder.lease_deadline_ms);
                holder.count = holder.count.saturating_add(1);
                holder.lease_deadline_ms = holder.lease_deadline_ms.max(lease_deadline_ms);
                if upgrade {
                    fx.tally.retoken(holder.token, token, now_ms);
                    holder.mode = mode;
                    holder.token = token;
                } else {
                    fx.tally.granted_again();
                }
                if upgrade || before != (holder.count, holder.lease_deadline_ms) {
                    fx.changed();
                }
                self.attach_holder(i, session, fx);
                token
            }
            None => {
                let token = fx.next_token();
                fx.changed();
                fx.tally.granted(token, now_ms);
                self.holders.push(Holder {
                    owner: Box::from(&owner[..]),
                    token,
                    lease_deadline_ms,
                    session: session.cloned(),
                    count: 1,
                    mode,
                    unconfirmed: false,
                });
                token
            }
        }
    }

    /// LOCK / RLOCK. Reentrant locking by a holder is granted at once (waiting behind its
    /// own hold would deadlock); everyone else is granted only when nobody is queued ahead
    /// and the mode is compatible. The owner's hold, and its place in the queue if the
    /// request waits, move to the request's session: a client that reconnects re-attaches.
    pub fn acquire(
        &mut self,
        req: Request,
        max_waiters: usize,
        now_ms: u64,
        fx: &mut Effects,
    ) -> Acquire {
        self.advance(now_ms, fx);
        if let Some(i) = self.holder_index(req.owner) {
            let holder = &self.holders[i];
            if holder.unconfirmed && holder.mode.covers(req.mode) {
                // The owner's queued request was granted while its client was away (a
                // reconnect, a failover): asking again finds that grant, not a second hold.
                let token = holder.token;
                self.confirm(req.owner, fx);
                self.attach_holder(i, req.session, fx);
                return Acquire::Granted { token };
            }
        }
        self.confirm(req.owner, fx);
        let holds_covering = self
            .holder(req.owner)
            .is_some_and(|h| h.mode.covers(req.mode));
        let grantable =
            holds_covering || (self.queue.is_empty() && self.compatible(req.owner, req.mode));
        if grantable {
            let token = self.grant(req.owner, req.mode, req.ttl_ms, req.session, now_ms, fx);
            return Acquire::Granted { token };
        }
        if let Some(i) = self.holder_index(req.owner) {
            // An upgrade that cannot go now: the owner's shared hold is still its own.
            self.attach_holder(i, req.session, fx);
        }
        let Some(wait_deadline_ms) = req.wait else {
            return Acquire::Busy;
        };
        if let Some(waiter) = self.queue.find_mut(req.owner) {
            // The same owner asking again (a client that reconnected) keeps its place.
            let mut changed = false;
            if (waiter.wait_deadline_ms, waiter.ttl_ms) != (wait_deadline_ms, req.ttl_ms) {
                waiter.wait_deadline_ms = wait_deadline_ms;
                waiter.ttl_ms = req.ttl_ms;
                changed = true;
            }
            if let Some(session) = req.session {
                if waiter.session.as_ref() != Some(session) || waiter.reclaim_deadline_ms.is_some()
                {
                    waiter.session = Some(session.clone());
                    waiter.reclaim_deadline_ms = None;
                    changed = true;
                }
            }
            if changed {
                fx.changed();
            }
            return Acquire::Queued;
        }
        if self.queue.len() >= max_waiters {
            return Acquire::QueueFull;
        }
        fx.changed();
        fx.tally.waits += 1;
        self.queue.push_back(Waiter {
            owner: req.owner.clone(),
            mode: req.mode,
            ttl_ms: req.ttl_ms,
            wait_deadline_ms,
            session: req.session.cloned(),
            reclaim_deadline_ms: None,
        });
        Acquire::Queued
    }

    /// UNLOCK: drops one hold; returns the holds left (0 = released).
    pub fn release(
        &mut self,
        owner: &[u8],
        now_ms: u64,
        fx: &mut Effects,
    ) -> Result<u32, NotOwner> {
        self.advance(now_ms, fx);
        let i = self.holder_index(owner).ok_or(NotOwner)?;
        self.confirm(owner, fx);
        let remaining = self.drop_hold(i, fx);
        self.grant_next_waiters(now_ms, fx);
        Ok(remaining)
    }

    fn drop_hold(&mut self, i: usize, fx: &mut Effects) -> u32 {
        fx.changed();
        let holder = &mut self.holders[i];
        holder.count -= 1;
        let remaining = holder.count;
        if remaining == 0 {
            let token = self.holders.remove(i).token;
            fx.tally.ended(token, fx.now_ms);
            if self.holders.is_empty() {
                fx.emit(LockEvent::Released {
                    resource: Bytes::copy_from_slice(fx.resource),
                });
            }
        }
        remaining
    }

    /// RENEW: a new lease of `ttl_ms` from now, the hold moved to `session` if one is
    /// given. `Ok(false)` when nobody holds the lock (it expired); `NotOwner` when someone
    /// else does.
    pub fn renew(
        &mut self,
        owner: &[u8],
        ttl_ms: u64,
        session: Option<&SessionRef>,
        now_ms: u64,
        fx: &mut Effects,
    ) -> Result<bool, NotOwner> {
        self.advance(now_ms, fx);
        match self.holder_index(owner) {
            Some(i) => {
                self.confirm(owner, fx);
                let lease_deadline_ms = now_ms.saturating_add(ttl_ms);
                if self.holders[i].lease_deadline_ms != lease_deadline_ms {
                    self.holders[i].lease_deadline_ms = lease_deadline_ms;
                    fx.changed();
                }
                self.attach_holder(i, session, fx);
                Ok(true)
            }
            None if self.holders.is_empty() => Ok(false),
            None => Err(NotOwner),
        }
    }

    /// DEL of the lock's key: every hold ends; the queue stays and is served in order.
    pub fn force_release(&mut self, now_ms: u64, fx: &mut Effects) {
        if !self.holders.is_empty() {
            for holder in self.holders.iter() {
                fx.tally.ended(holder.token, now_ms);
            }
            self.holders.clear();
            self.drop_orphan_grants();
            fx.changed();
            fx.emit(LockEvent::Released {
                resource: Bytes::copy_from_slice(fx.resource),
            });
        }
        self.advance(now_ms, fx);
    }

    /// The waiting client of `owner` went away: it leaves the queue, or, if its grant
    /// came while it was leaving, the grant is given back. With `session`, only a wait or
    /// grant of that session (or of none) is touched: the owner may have asked again from
    /// another connection since. Returns whether anything changed.
    pub fn cancel_wait(
        &mut self,
        owner: &[u8],
        session: Option<&SessionId>,
        now_ms: u64,
        fx: &mut Effects,
    ) -> bool {
        self.advance(now_ms, fx);
        if let Some(pos) = self.queue.iter().position(|w| w.owner == owner) {
            if !session::belongs_to(self.queue[pos].session.as_ref(), session) {
                return false;
            }
            self.queue.remove(pos);
            fx.changed();
            self.grant_next_waiters(now_ms, fx);
            return true;
        }
        let Some(holder) = self.holder(owner) else {
            return false;
        };
        if !holder.unconfirmed || !session::belongs_to(holder.session.as_ref(), session) {
            return false;
        }
        self.give_back(owner, fx);
        self.grant_next_waiters(now_ms, fx);
        true
    }

    /// Gives back the unconfirmed grant of `owner`: its hold goes, or returns to what it
    /// was before the grant (an upgrade to its shared hold and token).
    pub(super) fn give_back(&mut self, owner: &[u8], fx: &mut Effects) {
        let Some(i) = self.holder_index(owner) else {
            return;
        };
        let Some(grant) = self.queue.take_grant(owner) else {
            return;
        };
        self.holders[i].unconfirmed = false;
        if self.drop_hold(i, fx) > 0 {
            if let Some((mode, token)) = grant.prior {
                self.holders[i].mode = mode;
                self.holders[i].token = token;
            }
        }
    }

    /// Any command of the owner shows it knows of its grant.
    pub(super) fn confirm(&mut self, owner: &[u8], fx: &mut Effects) {
        if let Some(i) = self.holder_index(owner) {
            if self.holders[i].unconfirmed {
                self.holders[i].unconfirmed = false;
                self.queue.take_grant(owner);
                fx.changed();
            }
        }
    }

    /// Whether `token` is the token of a current hold.
    pub fn is_current_token(
        &self,
        token: u64,
        now_ms: u64,
        hold: &crate::state::ExpiryHold,
    ) -> bool {
        self.holders
            .iter()
            .any(|h| h.token == token && hold.live(h.lease_deadline_ms, now_ms))
    }

    /// Whether every unconfirmed holder has one grant record and every record such a
    /// holder: what a snapshot must hold (each part is stored on its own).
    pub(crate) fn grants_match_holders(&self) -> bool {
        let flagged = self.holders.iter().filter(|h| h.unconfirmed).count();
        let grants = self.queue.grants();
        flagged == grants.len()
            && grants.iter().enumerate().all(|(i, grant)| {
                self.holder(&grant.owner).is_some_and(|h| h.unconfirmed)
                    && grants[..i].iter().all(|g| g.owner != grant.owner)
            })
    }

    /// Every unconfirmed holder has one grant record and every record a holder.
    #[cfg(any(test, fuzzing))]
    pub fn assert_consistent(&self) {
        assert!(
            self.grants_match_holders(),
            "one record per unconfirmed grant"
        );
        let flagged = self.holders.iter().filter(|h| h.unconfirmed).count();
        assert_eq!(flagged, self.queue.grants().len(), "one record per grant");
        for grant in self.queue.grants() {
            assert!(
                self.holder(&grant.owner).is_some_and(|h| h.unconfirmed),
                "a record's holder is unconfirmed"
            );
        }
        if let Some(queue) = &self.queue.0 {
            assert!(!queue.waiters.is_empty() || !queue.grants.is_empty());
        }
    }
}

#[cfg(test)]
#[path = "lock_tests.rs"]
mod tests;
