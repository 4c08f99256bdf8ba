use super::*;
use crate::config::state_limits::MAX_TRACKED_REMOVALS;
use crate::state::tests::{argv, bulk, err, int, Harness};
use crate::state::Event;

fn tx(watches: Vec<Watch>, lines: &[&str]) -> Vec<Bytes> {
    Transaction {
        watches,
        commands: lines.iter().map(|line| argv(line)).collect(),
    }
    .encode()
}

/// WATCH as the node does it: the key's revision and the counter, at the current time.
fn watch(h: &Harness, key: &str) -> Watch {
    Watch {
        key: Bytes::copy_from_slice(key.as_bytes()),
        revision: h.ks.revision(key.as_bytes(), h.now_ms),
        seen_at: h.ks.revision_counter(),
    }
}

fn exec_watching(h: &mut Harness, key: &str, between: &[&str]) -> Reply {
    let w = watch(h, key);
    for line in between {
        h.write(line);
    }
    h.write_argv(tx(vec![w], &["set probe 1"]))
}

#[test]
fn encoding_round_trips_and_refuses_malformed_ops() {
    let t = Transaction {
        watches: vec![Watch {
            key: Bytes::from("k"),
            revision: 3,
            seen_at: 9,
        }],
        commands: vec![argv("set a 1"), argv("get a")],
    };
    assert_eq!(Transaction::decode(&t.encode()), Ok(t));
    for bad in [
        "txn 0",
        "txn 0 1",
        "txn 0 1 0",
        "txn 1 k 1 0",
        "txn 0 1 3 get a",
        "txn 0 0 x",
        "txn -1 0",
    ] {
        assert_eq!(
            Transaction::decode(&argv(bad)),
            Err(Reply::syntax_error()),
            "{bad}"
        );
    }
}

#[test]
fn exec_runs_every_command_in_one_op_and_reads_see_earlier_writes() {
    let mut h = Harness::new();
    let reply = h.write_argv(tx(vec![], &["set a 1", "incr a", "get a", "exists a b"]));
    assert_eq!(
        reply,
        Reply::Array(vec![Reply::Ok, int(2), bulk("2"), int(1)])
    );
    h.ks.assert_consistent();
}

#[test]
fn a_failing_command_is_reported_and_the_others_still_run() {
    let mut h = Harness::new();
    h.write("set s x");
    let reply = h.write_argv(tx(vec![], &["incr s", "set b 2", "nosuch x", "get"]));
    assert_eq!(
        reply,
        Reply::Array(vec![
            Reply::not_integer(),
            Reply::Ok,
            err("ERR unknown command 'nosuch', with args beginning with: 'x' "),
            Reply::wrong_arity("get"),
        ])
    );
    assert_eq!(h.read("get b"), bulk("2"));
}

#[test]
fn blocking_commands_inside_a_transaction_do_not_block() {
    let mut h = Harness::new();
    h.write("lock r a 1000");
    let reply = h.write_argv(tx(
        vec![],
        &[
            "lock r b 1000 wait 0",
            "rlock q c 1000 wait 5",
            "blpop l 0",
            "lock r b 1000 wait -1",
            "txn 0 0",
        ],
    ));
    let Reply::Array(replies) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(replies[0], Reply::Nil, "a try-lock");
    assert!(matches!(replies[1], Reply::Int(_)));
    assert_eq!(replies[2], Reply::NilArray);
    assert!(replies[3].is_error());
    assert_eq!(replies[4], err("ERR MULTI calls can not be nested"));
    let Reply::Map(info) = h.read("lockinfo r") else {
        panic!()
    };
    let waiters = info.iter().find(|(name, _)| *name == bulk("waiters"));
    assert!(
        waiters.is_some_and(|(_, w)| matches!(w, Reply::Array(w) if w.is_empty())),
        "nobody queued: {info:?}"
    );
}

#[test]
fn watch_fails_exec_on_any_modification_of_the_key() {
    for change in [
        "set k 2",
        "expire k 50",
        "persist k",
        "append k x",
        "del k",
        "rename k k2",
    ] {
        let mut h = Harness::new();
        h.write("set k 1 ex 100");
        assert_eq!(
            exec_watching(&mut h, "k", &[change]),
            Reply::NilArray,
            "{change}"
        );
        assert_eq!(h.read("get probe"), Reply::Nil, "nothing of it ran");
    }
}

#[test]
fn watch_lets_exec_run_when_the_key_is_untouched() {
    let mut h = Harness::new();
    h.write("set k 1");
    let reply = exec_watching(
        &mut h,
        "k",
        &["set other 1", "get k", "persist k", "expire nokey 5"],
    );
    assert_eq!(reply, Reply::Array(vec![Reply::Ok]));
    let reply = exec_watching(&mut h, "missing", &["set other 2", "del other"]);
    assert_eq!(
        reply,
        Reply::Array(vec![Reply::Ok]),
        "a missing key stays missing"
    );
}

#[test]
fn watch_sees_expiry_as_a_change() {
    let mut h = Harness::new();
    h.write("set k 1 px 50");
    let w = watch(&h, "k");
    h.advance(60);
    assert_eq!(h.write_argv(tx(vec![w], &["set probe 1"])), Reply::NilArray);
}

#[test]
fn a_key_deleted_and_recreated_does_not_look_unchanged() {
    let mut h = Harness::new();
    h.write("set k 1");
    assert_eq!(
        exec_watching(&mut h, "k", &["del k", "set k 1"]),
        Reply::NilArray
    );
    // Missing when watched, then created and removed again.
    assert_eq!(
        exec_watching(&mut h, "new", &["set new 1", "del new"]),
        Reply::NilArray
    );
    h.write("set k 1");
    assert_eq!(exec_watching(&mut h, "k", &["flushall"]), Reply::NilArray);
}

#[test]
fn flushall_changes_only_watched_keys_that_existed_as_in_redis() {
    let mut h = Harness::new();
    h.write("set other 1");
    // Missing when watched and still missing: FLUSHALL did not change it.
    assert_eq!(
        exec_watching(&mut h, "gone", &["flushall"]),
        Reply::Array(vec![Reply::Ok])
    );
    assert_eq!(
        exec_watching(&mut h, "gone", &["flushdb"]),
        Reply::Array(vec![Reply::Ok])
    );
    // Past the removals remembered one by one, a missing key counts as removed.
    for i in 0..=MAX_TRACKED_REMOVALS {
        h.write(&format!("set k{i} v"));
    }
    assert_eq!(
        exec_watching(&mut h, "gone", &["flushall"]),
        Reply::NilArray
    );
}

#[test]
fn lock_changes_move_the_revision() {
    let mut h = Harness::new();
    h.write("lock r a 1000");
    assert_eq!(
        exec_watching(&mut h, "r", &["renew r a 5000"]),
        Reply::NilArray
    );
    assert_eq!(exec_watching(&mut h, "r", &["unlock r a"]), Reply::NilArray);
}

#[test]
fn revisions_read_the_counter_and_each_key() {
    let mut h = Harness::new();
    h.write("set a 1");
    let counter = h.ks.revision_counter() as i64;
    assert_eq!(
        h.read("revisions a b"),
        Reply::Array(vec![int(counter), int(counter), int(0)])
    );
}

#[test]
fn publish_emits_an_event_also_from_a_transaction() {
    let mut h = Harness::new();
    h.ks.take_events();
    assert_eq!(h.write("publish ch hello"), int(0));
    h.write_argv(tx(vec![], &["spublish sh m"]));
    assert_eq!(
        h.ks.take_events(),
        vec![
            Event::Published {
                channel: Bytes::from("ch"),
                message: Bytes::from("hello"),
                sharded: false,
            },
            Event::Published {
                channel: Bytes::from("sh"),
                message: Bytes::from("m"),
                sharded: true,
            },
        ]
    );
}
