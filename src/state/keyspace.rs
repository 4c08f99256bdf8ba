//! The keyspace: the replicated state of one shard (`Replicated`, what a snapshot holds)
//! and what one node keeps beside it while it applies entries (`Runtime`), with the
//! primitives every command uses to read, store and remove keys.

use std::collections::hash_map::RandomState;
use std::collections::BTreeSet;
use std::num::NonZeroU64;
use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use indexmap::IndexMap;

use super::{
    locks, lua, notify, now_i64, replay, scripts, session, undo, Entry, Event, ExpiryHold, Key,
    LockEvent, Removals, Ttl, Value,
};
use crate::config::state_limits::MAX_TRACKED_REMOVALS;
use crate::reply::Reply;

/// All keys of one shard, with their deadlines, the fencing counter and the record of what
/// changed since the store last persisted: the replicated state, which every node
/// computes alike and a snapshot holds (`replicated`), and the node's own runtime beside
/// it (`runtime`), which no snapshot holds and no reply depends on.
#[derive(Debug, Default)]
pub struct Keyspace {
    pub(super) replicated: Replicated,
    pub(super) runtime: Runtime,
    /// Every script runs in Lua, the known release scripts too (`lua::native`): unit
    /// tests and the fuzz targets set it to compare the two.
    #[cfg(any(test, fuzzing))]
    pub(crate) lua_only: bool,
}

/// What every replica holds alike after the same entries: the keys, the counters, the
/// script cache and the sessions, which a snapshot holds (`snapshot`), and the indexes
/// over the keys (`expiry`, `lock_timers`, `queued`), which a node rebuilds from them
/// when it loads one.
///
/// The keys live in an `IndexMap`: a hash table of indices into one dense vector of
/// `(hash, key, entry)` (120 bytes), so a table kept at most 7/8 full costs 9 bytes a slot
/// rather than a whole entry a slot, and the vector's unused tail is never touched (nor
/// resident). Keys are `Key`s, a short one inline; the indexes hold copies of them, so
/// nothing shares a key and no key needs a reference count.
///
/// The maps use std's randomly seeded hasher (clients choose keys, so a fixed hash would
/// invite collision attacks). The seed changes only memory layout and iteration order, and
/// no iteration order reaches a reply or persisted bytes: KEYS sorts, SCAN orders by its
/// own fixed hash, snapshots sort by key.
#[derive(Debug, Default)]
pub(super) struct Replicated {
    pub(super) entries: IndexMap<Key, Entry, RandomState>,
    /// `(deadline_ms, key)` for every key with a deadline, so the next deadline and the
    /// purge of passed ones cost O(log n) per key rather than a walk of the keyspace.
    pub(super) expiry: BTreeSet<(u64, Key)>,
    /// The last fencing token given out; the next is one more.
    pub(super) fence_counter: u64,
    /// The time of the last applied entry; an entry's time never goes below it.
    pub(super) last_now_ms: u64,
    /// `(next_deadline_ms, key)` for every lock with a lease or a timed wait, so apply
    /// finds the locks whose time has come without a walk of the keyspace.
    pub(super) lock_timers: locks::timers::LockTimers,
    /// Scripts by sha1: replicated state, persisted, so EVALSHA works on every node and
    /// after a restart.
    pub(super) scripts: scripts::ScriptStore,
    /// The last revision given to a modification of any key; the next is one more.
    pub(super) revision_counter: u64,
    /// Recent removals, so a WATCH of a key that was missing notices it was created and
    /// removed again before EXEC.
    pub(super) removals: Removals,
    /// While a new leader's grace lasts, nothing expires.
    pub(super) hold: ExpiryHold,
    /// The leader's wall clock minus cluster time, as of its last `raftlock.wallclock` op:
    /// translates the Unix times clients send and ask for (`wall`).
    pub(super) wall_offset_ms: i64,
    /// The client sessions open in the current term (`session`).
    pub(super) sessions: session::OpenSessions,
    /// The locks with waiters or unconfirmed grants (a queue box), in key order: the ones
    /// a new term detaches sessions in, found without a walk of the keyspace.
    pub(super) queued: BTreeSet<Key>,
}

/// What one node keeps while it applies entries, beside the replicated state: never in a
/// snapshot, and never the cause of a reply that differs between nodes.
#[derive(Debug, Default)]
pub(super) struct Runtime {
    /// What apply did that the node must hear about, since `take_events`.
    pub(super) events: Vec<Event>,
    /// The node's Lua state and compiled scripts: a cache, not state.
    pub(super) lua: lua::EngineSlot,
    /// While a script runs: what it changed, to undo if it fails.
    pub(super) undo: Option<undo::UndoLog>,
    /// The log index of the entry being applied (the last applied, between entries) and
    /// the position of the op in it: the seed of scripts' random numbers.
    pub(super) entry_index: u64,
    pub(super) op_position: u64,
    /// How many random choices (SPOP, SRANDMEMBER) the current op has made, so that each
    /// choice of a script or a transaction draws other numbers (`Keyspace::draw_seed`).
    /// Set to 0 at every op; an atomic because read handlers, which run inside ops too
    /// (scripts, transactions), have only `&Keyspace`.
    pub(super) draws: AtomicU64,
    /// While `apply_entry` runs its ops: a random choice then comes from the op's place
    /// in the log; outside it (a read on one node), from the replicated state alone.
    pub(super) applying: bool,
    /// Recent writes that carried a Redlock token, so that the copies a client sent to the
    /// other nodes are answered alike (`replay`). Changes replies only, never the state.
    pub(super) replay: replay::ReplayCache,
    /// The node's `notify-keyspace-events`, and the write whose changes it notices.
    pub(super) notify: notify::NotifyFlags,
    pub(super) noticed: Option<notify::NoticedOp>,
    /// Locks granted, queued, expired, and holds timed, for the node's metrics.
    pub(super) lock_tally: locks::Tally,
}

impl Keyspace {
    pub fn new() -> Keyspace {
        Keyspace::default()
    }

    /// The client sessions open now (LOCKINFO's `attached`).
    pub(crate) fn open_sessions(&self) -> &session::OpenSessions {
        &self.replicated.sessions
    }

    /// How many keys fit before the key table grows (and drops its old buffers).
    pub(crate) fn key_capacity(&self) -> usize {
        self.replicated.entries.capacity()
    }

    pub fn last_now_ms(&self) -> u64 {
        self.replicated.last_now_ms
    }

    /// The hold the latest leader placed on expiry.
    pub(crate) fn expiry_hold(&self) -> ExpiryHold {
        self.replicated.hold
    }

    /// The leader's wall clock minus cluster time (`wall`).
    pub(crate) fn wall_offset_ms(&self) -> i64 {
        self.replicated.wall_offset_ms
    }

    /// The cluster time of the Unix time `wall_ms` (EXPIREAT, SET PXAT).
    pub(crate) fn cluster_ms_from_wall(&self, wall_ms: i64) -> i64 {
        wall_ms.saturating_sub(self.replicated.wall_offset_ms)
    }

    /// The Unix time of the cluster time `cluster_ms` (EXPIRETIME, TIME in scripts).
    pub(crate) fn wall_ms_from_cluster(&self, cluster_ms: u64) -> i64 {
        now_i64(cluster_ms).saturating_add(self.replicated.wall_offset_ms)
    }

    /// Node-local: how long a Redlock copy may follow its original (`replay`; 0: off).
    pub(crate) fn set_replay_window_ms(&mut self, window_ms: u64) {
        self.runtime.replay.set_window_ms(window_ms);
    }

    /// Events since the last call, in the order apply produced them.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.runtime.events)
    }

    /// What applies did to locks since the last call, for the node's metrics.
    pub fn take_lock_tally(&mut self) -> locks::Tally {
        self.runtime.lock_tally.take()
    }

    /// The key's entry if it exists at `now_ms`.
    pub(crate) fn get(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.replicated
            .entries
            .get(key)
            .filter(|entry| entry.is_live(now_ms, &self.replicated.hold))
    }

    /// The key's entry for a write: one whose deadline has passed is removed first (and
    /// the removal recorded), so the write sees the key as missing.
    pub(crate) fn get_for_write(&mut self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        if self
            .replicated
            .entries
            .get(key)?
            .is_live(now_ms, &self.replicated.hold)
        {
            self.replicated.entries.get(key)
        } else {
            let noticed = self.runtime.noticed.take();
            self.remove(key);
            self.runtime.noticed = noticed;
            self.notice_expired(key);
            None
        }
    }

    /// Every key whose entry exists at `now_ms`, in no particular order.
    pub(crate) fn live_entries(&self, now_ms: u64) -> impl Iterator<Item = (&Key, &Entry)> + Clone {
        self.replicated
            .entries
            .iter()
            .filter(move |(_, entry)| entry.is_live(now_ms, &self.replicated.hold))
    }

    /// WRONGTYPE if `key` holds a live lock: string writes that would replace a value
    /// refuse to replace a lock (its holders and queue would vanish unannounced).
    pub(crate) fn refuse_lock(&self, key: &[u8], now_ms: u64) -> Result<(), Reply> {
        match self.get(key, now_ms) {
            Some(entry) if entry.as_lock().is_some() => Err(Reply::wrong_type()),
            _ => Ok(()),
        }
    }

    /// What the STORE forms (SUNIONSTORE, ZUNIONSTORE, ZRANGESTORE...) do with their
    /// result of `len` members: it replaces `destination`, without a deadline, or removes
    /// it when empty. A lock is never replaced (WRONGTYPE). The reply: `len`.
    pub(crate) fn store_result(
        &mut self,
        destination: &[u8],
        value: Value,
        len: usize,
        now_ms: u64,
    ) -> Result<Reply, Reply> {
        self.refuse_lock(destination, now_ms)?;
        if len == 0 {
            self.remove_live(destination, now_ms);
        } else {
            self.store(destination, value, Ttl::Clear, now_ms);
        }
        Ok(Reply::Int(len as i64))
    }

    /// Stores `value` under `key` with a new fencing token; a deadline at or before
    /// `now_ms` removes the key instead, as Redis does with a past EXAT.
    ///
    /// A new key is copied into its own allocation: `key` may be a slice of a larger
    /// buffer (a network read, a decoded entry) that we must not pin for the key's life.
    /// Callers copy values for the same reason.
    pub(crate) fn store(&mut self, key: &[u8], value: Value, ttl: Ttl, now_ms: u64) {
        if let Ttl::At(at) = ttl {
            if at <= 0 || at as u64 <= now_ms {
                self.remove(key);
                return;
            }
        }
        self.note_change(key);
        let old_deadline = self
            .replicated
            .entries
            .get(key)
            .and_then(Entry::deadline_ms);
        let deadline_ms = match ttl {
            // A passed deadline belongs to a value that no longer exists.
            Ttl::Keep => {
                old_deadline.filter(|&deadline| self.replicated.hold.live(deadline, now_ms))
            }
            Ttl::Clear => None,
            Ttl::At(at) => Some(at as u64),
        };
        self.reindex(key, old_deadline, deadline_ms);
        self.replicated.fence_counter += 1;
        if matches!(value, Value::List(_) | Value::Zset(_)) {
            // A list or sorted set arrives whole (RENAME, ZUNIONSTORE): clients blocked on
            // this key may be served.
            self.runtime
                .events
                .push(Event::Filled(Bytes::copy_from_slice(key)));
        }
        let entry = Entry {
            value,
            deadline: deadline_ms.and_then(NonZeroU64::new),
            token: self.replicated.fence_counter,
            revision: 0,
            timer: Default::default(),
        };
        match self.replicated.entries.get_index_of(key) {
            Some(slot) => {
                // Callers refuse to replace a lock; were one replaced, its timer goes, and
                // so does its place among the queued locks.
                self.replicated
                    .lock_timers
                    .set(&mut self.replicated.entries, slot, None);
                if self.replicated.entries[slot].as_lock().is_some() {
                    self.replicated.queued.remove(key);
                }
                self.replicated.entries[slot] = entry;
            }
            None => {
                self.replicated.entries.insert(Key::from(key), entry);
            }
        }
        self.modified(key);
    }

    /// Removes the key (expired or not) and records the removal.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.note_change(key);
        let (key, entry) = self.take_entry(key)?;
        if let Some(deadline) = entry.deadline_ms() {
            self.replicated.expiry.remove(&(deadline, key.clone()));
        }
        if let Some(lock) = entry.as_lock() {
            self.end_waits(&key, lock);
        }
        self.removed(&key);
        self.notice_change(&key, true);
        Some(entry)
    }

    /// Removes the key and returns its entry if it existed at `now_ms` (an expired one is
    /// removed too, but reported as missing).
    pub(crate) fn remove_live(&mut self, key: &[u8], now_ms: u64) -> Option<Entry> {
        let hold = self.replicated.hold;
        self.remove(key)
            .filter(|entry| entry.is_live(now_ms, &hold))
    }

    /// Removes every key (FLUSHALL). The fence counter stays: tokens are never reused.
    pub(crate) fn clear(&mut self) {
        self.note_clear();
        // In key order, so every replica reports the ended waits in one order.
        let mut locks: Vec<(Key, locks::Lock)> = self
            .replicated
            .entries
            .iter()
            .filter_map(|(key, entry)| Some((key.clone(), entry.as_lock()?.clone())))
            .collect();
        locks.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, lock) in &locks {
            self.end_waits(key, lock);
        }
        // Fresh maps, not cleared ones: as in Redis, FLUSHALL gives the memory back
        // (a cleared map keeps its capacity, 120 bytes a slot).
        let removed: Option<Vec<Key>> = (self.replicated.entries.len() <= MAX_TRACKED_REMOVALS)
            .then(|| {
                let mut keys: Vec<Key> = self.replicated.entries.keys().cloned().collect();
                // Sorted: replicas (and restored ones) record them in one order.
                keys.sort_unstable();
                keys
            });
        self.replicated.entries = IndexMap::default();
        self.replicated.expiry.clear();
        self.replicated.lock_timers.clear();
        self.replicated.queued.clear();
        self.replicated.revision_counter += 1;
        // As Redis does, FLUSHALL changes only the watched keys that existed: a WATCH of
        // a missing key still holds after it. Past what can be remembered one by one,
        // every missing key counts as removed (an EXEC fails that would have run).
        match removed {
            Some(keys) => {
                for key in &keys {
                    self.replicated
                        .removals
                        .record(key, self.replicated.revision_counter);
                }
            }
            None => self
                .replicated
                .removals
                .remove_all(self.replicated.revision_counter),
        }
    }

    /// A lock vanishes (FLUSHALL): its queued clients are told their wait is over.
    pub(super) fn end_waits(&mut self, key: &[u8], lock: &locks::Lock) {
        for waiter in lock.queue.iter() {
            self.runtime
                .events
                .push(Event::Lock(LockEvent::WaitTimedOut {
                    resource: Bytes::copy_from_slice(key),
                    owner: waiter.owner.clone(),
                }));
        }
    }

    /// Takes the key's entry out of the map, with its lock timer. The map's last entry
    /// moves into the freed slot, and its timer follows it: every removal comes here.
    pub(super) fn take_entry(&mut self, key: &[u8]) -> Option<(Key, Entry)> {
        let slot = self.replicated.entries.get_index_of(key)?;
        self.replicated
            .lock_timers
            .set(&mut self.replicated.entries, slot, None);
        let taken = self.replicated.entries.swap_remove_index(slot)?;
        if slot < self.replicated.entries.len() {
            self.replicated.lock_timers.moved(
                &self.replicated.entries,
                self.replicated.entries.len(),
                slot,
            );
        }
        if taken
            .1
            .as_lock()
            .is_some_and(|lock| lock.queue.is_present())
        {
            self.replicated.queued.remove(key);
        }
        Some(taken)
    }
}
