//! The expiry hold: a new leader lets nothing expire until a grace period has passed
//! (README, "Guarantees": leases count monotonic time).
//!
//! Leases are counted in the clock of the leader that stamped the entry. A new leader's
//! clock may run ahead of its predecessor's, so if it judged deadlines by its own clock at
//! once it could end a lease before the old leader would have. Its first entry therefore
//! carries an internal op, `raftlock.epoch TERM LEADER GRACE_MS`, that records
//! `until_ms = entry time + GRACE_MS`; while an entry's time (or a read's) is below it, no
//! key deadline, lock lease or wait deadline counts as passed. The op name is not in the
//! command table, so no client can send it: only the proposer writes it.
//!
//! No hold is needed when the clock does not change hands: when the previous epoch was
//! the same node's (a single node restarting, a leader re-elected with nobody in between)
//! or when the entry is the first of a new log (nothing was stamped before it).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::args::parse_i64;
use crate::reply::Reply;

/// The internal op a leader proposes first in each new term.
pub const EPOCH_OP: &str = "raftlock.epoch";

pub use crate::config::state_limits::MAX_EPOCH_GRACE_MS;

/// The hold the latest leader placed, persisted with the keyspace's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryHold {
    /// The Raft term of the latest leader's epoch op (0: none yet).
    pub term: u64,
    /// The node id of that leader: the clock the latest entries were stamped by.
    pub leader: u64,
    /// Until this time (exclusive) no deadline has passed.
    pub until_ms: u64,
}

impl ExpiryHold {
    /// Whether something due at `deadline_ms` is over at `now_ms`.
    pub fn passed(&self, deadline_ms: u64, now_ms: u64) -> bool {
        deadline_ms <= now_ms && now_ms >= self.until_ms
    }

    /// Whether something due at `deadline_ms` still exists at `now_ms`.
    pub fn live(&self, deadline_ms: u64, now_ms: u64) -> bool {
        !self.passed(deadline_ms, now_ms)
    }

    /// Applies `raftlock.epoch TERM LEADER GRACE_MS` at `now_ms`; `log_is_new`: no entry
    /// was applied before this one. Holds only ever extend, and a second application of
    /// the same op finds its own leader recorded, so it changes nothing.
    pub(crate) fn begin_epoch(&mut self, now_ms: u64, log_is_new: bool, argv: &[Bytes]) -> Reply {
        let [_, term, leader, grace_ms] = argv else {
            return Reply::wrong_arity(EPOCH_OP);
        };
        let (Some(term), Some(leader), Some(grace_ms)) =
            (parse_u64(term), parse_u64(leader), parse_u64(grace_ms))
        else {
            return Reply::not_integer();
        };
        if term < self.term {
            // A deposed leader's op committed late: the clock is already a newer leader's.
            return Reply::Ok;
        }
        let clock_changes_hands = leader != self.leader && !log_is_new;
        self.term = term;
        self.leader = leader;
        if clock_changes_hands {
            let until_ms = now_ms.saturating_add(grace_ms.min(MAX_EPOCH_GRACE_MS));
            self.until_ms = self.until_ms.max(until_ms);
        }
        Reply::Ok
    }
}

fn parse_u64(arg: &[u8]) -> Option<u64> {
    parse_i64(arg).and_then(|n| u64::try_from(n).ok())
}

/// Whether `argv` is the internal epoch op.
pub fn is_epoch_op(argv: &[Bytes]) -> bool {
    argv.first()
        .is_some_and(|name| name.as_ref() == EPOCH_OP.as_bytes())
}

/// The epoch op node `leader` proposes first in `term`, holding expiry for `grace_ms`.
pub fn epoch_op(term: u64, leader: u64, grace_ms: u64) -> Vec<Bytes> {
    vec![
        Bytes::from_static(EPOCH_OP.as_bytes()),
        Bytes::from(term.to_string()),
        Bytes::from(leader.to_string()),
        Bytes::from(grace_ms.to_string()),
    ]
}

#[cfg(test)]
#[path = "hold_tests.rs"]
mod tests;
