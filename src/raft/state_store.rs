//! The state machine of one group: the live `Keyspace`, in memory, and its snapshots.
//!
//! Apply writes nothing to disk. Every applied entry is already in the log, fsynced before
//! it was committed, so what the node keeps of its state machine is its latest snapshot:
//! at start-up the keyspace is the snapshot's, and openraft re-applies the committed log
//! after it (the log store keeps the committed mark). This is how etcd and ZooKeeper keep
//! theirs too (a snapshot plus the log after it), and it takes the per-write cost of a
//! second store off the write path.
//!
//! A snapshot is a file of its own (`DATA_DIR/snapshots/group-G.snapshot`), written beside
//! the next one and renamed over it once fsynced, so a crash leaves the old or the new one
//! whole. It is on disk before openraft hears of it, so before the log is purged up to it.
//! It is not in fjall, because fjall's one journal also carries the Raft log: a snapshot of
//! a million locks (tens of MB) written there made the log's next `fdatasync` write it too,
//! 100-640 ms during which every write waited. A data dir from before snapshot files keeps
//! its snapshot in the state keyspace (`SNAPSHOT`); it is read from there until the first
//! snapshot file replaces it.

use std::fs::File;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use fjall::{Database, PersistMode};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, OptionalSend, Snapshot, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use anyhow::Context;

use super::keys::{record_key, SNAPSHOT, STATE_KEYSPACE};
use super::{GroupId, NodeAddr, NodeId, TypeConfig};
use crate::metrics::METRICS;
use crate::reply::Reply;
use crate::state::locks::Tally;
use crate::state::notify::NotifyFlags;
use crate::state::{Event, Keyspace, SnapshotImage};

type StorageResult<T> = Result<T, StorageError<NodeId>>;
type Membership = StoredMembership<NodeId, NodeAddr>;

/// The bytes of a snapshot as openraft ships them between nodes.
#[derive(Serialize, Deserialize)]
struct SnapshotPayload {
    last_applied: Option<LogId<NodeId>>,
    last_membership: Membership,
    /// `Keyspace::to_snapshot`.
    keyspace: Vec<u8>,
}

/// The current snapshot as stored: the contents of its file (or of the `SNAPSHOT` record).
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
    /// The group's snapshot file; see the module doc.
    snapshot_path: PathBuf,
    /// The last log id of the stored snapshot; held while one is written, so that a
    /// builder that started before an install never replaces a newer snapshot.
    snapshot_last_log_id: Arc<Mutex<Option<LogId<NodeId>>>>,
    /// Told the size of each snapshot stored.
    pace: Arc<super::LogPace>,
}

pub struct StateMachineStore {
    disk: Disk,
    keyspace: Arc<RwLock<Keyspace>>,
    last_applied: Option<LogId<NodeId>>,
    last_membership: Membership,
    applied: watch::Sender<u64>,
    on_events: EventSink,
    /// The keyspace's replay window (`state::replay`), node-local: set again on a
    /// keyspace that a snapshot replaces.
    replay_window_ms: u64,
    /// The node's keyspace notification setting, likewise set again after a snapshot.
    notify: NotifyFlags,
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
    /// The state at `last_applied`, or `None` if a panic in apply left the keyspace
    /// unusable.
    keyspace: Option<SnapshotImage>,
}

impl StateMachineStore {
    /// Opens the group's state machine at its stored snapshot (an empty keyspace before
    /// the first); openraft then re-applies the committed log after it. `data_dir` is the
    /// node's, where `db` lives too: snapshots go in its `snapshots` directory.
    pub fn open(
        db: &Database,
        data_dir: &Path,
        group: GroupId,
    ) -> anyhow::Result<StateMachineStore> {
        let state = db.keyspace(STATE_KEYSPACE, super::keyspace_options)?;
        let snapshot_dir = data_dir.join("snapshots");
        std::fs::create_dir_all(&snapshot_dir)
            .with_context(|| format!("creating {}", snapshot_dir.display()))?;
        let disk = Disk {
            group,
            db: db.clone(),
            state,
            snapshot_path: snapshot_dir.join(format!("group-{group}.snapshot")),
            snapshot_last_log_id: Arc::new(Mutex::new(None)),
            pace: Arc::default(),
        };
        let snapshot = disk.read_snapshot()?;
        let (keyspace, last_applied, last_membership) = match snapshot {
            None => (Keyspace::new(), None, Membership::default()),
            Some(stored) => {
                disk.pace.snapshot_built(stored.data.len());
                let payload: SnapshotPayload = bincode::deserialize(&stored.data)?;
                drop(stored.data);
                let keyspace = Keyspace::from_snapshot(&payload.keyspace).map_err(|e| {
                    anyhow::anyhow!("restoring group {group}'s keyspace from its snapshot: {e}")
                })?;
                (keyspace, payload.last_applied, payload.last_membership)
            }
        };
        *disk.lock_snapshot() = last_applied;
        // The snapshot's bytes were freed: give the pages back before the log is re-applied.
        crate::memory::return_freed_memory();
        Ok(StateMachineStore {
            disk,
            keyspace: Arc::new(RwLock::new(keyspace)),
            last_applied,
            last_membership,
            applied: watch::channel(last_applied.map_or(0, |id| id.index)).0,
            on_events: Arc::new(|_| {}),
            replay_window_ms: 0,
            notify: NotifyFlags::default(),
        })
    }

    /// The replay window of Redlock copies (`Config::redlock_replay_window_ms`).
    pub fn with_replay_window_ms(mut self, window_ms: u64) -> StateMachineStore {
        self.replay_window_ms = window_ms;
        self.keyspace
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .set_replay_window_ms(window_ms);
        self
    }

    /// The node's `notify-keyspace-events`, shared with the node that changes it.
    pub fn with_notify(mut self, notify: NotifyFlags) -> StateMachineStore {
        self.keyspace
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .set_notify(notify.clone());
        self.notify = notify;
        self
    }

    /// Where apply's events go (by default nowhere).
    pub fn with_event_sink(mut self, on_events: EventSink) -> StateMachineStore {
        self.on_events = on_events;
        self
    }

    /// Where the sizes of snapshots go, for `raft::snapshot_by_log_growth` (by default a
    /// count of its own).
    pub fn with_pace(mut self, pace: Arc<super::LogPace>) -> StateMachineStore {
        pace.snapshot_built(self.disk.pace.snapshot_bytes());
        self.disk.pace = pace;
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
        let started = std::time::Instant::now();
        let mut replies = Vec::new();
        let (events, table_regrown, tally) = {
            let mut keyspace = self.keyspace.write().map_err(poisoned)?;
            let capacity_before = keyspace.key_capacity();
            for entry in entries {
                self.last_applied = Some(entry.log_id);
                replies.push(match entry.payload {
                    EntryPayload::Blank => Vec::new(),
                    EntryPayload::Normal(batch) => keyspace.apply_entry(entry.log_id.index, &batch),
                    EntryPayload::Membership(membership) => {
                        self.last_membership = Membership::new(Some(entry.log_id), membership);
                        Vec::new()
                    }
                });
            }
            let table_regrown = keyspace.key_capacity() != capacity_before;
            (
                keyspace.take_events(),
                table_regrown,
                keyspace.take_lock_tally(),
            )
        };
        count_lock_work(tally);
        METRICS.apply.observe_duration(started.elapsed());
        if table_regrown {
            // The old key table was dropped (a few times in the life of a keyspace).
            crate::memory::return_freed_memory();
        }
        if replies.is_empty() {
            return Ok(replies);
        }
        self.publish_applied();
        if !events.is_empty() {
            (self.on_events)(events);
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        // Copied now, under the read lock, so the snapshot is exactly the state at
        // `last_applied` however far apply has moved on when the builder runs. Apply waits
        // only for the copy; the builder encodes it.
        let keyspace = self
            .keyspace
            .read()
            .ok()
            .map(|keyspace| keyspace.snapshot_image());
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
        keyspace.set_replay_window_ms(self.replay_window_ms);
        keyspace.set_notify(self.notify.clone());
        drop(payload);

        let write_error = |e: AnyError| StorageIOError::write_snapshot(Some(meta.signature()), e);
        let mut guard = self.disk.lock_snapshot();
        self.disk.pace.snapshot_built(data.len());
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        self.disk.write_snapshot(&stored).map_err(write_error)?;
        *guard = meta.last_log_id;
        drop(guard);

        *self.keyspace.write().map_err(poisoned)? = keyspace;
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.publish_applied();
        crate::memory::return_freed_memory();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        let stored = self
            .disk
            .read_snapshot()
            .map_err(|e| StorageIOError::read_snapshot(None, AnyError::error(format!("{e:#}"))))?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    /// Sorting, serializing and storing a million locks takes about a second here: it runs
    /// on a blocking thread, so the node's runtime (a single thread on a single node) goes
    /// on serving and applying meanwhile.
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let image = self.keyspace.take().ok_or_else(keyspace_poisoned)?;
        let disk = self.disk.clone();
        let (last_applied, last_membership) = (self.last_applied, self.last_membership.clone());
        let built = tokio::task::spawn_blocking(move || {
            build_snapshot(&disk, last_applied, last_membership, image)
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(None, AnyError::error(e)))?;
        built.map_err(|e| StorageError::from(*e))
    }
}

/// Encodes `image`, the state at `last_applied`, and stores it as the node's snapshot
/// unless a newer one was stored (installed) meanwhile. The error is boxed: it crosses
/// from the blocking thread by value.
fn build_snapshot(
    disk: &Disk,
    last_applied: Option<LogId<NodeId>>,
    last_membership: Membership,
    image: SnapshotImage,
) -> Result<Snapshot<TypeConfig>, Box<StorageIOError<NodeId>>> {
    let payload = SnapshotPayload {
        last_applied,
        last_membership: last_membership.clone(),
        keyspace: image.encode(),
    };
    let data = bincode::serialize(&payload)
        .map_err(|e| Box::new(StorageIOError::write_snapshot(None, AnyError::new(&e))))?;
    drop(payload);
    disk.pace.snapshot_built(data.len());
    let meta = SnapshotMeta {
        last_log_id: last_applied,
        last_membership,
        snapshot_id: snapshot_id(disk.group, last_applied),
    };
    let write_error =
        |e: AnyError| Box::new(StorageIOError::write_snapshot(Some(meta.signature()), e));

    let mut stored_last = disk.lock_snapshot();
    if *stored_last <= meta.last_log_id {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        disk.write_snapshot(&stored).map_err(write_error)?;
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

    /// The stored snapshot: its file, or in a data dir from before snapshot files, its
    /// record in the state keyspace.
    fn read_snapshot(&self) -> anyhow::Result<Option<StoredSnapshot>> {
        match std::fs::read(&self.snapshot_path) {
            Ok(bytes) => Ok(Some(bincode::deserialize(&bytes).with_context(|| {
                format!("reading the snapshot {}", self.snapshot_path.display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.read_record(SNAPSHOT),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.snapshot_path.display())),
        }
    }

    /// Stores `stored` as the group's snapshot, on disk when this returns: written to a
    /// file beside the current one, fsynced, renamed over it, and the directory fsynced,
    /// so a crash at any point leaves one whole snapshot, the old or the new.
    fn write_snapshot(&self, stored: &StoredSnapshot) -> Result<(), AnyError> {
        let bytes = bincode::serialize(stored).map_err(|e| AnyError::new(&e))?;
        let next = self.snapshot_path.with_extension("next");
        let io = |e: std::io::Error| AnyError::new(&e);
        let mut file = File::create(&next).map_err(io)?;
        file.write_all(&bytes).map_err(io)?;
        file.sync_data().map_err(io)?;
        drop(file);
        std::fs::rename(&next, &self.snapshot_path).map_err(io)?;
        if let Some(dir) = self.snapshot_path.parent() {
            File::open(dir).and_then(|dir| dir.sync_all()).map_err(io)?;
        }
        // A record from before snapshot files is stale now. Its removal needs no fsync:
        // the file that replaces it is on disk already.
        let legacy = record_key(self.group, SNAPSHOT);
        if self
            .state
            .contains_key(legacy)
            .map_err(|e| AnyError::new(&e))?
        {
            let mut batch = self.db.batch();
            batch.remove(&self.state, legacy);
            batch
                .durability(Some(PersistMode::Buffer))
                .commit()
                .map_err(|e| AnyError::new(&e))?;
        }
        Ok(())
    }
}

/// Adds what an apply did to locks to the node's metrics.
fn count_lock_work(tally: Tally) {
    if tally.is_empty() {
        return;
    }
    let add = |counter: &std::sync::atomic::AtomicU64, n: u64| {
        if n > 0 {
            counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    };
    add(&METRICS.lock_grants, tally.grants);
    add(&METRICS.lock_waits, tally.waits);
    add(&METRICS.lease_expiries, tally.lease_expiries);
    add(&METRICS.wait_timeouts, tally.wait_timeouts);
    for ms in tally.hold_ms {
        METRICS.lock_hold.observe(ms.saturating_mul(1_000_000));
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
