use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use super::super::queue::Waiter;
use super::super::{LockEvent, LockMode};
use crate::config::state_limits::{
    MAX_LOCK_TTL_MS, MAX_LOCK_WAIT_MS, MAX_OWNER_BYTES, MAX_RESOURCE_BYTES,
    MAX_WAITERS_PER_RESOURCE,
};
use crate::reply::Reply;
use crate::state::hold::epoch_op;
use crate::state::session::{detach_op, SessionId};
use crate::state::tests::{argv, bulk, err, in_session, int, Harness, Lcg};
use crate::state::{Batch, Event, Keyspace};

const NOTOWNER: &str = "NOTOWNER the lock is not held by this owner";
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const SYNTAX: &str = "ERR syntax error";

/// LOCKINFO as a value, so tests compare whole answers.
#[derive(Debug, PartialEq)]
struct Info {
    mode: String,
    holders: Vec<HolderInfo>,
    token: Option<i64>,
    ttl: i64,
    waiters: Vec<WaiterInfo>,
}

#[derive(Debug, PartialEq)]
struct HolderInfo {
    owner: String,
    mode: String,
    count: i64,
    token: i64,
    ttl: i64,
}

#[derive(Debug, PartialEq)]
struct WaiterInfo {
    owner: String,
    mode: String,
    /// Ms left to wait; -1 waits forever.
    wait: i64,
}

fn field<'a>(map: &'a Reply, name: &str) -> &'a Reply {
    let Reply::Map(pairs) = map else {
        panic!("expected a map, got {map:?}");
    };
    pairs
        .iter()
        .find(|(key, _)| *key == bulk(name))
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("no field {name} in {map:?}"))
}

fn text(reply: &Reply) -> String {
    match reply {
        Reply::Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

fn num(reply: &Reply) -> i64 {
    match reply {
        Reply::Int(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn items(reply: &Reply) -> &[Reply] {
    match reply {
        Reply::Array(items) => items,
        other => panic!("expected an array, got {other:?}"),
    }
}

/// LOCKINFO at the current time; `None` when the reply is nil.
fn info(h: &Harness, resource: &str) -> Option<Info> {
    let reply = h.read(&format!("lockinfo {resource}"));
    if reply == Reply::Nil {
        return None;
    }
    Some(Info {
        mode: text(field(&reply, "mode")),
        holders: items(field(&reply, "holders"))
            .iter()
            .map(|h| HolderInfo {
                owner: text(field(h, "owner")),
                mode: text(field(h, "mode")),
                count: num(field(h, "count")),
                token: num(field(h, "token")),
                ttl: num(field(h, "ttl")),
            })
            .collect(),
        token: match field(&reply, "token") {
            Reply::Nil => None,
            token => Some(num(token)),
        },
        ttl: num(field(&reply, "ttl")),
        waiters: items(field(&reply, "waiters"))
            .iter()
            .map(|w| WaiterInfo {
                owner: text(field(w, "owner")),
                mode: text(field(w, "mode")),
                wait: num(field(w, "wait")),
            })
            .collect(),
    })
}

fn holders(h: &Harness, resource: &str) -> Vec<String> {
    info(h, resource).map_or_else(Vec::new, |i| {
        i.holders.into_iter().map(|holder| holder.owner).collect()
    })
}

fn waiters(h: &Harness, resource: &str) -> Vec<String> {
    info(h, resource).map_or_else(Vec::new, |i| {
        i.waiters.into_iter().map(|waiter| waiter.owner).collect()
    })
}

/// The token of a grant; panics on any other reply.
fn granted(reply: Reply) -> i64 {
    match reply {
        Reply::Int(token) => token,
        other => panic!("expected a token, got {other:?}"),
    }
}

fn lock_events(h: &mut Harness) -> Vec<LockEvent> {
    h.ks.take_events()
        .into_iter()
        .filter_map(|event| match event {
            Event::Lock(event) => Some(event),
            _ => None,
        })
        .collect()
}

fn grant_event(resource: &str, owner: &str, token: i64) -> LockEvent {
    LockEvent::Granted {
        resource: Bytes::copy_from_slice(resource.as_bytes()),
        owner: Bytes::copy_from_slice(owner.as_bytes()),
        token: token as u64,
    }
}

fn timed_out(resource: &str, owner: &str) -> LockEvent {
    LockEvent::WaitTimedOut {
        resource: Bytes::copy_from_slice(resource.as_bytes()),
        owner: Bytes::copy_from_slice(owner.as_bytes()),
    }
}

fn released(resource: &str) -> LockEvent {
    LockEvent::Released {
        resource: Bytes::copy_from_slice(resource.as_bytes()),
    }
}

/// The owners in the Granted events, in order.
fn granted_owners(events: &[LockEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| match event {
            LockEvent::Granted { owner, .. } => Some(String::from_utf8_lossy(owner).into_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn try_lock_is_refused_with_nil_while_held() {
    let mut h = Harness::new();
    let token = granted(h.write("lock r a 1000"));
    h.advance(1);
    assert_eq!(h.write("lock r b 1000"), Reply::Nil);
    assert_eq!(h.write("lock r b 1000 mode pr"), Reply::Nil);
    assert_eq!(h.write("rlock r b 1000"), Reply::Nil);
    assert_eq!(h.write("lock r b 1000 mode ex"), Reply::Nil);
    assert_eq!(
        info(&h, "r"),
        Some(Info {
            mode: "EX".into(),
            holders: vec![HolderInfo {
                owner: "a".into(),
                mode: "EX".into(),
                count: 1,
                token,
                ttl: 999,
            }],
            token: Some(token),
            ttl: 999,
            waiters: vec![],
        })
    );
    assert!(lock_events(&mut h).is_empty(), "a try-lock never queues");
    h.ks.assert_consistent();
}

#[test]
fn grant_returns_the_next_token_of_the_keyspace_counter() {
    let mut h = Harness::new();
    h.write("set x 1");
    assert_eq!(h.token("x"), 1);
    assert_eq!(h.write("lock r a 1000"), int(2));
    assert_eq!(h.read("fence r"), int(2));
    h.write("set y 1");
    assert_eq!(h.token("y"), 3);
    assert_eq!(h.write("lock s a 1000"), int(4));
}

#[test]
fn reentrant_lock_keeps_its_token_and_needs_as_many_unlocks() {
    let mut h = Harness::new();
    let token = granted(h.write("lock r a 1000"));
    assert_eq!(h.write("lock r a 1000"), int(token));
    assert_eq!(h.write("LOCK r a 1000 WAIT 0"), int(token));
    let holder = &info(&h, "r").unwrap().holders[0];
    assert_eq!((holder.count, holder.token), (3, token));
    for left in [2, 1] {
        assert_eq!(h.write("unlock r a"), int(left));
        assert_eq!(h.write("lock r b 1000"), Reply::Nil, "still held");
        assert_eq!(h.read("checkfence r 1"), int(1));
    }
    assert_eq!(h.write("unlock r a"), int(0));
    assert_eq!(info(&h, "r"), None);
    assert_eq!(h.read("exists r"), int(0));
    assert_eq!(h.read("checkfence r 1"), int(0));
    assert_eq!(h.write("unlock r a"), err(NOTOWNER));
    assert_eq!(lock_events(&mut h), vec![released("r")]);
    h.ks.assert_consistent();
}

#[test]
fn reentrant_lock_extends_a_lease_but_never_shortens_it() {
    let mut h = Harness::new();
    h.write("lock r a 10000");
    h.advance(1000);
    h.write("lock r a 100");
    assert_eq!(info(&h, "r").unwrap().ttl, 9000);
    h.write("lock r a 20000");
    assert_eq!(info(&h, "r").unwrap().ttl, 20000);
}

#[test]
fn an_exclusive_holder_asking_for_shared_is_a_reentrant_hold() {
    let mut h = Harness::new();
    let token = granted(h.write("lock r a 1000"));
    assert_eq!(h.write("rlock r a 1000"), int(token));
    let i = info(&h, "r").unwrap();
    assert_eq!((i.mode.as_str(), i.holders[0].count), ("EX", 2));
    assert_eq!(h.write("rlock r b 1000"), Reply::Nil, "still exclusive");
}

#[test]
fn shared_holders_hold_together_with_their_own_tokens() {
    let mut h = Harness::new();
    let a = granted(h.write("rlock r a 1000"));
    let b = granted(h.write("rlock r b 2000"));
    let c = granted(h.write("lock r c 500 mode PR"));
    assert!(a < b && b < c);
    assert_eq!(h.write("lock r d 1000"), Reply::Nil);
    let i = info(&h, "r").unwrap();
    assert_eq!(i.mode, "PR");
    assert_eq!(holders(&h, "r"), vec!["a", "b", "c"]);
    assert_eq!(i.token, Some(c), "the latest grant");
    assert_eq!(i.ttl, 2000, "the longest lease");
    for token in [a, b, c] {
        assert_eq!(h.read(&format!("checkfence r {token}")), int(1));
    }
    h.ks.assert_consistent();
}

#[test]
fn exclusive_waiter_waits_for_every_shared_holder() {
    let mut h = Harness::new();
    h.write("rlock r a 1000");
    h.write("rlock r b 1000");
    assert_eq!(h.write("lock r c 1000 wait 0"), Reply::Blocked);
    assert_eq!(h.write("unlock r a"), int(0));
    assert!(lock_events(&mut h).is_empty());
    assert_eq!(h.write("unlock r b"), int(0));
    let events = lock_events(&mut h);
    let token = granted(h.read("fence r"));
    assert_eq!(events, vec![released("r"), grant_event("r", "c", token)]);
    let i = info(&h, "r").unwrap();
    assert_eq!((i.mode.as_str(), i.ttl), ("EX", 1000));
    assert_eq!(holders(&h, "r"), vec!["c"]);
}

#[test]
fn queued_exclusive_request_blocks_later_shared_requests() {
    let mut h = Harness::new();
    h.write("rlock r a 1000");
    assert_eq!(h.write("lock r w 1000 wait 0"), Reply::Blocked);
    assert_eq!(
        h.write("rlock r b 1000"),
        Reply::Nil,
        "no writer starvation"
    );
    assert_eq!(h.write("rlock r b 1000 wait 0"), Reply::Blocked);
    assert_eq!(waiters(&h, "r"), vec!["w", "b"]);
    h.write("unlock r a");
    assert_eq!(granted_owners(&lock_events(&mut h)), vec!["w"]);
    h.write("unlock r w");
    assert_eq!(granted_owners(&lock_events(&mut h)), vec!["b"]);
    assert_eq!(info(&h, "r").unwrap().mode, "PR");
}

#[test]
fn waiters_are_granted_in_arrival_order() {
    let mut h = Harness::new();
    let mut last = granted(h.write("lock r holder 1000"));
    let owners = ["w1", "w2", "w3", "w4", "w5"];
    for owner in owners {
        h.advance(1);
        assert_eq!(
            h.write(&format!("lock r {owner} 1000 wait 0")),
            Reply::Blocked
        );
    }
    assert_eq!(waiters(&h, "r"), owners);
    let mut previous = "holder";
    for owner in owners {
        h.write(&format!("unlock r {previous}"));
        let events = lock_events(&mut h);
        assert_eq!(granted_owners(&events), vec![owner], "one grant per unlock");
        let token = granted(h.read("fence r"));
        assert!(token > last);
        last = token;
        previous = owner;
    }
    h.write(&format!("unlock r {previous}"));
    assert_eq!(info(&h, "r"), None);
}

#[test]
fn shared_waiters_at_the_head_are_granted_together_up_to_an_exclusive_one() {
    let mut h = Harness::new();
    h.write("lock r a 1000");
    for line in [
        "rlock r r1 1000 wait 0",
        "lock r r2 1000 wait 0 mode pr",
        "lock r w 1000 wait 0",
        "rlock r r3 1000 wait 0",
    ] {
        assert_eq!(h.write(line), Reply::Blocked, "{line}");
    }
    h.write("unlock r a");
    let events = lock_events(&mut h);
    assert_eq!(granted_owners(&events), vec!["r1", "r2"], "in one entry");
    assert_eq!(holders(&h, "r"), vec!["r1", "r2"]);
    assert_eq!(waiters(&h, "r"), vec!["w", "r3"]);
    h.write("unlock r r1");
    assert!(granted_owners(&lock_events(&mut h)).is_empty());
    h.write("unlock r r2");
    assert_eq!(granted_owners(&lock_events(&mut h)), vec!["w"]);
    h.write("unlock r w");
    assert_eq!(granted_owners(&lock_events(&mut h)), vec!["r3"]);
}

#[test]
fn expired_lease_hands_over_to_the_next_waiter_in_the_same_entry() {
    let mut h = Harness::new();
    let old = granted(h.write("lock r a 100"));
    assert_eq!(h.write("lock r b 300 wait 0"), Reply::Blocked);
    assert_eq!(h.ks.next_deadline_ms(), Some(h.now_ms + 100));
    h.advance(99);
    h.tick();
    assert!(lock_events(&mut h).is_empty());
    assert_eq!(holders(&h, "r"), vec!["a"]);
    h.advance(1);
    // Reads at the deadline no longer see the lease, before any entry ends it.
    assert_eq!(holders(&h, "r"), Vec::<String>::new());
    assert_eq!(h.read(&format!("checkfence r {old}")), int(0));
    // Any later entry ends it, here a write to another key: the entry's time ends
    // the lease and grants b before its ops run.
    h.write("set other x");
    let new = old + 1;
    assert_eq!(
        lock_events(&mut h),
        vec![released("r"), grant_event("r", "b", new)]
    );
    assert_eq!(h.token("other"), new + 1);
    let i = info(&h, "r").unwrap();
    assert_eq!(holders(&h, "r"), vec!["b"]);
    assert_eq!(
        (i.token, i.ttl),
        (Some(new), 300),
        "lease counted from the entry"
    );
    assert_eq!(h.ks.next_deadline_ms(), Some(h.now_ms + 300));
    assert_eq!(h.write("unlock r a"), err(NOTOWNER));
    h.ks.assert_consistent();
}

#[test]
fn an_expired_lease_is_ended_by_the_request_that_finds_it() {
    let mut h = Harness::new();
    h.write("lock r a 100");
    h.advance(150);
    assert_eq!(h.write("lock r b 100"), int(2), "no tick needed first");
    assert_eq!(lock_events(&mut h), vec![released("r")]);
}

#[test]
fn expiry_hands_over_on_every_lock_whose_lease_ended() {
    let mut h = Harness::new();
    h.write("lock r1 a 100");
    h.write("lock r2 a 200");
    h.write("lock r3 a 1000");
    for r in ["r1", "r2", "r3"] {
        assert_eq!(h.write(&format!("lock {r} b 100 wait 0")), Reply::Blocked);
    }
    h.advance(250);
    h.tick();
    let mut granted = granted_owners(&lock_events(&mut h));
    granted.sort();
    assert_eq!(granted, vec!["b", "b"]);
    assert_eq!(holders(&h, "r1"), vec!["b"]);
    assert_eq!(holders(&h, "r2"), vec!["b"]);
    assert_eq!(holders(&h, "r3"), vec!["a"]);
    h.ks.assert_consistent();
}

#[test]
fn wait_timeout_leaves_the_queue_with_a_wait_timed_out_event() {
    let mut h = Harness::new();
    h.write("lock r a 1000");
    assert_eq!(h.write("lock r b 1000 wait 50"), Reply::Blocked);
    assert_eq!(h.write("lock r c 1000 wait 0"), Reply::Blocked);
    assert_eq!(info(&h, "r").unwrap().waiters[0].wait, 50);
    assert_eq!(h.ks.next_deadline_ms(), Some(h.now_ms + 50));
    h.advance(49);
    h.tick();
    assert!(lock_events(&mut h).is_empty());
    h.advance(1);
    h.tick();
    assert_eq!(lock_events(&mut h), vec![timed_out("r", "b")]);
    assert_eq!(waiters(&h, "r"), vec!["c"]);
    h.write("unlock r a");
    assert_eq!(granted_owners(&lock_events(&mut h)), vec!["c"]);
    h.ks.assert_consistent();
}

#[test]
fn wait_zero_never_times_out() {
    let mut h = Harness::new();
    h.write(&format!("lock r a {MAX_LOCK_TTL_MS}"));
    assert_eq!(h.write("lock r b 1000 wait 0"), Reply::Blocked);
    assert_eq!(info(&h, "r").unwrap().waiters[0].wait, -1);
    assert_eq!(h.ks.next_deadline_ms(), Some(h.now_ms + MAX_LOCK_TTL_MS));
    // Well past the longest timed wait, in steps with entries between.
    for _ in 0..4 {
        h.advance(MAX_LOCK_WAIT_MS);
        h.tick();
    }
    assert!(lock_events(&mut h).is_empty());
    assert_eq!(waiters(&h, "r"), vec!["b"]);
    h.write("unlock r a");
    assert_eq!(granted_owners(&lock_events(&mut h)), vec!["b"]);
}

#[test]
fn a_lease_and_a_wait_ending_at_once_time_the_wait_out_and_grant_nothing() {
    let mut h = Harness::new();
    h.write("lock r a 100");
    assert_eq!(h.write("lock r b 100 wait 100"), Reply::Blocked);
    h.advance(100);
    h.tick();
    // Never both: a grant to a client that was told its wait is over would be held
    // by nobody.
    assert_eq!(
        lock_events(&mut h),
        vec![released("r"), timed_out("r", "b")]
    );
    assert_eq!(info(&h, "r"), None);
    assert_eq!(h.read("exists r"), int(0));
    h.ks.assert_consistent();
}

#[test]
fn unlock_by_a_non_holder_is_notowner_and_changes_nothing() {
    let mut h = Harness::new();
    h.write("lock r a 1000");
    h.write("lock r b 1000 wait 0");
    let before = h.ks.to_snapshot();
    assert_eq!(h.write("unlock r c"), err(NOTOWNER));
    assert_eq!(
        h.write("unlock r b"),
        err(NOTOWNER),
        "a waiter holds nothing"
    );
    assert_eq!(h.write("unlock missing a"), err(NOTOWNER));
    assert_eq!(h.ks.to_snapshot(), before);
    assert!(lock_events(&mut h).is_empty());
    assert_eq!(waiters(&h, "r"), vec!["b"]);
    assert_eq!(h.read("exists missing"), int(0));
}

#[test]
fn renew_by_a_non_holder_is_notowner_and_changes_nothing() {
    let mut h = Harness::new();
    h.write("rlock r a 1000");
    h.write("lock r b 1000 wait 0");
    let before = h.ks.to_snapshot();
    assert_eq!(h.write("renew r c 5000"), err(NOTOWNER));
    assert_eq!(h.write("renew r b 5000"), err(NOTOWNER));
    assert_eq!(h.ks.to_snapshot(), before);
    assert_eq!(info(&h, "r").unwrap().ttl, 1000);
    assert!(lock_events(&mut h).is_empty());
}

#[test]
fn renew_gives_a_new_lease_from_the_entry_time_and_keeps_the_token() {
    let mut h = Harness::new();
    let token = granted(h.write("lock r a 100"));
    h.advance(90);
    assert_eq!(h.write("renew r a 500"), int(1));
    let i = info(&h, "r").unwrap();
    assert_eq!((i.ttl, i.token), (500, Some(token)));
    assert_eq!(h.ks.next_deadline_ms(), Some(h.now_ms + 500));
    h.advance(300);
    h.tick();
    assert_eq!(holders(&h, "r"), vec!["a"]);
    // A renewal may shorten the lease too: it is a new lease of ttl_ms from now.
    assert_eq!(h.write("renew r a 10"), int(1));
    assert_eq!(info(&h, "r").unwrap().ttl, 10);
    h.ks.assert_consistent();
}

#[test]
fn renew_of_an_expired_lock_returns_zero() {
    let mut h = Harness::new();
    h.write("lock r a 100");
    h.advance(100);
    assert_eq!(
        h.write("renew r a 100"),
        int(0),
        "ended by the RENEW's own entry"
    );
    assert_eq!(h.read("exists r"), int(0));
    assert_eq!(h.write("renew r a 100"), int(0), "no lock at all");
    // Expired, and someone else was granted it since: not the renewer's lock.
    h.write("lock r a 100");
    h.write("lock r b 100 wait 0");
    h.advance(100);
    h.tick();
    assert_eq!(h.write("renew r a 100"), err(NOTOWNER));
    assert_eq!(holders(&h, "r"), vec!["b"]);
}

#[test]
fn tokens_strictly_increase_per_resource_across_grants_and_other_keys() {
    let mut h = Harness::new();
    let mut tokens = Vec::new();
    let mut fence = |h: &Harness, key: &str| tokens.push(h.token(key));
    h.write("lock r a 100");
    fence(&h, "r");
    h.write("set x 1");
    fence(&h, "x");
    h.write("lock r b 100 wait 0");
    h.advance(100);
    h.write("set x 2");
    fence(&h, "r");
    fence(&h, "x");
    h.write("unlock r b");
    h.write("rlock r c 100");
    fence(&h, "r");
    h.write("rlock r d 100");
    fence(&h, "r");
    h.write("set y 1 nx px 10");
    fence(&h, "y");
    h.write("unlock r c");
    // The sole shared holder upgrading is a new exclusion with a new token.
    h.write("lock r d 100");
    fence(&h, "r");
    h.write("lock r e 100 wait 0");
    h.write("del r");
    fence(&h, "r");
    h.write("flushall");
    h.write("lock r f 100");
    fence(&h, "r");
    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "{tokens:?}"
    );
    assert_eq!(tokens.len(), 10);
}

#[test]
fn lockinfo_reports_mode_holders_token_ttl_and_waiters() {
    let mut h = Harness::new();
    assert_eq!(h.read("lockinfo r"), Reply::Nil);
    h.write_argv(in_session("1:4:7", "lock r a 1000"));
    h.write_argv(in_session("1:4:7", "lock r a 1000"));
    h.write_argv(in_session("1:4:8", "lock r b 2000 wait 300"));
    // A request without a session (sent in MULTI, or before sessions).
    h.write("rlock r c 3000 wait 0");
    h.write_argv(detach_op(SessionId::parse(b"1:4:8").unwrap()));
    h.advance(100);
    let map = |pairs: Vec<(&str, Reply)>| {
        Reply::Map(pairs.into_iter().map(|(k, v)| (bulk(k), v)).collect())
    };
    assert_eq!(
        h.read("lockinfo r"),
        map(vec![
            ("mode", bulk("EX")),
            (
                "holders",
                Reply::Array(vec![map(vec![
                    ("owner", bulk("a")),
                    ("mode", bulk("EX")),
                    ("count", int(2)),
                    ("token", int(1)),
                    ("ttl", int(900)),
                    ("session", bulk("1:4:7")),
                    ("attached", int(1)),
                ])])
            ),
            ("token", int(1)),
            ("ttl", int(900)),
            (
                "waiters",
                Reply::Array(vec![
                    map(vec![
                        ("owner", bulk("b")),
                        ("mode", bulk("EX")),
                        ("wait", int(200)),
                        ("session", bulk("1:4:8")),
                        ("attached", int(0)),
                    ]),
                    map(vec![
                        ("owner", bulk("c")),
                        ("mode", bulk("PR")),
                        ("wait", int(-1)),
                        ("session", Reply::Nil),
                        ("attached", int(0)),
                    ]),
                ])
            ),
        ])
    );
    h.write("set s v");
    assert_eq!(h.read("lockinfo s"), err(WRONGTYPE));
    assert_eq!(
        h.read("lockinfo"),
        err("ERR wrong number of arguments for 'lockinfo' command")
    );
}

#[test]
fn checkfence_accepts_only_current_grants_of_a_lock() {
    let mut h = Harness::new();
    assert_eq!(h.read("checkfence r 1"), int(0));
    let a = granted(h.write("lock r a 100"));
    assert_eq!(h.read(&format!("checkfence r {a}")), int(1));
    assert_eq!(h.read(&format!("checkfence r {}", a + 1)), int(0));
    assert_eq!(h.read("checkfence r -1"), int(0));
    assert_eq!(h.read("checkfence r 0"), int(0));
    assert_eq!(
        h.read("checkfence r x"),
        err("ERR value is not an integer or out of range")
    );
    h.write("unlock r a");
    assert_eq!(h.read(&format!("checkfence r {a}")), int(0));
    let b = granted(h.write("lock r b 100"));
    assert_eq!(h.read(&format!("checkfence r {a}")), int(0), "stale");
    assert_eq!(h.read(&format!("checkfence r {b}")), int(1));
    assert_eq!(
        h.read(&format!("checkfence other {b}")),
        int(0),
        "per resource"
    );
    h.advance(100);
    assert_eq!(h.read(&format!("checkfence r {b}")), int(0), "lease over");
}

#[test]
fn checkfence_of_an_upgraded_hold_refuses_the_shared_token() {
    let mut h = Harness::new();
    let shared = granted(h.write("rlock r a 1000"));
    let exclusive = granted(h.write("lock r a 1000"));
    assert!(exclusive > shared, "a new exclusion gets a new token");
    assert_eq!(h.read(&format!("checkfence r {shared}")), int(0));
    assert_eq!(h.read(&format!("checkfence r {exclusive}")), int(1));
    let holder = &info(&h, "r").unwrap().holders[0];
    assert_eq!((holder.mode.as_str(), holder.count), ("EX", 2));
}

#[test]
fn upgrade_with_other_readers_waits_its_turn_in_the_queue() {
    let mut h = Harness::new();
    h.write("rlock r a 1000");
    h.write("rlock r b 1000");
    assert_eq!(h.write("lock r a 1000"), Reply::Nil);
    assert_eq!(h.write("lock r a 1000 wait 0"), Reply::Blocked);
    assert_eq!(holders(&h, "r"), vec!["a", "b"]);
    assert_eq!(h.write("rlock r c 1000"), Reply::Nil, "behind the upgrade");
    h.write("unlock r b");
    let events = lock_events(&mut h);
    assert_eq!(granted_owners(&events), vec!["a"]);
    let i = info(&h, "r").unwrap();
    assert_eq!((i.mode.as_str(), i.holders[0].count), ("EX", 2));
    assert_eq!(h.write("unlock r a"), int(1));
    assert_eq!(h.write("unlock r a"), int(0));
}

#[test]
fn checkfence_of_a_plain_set_nx_lock_is_its_value_token() {
    let mut h = Harness::new();
    assert_eq!(h.write("set k owner-a nx px 1000"), Reply::Ok);
    let token = h.token("k");
    assert_eq!(h.read(&format!("checkfence k {token}")), int(1));
    assert_eq!(h.read(&format!("checkfence k {}", token - 1)), int(0));
    assert_eq!(h.write("set k owner-b nx px 1000"), Reply::Nil);
    assert_eq!(h.read(&format!("checkfence k {token}")), int(1));
    h.advance(1000);
    assert_eq!(h.read(&format!("checkfence k {token}")), int(0), "expired");
    assert_eq!(h.write("set k owner-b nx px 1000"), Reply::Ok);
    let next = h.token("k");
    assert!(next > token);
    assert_eq!(h.read(&format!("checkfence k {token}")), int(0));
    assert_eq!(h.read(&format!("checkfence k {next}")), int(1));
    // Lock grants and SET NX locks draw from one counter.
    assert_eq!(granted(h.write("lock r a 100")), next + 1);
}

#[test]
fn lock_keys_have_type_lock_and_refuse_string_and_deadline_commands() {
    let mut h = Harness::new();
    h.write("lock r a 1000");
    h.write("lock r b 1000 wait 0");
    h.write("set s v");
    let before = h.ks.to_snapshot();
    assert_eq!(h.read("type r"), Reply::status("lock"));
    assert_eq!(h.read("exists r"), int(1));
    assert_eq!(h.read("ttl r"), int(-1));
    assert_eq!(h.read("get r"), err(WRONGTYPE));
    assert_eq!(h.read("strlen r"), err(WRONGTYPE));
    assert_eq!(
        h.read("mget r s"),
        Reply::Array(vec![Reply::Nil, bulk("v")])
    );
    for line in [
        "set r v",
        "set r v xx",
        "set r v get",
        "set r v nx get",
        "setex r 10 v",
        "psetex r 10 v",
        "getset r v",
        "getdel r",
        "getex r px 100",
        "getex r persist",
        "mset s w r v",
        "incr r",
        "incrby r 2",
        "decr r",
        "decrby r 2",
        "append r v",
        "expire r 10",
        "pexpire r 10",
        "expireat r 1",
        "pexpireat r 1",
        "rename r s",
        "rename s r",
        "lock s a 1000",
        "unlock s a",
        "renew s a 1000",
        "lockcancel s a",
    ] {
        assert_eq!(h.write(line), err(WRONGTYPE), "{line}");
    }
    // Conditional writes see an existing key and write nothing.
    assert_eq!(h.write("set r v nx"), Reply::Nil);
    assert_eq!(h.write("setnx r v"), int(0));
    assert_eq!(h.write("msetnx r v z v"), int(0));
    assert_eq!(h.write("persist r"), int(0));
    assert_eq!(h.ks.to_snapshot()[..], before[..], "nothing changed");
    assert!(lock_events(&mut h).is_empty());
    assert_eq!(
        h.read("scan 0 type lock"),
        Reply::Array(vec![bulk("0"), Reply::Array(vec![bulk("r")]),])
    );
}

#[test]
fn del_force_releases_and_the_next_waiter_gets_the_lock() {
    let mut h = Harness::new();
    let old = granted(h.write("lock r a 1000"));
    h.write("lock r a 1000");
    h.write("lock r b 1000 wait 0");
    h.write("lock r c 1000 wait 0");
    assert_eq!(h.write("del r"), int(1));
    let new = granted(h.read("fence r"));
    assert!(new > old);
    assert_eq!(
        lock_events(&mut h),
        vec![released("r"), grant_event("r", "b", new)]
    );
    assert_eq!(holders(&h, "r"), vec!["b"]);
    assert_eq!(waiters(&h, "r"), vec!["c"]);
    assert_eq!(h.write("unlock r a"), err(NOTOWNER), "every hold ended");
    assert_eq!(h.read(&format!("checkfence r {old}")), int(0));
    h.write("lockcancel r c");
    assert_eq!(h.write("unlink r nothing"), int(1));
    assert_eq!(lock_events(&mut h), vec![released("r")]);
    assert_eq!(h.read("exists r"), int(0));
    assert_eq!(h.write("del r"), int(0));
    h.ks.assert_consistent();
}

#[test]
fn flushall_ends_every_wait_and_keeps_the_token_counter() {
    let mut h = Harness::new();
    h.write("lock r1 a 1000");
    h.write("lock r1 b 1000 wait 0");
    h.write("rlock r1 c 1000 wait 500");
    h.write("lock r2 a 1000");
    let last = granted(h.write("lock r3 a 1000"));
    lock_events(&mut h);
    assert_eq!(h.write("flushall"), Reply::Ok);
    let mut events = lock_events(&mut h);
    events.sort_by_key(|event| format!("{event:?}"));
    assert_eq!(events, vec![timed_out("r1", "b"), timed_out("r1", "c")]);
    assert_eq!(info(&h, "r1"), None);
    assert_eq!(h.read("dbsize"), int(0));
    assert_eq!(h.ks.next_deadline_ms(), None);
    assert!(granted(h.write("lock r1 z 1000")) > last);
    h.ks.assert_consistent();
}

#[test]
fn lockcancel_removes_a_waiter_and_keeps_the_rest_in_order() {
    let mut h = Harness::new();
    h.write("lock r a 1000");
    for owner in ["b", "c", "d"] {
        h.write(&format!("lock r {owner} 1000 wait 0"));
    }
    assert_eq!(h.write("lockcancel r c"), int(1));
    assert_eq!(waiters(&h, "r"), vec!["b", "d"]);
    assert_eq!(h.write("lockcancel r c"), int(0));
    assert_eq!(h.write("lockcancel r nobody"), int(0));
    assert_eq!(h.write("lockcancel missing b"), int(0));
    assert_eq!(h.read("exists missing"), int(0));
    assert_eq!(
        h.write("lockcancel r a"),
        int(0),
        "a holder that asked directly"
    );
    assert_eq!(holders(&h, "r"), vec!["a"]);
    assert!(lock_events(&mut h).is_empty());
    h.write("unlock r a");
    h.write("renew r b 1000");
    h.write("unlock r b");
    assert_eq!(granted_owners(&lock_events(&mut h)), vec!["b", "d"]);
}

#[test]
fn lockcancel_of_the_head_lets_compatible_waiters_behind_it_in() {
    let mut h = Harness::new();
    h.write("rlock r a 1000");
    h.write("lock r w 1000 wait 0");
    h.write("rlock r b 1000 wait 0");
    assert_eq!(h.write("lockcancel r w"), int(1));
    assert_eq!(granted_owners(&lock_events(&mut h)), vec!["b"]);
    assert_eq!(holders(&h, "r"), vec!["a", "b"]);
}

#[test]
fn lockcancel_gives_back_an_undelivered_grant_to_the_next_waiter() {
    let mut h = Harness::new();
    h.write("lock r a 1000");
    h.write("lock r b 1000 wait 0");
    h.write("lock r c 1000 wait 0");
    h.write("unlock r a");
    let b = granted(h.read("fence r"));
    assert_eq!(
        lock_events(&mut h),
        vec![released("r"), grant_event("r", "b", b)]
    );
    // b's client left before it heard of the grant.
    assert_eq!(h.write("lockcancel r b"), int(1));
    let c = granted(h.read("fence r"));
    assert!(c > b);
    assert_eq!(
        lock_events(&mut h),
        vec![released("r"), grant_event("r", "c", c)]
    );
    assert_eq!(holders(&h, "r"), vec!["c"]);
    assert_eq!(h.read(&format!("checkfence r {b}")), int(0));
    h.ks.assert_consistent();
}

#[test]
fn lockcancel_after_the_owner_used_its_grant_changes_nothing() {
    for used in ["renew r b 1000", "lock r b 1000", "rlock r b 1000"] {
        let mut h = Harness::new();
        h.write("lock r a 1000");
        h.write("lock r b 1000 wait 0");
        h.write("unlock r a");
        assert!(!h.write(used).is_error(), "{used}");
        assert_eq!(h.write("lockcancel r b"), int(0), "after {used}");
        assert_eq!(holders(&h, "r"), vec!["b"]);
    }
}

#[test]
fn same_owner_asking_again_while_queued_keeps_its_place() {
    let mut h = Harness::new();
    h.write("lock r a 1000");
    h.write("lock r b 1000 wait 0");
    h.write("lock r c 1000 wait 0");
    assert_eq!(h.write("lock r b 5000 wait 100"), Reply::Blocked);
    let i = info(&h, "r").unwrap();
    assert_eq!(waiters(&h, "r"), vec!["b", "c"]);
    assert_eq!(i.waiters[0].wait, 100, "the new request's timeout");
    h.write("unlock r a");
    assert_eq!(info(&h, "r").unwrap().ttl, 5000, "the new request's lease");
}

#[test]
fn one_entry_can_lock_queue_and_hand_over() {
    let mut h = Harness::new();
    let replies = h.ks.apply_batch(&Batch {
        now_ms: h.now_ms,
        ops: vec![
            argv("lock r a 1000"),
            argv("lock r b 1000 wait 0"),
            argv("unlock r a"),
            argv("lock r c 1000"),
        ],
    });
    assert_eq!(replies, vec![int(1), Reply::Blocked, int(0), Reply::Nil]);
    assert_eq!(
        lock_events(&mut h),
        vec![released("r"), grant_event("r", "b", 2)]
    );
}

#[test]
fn limits_and_bad_arguments_give_clear_errors_and_change_nothing() {
    let mut h = Harness::new();
    let long_owner = "o".repeat(MAX_OWNER_BYTES + 1);
    let long_resource = "r".repeat(MAX_RESOURCE_BYTES + 1);
    let ttl_err = format!("ERR invalid ttl: must be 1 to {MAX_LOCK_TTL_MS} ms");
    let wait_err = format!("ERR invalid wait timeout: must be 0 to {MAX_LOCK_WAIT_MS} ms");
    let owner_err = format!("ERR owner must be 1 to {MAX_OWNER_BYTES} bytes");
    let resource_err = format!("ERR resource name longer than {MAX_RESOURCE_BYTES} bytes");
    let not_int = "ERR value is not an integer or out of range";
    let too_long_ttl = (MAX_LOCK_TTL_MS + 1).to_string();
    let too_long_wait = (MAX_LOCK_WAIT_MS + 1).to_string();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["lock", "r", "a", "0"], ttl_err.clone()),
        (vec!["lock", "r", "a", "-5"], ttl_err.clone()),
        (vec!["lock", "r", "a", &too_long_ttl], ttl_err.clone()),
        (vec!["rlock", "r", "a", "0"], ttl_err.clone()),
        (vec!["renew", "r", "a", "0"], ttl_err.clone()),
        (vec!["renew", "r", "a", &too_long_ttl], ttl_err.clone()),
        (vec!["lock", "r", "a", "ten"], not_int.to_string()),
        (vec!["lock", "r", "a", "1.5"], not_int.to_string()),
        (
            vec!["lock", "r", "a", "100", "wait", "-1"],
            wait_err.clone(),
        ),
        (
            vec!["lock", "r", "a", "100", "wait", &too_long_wait],
            wait_err,
        ),
        (vec!["lock", "r", "a", "100", "wait"], SYNTAX.to_string()),
        (
            vec!["lock", "r", "a", "100", "wait", "x"],
            not_int.to_string(),
        ),
        (vec!["lock", "r", "", "100"], owner_err.clone()),
        (vec!["lock", "r", &long_owner, "100"], owner_err.clone()),
        (vec!["renew", "r", "", "100"], owner_err),
        (
            vec!["lock", &long_resource, "a", "100"],
            resource_err.clone(),
        ),
        (vec!["renew", &long_resource, "a", "100"], resource_err),
        (
            vec!["lock", "r", "a", "100", "mode", "cw"],
            "ERR unknown lock mode: use EX or PR".to_string(),
        ),
        (vec!["lock", "r", "a", "100", "mode"], SYNTAX.to_string()),
        (
            vec!["rlock", "r", "a", "100", "mode", "ex"],
            SYNTAX.to_string(),
        ),
        (vec!["lock", "r", "a", "100", "nx"], SYNTAX.to_string()),
        (
            vec!["lock", "r", "a", "100", "wait", "1", "wait", "2"],
            SYNTAX.to_string(),
        ),
        (
            vec!["lock", "r", "a"],
            "ERR wrong number of arguments for 'lock' command".to_string(),
        ),
        (
            vec!["unlock", "r"],
            "ERR wrong number of arguments for 'unlock' command".to_string(),
        ),
        (
            vec!["renew", "r", "a"],
            "ERR wrong number of arguments for 'renew' command".to_string(),
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(h.write_args(&args), err(&expected), "{args:?}");
    }
    assert_eq!(h.read("dbsize"), int(0));
    h.write("set x 1");
    assert_eq!(h.token("x"), 1, "no token was spent");
    // The limits themselves are allowed.
    let owner = "o".repeat(MAX_OWNER_BYTES);
    let resource = "r".repeat(MAX_RESOURCE_BYTES);
    let ttl = MAX_LOCK_TTL_MS.to_string();
    let wait = MAX_LOCK_WAIT_MS.to_string();
    assert_eq!(
        h.write_args(&["lock", &resource, &owner, &ttl, "WAIT", &wait, "MODE", "ex"]),
        int(2)
    );
    assert_eq!(
        h.write_args(&["lock", "", "a", "1"]),
        int(3),
        "an empty name is a name"
    );
}

#[test]
fn a_full_queue_refuses_new_waiters_but_keeps_queued_ones() {
    let mut h = Harness::new();
    h.write("lock r holder 1000");
    // All but the last waiter put in directly: queueing ten thousand through apply
    // costs a walk of the queue each, minutes in a debug build.
    let now = h.now_ms;
    h.ks.with_lock(b"r", now, false, |lock, fx| {
        lock.queue
            .extend((0..MAX_WAITERS_PER_RESOURCE - 1).map(|i| Waiter {
                owner: Bytes::from(format!("w{i}")),
                mode: LockMode::Exclusive,
                ttl_ms: 1000,
                wait_deadline_ms: None,
                session: None,
                reclaim_deadline_ms: None,
            }));
        fx.changed = true;
    })
    .unwrap();
    let last = format!("lock r w{} 1000 wait 0", MAX_WAITERS_PER_RESOURCE - 1);
    assert_eq!(h.write(&last), Reply::Blocked);
    let full = format!("ERR too many waiters on this resource (max {MAX_WAITERS_PER_RESOURCE})");
    assert_eq!(h.write("lock r late 1000 wait 0"), err(&full));
    assert_eq!(
        h.write("lock r late 1000"),
        Reply::Nil,
        "a try-lock is not a waiter"
    );
    assert_eq!(
        h.write("lock r w5 1000 wait 0"),
        Reply::Blocked,
        "already queued"
    );
    let i = info(&h, "r").unwrap();
    assert_eq!(i.waiters.len(), MAX_WAITERS_PER_RESOURCE);
    assert_eq!(i.waiters[5].owner, "w5");
    assert!(i.waiters.iter().all(|w| w.owner != "late"));
}

/// A state with every kind of lock part: reentrant and shared holders, waiters with
/// and without timeouts, an undelivered grant.
fn lock_history(h: &mut Harness) {
    for line in [
        "lock ex a 1000",
        "lock ex a 1000",
        "lock ex b 400 wait 0",
        "rlock ex c 300 wait 500",
        "rlock pr x 2000",
        "rlock pr y 800",
        "lock pr w 100 wait 0",
        "lock handed a 50",
        "lock handed b 700 wait 0",
        "set plain v px 5000",
    ] {
        h.write(line);
        h.advance(10);
    }
    h.advance(50);
    h.tick();
    lock_events(h);
}

#[test]
fn snapshot_round_trip_keeps_holders_queues_and_timers() {
    let mut h = Harness::new();
    lock_history(&mut h);
    let snapshot = h.ks.to_snapshot();
    let mut restored = Harness {
        ks: Keyspace::from_snapshot(&snapshot).unwrap(),
        now_ms: h.now_ms,
    };
    restored.ks.assert_consistent();
    assert_eq!(restored.ks.to_snapshot(), snapshot);
    assert_eq!(restored.ks.next_deadline_ms(), h.ks.next_deadline_ms());
    // The same later entries end the same leases and waits, at the same entry times.
    for step in [100, 300, 400, 500, 800, 1000, 2000] {
        for r in ["ex", "pr", "handed"] {
            assert_eq!(info(&restored, r), info(&h, r), "{r} at +{step}");
        }
        h.advance(step);
        restored.advance(step);
        h.tick();
        restored.tick();
        assert_eq!(lock_events(&mut restored), lock_events(&mut h), "+{step}");
        assert_eq!(restored.ks.to_snapshot(), h.ks.to_snapshot());
    }
    // The undelivered grant is still one a LOCKCANCEL can give back.
    let mut h = Harness::new();
    lock_history(&mut h);
    let mut restored = Harness {
        ks: Keyspace::from_snapshot(&h.ks.to_snapshot()).unwrap(),
        now_ms: h.now_ms,
    };
    assert_eq!(holders(&restored, "handed"), vec!["b"]);
    assert_eq!(restored.write("lockcancel handed b"), int(1));
    assert_eq!(h.write("lockcancel handed b"), int(1));
    assert_eq!(restored.write("lock t z 10"), h.write("lock t z 10"));
}

#[test]
fn restore_from_a_snapshot_keeps_locks_and_expires_leases_on_time() {
    let mut h = Harness::new();
    lock_history(&mut h);
    let mut restored = Harness {
        ks: Keyspace::from_snapshot(&h.ks.to_snapshot()).unwrap(),
        now_ms: h.now_ms,
    };
    restored.ks.assert_consistent();
    assert_eq!(restored.ks.to_snapshot(), h.ks.to_snapshot());
    let deadline = h.ks.next_deadline_ms().unwrap();
    assert_eq!(restored.ks.next_deadline_ms(), Some(deadline));
    // One ms before the first deadline nothing happens; at it, the same events.
    restored.now_ms = deadline - 1;
    restored.tick();
    assert!(lock_events(&mut restored).is_empty());
    restored.now_ms = deadline;
    h.now_ms = deadline;
    restored.tick();
    h.tick();
    let events = lock_events(&mut h);
    assert!(!events.is_empty());
    assert_eq!(lock_events(&mut restored), events);
    // The counter came along.
    assert_eq!(restored.write("lock t z 10"), h.write("lock t z 10"));
}

fn by_resource(events: &[Event]) -> BTreeMap<Bytes, Vec<LockEvent>> {
    let mut grouped: BTreeMap<Bytes, Vec<LockEvent>> = BTreeMap::new();
    for event in events {
        let Event::Lock(event) = event else { continue };
        let (LockEvent::Granted { resource, .. }
        | LockEvent::WaitTimedOut { resource, .. }
        | LockEvent::Released { resource }) = event;
        grouped
            .entry(resource.clone())
            .or_default()
            .push(event.clone());
    }
    grouped
}

#[test]
fn mixed_lock_histories_keep_invariants_replicas_and_snapshots_consistent() {
    const COMMANDS: &[&str] = &[
        "lock",
        "lock",
        "lock",
        "rlock",
        "rlock",
        "unlock",
        "unlock",
        "unlock",
        "renew",
        "lockcancel",
        "del",
        "set",
        "flushall",
    ];
    let owners = ["a", "b", "c", "d"];
    let resources = ["r", "s"];
    let mut rng = Lcg(11);
    let mut one = Keyspace::new();
    let mut two = Keyspace::new();
    let mut now_ms = 1_700_000_000_000u64;
    let mut last_grant: HashMap<Bytes, u64> = HashMap::new();
    let mut grants = 0;
    // Leaders change now and then; their connections come and go.
    let mut term = 1;
    for round in 0..1500 {
        let mut ops = Vec::new();
        if rng.next(40) == 0 {
            term += 1;
            ops.push(epoch_op(term, term % 3 + 1, rng.next(200) as u64));
        }
        if rng.next(10) == 0 {
            let id = format!("1:{term}:{}", rng.next(3));
            ops.push(detach_op(SessionId::parse(id.as_bytes()).unwrap()));
        }
        for _ in 0..rng.next(7) {
            let name = rng.pick(COMMANDS);
            let resource = rng.pick(&resources);
            let owner = rng.pick(&owners);
            let ttl = 1 + rng.next(400);
            let line = match name {
                "lock" | "rlock" => {
                    let wait = match rng.next(3) {
                        0 => String::new(),
                        1 => " wait 0".to_string(),
                        _ => format!(" wait {}", rng.next(300)),
                    };
                    let mode = if name == "lock" && rng.next(3) == 0 {
                        " mode pr"
                    } else {
                        ""
                    };
                    format!("{name} {resource} {owner} {ttl}{wait}{mode}")
                }
                "renew" => format!("renew {resource} {owner} {ttl}"),
                "del" => format!("del {resource}"),
                // Rare: a string in a lock's place refuses lock commands until a DEL.
                "set" if round % 5 != 0 => format!("renew {resource} {owner} {ttl}"),
                "set" => format!("set {resource} v"),
                // Rare: it wipes everything.
                "flushall" if round % 7 != 0 => format!("unlock {resource} {owner}"),
                "flushall" => "flushall".to_string(),
                _ => format!("{name} {resource} {owner}"),
            };
            let in_a_session = matches!(name, "lock" | "rlock" | "renew" | "lockcancel");
            ops.push(if in_a_session && rng.next(3) > 0 {
                // Mostly this term's connections; at times one of the last term's.
                let t = if rng.next(6) == 0 { term - 1 } else { term };
                in_session(&format!("1:{t}:{}", rng.next(3)), &line)
            } else {
                argv(&line)
            });
        }
        now_ms += rng.next(100) as u64;
        let entry = Batch { now_ms, ops };
        let replies = one.apply_batch(&entry);
        assert_eq!(replies, two.apply_batch(&entry));
        let events = one.take_events();
        // Per resource, events come in one order on every replica. (Across resources
        // FLUSHALL reports them in hash-map order, which differs between replicas.)
        assert_eq!(by_resource(&events), by_resource(&two.take_events()));
        for event in events {
            let Event::Lock(event) = event else { continue };
            if let LockEvent::Granted {
                resource, token, ..
            } = event
            {
                grants += 1;
                let last = last_grant.insert(resource, token).unwrap_or(0);
                assert!(token > last, "tokens per resource only grow");
            }
        }
        for resource in resources {
            let line = argv(&format!("lockinfo {resource}"));
            assert_eq!(one.query(now_ms, &line), two.query(now_ms, &line));
        }
        one.assert_consistent();
        let snapshot = one.to_snapshot();
        assert_eq!(two.to_snapshot(), snapshot);
        let from_snapshot = Keyspace::from_snapshot(&snapshot).unwrap();
        from_snapshot.assert_consistent();
        assert_eq!(from_snapshot.to_snapshot(), snapshot);
    }
    assert!(grants > 150, "only {grants} queued grants");
}

/// Lock timers live in a heap whose elements name their locks by slot in the key map,
/// so replicas whose maps differ in layout (one restored from a snapshot, where keys
/// come in sorted) hold different heaps: they must still act alike, entry for entry,
/// through renewals, releases, waits and deadlines that go back to an earlier value
/// (RENEW with a shorter lease), and timers due together (one entry time, one lease).
#[test]
fn lock_timers_act_alike_whatever_the_map_layout() {
    let owners = ["a", "b", "c"];
    let keys = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"];
    let mut rng = Lcg(5);
    let mut one = Keyspace::new();
    let mut now_ms = 1_700_000_000_000u64;
    one.apply_batch(&Batch {
        now_ms,
        ops: vec![argv("lock long a 100000000")],
    });
    let mut restored = Keyspace::from_snapshot(&one.to_snapshot()).unwrap();
    for round in 0..3000 {
        let mut ops = vec![argv(&format!("renew long a {}", 100_000_000 - round))];
        for _ in 0..rng.next(6) {
            let (key, owner) = (rng.pick(&keys), rng.pick(&owners));
            let ttl = rng.pick(&["20", "40", "80"]);
            ops.push(argv(&match rng.next(9) {
                0 | 1 => format!("lock {key} {owner} {ttl}"),
                2 => format!("lock {key} {owner} {ttl} wait {ttl}"),
                3 => format!("rlock {key} {owner} {ttl}"),
                4 => format!("renew {key} {owner} {ttl}"),
                5 => format!("unlock {key} {owner}"),
                6 => format!("del {key}"),
                // Strings that expire move lock entries around the map as they go.
                _ => format!("set s{key} v px {ttl}"),
            }));
        }
        now_ms += rng.next(30) as u64;
        let entry = Batch { now_ms, ops };
        let replies = one.apply_batch(&entry);
        assert_eq!(replies[0], Reply::Int(1), "the long lease is renewed");
        assert_eq!(replies, restored.apply_batch(&entry), "round {round}");
        assert_eq!(one.take_events(), restored.take_events(), "round {round}");
        assert_eq!(one.next_deadline_ms(), restored.next_deadline_ms());
        one.assert_consistent();
        restored.assert_consistent();
        assert_eq!(one.to_snapshot(), restored.to_snapshot());
        if round % 97 == 0 {
            restored = Keyspace::from_snapshot(&one.to_snapshot()).unwrap();
        }
    }
}
