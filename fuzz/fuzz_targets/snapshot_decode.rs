//! Snapshot decoding (`Keyspace::from_snapshot`) on arbitrary bytes: what a follower does
//! with the snapshot a leader sends, and a node with the one on its disk.
//!
//! Checks: no panic, no allocation far beyond the input (libFuzzer's `-malloc_limit_mb`
//! catches one sized by a length prefix); bytes that decode give a keyspace whose own
//! snapshot decodes to the same snapshot again; and the decoded keyspace answers reads
//! without panicking.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use raftlock::state::Keyspace;
use raftlock_fuzz::{snapshot_round_trip, KEYS};

/// Reads that walk the whole keyspace or each kind of value.
const READS: &[&[&str]] = &[&["dbsize"], &["keys", "*"], &["scan", "0", "count", "100"]];

/// Reads of one key, for each shared key name.
const KEY_READS: &[&[&str]] = &[
    &["type"],
    &["pttl"],
    &["get"],
    &["fence"],
    &["lockinfo"],
    &["lrange", "0", "-1"],
    &["hgetall"],
    &["zrange", "0", "-1", "withscores"],
    &["smembers"],
    &["srandmember"],
    &["srandmember", "-3"],
    &["sscan", "0"],
];

fuzz_target!(|data: &[u8]| {
    let Ok(keyspace) = Keyspace::from_snapshot(data) else {
        return;
    };
    snapshot_round_trip(&keyspace);
    let now_ms = keyspace.last_now_ms();
    for read in READS {
        let argv: Vec<Bytes> = read
            .iter()
            .map(|w| Bytes::from_static(w.as_bytes()))
            .collect();
        keyspace.query(now_ms, &argv);
    }
    for key in KEYS {
        for read in KEY_READS {
            let argv: Vec<Bytes> = [read[0], key]
                .into_iter()
                .chain(read[1..].iter().copied())
                .map(|w| Bytes::from_static(w.as_bytes()))
                .collect();
            keyspace.query(now_ms, &argv);
        }
    }
});
