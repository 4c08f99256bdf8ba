//! How the keyspace leaves memory and comes back: whole snapshots, which are both what
//! a node keeps on disk (the log after the snapshot is re-applied at start-up) and what
//! Raft ships to a follower that fell behind.
//!
//! A snapshot starts with a format version byte, so a later format can still read the
//! data an older one wrote.

use std::collections::HashMap;

use bincode::Options;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::scripts::StoredScript;
use super::{Entry, ExpiryHold, Key, Keyspace, Removals};

/// 6: meta, entries and the script cache. In entries, a lock holder is owner, token, lease,
/// prior token, count, mode, unconfirmed flag and prior mode; every entry carries a
/// revision; the meta holds the revision counter, recent removals, the expiry hold and
/// the wall-clock offset. 5 is 6 without the offset: its entry times were the leaders'
/// wall clocks, so it reads with an offset of 0. Earlier formats (development versions)
/// are refused, not guessed at.
const SNAPSHOT_VERSION: u8 = 6;
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
}

/// Version 5's meta: `Meta` without the wall-clock offset.
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
        Meta {
            fence_counter: v5.fence_counter,
            last_now_ms: v5.last_now_ms,
            revision_counter: v5.revision_counter,
            removals: v5.removals,
            expiry_hold: v5.expiry_hold,
            wall_offset_ms: 0,
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
type SnapshotBodyV5 = (MetaV5, Vec<(Key, Entry)>, Vec<(String, StoredScript)>);

/// The replicated state copied out of a keyspace (`Keyspace::snapshot_image`).
pub struct SnapshotImage {
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
        encode(self.meta, entries, &self.scripts)
    }
}

/// Sorts and serializes: the same state gives the same bytes whatever order its keys
/// were made in.
fn encode(
    meta: Meta,
    mut entries: Vec<(&Key, &Entry)>,
    scripts: &HashMap<String, StoredScript>,
) -> Vec<u8> {
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut scripts: Vec<(&String, &StoredScript)> = scripts.iter().collect();
    scripts.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = vec![SNAPSHOT_VERSION];
    codec()
        .serialize_into(&mut out, &(meta, entries, scripts))
        .expect("bincode serialization into a Vec cannot fail");
    out
}

impl Keyspace {
    fn insert_script(&mut self, sha: String, script: StoredScript) -> Result<(), StateError> {
        if super::lua::sha1_hex(&script.source) != sha {
            return Err(StateError::ScriptDigest(sha));
        }
        self.scripts.insert_loaded(sha, script);
        Ok(())
    }

    fn meta(&self) -> Meta {
        Meta {
            fence_counter: self.fence_counter,
            last_now_ms: self.last_now_ms,
            revision_counter: self.revision_counter,
            removals: self.removals.clone(),
            expiry_hold: self.hold,
            wall_offset_ms: self.wall_offset_ms,
        }
    }

    fn set_meta(&mut self, meta: Meta) {
        self.fence_counter = meta.fence_counter;
        self.last_now_ms = meta.last_now_ms;
        self.revision_counter = meta.revision_counter;
        self.removals = meta.removals;
        self.hold = meta.expiry_hold;
        self.wall_offset_ms = meta.wall_offset_ms;
    }

    /// The whole state, in bytes that depend only on the state: keys and scripts sorted.
    pub fn to_snapshot(&self) -> Vec<u8> {
        encode(
            self.meta(),
            self.entries.iter().collect(),
            &self.scripts.scripts,
        )
    }

    /// A copy of the replicated state, taken in one pass: `SnapshotImage::encode` then
    /// gives `to_snapshot`'s bytes. Copying a million locks takes a fraction of the time
    /// sorting and serializing them does, so a node that snapshots copies under the read
    /// lock and encodes away from apply.
    pub fn snapshot_image(&self) -> SnapshotImage {
        SnapshotImage {
            meta: self.meta(),
            entries: self
                .entries
                .iter()
                .map(|(key, entry)| (key.clone(), entry.clone()))
                .collect(),
            scripts: self.scripts.scripts.clone(),
        }
    }

    /// The inverse of `to_snapshot`.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Keyspace, StateError> {
        let (meta, entries, scripts): SnapshotBody = match bytes.split_first() {
            Some((&SNAPSHOT_VERSION, body)) => codec().deserialize(body)?,
            Some((&SNAPSHOT_VERSION_WITHOUT_WALL_OFFSET, body)) => {
                let (meta, entries, scripts): SnapshotBodyV5 = codec().deserialize(body)?;
                (meta.into(), entries, scripts)
            }
            Some((&version, _)) => return Err(StateError::UnsupportedVersion(version)),
            None => return Err(StateError::Empty),
        };
        let mut keyspace = Keyspace::new();
        for (sha, script) in scripts {
            keyspace.insert_script(sha, script)?;
        }
        keyspace.set_meta(meta);
        for (key, entry) in entries {
            keyspace.insert_loaded(key, entry)?;
        }
        Ok(keyspace)
    }

    fn insert_loaded(&mut self, key: Key, entry: Entry) -> Result<(), StateError> {
        // A counter below a stored token would reuse tokens; trust the larger.
        self.fence_counter = self.fence_counter.max(entry.token);
        self.revision_counter = self.revision_counter.max(entry.revision);
        if let Some(deadline) = entry.deadline_ms() {
            self.expiry.insert((deadline, key.clone()));
        }
        if let Some(lock) = entry.as_lock() {
            for holder in lock.holders.iter() {
                self.fence_counter = self.fence_counter.max(holder.token);
            }
        }
        let lock_deadline = entry.as_lock().and_then(|lock| lock.next_deadline_ms());
        match self.entries.insert_full(key.clone(), entry) {
            (_, Some(_)) => Err(StateError::DuplicateKey(Bytes::copy_from_slice(&key))),
            (slot, None) => {
                self.lock_timers.set(&mut self.entries, slot, lock_deadline);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{int, Harness};

    #[test]
    fn a_version_5_snapshot_reads_with_no_wall_offset() {
        let mut h = Harness::new();
        h.write("set k v px 5000");
        h.write("lock res owner 60000");
        let ks = &h.ks;
        let meta = MetaV5 {
            fence_counter: ks.fence_counter,
            last_now_ms: ks.last_now_ms,
            revision_counter: ks.revision_counter,
            removals: ks.removals.clone(),
            expiry_hold: ks.hold,
        };
        let mut entries: Vec<(&Key, &Entry)> = ks.entries.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let scripts: Vec<(&String, &StoredScript)> = Vec::new();
        let mut bytes = vec![SNAPSHOT_VERSION_WITHOUT_WALL_OFFSET];
        codec()
            .serialize_into(&mut bytes, &(meta, entries, scripts))
            .unwrap();
        let restored = Keyspace::from_snapshot(&bytes).unwrap();
        assert_eq!(restored.wall_offset_ms(), 0);
        assert_eq!(restored.to_snapshot(), h.ks.to_snapshot());
        assert_eq!(
            restored.query(h.now_ms, &crate::state::tests::argv("pexpiretime k")),
            int(h.now_ms as i64 + 5000)
        );
    }
}
