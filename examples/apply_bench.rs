//! The state machine's share of the Redlock pattern, without the network, Raft or fsync:
//! each op is one entry holding `SET key token NX PX 10000` and the compare-and-delete
//! release by EVALSHA, applied to a `Keyspace` as a node applies committed entries.
//! Prints nanoseconds per op for a few rounds; compare builds on the same machine.
//!
//!     cargo run --release --example apply_bench [ops-per-round]

use bytes::Bytes;
use raftlock::reply::Reply;
use raftlock::state::{Batch, Keyspace};

/// The server's allocator, so the figures match what a node spends.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RELEASE: &str =
    "if redis.call('get',KEYS[1]) == ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end";

fn main() {
    let ops: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(300_000);
    let mut ks = Keyspace::new();
    let loaded = ks.apply_batch(&Batch {
        now_ms: 1,
        ops: vec![vec!["SCRIPT".into(), "LOAD".into(), RELEASE.into()]],
    });
    let Some(Reply::Bulk(sha)) = loaded.first() else {
        panic!("SCRIPT LOAD answered {loaded:?}");
    };
    let sha = sha.clone();
    for round in 1..=5 {
        let started = std::time::Instant::now();
        for i in 0..ops {
            let key = Bytes::from(format!("lock:{}", i * 7919 % 100_000));
            let token = Bytes::from(format!("token-{i}"));
            let replies = ks.apply_batch(&Batch {
                now_ms: 10 + i,
                ops: vec![
                    vec![
                        "SET".into(),
                        key.clone(),
                        token.clone(),
                        "NX".into(),
                        "PX".into(),
                        "10000".into(),
                    ],
                    vec!["EVALSHA".into(), sha.clone(), "1".into(), key, token],
                ],
            });
            assert_eq!(replies, [Reply::Ok, Reply::Int(1)], "op {i}");
        }
        let ns = started.elapsed().as_nanos() as f64 / ops as f64;
        println!("round {round}: {ns:.0} ns per SET NX PX + release");
    }
}
