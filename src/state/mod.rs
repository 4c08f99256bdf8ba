//! The deterministic state machine: no I/O, no clock, no randomness. The same entries
//! applied in the same order give the same state and the same replies on every node.
//!
//! Time comes only from the entries: each carries the cluster time `now_ms` (advanced by
//! the leader's monotonic clock, never by a wall clock: `wall`), and a key whose
//! deadline is at or before that time no longer exists for anyone. Reads simply do not see
//! it; the next entry removes it for good (a committed removal), so every replica drops it
//! at the same point of the log.

pub mod glob;
pub mod hashes;
pub mod hold;
mod key;
pub mod keys;
pub mod lists;
pub mod lock;
pub mod locks;
pub(crate) mod lua;
mod persist;
pub mod pubsub;
mod replay;
mod revisions;
pub mod scripts;
pub mod server;
pub mod session;
pub mod strings;
#[cfg(test)]
mod tests;
mod timers;
pub mod txn;
mod undo;
pub mod wall;
pub mod zsets;

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, VecDeque};
use std::num::NonZeroU64;

use bytes::Bytes;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::command::{self, Handler};
use crate::config::state_limits::MAX_TRACKED_REMOVALS;
use crate::reply::Reply;

pub use hold::ExpiryHold;
pub(crate) use key::Key;
pub use lock::LockEvent;
pub use persist::{SnapshotImage, StateError};
use revisions::Removals;

/// Something apply did that the node must act on outside the state machine: wake a
/// blocked client, tell subscribers. Not persisted: a node that restarts has no blocked
/// clients, and the state itself holds every queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Lock(LockEvent),
    /// Elements were added to the list at this key (or a list was stored there): a
    /// client blocked in BLPOP and the like on this node may now be served.
    ListPushed(Bytes),
    /// PUBLISH (or SPUBLISH, `sharded`): every node hands the message to its own
    /// subscribers of the channel.
    Published {
        channel: Bytes,
        message: Bytes,
        sharded: bool,
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
    Lock(lock::Lock),
    /// Fields in byte order, so HGETALL, HKEYS and HVALS answer alike on every node.
    Hash(Box<hashes::Hash>),
    Zset(Box<zsets::SortedSet>),
    /// Never empty: the command that removes the last element removes the key.
    List(Box<VecDeque<Bytes>>),
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
        }
    }

    /// A collection with no elements left, which Redis never keeps as a key.
    fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) | Value::Lock(_) => false,
            Value::Hash(hash) => hash.is_empty(),
            Value::Zset(zset) => zset.is_empty(),
            Value::List(list) => list.is_empty(),
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
    deadline: Option<NonZeroU64>,
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
    timer: timers::HeapPos,
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

    pub fn as_lock(&self) -> Option<&lock::Lock> {
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

    fn is_live(&self, now_ms: u64, hold: &ExpiryHold) -> bool {
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

/// All keys of one shard, with their deadlines, the fencing counter and the record of what
/// changed since the store last persisted.
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
pub struct Keyspace {
    entries: IndexMap<Key, Entry, RandomState>,
    /// `(deadline_ms, key)` for every key with a deadline, so the next deadline and the
    /// purge of passed ones cost O(log n) per key rather than a walk of the keyspace.
    expiry: BTreeSet<(u64, Key)>,
    /// The last fencing token given out; the next is one more.
    fence_counter: u64,
    /// The time of the last applied entry; an entry's time never goes below it.
    last_now_ms: u64,
    /// `(next_deadline_ms, key)` for every lock with a lease or a timed wait, so apply
    /// finds the locks whose time has come without a walk of the keyspace.
    lock_timers: timers::LockTimers,
    /// What apply did that the node must hear about, since `take_events`.
    events: Vec<Event>,
    /// Scripts by sha1: replicated state, persisted, so EVALSHA works on every node and
    /// after a restart.
    scripts: scripts::ScriptStore,
    /// The node's Lua state and compiled scripts: a cache, not state.
    lua: lua::EngineSlot,
    /// While a script runs: what it changed, to undo if it fails.
    undo: Option<undo::UndoLog>,
    /// The last revision given to a modification of any key; the next is one more.
    revision_counter: u64,
    /// Recent removals, so a WATCH of a key that was missing notices it was created and
    /// removed again before EXEC.
    removals: Removals,
    /// While a new leader's grace lasts, nothing expires.
    hold: ExpiryHold,
    /// The log index of the entry being applied (the last applied, between entries) and
    /// the position of the op in it: the seed of scripts' random numbers. Not persisted.
    entry_index: u64,
    op_position: u64,
    /// The leader's wall clock minus cluster time, as of its last `raftlock.wallclock` op:
    /// translates the Unix times clients send and ask for (`wall`).
    wall_offset_ms: i64,
    /// The client sessions open in the current term (`session`).
    sessions: session::OpenSessions,
    /// Recent writes that carried a Redlock token, so that the copies a client sent to the
    /// other nodes are answered alike (`replay`). Node-local: not persisted.
    replay: replay::ReplayCache,
    /// The locks with waiters or unconfirmed grants (a queue box), in key order: the ones
    /// a new term detaches sessions in, found without a walk of the keyspace.
    queued: BTreeSet<Key>,
    /// Every script runs in Lua, the known release scripts too (`lua::native`): unit
    /// tests and the fuzz targets set it to compare the two.
    #[cfg(any(test, fuzzing))]
    pub(crate) lua_only: bool,
}

impl Keyspace {
    pub fn new() -> Keyspace {
        Keyspace::default()
    }

    /// Applies one Raft entry: time moves to `max(batch.now_ms, last_now_ms)`, keys whose
    /// deadline has passed are removed, then each op runs in order. One reply per op.
    ///
    /// A new leader's epoch op at the head of the entry takes effect before anything
    /// else: its first entry must not expire what its predecessor's clock had not.
    pub fn apply_batch(&mut self, batch: &Batch) -> Vec<Reply> {
        self.apply_entry(0, batch)
    }

    /// `apply_batch` for the entry at log index `index`, which seeds the scripts' random
    /// numbers: the same on every replica, different for every script run.
    pub fn apply_entry(&mut self, index: u64, batch: &Batch) -> Vec<Reply> {
        self.entry_index = index;
        let log_is_new = self.last_now_ms == 0;
        let now_ms = batch.now_ms.max(self.last_now_ms);
        self.last_now_ms = now_ms;
        for op in batch.ops.iter().take_while(|op| is_internal_op(op)) {
            if hold::is_epoch_op(op) {
                self.begin_epoch(now_ms, log_is_new, op);
            } else if let Ok(offset) = wall::offset_from_op(op, now_ms) {
                self.wall_offset_ms = offset;
            }
        }
        self.purge_expired(now_ms);
        self.advance_locks(now_ms);
        batch
            .ops
            .iter()
            .enumerate()
            .map(|(position, argv)| {
                self.op_position = position as u64;
                self.apply_op(now_ms, argv)
            })
            .collect()
    }

    /// The seed of `math.random` for a script run now: from the log index and position of
    /// the op that runs it, so every replica draws the same numbers and every call others
    /// (Redis 7 does not reseed between scripts either). A read (EVAL_RO) runs on one node
    /// only and is seeded from the last entry and the read's time.
    pub(crate) fn script_seed(&self, now_ms: u64) -> u64 {
        let op = (self.entry_index << 16) ^ self.op_position ^ now_ms.rotate_left(40);
        crate::fnv::hash(&op.to_le_bytes())
    }

    fn apply_op(&mut self, now_ms: u64, argv: &[Bytes]) -> Reply {
        if hold::is_epoch_op(argv) {
            return self.begin_epoch(now_ms, false, argv);
        }
        if session::is_op(argv, session::SESSION_OP) {
            return self.apply_in_session(now_ms, argv);
        }
        if session::is_op(argv, session::DETACH_OP) {
            return match argv {
                [_, id] => match session::SessionId::parse(id) {
                    Some(id) => Reply::Int(self.sessions.close(&id) as i64),
                    None => Reply::error("ERR invalid session id"),
                },
                _ => Reply::wrong_arity(session::DETACH_OP),
            };
        }
        if wall::is_wall_op(argv) {
            return match wall::offset_from_op(argv, now_ms) {
                Ok(offset) => {
                    self.wall_offset_ms = offset;
                    Reply::Ok
                }
                Err(reply) => reply,
            };
        }
        let spec = match command::resolve(argv) {
            Ok(spec) => spec,
            Err(reply) => return reply,
        };
        if !spec.arity_ok(argv.len()) {
            return Reply::wrong_arity(spec.name);
        }
        match spec.handler {
            Handler::Write(handler) if self.replay.enabled() => {
                match replay::replayable_keys(spec, argv) {
                    Some(keys) => self.apply_replayable(now_ms, argv, handler, keys),
                    None => handler(self, now_ms, argv),
                }
            }
            Handler::Write(handler) => handler(self, now_ms, argv),
            // A read a connection pipelined behind its writes runs in the log, in order.
            Handler::Read(handler) => handler(self, now_ms, argv),
            _ => Reply::Error(format!("ERR '{}' is not a data command", spec.name)),
        }
    }

    /// Runs a write that carries a Redlock token (`replay`): a copy of an earlier identical
    /// write that finds its keys as that one left them and changes nothing is answered
    /// with that one's reply. It runs either way, so the state is the same on every
    /// replica whatever its cache holds.
    fn apply_replayable(
        &mut self,
        now_ms: u64,
        argv: &[Bytes],
        handler: command::WriteFn,
        keys: Vec<Bytes>,
    ) -> Reply {
        // A copy is answered as the original was if the keys are as the original left
        // them, or if the original removed them (a release: the copy's "released" is
        // true of the request, though another client may hold the lock by now).
        let earlier = self.replay.earlier(argv, now_ms).filter(|earlier| {
            let removed = earlier.keys.iter().all(|(_, revision)| *revision == 0);
            removed
                || earlier
                    .keys
                    .iter()
                    .all(|(key, revision)| self.unchanged_since(key, *revision, earlier.seen_at))
        });
        let counter_before = self.revision_counter;
        let reply = handler(self, now_ms, argv);
        let changed = self.revision_counter != counter_before;
        match earlier {
            Some(earlier) if !changed => earlier.reply,
            _ => {
                if !reply.is_error() {
                    let revisions = keys
                        .into_iter()
                        .map(|key| {
                            let revision = self.revision(&key, now_ms);
                            (key, revision)
                        })
                        .collect();
                    let counter = self.revision_counter;
                    self.replay.record(argv, revisions, counter, &reply, now_ms);
                }
                reply
            }
        }
    }

    /// Node-local: how long a Redlock copy may follow its original (`replay`; 0: off).
    pub fn set_replay_window_ms(&mut self, window_ms: u64) {
        self.replay.set_window_ms(window_ms);
    }

    /// Applies a new leader's epoch op (`hold`). When it starts a new term, the sessions
    /// of earlier terms close, and their waiters and unconfirmed grants are detached with
    /// a reclaim deadline (`session`).
    fn begin_epoch(&mut self, now_ms: u64, log_is_new: bool, argv: &[Bytes]) -> Reply {
        let term_before = self.hold.term;
        let reply = self.hold.begin_epoch(now_ms, log_is_new, argv);
        let term = self.hold.term;
        if term > term_before {
            self.sessions.begin_term(term);
            let queued: Vec<Key> = self.queued.iter().cloned().collect();
            for key in queued {
                let _ = self.with_lock(&key, now_ms, false, |lock, fx| {
                    lock.detach_sessions_before(term, now_ms, fx)
                });
            }
        }
        reply
    }

    /// `raftlock.session ID TIMEOUT_MS command...`: LOCK, RLOCK or RENEW in the client's
    /// session, which opens it; the LOCKCANCEL of a connection that closed, which
    /// touches only what is still in its session; or `raftlock.reattach resource owner`
    /// (`session::REATTACH_OP`).
    fn apply_in_session(&mut self, now_ms: u64, argv: &[Bytes]) -> Reply {
        let Some((session, command)) = session::parse_session_op(argv) else {
            return Reply::error("ERR invalid raftlock.session op");
        };
        if session::is_op(command, session::REATTACH_OP) {
            let [_, resource, owner] = command else {
                return Reply::wrong_arity(session::REATTACH_OP);
            };
            let session = self.sessions.open(session, self.hold.term);
            let reattached = self.with_lock(resource, now_ms, false, |lock, fx| {
                lock.reattach_wait(owner, &session, now_ms, fx)
            });
            return match reattached {
                Ok(Some(lock::Acquire::Queued)) => Reply::Blocked,
                Ok(Some(lock::Acquire::Granted { token })) => Reply::Int(token as i64),
                Ok(_) => Reply::Nil,
                Err(reply) => reply,
            };
        }
        let spec = match command::resolve(command) {
            Ok(spec) => spec,
            Err(reply) => return reply,
        };
        if !spec.arity_ok(command.len()) {
            return Reply::wrong_arity(spec.name);
        }
        match spec.name {
            "lock" | "rlock" => {
                let session = self.sessions.open(session, self.hold.term);
                locks::lock_in(self, now_ms, command, Some(&session))
            }
            "renew" => {
                let session = self.sessions.open(session, self.hold.term);
                locks::renew_in(self, now_ms, command, Some(&session))
            }
            "lockcancel" => locks::lockcancel_in(self, now_ms, command, Some(&session.id)),
            name => Reply::Error(format!("ERR '{name}' does not run in a session")),
        }
    }

    /// The client sessions open now (LOCKINFO's `attached`).
    pub fn open_sessions(&self) -> &session::OpenSessions {
        &self.sessions
    }

    /// Runs a read command at the leader's time `now_ms`, or at the last entry's time if
    /// that is later (a new leader's clock may lag): a read never sees time go back from
    /// a write it follows. Never mutates: keys whose deadline has passed are invisible
    /// until an entry removes them.
    pub fn query(&self, now_ms: u64, argv: &[Bytes]) -> Reply {
        let now_ms = now_ms.max(self.last_now_ms);
        let spec = match command::resolve(argv) {
            Ok(spec) => spec,
            Err(reply) => return reply,
        };
        let Handler::Read(handler) = spec.handler else {
            return Reply::Error(format!("ERR '{}' is not a read command", spec.name));
        };
        if !spec.arity_ok(argv.len()) {
            return Reply::wrong_arity(spec.name);
        }
        handler(self, now_ms, argv)
    }

    /// How many keys fit before the key table grows (and drops its old buffers).
    pub fn key_capacity(&self) -> usize {
        self.entries.capacity()
    }

    pub fn last_now_ms(&self) -> u64 {
        self.last_now_ms
    }

    /// The hold the latest leader placed on expiry.
    pub fn expiry_hold(&self) -> ExpiryHold {
        self.hold
    }

    /// The leader's wall clock minus cluster time (`wall`).
    pub fn wall_offset_ms(&self) -> i64 {
        self.wall_offset_ms
    }

    /// The cluster time of the Unix time `wall_ms` (EXPIREAT, SET PXAT).
    pub(crate) fn cluster_ms_from_wall(&self, wall_ms: i64) -> i64 {
        wall_ms.saturating_sub(self.wall_offset_ms)
    }

    /// The Unix time of the cluster time `cluster_ms` (EXPIRETIME, TIME in scripts).
    pub(crate) fn wall_ms_from_cluster(&self, cluster_ms: u64) -> i64 {
        now_i64(cluster_ms).saturating_add(self.wall_offset_ms)
    }

    /// The earliest time at which a key, a lease or a wait can end, so the leader knows
    /// when to propose an entry that carries time past it. Nothing ends inside a hold.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let key = self.expiry.first().map(|(deadline, _)| *deadline);
        let lock = self.lock_timers.first().map(|(deadline, _)| deadline);
        let due = key.into_iter().chain(lock).min()?;
        Some(due.max(self.hold.until_ms))
    }

    /// Events since the last call, in the order apply produced them.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Runs `f` on the lock stored at `key`, creating an empty one when `create` is set and
    /// the key is missing. Keeps the lock timers, the changed-key record and the events
    /// right, and removes the key once nobody holds or waits for the lock. `Ok(None)`: no
    /// lock there and none created; `Err`: the key holds another type.
    pub(crate) fn with_lock<R>(
        &mut self,
        key: &[u8],
        now_ms: u64,
        create: bool,
        f: impl FnOnce(&mut lock::Lock, &mut lock::Effects) -> R,
    ) -> Result<Option<R>, Reply> {
        let is_lock = |entry: &Entry| match entry.as_lock() {
            Some(_) => Ok(()),
            None => Err(Reply::wrong_type()),
        };
        let empty = create.then(|| Value::Lock(lock::Lock::default()));
        if self
            .prepare_in_place(key, now_ms, is_lock, empty)?
            .is_none()
        {
            return Ok(None);
        }
        let entry = self.entries.get_mut(key).expect("the lock entry exists");
        let Value::Lock(lock) = &mut entry.value else {
            unreachable!("checked to be a lock above");
        };
        let before = lock.next_deadline_ms();
        // Only a real change is a new revision: a refused UNLOCK or a busy try-lock must
        // not fail a WATCH. The lock operations report it; debug builds check them against
        // a copy of the lock.
        #[cfg(debug_assertions)]
        let unchanged = lock.clone();
        let mut fx = lock::Effects {
            resource: key,
            hold: self.hold,
            fence_counter: &mut self.fence_counter,
            events: &mut Vec::new(),
            changed: false,
        };
        let result = f(lock, &mut fx);
        let changed = fx.changed;
        #[cfg(debug_assertions)]
        debug_assert_eq!(changed, *lock != unchanged, "a lock change was misreported");
        let lock_events = std::mem::take(fx.events);
        let after = lock.next_deadline_ms();
        let idle = lock.is_idle();
        let queued = lock.queue.is_present();
        self.events.extend(lock_events.into_iter().map(Event::Lock));
        if after != before {
            let slot = self
                .entries
                .get_index_of(key)
                .expect("the lock entry exists");
            self.lock_timers.set(&mut self.entries, slot, after);
        }
        if queued != self.queued.contains(key) {
            if queued {
                self.queued.insert(Key::from(key));
            } else {
                self.queued.remove(key);
            }
        }
        if idle {
            self.take_entry(key);
            self.modified(key);
        } else if changed {
            self.modified(key);
        }
        Ok(Some(result))
    }

    /// Runs `f` on the list stored at `key`, creating an empty one first when `create` is
    /// set and the key is missing. `f` answers whether it changed the list: a changed list
    /// gets a new fencing token and is recorded, and one left empty is removed (Redis keeps
    /// no empty lists). A list that grew reports `Event::ListPushed`. The key's deadline
    /// stays. `Ok(None)`: no list there and none created; `Err`: the key holds another type.
    pub(crate) fn with_list<R>(
        &mut self,
        key: &[u8],
        now_ms: u64,
        create: bool,
        f: impl FnOnce(&mut VecDeque<Bytes>) -> (R, bool),
    ) -> Result<Option<R>, Reply> {
        let is_list = |entry: &Entry| entry.as_list().map(|_| ());
        let empty = create.then(|| Value::List(Box::default()));
        if self
            .prepare_in_place(key, now_ms, is_list, empty)?
            .is_none()
        {
            return Ok(None);
        }
        let entry = self.entries.get_mut(key).expect("the list entry exists");
        let Value::List(list) = &mut entry.value else {
            unreachable!("checked to be a list above");
        };
        let len_before = list.len();
        let (result, changed) = f(list);
        let grew = list.len() > len_before;
        let empty = list.is_empty();
        if changed {
            self.fence_counter += 1;
            entry.token = self.fence_counter;
        }
        if empty {
            self.remove(key);
        } else if changed {
            self.modified(key);
        }
        if grew {
            self.events
                .push(Event::ListPushed(Bytes::copy_from_slice(key)));
        }
        Ok(Some(result))
    }

    /// Readies the entry at `key` for a change in place: a live entry must pass `check`
    /// (its error, typically WRONGTYPE, otherwise), and only then is the key recorded for
    /// a running script's undo; an entry whose deadline passed is removed, and a missing
    /// one is created from `empty` if given. Whether the entry existed; `Ok(None)`:
    /// missing, not made. A refusal records nothing: a script's DEL of a string tries the
    /// key as a lock first.
    fn prepare_in_place(
        &mut self,
        key: &[u8],
        now_ms: u64,
        check: impl FnOnce(&Entry) -> Result<(), Reply>,
        empty: Option<Value>,
    ) -> Result<Option<bool>, Reply> {
        let expired = match self.entries.get(key) {
            Some(entry) if entry.is_live(now_ms, &self.hold) => {
                check(entry)?;
                self.note_change(key);
                return Ok(Some(true));
            }
            Some(_) => true,
            None => false,
        };
        if expired {
            // Recorded for undo by `remove`.
            self.remove(key);
        }
        let Some(value) = empty else {
            return Ok(None);
        };
        self.note_change(key);
        let entry = Entry {
            value,
            deadline: None,
            token: 0,
            revision: 0,
            timer: Default::default(),
        };
        self.entries.insert(Key::from(key), entry);
        Ok(Some(false))
    }

    /// Ends the leases and waits whose time has come, granting the next waiters.
    fn advance_locks(&mut self, now_ms: u64) {
        while let Some((deadline, slot)) = self.lock_timers.first() {
            if self.hold.live(deadline, now_ms) {
                break;
            }
            let (key, _) = self.entries.get_index(slot).expect("a timer's entry");
            let key = key.clone();
            // `with_lock` moves the lock's timer to its next deadline, which is later, or
            // removes it.
            let _ = self.with_lock(&key, now_ms, false, |lock, fx| lock.advance(now_ms, fx));
        }
    }

    /// Takes the key's entry out of the map, with its lock timer. The map's last entry
    /// moves into the freed slot, and its timer follows it: every removal comes here.
    fn take_entry(&mut self, key: &[u8]) -> Option<(Key, Entry)> {
        let slot = self.entries.get_index_of(key)?;
        self.lock_timers.set(&mut self.entries, slot, None);
        let taken = self.entries.swap_remove_index(slot)?;
        if slot < self.entries.len() {
            self.lock_timers
                .moved(&self.entries, self.entries.len(), slot);
        }
        if taken
            .1
            .as_lock()
            .is_some_and(|lock| lock.queue.is_present())
        {
            self.queued.remove(key);
        }
        Some(taken)
    }

    /// Changes the value at `key` in place (a hash, a sorted set), creating `empty` first
    /// when the key is missing and `empty` is given. `f` answers its result and whether it
    /// changed the value. A change keeps the deadline and takes a new fencing token; a
    /// collection left empty is removed, as Redis removes empty hashes and sorted sets.
    /// `None`: no key there and none created.
    pub(crate) fn update<R>(
        &mut self,
        key: &[u8],
        now_ms: u64,
        empty: Option<Value>,
        f: impl FnOnce(&mut Value) -> (R, bool),
    ) -> Option<R> {
        // The handlers check the type themselves (their error depends on the command).
        let existed = self
            .prepare_in_place(key, now_ms, |_| Ok(()), empty)
            .ok()??;
        let entry = self.entries.get_mut(key).expect("the entry exists");
        let (result, changed) = f(&mut entry.value);
        if entry.value.is_empty_collection() {
            if existed {
                self.remove(key);
            } else {
                // Created and left empty: it never existed for anyone.
                self.take_entry(key);
            }
        } else if changed {
            self.fence_counter += 1;
            entry.token = self.fence_counter;
            self.modified(key);
        }
        Some(result)
    }

    /// WRONGTYPE if `key` holds a live lock: string writes that would replace a value
    /// refuse to replace a lock (its holders and queue would vanish unannounced).
    pub(crate) fn refuse_lock(&self, key: &[u8], now_ms: u64) -> Result<(), Reply> {
        match self.get(key, now_ms) {
            Some(entry) if entry.as_lock().is_some() => Err(Reply::wrong_type()),
            _ => Ok(()),
        }
    }

    /// Keys that exist at `now_ms` (DBSIZE, INFO keyspace); like `query`, never at a time
    /// before the last entry's.
    pub fn key_count(&self, now_ms: u64) -> usize {
        let now_ms = now_ms.max(self.last_now_ms);
        let expired = self
            .expiry
            .iter()
            .take_while(|(deadline, _)| self.hold.passed(*deadline, now_ms))
            .count();
        self.entries.len().saturating_sub(expired)
    }

    /// Keys with a deadline (INFO keyspace `expires=`).
    pub fn expires_count(&self) -> usize {
        self.expiry.len()
    }

    /// The key's entry if it exists at `now_ms`.
    pub fn get(&self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        self.entries
            .get(key)
            .filter(|entry| entry.is_live(now_ms, &self.hold))
    }

    /// The key's entry for a write: one whose deadline has passed is removed first (and
    /// the removal recorded), so the write sees the key as missing.
    pub(crate) fn get_for_write(&mut self, key: &[u8], now_ms: u64) -> Option<&Entry> {
        if self.entries.get(key)?.is_live(now_ms, &self.hold) {
            self.entries.get(key)
        } else {
            self.remove(key);
            None
        }
    }

    /// Every key whose entry exists at `now_ms`, in no particular order.
    pub(crate) fn live_entries(&self, now_ms: u64) -> impl Iterator<Item = (&Key, &Entry)> {
        self.entries
            .iter()
            .filter(move |(_, entry)| entry.is_live(now_ms, &self.hold))
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
        let old_deadline = self.entries.get(key).and_then(Entry::deadline_ms);
        let deadline_ms = match ttl {
            // A passed deadline belongs to a value that no longer exists.
            Ttl::Keep => old_deadline.filter(|&deadline| self.hold.live(deadline, now_ms)),
            Ttl::Clear => None,
            Ttl::At(at) => Some(at as u64),
        };
        self.reindex(key, old_deadline, deadline_ms);
        self.fence_counter += 1;
        if matches!(value, Value::List(_)) {
            // A list arrives whole (RENAME): clients blocked on this key may be served.
            self.events
                .push(Event::ListPushed(Bytes::copy_from_slice(key)));
        }
        let entry = Entry {
            value,
            deadline: deadline_ms.and_then(NonZeroU64::new),
            token: self.fence_counter,
            revision: 0,
            timer: Default::default(),
        };
        match self.entries.get_index_of(key) {
            Some(slot) => {
                // Callers refuse to replace a lock; were one replaced, its timer goes, and
                // so does its place among the queued locks.
                self.lock_timers.set(&mut self.entries, slot, None);
                if self.entries[slot].as_lock().is_some() {
                    self.queued.remove(key);
                }
                self.entries[slot] = entry;
            }
            None => {
                self.entries.insert(Key::from(key), entry);
            }
        }
        self.modified(key);
    }

    /// Sets or clears the deadline of an existing key without touching its value or token;
    /// a deadline at or before `now_ms` removes the key. Returns false if there is no key.
    pub(crate) fn set_deadline(
        &mut self,
        key: &[u8],
        deadline_ms: Option<i64>,
        now_ms: u64,
    ) -> bool {
        let deadline_ms = match deadline_ms {
            Some(at) if at <= 0 || at as u64 <= now_ms => return self.remove(key).is_some(),
            Some(at) => Some(at as u64),
            None => None,
        };
        let Some(entry) = self.entries.get(key) else {
            return false;
        };
        let old_deadline = entry.deadline_ms();
        if old_deadline != deadline_ms {
            self.note_change(key);
            self.reindex(key, old_deadline, deadline_ms);
            if let Some(entry) = self.entries.get_mut(key) {
                entry.deadline = deadline_ms.and_then(NonZeroU64::new);
            }
            self.modified(key);
        }
        true
    }

    fn reindex(&mut self, key: &[u8], old: Option<u64>, new: Option<u64>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.expiry.remove(&(old, Key::from(key)));
        }
        if let Some(new) = new {
            self.expiry.insert((new, Key::from(key)));
        }
    }

    /// Removes the key (expired or not) and records the removal.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.note_change(key);
        let (key, entry) = self.take_entry(key)?;
        if let Some(deadline) = entry.deadline_ms() {
            self.expiry.remove(&(deadline, key.clone()));
        }
        if let Some(lock) = entry.as_lock() {
            self.end_waits(&key, lock);
        }
        self.removed(&key);
        Some(entry)
    }

    /// Removes the key and returns its entry if it existed at `now_ms` (an expired one is
    /// removed too, but reported as missing).
    pub(crate) fn remove_live(&mut self, key: &[u8], now_ms: u64) -> Option<Entry> {
        let hold = self.hold;
        self.remove(key)
            .filter(|entry| entry.is_live(now_ms, &hold))
    }

    /// Removes every key (FLUSHALL). The fence counter stays: tokens are never reused.
    pub(crate) fn clear(&mut self) {
        self.note_clear();
        // In key order, so every replica reports the ended waits in one order.
        let mut locks: Vec<(Key, lock::Lock)> = self
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
        let removed: Option<Vec<Key>> = (self.entries.len() <= MAX_TRACKED_REMOVALS).then(|| {
            let mut keys: Vec<Key> = self.entries.keys().cloned().collect();
            // Sorted: replicas (and restored ones) record them in one order.
            keys.sort_unstable();
            keys
        });
        self.entries = IndexMap::default();
        self.expiry.clear();
        self.lock_timers.clear();
        self.queued.clear();
        self.revision_counter += 1;
        // As Redis does, FLUSHALL changes only the watched keys that existed: a WATCH of
        // a missing key still holds after it. Past what can be remembered one by one,
        // every missing key counts as removed (an EXEC fails that would have run).
        match removed {
            Some(keys) => {
                for key in &keys {
                    self.removals.record(key, self.revision_counter);
                }
            }
            None => self.removals.remove_all(self.revision_counter),
        }
    }

    /// A lock vanishes (FLUSHALL): its queued clients are told their wait is over.
    fn end_waits(&mut self, key: &[u8], lock: &lock::Lock) {
        for waiter in lock.queue.iter() {
            self.events.push(Event::Lock(LockEvent::WaitTimedOut {
                resource: Bytes::copy_from_slice(key),
                owner: waiter.owner.clone(),
            }));
        }
    }

    /// Records a change of `key` (written, or removed when it is no longer there): WATCH
    /// sees a new revision.
    fn modified(&mut self, key: &[u8]) {
        self.revision_counter += 1;
        match self.entries.get_mut(key) {
            Some(entry) => entry.revision = self.revision_counter,
            None => self.removals.record(key, self.revision_counter),
        }
    }

    /// Records the removal of `key`, just taken out of the map: `modified` without looking
    /// up a key known to be gone (a mass expiry removes keys by the hundred thousand).
    fn removed(&mut self, key: &[u8]) {
        self.revision_counter += 1;
        self.removals.record(key, self.revision_counter);
    }

    /// The revision WATCH records for `key` at `now_ms`: the live entry's, or 0 when the
    /// key does not exist. With it goes the revision counter (`revision_counter`), the
    /// point after which a removal of a missing key counts as a change.
    pub fn revision(&self, key: &[u8], now_ms: u64) -> u64 {
        self.get(key, now_ms).map_or(0, |entry| entry.revision)
    }

    /// The revision counter: every modification from now on gets a larger revision.
    pub fn revision_counter(&self) -> u64 {
        self.revision_counter
    }

    /// Whether `key` is as WATCH saw it: the same revision, or, for a key that was
    /// missing (`revision` 0), still missing and not removed since `seen_at`. Called inside
    /// apply, after the entry's expiries, so every entry present is live.
    pub(crate) fn unchanged_since(&self, key: &[u8], revision: u64, seen_at: u64) -> bool {
        match self.entries.get(key) {
            Some(entry) => entry.revision == revision,
            None => revision == 0 && !self.removals.removed_since(key, seen_at),
        }
    }

    /// Removes every key whose deadline is at or before `now_ms`.
    fn purge_expired(&mut self, now_ms: u64) {
        while let Some((deadline, _)) = self.expiry.first() {
            if self.hold.live(*deadline, now_ms) {
                break;
            }
            if let Some((_, key)) = self.expiry.pop_first() {
                self.take_entry(&key);
                self.removed(&key);
            }
        }
    }
}

#[cfg(any(test, fuzzing))]
impl Keyspace {
    /// The expiry index holds exactly the deadlines of the entries, and no token is above
    /// the counter.
    pub(crate) fn assert_consistent(&self) {
        let from_entries: BTreeSet<(u64, Key)> = self
            .entries
            .iter()
            .filter_map(|(key, entry)| entry.deadline_ms().map(|d| (d, key.clone())))
            .collect();
        assert_eq!(from_entries, self.expiry);
        assert!(self.entries.values().all(|e| e.token <= self.fence_counter));
        assert!(self
            .entries
            .values()
            .all(|e| e.revision > 0 && e.revision <= self.revision_counter));
        // Every lock with a next deadline has its timer, and only those.
        let locks_with_deadline = self
            .entries
            .values()
            .filter_map(|entry| entry.as_lock()?.next_deadline_ms())
            .count();
        assert_eq!(locks_with_deadline, self.lock_timers.len());
        self.lock_timers.assert_consistent(&self.entries);
        assert!(
            self.entries
                .values()
                .all(|e| e.as_list().map_or(true, |list| !list.is_empty())),
            "an empty list is removed"
        );
        let queued: BTreeSet<Key> = self
            .entries
            .iter()
            .filter(|(_, e)| e.as_lock().is_some_and(|l| l.queue.is_present()))
            .map(|(key, _)| key.clone())
            .collect();
        assert_eq!(queued, self.queued, "the queued locks are indexed");
        for lock in self.entries.values().filter_map(Entry::as_lock) {
            lock.assert_consistent();
            assert!(!lock.is_idle(), "an idle lock is removed");
            assert!(lock
                .holders
                .iter()
                .all(|h| h.token <= self.fence_counter && h.count > 0));
            let exclusive = lock
                .holders
                .iter()
                .filter(|h| h.mode == lock::LockMode::Exclusive)
                .count();
            assert!(
                exclusive == 0 || lock.holders.len() == 1,
                "exclusive means alone"
            );
        }
    }
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
/// Whether `argv` is an op only the proposer writes, applied at the head of its entry.
pub fn is_internal_op(argv: &[Bytes]) -> bool {
    hold::is_epoch_op(argv) || wall::is_wall_op(argv)
}

pub(crate) fn now_i64(now_ms: u64) -> i64 {
    i64::try_from(now_ms).unwrap_or(i64::MAX)
}
