//! What a key holds: its value (one variant per data type), its deadline, fencing token
//! and revision.

use std::collections::VecDeque;
use std::num::NonZeroU64;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{hashes, locks, sets, sorted_set, ExpiryHold};
use crate::reply::Reply;

/// A key's value. Each data type is one variant, so adding lists, locks, hashes or sorted
/// sets is one more variant plus its commands; the persisted encoding of existing variants
/// does not change when one is added at the end.
///
/// Kept small, as every key's slot holds one: a lock is inline (56 bytes, the variant's
/// tag included: one holder inline, the queue boxed), so a held lock costs no allocation
/// of its own beyond its owner's name; hashes, sorted sets and lists are boxed, costing
/// one allocation next to the ones they make anyway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    Str(Bytes),
    /// A first-class lock: holders with leases and a FIFO queue. Its deadlines live in the
    /// lock (`lock_timers`), never in the key's own deadline.
    Lock(locks::Lock),
    /// Fields in byte order, so HGETALL, HKEYS and HVALS answer alike on every node.
    Hash(Box<hashes::Hash>),
    Zset(Box<sorted_set::SortedSet>),
    /// Never empty: the command that removes the last element removes the key.
    // The box is the point: 8 bytes in every key's slot rather than a deque's 32.
    #[allow(clippy::box_collection)]
    List(Box<VecDeque<Bytes>>),
    /// Members in the order `sets` keeps them (insertion order, a removed member's place
    /// taken by the last one). Never empty. Added last, so the snapshots of older
    /// versions, which have no sets, read unchanged.
    Set(Box<sets::Set>),
}

impl Value {
    /// The name TYPE reports and SCAN's TYPE option matches.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Lock(_) => "lock",
            Value::Hash(_) => "hash",
            Value::Zset(_) => "zset",
            Value::List(_) => "list",
            Value::Set(_) => "set",
        }
    }

    /// A collection with no elements left, which Redis never keeps as a key.
    pub(super) fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) | Value::Lock(_) => false,
            Value::Hash(hash) => hash.is_empty(),
            Value::Zset(zset) => zset.is_empty(),
            Value::List(list) => list.is_empty(),
            Value::Set(set) => set.is_empty(),
        }
    }
}

/// Everything stored under one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub value: Value,
    /// Absolute time in ms since the epoch at which the key stops existing (read it with
    /// `deadline_ms`). Never 0, as a deadline at or before the entry's time removes the
    /// key instead: `None` takes that value, so this costs 8 bytes rather than 16.
    /// Persisted as the `Option<u64>` it reads as.
    pub(super) deadline: Option<NonZeroU64>,
    /// The fencing token of the current value: strictly greater than any token given
    /// before it, by any key.
    pub token: u64,
    /// Changes on every modification of the key (value, deadline, lock state), unlike the
    /// token, which changes only when the value is written. WATCH compares it. Taken from
    /// the keyspace's revision counter, so a key removed and created again never comes
    /// back with a revision it had before.
    pub revision: u64,
    /// Where the lock's timer is in `lock_timers`, for a lock with a next deadline.
    #[serde(skip)]
    pub(super) timer: locks::timers::HeapPos,
}

impl Entry {
    /// Absolute time in ms since the epoch at which the key stops existing.
    pub fn deadline_ms(&self) -> Option<u64> {
        self.deadline.map(NonZeroU64::get)
    }

    /// The string value, or Redis's WRONGTYPE error for any other type.
    pub fn as_str(&self) -> Result<&Bytes, Reply> {
        match &self.value {
            Value::Str(s) => Ok(s),
            _ => Err(Reply::wrong_type()),
        }
    }

    pub fn as_lock(&self) -> Option<&locks::Lock> {
        match &self.value {
            Value::Lock(lock) => Some(lock),
            _ => None,
        }
    }

    /// The list, or Redis's WRONGTYPE error for any other type.
    pub fn as_list(&self) -> Result<&VecDeque<Bytes>, Reply> {
        match &self.value {
            Value::List(list) => Ok(list),
            _ => Err(Reply::wrong_type()),
        }
    }

    pub(super) fn is_live(&self, now_ms: u64, hold: &ExpiryHold) -> bool {
        self.deadline_ms()
            .is_none_or(|deadline| hold.live(deadline, now_ms))
    }
}

/// What a write does to the key's deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ttl {
    /// Keep the deadline the key had (none for a new key): APPEND, INCR, SET KEEPTTL.
    Keep,
    /// No deadline: a plain SET.
    Clear,
    /// This absolute deadline in ms. One at or before now removes the key.
    At(i64),
}
