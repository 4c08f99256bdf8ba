//! EVAL and EVAL_RO with arbitrary scripts and arguments, on a keyspace holding a little
//! of every type, under the engine's own limits (instruction budget, heap limit), which
//! are constants of the state machine and so always on.
//!
//! Input: fields separated by NUL bytes: the script; setup letters, each picking one of
//! `SETUP`'s commands to run first; `numkeys`; then the keys and arguments. Missing fields
//! are empty, and a missing `numkeys` is 0. A seed reads like a command line:
//! `return redis.call('get', KEYS[1])\0ah\01\0k0`.
//!
//! Checks: no panic, and no hang (libFuzzer's `-timeout` catches a script the budget
//! fails to stop); the keyspace's invariants hold and its snapshot decodes to the same
//! bytes after the script, whether it succeeded, failed or was killed (a failed script
//! is undone); and a release script that runs natively (`lua::native`) answers, changes
//! and announces exactly what the same script run in Lua does.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use raftlock::fuzzing::{assert_consistent, runs_natively, set_lua_only};
use raftlock::reply::Reply;
use raftlock::state::{Batch, Keyspace};
use raftlock_fuzz::{same_reply, snapshot_round_trip};

/// Commands a script may find done before it runs, by setup letter (`a` is the first).
const SETUP: &[&[&str]] = &[
    &["set", "k0", "v0"],
    &["set", "k1", "tok", "px", "5000"],
    &["set", "k2", "short", "px", "500"],
    &["lock", "lock", "owner", "30000"],
    &["rlock", "res", "reader", "30000"],
    &["lock", "res", "writer", "30000", "WAIT", "5000"],
    &["rpush", "k2", "a", "b", "c"],
    &["hset", "k1", "f", "v", "g", "1"],
    &["zadd", "{k}3", "1", "a", "2.5", "b"],
    &["set", "lock", "tok"],
    &["incrby", "k0", "7"],
    &["script", "load", "return redis.call('get', KEYS[1])"],
];

/// The setup entry's time; the script runs a second later, after `k2`'s short lease.
const SETUP_MS: u64 = 1_000;
const EVAL_MS: u64 = 2_000;

fuzz_target!(|data: &[u8]| {
    let mut fields = data.split(|&b| b == 0);
    let script = fields.next().unwrap_or_default();
    let setup = fields.next().unwrap_or_default();
    let numkeys = fields.next().unwrap_or(b"0");
    let rest: Vec<&[u8]> = fields.collect();

    let native = runs_natively(script);
    let mut keyspaces = vec![Keyspace::new()];
    if native {
        let mut lua_only = Keyspace::new();
        set_lua_only(&mut lua_only, true);
        keyspaces.push(lua_only);
    }
    let eval = |name: &'static str| -> Vec<Bytes> {
        [name.as_bytes(), script, numkeys]
            .into_iter()
            .chain(rest.iter().copied())
            .map(Bytes::copy_from_slice)
            .collect()
    };
    let mut outcomes = Vec::new();
    for keyspace in &mut keyspaces {
        let ops = setup
            .iter()
            .map(|&letter| {
                let command = SETUP[usize::from(letter.wrapping_sub(b'a')) % SETUP.len()];
                command
                    .iter()
                    .map(|word| Bytes::from_static(word.as_bytes()))
                    .collect()
            })
            .collect();
        keyspace.apply_batch(&Batch {
            now_ms: SETUP_MS,
            ops,
        });
        keyspace.take_events();
        let mut replies = keyspace.apply_batch(&Batch {
            now_ms: EVAL_MS,
            ops: vec![eval("eval")],
        });
        replies.push(keyspace.query(EVAL_MS, &eval("eval_ro")));
        assert_consistent(keyspace);
        let snapshot = snapshot_round_trip(keyspace);
        outcomes.push((replies, snapshot, keyspace.take_events()));
    }
    if let [(native_replies, native_state, native_events), (lua_replies, lua_state, lua_events)] =
        &outcomes[..]
    {
        let same = |a: &[Reply], b: &[Reply]| a.iter().zip(b).all(|(a, b)| same_reply(a, b));
        assert!(
            same(native_replies, lua_replies),
            "native {native_replies:?}, Lua {lua_replies:?}"
        );
        assert!(
            native_state == lua_state,
            "native and Lua runs change different things"
        );
        assert_eq!(
            native_events, lua_events,
            "native and Lua runs announce differently"
        );
    }
});
