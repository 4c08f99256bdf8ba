//! Hashes, sorted sets and compare-and-delete through the `redis` crate against the real
//! binary, driven the way lock libraries drive them: a Redisson-style reentrant lock held
//! in a hash, and a semaphore of holders in a sorted set.

mod common;

use common::{bulk, run, run_err, unix_ms, Server};
use redis::Value;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// Redisson's tryLock script, step by step: take the lock if free or already ours.
fn try_lock(con: &mut redis::Connection, lock: &str, owner: &str, lease_ms: i64) -> bool {
    let free = run::<i64>(con, &["EXISTS", lock]) == 0;
    let ours = run::<i64>(con, &["HEXISTS", lock, owner]) == 1;
    if !free && !ours {
        return false;
    }
    run::<i64>(con, &["HINCRBY", lock, owner, "1"]);
    run::<i64>(con, &["PEXPIRE", lock, &lease_ms.to_string()]);
    true
}

/// Redisson's unlock script, step by step: the holds left, or None if not ours.
fn unlock(con: &mut redis::Connection, lock: &str, owner: &str, lease_ms: i64) -> Option<i64> {
    if run::<i64>(con, &["HEXISTS", lock, owner]) == 0 {
        return None;
    }
    let left: i64 = run(con, &["HINCRBY", lock, owner, "-1"]);
    if left > 0 {
        run::<i64>(con, &["PEXPIRE", lock, &lease_ms.to_string()]);
    } else {
        run::<i64>(con, &["DEL", lock]);
    }
    Some(left)
}

#[test]
fn a_reentrant_lock_held_in_a_hash() {
    let server = Server::start();
    let mut con = server.connect();
    let mut other = server.connect();
    let (lock, me, you) = ("resource", "uuid-1:thread-7", "uuid-2:thread-1");

    assert!(try_lock(&mut con, lock, me, 30_000));
    let first_token: i64 = run(&mut con, &["FENCE", lock]);
    assert!(try_lock(&mut con, lock, me, 30_000), "reentrant");
    assert!(!try_lock(&mut other, lock, you, 30_000), "held by another");
    assert_eq!(run::<String>(&mut con, &["TYPE", lock]), "hash");
    assert_eq!(run::<i64>(&mut con, &["HGET", lock, me]), 2);
    let ttl: i64 = run(&mut con, &["PTTL", lock]);
    assert!(ttl > 29_000 && ttl <= 30_000, "{ttl}");
    assert!(run::<i64>(&mut con, &["FENCE", lock]) > first_token);

    assert_eq!(unlock(&mut other, lock, you, 30_000), None);
    assert_eq!(unlock(&mut con, lock, me, 30_000), Some(1));
    assert_eq!(run::<i64>(&mut con, &["EXISTS", lock]), 1);
    assert_eq!(unlock(&mut con, lock, me, 30_000), Some(0));
    assert_eq!(run::<i64>(&mut con, &["EXISTS", lock]), 0);
    assert!(try_lock(&mut other, lock, you, 30_000));

    // A lease that runs out frees the lock for the next owner.
    run::<i64>(&mut other, &["PEXPIRE", lock, "50"]);
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert_eq!(run::<i64>(&mut con, &["HEXISTS", lock, you]), 0);
    assert!(try_lock(&mut con, lock, me, 30_000));

    assert_eq!(run_err(&mut con, &["GET", lock]), WRONGTYPE);
    assert_eq!(run_err(&mut con, &["ZADD", lock, "1", "m"]), WRONGTYPE);
}

#[test]
fn hash_replies_in_resp2_and_resp3() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run::<i64>(&mut con, &["HSET", "h", "b", "2", "a", "1"]), 2);
    assert_eq!(
        run::<Value>(&mut con, &["HGETALL", "h"]),
        Value::Array(vec![bulk("b"), bulk("2"), bulk("a"), bulk("1")]),
        "fields in the order they were set, as Redis's small hashes"
    );
    assert_eq!(
        run::<Value>(&mut con, &["HMGET", "h", "a", "x"]),
        Value::Array(vec![bulk("1"), Value::Nil])
    );
    assert_eq!(
        run_err(&mut con, &["HSET", "h", "a"]),
        "ERR wrong number of arguments for 'hset' command"
    );
    run::<()>(&mut con, &["HSET", "h", "s", "x"]);
    assert_eq!(
        run_err(&mut con, &["HINCRBY", "h", "s", "1"]),
        "ERR hash value is not an integer"
    );

    let mut con3 = server.connect_resp3();
    assert_eq!(
        run::<Value>(&mut con3, &["HGETALL", "h"]),
        Value::Map(vec![
            (bulk("b"), bulk("2")),
            (bulk("a"), bulk("1")),
            (bulk("s"), bulk("x")),
        ])
    );
}

#[test]
fn a_semaphore_of_holders_in_a_sorted_set() {
    let server = Server::start();
    let mut con = server.connect();
    let (semaphore, permits, lease_ms) = ("sem", 2, 60_000);

    // Acquire: drop stale holders, then take a permit if one is free.
    let acquire = |con: &mut redis::Connection, holder: &str| -> bool {
        let now = unix_ms();
        run::<i64>(
            con,
            &["ZREMRANGEBYSCORE", semaphore, "-inf", &now.to_string()],
        );
        if run::<i64>(con, &["ZCARD", semaphore]) >= permits {
            return false;
        }
        let deadline = (now + lease_ms).to_string();
        run::<i64>(con, &["ZADD", semaphore, "NX", &deadline, holder]);
        true
    };

    // A holder whose lease ended long ago.
    run::<i64>(&mut con, &["ZADD", semaphore, "1000", "stale"]);
    assert!(acquire(&mut con, "h1"));
    assert_eq!(
        run::<Value>(&mut con, &["ZSCORE", semaphore, "stale"]),
        Value::Nil
    );
    assert!(acquire(&mut con, "h2"));
    assert!(!acquire(&mut con, "h3"), "both permits are taken");
    assert_eq!(run::<i64>(&mut con, &["ZCARD", semaphore]), 2);
    assert_eq!(run::<i64>(&mut con, &["ZRANK", semaphore, "h1"]), 0);
    assert_eq!(run::<i64>(&mut con, &["ZRANK", semaphore, "h2"]), 1);
    assert_eq!(
        run::<Value>(&mut con, &["ZRANK", semaphore, "h3"]),
        Value::Nil
    );
    assert_eq!(
        run::<i64>(
            &mut con,
            &["ZCOUNT", semaphore, &unix_ms().to_string(), "+inf"]
        ),
        2
    );

    // Renew h1 only forward (GT), then release h2.
    let later = (unix_ms() + 2 * lease_ms).to_string();
    assert_eq!(
        run::<i64>(
            &mut con,
            &["ZADD", semaphore, "XX", "GT", "CH", &later, "h1"]
        ),
        1
    );
    assert_eq!(
        run::<i64>(&mut con, &["ZADD", semaphore, "XX", "GT", "CH", "5", "h1"]),
        0
    );
    assert_eq!(run::<i64>(&mut con, &["ZRANK", semaphore, "h1"]), 1);
    assert_eq!(run::<i64>(&mut con, &["ZREM", semaphore, "h2"]), 1);
    assert!(acquire(&mut con, "h3"));
    assert_eq!(
        run::<Vec<String>>(&mut con, &["ZRANGE", semaphore, "0", "-1"]),
        vec!["h3", "h1"]
    );

    // Scores: bulk strings in RESP2, doubles in RESP3; WITHSCORES pairs in RESP3.
    run::<i64>(&mut con, &["ZADD", "scores", "1.5", "a", "2", "b"]);
    assert_eq!(
        run::<Value>(&mut con, &["ZSCORE", "scores", "a"]),
        bulk("1.5")
    );
    assert_eq!(
        run::<Value>(&mut con, &["ZRANGE", "scores", "0", "-1", "WITHSCORES"]),
        Value::Array(vec![bulk("a"), bulk("1.5"), bulk("b"), bulk("2")])
    );
    let mut con3 = server.connect_resp3();
    assert_eq!(
        run::<Value>(&mut con3, &["ZSCORE", "scores", "a"]),
        Value::Double(1.5)
    );
    assert_eq!(
        run::<Value>(&mut con3, &["ZRANGE", "scores", "0", "-1", "WITHSCORES"]),
        Value::Array(vec![
            Value::Array(vec![bulk("a"), Value::Double(1.5)]),
            Value::Array(vec![bulk("b"), Value::Double(2.0)]),
        ])
    );
    assert_eq!(
        run::<Value>(&mut con3, &["ZRANK", "scores", "b", "WITHSCORE"]),
        Value::Array(vec![Value::Int(1), Value::Double(2.0)])
    );
    assert_eq!(
        run_err(&mut con, &["ZADD", "scores", "NX", "XX", "1", "a"]),
        "ERR XX and NX options at the same time are not compatible"
    );
    assert_eq!(
        run_err(&mut con, &["ZRANGEBYSCORE", "scores", "x", "1"]),
        "ERR min or max is not a float"
    );
}

#[test]
fn sorted_sets_and_hashes_survive_a_restart() {
    let mut server = Server::start();
    let mut con = server.connect();
    run::<i64>(&mut con, &["ZADD", "z", "2", "b", "1", "a"]);
    run::<i64>(&mut con, &["HSET", "h", "owner", "3"]);
    run::<i64>(&mut con, &["PEXPIRE", "h", "600000"]);
    let token: i64 = run(&mut con, &["FENCE", "z"]);
    drop(con);
    server.restart();
    let mut con = server.connect();
    assert_eq!(
        run::<Vec<String>>(&mut con, &["ZRANGE", "z", "0", "-1"]),
        vec!["a", "b"]
    );
    assert_eq!(run::<i64>(&mut con, &["HGET", "h", "owner"]), 3);
    assert!(run::<i64>(&mut con, &["PTTL", "h"]) > 0);
    assert_eq!(run::<i64>(&mut con, &["FENCE", "z"]), token);
    run::<i64>(&mut con, &["ZADD", "z", "3", "c"]);
    assert!(run::<i64>(&mut con, &["FENCE", "z"]) > token);
}

#[test]
fn compare_and_delete_releases_a_plain_lock_without_a_script() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        run::<Value>(&mut con, &["SET", "lock", "token-1", "NX", "PX", "30000"]),
        Value::Okay
    );
    assert_eq!(run::<i64>(&mut con, &["DELIFEQ", "lock", "token-2"]), 0);
    assert_eq!(run::<i64>(&mut con, &["DELIFEQ", "lock", "token-1"]), 1);
    assert_eq!(run::<i64>(&mut con, &["EXISTS", "lock"]), 0);

    run::<()>(&mut con, &["SET", "lock", "token-1", "PX", "30000"]);
    // Extend only while ours: SET ... IFEQ.
    assert_eq!(
        run::<Value>(
            &mut con,
            &["SET", "lock", "token-1", "IFEQ", "token-1", "PX", "60000"]
        ),
        Value::Okay
    );
    assert!(run::<i64>(&mut con, &["PTTL", "lock"]) > 30_000);
    assert_eq!(
        run::<Value>(&mut con, &["SET", "lock", "token-2", "IFEQ", "token-9"]),
        Value::Nil
    );
    assert_eq!(
        run::<i64>(&mut con, &["DELEX", "lock", "IFEQ", "token-9"]),
        0
    );
    assert_eq!(
        run::<i64>(&mut con, &["DELEX", "lock", "IFEQ", "token-1"]),
        1
    );
    assert_eq!(
        run_err(&mut con, &["SET", "k", "v", "NX", "IFEQ", "x"]),
        "ERR syntax error"
    );
    run::<i64>(&mut con, &["HSET", "h", "f", "v"]);
    assert_eq!(run_err(&mut con, &["DELIFEQ", "h", "v"]), WRONGTYPE);
}
