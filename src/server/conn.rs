//! One client connection: parse every request the socket has delivered, queue their
//! replies in order (writes go to the proposer at once, so a pipeline shares entries),
//! then resolve the queue and send all replies with one write.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::clients::ClientHandle;
use super::waiters::LockOutcome;
use super::Node;
use crate::command::{self, CommandSpec, Handler, ReadFn};
use crate::reply::Reply;
use crate::resp::{encode, Protocol, RequestParser};
use crate::state::locks::LockArgs;

/// Replies are flushed to the socket whenever this much output has gathered.
const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;
/// Bytes read from the socket per call when no large bulk is on its way.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// A reply the connection owes, in request order.
enum Pending {
    Ready(Reply, Protocol),
    Write(oneshot::Receiver<Reply>, Protocol),
    Read(Vec<Bytes>, ReadFn, Protocol),
    /// A LOCK with WAIT: answered by its entry, or, if it joined the queue, by the grant
    /// or timeout that apply reports later.
    LockWait {
        reply: oneshot::Receiver<Reply>,
        outcome: oneshot::Receiver<LockOutcome>,
        resource: Bytes,
        owner: Bytes,
        waiter_id: u64,
        proto: Protocol,
    },
}

/// What the connection does after a request.
pub(super) enum Step {
    Reply(Reply),
    /// Reply, then close the connection (QUIT).
    ReplyAndClose(Reply),
}

/// Per-connection state that commands such as HELLO, AUTH and RESET change.
pub(super) struct Session {
    pub id: u64,
    pub protocol: Protocol,
    pub authenticated: bool,
    pub client: ClientHandle,
    /// LOCK ... WAIT requests of this connection not yet answered.
    pub lock_waits: usize,
}

/// The socket's two halves and the bytes read but not yet parsed.
struct Wire {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    input: BytesMut,
    output: BytesMut,
}

/// The client went away (or its socket failed): stop serving it.
struct Disconnected;

pub async fn serve(node: Arc<Node>, stream: TcpStream, client: ClientHandle) {
    let id = client.lock().expect("client lock").id;
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let mut wire = Wire {
        reader,
        writer,
        input: BytesMut::with_capacity(READ_CHUNK_BYTES),
        output: BytesMut::with_capacity(READ_CHUNK_BYTES),
    };
    let mut session = Session {
        id,
        protocol: Protocol::Resp2,
        authenticated: node.config.requirepass.is_none(),
        client,
        lock_waits: 0,
    };
    let mut parser = RequestParser::new(node.config.resp.clone());
    let mut queue: VecDeque<Pending> = VecDeque::new();
    let max_pending = node.config.max_pending_replies_per_client;
    loop {
        let mut closing = false;
        let mut need_input = false;
        while queue.len() < max_pending {
            // Redis's tighter limits for clients that have not authenticated yet.
            parser.set_auth_required(!session.authenticated);
            match parser.next_request(&mut wire.input) {
                Ok(Some(argv)) => {
                    let (pending, close) = dispatch(&node, &mut session, argv).await;
                    queue.push_back(pending);
                    if close {
                        closing = true;
                        break;
                    }
                }
                Ok(None) => {
                    need_input = true;
                    break;
                }
                Err(err) => {
                    node.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    queue.push_back(Pending::Ready(err.to_reply(), session.protocol));
                    closing = true;
                    break;
                }
            }
        }
        if resolve(&node, &mut session, &mut queue, &mut wire)
            .await
            .is_err()
        {
            break;
        }
        if flush(&mut wire).await.is_err() || closing {
            break;
        }
        if need_input {
            if wire.input.capacity() - wire.input.len() < READ_CHUNK_BYTES / 4 {
                wire.input.reserve(READ_CHUNK_BYTES);
            }
            match wire.reader.read_buf(&mut wire.input).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    // Requests still queued (the client left mid-pipeline) are abandoned; queued lock
    // waits among them leave the queue through a committed entry.
    for pending in queue {
        if let Pending::LockWait {
            resource,
            owner,
            waiter_id,
            ..
        } = pending
        {
            node.lock_waiters.unregister(&resource, &owner, waiter_id);
            cancel_wait(&node, resource, owner).await;
        }
    }
    let _ = wire.writer.shutdown().await;
    node.clients.unregister(session.id);
}

async fn flush(wire: &mut Wire) -> Result<(), Disconnected> {
    if !wire.output.is_empty() {
        wire.writer
            .write_all(&wire.output)
            .await
            .map_err(|_| Disconnected)?;
        wire.output.clear();
    }
    Ok(())
}

/// Turns one request into the reply it is owed; `true` to close after it.
async fn dispatch(node: &Arc<Node>, session: &mut Session, argv: Vec<Bytes>) -> (Pending, bool) {
    node.stats
        .commands_processed
        .fetch_add(1, Ordering::Relaxed);
    let proto = session.protocol;
    let spec = match command::resolve(&argv) {
        Ok(spec) => spec,
        Err(reply) => return (Pending::Ready(reply, proto), false),
    };
    {
        let mut info = session.client.lock().expect("client lock");
        info.last_active = Instant::now();
        if info.last_command != spec.name {
            spec.name.clone_into(&mut info.last_command);
        }
    }
    if !spec.arity_ok(argv.len()) {
        return (Pending::Ready(Reply::wrong_arity(spec.name), proto), false);
    }
    if !session.authenticated && !matches!(spec.name, "auth" | "hello" | "quit" | "reset") {
        let reply = Reply::error("NOAUTH Authentication required.");
        return (Pending::Ready(reply, proto), false);
    }
    match spec.handler {
        Handler::Write(_) if is_lock_request(spec) => {
            (lock_request(node, session, argv).await, false)
        }
        Handler::Write(_) => (
            Pending::Write(node.proposer.propose(argv).await, proto),
            false,
        ),
        Handler::Read(read) => (Pending::Read(argv, read, proto), false),
        Handler::Server => match super::builtin::run(node, session, spec, &argv) {
            // The reply of HELLO is in the protocol it switched to.
            Step::Reply(reply) => (Pending::Ready(reply, session.protocol), false),
            Step::ReplyAndClose(reply) => (Pending::Ready(reply, session.protocol), true),
        },
    }
}

fn is_lock_request(spec: &CommandSpec) -> bool {
    matches!(spec.name, "lock" | "rlock")
}

/// LOCK/RLOCK: a try-lock is an ordinary write; with WAIT the connection first registers
/// for the request's outcome, then proposes it.
async fn lock_request(node: &Arc<Node>, session: &mut Session, argv: Vec<Bytes>) -> Pending {
    let proto = session.protocol;
    let (resource, owner) = match LockArgs::parse(&argv) {
        Ok(args) if args.wait_ms.is_some() => (args.resource.clone(), args.owner.clone()),
        // Try-locks, and requests the state machine will refuse with an error.
        _ => return Pending::Write(node.proposer.propose(argv).await, proto),
    };
    if session.lock_waits >= node.config.max_waits_per_client {
        let reply = Reply::Error(format!(
            "ERR too many LOCK WAIT requests on this connection (max {})",
            node.config.max_waits_per_client
        ));
        return Pending::Ready(reply, proto);
    }
    session.lock_waits += 1;
    let (waiter_id, outcome) = node.lock_waiters.register(&resource, &owner);
    let reply = node.proposer.propose(argv).await;
    Pending::LockWait {
        reply,
        outcome,
        resource,
        owner,
        waiter_id,
        proto,
    }
}

/// Proposes that `owner` leave `resource`'s queue; nobody waits for the answer.
async fn cancel_wait(node: &Arc<Node>, resource: Bytes, owner: Bytes) {
    let argv = vec![Bytes::from_static(b"lockcancel"), resource, owner];
    drop(node.proposer.propose(argv).await);
}

fn write_gone() -> Reply {
    Reply::error("ERR the write was not applied: the node is shutting down")
}

/// Resolves queued replies in order into the output buffer. A run of reads shares one
/// read barrier: they were all in flight together, so serving them at one point is
/// linearizable.
async fn resolve(
    node: &Arc<Node>,
    session: &mut Session,
    queue: &mut VecDeque<Pending>,
    wire: &mut Wire,
) -> Result<(), Disconnected> {
    while let Some(pending) = queue.pop_front() {
        match pending {
            Pending::Ready(reply, proto) => encode(&reply, proto, &mut wire.output),
            Pending::Write(rx, proto) => {
                let reply = rx.await.unwrap_or_else(|_| write_gone());
                encode(&reply, proto, &mut wire.output);
            }
            Pending::Read(argv, read, proto) => {
                let mut run = vec![(argv, read, proto)];
                while let Some(Pending::Read(..)) = queue.front() {
                    if let Some(Pending::Read(a, r, p)) = queue.pop_front() {
                        run.push((a, r, p));
                    }
                }
                match node.read_barrier().await {
                    Ok(()) => {
                        let ks = node.group.state.read().expect("state lock");
                        let now = super::read_time_ms(&ks);
                        for (argv, read, proto) in &run {
                            encode(&read(&ks, now, argv), *proto, &mut wire.output);
                        }
                    }
                    Err(reply) => {
                        for (_, _, proto) in &run {
                            encode(&reply, *proto, &mut wire.output);
                        }
                    }
                }
            }
            Pending::LockWait {
                reply,
                outcome,
                resource,
                owner,
                waiter_id,
                proto,
            } => {
                session.lock_waits -= 1;
                let reply = reply.await.unwrap_or_else(|_| write_gone());
                let reply = if reply == Reply::Blocked {
                    // Replies owed before this one go out now: the client may be waiting
                    // for them while this request blocks.
                    let outcome = match flush(wire).await {
                        Ok(()) => await_outcome(wire, outcome).await,
                        Err(gone) => Err(gone),
                    };
                    match outcome {
                        Ok(reply) => reply,
                        Err(gone) => {
                            node.lock_waiters.unregister(&resource, &owner, waiter_id);
                            cancel_wait(node, resource, owner).await;
                            return Err(gone);
                        }
                    }
                } else {
                    node.lock_waiters.unregister(&resource, &owner, waiter_id);
                    reply
                };
                encode(&reply, proto, &mut wire.output);
            }
        }
        if wire.output.len() >= OUTPUT_FLUSH_BYTES {
            flush(wire).await?;
        }
    }
    Ok(())
}

/// Waits for a queued lock request's grant or timeout while watching the socket, so that
/// a client that leaves while waiting is noticed (and leaves the queue).
async fn await_outcome(
    wire: &mut Wire,
    mut outcome: oneshot::Receiver<LockOutcome>,
) -> Result<Reply, Disconnected> {
    // Requests pipelined behind the blocked one are read but not yet parsed; past this
    // much the socket is left unread until the wait ends.
    let limit = READ_CHUNK_BYTES * 64;
    loop {
        let room = wire.input.len() < limit;
        tokio::select! {
            result = &mut outcome => {
                return Ok(match result {
                    Ok(LockOutcome::Granted(token)) => Reply::Int(token as i64),
                    Ok(LockOutcome::TimedOut) => Reply::Nil,
                    Err(_) => write_gone(),
                });
            }
            read = wire.reader.read_buf(&mut wire.input), if room => {
                if matches!(read, Ok(0) | Err(_)) {
                    return Err(Disconnected);
                }
            }
        }
    }
}
