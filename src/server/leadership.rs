//! What this node does because it leads its group: a new leader's start (it waits until
//! the log of earlier terms is applied, its clock continuing from the last entry's time,
//! and holds expiry back with `raftlock.epoch`, `state::hold`), the leader's wall clock
//! carried to the state (`raftlock.wallclock`, `state::wall`), and the expiry tick that
//! commits an entry as each deadline passes. The proposer asks it for the head of every
//! entry (`Leadership::open_entry`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::clock::{wall_clock_ms, ClusterClock};
use super::Node;
use crate::raft::RaftGroup;
use crate::reply::Reply;
use crate::state::{hold, wall};

const NEW_LEADER_CATCHING_UP: &str =
    "TRYAGAIN the new leader has not applied the log of earlier terms yet; try again";

/// How a leader opens its entries.
pub struct LeadershipLimits {
    /// How long a new leader waits to apply the log of earlier terms.
    pub leader_wait: Duration,
    /// The expiry hold a new leader places with its first entry (`state::hold`).
    pub epoch_grace_ms: u64,
    /// This node's id, named in the epoch op.
    pub node_id: u64,
    /// How far the leader's wall clock may drift from the state's wall offset before an
    /// entry carries it again (`state::wall`).
    pub wall_offset_tolerance_ms: u64,
}

/// The head of an entry: its time, and the internal ops that go before the clients'
/// (their replies are for no client).
pub struct EntryHead {
    pub now_ms: u64,
    pub ops: Vec<Vec<Bytes>>,
}

/// This node's leadership of its group.
pub struct Leadership {
    group: RaftGroup,
    clock: Arc<ClusterClock>,
    limits: LeadershipLimits,
}

impl Leadership {
    pub fn new(group: RaftGroup, clock: Arc<ClusterClock>, limits: LeadershipLimits) -> Self {
        Leadership {
            group,
            clock,
            limits,
        }
    }

    /// The head of the next entry this node, leading in `term`, proposes. A new leader's
    /// clock starts from the last entry of the terms before its own, so it first waits
    /// until those are applied (TRYAGAIN if that takes longer than `leader_wait`).
    pub async fn open_entry(&self, term: u64) -> Result<EntryHead, Reply> {
        if !self.clock.anchored_in(term) && !self.applied_in_term(term).await {
            return Err(Reply::error(NEW_LEADER_CATCHING_UP));
        }
        let (applied_ms, hold_term, state_wall_offset) = {
            let ks = self.group.state();
            (ks.last_now_ms(), ks.expiry_hold().term, ks.wall_offset_ms())
        };
        let now_ms = self.clock.stamp_ms(term, applied_ms);
        let mut ops = Vec::new();
        // A leader's first entry in its term holds expiry back (guarantee 4). Until that
        // entry is applied, every entry carries the op again: applying it twice is harmless.
        if hold_term < term {
            ops.push(hold::epoch_op(
                term,
                self.limits.node_id,
                self.limits.epoch_grace_ms,
            ));
        }
        let wall_ms = i64::try_from(wall_clock_ms()).unwrap_or(i64::MAX);
        let wall_offset = wall_ms.saturating_sub(i64::try_from(now_ms).unwrap_or(i64::MAX));
        if wall::needs_update(
            wall_offset,
            state_wall_offset,
            self.limits.wall_offset_tolerance_ms,
        ) {
            ops.push(wall::wall_op(wall_ms));
        }
        Ok(EntryHead { now_ms, ops })
    }

    /// Whether the state holds the expiry hold of this leader's term (see `state::hold`).
    pub fn hold_applied(&self) -> bool {
        let term = self.group.term();
        self.group.state().expiry_hold().term >= term
    }

    /// Whether this node has stamped an entry in its current term, and so runs its clock.
    fn clock_started(&self) -> bool {
        self.clock.anchored_in(self.group.term())
    }

    /// Waits (up to `leader_wait`) until this node, still leading in `term`, has applied
    /// every entry its log holds now: with them every entry of earlier terms (a leader's
    /// log holds all that was committed), so their last time is where its clock starts.
    async fn applied_in_term(&self, term: u64) -> bool {
        let mut metrics = self.group.watch();
        let target = metrics.last_log_index().unwrap_or(0);
        let mut applied = self.group.applied();
        let caught_up = tokio::time::timeout(self.limits.leader_wait, async {
            loop {
                if !metrics.leads_in_term(term) {
                    return false;
                }
                if *applied.borrow_and_update() >= target {
                    return true;
                }
                if applied.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await;
        caught_up.unwrap_or(false)
    }
}

/// On the leader, proposes an empty entry when a key's deadline has passed, so expiry is
/// a committed change even when nothing else is written, and when it has just been
/// elected. It wakes at the next deadline (or every `expiry_tick_ms` at the latest), so
/// an end is committed about one commit after it is due.
pub(super) async fn expiry_tick(node: Arc<Node>) {
    let max_wait = Duration::from_millis(node.config.expiry_tick_ms);
    loop {
        let (due, wait) = {
            let ks = node.group.state();
            let now_ms = node.clock_ms(&ks);
            // While anything has a deadline, the leader also stamps an entry at least
            // every `time_checkpoint_ms`: a new leader continues from the last entry's
            // time, so this bounds how much later than due a failover makes a lease end.
            let checkpoint =
                now_ms.saturating_sub(ks.last_now_ms()) >= node.config.time_checkpoint_ms;
            match ks.next_deadline_ms() {
                Some(deadline) if deadline <= now_ms || checkpoint => (true, max_wait),
                Some(deadline) => (
                    false,
                    max_wait.min(Duration::from_millis(deadline - now_ms)),
                ),
                None => (false, max_wait),
            }
        };
        let leadership = &node.leadership;
        // A new leader proposes its first entry (its expiry hold, the start of its clock)
        // without waiting for a client write.
        if node.group.leads() && (due || !leadership.hold_applied() || !leadership.clock_started())
        {
            // Until the entry is applied, the same deadline would ask for another.
            let mut applied = node.group.applied();
            applied.borrow_and_update();
            node.proposer.tick().await;
            let _ = tokio::time::timeout(max_wait, applied.changed()).await;
        } else {
            tokio::time::sleep(wait).await;
        }
    }
}
