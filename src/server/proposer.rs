//! The group commit. Writes from every connection queue here; while one Raft entry is in
//! flight the next ones gather, and go out together as one entry (one append, one fsync).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::raft::RaftGroup;
use crate::reply::Reply;
use crate::state::Batch;

struct Proposal {
    argv: Vec<Bytes>,
    reply: oneshot::Sender<Reply>,
}

/// Hands writes to the proposer task.
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<Proposal>,
}

impl Proposer {
    /// Starts the proposer task for `group`.
    pub fn start(
        group: RaftGroup,
        max_ops_per_entry: usize,
        queue_len: usize,
        leader_wait: Duration,
    ) -> Proposer {
        let (queue, rx) = mpsc::channel(queue_len);
        tokio::spawn(run(group, rx, max_ops_per_entry, leader_wait));
        Proposer { queue }
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
    max_ops_per_entry: usize,
    leader_wait: Duration,
) {
    let mut pending: Vec<Proposal> = Vec::with_capacity(max_ops_per_entry);
    let mut last_now_ms = 0u64;
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(p) = next.take() {
            // A tick (no argv) only asks for an entry; it waits for no reply.
            if !p.argv.is_empty() {
                pending.push(p);
            }
            if pending.len() < max_ops_per_entry {
                next = rx.try_recv().ok();
            }
        }
        let ops: Vec<Vec<Bytes>> = pending
            .iter_mut()
            .map(|p| std::mem::take(&mut p.argv))
            .collect();
        let state_now = group.state.read().map(|ks| ks.last_now_ms()).unwrap_or(0);
        last_now_ms = last_now_ms.max(state_now).max(wall_clock_ms());
        let batch = Batch {
            now_ms: last_now_ms,
            ops,
        };
        let replies = write_with_leader_wait(&group, batch, leader_wait).await;
        for (p, reply) in pending.drain(..).zip(replies) {
            let _ = p.reply.send(reply);
        }
    }
}

async fn write_with_leader_wait(
    group: &RaftGroup,
    batch: Batch,
    leader_wait: Duration,
) -> Vec<Reply> {
    let n = batch.ops.len();
    let deadline = tokio::time::Instant::now() + leader_wait;
    loop {
        match group.raft.client_write(batch.clone()).await {
            Ok(resp) => return resp.data,
            Err(err) => {
                let no_leader = err.forward_to_leader().is_some();
                if !no_leader || tokio::time::Instant::now() >= deadline {
                    let text = if no_leader {
                        "NOLEADER no Raft leader is known for this shard; try again".to_string()
                    } else {
                        format!("ERR raft: {err}")
                    };
                    return vec![Reply::Error(text); n];
                }
                super::wait_for_leader(&group.raft, deadline).await;
            }
        }
    }
}
