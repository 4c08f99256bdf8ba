//! WATCH and EXEC on the connection. After MULTI the pre-check chain queues commands in
//! the session (`Multi`); WATCH reads the keys' revisions through a read barrier; EXEC
//! sends the queued data commands, with those revisions, as one `TXN` op (see
//! `crate::state::txn`), so they apply atomically in one entry on every node. Commands the
//! node serves itself (PING, ECHO, ...) are answered by the node at EXEC, through their
//! table rows, and merged into the reply in their place.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::proposer::write_gone;
use super::routing::{data_reply_as, relay_rx};
use super::{Node, Route, Session, Step};
use crate::command::{self, Kind};
use crate::reply::Reply;
use crate::state::txn::{self, Transaction, Watch};

/// Where each queued command's reply comes from at EXEC.
pub(super) enum Slot {
    /// The n-th reply of the TXN op.
    Data(usize),
    /// The n-th reply of the TXN op, a PUBLISH: answered with this node's receivers.
    Publish {
        index: usize,
        channel: Bytes,
        sharded: bool,
    },
    /// Answered by the node at EXEC.
    Local(Reply),
}

/// Adds WATCH's read (`REVISIONS`' reply) to the watched keys; a key already watched
/// keeps its first revision, as Redis keeps its first WATCH.
fn add_watches(watches: &mut Vec<Watch>, keys: &[Bytes], read: Reply) -> Reply {
    let Reply::Array(items) = read else {
        return match read {
            Reply::Error(_) => read,
            _ => Reply::error("ERR unexpected reply to WATCH's read"),
        };
    };
    let numbers: Option<Vec<u64>> = items
        .iter()
        .map(|item| match item {
            Reply::Int(n) => u64::try_from(*n).ok(),
            _ => None,
        })
        .collect();
    let Some((&seen_at, revisions)) = numbers.as_deref().and_then(<[u64]>::split_first) else {
        return Reply::error("ERR unexpected reply to WATCH's read");
    };
    if revisions.len() != keys.len() {
        return Reply::error("ERR unexpected reply to WATCH's read");
    }
    for (key, &revision) in keys.iter().zip(revisions) {
        if !watches.iter().any(|w| w.key == *key) {
            watches.push(Watch {
                key: Bytes::copy_from_slice(key),
                revision,
                seen_at,
            });
        }
    }
    Reply::Ok
}

/// What EXEC did.
pub(super) enum Executed {
    /// Answered at once: EXECABORT, no MULTI, only commands the node serves, no leader.
    Now(Reply),
    /// Proposed as a TXN op; `merge` makes the reply from its reply and `slots`.
    Proposed {
        reply: oneshot::Receiver<Reply>,
        slots: Vec<Slot>,
    },
}

/// WATCH: reads the keys' revisions after a read barrier (on the leader, through the
/// relay on a follower) and remembers them for EXEC.
pub(super) async fn watch(node: &Arc<Node>, session: &mut Session, keys: &[Bytes]) -> Reply {
    if session.multi.is_some() {
        return Reply::error("ERR WATCH inside MULTI is not allowed");
    }
    let mut argv = vec![Bytes::from_static(b"revisions")];
    argv.extend(keys.iter().cloned());
    let read = match node.route().await {
        Ok(Route::Local) => match node.read_barrier().await {
            Ok(()) => {
                let ks = node.group.state();
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
    add_watches(&mut session.watches, keys, read)
}

/// EXEC: EXECABORT if a queued command was refused; otherwise the data commands go as
/// one TXN op with the watched revisions, and the node answers its own commands now.
pub(super) async fn exec(node: &Arc<Node>, session: &mut Session) -> Executed {
    let Some(queued) = session.multi.take() else {
        return Executed::Now(Reply::error("ERR EXEC without MULTI"));
    };
    let watches = std::mem::take(&mut session.watches);
    if queued.failed {
        return Executed::Now(Reply::error(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    let mut slots = Vec::with_capacity(queued.commands.len());
    let mut commands = Vec::new();
    for argv in queued.commands {
        let Some(spec) = command::lookup(&argv[0]) else {
            slots.push(Slot::Local(command::unknown_command(&argv)));
            continue;
        };
        match spec.kind {
            Kind::Connection(serve) | Kind::Node(serve) => {
                let reply = match serve(node, session, &argv) {
                    Step::Reply(reply) | Step::ReplyAndClose(reply) => reply,
                    Step::Many(replies) => Reply::Array(replies),
                    // Membership changes and discovery run at EXEC in their place, like
                    // every command the node serves itself (not within the entry).
                    Step::Later(rx) => rx.await.unwrap_or_else(|_| write_gone()),
                };
                slots.push(Slot::Local(reply));
            }
            // The pre-check chain never queues these: they steer the transaction.
            Kind::Transaction(_) | Kind::Container | Kind::AclWrite => {
                slots.push(Slot::Local(command::unknown_command(&argv)));
            }
            Kind::Publish { sharded } => {
                slots.push(Slot::Publish {
                    index: commands.len(),
                    channel: argv[1].clone(),
                    sharded,
                });
                commands.push(argv);
            }
            Kind::StateRead | Kind::StateWrite | Kind::SessionWrite | Kind::BlockingWrite(_) => {
                slots.push(Slot::Data(commands.len()));
                commands.push(argv);
            }
        }
    }
    if commands.is_empty() && watches.is_empty() {
        return Executed::Now(merge(node, Reply::Array(vec![]), slots));
    }
    let op = Transaction { watches, commands }.encode();
    // A restricted user's commands are checked again as the entry applies.
    let caller = session.restrictions(node).map(|_| session.user.clone());
    match data_reply_as(node, session, op, caller.as_deref()).await {
        Ok(reply) => Executed::Proposed { reply, slots },
        Err(reply) => Executed::Now(reply),
    }
}

/// EXEC's reply: the TXN op's replies and the node's own, in queue order. A null array
/// (a watched key changed) or an error (no leader) is the whole reply.
pub(super) fn merge(node: &Node, txn_reply: Reply, slots: Vec<Slot>) -> Reply {
    let Reply::Array(data) = txn_reply else {
        return txn_reply;
    };
    let mut data: Vec<Option<Reply>> = data.into_iter().map(Some).collect();
    let mut take = |index: usize| {
        data.get_mut(index)
            .and_then(Option::take)
            .unwrap_or_else(|| Reply::error("ERR transaction reply is missing"))
    };
    Reply::Array(
        slots
            .into_iter()
            .map(|slot| match slot {
                Slot::Data(index) => take(index),
                Slot::Publish {
                    index,
                    channel,
                    sharded,
                } => match take(index) {
                    Reply::Int(_) => Reply::Int(node.pubsub.receivers(&channel, sharded) as i64),
                    other => other,
                },
                Slot::Local(reply) => reply,
            })
            .collect(),
    )
}
