//! The group commit. Writes from every connection queue here; while one Raft entry is in
//! flight the next ones gather, and go out together as one entry (one append, one fsync).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::disk::DiskGuard;
use super::leadership::Leadership;
use super::memory_guard::MemoryGuard;
use super::NO_LEADER;
use crate::metrics::METRICS;
use crate::raft::{CommitError, RaftGroup};
use crate::reply::Reply;
use crate::state::Batch;

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
    /// Starts the proposer task for `group`, opening entries as `leadership` says (their
    /// time and internal ops), refusing client writes while `disk` is nearly full.
    pub fn start(
        group: RaftGroup,
        leadership: Arc<Leadership>,
        disk: Arc<DiskGuard>,
        memory: Arc<MemoryGuard>,
        queue_len: usize,
        limits: ProposerLimits,
    ) -> Proposer {
        let (queue, rx) = mpsc::channel(queue_len);
        let max_inflight = u32::try_from(limits.max_inflight_entries)
            .unwrap_or(u32::MAX)
            .min(Semaphore::MAX_PERMITS as u32);
        let inflight = Arc::new(Semaphore::new(max_inflight as usize));
        tokio::spawn(run(
            group,
            leadership,
            disk,
            memory,
            rx,
            inflight.clone(),
            limits,
        ));
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

    /// Writes waiting for the proposer to take them into an entry.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
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
    leadership: Arc<Leadership>,
    disk: Arc<DiskGuard>,
    memory: Arc<MemoryGuard>,
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
        // Over maxmemory, commands that add data are refused; the rest go on.
        let had_writes = !pending.is_empty();
        let pending: Vec<Proposal> = pending
            .into_iter()
            .filter_map(|p| match memory.refusal(&p.argv) {
                Some(refusal) => {
                    let _ = p.reply.send(refusal);
                    None
                }
                None => Some(p),
            })
            .collect();
        if had_writes && pending.is_empty() {
            continue;
        }
        let (mut ops, replies): (Vec<_>, Vec<_>) =
            pending.into_iter().map(|p| (p.argv, p.reply)).unzip();
        if !group.leads() {
            let deadline = tokio::time::Instant::now() + limits.leader_wait;
            group.wait_for_leader(deadline).await;
            if !group.leads() {
                answer_all(replies, Reply::error(NO_LEADER));
                continue;
            }
        }
        let term = group.term();
        let head = match leadership.open_entry(term).await {
            Ok(head) => head,
            Err(refusal) => {
                answer_all(replies, refusal);
                continue;
            }
        };
        // Internal ops go first; their replies are not for any client.
        let skip = head.ops.len();
        if skip > 0 {
            ops.splice(0..0, head.ops);
        }
        let n = ops.len();
        last_entry_ops = n;
        let batch = Batch {
            now_ms: head.now_ms,
            ops,
        };
        // Handing the entry to Raft in this loop keeps the order of proposals; waiting for
        // its commit happens in a task, so several entries can be in flight at once.
        let proposed_at = std::time::Instant::now();
        match group.propose(batch).await {
            Ok(committed) => {
                let commit_timeout = limits.commit_timeout;
                let mut metrics = group.watch();
                tokio::spawn(async move {
                    let outcome = tokio::select! {
                        outcome = tokio::time::timeout(commit_timeout, committed) => outcome,
                        () = metrics.leadership_lost(term) => {
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
                        Ok(data) if data.len() == n => {
                            METRICS.commit.observe_duration(proposed_at.elapsed());
                            let client_replies = data.into_iter().skip(skip);
                            for (tx, reply) in replies.into_iter().zip(client_replies) {
                                let _ = tx.send(reply);
                            }
                        }
                        Ok(_) => {
                            answer_all(replies, Reply::error("ERR raft: reply count mismatch"))
                        }
                        Err(CommitError::NotLeader) => answer_all(replies, Reply::error(NO_LEADER)),
                        Err(CommitError::Other(err)) => {
                            answer_all(replies, Reply::Error(format!("ERR raft: {err}")))
                        }
                    }
                });
            }
            Err(fatal) => answer_all(replies, Reply::Error(format!("ERR raft: {fatal}"))),
        }
    }
}

fn answer_all(replies: Vec<oneshot::Sender<Reply>>, reply: Reply) {
    for tx in replies {
        let _ = tx.send(reply.clone());
    }
}
