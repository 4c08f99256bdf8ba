//! How the keyspace leaves memory and comes back: whole snapshots, which are both what
//! a node keeps on disk (the log after the snapshot is re-applied at start-up) and what
//! Raft ships to a follower that fell behind.
//!
//! A snapshot starts with a format version byte, so a later format can still read the
//! data an older one wrote.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU64;

use bincode::Options;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::locks::snapshot_v6::LockV6;
use super::scripts::StoredScript;
use super::session::{self, OpenSessions, Session};
use super::{hashes, sorted_set, Entry, ExpiryHold, Key, Keyspace, Removals, Value};

/// 8: version 7's body followed by the ACL users (`acl::UsersImage`: each user as its
/// ACL file line, the relay secret, whether a file seeded them). A version 7 snapshot
/// reads with no users beyond `default`.
///
/// 7: meta, entries and the script cache. In entries, a lock holder is owner, token,
/// lease, session (node, term, connection and timeout, or none), count, mode and
/// unconfirmed flag; a lock's queue is its waiters (owner, mode, ttl, wait deadline,
/// session, reclaim deadline) and the records of its unconfirmed grants (owner, prior mode
/// and token, reclaim deadline); every entry carries a revision; the meta holds the
/// revision counter, recent removals, the expiry hold, the wall-clock offset and the open
/// sessions. Sets came within version 7, as a variant appended to `Value`: bincode
/// numbers variants in order, so every earlier value encodes as it did, and a version 7
/// snapshot written before sets reads unchanged (no new version, no reader to keep).
///
/// 6 is 7 without sessions (a holder kept its unconfirmed grant's prior mode and token
/// itself): its holds and waits read as having no session, shown detached and never
/// reclaimed (they keep the rules they were made under: a lease, a WAIT timeout, a
/// LOCKCANCEL), and no session is open; a client's next LOCK or RENEW attaches its own.
/// 5 is 6 without the offset: its entry times were the leaders' wall clocks, so it reads
/// with an offset of 0. Earlier formats (development versions) are refused, not guessed
/// at.
const SNAPSHOT_VERSION: u8 = 8;
const SNAPSHOT_VERSION_WITHOUT_ACL: u8 = 7;
const SNAPSHOT_VERSION_WITHOUT_SESSIONS: u8 = 6;
const SNAPSHOT_VERSION_WITHOUT_WALL_OFFSET: u8 = 5;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("unsupported state format version {0}")]
    UnsupportedVersion(u8),
    #[error("state data is empty")]
    Empty,
    #[error("cannot decode state: {0}")]
    Decode(#[from] bincode::Error),
    #[error("key {0:?} appears twice")]
    DuplicateKey(Bytes),
    #[error("script {0} is stored under another sha1")]
    ScriptDigest(String),
    #[error("lock {0:?} has unconfirmed grants that do not match its holders")]
    LockGrants(Bytes),
    #[error("{0} bytes follow the snapshot's end")]
    TrailingBytes(usize),
    #[error("ACL users: {0}")]
    Acl(String),
}

/// The keyspace's own counters.
#[derive(Serialize, Deserialize)]
struct Meta {
    fence_counter: u64,
    last_now_ms: u64,
    revision_counter: u64,
    removals: Removals,
    expiry_hold: ExpiryHold,
    wall_offset_ms: i64,
    /// In id order.
    open_sessions: Vec<Session>,
}

/// Version 6's meta: `Meta` without the open sessions.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct MetaV6 {
    fence_counter: u64,
    last_now_ms: u64,
    revision_counter: u64,
    removals: Removals,
    expiry_hold: ExpiryHold,
    wall_offset_ms: i64,
}

impl From<MetaV6> for Meta {
    fn from(v6: MetaV6) -> Meta {
        Meta {
            fence_counter: v6.fence_counter,
            last_now_ms: v6.last_now_ms,
            revision_counter: v6.revision_counter,
            removals: v6.removals,
            expiry_hold: v6.expiry_hold,
            wall_offset_ms: v6.wall_offset_ms,
            open_sessions: Vec::new(),
        }
    }
}

/// Version 5's meta: version 6's without the wall-clock offset.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct MetaV5 {
    fence_counter: u64,
    last_now_ms: u64,
    revision_counter: u64,
    removals: Removals,
    expiry_hold: ExpiryHold,
}

impl From<MetaV5> for Meta {
    fn from(v5: MetaV5) -> Meta {
        Meta::from(MetaV6 {
            fence_counter: v5.fence_counter,
            last_now_ms: v5.last_now_ms,
            revision_counter: v5.revision_counter,
            removals: v5.removals,
            expiry_hold: v5.expiry_hold,
            wall_offset_ms: 0,
        })
    }
}

/// An entry as versions 5 and 6 stored it: `Entry`, with a lock in its old form.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct EntryV6 {
    value: ValueV6,
    deadline: Option<NonZeroU64>,
    token: u64,
    revision: u64,
}

/// `Value` as versions 5 and 6 stored it: the same variants in the same order.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
enum ValueV6 {
    Str(Bytes),
    Lock(LockV6),
    Hash(Box<hashes::Hash>),
    Zset(Box<sorted_set::SortedSet>),
    List(VecDeque<Bytes>),
}

impl From<EntryV6> for Entry {
    fn from(v6: EntryV6) -> Entry {
        Entry {
            value: match v6.value {
                ValueV6::Str(s) => Value::Str(s),
                ValueV6::Lock(lock) => Value::Lock(lock.into()),
                ValueV6::Hash(hash) => Value::Hash(hash),
                ValueV6::Zset(zset) => Value::Zset(zset),
                ValueV6::List(list) => Value::List(Box::new(list)),
            },
            deadline: v6.deadline,
            token: v6.token,
            revision: v6.revision,
            timer: Default::default(),
        }
    }
}

/// Little-endian varints; trailing bytes are refused, so a truncated or padded snapshot
/// is an error rather than a silently different value.
fn codec() -> impl Options {
    bincode::DefaultOptions::new()
}

/// One snapshot: the meta, the keys sorted, the scripts sorted by sha1.
type SnapshotBody = (Meta, Vec<(Key, Entry)>, Vec<(String, StoredScript)>);
/// Versions 5 and 6: their meta, entries in their form.
type OldSnapshotBody<M> = (M, Vec<(Key, EntryV6)>, Vec<(String, StoredScript)>);

fn upgrade<M: Into<Meta>>((meta, entries, scripts): OldSnapshotBody<M>) -> SnapshotBody {
    let entries = entries
        .into_iter()
        .map(|(key, entry)| (key, entry.into()))
        .collect();
    (meta.into(), entries, scripts)
}

/// The replicated state copied out of a keyspace (`Keyspace::snapshot_image`).
pub struct SnapshotImage {
    acl: crate::acl::UsersImage,
    meta: Meta,
    entries: Vec<(Key, Entry)>,
    scripts: HashMap<String, StoredScript>,
}

impl SnapshotImage {
    /// The snapshot bytes of the state copied: `Keyspace::to_snapshot`'s.
    pub fn encode(self) -> Vec<u8> {
        let entries = self
            .entries
            .iter()
            .map(|(key, entry)| (key, entry))
            .collect();
        encode(self.meta, entries, &self.scripts, &self.acl)
    }
}

/// Sorts and serializes: the same state gives the same bytes whatever order its keys
/// were made in.
fn encode(
    meta: Meta,
    mut entries: Vec<(&Key, &Entry)>,
    scripts: &HashMap<String, StoredScript>,
    acl: &crate::acl::UsersImage,
) -> Vec<u8> {
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut scripts: Vec<(&String, &StoredScript)> = scripts.iter().collect();
    scripts.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = vec![SNAPSHOT_VERSION];
    codec()
        .serialize_into(&mut out, &(meta, entries, scripts))
        .expect("bincode serialization into a Vec cannot fail");
    codec()
        .serialize_into(&mut out, acl)
        .expect("bincode serialization into a Vec cannot fail");
    out
}

impl Keyspace {
    fn insert_script(&mut self, sha: String, script: StoredScript) -> Result<(), StateError> {
        if super::lua::sha1_hex(&script.source) != sha {
            return Err(StateError::ScriptDigest(sha));
        }
        self.replicated.scripts.insert_loaded(sha, script);
        Ok(())
    }

    fn meta(&self) -> Meta {
        Meta {
            fence_counter: self.replicated.fence_counter,
            last_now_ms: self.replicated.last_now_ms,
            revision_counter: self.replicated.revision_counter,
            removals: self.replicated.removals.clone(),
            expiry_hold: self.replicated.hold,
            wall_offset_ms: self.replicated.wall_offset_ms,
            open_sessions: self.replicated.sessions.to_sorted(),
        }
    }

    fn set_meta(&mut self, meta: Meta) {
        self.replicated.fence_counter = meta.fence_counter;
        self.replicated.last_now_ms = meta.last_now_ms;
        self.replicated.revision_counter = meta.revision_counter;
        self.replicated.removals = meta.removals;
        self.replicated.hold = meta.expiry_hold;
        self.replicated.wall_offset_ms = meta.wall_offset_ms;
        self.replicated.sessions = OpenSessions::from_sessions(meta.open_sessions);
    }

    /// The whole state, in bytes that depend only on the state: keys and scripts sorted.
    pub fn to_snapshot(&self) -> Vec<u8> {
        encode(
            self.meta(),
            self.replicated.entries.iter().collect(),
            &self.replicated.scripts.scripts,
            &self.replicated.acl.to_image(),
        )
    }

    /// A copy of the replicated state, taken in one pass: `SnapshotImage::encode` then
    /// gives `to_snapshot`'s bytes. Copying a million locks takes a fraction of the time
    /// sorting and serializing them does, so a node that snapshots copies under the read
    /// lock and encodes away from apply.
    pub fn snapshot_image(&self) -> SnapshotImage {
        SnapshotImage {
            acl: self.replicated.acl.to_image(),
            meta: self.meta(),
            entries: self
                .replicated
                .entries
                .iter()
                .map(|(key, entry)| (key.clone(), entry.clone()))
                .collect(),
            scripts: self.replicated.scripts.scripts.clone(),
        }
    }

    /// The fencing counter: the last token granted or stamped on a write.
    pub fn fence_counter(&self) -> u64 {
        self.replicated.fence_counter
    }

    /// The term of the last leader whose epoch op this state applied: client sessions
    /// are named by terms up to it.
    pub fn epoch_term(&self) -> u64 {
        self.replicated.hold.term
    }

    /// Raises the fencing counter to at least `floor`, so that every later token is above
    /// it (a restore whose old cluster went on granting tokens after the backup).
    pub fn raise_fence_counter(&mut self, floor: u64) {
        self.replicated.fence_counter = self.replicated.fence_counter.max(floor);
    }

    /// The inverse of `to_snapshot`.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Keyspace, StateError> {
        let mut acl = crate::acl::UsersImage::default();
        let (meta, entries, scripts): SnapshotBody = match bytes.split_first() {
            Some((&SNAPSHOT_VERSION, mut body)) => {
                // Read as a stream (two values one after the other), so bounded by the
                // input's size: a length prefix then never asks for more than there is.
                let limited = || codec().with_limit(bytes.len() as u64);
                let body_part = limited().deserialize_from(&mut body)?;
                acl = limited().deserialize_from(&mut body)?;
                if !body.is_empty() {
                    return Err(StateError::TrailingBytes(body.len()));
                }
                body_part
            }
            Some((&SNAPSHOT_VERSION_WITHOUT_ACL, body)) => codec().deserialize(body)?,
            Some((&SNAPSHOT_VERSION_WITHOUT_SESSIONS, body)) => {
                upgrade(codec().deserialize::<OldSnapshotBody<MetaV6>>(body)?)
            }
            Some((&SNAPSHOT_VERSION_WITHOUT_WALL_OFFSET, body)) => {
                upgrade(codec().deserialize::<OldSnapshotBody<MetaV5>>(body)?)
            }
            Some((&version, _)) => return Err(StateError::UnsupportedVersion(version)),
            None => return Err(StateError::Empty),
        };
        let mut keyspace = Keyspace::new();
        keyspace.replicated.acl = crate::acl::Users::from_image(acl).map_err(StateError::Acl)?;
        crate::acl::note_change();
        for (sha, script) in scripts {
            keyspace.insert_script(sha, script)?;
        }
        keyspace.set_meta(meta);
        let mut sessions = keyspace.replicated.sessions.interner();
        for (key, entry) in entries {
            keyspace.insert_loaded(key, entry, &mut sessions)?;
        }
        Ok(keyspace)
    }

    fn insert_loaded(
        &mut self,
        key: Key,
        mut entry: Entry,
        sessions: &mut session::Interner,
    ) -> Result<(), StateError> {
        // A counter below a stored token would reuse tokens; trust the larger.
        self.replicated.fence_counter = self.replicated.fence_counter.max(entry.token);
        self.replicated.revision_counter = self.replicated.revision_counter.max(entry.revision);
        if let Some(deadline) = entry.deadline_ms() {
            self.replicated.expiry.insert((deadline, key.clone()));
        }
        if let Some(lock) = entry.as_lock() {
            for holder in lock.holders.iter() {
                self.replicated.fence_counter = self.replicated.fence_counter.max(holder.token);
            }
        }
        if let Value::Lock(lock) = &mut entry.value {
            if !lock.grants_match_holders() {
                return Err(StateError::LockGrants(Bytes::copy_from_slice(&key)));
            }
            lock.share_sessions(sessions);
            if lock.queue.is_present() {
                self.replicated.queued.insert(key.clone());
            }
        }
        let lock_deadline = entry.as_lock().and_then(|lock| lock.next_deadline_ms());
        match self.replicated.entries.insert_full(key.clone(), entry) {
            (_, Some(_)) => Err(StateError::DuplicateKey(Bytes::copy_from_slice(&key))),
            (slot, None) => {
                self.replicated
                    .lock_timers
                    .set(&mut self.replicated.entries, slot, lock_deadline);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
