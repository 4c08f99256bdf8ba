//! The state machine of one group: the live `Keyspace`, kept in fjall, and its snapshots.
//!
//! Every `apply` writes what it changed, `last_applied` and the last membership in one
//! fjall batch, so the stored state is always the state after some whole prefix of the
//! log. That batch is not fsynced: the entries it applies were fsynced in the same journal
//! before they were committed, and fjall's journal reaches the disk in write order, so a
//! crash can only lose the tail of the applied state, never leave it ahead of the log;
//! openraft re-applies the lost tail from the log at start-up.

use std::collections::HashSet;
use std::io::Cursor;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fjall::{Database, PersistMode};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, OptionalSend, Snapshot, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::keys::{
    data_key, record_key, APPLIED, DATA, DATA_PREFIX_BYTES, KEYSPACE_META, SCRIPT, SNAPSHOT,
    STATE_KEYSPACE,
};
use super::{GroupId, NodeAddr, NodeId, TypeConfig};
use crate::reply::Reply;
use crate::state::scripts::ScriptChanges;
use crate::state::{Changes, Event, Keyspace};

type StorageResult<T> = Result<T, StorageError<NodeId>>;
type Membership = StoredMembership<NodeId, NodeAddr>;

/// `last_applied` and the last membership, stored together under `APPLIED`.
#[derive(Serialize, Deserialize)]
struct AppliedState {
    last_applied: Option<LogId<NodeId>>,
    last_membership: Membership,
}

/// The bytes of a snapshot as openraft ships them between nodes.
#[derive(Serialize, Deserialize)]
struct SnapshotPayload {
    last_applied: Option<LogId<NodeId>>,
    last_membership: Membership,
    /// `Keyspace::to_snapshot`.
    keyspace: Vec<u8>,
}

/// The current snapshot as stored under `SNAPSHOT`.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, NodeAddr>,
    /// A bincode `SnapshotPayload`.
    data: Vec<u8>,
}

/// Parts shared by the store and its snapshot builders.
#[derive(Clone)]
struct Disk {
    group: GroupId,
    db: Database,
    state: fjall::Keyspace,
    /// The last log id of the stored snapshot; held while one is written, so that a
    /// builder that started before an install never replaces a newer snapshot.
    snapshot_last_log_id: Arc<Mutex<Option<LogId<NodeId>>>>,
}

pub struct StateMachineStore {
    disk: Disk,
    keyspace: Arc<RwLock<Keyspace>>,
    last_applied: Option<LogId<NodeId>>,
    last_membership: Membership,
    applied: watch::Sender<u64>,
    on_events: EventSink,
}

/// Receives what apply reported (lock grants, wait timeouts), right after the entries
/// that produced it are applied and stored. Called on the apply task: it must not block.
pub type EventSink = Arc<dyn Fn(Vec<Event>) + Send + Sync>;

/// Builds a snapshot of the state captured when openraft asked for the builder, while
/// apply goes on.
pub struct SnapshotBuilder {
    disk: Disk,
    last_applied: Option<LogId<NodeId>>,
    last_membership: Membership,
    /// `Keyspace::to_snapshot`, or `None` if a panic in apply left the keyspace unusable.
    keyspace: Option<Vec<u8>>,
}

impl StateMachineStore {
    /// Opens the group's state machine and restores its `Keyspace` from the stored data
    /// keys and meta.
    pub fn open(db: &Database, group: GroupId) -> anyhow::Result<StateMachineStore> {
        let state = db.keyspace(STATE_KEYSPACE, super::keyspace_options)?;
        let disk = Disk {
            group,
            db: db.clone(),
            state,
            snapshot_last_log_id: Arc::new(Mutex::new(None)),
        };
        let applied: AppliedState = disk.read_record(APPLIED)?.unwrap_or(AppliedState {
            last_applied: None,
            last_membership: Membership::default(),
        });
        let snapshot: Option<StoredSnapshot> = disk.read_record(SNAPSHOT)?;
        *disk.lock_snapshot() = snapshot.and_then(|s| s.meta.last_log_id);

        let meta = disk.state.get(record_key(group, KEYSPACE_META))?;
        // Streamed into the keyspace rather than collected first: a copy of every record
        // at once would double start-up's peak memory and leave the allocator fragmented.
        let mut read_error = None;
        let records = disk
            .state
            .prefix(record_key(group, DATA))
            .map_while(|guard| match guard.into_inner() {
                Ok((key, value)) => {
                    Some((Bytes::copy_from_slice(&key[DATA_PREFIX_BYTES..]), value))
                }
                Err(e) => {
                    read_error = Some(e);
                    None
                }
            });
        let mut scripts = Vec::new();
        for guard in disk.state.prefix(record_key(group, SCRIPT)) {
            let (key, value) = guard.into_inner()?;
            let sha = String::from_utf8_lossy(&key[DATA_PREFIX_BYTES..]).into_owned();
            scripts.push((sha, value.to_vec()));
        }
        let restored = Keyspace::restore(meta.as_deref(), records);
        if let Some(e) = read_error {
            return Err(e.into());
        }
        let mut keyspace =
            restored.map_err(|e| anyhow::anyhow!("restoring group {group}'s keyspace: {e}"))?;
        keyspace
            .restore_scripts(scripts)
            .map_err(|e| anyhow::anyhow!("restoring group {group}'s scripts: {e}"))?;

        let last_index = applied.last_applied.map_or(0, |id| id.index);
        Ok(StateMachineStore {
            disk,
            keyspace: Arc::new(RwLock::new(keyspace)),
            last_applied: applied.last_applied,
            last_membership: applied.last_membership,
            applied: watch::channel(last_index).0,
            on_events: Arc::new(|_| {}),
        })
    }

    /// Where apply's events go (by default nowhere).
    pub fn with_event_sink(mut self, on_events: EventSink) -> StateMachineStore {
        self.on_events = on_events;
        self
    }

    /// The live keyspace, for reads after a read barrier.
    pub fn keyspace(&self) -> Arc<RwLock<Keyspace>> {
        self.keyspace.clone()
    }

    /// The index of the last applied entry (0 before the first), updated after each apply
    /// and snapshot install.
    pub fn subscribe_applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }

    fn current_applied_state(&self) -> AppliedState {
        AppliedState {
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
        }
    }

    fn publish_applied(&self) {
        self.applied
            .send_replace(self.last_applied.map_or(0, |id| id.index));
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> StorageResult<(Option<LogId<NodeId>>, Membership)> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Vec<Reply>>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        let changes = {
            let mut keyspace = self.keyspace.write().map_err(poisoned)?;
            let capacity_before = keyspace.key_capacity();
            for entry in entries {
                self.last_applied = Some(entry.log_id);
                replies.push(match entry.payload {
                    EntryPayload::Blank => Vec::new(),
                    EntryPayload::Normal(batch) => keyspace.apply_batch(&batch),
                    EntryPayload::Membership(membership) => {
                        self.last_membership = Membership::new(Some(entry.log_id), membership);
                        Vec::new()
                    }
                });
            }
            let table_regrown = keyspace.key_capacity() != capacity_before;
            (
                keyspace.take_changes(),
                keyspace.take_events(),
                table_regrown,
            )
        };
        let (changes, events, table_regrown) = changes;
        if table_regrown {
            // The old key table was dropped (a few times in the life of a keyspace).
            crate::memory::return_freed_memory();
        }
        if replies.is_empty() {
            return Ok(replies);
        }
        let mut batch = self.disk.db.batch();
        self.disk
            .add_changes(&mut batch, changes)
            .map_err(StorageIOError::write_state_machine)?;
        self.disk
            .add_record(&mut batch, APPLIED, &self.current_applied_state())
            .map_err(StorageIOError::write_state_machine)?;
        self.disk
            .commit(batch)
            .map_err(StorageIOError::write_state_machine)?;
        self.publish_applied();
        if !events.is_empty() {
            (self.on_events)(events);
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        // Captured now, under the read lock, so the snapshot is exactly the state at
        // `last_applied` however far apply has moved on when the builder runs.
        let keyspace = self
            .keyspace
            .read()
            .ok()
            .map(|keyspace| keyspace.to_snapshot());
        SnapshotBuilder {
            disk: self.disk.clone(),
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            keyspace,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, NodeAddr>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let read_error = |e: AnyError| StorageIOError::read_snapshot(Some(meta.signature()), e);
        let data = snapshot.into_inner();
        let payload: SnapshotPayload =
            bincode::deserialize(&data).map_err(|e| read_error(AnyError::new(&e)))?;
        if payload.last_applied != meta.last_log_id {
            return Err(read_error(AnyError::error(format!(
                "snapshot {} holds the state at {:?}, not at {:?}",
                meta.snapshot_id, payload.last_applied, meta.last_log_id
            )))
            .into());
        }
        let mut keyspace = Keyspace::from_snapshot(&payload.keyspace)
            .map_err(|e| read_error(AnyError::error(e)))?;
        // A keyspace made from a snapshot reports every key and its meta as changed.
        let mut changes = keyspace.take_changes();
        changes.cleared = true;
        changes.scripts.cleared = true;

        let write_error = |e: AnyError| StorageIOError::write_snapshot(Some(meta.signature()), e);
        let mut guard = self.disk.lock_snapshot();
        let mut batch = self.disk.db.batch();
        self.disk
            .add_changes(&mut batch, changes)
            .map_err(write_error)?;
        let applied = AppliedState {
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
        };
        self.disk
            .add_record(&mut batch, APPLIED, &applied)
            .map_err(write_error)?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        self.disk
            .add_record(&mut batch, SNAPSHOT, &stored)
            .map_err(write_error)?;
        self.disk.commit(batch).map_err(write_error)?;
        *guard = meta.last_log_id;
        drop(guard);

        *self.keyspace.write().map_err(poisoned)? = keyspace;
        self.last_applied = applied.last_applied;
        self.last_membership = applied.last_membership;
        self.publish_applied();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let stored: Option<StoredSnapshot> = self
            .disk
            .read_record(SNAPSHOT)
            .map_err(|e| StorageIOError::read_snapshot(None, AnyError::error(e)))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let payload = SnapshotPayload {
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            keyspace: self.keyspace.take().ok_or_else(keyspace_poisoned)?,
        };
        let data = bincode::serialize(&payload)
            .map_err(|e| StorageIOError::write_snapshot(None, AnyError::new(&e)))?;
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id: snapshot_id(self.disk.group, self.last_applied),
        };
        let write_error = |e: AnyError| StorageIOError::write_snapshot(Some(meta.signature()), e);

        let mut stored_last = self.disk.lock_snapshot();
        if *stored_last <= meta.last_log_id {
            let stored = StoredSnapshot {
                meta: meta.clone(),
                data,
            };
            let mut batch = self.disk.db.batch();
            self.disk
                .add_record(&mut batch, SNAPSHOT, &stored)
                .map_err(write_error)?;
            self.disk.commit(batch).map_err(write_error)?;
            *stored_last = meta.last_log_id;
            Ok(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(stored.data)),
            })
        } else {
            Ok(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            })
        }
    }
}

impl Disk {
    fn lock_snapshot(&self) -> std::sync::MutexGuard<'_, Option<LogId<NodeId>>> {
        // The guarded value is a plain log id, valid even if a holder panicked.
        self.snapshot_last_log_id
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read_record<T: DeserializeOwned>(&self, tag: u8) -> anyhow::Result<Option<T>> {
        match self.state.get(record_key(self.group, tag))? {
            Some(bytes) => Ok(Some(bincode::deserialize(&bytes)?)),
            None => Ok(None),
        }
    }

    fn add_record<T: Serialize>(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        tag: u8,
        value: &T,
    ) -> Result<(), AnyError> {
        let bytes = bincode::serialize(value).map_err(|e| AnyError::new(&e))?;
        batch.insert(&self.state, record_key(self.group, tag), bytes);
        Ok(())
    }

    /// Adds the keyspace's changes to `batch`. A batch gives all its writes one sequence
    /// number, so it must not both remove and insert one key: a key that is upserted is
    /// never also removed.
    fn add_changes(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        changes: Changes,
    ) -> Result<(), AnyError> {
        let upserted: HashSet<&[u8]> = changes.upserts.iter().map(|(k, _)| k.as_ref()).collect();
        if changes.cleared {
            for guard in self.state.prefix(record_key(self.group, DATA)) {
                let key = guard.key().map_err(|e| AnyError::new(&e))?;
                if !upserted.contains(&key[DATA_PREFIX_BYTES..]) {
                    batch.remove(&self.state, key);
                }
            }
        }
        for key in &changes.removes {
            debug_assert!(
                !upserted.contains(key.as_ref()),
                "a key is both upserted and removed in one set of changes"
            );
            if !upserted.contains(key.as_ref()) {
                batch.remove(&self.state, data_key(self.group, key));
            }
        }
        for (key, value) in &changes.upserts {
            batch.insert(&self.state, data_key(self.group, key), value.as_slice());
        }
        self.add_script_changes(batch, &changes.scripts)?;
        batch.insert(
            &self.state,
            record_key(self.group, KEYSPACE_META),
            changes.meta,
        );
        Ok(())
    }

    /// The script cache's changes, under `SCRIPT | sha1`, with the same rule as the keys:
    /// never both removed and inserted in one batch.
    fn add_script_changes(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        scripts: &ScriptChanges,
    ) -> Result<(), AnyError> {
        let upserted: HashSet<&[u8]> = scripts.upserts.iter().map(|(s, _)| s.as_bytes()).collect();
        if scripts.cleared {
            for guard in self.state.prefix(record_key(self.group, SCRIPT)) {
                let key = guard.key().map_err(|e| AnyError::new(&e))?;
                if !upserted.contains(&key[DATA_PREFIX_BYTES..]) {
                    batch.remove(&self.state, key);
                }
            }
        }
        for sha in &scripts.removes {
            if !upserted.contains(sha.as_bytes()) {
                batch.remove(&self.state, script_key(self.group, sha));
            }
        }
        for (sha, record) in &scripts.upserts {
            batch.insert(&self.state, script_key(self.group, sha), record.as_slice());
        }
        Ok(())
    }

    /// Commits without an fsync; see the module comment for why that is safe.
    fn commit(&self, batch: fjall::OwnedWriteBatch) -> Result<(), AnyError> {
        batch
            .durability(Some(PersistMode::Buffer))
            .commit()
            .map_err(|e| AnyError::new(&e))
    }
}

fn snapshot_id(group: GroupId, last_applied: Option<LogId<NodeId>>) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    match last_applied {
        Some(id) => format!("g{group}-t{}-i{}-{nanos}", id.leader_id.term, id.index),
        None => format!("g{group}-empty-{nanos}"),
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> StorageError<NodeId> {
    keyspace_poisoned()
}

fn keyspace_poisoned() -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::error(
        "the keyspace lock is poisoned: a panic interrupted apply",
    ))
    .into()
}

/// `group | SCRIPT | sha1`: where one cached script is kept.
fn script_key(group: GroupId, sha: &str) -> Vec<u8> {
    let mut key = record_key(group, SCRIPT).to_vec();
    key.extend_from_slice(sha.as_bytes());
    key
}
