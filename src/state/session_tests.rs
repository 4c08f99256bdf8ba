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
