//! One client connection: parse every request the socket has delivered, queue their
//! replies in order (writes go to the proposer at once, so a pipeline shares entries),
//! then resolve the queue and send all replies with one write.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::clients::ClientHandle;
use super::Node;
use crate::command::{self, Handler, ReadFn};
use crate::reply::Reply;
use crate::resp::{encode, Protocol, RequestParser};

/// Replies are flushed to the socket whenever this much output has gathered.
const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;
/// Bytes read from the socket per call when no large bulk is on its way.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// A reply the connection owes, in request order.
enum Pending {
    Ready(Reply, Protocol),
    Write(oneshot::Receiver<Reply>, Protocol),
    Read(Vec<Bytes>, ReadFn, Protocol),
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
}

pub async fn serve(node: Arc<Node>, stream: TcpStream, client: ClientHandle) {
    let id = client.lock().expect("client lock").id;
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut session = Session {
        id,
        protocol: Protocol::Resp2,
        authenticated: node.config.requirepass.is_none(),
        client,
    };
    let mut parser = RequestParser::new(node.config.resp.clone());
    let mut input = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut output = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut queue: VecDeque<Pending> = VecDeque::new();
    let max_pending = node.config.max_pending_replies_per_client;
    'conn: loop {
        let mut closing = false;
        let mut need_input = false;
        while queue.len() < max_pending {
            // Redis's tighter limits for clients that have not authenticated yet.
            parser.set_auth_required(!session.authenticated);
            match parser.next_request(&mut input) {
                Ok(Some(argv)) => match dispatch(&node, &mut session, argv).await {
                    (Some(pending), close) => {
                        queue.push_back(pending);
                        if close {
                            closing = true;
                            break;
                        }
                    }
                    (None, _) => {}
                },
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
        if resolve(&node, &mut queue, &mut output, &mut writer)
            .await
            .is_err()
        {
            break 'conn;
        }
        if !output.is_empty() {
            if writer.write_all(&output).await.is_err() {
                break 'conn;
            }
            output.clear();
        }
        if closing {
            break;
        }
        if need_input {
            if input.capacity() - input.len() < READ_CHUNK_BYTES / 4 {
                input.reserve(READ_CHUNK_BYTES);
            }
            match reader.read_buf(&mut input).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    let _ = writer.shutdown().await;
    node.clients.unregister(session.id);
}

/// Turns one request into the reply it is owed.
async fn dispatch(
    node: &Arc<Node>,
    session: &mut Session,
    argv: Vec<Bytes>,
) -> (Option<Pending>, bool) {
    node.stats
        .commands_processed
        .fetch_add(1, Ordering::Relaxed);
    let proto = session.protocol;
    let Some(spec) = command::lookup(&argv[0]) else {
        return (
            Some(Pending::Ready(command::unknown_command(&argv), proto)),
            false,
        );
    };
    {
        let mut info = session.client.lock().expect("client lock");
        info.last_active = Instant::now();
        if info.last_command != spec.name {
            spec.name.clone_into(&mut info.last_command);
        }
    }
    if !spec.arity_ok(argv.len()) {
        return (
            Some(Pending::Ready(Reply::wrong_arity(spec.name), proto)),
            false,
        );
    }
    if !session.authenticated && !matches!(spec.name, "auth" | "hello" | "quit" | "reset") {
        let reply = Reply::error("NOAUTH Authentication required.");
        return (Some(Pending::Ready(reply, proto)), false);
    }
    match spec.handler {
        Handler::Write(_) => {
            let rx = node.proposer.propose(argv).await;
            (Some(Pending::Write(rx, proto)), false)
        }
        Handler::Read(read) => (Some(Pending::Read(argv, read, proto)), false),
        Handler::Server => match super::builtin::run(node, session, spec, &argv) {
            // The reply of HELLO is in the protocol it switched to.
            Step::Reply(reply) => (Some(Pending::Ready(reply, session.protocol)), false),
            Step::ReplyAndClose(reply) => (Some(Pending::Ready(reply, session.protocol)), true),
        },
    }
}

/// Resolves queued replies in order into `output`. A run of reads shares one read barrier:
/// they were all in flight together, so serving them at one point is linearizable.
async fn resolve(
    node: &Arc<Node>,
    queue: &mut VecDeque<Pending>,
    output: &mut BytesMut,
    writer: &mut OwnedWriteHalf,
) -> std::io::Result<()> {
    while let Some(pending) = queue.pop_front() {
        match pending {
            Pending::Ready(reply, proto) => encode(&reply, proto, output),
            Pending::Write(rx, proto) => {
                let reply = rx.await.unwrap_or_else(|_| {
                    Reply::error("ERR the write was not applied: the node is shutting down")
                });
                encode(&reply, proto, output);
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
                            encode(&read(&ks, now, argv), *proto, output);
                        }
                    }
                    Err(reply) => {
                        for (_, _, proto) in &run {
                            encode(&reply, *proto, output);
                        }
                    }
                }
            }
        }
        if output.len() >= OUTPUT_FLUSH_BYTES {
            writer.write_all(output).await?;
            output.clear();
        }
    }
    Ok(())
}
