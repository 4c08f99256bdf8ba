//! How the keyspace leaves memory and comes back: per-key records and meta for the store
//! (written after each apply), and whole snapshots for Raft.
//!
//! Every encoding starts with a format version byte, so a later format can still read
//! the data an older one wrote.

use bincode::Options;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Changes, Entry, ExpiryHold, Keyspace};

/// Version 2 added the expiry hold to the meta; records of keys are the same in both.
const FORMAT_VERSION: u8 = 2;
/// Meta and snapshots written before the expiry hold existed.
const FORMAT_VERSION_NO_HOLD: u8 = 1;

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
}

/// The keyspace's own counters, kept in the store next to the records.
#[derive(Serialize, Deserialize)]
struct Meta {
    fence_counter: u64,
    last_now_ms: u64,
    expiry_hold: ExpiryHold,
}

/// Meta as version 1 wrote it.
#[derive(Deserialize)]
struct MetaNoHold {
    fence_counter: u64,
    last_now_ms: u64,
}

impl From<MetaNoHold> for Meta {
    fn from(old: MetaNoHold) -> Meta {
        Meta {
            fence_counter: old.fence_counter,
            last_now_ms: old.last_now_ms,
            expiry_hold: ExpiryHold::default(),
        }
    }
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

/// The format version and the body after it.
fn split_version(bytes: &[u8]) -> Result<(u8, &[u8]), StateError> {
    match bytes.split_first() {
        None => Err(StateError::Empty),
        Some((&version, body))
            if version == FORMAT_VERSION || version == FORMAT_VERSION_NO_HOLD =>
        {
            Ok((version, body))
        }
        Some((&version, _)) => Err(StateError::UnsupportedVersion(version)),
    }
}

/// A record whose encoding is the same in every version (a key's entry).
fn decode<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, StateError> {
    let (_, body) = split_version(bytes)?;
    Ok(codec().deserialize(body)?)
}

/// Meta followed by `T`: `()` for the stored meta (which encodes to nothing), the entries
/// for a snapshot.
fn decode_with_meta<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<(Meta, T), StateError> {
    let (version, body) = split_version(bytes)?;
    if version == FORMAT_VERSION_NO_HOLD {
        let (meta, rest): (MetaNoHold, T) = codec().deserialize(body)?;
        Ok((meta.into(), rest))
    } else {
        Ok(codec().deserialize(body)?)
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
        }
    }

    fn encode_meta(&self) -> Vec<u8> {
        encode(&Meta {
            fence_counter: self.fence_counter,
            last_now_ms: self.last_now_ms,
            expiry_hold: self.hold,
        })
    }

    /// Rebuilds the keyspace from the records and meta a store persisted from
    /// `take_changes`. A new store has no meta yet.
    pub fn restore(
        meta: Option<&[u8]>,
        records: impl IntoIterator<Item = (Bytes, Vec<u8>)>,
    ) -> Result<Keyspace, StateError> {
        let mut keyspace = Keyspace::new();
        if let Some(meta) = meta {
            let (meta, ()): (Meta, ()) = decode_with_meta(meta)?;
            keyspace.set_meta(meta);
        }
        for (key, record) in records {
            let entry: Entry = decode(&record)?;
            keyspace.insert_loaded(key, entry)?;
        }
        Ok(keyspace)
    }

    /// The whole state, in bytes that depend only on the state: keys sorted.
    pub fn to_snapshot(&self) -> Vec<u8> {
        let mut entries: Vec<(&Bytes, &Entry)> = self.entries.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let meta = Meta {
            fence_counter: self.fence_counter,
            last_now_ms: self.last_now_ms,
            expiry_hold: self.hold,
        };
        encode(&(meta, entries))
    }

    /// The inverse of `to_snapshot`. Every key is marked changed and `cleared` set, so the
    /// next `take_changes` holds exactly what the store must write to replace its state.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Keyspace, StateError> {
        let (meta, entries): (Meta, Vec<(Bytes, Entry)>) = decode_with_meta(bytes)?;
        let mut keyspace = Keyspace::new();
        keyspace.set_meta(meta);
        for (key, entry) in entries {
            keyspace.dirty.insert(key.clone());
            keyspace.insert_loaded(key, entry)?;
        }
        keyspace.cleared = true;
        Ok(keyspace)
    }

    fn set_meta(&mut self, meta: Meta) {
        self.fence_counter = meta.fence_counter;
        self.last_now_ms = meta.last_now_ms;
        self.hold = meta.expiry_hold;
    }

    fn insert_loaded(&mut self, key: Bytes, entry: Entry) -> Result<(), StateError> {
        // A counter below a stored token would reuse tokens; trust the larger.
        self.fence_counter = self.fence_counter.max(entry.token);
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
