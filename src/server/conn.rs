//! One client connection: parse every request the socket has delivered, queue their
//! replies in order (writes go to the proposer at once, so a pipeline shares entries),
//! then resolve the queue and send all replies with one write.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::clients::ClientHandle;
use super::forward::Upstream;
use super::list_waiters::ListWait;
use super::multi::{self, Multi, Slot};
use super::subscribe::{self, Subscriptions};
use super::waiters::LockOutcome;
use super::{Node, Route};
use crate::command::{self, CommandSpec, Handler, ReadFn};
use crate::reply::Reply;
use crate::resp::{encode, Protocol, RequestParser};
use crate::state::lists::BlockingPop;
use crate::state::locks::LockArgs;
use crate::state::session as sessions;
use crate::state::txn::{self, Transaction, Watch};

/// Replies are flushed to the socket whenever this much output has gathered.
const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;
/// Bytes read from the socket per call when no large bulk is on its way.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// A reply the connection owes, in request order.
enum Pending {
    Ready(Reply, Protocol),
    /// Several replies to one request (SUBSCRIBE a b: one per channel).
    Many(Vec<Reply>, Protocol),
    /// PUBLISH: applied (or relayed), then answered with this node's receiver count.
    Publish {
        reply: oneshot::Receiver<Reply>,
        channel: Bytes,
        sharded: bool,
        proto: Protocol,
    },
    /// EXEC: the TXN op's reply, merged with what the node answered itself.
    Exec {
        reply: oneshot::Receiver<Reply>,
        slots: Vec<Slot>,
        proto: Protocol,
    },
    Write(oneshot::Receiver<Reply>, Protocol),
    Read(Vec<Bytes>, ReadFn, Protocol),
    /// Relayed to the leader; may block there (LOCK ... WAIT), so the socket is watched
    /// while it is awaited.
    Relayed(oneshot::Receiver<Reply>, Protocol),
    /// A LOCK with WAIT: answered by its entry, or, if it joined the queue, by the grant
    /// or timeout that apply reports later.
    LockWait {
        reply: oneshot::Receiver<Reply>,
        outcome: oneshot::Receiver<LockOutcome>,
        resource: Bytes,
        owner: Bytes,
        waiter_id: u64,
        /// The session the request was proposed in.
        session: sessions::Session,
        proto: Protocol,
    },
    /// A BLPOP, BRPOP, BLMOVE or BRPOPLPUSH: `reply` answers its first pop; if that finds
    /// nothing, the connection waits on the node's line for its keys and pops again.
    /// `None`: it waits its turn behind the clients already in line before it pops.
    ListPop {
        reply: Option<oneshot::Receiver<Reply>>,
        argv: Vec<Bytes>,
        wait: ListWait,
        /// `None`: no limit.
        deadline: Option<tokio::time::Instant>,
        proto: Protocol,
    },
}

/// What the connection does after queueing a request.
enum Next {
    /// Parse the next request.
    Parse,
    /// Answer everything queued first: nothing behind a blocking request runs before it
    /// is answered, as in Redis.
    Resolve,
    /// Answer everything queued, then close (QUIT, a protocol error).
    Close,
}

/// What the connection does after a request.
pub(super) enum Step {
    Reply(Reply),
    /// Reply, then close the connection (QUIT).
    ReplyAndClose(Reply),
    /// Answered later by a task (a membership change); awaited in order like a relay.
    Later(oneshot::Receiver<Reply>),
}

/// Per-connection state that commands such as HELLO, AUTH and RESET change.
pub(super) struct Session {
    pub id: u64,
    pub protocol: Protocol,
    pub authenticated: bool,
    pub client: ClientHandle,
    /// This client's relay to the leader, when this node does not lead.
    upstream: Option<Upstream>,
    /// Commands queued since MULTI.
    pub multi: Option<Multi>,
    /// Keys WATCHed since the last EXEC, DISCARD or UNWATCH.
    pub watches: Vec<Watch>,
    pub subs: Subscriptions,
    /// The session this node last named for this connection's lock commands, while it
    /// led (`state::session`): closed in the state when the connection ends.
    lock_session: Option<sessions::SessionId>,
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
        upstream: None,
        multi: None,
        watches: Vec::new(),
        subs: Subscriptions::default(),
        lock_session: None,
    };
    let mut parser = RequestParser::new(node.config.resp.clone());
    let mut queue: VecDeque<Pending> = VecDeque::new();
    // A request taken off the wire but not dispatched yet (see `write_after_read`).
    let mut held: Option<Vec<Bytes>> = None;
    let max_pending = node.config.max_pending_replies_per_client;
    'serve: loop {
        let mut closing = false;
        // The bytes left unparsed when the parser asked for more: waiting for a relayed or
        // blocked reply reads the socket too, so the next read is needed only if nothing
        // arrived meanwhile.
        let mut need_input: Option<usize> = None;
        while queue.len() < max_pending {
            // Redis's tighter limits for clients that have not authenticated yet.
            parser.set_auth_required(!session.authenticated);
            let request = match held.take() {
                Some(argv) => Ok(Some(argv)),
                None => parser.next_request(&mut wire.input),
            };
            match request {
                Ok(Some(argv)) => {
                    if write_after_read(&queue, &argv) {
                        // The reads queued so far must not see this write: serve them
                        // first, then propose it.
                        held = Some(argv);
                        break;
                    }
                    // WATCH reads revisions once everything pipelined before it is done,
                    // so it sees that client's own writes.
                    if !queue.is_empty()
                        && argv[0].eq_ignore_ascii_case(b"watch")
                        && resolve(&node, &mut queue, &mut wire, &mut session.lock_session)
                            .await
                            .is_err()
                    {
                        break 'serve;
                    }
                    let behind_write = queue.iter().any(awaits_an_entry);
                    let (pending, next) = dispatch(&node, &mut session, argv, behind_write).await;
                    queue.push_back(pending);
                    match next {
                        Next::Parse => {}
                        Next::Resolve => break,
                        Next::Close => {
                            closing = true;
                            break;
                        }
                    }
                }
                Ok(None) => {
                    need_input = Some(wire.input.len());
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
        if resolve(&node, &mut queue, &mut wire, &mut session.lock_session)
            .await
            .is_err()
        {
            break;
        }
        if flush(&mut wire).await.is_err() || closing {
            break;
        }
        if need_input == Some(wire.input.len()) {
            if wire.input.capacity() - wire.input.len() < READ_CHUNK_BYTES / 4 {
                wire.input.reserve(READ_CHUNK_BYTES);
            }
            match read_or_deliver(&mut wire, &mut session.subs, session.protocol).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    subscribe::leave_all(&node, session.id, &mut session.subs);
    // Requests still queued (the client left mid-pipeline) are abandoned; queued lock
    // waits among them leave the queue through a committed entry.
    for pending in queue {
        match pending {
            Pending::LockWait {
                resource,
                owner,
                waiter_id,
                session: lock_session,
                ..
            } => {
                node.lock_waiters.unregister(&resource, &owner, waiter_id);
                cancel_wait(&node, &lock_session, resource, owner).await;
            }
            Pending::ListPop { wait, .. } => leave_list_wait(&node, wait.id),
            _ => {}
        }
    }
    // Its holds stay (their leases end them), detached: LOCKINFO shows it. (Once the
    // term has moved on, the new leader's first entry has closed the session already.)
    if let Some(id) = session.lock_session {
        if current_term(&node) == id.term {
            drop(node.proposer.propose(sessions::detach_op(id)).await);
        }
    }
    let _ = wire.writer.shutdown().await;
    node.clients.unregister(session.id);
}

/// Whether `pending` is answered by an entry still to be applied (a write, a lock request,
/// an EXEC, ...): a read behind it then goes through the log (see `dispatch`).
fn awaits_an_entry(pending: &Pending) -> bool {
    !matches!(pending, Pending::Read(..) | Pending::Ready(..))
}

/// Whether `argv` is a write that would be proposed while reads sent before it still wait
/// for their barrier: they run when resolved, so they would see it.
fn write_after_read(queue: &VecDeque<Pending>, argv: &[Bytes]) -> bool {
    queue.iter().any(|p| matches!(p, Pending::Read(..)))
        && command::lookup(&argv[0]).is_some_and(|spec| spec.is_write())
}

/// Waits for the client's next bytes; meanwhile a subscriber's messages are sent as they
/// come. A subscriber that fell past its output limit is disconnected (an error result).
async fn read_or_deliver(
    wire: &mut Wire,
    subs: &mut Subscriptions,
    proto: Protocol,
) -> std::io::Result<usize> {
    let Some(inbox) = subs.inbox.as_mut() else {
        return wire.reader.read_buf(&mut wire.input).await;
    };
    let gone = || std::io::Error::from(std::io::ErrorKind::ConnectionAborted);
    let overflowed = inbox.overflowed.clone();
    loop {
        tokio::select! {
            read = wire.reader.read_buf(&mut wire.input) => return read,
            message = inbox.recv() => {
                let Some(message) = message else { return Err(gone()) };
                // Pushes are arrays in RESP2 and push frames in RESP3.
                encode(&message, proto, &mut wire.output);
                while wire.output.len() < OUTPUT_FLUSH_BYTES {
                    let Some(message) = inbox.try_recv() else { break };
                    encode(&message, proto, &mut wire.output);
                }
                flush(wire).await.map_err(|_| gone())?;
            }
            () = overflowed.notified() => return Err(gone()),
        }
    }
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

/// Turns one request into the reply it is owed, and says what to do next.
/// `behind_write`: a request pipelined before this one awaits its entry.
async fn dispatch(
    node: &Arc<Node>,
    session: &mut Session,
    argv: Vec<Bytes>,
    behind_write: bool,
) -> (Pending, Next) {
    node.stats
        .commands_processed
        .fetch_add(1, Ordering::Relaxed);
    let proto = session.protocol;
    let spec = match command::resolve(&argv) {
        Ok(spec) => spec,
        Err(reply) => {
            doom_transaction(session);
            return (Pending::Ready(reply, proto), Next::Parse);
        }
    };
    {
        let mut info = session.client.lock().expect("client lock");
        info.last_active = Instant::now();
        if info.last_command != spec.name {
            spec.name.clone_into(&mut info.last_command);
        }
    }
    if !spec.arity_ok(argv.len()) {
        doom_transaction(session);
        return (
            Pending::Ready(Reply::wrong_arity(spec.name), proto),
            Next::Parse,
        );
    }
    if !session.authenticated && !matches!(spec.name, "auth" | "hello" | "quit" | "reset") {
        let reply = Reply::error("NOAUTH Authentication required.");
        return (Pending::Ready(reply, proto), Next::Parse);
    }
    if proto == Protocol::Resp2 && session.subs.active() && !allowed_when_subscribed(spec.name) {
        let reply = Reply::Error(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        ));
        return (Pending::Ready(reply, proto), Next::Parse);
    }
    if let Some(queued) = session.multi.as_mut() {
        if !matches!(
            spec.name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        ) {
            return (
                Pending::Ready(multi::queue(queued, spec, argv), proto),
                Next::Parse,
            );
        }
    }
    match spec.name {
        "multi" => {
            let reply = if session.multi.is_some() {
                Reply::error("ERR MULTI calls can not be nested")
            } else {
                session.multi = Some(Multi::default());
                Reply::Ok
            };
            return (Pending::Ready(reply, proto), Next::Parse);
        }
        "discard" => {
            let reply = if session.multi.take().is_some() {
                session.watches.clear();
                Reply::Ok
            } else {
                Reply::error("ERR DISCARD without MULTI")
            };
            return (Pending::Ready(reply, proto), Next::Parse);
        }
        "unwatch" => {
            session.watches.clear();
            return (Pending::Ready(Reply::Ok, proto), Next::Parse);
        }
        "watch" => {
            let reply = watch(node, session, &argv[1..]).await;
            return (Pending::Ready(reply, proto), Next::Parse);
        }
        "exec" => return (exec(node, session).await, Next::Parse),
        name if multi::is_subscription(name) => {
            let replies = subscribe::run(node, session.id, &mut session.subs, name, &argv[1..]);
            return (Pending::Many(replies, proto), Next::Parse);
        }
        "publish" | "spublish" => {
            let channel = argv[1].clone();
            let sharded = spec.name == "spublish";
            let pending = match data_reply(node, session, argv).await {
                Ok(reply) => Pending::Publish {
                    reply,
                    channel,
                    sharded,
                    proto,
                },
                Err(reply) => Pending::Ready(reply, proto),
            };
            return (pending, Next::Parse);
        }
        _ => {}
    }
    if matches!(spec.handler, Handler::Read(_) | Handler::Write(_)) {
        match node.route().await {
            Ok(Route::Local) => {}
            Ok(Route::Leader(leader)) => {
                return (relay(node, session, leader, argv).await, Next::Parse)
            }
            Err(reply) => return (Pending::Ready(reply, proto), Next::Parse),
        }
    }
    match spec.handler {
        Handler::Write(_) if is_lock_request(spec) => lock_request(node, session, argv).await,
        Handler::Write(_) if spec.name == "renew" => {
            let (_, op) = in_session(node, session, argv);
            (
                Pending::Write(node.proposer.propose(op).await, proto),
                Next::Parse,
            )
        }
        Handler::Write(_) => match BlockingPop::parse(&argv) {
            Some(pop) => (
                blocking_pop_request(node, argv, pop, proto).await,
                Next::Resolve,
            ),
            None => (
                Pending::Write(node.proposer.propose(argv).await, proto),
                Next::Parse,
            ),
        },
        // A read pipelined behind a write goes into the log with it, as an op of the same
        // or a later entry: applied in order, it sees exactly what was written before it,
        // needs no read barrier of its own, and the writes behind it need not wait for
        // one (SET, GET, SET, GET, ... batches as writes alone do).
        Handler::Read(_) if behind_write => (
            Pending::Write(node.proposer.propose(argv).await, proto),
            Next::Parse,
        ),
        Handler::Read(read) => (Pending::Read(argv, read, proto), Next::Parse),
        Handler::Server => match super::builtin::run(node, session, spec, &argv) {
            // The reply of HELLO is in the protocol it switched to.
            Step::Reply(reply) => (Pending::Ready(reply, session.protocol), Next::Parse),
            Step::ReplyAndClose(reply) => (Pending::Ready(reply, session.protocol), Next::Close),
            Step::Later(reply) => (Pending::Relayed(reply, session.protocol), Next::Parse),
        },
    }
}

/// A refused command after MULTI dooms the EXEC (EXECABORT), as in Redis.
fn doom_transaction(session: &mut Session) {
    if let Some(multi) = session.multi.as_mut() {
        multi.failed = true;
    }
}

/// What RESP2's subscribe mode allows.
fn allowed_when_subscribed(name: &str) -> bool {
    multi::is_subscription(name) || matches!(name, "ping" | "quit" | "reset")
}

/// Proposes a write that never blocks here, or relays it to the leader.
async fn data_reply(
    node: &Arc<Node>,
    session: &mut Session,
    argv: Vec<Bytes>,
) -> Result<oneshot::Receiver<Reply>, Reply> {
    match node.route().await? {
        Route::Local => Ok(node.proposer.propose(argv).await),
        Route::Leader(leader) => relay_rx(node, session, leader, argv).await,
    }
}

/// WATCH: reads the keys' revisions after a read barrier (on the leader, through the
/// relay on a follower) and remembers them for EXEC.
async fn watch(node: &Arc<Node>, session: &mut Session, keys: &[Bytes]) -> Reply {
    if session.multi.is_some() {
        return Reply::error("ERR WATCH inside MULTI is not allowed");
    }
    let mut argv = vec![Bytes::from_static(b"revisions")];
    argv.extend(keys.iter().cloned());
    let read = match node.route().await {
        Ok(Route::Local) => match node.read_barrier().await {
            Ok(()) => {
                let ks = node.group.state.read().expect("state lock");
                txn::revisions(&ks, node.read_time_ms(&ks), &argv)
            }
            Err(reply) => reply,
        },
        Ok(Route::Leader(leader)) => match relay_rx(node, session, leader, argv).await {
            Ok(rx) => rx.await.unwrap_or_else(|_| write_gone()),
            Err(reply) => reply,
        },
        Err(reply) => reply,
    };
    multi::add_watches(&mut session.watches, keys, read)
}

/// EXEC: EXECABORT if a queued command was refused; otherwise the data commands go as
/// one TXN op with the watched revisions, and the node answers its own commands now.
async fn exec(node: &Arc<Node>, session: &mut Session) -> Pending {
    let proto = session.protocol;
    let Some(queued) = session.multi.take() else {
        return Pending::Ready(Reply::error("ERR EXEC without MULTI"), proto);
    };
    let watches = std::mem::take(&mut session.watches);
    if queued.failed {
        return Pending::Ready(
            Reply::error("EXECABORT Transaction discarded because of previous errors."),
            proto,
        );
    }
    let mut slots = Vec::with_capacity(queued.commands.len());
    let mut commands = Vec::new();
    for argv in queued.commands {
        let Some(spec) = command::lookup(&argv[0]) else {
            slots.push(Slot::Local(command::unknown_command(&argv)));
            continue;
        };
        match spec.handler {
            Handler::Server => {
                let reply = match super::builtin::run(node, session, spec, &argv) {
                    Step::Reply(reply) | Step::ReplyAndClose(reply) => reply,
                    // Membership changes and discovery run at EXEC in their place, like
                    // every command the node serves itself (not within the entry).
                    Step::Later(rx) => rx.await.unwrap_or_else(|_| write_gone()),
                };
                slots.push(Slot::Local(reply));
            }
            _ if matches!(spec.name, "publish" | "spublish") => {
                slots.push(Slot::Publish {
                    index: commands.len(),
                    channel: argv[1].clone(),
                    sharded: spec.name == "spublish",
                });
                commands.push(argv);
            }
            _ => {
                slots.push(Slot::Data(commands.len()));
                commands.push(argv);
            }
        }
    }
    if commands.is_empty() && watches.is_empty() {
        return Pending::Ready(multi::merge(node, Reply::Array(vec![]), slots), proto);
    }
    let op = Transaction { watches, commands }.encode();
    match data_reply(node, session, op).await {
        Ok(reply) => Pending::Exec {
            reply,
            slots,
            proto,
        },
        Err(reply) => Pending::Ready(reply, proto),
    }
}

/// Sends a data command to the leader on this client's relay, connecting it first.
async fn relay(
    node: &Arc<Node>,
    session: &mut Session,
    leader: SocketAddr,
    argv: Vec<Bytes>,
) -> Pending {
    let proto = session.protocol;
    match relay_rx(node, session, leader, argv).await {
        Ok(rx) => Pending::Relayed(rx, proto),
        Err(reply) => Pending::Ready(reply, proto),
    }
}

/// Queues a request on this client's relay to the leader, connecting it first.
async fn relay_rx(
    node: &Arc<Node>,
    session: &mut Session,
    leader: SocketAddr,
    argv: Vec<Bytes>,
) -> Result<oneshot::Receiver<Reply>, Reply> {
    let stale = session
        .upstream
        .as_ref()
        .is_none_or(|up| up.leader != leader || up.is_closed());
    if stale {
        let metrics = Some(node.group.raft.server_metrics());
        let keepalive = Some(node.config.keepalive());
        let password = node.config.requirepass.as_deref();
        match Upstream::connect(leader, password, metrics, keepalive).await {
            Ok(up) => session.upstream = Some(up),
            Err(reply) => {
                session.upstream = None;
                return Err(reply);
            }
        }
    }
    let upstream = session.upstream.as_ref().expect("connected above");
    Ok(upstream.send(argv).await)
}

fn is_lock_request(spec: &CommandSpec) -> bool {
    matches!(spec.name, "lock" | "rlock")
}

/// A lock command (LOCK, RLOCK, RENEW) as this node, the leader, proposes it: in this
/// connection's session of the current term, which the command's hold or wait moves to
/// (`state::session`).
fn in_session(
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
fn current_term(node: &Node) -> u64 {
    node.group
        .raft
        .server_metrics()
        .borrow()
        .vote
        .leader_id()
        .term
}

/// LOCK/RLOCK: a try-lock is an ordinary write; with WAIT the connection first registers
/// for the request's outcome, then proposes it.
/// As in Redis, nothing the client pipelined behind a request that may block runs before
/// it is answered: its critical section must not start before its grant.
async fn lock_request(
    node: &Arc<Node>,
    session: &mut Session,
    argv: Vec<Bytes>,
) -> (Pending, Next) {
    let proto = session.protocol;
    let waits = match LockArgs::parse(&argv) {
        Ok(args) if args.wait_ms.is_some() => Some((args.resource.clone(), args.owner.clone())),
        // Try-locks, and requests the state machine will refuse with an error.
        _ => None,
    };
    let (lock_session, op) = in_session(node, session, argv);
    let Some((resource, owner)) = waits else {
        return (
            Pending::Write(node.proposer.propose(op).await, proto),
            Next::Parse,
        );
    };
    let (waiter_id, outcome) = node.lock_waiters.register(&resource, &owner);
    let reply = node.proposer.propose(op).await;
    let pending = Pending::LockWait {
        reply,
        outcome,
        resource,
        owner,
        waiter_id,
        session: lock_session,
        proto,
    };
    (pending, Next::Resolve)
}

/// A blocking pop joins the lines of its keys before its first pop is proposed, so a
/// push applied while that pop is in flight is not missed.
async fn blocking_pop_request(
    node: &Arc<Node>,
    argv: Vec<Bytes>,
    pop: BlockingPop,
    proto: Protocol,
) -> Pending {
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
        let ks = node.group.state.read().expect("state lock");
        let now = node.read_time_ms(&ks);
        pop.keys.iter().any(|key| {
            !ahead.contains(key) && ks.get(key, now).is_some_and(|e| e.as_list().is_ok())
        })
    };
    let reply = match pop_now {
        true => Some(node.proposer.propose(argv.clone()).await),
        false => None,
    };
    Pending::ListPop {
        reply,
        argv,
        wait,
        deadline,
        proto,
    }
}

/// Takes a blocking pop out of its lines. A wake it absorbed is passed on: each of its
/// keys that holds a list now wakes that key's next waiter (see `ListWaiters::unregister`).
fn leave_list_wait(node: &Node, id: u64) {
    let keys = node.list_waiters.unregister(id);
    if keys.is_empty() {
        return;
    }
    let ready: Vec<Bytes> = {
        let ks = node.group.state.read().expect("state lock");
        let now = node.read_time_ms(&ks);
        keys.into_iter()
            .filter(|key| ks.get(key, now).is_some_and(|e| e.as_list().is_ok()))
            .collect()
    };
    for key in ready {
        node.list_waiters.signal(&key);
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
    let mut metrics = node.group.raft.server_metrics();
    loop {
        let moved_on = metrics.borrow_and_update().vote.leader_id().term != term;
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
    let mut metrics = node.group.raft.server_metrics();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(node.config.leader_wait_ms);
    let term = loop {
        {
            let m = metrics.borrow_and_update();
            let term = m.vote.leader_id().term;
            match m.current_leader {
                Some(leader) if term != queued.session.id.term && leader == node.config.id => {
                    break term
                }
                Some(_) if term != queued.session.id.term => return Some(try_again()),
                _ => {}
            }
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

fn write_gone() -> Reply {
    Reply::error("ERR the write was not applied: the node is shutting down")
}

/// Resolves queued replies in order into the output buffer. A run of reads shares one
/// read barrier: they were all in flight together, so serving them at one point is
/// linearizable.
async fn resolve(
    node: &Arc<Node>,
    queue: &mut VecDeque<Pending>,
    wire: &mut Wire,
    lock_session: &mut Option<sessions::SessionId>,
) -> Result<(), Disconnected> {
    while let Some(pending) = queue.pop_front() {
        match pending {
            Pending::Ready(reply, proto) => encode(&reply, proto, &mut wire.output),
            Pending::Many(replies, proto) => {
                for reply in &replies {
                    encode(reply, proto, &mut wire.output);
                }
            }
            Pending::Publish {
                reply,
                channel,
                sharded,
                proto,
            } => {
                let reply = match reply.await.unwrap_or_else(|_| write_gone()) {
                    Reply::Int(_) => Reply::Int(node.pubsub.receivers(&channel, sharded) as i64),
                    other => other,
                };
                encode(&reply, proto, &mut wire.output);
            }
            Pending::Exec {
                reply,
                slots,
                proto,
            } => {
                let reply = reply.await.unwrap_or_else(|_| write_gone());
                encode(&multi::merge(node, reply, slots), proto, &mut wire.output);
            }
            Pending::Write(rx, proto) => {
                let reply = rx.await.unwrap_or_else(|_| write_gone());
                encode(&reply, proto, &mut wire.output);
            }
            Pending::Relayed(mut rx, proto) => {
                let reply = match rx.try_recv() {
                    Ok(reply) => reply,
                    Err(oneshot::error::TryRecvError::Closed) => write_gone(),
                    Err(oneshot::error::TryRecvError::Empty) => {
                        flush(wire).await?;
                        // A client that leaves drops its relay: the leader sees it leave.
                        wait_watching_socket(wire, rx)
                            .await?
                            .unwrap_or_else(|_| write_gone())
                    }
                };
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
                        let now = node.read_time_ms(&ks);
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
                session,
                proto,
            } => {
                let reply = reply.await.unwrap_or_else(|_| write_gone());
                let reply = if reply == Reply::Blocked {
                    let queued = QueuedLock {
                        resource,
                        owner,
                        waiter_id,
                        session,
                        outcome,
                    };
                    // Replies owed before this one go out now: the client may be waiting
                    // for them while this request blocks.
                    match flush(wire).await {
                        Ok(()) => await_queued(node, wire, lock_session, queued).await?,
                        Err(gone) => {
                            queued.cancel(node).await;
                            return Err(gone);
                        }
                    }
                } else {
                    node.lock_waiters.unregister(&resource, &owner, waiter_id);
                    reply
                };
                encode(&reply, proto, &mut wire.output);
            }
            Pending::ListPop {
                reply,
                argv,
                wait,
                deadline,
                proto,
            } => {
                let outcome = serve_blocking_pop(node, wire, argv, reply, &wait, deadline).await;
                leave_list_wait(node, wait.id);
                encode(&outcome?, proto, &mut wire.output);
            }
        }
        if wire.output.len() >= OUTPUT_FLUSH_BYTES {
            flush(wire).await?;
        }
    }
    Ok(())
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
) -> Result<Reply, Disconnected> {
    // What the command answers when its time is up.
    let timed_out = if command::lookup(&argv[0])
        .is_some_and(|spec| matches!(spec.name, "blmove" | "brpoplpush"))
    {
        Reply::Nil
    } else {
        Reply::NilArray
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

/// Waits for `done` while watching the socket, so that a client that leaves while its
/// request is blocked is noticed.
async fn wait_watching_socket<T>(
    wire: &mut Wire,
    done: impl Future<Output = T>,
) -> Result<T, Disconnected> {
    // Requests pipelined behind the blocked one are read but not yet parsed; past this
    // much the socket is left unread until the wait ends.
    let limit = READ_CHUNK_BYTES * 64;
    tokio::pin!(done);
    loop {
        let room = wire.input.len() < limit;
        tokio::select! {
            output = &mut done => return Ok(output),
            read = wire.reader.read_buf(&mut wire.input), if room => {
                if matches!(read, Ok(0) | Err(_)) {
                    return Err(Disconnected);
                }
            }
        }
    }
}
