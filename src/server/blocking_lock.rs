//! LOCK and RLOCK with WAIT on the connection: the request is registered for its outcome,
//! proposed in the connection's lock session, and, if its entry queued it, awaited while
//! the socket is watched; a client that leaves cancels it through a committed entry, and
//! a change of leader moves it to the new term's session or asks the client to retry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::lock_waiters::LockOutcome;
use super::proposer::write_gone;
use super::wire::{flush, wait_watching_socket, Disconnected, Wire};
use super::{Node, Session};
use crate::metrics::METRICS;
use crate::reply::Reply;
use crate::state::locks::LockArgs;
use crate::state::session as sessions;

/// A lock command (LOCK, RLOCK, RENEW) as this node, the leader, proposes it: in this
/// connection's session of the current term, which the command's hold or wait moves to
/// (`state::session`).
pub(super) fn in_session(
    node: &Node,
    session: &mut Session,
    argv: Vec<Bytes>,
) -> (sessions::Session, Vec<Bytes>) {
    let lock_session = sessions::Session {
        id: sessions::SessionId {
            node: node.config.id,
            term: current_term(node),
            conn: session.id,
        },
        timeout_ms: node.config.session_timeout_ms,
    };
    session.lock_session = Some(lock_session.id);
    let op = sessions::session_op(&lock_session, argv);
    (lock_session, op)
}

/// The Raft term as the server metrics tell it, which sessions are named by and
/// `queued_outcome` watches (the two must agree).
pub(super) fn current_term(node: &Node) -> u64 {
    node.group.watch_leader().vote().0
}

/// How a lock request was proposed.
pub(super) enum LockRequest {
    /// A try-lock (or one the state machine will refuse): an ordinary write.
    Write(oneshot::Receiver<Reply>),
    /// With WAIT: its entry may queue it.
    Wait(LockWait),
}

/// LOCK/RLOCK: a try-lock is an ordinary write; with WAIT the connection first registers
/// for the request's outcome, then proposes it.
pub(super) async fn lock_request(
    node: &Arc<Node>,
    session: &mut Session,
    argv: Vec<Bytes>,
) -> LockRequest {
    let waits = match LockArgs::parse(&argv) {
        Ok(args) if args.wait_ms.is_some() => Some((args.resource.clone(), args.owner.clone())),
        // Try-locks, and requests the state machine will refuse with an error.
        _ => None,
    };
    let (lock_session, op) = in_session(node, session, argv);
    let Some((resource, owner)) = waits else {
        return LockRequest::Write(node.proposer.propose(op).await);
    };
    let (waiter_id, outcome) = node.lock_waiters.register(&resource, &owner);
    let reply = node.proposer.propose(op).await;
    LockRequest::Wait(LockWait {
        reply,
        queued: QueuedLock {
            resource,
            owner,
            waiter_id,
            session: lock_session,
            outcome,
            requested_at: Instant::now(),
        },
    })
}

/// A LOCK ... WAIT proposed: answered by its entry, or, if it joined the queue, by the
/// grant or timeout that apply reports later.
pub(super) struct LockWait {
    reply: oneshot::Receiver<Reply>,
    queued: QueuedLock,
}

impl LockWait {
    /// The request's answer: its entry's reply, or once queued its outcome.
    pub async fn answer(
        self,
        node: &Arc<Node>,
        wire: &mut Wire,
        lock_session: &mut Option<sessions::SessionId>,
    ) -> Result<Reply, Disconnected> {
        let reply = self.reply.await.unwrap_or_else(|_| write_gone());
        let queued = self.queued;
        if reply != Reply::Blocked {
            node.lock_waiters
                .unregister(&queued.resource, &queued.owner, queued.waiter_id);
            return Ok(reply);
        }
        // Replies owed before this one go out now: the client may be waiting for them
        // while this request blocks.
        match flush(wire).await {
            Ok(()) => await_queued(node, wire, lock_session, queued).await,
            Err(gone) => {
                queued.cancel(node).await;
                Err(gone)
            }
        }
    }

    /// The client left before the request was answered: it leaves the queue.
    pub async fn abandon(self, node: &Arc<Node>) {
        self.queued.cancel(node).await;
    }
}

/// Proposes that `owner` leave `resource`'s queue, if it is still there in `session` (the
/// client may have sent its request again from another connection since); nobody waits
/// for the answer.
async fn cancel_wait(node: &Arc<Node>, session: &sessions::Session, resource: Bytes, owner: Bytes) {
    let argv = vec![Bytes::from_static(b"lockcancel"), resource, owner];
    let op = sessions::session_op(session, argv);
    drop(node.proposer.propose(op).await);
}

/// A LOCK ... WAIT that joined the queue, waiting on this connection for its outcome.
struct QueuedLock {
    resource: Bytes,
    owner: Bytes,
    waiter_id: u64,
    /// The session it is queued in.
    session: sessions::Session,
    outcome: oneshot::Receiver<LockOutcome>,
    /// When the request was proposed: its wait, if granted, is timed from here.
    requested_at: Instant,
}

impl QueuedLock {
    /// The client left: the request leaves the queue.
    async fn cancel(self, node: &Arc<Node>) {
        node.lock_waiters
            .unregister(&self.resource, &self.owner, self.waiter_id);
        cancel_wait(node, &self.session, self.resource, self.owner).await;
    }
}

/// How a queued request's wait ended.
enum QueuedEnd {
    Outcome(Result<LockOutcome, oneshot::error::RecvError>),
    /// The Raft term moved on: the state detaches the request's session when the new
    /// leader's first entry applies.
    TermChanged,
}

/// Waits for a queued request's grant or timeout while watching the socket. When the term
/// ends, a node that leads the next one moves the request to this connection's session of
/// that term and waits on; any other answers TRYAGAIN, and the client sends the request
/// again (to the new leader) to keep its place. A client that leaves cancels it.
async fn await_queued(
    node: &Arc<Node>,
    wire: &mut Wire,
    lock_session: &mut Option<sessions::SessionId>,
    mut queued: QueuedLock,
) -> Result<Reply, Disconnected> {
    let reply = loop {
        let ended = queued_outcome(node, queued.session.id.term, &mut queued.outcome);
        match wait_watching_socket(wire, ended).await {
            Ok(QueuedEnd::Outcome(Ok(LockOutcome::Granted(token)))) => {
                break Reply::Int(token as i64)
            }
            Ok(QueuedEnd::Outcome(Ok(LockOutcome::TimedOut))) => break Reply::Nil,
            Ok(QueuedEnd::Outcome(Err(_))) => break write_gone(),
            Ok(QueuedEnd::TermChanged) => {
                if let Some(reply) = reattach(node, lock_session, &mut queued).await {
                    break reply;
                }
            }
            Err(gone) => {
                queued.cancel(node).await;
                return Err(gone);
            }
        }
    };
    node.lock_waiters
        .unregister(&queued.resource, &queued.owner, queued.waiter_id);
    // Granted, here or after a move to the new term's session.
    if let Reply::Int(_) = reply {
        METRICS
            .lock_wait
            .observe_duration(queued.requested_at.elapsed());
    }
    Ok(reply)
}

/// Waits for a queued request's outcome, or until the Raft term is no longer `term`. The
/// end of the term wins over an outcome ready at the same moment: a grant applied after
/// the term ended is one the state may give back (its session was detached), so it must
/// reach the client only through `reattach`, which confirms it.
async fn queued_outcome(
    node: &Node,
    term: u64,
    outcome: &mut oneshot::Receiver<LockOutcome>,
) -> QueuedEnd {
    // Server metrics change with elections, not with every entry applied.
    let mut metrics = node.group.watch_leader();
    loop {
        let moved_on = metrics.vote().0 != term;
        tokio::select! {
            biased;
            () = std::future::ready(()), if moved_on => return QueuedEnd::TermChanged,
            result = &mut *outcome => return QueuedEnd::Outcome(result),
            changed = metrics.changed() => {
                if changed.is_err() {
                    // The node is shutting down: the outcome's sender goes with it.
                    return QueuedEnd::Outcome(outcome.await);
                }
            }
        }
    }
}

/// The term ended while `queued` waited. If this node leads the next term, the request
/// moves to this connection's session of it, its place and wait unchanged (`None`: it
/// waits on), or is answered with the grant it got meanwhile; otherwise the client is told
/// to send it again.
async fn reattach(
    node: &Arc<Node>,
    lock_session: &mut Option<sessions::SessionId>,
    queued: &mut QueuedLock,
) -> Option<Reply> {
    let try_again = || {
        Reply::error(
            "TRYAGAIN the leader changed while this request was queued; send it again to keep its place",
        )
    };
    // Until the election is decided.
    let mut metrics = node.group.watch_leader();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(node.config.leader_wait_ms);
    let term = loop {
        match metrics.vote() {
            (term, Some(leader)) if term != queued.session.id.term && leader == node.config.id => {
                break term
            }
            (term, Some(_)) if term != queued.session.id.term => return Some(try_again()),
            _ => {}
        }
        match tokio::time::timeout_at(deadline, metrics.changed()).await {
            Ok(Ok(())) => {}
            _ => return Some(try_again()),
        }
    };
    queued.session.id.term = term;
    *lock_session = Some(queued.session.id);
    let argv = vec![
        Bytes::from_static(sessions::REATTACH_OP.as_bytes()),
        queued.resource.clone(),
        queued.owner.clone(),
    ];
    let op = sessions::session_op(&queued.session, argv);
    let reply = node.proposer.propose(op).await;
    match reply.await.unwrap_or_else(|_| write_gone()) {
        Reply::Blocked => None,
        // Its wait ended meanwhile (timed out, reclaimed, cancelled): as the outcome says.
        Reply::Nil => Some(match queued.outcome.try_recv() {
            Ok(LockOutcome::Granted(token)) => Reply::Int(token as i64),
            _ => Reply::Nil,
        }),
        // Its grant, or why the move failed (no leader after all).
        other => Some(other),
    }
}
