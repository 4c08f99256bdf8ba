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

use crate::command::args::parse_i64;
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
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::reply::Reply;
    use crate::state::hold::epoch_op;
    use crate::state::tests::{bulk, in_session, int, Harness};
    use crate::state::{Batch, Event, Keyspace, LockEvent};

    /// The session timeout `in_session` gives its ops.
    const TIMEOUT_MS: u64 = 5_000;
    /// The expiry hold of a new leader in these tests.
    const GRACE_MS: u64 = 600;

    fn id(text: &str) -> SessionId {
        SessionId::parse(text.as_bytes()).expect("a session id")
    }

    /// The first entry of node `leader` in `term`.
    fn new_term(h: &mut Harness, term: u64, leader: u64) {
        h.ks.apply_batch(&Batch {
            now_ms: h.now_ms,
            ops: vec![epoch_op(term, leader, GRACE_MS)],
        });
    }

    /// A harness whose log begins with node 1's term 1.
    fn harness() -> Harness {
        let mut h = Harness::new();
        new_term(&mut h, 1, 1);
        h
    }

    fn field<'a>(map: &'a Reply, name: &str) -> &'a Reply {
        let Reply::Map(pairs) = map else {
            panic!("expected a map, got {map:?}");
        };
        &pairs
            .iter()
            .find(|(key, _)| *key == bulk(name))
            .unwrap_or_else(|| panic!("no {name} in {map:?}"))
            .1
    }

    /// `(owner, session, attached)` of each holder or waiter (`which`) LOCKINFO lists.
    fn listed(h: &Harness, resource: &str, which: &str) -> Vec<(String, Reply, i64)> {
        let info = h.read(&format!("lockinfo {resource}"));
        if info == Reply::Nil {
            return Vec::new();
        }
        let Reply::Array(items) = field(&info, which) else {
            panic!("{which} is not an array");
        };
        items
            .iter()
            .map(|item| {
                let Reply::Bulk(owner) = field(item, "owner") else {
                    panic!("no owner");
                };
                let Reply::Int(attached) = field(item, "attached") else {
                    panic!("no attached flag");
                };
                (
                    String::from_utf8_lossy(owner).into_owned(),
                    field(item, "session").clone(),
                    *attached,
                )
            })
            .collect()
    }

    fn entry(owner: &str, session: &str, attached: i64) -> (String, Reply, i64) {
        (owner.to_string(), bulk(session), attached)
    }

    fn waiters(h: &Harness, resource: &str) -> Vec<String> {
        listed(h, resource, "waiters")
            .into_iter()
            .map(|(owner, _, _)| owner)
            .collect()
    }

    fn granted(events: Vec<Event>) -> Vec<String> {
        events
            .into_iter()
            .filter_map(|event| match event {
                Event::Lock(LockEvent::Granted { owner, .. }) => {
                    Some(String::from_utf8_lossy(&owner).into_owned())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn session_ids_read_and_print_as_node_term_connection() {
        assert_eq!(
            id("3:17:42"),
            SessionId {
                node: 3,
                term: 17,
                conn: 42
            }
        );
        assert_eq!(id("3:17:42").to_string(), "3:17:42");
        for bad in ["", "1:2", "1:2:3:4", "1:-2:3", "a:b:c", "1::3"] {
            assert_eq!(SessionId::parse(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn clients_cannot_send_the_session_ops() {
        for op in [SESSION_OP, DETACH_OP, REATTACH_OP] {
            assert!(crate::command::lookup(op.as_bytes()).is_none());
        }
    }

    #[test]
    fn holders_and_waiters_record_their_sessions_and_show_them_attached() {
        let mut h = harness();
        assert_eq!(h.write_argv(in_session("1:1:7", "lock r a 10000")), int(1));
        assert_eq!(
            h.write_argv(in_session("1:1:8", "lock r b 10000 wait 0")),
            Reply::Blocked
        );
        assert_eq!(listed(&h, "r", "holders"), vec![entry("a", "1:1:7", 1)]);
        assert_eq!(listed(&h, "r", "waiters"), vec![entry("b", "1:1:8", 1)]);
        // A lock taken without a session (MULTI, a script) has none, so is not attached.
        h.write("lock s c 10000");
        assert_eq!(
            listed(&h, "s", "holders"),
            vec![("c".to_string(), Reply::Nil, 0)]
        );
    }

    #[test]
    fn a_closed_connection_detaches_its_holds_and_a_renew_attaches_them_again() {
        let mut h = harness();
        h.write_argv(in_session("1:1:7", "lock r a 10000"));
        h.write_argv(in_session("1:1:7", "lock s a 10000"));
        assert_eq!(h.write_argv(detach_op(id("1:1:7"))), int(1));
        assert_eq!(h.write_argv(detach_op(id("1:1:7"))), int(0), "once");
        assert_eq!(listed(&h, "r", "holders"), vec![entry("a", "1:1:7", 0)]);
        assert_eq!(listed(&h, "s", "holders"), vec![entry("a", "1:1:7", 0)]);
        // The holds stay until their leases end.
        h.advance(9_999);
        h.tick();
        assert_eq!(h.write("lock r z 100"), Reply::Nil);
        // The owner, on a new connection: RENEW and a reentrant LOCK attach its holds.
        assert_eq!(h.write_argv(in_session("1:1:9", "renew r a 10000")), int(1));
        assert_eq!(h.write_argv(in_session("1:1:9", "lock s a 10000")), int(2));
        assert_eq!(listed(&h, "r", "holders"), vec![entry("a", "1:1:9", 1)]);
        assert_eq!(listed(&h, "s", "holders"), vec![entry("a", "1:1:9", 1)]);
        h.ks.assert_consistent();
    }

    #[test]
    fn a_new_term_detaches_everyone_and_starts_the_waiters_reclaim_deadline() {
        let mut h = harness();
        h.write_argv(in_session("1:1:7", "lock r holder 60000"));
        h.write_argv(in_session("1:1:8", "lock r dead 60000 wait 0"));
        h.write_argv(in_session("1:1:9", "lock r alive 60000 wait 0"));
        h.advance(1_000);
        new_term(&mut h, 2, 2);
        let epoch_ms = h.now_ms;
        assert_eq!(
            listed(&h, "r", "holders"),
            vec![entry("holder", "1:1:7", 0)]
        );
        assert_eq!(
            listed(&h, "r", "waiters"),
            vec![entry("dead", "1:1:8", 0), entry("alive", "1:1:9", 0)]
        );
        assert_eq!(h.ks.next_deadline_ms(), Some(epoch_ms + TIMEOUT_MS));
        // The live client asks again through the new leader: same place, new session.
        h.advance(2_000);
        assert_eq!(
            h.write_argv(in_session("2:2:3", "lock r alive 60000 wait 0")),
            Reply::Blocked
        );
        assert_eq!(
            listed(&h, "r", "waiters"),
            vec![entry("dead", "1:1:8", 0), entry("alive", "2:2:3", 1)]
        );
        h.ks.take_events();
        h.now_ms = epoch_ms + TIMEOUT_MS - 1;
        h.tick();
        assert_eq!(waiters(&h, "r"), vec!["dead", "alive"]);
        h.now_ms = epoch_ms + TIMEOUT_MS;
        h.tick();
        assert_eq!(waiters(&h, "r"), vec!["alive"]);
        assert_eq!(
            h.ks.take_events(),
            vec![Event::Lock(LockEvent::WaitTimedOut {
                resource: Bytes::from("r"),
                owner: Bytes::from("dead"),
            })]
        );
        // The holder is detached but keeps its lease; then the live waiter is next.
        assert_eq!(
            listed(&h, "r", "holders"),
            vec![entry("holder", "1:1:7", 0)]
        );
        h.now_ms = epoch_ms - 1_000 + 60_000;
        h.tick();
        assert_eq!(granted(h.ks.take_events()), vec!["alive"]);
        assert_eq!(listed(&h, "r", "holders"), vec![entry("alive", "2:2:3", 1)]);
        h.ks.assert_consistent();
    }

    #[test]
    fn reclaim_waits_for_the_new_leaders_expiry_hold() {
        let mut h = harness();
        h.write_argv(in_session("1:1:7", "lock r holder 60000"));
        h.write_argv(in_session("1:1:8", "lock r dead 60000 wait 0"));
        let session = Session {
            id: id("1:1:8"),
            timeout_ms: 100,
        };
        h.write_argv(session_op(
            &session,
            crate::state::tests::argv("lock q dead 1 wait 0"),
        ));
        new_term(&mut h, 2, 2);
        // 100 ms of session timeout, but 600 ms of hold: nothing ends inside it.
        assert_eq!(h.ks.next_deadline_ms(), Some(h.now_ms + GRACE_MS));
    }

    #[test]
    fn an_unconfirmed_grant_of_a_detached_session_is_given_back_at_its_deadline() {
        let mut h = harness();
        h.write_argv(in_session("1:1:7", "lock r holder 1000"));
        h.write_argv(in_session("1:1:8", "lock r dead 60000 wait 0"));
        h.write_argv(in_session("1:1:9", "lock r next 60000 wait 0"));
        new_term(&mut h, 2, 2);
        let epoch_ms = h.now_ms;
        // This one's client is alive, and asks again through the new leader.
        h.write_argv(in_session("2:2:3", "lock r next 60000 wait 0"));
        // The holder's lease ends: the dead client's request is granted, unseen (no
        // connection is told: none of an earlier term may deliver it).
        h.advance(1_000);
        h.tick();
        assert!(granted(h.ks.take_events()).is_empty());
        assert_eq!(listed(&h, "r", "holders"), vec![entry("dead", "1:1:8", 0)]);
        // At its reclaim deadline the grant is given back, and the next waiter served,
        // long before the dead client's 60 s lease would have ended.
        h.now_ms = epoch_ms + TIMEOUT_MS - 1;
        h.tick();
        assert!(h.ks.take_events().is_empty());
        h.now_ms = epoch_ms + TIMEOUT_MS;
        h.tick();
        let events = h.ks.take_events();
        assert!(events.contains(&Event::Lock(LockEvent::Released {
            resource: Bytes::from("r")
        })));
        assert_eq!(granted(events), vec!["next"]);
        h.ks.assert_consistent();
    }

    /// A grant made before the term ended may have reached its client (the old leader
    /// answered it, then died): only its lease ends it, confirmed or not.
    #[test]
    fn a_grant_made_before_the_new_term_is_never_reclaimed() {
        let mut h = harness();
        h.write_argv(in_session("1:1:7", "lock r holder 1000"));
        h.write_argv(in_session("1:1:8", "lock r granted 60000 wait 0"));
        h.write_argv(in_session("1:1:9", "lock r next 60000 wait 0"));
        h.advance(1_000);
        h.tick();
        assert_eq!(granted(h.ks.take_events()), vec!["granted"]);
        let Reply::Int(token) = h.read("fence r") else {
            panic!("no grant");
        };
        new_term(&mut h, 2, 2);
        h.write_argv(in_session("2:2:3", "lock r next 60000 wait 0"));
        assert_eq!(
            listed(&h, "r", "holders"),
            vec![entry("granted", "1:1:8", 0)]
        );
        h.advance(TIMEOUT_MS * 2);
        h.tick();
        assert_eq!(h.read("fence r"), int(token), "still held");
        assert!(granted(h.ks.take_events()).is_empty());
        h.now_ms += 60_000;
        h.tick();
        assert_eq!(
            granted(h.ks.take_events()),
            vec!["next"],
            "its lease ended it"
        );
    }

    #[test]
    fn a_leader_elected_again_moves_its_blocked_requests_to_the_new_term() {
        let mut h = harness();
        h.write_argv(in_session("1:1:7", "lock r holder 1000"));
        h.write_argv(in_session("1:1:8", "lock r first 60000 wait 0"));
        h.write_argv(in_session("1:1:9", "lock r second 60000 wait 30000"));
        h.write_argv(in_session("1:1:10", "lock q holder 60000"));
        h.write_argv(in_session("1:1:11", "lock q gone 60000 wait 1000"));
        new_term(&mut h, 2, 1);
        let epoch_ms = h.now_ms;
        // Still queued: moved to the connection's new session, place and wait unchanged.
        let op = |id: &str, resource: &str, owner: &str| {
            let session = Session {
                id: SessionId::parse(id.as_bytes()).unwrap(),
                timeout_ms: TIMEOUT_MS,
            };
            let command = [REATTACH_OP, resource, owner]
                .iter()
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect();
            session_op(&session, command)
        };
        assert_eq!(h.write_argv(op("1:2:9", "r", "second")), Reply::Blocked);
        assert_eq!(
            listed(&h, "r", "waiters"),
            vec![entry("first", "1:1:8", 0), entry("second", "1:2:9", 1)]
        );
        // Granted after the term ended (so with a reclaim deadline): the move confirms the
        // grant, which its connection then delivers; it is not given back.
        h.advance(1_000);
        h.tick();
        assert!(
            granted(h.ks.take_events()).is_empty(),
            "announced to nobody"
        );
        assert_eq!(listed(&h, "r", "holders"), vec![entry("first", "1:1:8", 0)]);
        let Reply::Int(token) = h.read("fence r") else {
            panic!("no grant");
        };
        assert_eq!(h.write_argv(op("1:2:8", "r", "first")), int(token));
        assert_eq!(listed(&h, "r", "holders"), vec![entry("first", "1:2:8", 1)]);
        h.now_ms = epoch_ms + TIMEOUT_MS;
        h.tick();
        assert_eq!(h.read("fence r"), int(token), "kept");
        // Its wait ended meanwhile: nil.
        assert_eq!(h.write_argv(op("1:2:11", "q", "gone")), Reply::Nil);
        assert_eq!(h.write_argv(op("1:2:12", "none", "x")), Reply::Nil);
        h.ks.assert_consistent();
    }

    #[test]
    fn asking_again_before_the_deadline_finds_the_grant_and_keeps_it() {
        let mut h = harness();
        h.write_argv(in_session("1:1:7", "lock r holder 1000"));
        h.write_argv(in_session("1:1:8", "lock r back 60000 wait 0"));
        new_term(&mut h, 2, 2);
        h.advance(1_000);
        h.tick();
        let Reply::Int(token) = h.read("fence r") else {
            panic!("no grant");
        };
        assert_eq!(
            h.write_argv(in_session("2:2:5", "lock r back 60000 wait 0")),
            int(token)
        );
        assert_eq!(listed(&h, "r", "holders"), vec![entry("back", "2:2:5", 1)]);
        h.advance(TIMEOUT_MS);
        h.tick();
        assert_eq!(h.read("fence r"), int(token), "confirmed: kept");
        h.ks.assert_consistent();
    }

    #[test]
    fn an_old_connections_cancel_leaves_a_wait_the_owner_moved_alone() {
        let mut h = harness();
        h.write_argv(in_session("1:1:7", "lock r holder 60000"));
        h.write_argv(in_session("1:1:8", "lock r w 60000 wait 0"));
        // The client reconnected and asked again before its old connection's close was
        // noticed: that close's cancel is for the old session only.
        h.write_argv(in_session("1:1:9", "lock r w 60000 wait 0"));
        assert_eq!(h.write_argv(in_session("1:1:8", "lockcancel r w")), int(0));
        assert_eq!(waiters(&h, "r"), vec!["w"]);
        assert_eq!(h.write_argv(in_session("1:1:9", "lockcancel r w")), int(1));
        assert!(waiters(&h, "r").is_empty());
        // A cancel does not open the session it names.
        assert!(!h.ks.open_sessions().is_open(&id("1:1:10")));
        h.write_argv(in_session("1:1:10", "lockcancel r w"));
        assert!(!h.ks.open_sessions().is_open(&id("1:1:10")));
        // A client's own LOCKCANCEL names no session: it cancels whatever is queued.
        h.write_argv(in_session("1:1:11", "lock r w 60000 wait 0"));
        assert_eq!(h.write("lockcancel r w"), int(1));
        h.ks.assert_consistent();
    }

    #[test]
    fn a_session_of_an_earlier_term_is_detached_from_the_start() {
        let mut h = harness();
        h.write_argv(in_session("1:1:7", "lock r holder 60000"));
        new_term(&mut h, 2, 2);
        let epoch_ms = h.now_ms;
        // Proposed by node 1 in term 1, applied after node 2's first entry.
        assert_eq!(
            h.write_argv(in_session("1:1:8", "lock r late 60000 wait 0")),
            Reply::Blocked
        );
        assert_eq!(listed(&h, "r", "waiters"), vec![entry("late", "1:1:8", 0)]);
        assert!(!h.ks.open_sessions().is_open(&id("1:1:8")));
        // It joined after the new term began: the next one starts its deadline.
        h.advance(TIMEOUT_MS);
        h.tick();
        assert_eq!(waiters(&h, "r"), vec!["late"]);
        new_term(&mut h, 3, 1);
        h.advance(TIMEOUT_MS);
        h.tick();
        assert!(waiters(&h, "r").is_empty());
        assert!(epoch_ms < h.now_ms);
    }

    #[test]
    fn the_same_leader_elected_again_starts_the_deadline_too() {
        let mut h = harness();
        h.write_argv(in_session("1:1:7", "lock r holder 60000"));
        h.write_argv(in_session("1:1:8", "lock r w 60000 wait 0"));
        new_term(&mut h, 2, 1);
        assert_eq!(listed(&h, "r", "waiters"), vec![entry("w", "1:1:8", 0)]);
        h.advance(TIMEOUT_MS);
        h.tick();
        assert!(waiters(&h, "r").is_empty());
    }

    #[test]
    fn epoch_ops_applied_twice_move_no_deadline() {
        let mut h = harness();
        h.write_argv(in_session("1:1:7", "lock r holder 60000"));
        h.write_argv(in_session("1:1:8", "lock r w 60000 wait 0"));
        new_term(&mut h, 2, 2);
        let deadline = h.ks.next_deadline_ms();
        let snapshot = h.ks.to_snapshot();
        h.advance(1_000);
        // The proposer repeats the op until it is applied; a late op of a deposed leader.
        new_term(&mut h, 2, 2);
        new_term(&mut h, 1, 1);
        assert_eq!(h.ks.next_deadline_ms(), deadline);
        let mut restored = Keyspace::from_snapshot(&snapshot).unwrap();
        restored.apply_batch(&Batch {
            now_ms: h.now_ms,
            ops: Vec::new(),
        });
        assert_eq!(restored.to_snapshot(), h.ks.to_snapshot());
    }

    #[test]
    fn sessions_reclaim_deadlines_and_grants_survive_snapshots_and_share_memory() {
        let mut h = harness();
        h.write_argv(in_session("1:1:7", "lock r holder 1000"));
        h.write_argv(in_session("1:1:8", "lock r dead 60000 wait 0"));
        h.write_argv(in_session("1:1:9", "lock r next 60000 wait 0"));
        new_term(&mut h, 2, 2);
        for i in 0..3 {
            h.write_argv(in_session("2:2:1", &format!("lock k{i} a 60000")));
        }
        h.write_argv(in_session("2:2:4", "lock r next 60000 wait 0"));
        h.write_argv(in_session("2:2:6", "lock z b 60000"));
        h.write_argv(detach_op(id("2:2:6")));
        h.advance(1_000);
        h.tick();
        assert_eq!(listed(&h, "r", "holders"), vec![entry("dead", "1:1:8", 0)]);
        h.ks.take_events();
        let snapshot = h.ks.to_snapshot();
        let mut restored = Harness {
            ks: Keyspace::from_snapshot(&snapshot).unwrap(),
            now_ms: h.now_ms,
        };
        restored.ks.assert_consistent();
        assert_eq!(restored.ks.to_snapshot(), snapshot);
        assert_eq!(restored.ks.open_sessions().to_sorted().len(), 2);
        for r in ["r", "k0", "z"] {
            let line = format!("lockinfo {r}");
            assert_eq!(restored.read(&line), h.read(&line), "{r}");
        }
        // One allocation per session, as before the snapshot.
        let sessions: Vec<&SessionRef> = ["k0", "k1", "k2"]
            .iter()
            .map(|k| {
                let entry = restored.ks.get(k.as_bytes(), restored.now_ms).unwrap();
                entry.as_lock().unwrap().holders[0]
                    .session
                    .as_ref()
                    .unwrap()
            })
            .collect();
        assert!(sessions.windows(2).all(|w| Arc::ptr_eq(&w[0].0, &w[1].0)));
        // The same entries then do the same: the unconfirmed grant is given back.
        for step in [1_000, 4_000, 60_000] {
            h.advance(step);
            restored.advance(step);
            h.tick();
            restored.tick();
            assert_eq!(restored.ks.take_events(), h.ks.take_events(), "+{step}");
            assert_eq!(restored.ks.to_snapshot(), h.ks.to_snapshot());
        }
    }
}
