//! PUBLISH is a write: its entry reaches every node, and each node's apply hands the
//! message to that node's own subscribers (`Event::Published`). The state itself keeps
//! nothing, so the reply here is 0; the node answers with its receiver count.

use bytes::Bytes;

use super::{invoked_as, wrong_arity, Event, Keyspace};
use crate::reply::Reply;

/// PUBLISH / SPUBLISH channel message.
pub fn publish(ks: &mut Keyspace, _now_ms: u64, argv: &[Bytes]) -> Reply {
    let [_, channel, message] = argv else {
        return wrong_arity(argv);
    };
    ks.runtime.events.push(Event::Published {
        channel: Bytes::copy_from_slice(channel),
        message: Bytes::copy_from_slice(message),
        sharded: invoked_as(argv, "spublish"),
    });
    Reply::Int(0)
}
