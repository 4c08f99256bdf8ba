//! How the keyspace leaves memory and comes back: per-key records and meta for the store
//! (written after each apply), and whole snapshots for Raft.
//!
//! Every encoding starts with a format version byte, so a later format can still read
//! the data an older one wrote.

use bincode::Options;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::scripts::{ScriptChanges, StoredScript};
use super::{Changes, Entry, ExpiryHold, Keyspace, Removals};

/// 4: a lock holder is owner, token, lease, prior token, count, mode, unconfirmed flag and
/// prior mode (3 had an optional grant record instead). 3: entries carry a revision; the
/// meta holds the revision counter, recent removals and the expiry hold. Earlier formats
/// (development versions) are refused, not guessed at.
const FORMAT_VERSION: u8 = 4;
/// 5: meta, entries (in format 4) and the script cache.
const SNAPSHOT_VERSION: u8 = 5;

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

/// The keyspace's own counters, kept in the store next to the records.
#[derive(Serialize, Deserialize)]
struct Meta {
    fence_counter: u64,
    last_now_ms: u64,
    revision_counter: u64,
    removals: Removals,
    expiry_hold: ExpiryHold,
}

/// Little-endian varints; trailing bytes are refused, so a truncated or padded record is
/// an error rather than a silently different value.
fn codec() -> impl Options {
    bincode::DefaultOptions::new()
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    // Writing into a Vec cannot fail, and our types have no fallible Serialize impls.
    codec()
        .serialize_into(&mut out, value)
        .expect("bincode serialization into a Vec cannot fail");
    out
}

/// One snapshot: the meta, the keys sorted, the scripts sorted by sha1.
type SnapshotBody = (Meta, Vec<(Bytes, Entry)>, Vec<(String, StoredScript)>);

fn decode<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, StateError> {
    match bytes.split_first() {
        None => Err(StateError::Empty),
        Some((&FORMAT_VERSION, body)) => Ok(codec().deserialize(body)?),
        Some((&version, _)) => Err(StateError::UnsupportedVersion(version)),
    }
}

impl Keyspace {
    /// What changed since the last call: the encoded entry of every key written, every key
    /// removed, whether FLUSHALL ran (before the upserts), and the meta. Only touched keys
    /// are encoded. After `from_snapshot` this is `cleared` plus every key, which is what a
    /// store writes to install the snapshot.
    pub fn take_changes(&mut self) -> Changes {
        let mut upserts = Vec::new();
        let mut removes = Vec::new();
        for key in self.dirty.drain() {
            match self.entries.get(&key) {
                Some(entry) => upserts.push((key, encode(entry))),
                None => removes.push(key),
            }
        }
        Changes {
            cleared: std::mem::take(&mut self.cleared),
            upserts,
            removes,
            meta: self.encode_meta(),
            scripts: self.take_script_changes(),
        }
    }

    fn take_script_changes(&mut self) -> ScriptChanges {
        let store = &mut self.scripts;
        let mut upserts = Vec::new();
        let mut removes = Vec::new();
        let mut dirty: Vec<String> = store.dirty.drain().collect();
        dirty.sort_unstable();
        for sha in dirty {
            match store.scripts.get(&sha) {
                Some(script) => upserts.push((sha, encode(script))),
                None => removes.push(sha),
            }
        }
        ScriptChanges {
            cleared: std::mem::take(&mut store.cleared),
            upserts,
            removes,
        }
    }

    /// Adds the script records a store persisted from `take_changes` (sha1 -> record) to
    /// a keyspace made by `restore`.
    pub fn restore_scripts(
        &mut self,
        records: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> Result<(), StateError> {
        for (sha, record) in records {
            let script: StoredScript = decode(&record)?;
            self.insert_script(sha, script)?;
        }
        Ok(())
    }

    fn insert_script(&mut self, sha: String, script: StoredScript) -> Result<(), StateError> {
        if super::lua::sha1_hex(&script.source) != sha {
            return Err(StateError::ScriptDigest(sha));
        }
        self.scripts.insert_loaded(sha, script);
        Ok(())
    }

    fn encode_meta(&self) -> Vec<u8> {
        encode(&self.meta())
    }

    fn meta(&self) -> Meta {
        Meta {
            fence_counter: self.fence_counter,
            last_now_ms: self.last_now_ms,
            revision_counter: self.revision_counter,
            removals: self.removals.clone(),
            expiry_hold: self.hold,
        }
    }

    fn set_meta(&mut self, meta: Meta) {
        self.fence_counter = meta.fence_counter;
        self.last_now_ms = meta.last_now_ms;
        self.revision_counter = meta.revision_counter;
        self.removals = meta.removals;
        self.hold = meta.expiry_hold;
    }

    /// Rebuilds the keyspace from the records and meta a store persisted from
    /// `take_changes`. A new store has no meta yet.
    pub fn restore<R: AsRef<[u8]>>(
        meta: Option<&[u8]>,
        records: impl IntoIterator<Item = (Bytes, R)>,
    ) -> Result<Keyspace, StateError> {
        let mut keyspace = Keyspace::new();
        if let Some(meta) = meta {
            keyspace.set_meta(decode(meta)?);
        }
        for (key, record) in records {
            let entry: Entry = decode(record.as_ref())?;
            keyspace.insert_loaded(key, entry)?;
        }
        Ok(keyspace)
    }

    /// The whole state, in bytes that depend only on the state: keys and scripts sorted.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let mut entries: Vec<(&Bytes, &Entry)> = self.entries.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut scripts: Vec<(&String, &StoredScript)> = self.scripts.scripts.iter().collect();
        scripts.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut out = vec![SNAPSHOT_VERSION];
        codec()
            .serialize_into(&mut out, &(self.meta(), entries, scripts))
            .expect("bincode serialization into a Vec cannot fail");
        out
    }

    /// The inverse of `to_snapshot`. Every key is marked changed and `cleared` set, so the
    /// next `take_changes` holds exactly what the store must write to replace its state.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Keyspace, StateError> {
        let (meta, entries, scripts): SnapshotBody = match bytes.split_first() {
            Some((&SNAPSHOT_VERSION, body)) => codec().deserialize(body)?,
            Some((&version, _)) => return Err(StateError::UnsupportedVersion(version)),
            None => return Err(StateError::Empty),
        };
        let mut keyspace = Keyspace::new();
        for (sha, script) in scripts {
            keyspace.scripts.dirty.insert(sha.clone());
            keyspace.insert_script(sha, script)?;
        }
        keyspace.scripts.cleared = true;
        keyspace.set_meta(meta);
        for (key, entry) in entries {
            keyspace.dirty.insert(key.clone());
            keyspace.insert_loaded(key, entry)?;
        }
        keyspace.cleared = true;
        Ok(keyspace)
    }

    fn insert_loaded(&mut self, key: Bytes, entry: Entry) -> Result<(), StateError> {
        // A counter below a stored token would reuse tokens; trust the larger.
        self.fence_counter = self.fence_counter.max(entry.token);
        self.revision_counter = self.revision_counter.max(entry.revision);
        if let Some(deadline) = entry.deadline_ms {
            self.expiry.insert((deadline, key.clone()));
        }
        if let Some(lock) = entry.as_lock() {
            for holder in &lock.holders {
                self.fence_counter = self.fence_counter.max(holder.token);
            }
            if let Some(deadline) = lock.next_deadline_ms() {
                self.lock_timers.insert((deadline, key.clone()));
            }
        }
        match self.entries.insert(key.clone(), entry) {
            Some(_) => Err(StateError::DuplicateKey(key)),
            None => Ok(()),
        }
    }
}
