use super::*;
use crate::state::tests::{bulk, int, Harness};
use crate::state::{Batch, Event, Keyspace, LockEvent};

const GRACE_MS: u64 = 1_000;

/// The first entry of node `leader` in `term`: the epoch op, then `lines`.
fn leader_entry(h: &mut Harness, term: u64, leader: u64, lines: &[&str]) -> Vec<Reply> {
    let mut ops = vec![epoch_op(term, leader, GRACE_MS)];
    ops.extend(lines.iter().map(|line| crate::state::tests::argv(line)));
    h.ks.apply_batch(&Batch {
        now_ms: h.now_ms,
        ops,
    })
}

/// The first entry of a leader that is not the previous one (node id = term).
fn new_leader_entry(h: &mut Harness, term: u64, lines: &[&str]) -> Vec<Reply> {
    leader_entry(h, term, term, lines)
}

#[test]
fn a_new_leaders_first_entry_expires_nothing_its_clock_has_passed() {
    let mut h = Harness::new();
    h.write("set k v px 100");
    // The old leader never proposed the expiry; the new leader's clock is well past it.
    h.advance(500);
    let replies = new_leader_entry(&mut h, 2, &["get k"]);
    assert_eq!(replies, vec![Reply::Ok, bulk("v")]);
    assert_eq!(h.read("get k"), bulk("v"));
    h.tick();
    assert_eq!(h.read("exists k"), int(1));
}

#[test]
fn key_deadlines_do_not_pass_before_the_hold_ends_and_do_after() {
    let mut h = Harness::new();
    h.write("set k v px 100");
    new_leader_entry(&mut h, 2, &[]);
    let hold_end = h.now_ms + GRACE_MS;
    h.advance(200);
    h.tick();
    assert_eq!(h.read("get k"), bulk("v"), "inside the hold");
    assert_eq!(h.read("pttl k"), int(0));
    assert_eq!(h.ks.next_deadline_ms(), Some(hold_end));
    h.now_ms = hold_end - 1;
    h.tick();
    assert_eq!(h.read("get k"), bulk("v"), "one ms before the hold ends");
    h.now_ms = hold_end;
    assert_eq!(h.read("get k"), Reply::Nil, "a read at the hold's end");
    h.tick();
    assert_eq!(h.ks.key_count(h.now_ms), 0);
    assert_eq!(h.ks.next_deadline_ms(), None);
    h.ks.assert_consistent();
}

#[test]
fn writes_inside_the_hold_keep_a_passed_deadline_and_see_the_key() {
    let mut h = Harness::new();
    h.write("set k 1 px 100");
    new_leader_entry(&mut h, 2, &[]);
    h.advance(300);
    assert_eq!(h.write("incr k"), int(2), "the key still exists for writes");
    assert_eq!(h.write("set k 3 keepttl"), Reply::Ok);
    assert_eq!(h.read("pttl k"), int(0), "the passed deadline stays");
    h.advance(GRACE_MS);
    h.tick();
    assert_eq!(h.read("get k"), Reply::Nil);
    h.ks.assert_consistent();
}

#[test]
fn leases_inside_the_hold_stay_held_and_end_after_it() {
    let mut h = Harness::new();
    let Reply::Int(first) = h.write("lock r a 100") else {
        panic!("lock not granted");
    };
    new_leader_entry(&mut h, 2, &[]);
    h.advance(500);
    assert_eq!(h.write("lock r b 100"), Reply::Nil, "a's lease is not over");
    assert_eq!(h.read(&format!("checkfence r {first}")), int(1));
    assert_eq!(h.read("fence r"), int(first));
    h.advance(GRACE_MS);
    let Reply::Int(second) = h.write("lock r b 100") else {
        panic!("lock not granted after the hold");
    };
    assert!(second > first, "tokens keep increasing");
    assert_eq!(h.read(&format!("checkfence r {first}")), int(0));
    h.ks.assert_consistent();
}

#[test]
fn waits_inside_the_hold_do_not_time_out_until_it_ends() {
    let mut h = Harness::new();
    h.write("lock r a 60000");
    assert_eq!(h.write("lock r b 1000 wait 50"), Reply::Blocked);
    h.ks.take_events();
    new_leader_entry(&mut h, 2, &[]);
    h.advance(100);
    h.tick();
    assert!(h.ks.take_events().is_empty(), "the wait is held");
    h.advance(GRACE_MS);
    h.tick();
    assert_eq!(
        h.ks.take_events(),
        vec![Event::Lock(LockEvent::WaitTimedOut {
            resource: "r".into(),
            owner: "b".into(),
        })]
    );
}

#[test]
fn entries_after_the_hold_expire_as_usual_and_new_leases_count_from_entry_time() {
    let mut h = Harness::new();
    new_leader_entry(&mut h, 2, &[]);
    h.advance(GRACE_MS);
    h.write("set k v px 100");
    let Reply::Int(first) = h.write("lock r a 100") else {
        panic!("lock not granted");
    };
    h.advance(99);
    assert_eq!(h.write("lock r b 100"), Reply::Nil, "the lease runs 100 ms");
    h.advance(1);
    assert_eq!(h.read("get k"), Reply::Nil);
    h.tick();
    assert_eq!(h.write("lock r b 100"), int(first + 1));
}

#[test]
fn holds_only_extend_and_the_grace_is_bounded() {
    let mut h = Harness::new();
    h.write("set k v");
    new_leader_entry(&mut h, 3, &[]);
    let hold = h.ks.expiry_hold();
    assert_eq!((hold.term, hold.leader), (3, 3));
    h.ks.apply_batch(&Batch {
        now_ms: h.now_ms,
        ops: vec![epoch_op(2, 2, 10)],
    });
    assert_eq!(
        h.ks.expiry_hold(),
        hold,
        "a deposed leader's late op changes nothing"
    );
    h.ks.apply_batch(&Batch {
        now_ms: h.now_ms,
        ops: vec![epoch_op(4, 4, u64::MAX / 2)],
    });
    assert_eq!(h.ks.expiry_hold().until_ms, h.now_ms + MAX_EPOCH_GRACE_MS);
    assert_eq!(h.ks.expiry_hold().term, 4);
}

#[test]
fn no_hold_when_the_clock_stays_with_the_same_node() {
    let mut h = Harness::new();
    h.write("set k v px 100");
    leader_entry(&mut h, 2, 1, &[]);
    let held_until = h.ks.expiry_hold().until_ms;
    assert!(held_until > h.now_ms);
    h.now_ms = held_until;
    // Node 1 re-elected (a single node restarting): its clock stamped the last entries.
    leader_entry(&mut h, 3, 1, &[]);
    assert_eq!(h.ks.expiry_hold().until_ms, held_until);
    assert_eq!(h.ks.expiry_hold().term, 3);
    h.write("set k v px 100");
    h.advance(100);
    assert_eq!(h.read("get k"), Reply::Nil);
}

#[test]
fn the_first_entry_of_a_new_log_places_no_hold() {
    let mut h = Harness::new();
    leader_entry(&mut h, 1, 1, &["set k v px 100"]);
    assert_eq!(h.ks.expiry_hold().until_ms, 0);
    h.advance(100);
    assert_eq!(h.read("get k"), Reply::Nil);
}

#[test]
fn clients_cannot_send_the_epoch_op() {
    assert!(crate::command::lookup(EPOCH_OP.as_bytes()).is_none());
}

#[test]
fn the_hold_survives_snapshots_and_restarts() {
    let mut h = Harness::new();
    h.write("set k v px 100");
    new_leader_entry(&mut h, 7, &[]);
    let snapshot = h.ks.to_snapshot();
    let restored = Keyspace::from_snapshot(&snapshot).unwrap();
    assert_eq!(restored.expiry_hold(), h.ks.expiry_hold());
    assert_eq!(restored.to_snapshot(), snapshot);
}
