//! The group commit. Writes from every connection queue here; while one Raft entry is in
//! flight the next ones gather, and go out together as one entry (one append, one fsync).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::error::ClientWriteError;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::clock::{wall_clock_ms, ClusterClock};
use super::disk::DiskGuard;
use crate::raft::RaftGroup;
use crate::reply::Reply;
use crate::state::{hold, wall, Batch};

type Metrics = tokio::sync::watch::Receiver<openraft::RaftMetrics<u64, crate::raft::NodeAddr>>;

struct Proposal {
    argv: Vec<Bytes>,
    reply: oneshot::Sender<Reply>,
}

/// The reply to a proposal whose answer never came: the proposer stopped with the node.
pub(super) fn write_gone() -> Reply {
    Reply::error("ERR the write was not applied: the node is shutting down")
}

/// How the proposer shapes entries.
pub struct ProposerLimits {
    pub max_ops_per_entry: usize,
    pub max_inflight_entries: usize,
    /// Turns of the runtime the proposer waits for more writes before proposing (see
    /// `Config::proposal_linger_yields`).
    pub linger_yields: usize,
    /// How long a write waits for a leader to be known before NOLEADER.
    pub leader_wait: Duration,
    /// How long a proposed entry may take to commit before the write is answered TRYAGAIN.
    pub commit_timeout: Duration,
    /// The expiry hold a new leader places with its first entry (`state::hold`).
    pub epoch_grace_ms: u64,
    /// This node's id, named in the epoch op.
    pub node_id: u64,
    /// How far the leader's wall clock may drift from the state's wall offset before an
    /// entry carries it again (`state::wall`).
    pub wall_offset_tolerance_ms: u64,
}

/// Hands writes to the proposer task.
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<Proposal>,
    /// One permit per entry that may be in flight; an entry holds its permit from before
    /// it is proposed until it commits (or its commit times out).
    inflight: Arc<Semaphore>,
    max_inflight: u32,
}

impl Proposer {
    /// Starts the proposer task for `group`, stamping entries with `clock`, refusing
    /// client writes while `disk` is nearly full.
    pub fn start(
        group: RaftGroup,
        clock: Arc<ClusterClock>,
        disk: Arc<DiskGuard>,
        queue_len: usize,
        limits: ProposerLimits,
    ) -> Proposer {
        let (queue, rx) = mpsc::channel(queue_len);
        let max_inflight = u32::try_from(limits.max_inflight_entries)
            .unwrap_or(u32::MAX)
            .min(Semaphore::MAX_PERMITS as u32);
        let inflight = Arc::new(Semaphore::new(max_inflight as usize));
        tokio::spawn(run(group, clock, disk, rx, inflight.clone(), limits));
        Proposer {
            queue,
            inflight,
            max_inflight,
        }
    }

    /// Waits until every entry in flight has committed, then stops proposing until the
    /// returned permits are dropped: writes queue meanwhile and go out together after.
    /// A leadership transfer pauses so that the leader's log stops growing, and no voter
    /// can get an entry the target has not (such a voter refuses the target its vote,
    /// and openraft then delays the target's next attempt by twice the election timeout).
    pub async fn pause(&self) -> Option<OwnedSemaphorePermit> {
        self.inflight
            .clone()
            .acquire_many_owned(self.max_inflight)
            .await
            .ok()
    }

    /// Queues a write; the receiver yields its reply once the entry is committed and applied.
    pub async fn propose(&self, argv: Vec<Bytes>) -> oneshot::Receiver<Reply> {
        let (reply, rx) = oneshot::channel();
        // A closed queue means the node is shutting down: the dropped sender gives the
        // caller an error reply.
        let _ = self.queue.send(Proposal { argv, reply }).await;
        rx
    }

    /// Proposes an entry with no ops: it carries only the leader's time, so deadlines that
    /// passed are purged by a committed entry.
    pub async fn tick(&self) {
        let (reply, _rx) = oneshot::channel();
        let _ = self.queue.try_send(Proposal {
            argv: Vec::new(),
            reply,
        });
    }
}

async fn run(
    group: RaftGroup,
    clock: Arc<ClusterClock>,
    disk: Arc<DiskGuard>,
    mut rx: mpsc::Receiver<Proposal>,
    inflight: Arc<Semaphore>,
    limits: ProposerLimits,
) {
    let mut last_entry_ops = 0usize;
    while let Some(first) = rx.recv().await {
        // While every permit is out, requests keep gathering in the queue: the busier the
        // log, the larger the next entry.
        let Ok(permit) = inflight.clone().acquire_owned().await else {
            return;
        };
        let mut pending: Vec<Proposal> = Vec::with_capacity(limits.max_ops_per_entry.min(1024));
        let mut next = Some(first);
        // Before proposing, give the runtime a few turns to read what clients are sending
        // (each yield lets the connections whose sockets are readable run): an entry that
        // goes out the moment the previous one is answered carries only the first write of
        // the next round, and the rest wait a whole entry more.
        let mut yields = 0;
        loop {
            while let Some(p) = next.take() {
                // A tick (no argv) only asks for an entry; it waits for no reply.
                if !p.argv.is_empty() {
                    pending.push(p);
                }
                if pending.len() < limits.max_ops_per_entry {
                    next = rx.try_recv().ok();
                }
            }
            // Linger only while fewer writes are waiting than the last entry carried: the
            // clients that entry answered are likely sending their next writes right now.
            if yields >= limits.linger_yields
                || pending.len() >= last_entry_ops.min(limits.max_ops_per_entry)
            {
                break;
            }
            yields += 1;
            tokio::task::yield_now().await;
            next = rx.try_recv().ok();
        }
        // A nearly full disk refuses client writes; ticks still go, so leases and
        // deadlines keep ending and waiters keep being granted.
        if let (false, Some(refusal)) = (pending.is_empty(), disk.write_refusal()) {
            for p in pending {
                let _ = p.reply.send(Reply::Error(refusal.clone()));
            }
            continue;
        }
        let (mut ops, replies): (Vec<_>, Vec<_>) =
            pending.into_iter().map(|p| (p.argv, p.reply)).unzip();
        if !is_leader(&group) {
            let deadline = tokio::time::Instant::now() + limits.leader_wait;
            super::wait_for_leader(&group.raft, deadline).await;
            if !is_leader(&group) {
                answer_all(replies, Reply::error(NO_LEADER));
                continue;
            }
        }
        let term = group.raft.metrics().borrow().current_term;
        // A new leader's clock starts from the last entry of the terms before its own, so
        // it waits until those are applied.
        if !clock.anchored_in(term) && !applied_in_term(&group, term, limits.leader_wait).await {
            answer_all(replies, Reply::error(NEW_LEADER_CATCHING_UP));
            continue;
        }
        let (applied_ms, hold_term, state_wall_offset) =
            group.state.read().map_or((0, 0, 0), |ks| {
                (ks.last_now_ms(), ks.expiry_hold().term, ks.wall_offset_ms())
            });
        let now_ms = clock.stamp_ms(term, applied_ms);
        // Internal ops go first; their replies are not for any client.
        let mut internal = Vec::new();
        // A leader's first entry in its term holds expiry back (guarantee 4). Until that
        // entry is applied, every entry carries the op again: applying it twice is harmless.
        if hold_term < term {
            internal.push(hold::epoch_op(term, limits.node_id, limits.epoch_grace_ms));
        }
        let wall_ms = i64::try_from(wall_clock_ms()).unwrap_or(i64::MAX);
        let wall_offset = wall_ms.saturating_sub(i64::try_from(now_ms).unwrap_or(i64::MAX));
        if wall::needs_update(
            wall_offset,
            state_wall_offset,
            limits.wall_offset_tolerance_ms,
        ) {
            internal.push(wall::wall_op(wall_ms));
        }
        let skip = internal.len();
        if skip > 0 {
            ops.splice(0..0, internal);
        }
        let n = ops.len();
        last_entry_ops = n;
        let batch = Batch { now_ms, ops };
        // Handing the entry to Raft in this loop keeps the order of proposals; waiting for
        // its commit happens in a task, so several entries can be in flight at once.
        match group.raft.client_write_ff(batch).await {
            Ok(committed) => {
                let commit_timeout = limits.commit_timeout;
                let mut metrics = group.raft.metrics();
                tokio::spawn(async move {
                    let outcome = tokio::select! {
                        outcome = tokio::time::timeout(commit_timeout, committed) => outcome,
                        () = leadership_lost(&mut metrics, term) => {
                            drop(permit);
                            // Stepped down (check-quorum, a higher term): nothing will
                            // tell this node whether the entry commits.
                            answer_all(replies, Reply::error(
                                "TRYAGAIN this node stopped leading before the write was committed; it may still be applied",
                            ));
                            return;
                        }
                    };
                    drop(permit);
                    let Ok(outcome) = outcome else {
                        // A leader cut off from its majority cannot commit: answer within
                        // a bounded time. The entry may still commit if the leader keeps
                        // its term, as with any write whose reply is lost.
                        answer_all(replies, Reply::Error(format!(
                            "TRYAGAIN the write was not committed within {} ms (no quorum reachable?); it may still be applied",
                            commit_timeout.as_millis()
                        )));
                        return;
                    };
                    match outcome {
                        Ok(Ok(response)) if response.data.len() == n => {
                            let client_replies = response.data.into_iter().skip(skip);
                            for (tx, reply) in replies.into_iter().zip(client_replies) {
                                let _ = tx.send(reply);
                            }
                        }
                        Ok(Ok(_)) => {
                            answer_all(replies, Reply::error("ERR raft: reply count mismatch"))
                        }
                        Ok(Err(ClientWriteError::ForwardToLeader(_))) => {
                            answer_all(replies, Reply::error(NO_LEADER))
                        }
                        Ok(Err(err)) => {
                            answer_all(replies, Reply::Error(format!("ERR raft: {err}")))
                        }
                        Err(_) => answer_all(replies, Reply::error(NO_LEADER)),
                    }
                });
            }
            Err(fatal) => answer_all(replies, Reply::Error(format!("ERR raft: {fatal}"))),
        }
    }
}

const NO_LEADER: &str = "NOLEADER no Raft leader is known for this shard; try again";
const NEW_LEADER_CATCHING_UP: &str =
    "TRYAGAIN the new leader has not applied the log of earlier terms yet; try again";

/// Returns once this node no longer leads in `term` (or is shutting down).
async fn leadership_lost(metrics: &mut Metrics, term: u64) {
    loop {
        {
            let m = metrics.borrow_and_update();
            if m.current_term != term || m.current_leader != Some(m.id) {
                return;
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// Waits (up to `wait`) until this node, still leading in `term`, has applied every entry
/// its log holds now: with them every entry of earlier terms (a leader's log holds all
/// that was committed), so their last time is where its clock starts.
async fn applied_in_term(group: &RaftGroup, term: u64, wait: Duration) -> bool {
    let metrics = group.raft.metrics();
    let target = metrics.borrow().last_log_index.unwrap_or(0);
    let mut applied = group.applied.clone();
    let caught_up = tokio::time::timeout(wait, async {
        loop {
            {
                let m = metrics.borrow();
                if m.current_term != term || m.current_leader != Some(m.id) {
                    return false;
                }
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

fn is_leader(group: &RaftGroup) -> bool {
    let metrics = group.raft.metrics();
    let m = metrics.borrow();
    m.current_leader == Some(m.id)
}

fn answer_all(replies: Vec<oneshot::Sender<Reply>>, reply: Reply) {
    for tx in replies {
        let _ = tx.send(reply.clone());
    }
}
