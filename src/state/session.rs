//! Sessions: which client connection each holder and waiter of a lock belongs to, and
//! whether that connection is still there.
//!
//! A session is a client connection on the leader that sent a lock command:
//! `NODE:TERM:CONN`, the leader's node id, its Raft term and the connection's id on it
//! (its `CLIENT ID`). A client behind a follower has the follower's relay connection for
//! it as its session. The node names the session in the op itself: it wraps the client's
//! LOCK, RLOCK, RENEW (and its own LOCKCANCEL) in the internal op
//! `raftlock.session NODE:TERM:CONN TIMEOUT_MS <command...>`, so the argv the client sent
//! keeps its meaning, and no client can name a session: the op is not in the command
//! table.
//!
//! The state keeps the sessions that are open: named by this term's leader and not closed
//! since. A connection that closes on the leader proposes `raftlock.detach NODE:TERM:CONN`
//! (after a LOCKCANCEL for each of its waits); a new leader's epoch op closes every
//! session of earlier terms at once. A holder or waiter is attached while its session is
//! open. Being detached changes nothing for a holder (its lease ends it, as before), but a
//! waiter detached by a new term gets a reclaim deadline, `TIMEOUT_MS` after the epoch:
//! unless the owner sends its request again from a live connection before then (which
//! moves it to that session and keeps its place), it leaves the queue then, as a
//! LOCKCANCEL would make it; a grant it gets meanwhile is given back then unless the
//! owner has confirmed it. No connection of an earlier term can have delivered such a
//! grant: a node answers a blocked request TRYAGAIN when it sees the term end, before it
//! applies anything of the new term, and only moves it to the new term itself
//! (`raftlock.reattach`, when it leads that term too), which confirms a grant it finds.
//! Grants made before the term ended are never reclaimed: the old leader may have
//! answered them before it died.
//!
//! The timeout travels with the session, so every replica uses the one the node that made
//! the session was configured with (`session_timeout_ms`), whoever leads later.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::args::parse_i64;
use crate::config::state_limits::MAX_SESSION_TIMEOUT_MS;

/// The internal op that runs a lock command in a client's session.
pub const SESSION_OP: &str = "raftlock.session";
/// The internal op a node proposes when a client connection that used a session closes.
pub const DETACH_OP: &str = "raftlock.detach";
/// Run in a session (`raftlock.session ID TIMEOUT_MS raftlock.reattach resource owner`):
/// a leader elected again moves a request still blocked on one of its connections to
/// that connection's session of the new term, wait and lease unchanged. Blocked if it
/// still waits, its token if it was granted meanwhile, nil if its wait ended.
pub const REATTACH_OP: &str = "raftlock.reattach";

/// A client connection on the leader of a term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionId {
    /// The leader's node id.
    pub node: u64,
    /// The Raft term it led when it named the session.
    pub term: u64,
    /// The connection's id on that node (CLIENT ID).
    pub conn: u64,
}

impl SessionId {
    /// Parses `NODE:TERM:CONN`.
    pub fn parse(text: &[u8]) -> Option<SessionId> {
        let mut parts = text.split(|&b| b == b':');
        let mut next = || parse_u64(parts.next()?);
        let id = SessionId {
            node: next()?,
            term: next()?,
            conn: next()?,
        };
        parts.next().is_none().then_some(id)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.node, self.term, self.conn)
    }
}

fn parse_u64(arg: &[u8]) -> Option<u64> {
    parse_i64(arg).and_then(|n| u64::try_from(n).ok())
}

/// A session and how long a waiter of it may stay detached after a new term begins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub timeout_ms: u64,
}

/// A session as holders and waiters keep it: every hold and wait of one session shares
/// one allocation, so a held lock spends 8 bytes on its session (a million locks taken
/// on a few connections share a few sessions). Persisted as the session it points at.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRef(Arc<Session>);

impl SessionRef {
    pub fn new(session: Session) -> SessionRef {
        SessionRef(Arc::new(session))
    }
}

impl std::ops::Deref for SessionRef {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.0
    }
}

impl fmt::Debug for SessionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for SessionRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SessionRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<SessionRef, D::Error> {
        Session::deserialize(deserializer).map(SessionRef::new)
    }
}

/// Whether a hold or wait in `session` is one the session `id` may act for (its
/// LOCKCANCEL): any, without an id (a client's own LOCKCANCEL); otherwise only its own,
/// or one that has no session (made before sessions existed).
pub fn belongs_to(session: Option<&SessionRef>, id: Option<&SessionId>) -> bool {
    match (id, session) {
        (Some(id), Some(session)) => session.id == *id,
        _ => true,
    }
}

/// The sessions open now: named by the current term's leader and not closed since.
/// Replicated state, persisted with the keyspace's counters.
#[derive(Clone, Debug, Default)]
pub struct OpenSessions {
    open: HashMap<SessionId, SessionRef>,
}

impl OpenSessions {
    /// Whether the session `id` is open: its holds and waits are attached.
    pub fn is_open(&self, id: &SessionId) -> bool {
        self.open.contains_key(id)
    }

    /// Whether the hold or wait in `session` is attached.
    pub fn attached(&self, session: Option<&SessionRef>) -> bool {
        session.is_some_and(|session| self.is_open(&session.id))
    }

    /// The shared reference to `session`, opening it if it belongs to the current term
    /// (`term`); one of an earlier term (proposed just before its leader lost the
    /// election) is detached from the start.
    pub fn open(&mut self, session: Session, term: u64) -> SessionRef {
        if let Some(open) = self.open.get(&session.id) {
            return open.clone();
        }
        let shared = SessionRef::new(session);
        if shared.id.term >= term {
            self.open.insert(shared.id, shared.clone());
        }
        shared
    }

    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// The connection closed. Whether the session was open.
    pub fn close(&mut self, id: &SessionId) -> bool {
        self.open.remove(id).is_some()
    }

    /// A new term began: sessions named in earlier terms close.
    pub fn begin_term(&mut self, term: u64) {
        self.open.retain(|id, _| id.term >= term);
        if self.open.is_empty() {
            // A map that held many connections gives its memory back.
            self.open = HashMap::new();
        }
    }

    /// The open sessions in id order, as persisted.
    pub fn to_sorted(&self) -> Vec<Session> {
        let mut sessions: Vec<Session> = self.open.values().map(|s| (**s).clone()).collect();
        sessions.sort_unstable_by_key(|s| s.id);
        sessions
    }

    pub fn from_sessions(sessions: Vec<Session>) -> OpenSessions {
        OpenSessions {
            open: sessions
                .into_iter()
                .map(|s| (s.id, SessionRef::new(s)))
                .collect(),
        }
    }

    /// One shared reference per session while a snapshot loads: the open ones, and a
    /// first copy of each other one.
    pub fn interner(&self) -> Interner {
        Interner(self.open.clone())
    }
}

/// Replaces each loaded session by the one reference all of its holds and waits share.
pub struct Interner(HashMap<SessionId, SessionRef>);

impl Interner {
    pub fn share(&mut self, session: &mut Option<SessionRef>) {
        if let Some(loaded) = session.as_mut() {
            let shared = self.0.entry(loaded.id).or_insert_with(|| loaded.clone());
            *loaded = shared.clone();
        }
    }
}

/// `raftlock.session ID TIMEOUT_MS command...`: the session and the command, or why not.
pub fn parse_session_op(argv: &[Bytes]) -> Option<(Session, &[Bytes])> {
    let [_, id, timeout_ms, command @ ..] = argv else {
        return None;
    };
    if command.is_empty() {
        return None;
    }
    let session = Session {
        id: SessionId::parse(id)?,
        // A bound on how long a wrong value could keep a dead waiter queued.
        timeout_ms: parse_u64(timeout_ms)?.min(MAX_SESSION_TIMEOUT_MS),
    };
    Some((session, command))
}

/// The op that runs `command` in `session`.
pub fn session_op(session: &Session, command: Vec<Bytes>) -> Vec<Bytes> {
    let mut argv = Vec::with_capacity(command.len() + 3);
    argv.push(Bytes::from_static(SESSION_OP.as_bytes()));
    argv.push(Bytes::from(session.id.to_string()));
    argv.push(Bytes::from(session.timeout_ms.to_string()));
    argv.extend(command);
    argv
}

/// The op that closes the session `id`.
pub fn detach_op(id: SessionId) -> Vec<Bytes> {
    vec![
        Bytes::from_static(DETACH_OP.as_bytes()),
        Bytes::from(id.to_string()),
    ]
}

/// Whether `argv` is the op named `name`.
pub fn is_op(argv: &[Bytes], name: &str) -> bool {
    argv.first()
        .is_some_and(|first| first.as_ref() == name.as_bytes())
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
