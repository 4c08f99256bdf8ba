//! The Raft log of one group, its vote, and its committed and purged marks, in fjall.
//!
//! Appends are acknowledged to openraft only after an fsync of fjall's journal: an entry
//! the leader counts towards a quorum is on disk. A leader with peers fsyncs on a flusher
//! thread: our openraft (vendor/openraft/PATCHES.md) does not wait for a leader's own
//! fsync, so the entries go to the followers while the leader's disk writes them, and the
//! leader counts itself only once the flusher reports them on disk. A single node or a
//! follower fsyncs inside `append` (openraft waits for it there), which saves two thread
//! hand-offs per entry.
//!
//! The entries an append writes also stay in memory (`RecentEntries`) until they are read
//! for apply, which so skips reading them back from fjall and decoding them; a leader's
//! replication tasks copy the entries they send from there too.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Instant;

use fjall::{Database, PersistMode};
use openraft::storage::{LogFlushed, RaftLogReader, RaftLogStorage};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, LogState, OptionalSend, StorageError, StorageIOError,
    Vote,
};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::keys::{
    group_prefix, log_key, record_key, COMMITTED, LAST_PURGED, LOG_KEYSPACE, STATE_KEYSPACE, VOTE,
};
use super::{GroupId, NodeId, TypeConfig};
use crate::config::{snapshot_pace, storage_memory};
use crate::metrics::METRICS;

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// The log store of one group. openraft owns it (through `Raft::new`) and serializes every
/// call, as `RaftLogStorage` requires.
pub struct LogStore {
    group: GroupId,
    db: Database,
    log: fjall::Keyspace,
    state: fjall::Keyspace,
    flusher: Flusher,
    /// Set while this node leads peers: fsync on the flusher thread (see the module doc).
    fsync_on_thread: Arc<AtomicBool>,
    recent: Arc<Mutex<RecentEntries>>,
    /// The committed mark openraft last reported, not yet written: it goes into the next
    /// append's batch (one journal write per entry, not two), or is written on drop.
    unsaved_committed: Option<Option<LogId<NodeId>>>,
    /// Counts the bytes appended, for `snapshot_by_log_growth`.
    pace: Arc<super::LogPace>,
}

/// Reads entries for the replication tasks, concurrently with appends.
#[derive(Clone)]
pub struct LogReader {
    group: GroupId,
    log: fjall::Keyspace,
    recent: Arc<Mutex<RecentEntries>>,
}

impl LogStore {
    pub fn open(db: &Database, group: GroupId) -> anyhow::Result<LogStore> {
        Ok(LogStore {
            group,
            db: db.clone(),
            log: db.keyspace(LOG_KEYSPACE, super::log_keyspace_options)?,
            state: db.keyspace(STATE_KEYSPACE, super::keyspace_options)?,
            flusher: Flusher::spawn(db.clone(), group)?,
            fsync_on_thread: Arc::new(AtomicBool::new(false)),
            recent: Arc::new(Mutex::new(RecentEntries::new(
                storage_memory::LOG_CACHE_BYTES,
            ))),
            unsaved_committed: None,
            pace: Arc::default(),
        })
    }

    /// The log's growth, shared with the state machine and the snapshot pacer.
    pub fn pace(&self) -> Arc<super::LogPace> {
        self.pace.clone()
    }

    /// The switch between fsyncing inside `append` and on the flusher thread. Either way
    /// an append is acknowledged only once on disk; the switch only moves the wait.
    pub fn fsync_on_thread(&self) -> Arc<AtomicBool> {
        self.fsync_on_thread.clone()
    }

    /// True when this group has never voted nor logged anything on this node: the only
    /// time it may bootstrap the cluster.
    pub async fn is_fresh(&mut self) -> StorageResult<bool> {
        Ok(self.read_vote().await?.is_none() && self.get_log_state().await?.last_log_id.is_none())
    }

    fn reader(&self) -> LogReader {
        LogReader {
            group: self.group,
            log: self.log.clone(),
            recent: self.recent.clone(),
        }
    }

    fn recent(&self) -> MutexGuard<'_, RecentEntries> {
        lock_recent(&self.recent)
    }

    fn read_record<T: DeserializeOwned>(&self, tag: u8) -> Result<Option<T>, AnyError> {
        match self
            .state
            .get(record_key(self.group, tag))
            .map_err(|e| AnyError::new(&e))?
        {
            Some(bytes) => Ok(Some(
                bincode::deserialize(&bytes).map_err(|e| AnyError::new(&e))?,
            )),
            None => Ok(None),
        }
    }

    /// Buffers a batch in fjall's journal without waiting for the disk; durability comes
    /// from the flusher's fsync (appends, votes) or from a later one (everything else).
    /// A batch that cannot be written (a full disk, an I/O error) stops the node: fjall's
    /// journal may hold part of it (`stop_on_storage_failure`).
    fn commit_buffered(&self, batch: fjall::OwnedWriteBatch) -> Result<(), AnyError> {
        if let Err(err) = batch.durability(Some(PersistMode::Buffer)).commit() {
            stop_on_storage_failure("a write to the Raft log", &err);
        }
        Ok(())
    }

    /// Adds to `batch` the committed mark not yet written, if any.
    fn add_unsaved_committed(
        &mut self,
        batch: &mut fjall::OwnedWriteBatch,
    ) -> Result<(), AnyError> {
        if let Some(committed) = self.unsaved_committed.take() {
            let bytes = bincode::serialize(&committed).map_err(|e| AnyError::new(&e))?;
            batch.insert(&self.state, record_key(self.group, COMMITTED), bytes);
        }
        Ok(())
    }

    /// Adds to `batch` the removal of this group's entries with index in `range`.
    fn remove_entries(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        range: impl RangeBounds<u64>,
    ) -> Result<(), AnyError> {
        for guard in self.log.range(key_range(self.group, range)) {
            let key = guard.key().map_err(|e| AnyError::new(&e))?;
            batch.remove(&self.log, key);
        }
        Ok(())
    }
}

impl Drop for LogStore {
    /// Writes the last committed mark (buffered, as `save_committed` would have), so that
    /// a node shut down cleanly re-applies its whole committed log when it starts again.
    fn drop(&mut self) {
        if self.unsaved_committed.is_none() {
            return;
        }
        let mut batch = self.db.batch();
        let written = self
            .add_unsaved_committed(&mut batch)
            .and_then(|()| self.commit_buffered(batch));
        if let Err(err) = written {
            tracing::warn!(
                group = self.group,
                "saving the committed mark on shutdown: {err}"
            );
        }
    }
}

/// A replication task reads the entries it sends: copies of them from `recent` while it
/// holds the whole range (a follower that keeps up), from fjall otherwise.
impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        if let Some(entries) = lock_recent(&self.recent).copy(&range) {
            return Ok(entries);
        }
        Ok(read_entries(&self.log, self.group, range).map_err(StorageIOError::read_logs)?)
    }
}

/// openraft reads through the log store itself only to apply committed entries (and to
/// re-apply them at start-up), in order and each once: those come from `recent` when it
/// holds the whole range.
impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        if let Some(entries) = self.recent().take(&range) {
            return Ok(entries);
        }
        Ok(read_entries(&self.log, self.group, range).map_err(StorageIOError::read_logs)?)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self
            .read_record(LAST_PURGED)
            .map_err(StorageIOError::read_logs)?;
        let last_entry = match self.log.prefix(group_prefix(self.group)).next_back() {
            Some(guard) => {
                let bytes = guard.value().map_err(|e| StorageIOError::read_logs(&e))?;
                Some(decode_entry(&bytes).map_err(|e| StorageIOError::read_logs(&e))?)
            }
            None => None,
        };
        let last_log_id = last_entry.map(|e| e.log_id).or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        let bytes = bincode::serialize(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        let mut batch = self.db.batch();
        batch.insert(&self.state, record_key(self.group, VOTE), bytes);
        self.commit_buffered(batch)
            .map_err(StorageIOError::write_vote)?;
        // A vote must be on disk before it is sent: wait for the flusher.
        let (done, flushed) = oneshot::channel();
        self.flusher
            .request(FlushWaiter::Vote(done))
            .map_err(StorageIOError::write_vote)?;
        match flushed.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StorageIOError::write_vote(&e).into()),
            Err(e) => Err(StorageIOError::write_vote(&e).into()),
        }
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        Ok(self.read_record(VOTE).map_err(StorageIOError::read_vote)?)
    }

    /// Written later and without an fsync (`unsaved_committed`): `committed` is a hint for
    /// re-applying entries at start-up. A mark lost in a crash only leaves the last
    /// entries to be applied once a leader commits again (before any read or write is
    /// served), and a mark that reaches the disk is never ahead of the fsynced log.
    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        if let Some(id) = committed {
            METRICS.commit_index.store(id.index, Ordering::Relaxed);
        }
        self.unsaved_committed = Some(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        if let Some(committed) = self.unsaved_committed {
            return Ok(committed);
        }
        let committed: Option<Option<LogId<NodeId>>> =
            self.read_record(COMMITTED).map_err(StorageIOError::read)?;
        Ok(committed.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = self.db.batch();
        self.add_unsaved_committed(&mut batch)
            .map_err(StorageIOError::write_logs)?;
        let mut appended = Vec::new();
        let mut count = Appended::default();
        for entry in entries {
            let bytes = bincode::serialize(&entry)
                .map_err(|e| StorageIOError::write_log_entry(entry.log_id, &e))?;
            let size = bytes.len();
            count.add(&entry, size);
            batch.insert(&self.log, log_key(self.group, entry.log_id.index), bytes);
            appended.push((entry, size));
        }
        // Readable from here on; acknowledged to openraft only once fsynced.
        self.commit_buffered(batch)
            .map_err(StorageIOError::write_logs)?;
        let mut recent = self.recent();
        for (entry, size) in appended {
            self.pace.appended(size);
            recent.push(entry, size);
        }
        drop(recent);
        if !self.fsync_on_thread.load(Ordering::Relaxed) {
            callback.log_io_completed(sync_journal(&self.db, count));
            return Ok(());
        }
        Ok(self
            .flusher
            .request(FlushWaiter::Log(callback, count))
            .map_err(StorageIOError::write_logs)?)
    }

    /// Not fsynced: if the removal is lost in a crash, the node comes back with the old
    /// uncommitted suffix it already had, which the leader truncates again. The entries
    /// appended after it are fsynced, and fjall's journal reaches the disk in order.
    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.recent().drop_from(log_id.index);
        let mut batch = self.db.batch();
        self.remove_entries(&mut batch, log_id.index..)
            .map_err(StorageIOError::write_logs)?;
        Ok(self
            .commit_buffered(batch)
            .map_err(StorageIOError::write_logs)?)
    }

    /// The purge mark and the removals go in one batch, so a crash keeps both or neither.
    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.recent().drop_through(log_id.index);
        let bytes = bincode::serialize(&log_id).map_err(|e| StorageIOError::write_logs(&e))?;
        // From the entry after the last purge: the range below it holds only removals,
        // which a scan from the start would step over each time.
        let purged_before: Option<LogId<NodeId>> = self
            .read_record(LAST_PURGED)
            .map_err(StorageIOError::write_logs)?;
        let from = purged_before.map_or(0, |id| id.index + 1);
        let mut batch = self.db.batch();
        batch.insert(&self.state, record_key(self.group, LAST_PURGED), bytes);
        // By key, without reading the entries (`PURGE_BY_KEY_MAX_ENTRIES` says why).
        if log_id.index.saturating_sub(from) < snapshot_pace::PURGE_BY_KEY_MAX_ENTRIES {
            for index in from..=log_id.index {
                batch.remove(&self.log, &log_key(self.group, index)[..]);
            }
        } else {
            self.remove_entries(&mut batch, from..=log_id.index)
                .map_err(StorageIOError::write_logs)?;
        }
        Ok(self
            .commit_buffered(batch)
            .map_err(StorageIOError::write_logs)?)
    }
}

/// Recently appended entries, contiguous by index, oldest first, with their encoded sizes;
/// at most `max_bytes` of them (by encoded size), the oldest dropped first.
struct RecentEntries {
    entries: VecDeque<(Entry<TypeConfig>, usize)>,
    bytes: usize,
    max_bytes: usize,
}

impl RecentEntries {
    fn new(max_bytes: usize) -> RecentEntries {
        RecentEntries {
            entries: VecDeque::new(),
            bytes: 0,
            max_bytes,
        }
    }

    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(e, _)| e.log_id.index)
    }

    fn last_index(&self) -> Option<u64> {
        self.entries.back().map(|(e, _)| e.log_id.index)
    }

    /// Adds an entry just appended. One that replaces entries (a follower's conflicting
    /// suffix) drops them; one after a gap (a snapshot installed) drops everything older.
    fn push(&mut self, entry: Entry<TypeConfig>, size: usize) {
        let index = entry.log_id.index;
        self.drop_from(index);
        if self.last_index().is_some_and(|last| last + 1 != index) {
            self.drop_from(0);
        }
        self.entries.push_back((entry, size));
        self.bytes += size;
        while self.bytes > self.max_bytes {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((_, size)) = self.entries.pop_front() {
            self.bytes -= size;
        }
    }

    /// Drops the entries with index `index` and above.
    fn drop_from(&mut self, index: u64) {
        while self.last_index().is_some_and(|last| last >= index) {
            if let Some((_, size)) = self.entries.pop_back() {
                self.bytes -= size;
            }
        }
    }

    /// Drops the entries with index `index` and below.
    fn drop_through(&mut self, index: u64) {
        while self.first_index().is_some_and(|first| first <= index) {
            self.pop_front();
        }
    }

    /// Where the entries of `range` sit in `entries` (their offset and count), if all of
    /// them are here.
    fn locate(&self, range: &impl RangeBounds<u64>) -> Option<(usize, usize)> {
        let (start, end) = bounded(range)?;
        let first = self.first_index()?;
        let offset = usize::try_from(start.checked_sub(first)?).ok()?;
        let count = usize::try_from(end.checked_sub(start)?).ok()?;
        (count > 0 && offset + count <= self.entries.len()).then_some((offset, count))
    }

    /// Copies of the entries of `range`, if all of them are here.
    fn copy(&self, range: &impl RangeBounds<u64>) -> Option<Vec<Entry<TypeConfig>>> {
        let (offset, count) = self.locate(range)?;
        Some(
            self.entries
                .range(offset..offset + count)
                .map(|(entry, _)| entry.clone())
                .collect(),
        )
    }

    /// Takes out the entries of `range` if all of them are here, dropping any older ones
    /// on the way (reads for apply come in order); `None` sends the read to fjall.
    fn take(&mut self, range: &impl RangeBounds<u64>) -> Option<Vec<Entry<TypeConfig>>> {
        let (start, _) = bounded(range)?;
        if start > 0 {
            self.drop_through(start - 1);
        }
        let (offset, count) = self.locate(range)?;
        let taken: Vec<_> = self.entries.drain(offset..offset + count).collect();
        self.bytes -= taken.iter().map(|(_, size)| size).sum::<usize>();
        Some(taken.into_iter().map(|(entry, _)| entry).collect())
    }
}

/// `range` as `start..end`; `None` for an unbounded one.
fn bounded(range: &impl RangeBounds<u64>) -> Option<(u64, u64)> {
    let start = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.checked_add(1)?,
        Bound::Unbounded => return None,
    };
    let end = match range.end_bound() {
        Bound::Included(&i) => i.checked_add(1)?,
        Bound::Excluded(&i) => i,
        Bound::Unbounded => return None,
    };
    Some((start, end))
}

fn lock_recent(recent: &Mutex<RecentEntries>) -> MutexGuard<'_, RecentEntries> {
    // The cache is consistent between calls; a panic while holding it leaves it usable.
    recent
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read_entries(
    log: &fjall::Keyspace,
    group: GroupId,
    range: impl RangeBounds<u64>,
) -> Result<Vec<Entry<TypeConfig>>, AnyError> {
    let mut entries = Vec::new();
    for guard in log.range(key_range(group, range)) {
        let bytes = guard.value().map_err(|e| AnyError::new(&e))?;
        entries.push(decode_entry(&bytes).map_err(|e| AnyError::new(&e))?);
    }
    Ok(entries)
}

fn decode_entry(bytes: &[u8]) -> bincode::Result<Entry<TypeConfig>> {
    bincode::deserialize(bytes)
}

/// The keys of `group`'s entries with index in `range`, as fjall key bounds.
fn key_range(group: GroupId, range: impl RangeBounds<u64>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let key = |index: &u64| log_key(group, *index).to_vec();
    let start = match range.start_bound() {
        Bound::Included(i) => Bound::Included(key(i)),
        Bound::Excluded(i) => Bound::Excluded(key(i)),
        Bound::Unbounded => Bound::Included(key(&0)),
    };
    let end = match range.end_bound() {
        Bound::Included(i) => Bound::Included(key(i)),
        Bound::Excluded(i) => Bound::Excluded(key(i)),
        Bound::Unbounded => Bound::Included(key(&u64::MAX)),
    };
    (start, end)
}

/// What one append wrote, for the metrics of the fsync that makes it durable.
#[derive(Clone, Copy, Debug, Default)]
struct Appended {
    entries: u64,
    /// Client commands (and internal ops) in those entries.
    commands: u64,
}

impl Appended {
    fn add(&mut self, entry: &Entry<TypeConfig>, size: usize) {
        self.entries += 1;
        if let EntryPayload::Normal(batch) = &entry.payload {
            self.commands += batch.ops.len() as u64;
        }
        METRICS.entry_bytes.observe(size as u64);
    }

    fn and(self, other: Appended) -> Appended {
        Appended {
            entries: self.entries + other.entries,
            commands: self.commands + other.commands,
        }
    }
}

/// fsyncs fjall's journal, making `appended` durable (nothing for a vote). SyncData is
/// enough: fjall preallocates journal files and syncs their metadata when it creates them.
/// A failed fsync stops the node.
fn sync_journal(db: &Database, appended: Appended) -> io::Result<()> {
    let started = Instant::now();
    if let Err(err) = db.persist(PersistMode::SyncData) {
        stop_on_storage_failure("an fsync of the Raft log", &err);
    }
    METRICS.fsync.observe_duration(started.elapsed());
    if appended.entries > 0 {
        METRICS.entries_per_fsync.observe(appended.entries);
        METRICS.commands_per_fsync.observe(appended.commands);
    }
    Ok(())
}

/// The exit status of a node stopped by a storage failure (sysexits' EX_IOERR).
pub const STORAGE_FAILURE_EXIT_CODE: i32 = 74;

/// Ends the process at once. After a failed fsync the kernel may have dropped the dirty
/// pages it could not write, and a retried fsync can succeed without them (as PostgreSQL
/// learned), so a node that went on could acknowledge a write its disk does not hold. Nothing
/// written since the last good fsync was acknowledged; a restart recovers from what the disk
/// really holds, and the other nodes carry on meanwhile. A write that fails before its
/// fsync (a full disk) leaves the journal in a state fjall cannot vouch for, and stops the
/// node the same way; `server::disk` refuses writes before the disk is that full.
pub(crate) fn stop_on_storage_failure(what: &str, err: &dyn std::fmt::Display) -> ! {
    tracing::error!(
        %err,
        "{what} failed: stopping this node (exit status {STORAGE_FAILURE_EXIT_CODE}) rather than trust the page cache; restart it once the disk is healthy"
    );
    eprintln!("raftlock: {what} failed: {err}; stopping");
    std::process::exit(STORAGE_FAILURE_EXIT_CODE);
}

/// Who waits for the next fsync of the journal.
enum FlushWaiter {
    Log(LogFlushed<TypeConfig>, Appended),
    Vote(oneshot::Sender<io::Result<()>>),
}

impl FlushWaiter {
    fn appended(&self) -> Appended {
        match self {
            FlushWaiter::Log(_, appended) => *appended,
            FlushWaiter::Vote(_) => Appended::default(),
        }
    }

    fn complete(self, result: io::Result<()>) {
        match self {
            FlushWaiter::Log(callback, _) => callback.log_io_completed(result),
            FlushWaiter::Vote(done) => {
                // The waiter is gone only if the Raft task is; nothing is left to tell.
                let _ = done.send(result);
            }
        }
    }
}

/// A thread that fsyncs fjall's journal for whoever queued since its last fsync, in order.
/// It ends when the log store (the only sender) is dropped.
struct Flusher {
    waiters: mpsc::Sender<FlushWaiter>,
}

impl Flusher {
    fn spawn(db: Database, group: GroupId) -> io::Result<Flusher> {
        let (waiters, queue) = mpsc::channel::<FlushWaiter>();
        thread::Builder::new()
            .name(format!("raft-fsync-{group}"))
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    batch.extend(queue.try_iter());
                    let appended = batch
                        .iter()
                        .fold(Appended::default(), |sum, w| sum.and(w.appended()));
                    let result = sync_journal(&db, appended);
                    for waiter in batch {
                        waiter.complete(
                            result
                                .as_ref()
                                .map(|_| ())
                                .map_err(|e| io::Error::new(e.kind(), e.to_string())),
                        );
                    }
                }
            })?;
        Ok(Flusher { waiters })
    }

    fn request(&self, waiter: FlushWaiter) -> Result<(), AnyError> {
        self.waiters
            .send(waiter)
            .map_err(|_| AnyError::error("the fsync thread stopped"))
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;

    fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    fn filled(max_bytes: usize, indexes: std::ops::RangeInclusive<u64>) -> RecentEntries {
        let mut recent = RecentEntries::new(max_bytes);
        for index in indexes {
            recent.push(entry(1, index), 10);
        }
        recent
    }

    fn indexes(entries: Option<Vec<Entry<TypeConfig>>>) -> Option<Vec<u64>> {
        entries.map(|entries| entries.iter().map(|e| e.log_id.index).collect())
    }

    #[test]
    fn reads_for_apply_take_entries_in_order_once() {
        let mut recent = filled(1000, 1..=5);
        assert_eq!(indexes(recent.take(&(1..3))), Some(vec![1, 2]));
        assert_eq!(indexes(recent.take(&(3..=4))), Some(vec![3, 4]));
        // Taken entries are gone: a second read goes to fjall.
        assert_eq!(indexes(recent.take(&(3..5))), None);
        assert_eq!(recent.first_index(), Some(5));
        assert_eq!(recent.bytes, 10);
    }

    #[test]
    fn a_range_not_wholly_held_is_left_to_fjall() {
        let mut recent = filled(1000, 3..=5);
        assert_eq!(
            indexes(recent.take(&(2..4))),
            None,
            "starts before the first"
        );
        assert_eq!(indexes(recent.take(&(3..7))), None, "ends past the last");
        assert_eq!(indexes(recent.take(&(3..3))), None, "empty");
        assert_eq!(indexes(recent.take(&(..4))), None, "unbounded");
        assert_eq!(
            indexes(recent.take(&(4..6))),
            Some(vec![4, 5]),
            "older ones dropped"
        );
        assert_eq!(recent.bytes, 0);
    }

    #[test]
    fn replication_copies_entries_and_leaves_them_for_apply() {
        let mut recent = filled(1000, 4..=8);
        assert_eq!(indexes(recent.copy(&(5..7))), Some(vec![5, 6]));
        assert_eq!(indexes(recent.copy(&(4..=8))), Some(vec![4, 5, 6, 7, 8]));
        assert_eq!(
            indexes(recent.copy(&(3..5))),
            None,
            "starts before the first"
        );
        assert_eq!(indexes(recent.copy(&(8..10))), None, "ends past the last");
        assert_eq!(indexes(recent.copy(&(6..6))), None, "empty");
        assert_eq!(recent.bytes, 50, "copying removes nothing");
        assert_eq!(indexes(recent.take(&(4..6))), Some(vec![4, 5]));
        assert_eq!(indexes(recent.copy(&(4..6))), None, "taken for apply");
    }

    #[test]
    fn the_oldest_entries_go_past_the_byte_bound() {
        let recent = filled(35, 1..=10);
        assert_eq!(recent.first_index(), Some(8));
        assert_eq!(recent.last_index(), Some(10));
        assert_eq!(recent.bytes, 30);
    }

    #[test]
    fn a_conflicting_append_replaces_the_suffix_and_a_gap_starts_afresh() {
        let mut recent = filled(1000, 1..=5);
        recent.push(entry(2, 3), 10);
        assert_eq!(recent.last_index(), Some(3));
        assert_eq!(recent.entries.back().unwrap().0.log_id.leader_id.term, 2);
        assert_eq!(recent.bytes, 30);
        recent.push(entry(2, 9), 10);
        assert_eq!(recent.first_index(), Some(9));
        assert_eq!(recent.bytes, 10);
    }

    #[test]
    fn truncate_and_purge_drop_their_ranges() {
        let mut recent = filled(1000, 1..=6);
        recent.drop_from(5);
        recent.drop_through(2);
        assert_eq!(
            (recent.first_index(), recent.last_index()),
            (Some(3), Some(4))
        );
        assert_eq!(recent.bytes, 20);
    }
}
