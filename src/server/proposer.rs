//! The group commit. Writes from every connection queue here; while one Raft entry is in
//! flight the next ones gather, and go out together as one entry (one append, one fsync).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use openraft::error::ClientWriteError;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::raft::RaftGroup;
use crate::reply::Reply;
use crate::state::{hold, Batch};

struct Proposal {
    argv: Vec<Bytes>,
    reply: oneshot::Sender<Reply>,
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
    /// Starts the proposer task for `group`.
    pub fn start(group: RaftGroup, queue_len: usize, limits: ProposerLimits) -> Proposer {
        let (queue, rx) = mpsc::channel(queue_len);
        let max_inflight = u32::try_from(limits.max_inflight_entries)
            .unwrap_or(u32::MAX)
            .min(Semaphore::MAX_PERMITS as u32);
        let inflight = Arc::new(Semaphore::new(max_inflight as usize));
        tokio::spawn(run(group, rx, inflight.clone(), limits));
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

/// Milliseconds since the Unix epoch by this node's clock.
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn run(
    group: RaftGroup,
    mut rx: mpsc::Receiver<Proposal>,
    inflight: Arc<Semaphore>,
    limits: ProposerLimits,
) {
    let mut last_now_ms = 0u64;
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
        let state_now = group.state.read().map(|ks| ks.last_now_ms()).unwrap_or(0);
        last_now_ms = last_now_ms.max(state_now).max(wall_clock_ms());
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
        // A leader's first entry in its term holds expiry back (guarantee 4). Until that
        // entry is applied, every entry carries the op again: applying it twice is harmless.
        let term = group.raft.metrics().borrow().current_term;
        let hold_term = group.state.read().map_or(0, |ks| ks.expiry_hold().term);
        let epoch = hold_term < term;
        if epoch {
            ops.insert(
                0,
                hold::epoch_op(term, limits.node_id, limits.epoch_grace_ms),
            );
        }
        let n = ops.len();
        last_entry_ops = n;
        let batch = Batch {
            now_ms: last_now_ms,
            ops,
        };
        // Handing the entry to Raft in this loop keeps the order of proposals; waiting for
        // its commit happens in a task, so several entries can be in flight at once.
        match group.raft.client_write_ff(batch).await {
            Ok(committed) => {
                let commit_timeout = limits.commit_timeout;
                tokio::spawn(async move {
                    let outcome = tokio::time::timeout(commit_timeout, committed).await;
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
                            let client_replies = response.data.into_iter().skip(epoch as usize);
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
