//! Applying an entry: its time, the proposer's internal ops at its head, the expiries its
//! time brings, then each op through the command table (or a client session). Reads run
//! here too, at the leader's time, through the same table.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{hold, locks, replay, session, wall, Batch, Key, Keyspace};
use crate::command::{self, Handler};
use crate::reply::Reply;

/// Whether `argv` is an op only the proposer writes, applied at the head of its entry.
pub fn is_internal_op(argv: &[Bytes]) -> bool {
    hold::is_epoch_op(argv) || wall::is_wall_op(argv)
}

impl Keyspace {
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
    pub(crate) fn apply_entry(&mut self, index: u64, batch: &Batch) -> Vec<Reply> {
        self.runtime.entry_index = index;
        let log_is_new = self.replicated.last_now_ms == 0;
        let now_ms = batch.now_ms.max(self.replicated.last_now_ms);
        self.replicated.last_now_ms = now_ms;
        for op in batch.ops.iter().take_while(|op| is_internal_op(op)) {
            if hold::is_epoch_op(op) {
                self.begin_epoch(now_ms, log_is_new, op);
            } else if let Ok(offset) = wall::offset_from_op(op, now_ms) {
                self.replicated.wall_offset_ms = offset;
            }
        }
        self.purge_expired(now_ms);
        self.advance_locks(now_ms);
        self.runtime.applying = true;
        let replies = batch
            .ops
            .iter()
            .enumerate()
            .map(|(position, argv)| {
                self.runtime.op_position = position as u64;
                *self.runtime.draws.get_mut() = 0;
                self.apply_op(now_ms, argv)
            })
            .collect();
        self.runtime.applying = false;
        replies
    }

    /// The seed of `math.random` for a script run now: from the log index and position of
    /// the op that runs it, so every replica draws the same numbers and every call others
    /// (Redis 7 does not reseed between scripts either). A read (EVAL_RO) runs on one node
    /// only and is seeded from the last entry and the read's time.
    pub(crate) fn script_seed(&self, now_ms: u64) -> u64 {
        let op =
            (self.runtime.entry_index << 16) ^ self.runtime.op_position ^ now_ms.rotate_left(40);
        crate::fnv::hash(&op.to_le_bytes())
    }

    /// The seed of one random choice of a set command (SPOP, SRANDMEMBER): the op's place
    /// in the log, as for scripts, and how many choices the op made before, so every
    /// replica chooses alike and a script or transaction that chooses twice draws other
    /// numbers each time. A read outside the log (SRANDMEMBER) draws from the replicated
    /// counters and the read's time only, so any node, restarted or not, would answer it
    /// alike: two such reads in one millisecond with no write between answer alike.
    pub(crate) fn draw_seed(&self, now_ms: u64) -> u64 {
        const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
        let seed = if self.runtime.applying {
            let draw = self.runtime.draws.fetch_add(1, Ordering::Relaxed);
            self.script_seed(now_ms) ^ draw.wrapping_mul(GOLDEN)
        } else {
            self.replicated.revision_counter.rotate_left(32)
                ^ self.replicated.fence_counter.wrapping_mul(GOLDEN)
                ^ now_ms
        };
        crate::fnv::hash(&seed.to_le_bytes())
    }

    pub(super) fn apply_op(&mut self, now_ms: u64, argv: &[Bytes]) -> Reply {
        if hold::is_epoch_op(argv) {
            return self.begin_epoch(now_ms, false, argv);
        }
        if session::is_op(argv, session::SESSION_OP) {
            return self.apply_in_session(now_ms, argv);
        }
        if session::is_op(argv, session::DETACH_OP) {
            return match argv {
                [_, id] => match session::SessionId::parse(id) {
                    Some(id) => Reply::Int(self.replicated.sessions.close(&id) as i64),
                    None => Reply::error("ERR invalid session id"),
                },
                _ => Reply::wrong_arity(session::DETACH_OP),
            };
        }
        if wall::is_wall_op(argv) {
            return match wall::offset_from_op(argv, now_ms) {
                Ok(offset) => {
                    self.replicated.wall_offset_ms = offset;
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
            Handler::Write(handler) if self.runtime.replay.enabled() => {
                match replay::replayable_keys(spec, argv) {
                    Some(keys) => self.apply_replayable(now_ms, argv, spec, handler, keys),
                    None => self.noticing(spec, argv, |ks| handler(ks, now_ms, argv)),
                }
            }
            Handler::Write(handler) => self.noticing(spec, argv, |ks| handler(ks, now_ms, argv)),
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
        spec: &'static command::CommandSpec,
        handler: command::WriteFn,
        keys: Vec<Bytes>,
    ) -> Reply {
        // A copy is answered as the original was if the keys are as the original left
        // them, or if the original removed them (a release: the copy's "released" is
        // true of the request, though another client may hold the lock by now).
        let earlier = self.runtime.replay.earlier(argv, now_ms).filter(|earlier| {
            let removed = earlier.keys.iter().all(|(_, revision)| *revision == 0);
            removed
                || earlier
                    .keys
                    .iter()
                    .all(|(key, revision)| self.unchanged_since(key, *revision, earlier.seen_at))
        });
        let counter_before = self.replicated.revision_counter;
        let reply = self.noticing(spec, argv, |ks| handler(ks, now_ms, argv));
        let changed = self.replicated.revision_counter != counter_before;
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
                    let counter = self.replicated.revision_counter;
                    self.runtime
                        .replay
                        .record(argv, revisions, counter, &reply, now_ms);
                }
                reply
            }
        }
    }

    /// Applies a new leader's epoch op (`hold`). When it starts a new term, the sessions
    /// of earlier terms close, and their waiters and unconfirmed grants are detached with
    /// a reclaim deadline (`session`).
    pub(super) fn begin_epoch(&mut self, now_ms: u64, log_is_new: bool, argv: &[Bytes]) -> Reply {
        let term_before = self.replicated.hold.term;
        let reply = self.replicated.hold.begin_epoch(now_ms, log_is_new, argv);
        let term = self.replicated.hold.term;
        if term > term_before {
            self.replicated.sessions.begin_term(term);
            let queued: Vec<Key> = self.replicated.queued.iter().cloned().collect();
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
    pub(super) fn apply_in_session(&mut self, now_ms: u64, argv: &[Bytes]) -> Reply {
        let Some((session, command)) = session::parse_session_op(argv) else {
            return Reply::error("ERR invalid raftlock.session op");
        };
        if session::is_op(command, session::REATTACH_OP) {
            let [_, resource, owner] = command else {
                return Reply::wrong_arity(session::REATTACH_OP);
            };
            let session = self
                .replicated
                .sessions
                .open(session, self.replicated.hold.term);
            let reattached = self.with_lock(resource, now_ms, false, |lock, fx| {
                lock.reattach_wait(owner, &session, now_ms, fx)
            });
            return match reattached {
                Ok(Some(locks::Acquire::Queued)) => Reply::Blocked,
                Ok(Some(locks::Acquire::Granted { token })) => Reply::Int(token as i64),
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
                let session = self
                    .replicated
                    .sessions
                    .open(session, self.replicated.hold.term);
                locks::commands::lock_in(self, now_ms, command, Some(&session))
            }
            "renew" => {
                let session = self
                    .replicated
                    .sessions
                    .open(session, self.replicated.hold.term);
                locks::commands::renew_in(self, now_ms, command, Some(&session))
            }
            "lockcancel" => {
                locks::commands::lockcancel_in(self, now_ms, command, Some(&session.id))
            }
            name => Reply::Error(format!("ERR '{name}' does not run in a session")),
        }
    }

    /// Runs a read command at the leader's time `now_ms`, or at the last entry's time if
    /// that is later (a new leader's clock may lag): a read never sees time go back from
    /// a write it follows. Never mutates: keys whose deadline has passed are invisible
    /// until an entry removes them.
    pub fn query(&self, now_ms: u64, argv: &[Bytes]) -> Reply {
        let now_ms = now_ms.max(self.replicated.last_now_ms);
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
}
