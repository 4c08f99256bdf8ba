//! A lock and the client sessions of its holders and waiters: a new term detaches the
//! waiters of earlier terms' sessions, a connection of a leader elected again reattaches
//! its blocked request, and a loaded snapshot shares one reference per session.

use super::{Acquire, Effects, Lock};
use crate::state::session::{self, SessionRef};

impl Lock {
    /// A leader elected again moves `owner`'s request, still blocked on one of its
    /// connections, to that connection's new `session`, wait and lease unchanged: `Queued`
    /// if it still waits; `Granted` if it was granted meanwhile (confirmed now: the
    /// connection answers the client with it); `Busy` if it is gone (its wait ended).
    pub fn reattach_wait(
        &mut self,
        owner: &[u8],
        session: &SessionRef,
        now_ms: u64,
        fx: &mut Effects,
    ) -> Acquire {
        self.advance(now_ms, fx);
        if let Some(waiter) = self.queue.find_mut(owner) {
            if waiter.session.as_ref() != Some(session) || waiter.reclaim_deadline_ms.is_some() {
                waiter.session = Some(session.clone());
                waiter.reclaim_deadline_ms = None;
                fx.changed();
            }
            return Acquire::Queued;
        }
        match self.holder_index(owner) {
            Some(i) if self.holders[i].unconfirmed => {
                let token = self.holders[i].token;
                self.confirm(owner, fx);
                self.attach_holder(i, Some(session), fx);
                Acquire::Granted { token }
            }
            _ => Acquire::Busy,
        }
    }

    /// A new term began: the waiters whose sessions belong to earlier terms are detached,
    /// and leave at `now_ms` plus their session's timeout unless their owner asks again
    /// first; a grant such a waiter gets meanwhile carries the same deadline (no
    /// connection of an earlier term delivers a grant made in this one: each answers its
    /// blocked request TRYAGAIN when it sees the term end, before it can apply an entry
    /// of the new term). Grants made before are left alone, unconfirmed or not: their
    /// clients may have them, and only their leases end them. So are waiters without a
    /// session (made before sessions existed).
    pub fn detach_sessions_before(&mut self, term: u64, now_ms: u64, fx: &mut Effects) {
        if !self.queue.is_present() {
            return;
        }
        let mut changed = false;
        self.queue.update_waiters(|waiters| {
            for waiter in waiters.iter_mut() {
                let Some(session) = waiter.session.as_ref() else {
                    continue;
                };
                if session.id.term < term && waiter.reclaim_deadline_ms.is_none() {
                    waiter.reclaim_deadline_ms = Some(now_ms.saturating_add(session.timeout_ms));
                    changed = true;
                }
            }
        });
        if changed {
            fx.changed();
        }
    }

    /// Shares one reference per session among the holds and waits of a loaded snapshot.
    pub(crate) fn share_sessions(&mut self, interner: &mut session::Interner) {
        for holder in self.holders.iter_mut() {
            interner.share(&mut holder.session);
        }
        if let Some(queue) = self.queue.0.as_mut() {
            for waiter in &mut queue.waiters {
                interner.share(&mut waiter.session);
            }
        }
    }
}
