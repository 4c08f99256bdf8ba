//! The deterministic state machine: no I/O, no clock, no randomness. The same entries
//! applied in the same order give the same state and the same replies on every node.

pub mod keys;
pub mod server;
pub mod strings;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::reply::Reply;

/// The application data of one Raft entry: the writes gathered by the proposer while the
/// previous proposal was in flight, stamped with one leader time. An entry with no ops is
/// an expiry tick.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub now_ms: u64,
    pub ops: Vec<Vec<Bytes>>,
}

/// What apply changed since the last call to `Keyspace::take_changes`, for the store to
/// write in the same batch as `last_applied`.
#[derive(Debug, Default)]
pub struct Changes {
    /// Every key was removed before the upserts (FLUSHALL).
    pub cleared: bool,
    pub upserts: Vec<(Bytes, Vec<u8>)>,
    pub removes: Vec<Bytes>,
    /// The keyspace's own counters (fence counter, last time), encoded.
    pub meta: Vec<u8>,
}

#[derive(Default)]
pub struct Keyspace {}

impl Keyspace {
    pub fn new() -> Keyspace {
        Keyspace::default()
    }

    pub fn apply_batch(&mut self, batch: &Batch) -> Vec<Reply> {
        batch
            .ops
            .iter()
            .map(|_| Reply::error("ERR not implemented"))
            .collect()
    }

    pub fn query(&self, _now_ms: u64, _argv: &[Bytes]) -> Reply {
        Reply::error("ERR not implemented")
    }
}
