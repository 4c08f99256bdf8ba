//! BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX and BZMPOP on the
//! connection: the request joins the node's
//! line for its keys, pops, and while it finds nothing parks until a push wakes it or its
//! time is up. List waits are node-local, served in arrival order.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::list_waiters::ListWait;
use super::proposer::write_gone;
use super::wire::{flush, wait_watching_socket, Disconnected, Wire};
use super::Node;
use crate::command::Blocking;
use crate::reply::Reply;
use crate::state::lists::{BlockingPop, Holds};

/// A blocking pop in its lines: `reply` answers its first pop; if that finds nothing, the
/// connection waits on the node's line for its keys and pops again. `None`: it waits its
/// turn behind the clients already in line before it pops.
pub(super) struct ListPop {
    reply: Option<oneshot::Receiver<Reply>>,
    argv: Vec<Bytes>,
    wait: ListWait,
    /// `None`: no limit.
    deadline: Option<tokio::time::Instant>,
    blocking: Blocking,
}

impl ListPop {
    pub async fn answer(self, node: &Arc<Node>, wire: &mut Wire) -> Result<Reply, Disconnected> {
        let ListPop {
            reply,
            argv,
            wait,
            deadline,
            blocking,
        } = self;
        let outcome = serve_blocking_pop(node, wire, argv, reply, &wait, deadline, blocking).await;
        leave_list_wait(node, wait.id);
        outcome
    }

    /// The client left before it was answered.
    pub fn abandon(self, node: &Node) {
        leave_list_wait(node, self.wait.id);
    }
}

/// A blocking pop joins the lines of its keys before its first pop is proposed, so a
/// push applied while that pop is in flight is not missed.
pub(super) async fn blocking_pop_request(
    node: &Arc<Node>,
    argv: Vec<Bytes>,
    pop: BlockingPop,
    blocking: Blocking,
) -> ListPop {
    let deadline = match pop.timeout_ms {
        0 => None,
        // A timeout too far away to represent is no limit.
        ms => tokio::time::Instant::now().checked_add(Duration::from_millis(ms)),
    };
    let (wait, ahead) = node.list_waiters.register(&pop.keys);
    // Clients already in line on its keys are served first, as Redis serves the clients
    // blocked on a key before it runs the next command: a pop proposed now could take the
    // element a push just brought for them. It pops at once only if a key where nobody
    // is ahead of it holds a list.
    let pop_now = ahead.is_empty() || {
        let ks = node.group.state();
        let now = node.read_time_ms(&ks);
        pop.keys.iter().any(|key| {
            !ahead.contains(key) && ks.get(key, now).is_some_and(|e| pop.holds.matches(e))
        })
    };
    let reply = match pop_now {
        true => Some(node.proposer.propose(argv.clone()).await),
        false => None,
    };
    ListPop {
        reply,
        argv,
        wait,
        deadline,
        blocking,
    }
}

/// Takes a blocking pop out of its lines. A wake it absorbed is passed on: each of its
/// keys that holds a list or a sorted set now wakes that key's next waiter (see `ListWaiters::unregister`).
fn leave_list_wait(node: &Node, id: u64) {
    let keys = node.list_waiters.unregister(id);
    if keys.is_empty() {
        return;
    }
    let ready: Vec<Bytes> = {
        let ks = node.group.state();
        let now = node.read_time_ms(&ks);
        keys.into_iter()
            .filter(|key| {
                ks.get(key, now)
                    .is_some_and(|e| Holds::List.matches(e) || Holds::Zset.matches(e))
            })
            .collect()
    };
    for key in ready {
        node.list_waiters.signal(&key);
    }
}

/// Answers a blocking pop. While its pops find nothing (nil) it parks on its keys until
/// a push wakes it, then pops again, until it is served or its time is up; nil is then
/// the answer, as in Redis. A pop in flight is never abandoned: the socket is watched only
/// while parked.
async fn serve_blocking_pop(
    node: &Arc<Node>,
    wire: &mut Wire,
    argv: Vec<Bytes>,
    first: Option<oneshot::Receiver<Reply>>,
    wait: &ListWait,
    deadline: Option<tokio::time::Instant>,
    blocking: Blocking,
) -> Result<Reply, Disconnected> {
    // What the command answers when its time is up.
    let timed_out = match blocking {
        Blocking::ListMove => Reply::Nil,
        _ => Reply::NilArray,
    };
    // Only a pop that did not wait answers WRONGTYPE.
    let mut first_pop = first.is_some();
    let mut in_flight = first;
    loop {
        if let Some(pop) = in_flight.take() {
            let reply = pop.await.unwrap_or_else(|_| write_gone());
            // Once it waits, a key that now holds another type keeps it waiting, as in
            // Redis, where a wake is judged when the key is served (after a transaction
            // that pushed, removed and set the key, say), not by the push alone.
            let wrong_type = matches!(&reply, Reply::Error(e) if e.starts_with("WRONGTYPE"));
            let nothing =
                matches!(reply, Reply::Nil | Reply::NilArray) || (!first_pop && wrong_type);
            if !nothing {
                return Ok(reply);
            }
            first_pop = false;
        }
        if deadline.is_some_and(|deadline| tokio::time::Instant::now() >= deadline) {
            return Ok(timed_out);
        }
        if node.list_waiters.park(wait.id) {
            // Replies owed before this one go out now: the client may be waiting for
            // them while this request blocks.
            flush(wire).await?;
            let woken = wait_watching_socket(wire, async {
                match deadline {
                    Some(deadline) => tokio::time::timeout_at(deadline, wait.wake.notified())
                        .await
                        .is_ok(),
                    None => {
                        wait.wake.notified().await;
                        true
                    }
                }
            })
            .await?;
            if !woken {
                return Ok(timed_out);
            }
        }
        in_flight = Some(node.proposer.propose(argv.clone()).await);
    }
}
