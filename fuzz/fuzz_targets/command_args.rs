//! Commands with arbitrary arguments against the state machine, as Raft applies them.
//!
//! Input (through `arbitrary`): steps, each advancing the entry time and holding commands
//! whose names come from the command table by index (so every command is as likely as
//! any other) and whose arguments are shared keys, known words, numbers or any bytes.
//! Consecutive writes form one entry (`apply_batch`); a read (`query`) runs after the
//! writes before it.
//!
//! Checks: no panic; the keyspace's invariants hold (`assert_consistent`); its snapshot
//! decodes to the same bytes; and a second replica, which applies the same entries but
//! restarts from a snapshot partway, answers, announces and ends exactly the same (so no
//! hash-map order reaches a reply, and a snapshot holds all the state there is).

#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use raftlock::command::{self, Handler};
use raftlock::fuzzing::assert_consistent;
use raftlock::reply::Reply;
use raftlock::state::{Batch, Keyspace};
use raftlock_fuzz::{command_names, same_reply, snapshot_round_trip, Op};

#[derive(Arbitrary, Debug)]
enum Advance {
    None,
    Ms(u8),
    Seconds(u16),
    Far(u32),
}

#[derive(Arbitrary, Debug)]
struct Step {
    advance: Advance,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    steps: Vec<Step>,
    restart_after: u8,
}

/// The cluster time of the first entry.
const START_MS: u64 = 1_000;

fuzz_target!(|input: Input| {
    let names = command_names();
    let mut a = Keyspace::new();
    let mut b = Keyspace::new();
    let restart_after = usize::from(input.restart_after) % (input.steps.len() + 1);
    let mut now_ms = START_MS;
    for (i, step) in input.steps.iter().enumerate() {
        if i == restart_after {
            b = Keyspace::from_snapshot(&b.to_snapshot()).expect("a snapshot decodes");
        }
        now_ms += match step.advance {
            Advance::None => 0,
            Advance::Ms(ms) => u64::from(ms),
            Advance::Seconds(s) => u64::from(s) * 1000,
            Advance::Far(ms) => u64::from(ms),
        };
        let argvs: Vec<Vec<Bytes>> = step.ops.iter().map(|op| op.argv(&names)).collect();
        let replies_a = run_step(&mut a, now_ms, &argvs);
        let replies_b = run_step(&mut b, now_ms, &argvs);
        for (argv, (ra, rb)) in argvs.iter().zip(replies_a.iter().zip(&replies_b)) {
            assert!(
                same_reply(ra, rb),
                "replicas answer {argv:?} differently: {ra:?} and {rb:?} (restart after step {restart_after})"
            );
        }
        assert_eq!(
            a.take_events(),
            b.take_events(),
            "replicas announce differently"
        );
    }
    assert_consistent(&a);
    assert_consistent(&b);
    let snapshot = snapshot_round_trip(&a);
    assert!(
        b.to_snapshot() == snapshot,
        "replicas end in different states"
    );
});

/// Runs one step's commands at `now_ms`: writes gathered into entries, each read after
/// the writes before it; a step without writes is the leader's expiry tick (an empty
/// entry). One reply per command, in order.
fn run_step(keyspace: &mut Keyspace, now_ms: u64, argvs: &[Vec<Bytes>]) -> Vec<Reply> {
    let mut replies = Vec::with_capacity(argvs.len());
    let mut writes = Vec::new();
    let mut entries = 0;
    for argv in argvs {
        let is_read = matches!(
            command::resolve(argv),
            Ok(spec) if matches!(spec.handler, Handler::Read(_))
        );
        if !is_read {
            writes.push(argv.clone());
            continue;
        }
        if !writes.is_empty() {
            let ops = std::mem::take(&mut writes);
            replies.extend(keyspace.apply_batch(&Batch { now_ms, ops }));
            entries += 1;
        }
        replies.push(keyspace.query(now_ms, argv));
    }
    if !writes.is_empty() || entries == 0 {
        replies.extend(keyspace.apply_batch(&Batch {
            now_ms,
            ops: writes,
        }));
    }
    replies
}
