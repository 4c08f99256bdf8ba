//! `raftlock backup` and `raftlock restore` with the real binary: a backup of a running
//! 3-node cluster under writes, restored into a new single node and a new 3-node cluster
//! with every key, lock and token; fencing tokens that go on above the old ones; and
//! backups that are corrupted, truncated or not backups at all, refused.
//!
//! The tests run one at a time (`serial`), as the cluster tests do.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{map_entries, restore, run, value_text, Server};
use redis::Value;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

const KEYS: usize = 40;
const LOCKS: usize = 5;
const LEASE_MS: &str = "600000";

fn raftlock(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raftlock"))
        .args(args)
        .output()
        .expect("run raftlock")
}

/// What was acknowledged before the backup began, to be found after the restore.
struct Before {
    /// Lock `lock:i` held by `owner:i` with this token.
    tokens: Vec<i64>,
    /// The highest token granted or stamped on a write so far.
    max_token: i64,
}

fn write_before(con: &mut redis::Connection) -> Before {
    for i in 0..KEYS {
        run::<()>(con, &["SET", &format!("key:{i}"), &format!("value {i}")]);
    }
    run::<i64>(con, &["HSET", "hash", "field", "x", "other", "y"]);
    run::<i64>(con, &["RPUSH", "list", "a", "b", "c"]);
    run::<i64>(con, &["SADD", "set", "m1", "m2"]);
    run::<i64>(con, &["ZADD", "zset", "1.5", "one"]);
    run::<()>(con, &["SET", "expiring", "soon", "PX", LEASE_MS]);
    let tokens: Vec<i64> = (0..LOCKS)
        .map(|i| {
            run(
                con,
                &[
                    "LOCK",
                    &format!("lock:{i}"),
                    &format!("owner:{i}"),
                    LEASE_MS,
                ],
            )
        })
        .collect();
    run::<i64>(con, &["RLOCK", "shared", "reader-a", LEASE_MS]);
    let last: i64 = run(con, &["RLOCK", "shared", "reader-b", LEASE_MS]);
    let fence: i64 = run(con, &["FENCE", "expiring"]);
    Before {
        max_token: tokens.iter().copied().max().unwrap().max(last).max(fence),
        tokens,
    }
}

/// A field of a LOCKINFO reply.
fn field(info: &Value, name: &str) -> Value {
    map_entries(info.clone())
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in {info:?}"))
}

/// An integer reply, or a string of digits.
fn number(value: &Value) -> i64 {
    match value {
        Value::Int(n) => *n,
        other => value_text(other).parse().expect("a number"),
    }
}

/// Checks that `con`'s server holds everything `before` wrote, and that `counter` is at
/// least `counter_before`; returns the next fencing token it grants.
fn check_restored(con: &mut redis::Connection, before: &Before, counter_before: i64) -> i64 {
    for i in 0..KEYS {
        let value: Option<String> = run(con, &["GET", &format!("key:{i}")]);
        assert_eq!(value, Some(format!("value {i}")), "key:{i}");
    }
    let hash: Vec<String> = run(con, &["HMGET", "hash", "field", "other"]);
    assert_eq!(hash, ["x", "y"]);
    let list: Vec<String> = run(con, &["LRANGE", "list", "0", "-1"]);
    assert_eq!(list, ["a", "b", "c"]);
    let member: i64 = run(con, &["SISMEMBER", "set", "m2"]);
    assert_eq!(member, 1);
    let score: String = run(con, &["ZSCORE", "zset", "one"]);
    assert_eq!(score, "1.5");
    let ttl: i64 = run(con, &["PTTL", "expiring"]);
    assert!(ttl > 0, "expiring has PTTL {ttl}");
    for (i, token) in before.tokens.iter().enumerate() {
        let info: Value = run(con, &["LOCKINFO", &format!("lock:{i}")]);
        assert_eq!(number(&field(&info, "token")), *token);
        let Value::Array(holders) = field(&info, "holders") else {
            panic!("lock:{i} has no holders: {info:?}");
        };
        assert_eq!(holders.len(), 1);
        assert_eq!(
            value_text(&field(&holders[0], "owner")),
            format!("owner:{i}")
        );
        let lease = number(&field(&holders[0], "ttl"));
        assert!(lease > 0, "lock:{i}'s lease came back ended: {info:?}");
        // The owner still holds it: a second LOCK is reentrant, with the same token.
        let again: i64 = run(
            con,
            &[
                "LOCK",
                &format!("lock:{i}"),
                &format!("owner:{i}"),
                LEASE_MS,
            ],
        );
        assert_eq!(again, *token);
        let other: Option<i64> = run(con, &["LOCK", &format!("lock:{i}"), "intruder", "1000"]);
        assert_eq!(other, None, "lock:{i} was granted to another owner");
    }
    let info: Value = run(con, &["LOCKINFO", "shared"]);
    let Value::Array(readers) = field(&info, "holders") else {
        panic!("shared has no holders: {info:?}");
    };
    assert_eq!(readers.len(), 2);
    let counter: i64 = run(con, &["GET", "counter"]);
    assert!(
        counter >= counter_before,
        "counter is {counter}, {counter_before} was acknowledged before the backup"
    );
    let next: i64 = run(con, &["LOCK", "after-restore", "new-owner", "60000"]);
    // The new cluster's terms come after the old one's: a new client's hold is in its
    // session, not detached as if its term were over.
    let info: Value = run(con, &["LOCKINFO", "after-restore"]);
    let Value::Array(holders) = field(&info, "holders") else {
        panic!("after-restore has no holders: {info:?}");
    };
    assert_eq!(number(&field(&holders[0], "attached")), 1, "{info:?}");
    next
}

/// Writes through `port` until `stop`: INCR counter (its last reply in `acked`), SET,
/// LOCK and UNLOCK. Returns when each INCR was answered, and the highest token granted.
fn writer(port: u16, acked: Arc<AtomicI64>, stop: Arc<AtomicBool>) -> (Vec<Instant>, i64) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut con = client.get_connection().unwrap();
    let (mut counts, mut max_token) = (Vec::new(), 0);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let count: i64 = run(&mut con, &["INCR", "counter"]);
        acked.store(count, Ordering::SeqCst);
        counts.push(Instant::now());
        run::<()>(&mut con, &["SET", &format!("during:{n}"), "x"]);
        let token: i64 = run(&mut con, &["LOCK", "busy", "writer", "5000"]);
        run::<i64>(&mut con, &["UNLOCK", "busy", "writer"]);
        max_token = max_token.max(token);
    }
    (counts, max_token)
}

fn backup_to(file: &Path, port: u16) {
    let out = raftlock(&["backup", file.to_str().unwrap(), "-p", &port.to_string()]);
    assert!(
        out.status.success(),
        "raftlock backup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_backup_under_writes_restores_every_key_lock_and_token_into_new_clusters() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cluster.backup");
    let (before, counter_before, max_token_after) = {
        let cluster = Cluster::start(3, &[]);
        let first = cluster.wait_leader(Duration::from_secs(30));
        // A later term than a new cluster's first, as a cluster that has run a while has.
        run::<()>(
            &mut cluster.node(first).connect(),
            &["RAFT.TRANSFER-LEADER"],
        );
        let leader = cluster.wait_new_leader(first, Duration::from_secs(15));
        let follower = cluster.other_than(&[leader]);
        let before = write_before(&mut cluster.node(leader).connect());
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicI64::new(0));
        let port = cluster.node(cluster.other_than(&[leader, follower])).port;
        let writing = {
            let (acked, stop) = (acked.clone(), stop.clone());
            thread::spawn(move || writer(port, acked, stop))
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.load(Ordering::SeqCst) < 10 {
            assert!(Instant::now() < deadline, "the writer made no progress");
            thread::sleep(Duration::from_millis(10));
        }
        let counter_before = acked.load(Ordering::SeqCst);
        let started = Instant::now();
        // Through a follower, which relays RAFT.BACKUP to the leader.
        backup_to(&file, cluster.node(follower).port);
        thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        let (counts, max_token) = writing.join().expect("writer");
        assert!(
            counts.iter().any(|at| *at > started),
            "no write ran during the backup"
        );
        (before, counter_before, max_token)
    };

    // One node.
    let one = tmp.path().join("one");
    restore(&file, &one, &[]);
    let server = Server::start_in_dir(one, &[], &[]);
    let next = check_restored(&mut server.connect(), &before, counter_before);
    assert!(
        next > before.max_token,
        "token {next} after the restore, {} before the backup",
        before.max_token
    );
    drop(server);

    // Three nodes, each restored from the same file.
    let cluster = Cluster::start_restored(3, &[], &file);
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let next = check_restored(&mut cluster.node(leader).connect(), &before, counter_before);
    assert!(next > before.max_token);
    // Every node serves the restored state (followers relay to the leader).
    for node in cluster.running() {
        let value: Option<String> = run(&mut node.connect(), &["GET", "key:7"]);
        assert_eq!(value.as_deref(), Some("value 7"), "node {}", node.id);
    }
    drop(cluster);

    // The old cluster went on granting tokens after the backup: --fence-floor keeps the
    // new ones above every one of them.
    let floored = tmp.path().join("floored");
    restore(
        &file,
        &floored,
        &["--fence-floor", &max_token_after.to_string()],
    );
    let server = Server::start_in_dir(floored, &[], &[]);
    let next: i64 = run(&mut server.connect(), &["LOCK", "fresh", "owner", "1000"]);
    assert!(
        next > max_token_after,
        "token {next} after the restore, {max_token_after} granted by the old cluster"
    );
}

/// `raftlock restore FILE --data-dir DIR`, expected to fail: its stderr.
fn restore_fails(file: &Path, data_dir: &Path) -> String {
    let out = raftlock(&[
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "restore of {file:?} succeeded");
    assert!(
        !data_dir.join("restore.backup").exists(),
        "a refused backup left a seed in {data_dir:?}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn corrupted_truncated_and_foreign_backups_are_refused_with_what_is_wrong() {
    let _serial = serial();
    let server = Server::start_with(&["--requirepass", "s3cret"]);
    let mut con = server.connect();
    run::<()>(&mut con, &["AUTH", "s3cret"]);
    run::<()>(&mut con, &["SET", "k", "v"]);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("good.backup");
    let port = server.port.to_string();
    let denied = raftlock(&["backup", file.to_str().unwrap(), "-p", &port]);
    assert!(!denied.status.success());
    assert!(String::from_utf8_lossy(&denied.stderr).contains("NOAUTH"));
    assert!(!file.exists(), "a refused backup wrote {file:?}");
    let out = raftlock(&[
        "backup",
        file.to_str().unwrap(),
        "-p",
        &port,
        "-a",
        "s3cret",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let good = std::fs::read(&file).unwrap();

    let write = |name: &str, bytes: &[u8]| -> PathBuf {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    let err = restore_fails(&write("flipped", &flipped), &tmp.path().join("d1"));
    assert!(err.contains("corrupted"), "{err}");
    let err = restore_fails(
        &write("short", &good[..good.len() - 3]),
        &tmp.path().join("d2"),
    );
    assert!(err.contains("truncated"), "{err}");
    let err = restore_fails(
        &write("foreign", b"REDIS0011 not ours"),
        &tmp.path().join("d3"),
    );
    assert!(err.contains("not a raftlock backup"), "{err}");
    let mut newer = good.clone();
    newer[16..20].copy_from_slice(&99u32.to_le_bytes());
    let err = restore_fails(&write("newer", &newer), &tmp.path().join("d4"));
    assert!(err.contains("format version 99 is newer"), "{err}");

    // A data dir that holds a node's data is not overwritten.
    let err = restore_fails(&file, server.data_dir());
    assert!(err.contains("already exists"), "{err}");
    let value: String = run(&mut con, &["GET", "k"]);
    assert_eq!(value, "v");
}
