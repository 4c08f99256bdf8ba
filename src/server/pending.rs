//! The ordered pipeline of replies a connection owes: requests are dispatched as they
//! are parsed (writes go to the proposer at once, so a pipeline shares entries), and
//! their replies are resolved here in request order into the output buffer.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::blocking_lock::LockWait;
use super::blocking_pop::ListPop;
use super::multi::{self, Slot};
use super::proposer::write_gone;
use super::wire::{flush, wait_watching_socket, Disconnected, Wire, OUTPUT_FLUSH_BYTES};
use super::Node;
use crate::command::{self, ReadFn};
use crate::metrics::METRICS;
use crate::reply::Reply;
use crate::resp::{encode, Protocol};
use crate::state::session as sessions;

/// A reply the connection owes, in request order.
pub(super) enum Pending {
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
    LockWait(LockWait, Protocol),
    /// A BLPOP, BRPOP, BLMOVE or BRPOPLPUSH.
    ListPop(ListPop, Protocol),
}

/// Whether `pending` is answered by an entry still to be applied (a write, a lock request,
/// an EXEC, ...): a read behind it then goes through the log (see `dispatch`).
pub(super) fn awaits_an_entry(pending: &Pending) -> bool {
    !matches!(pending, Pending::Read(..) | Pending::Ready(..))
}

/// Whether `argv` is a write: proposed while reads sent before it still wait for their
/// barrier, they would see it (they run when resolved), so the connection serves them
/// first.
pub(super) fn is_write(argv: &[Bytes]) -> bool {
    command::lookup(&argv[0]).is_some_and(|spec| spec.is_write())
}

/// Encodes `reply` for the client, counting it by its code if it is an error.
fn send(reply: &Reply, proto: Protocol, out: &mut bytes::BytesMut) {
    if let Reply::Error(text) = reply {
        METRICS.error(text);
    }
    encode(reply, proto, out);
}

/// Resolves queued replies in order into the output buffer, telling `resolved` how many
/// requests each step answered (for SLOWLOG). A run of reads shares one read barrier:
/// they were all in flight together, so serving them at one point is linearizable.
pub(super) async fn resolve(
    node: &Arc<Node>,
    queue: &mut VecDeque<Pending>,
    wire: &mut Wire,
    lock_session: &mut Option<sessions::SessionId>,
    resolved: &mut impl FnMut(usize),
) -> Result<(), Disconnected> {
    while let Some(pending) = queue.pop_front() {
        let mut answered = 1;
        match pending {
            Pending::Ready(reply, proto) => send(&reply, proto, &mut wire.output),
            Pending::Many(replies, proto) => {
                for reply in &replies {
                    send(reply, proto, &mut wire.output);
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
                send(&reply, proto, &mut wire.output);
            }
            Pending::Exec {
                reply,
                slots,
                proto,
            } => {
                let reply = reply.await.unwrap_or_else(|_| write_gone());
                send(&multi::merge(node, reply, slots), proto, &mut wire.output);
            }
            Pending::Write(rx, proto) => {
                let reply = rx.await.unwrap_or_else(|_| write_gone());
                send(&reply, proto, &mut wire.output);
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
                send(&reply, proto, &mut wire.output);
            }
            Pending::Read(argv, read, proto) => {
                let mut run = vec![(argv, read, proto)];
                while let Some(Pending::Read(..)) = queue.front() {
                    if let Some(Pending::Read(a, r, p)) = queue.pop_front() {
                        run.push((a, r, p));
                    }
                }
                answered = run.len();
                match node.read_barrier().await {
                    Ok(()) => {
                        let ks = node.group.state();
                        let now = node.read_time_ms(&ks);
                        for (argv, read, proto) in &run {
                            send(&read(&ks, now, argv), *proto, &mut wire.output);
                        }
                    }
                    Err(reply) => {
                        for (_, _, proto) in &run {
                            send(&reply, *proto, &mut wire.output);
                        }
                    }
                }
            }
            Pending::LockWait(wait, proto) => {
                let reply = wait.answer(node, wire, lock_session).await?;
                send(&reply, proto, &mut wire.output);
            }
            Pending::ListPop(pop, proto) => {
                let reply = pop.answer(node, wire).await?;
                send(&reply, proto, &mut wire.output);
            }
        }
        resolved(answered);
        if wire.output.len() >= OUTPUT_FLUSH_BYTES {
            flush(wire).await?;
        }
    }
    Ok(())
}
