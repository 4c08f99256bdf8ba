//! The deterministic state machine: no I/O, no clock, no randomness. The same entries
//! applied in the same order give the same state and the same replies on every node.
//!
//! Time comes only from the entries: each carries the cluster time `now_ms` (advanced by
//! the leader's monotonic clock, never by a wall clock: `wall`), and a key whose
//! deadline is at or before that time no longer exists for anyone. Reads simply do not see
//! it; the next entry removes it for good (a committed removal), so every replica drops it
//! at the same point of the log.
//!
//! Where things are: `Keyspace` (`keyspace`) is the replicated state a snapshot holds
//! (`Replicated`) beside what one node keeps while it applies (`Runtime`); `apply` runs an
//! entry's ops through the command table; `value` is what a key holds; `expiry` ends keys
//! and lock leases on time; `in_place` changes a stored value where it lies; `revisions`
//! is what WATCH compares; `snapshot` encodes the replicated part. Each data type's
//! commands are in a module of their own (`strings`, `hashes`, `lists`, `zsets`, `sets`,
//! `locks::commands`, `key_commands`, `server_commands`, `publish`, `scripts`, `txn`).

mod apply;
pub(crate) mod bits;
mod decimal;
mod expiry;
pub(crate) mod glob;
pub(crate) mod hashes;
pub(crate) mod hold;
mod in_place;
#[cfg(any(test, fuzzing))]
mod invariants;
mod key;
pub(crate) mod key_commands;
mod keyspace;
pub(crate) mod list_edits;
pub(crate) mod lists;
pub(crate) mod locks;
pub(crate) mod lua;
mod multi_pop;
pub(crate) mod notify;
pub(crate) mod publish;
mod replay;
mod revisions;
pub(crate) mod scripts;
pub(crate) mod server_commands;
pub(crate) mod session;
pub(crate) mod sets;
mod snapshot;
mod sorted_set;
pub(crate) mod string_ranges;
pub(crate) mod strings;
#[cfg(test)]
mod tests;
pub(crate) mod txn;
mod undo;
mod value;
pub(crate) mod wall;
pub(crate) mod zset_pops;
pub(crate) mod zsets;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::reply::Reply;

pub(crate) use hold::ExpiryHold;
pub(crate) use key::Key;
pub use keyspace::Keyspace;
pub use locks::LockEvent;
use revisions::Removals;
pub use snapshot::{SnapshotImage, StateError};
pub(crate) use value::Ttl;
pub(crate) use value::{Entry, Value};

/// Something apply did that the node must act on outside the state machine: wake a
/// blocked client, tell subscribers. Not persisted: a node that restarts has no blocked
/// clients, and the state itself holds every queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Lock(LockEvent),
    /// Elements were added to the list or sorted set at this key (or one was stored
    /// there): a client blocked in BLPOP, BZPOPMIN and the like on this node may now be
    /// served.
    Filled(Bytes),
    /// PUBLISH (or SPUBLISH, `sharded`): every node hands the message to its own
    /// subscribers of the channel.
    Published {
        channel: Bytes,
        message: Bytes,
        sharded: bool,
    },
    /// A keyspace notification (`notify`): the node publishes `event` on
    /// `__keyevent@0__:<event>` and `__keyspace@0__:<key>` as its setting asks.
    Keyspace {
        event: &'static str,
        key: Bytes,
    },
}

/// The application data of one Raft entry: the writes gathered by the proposer while the
/// previous proposal was in flight, stamped with one leader time. An entry with no ops is
/// an expiry tick.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub now_ms: u64,
    pub ops: Vec<Vec<Bytes>>,
}

/// Runs a handler body written with `?` for its error replies.
pub(crate) fn run(body: impl FnOnce() -> Result<Reply, Reply>) -> Reply {
    body().unwrap_or_else(|error| error)
}

/// Whether the command was invoked as `name` (handlers shared by several commands).
pub(crate) fn invoked_as(argv: &[Bytes], name: &str) -> bool {
    argv.first()
        .is_some_and(|sent| sent.eq_ignore_ascii_case(name.as_bytes()))
}

/// The lower-case name the command was invoked as, for error texts.
pub(crate) fn command_name(argv: &[Bytes]) -> String {
    argv.first()
        .map(|name| String::from_utf8_lossy(name).to_ascii_lowercase())
        .unwrap_or_default()
}

/// Redis's arity error for this invocation. The table checks arity before a handler
/// runs; handlers still answer this rather than panic when called otherwise.
pub(crate) fn wrong_arity(argv: &[Bytes]) -> Reply {
    Reply::wrong_arity(&command_name(argv))
}

/// Entry times as Redis's signed millisecond clock. A time past `i64::MAX` cannot come
/// from a real clock; clamping keeps the arithmetic defined.
pub(crate) fn now_i64(now_ms: u64) -> i64 {
    i64::try_from(now_ms).unwrap_or(i64::MAX)
}
