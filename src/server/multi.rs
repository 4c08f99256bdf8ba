//! MULTI/EXEC on the connection: commands queued after MULTI are checked (a known command,
//! the right arity) and answered QUEUED; EXEC sends the data commands, with the revisions
//! WATCH read, as one `TXN` op (see `crate::state::txn`), so they apply atomically in one
//! entry on every node. Commands the node serves itself (PING, ECHO, ...) are answered
//! by the node at EXEC and merged into the reply in their place.

use bytes::Bytes;

use super::Node;
use crate::command::CommandSpec;
use crate::config::state_limits::MAX_QUEUED_COMMANDS;
use crate::reply::Reply;
use crate::state::txn::Watch;

/// A transaction being queued.
#[derive(Default)]
pub(super) struct Multi {
    pub commands: Vec<Vec<Bytes>>,
    /// A queued command was refused: EXEC answers EXECABORT.
    pub failed: bool,
}

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

pub(super) fn is_subscription(name: &str) -> bool {
    matches!(
        name,
        "subscribe" | "psubscribe" | "ssubscribe" | "unsubscribe" | "punsubscribe" | "sunsubscribe"
    )
}

/// Queues a command after MULTI: QUEUED, or an error that dooms the EXEC.
pub(super) fn queue(multi: &mut Multi, spec: &CommandSpec, argv: Vec<Bytes>) -> Reply {
    if is_subscription(spec.name) {
        multi.failed = true;
        return Reply::error("ERR Command not allowed inside a transaction");
    }
    if multi.commands.len() >= MAX_QUEUED_COMMANDS {
        multi.failed = true;
        return Reply::Error(format!(
            "ERR too many commands queued in MULTI (max {MAX_QUEUED_COMMANDS})"
        ));
    }
    multi.commands.push(argv);
    Reply::status("QUEUED")
}

/// Adds WATCH's read (`REVISIONS`' reply) to the watched keys; a key already watched
/// keeps its first revision, as Redis keeps its first WATCH.
pub(super) fn add_watches(watches: &mut Vec<Watch>, keys: &[Bytes], read: Reply) -> Reply {
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
