//! Sets through the `redis` crate against the real binary: a pool of work items handed
//! out with SPOP and SMOVE, the set algebra, RESP2 and RESP3 replies, scripts and
//! transactions, and sets that come back whole, in their order, after a restart.

mod common;

use std::collections::BTreeSet;

use common::{bulk, run, run_err, Server};
use redis::Value;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn sorted(mut members: Vec<String>) -> Vec<String> {
    members.sort();
    members
}

#[test]
fn a_pool_of_work_items_handed_out_with_spop_and_smove() {
    let server = Server::start();
    let mut con = server.connect();
    let items: Vec<String> = (0..20).map(|n| format!("job-{n}")).collect();
    let mut sadd = vec!["SADD", "pending"];
    sadd.extend(items.iter().map(String::as_str));
    assert_eq!(run::<i64>(&mut con, &sadd), 20);
    assert_eq!(run::<String>(&mut con, &["TYPE", "pending"]), "set");

    // Two workers take items; none is handed out twice.
    let mut taken = BTreeSet::new();
    let one: String = run(&mut con, &["SPOP", "pending"]);
    assert!(taken.insert(one.clone()));
    assert_eq!(
        run::<i64>(&mut con, &["SMOVE", "pending", "running", &items[5]]),
        i64::from(one != items[5])
    );
    taken.insert(items[5].clone());
    let batch: Vec<String> = run(&mut con, &["SPOP", "pending", "5"]);
    assert_eq!(batch.len(), 5);
    for item in batch {
        assert!(taken.insert(item));
    }
    let left: Vec<String> = run(&mut con, &["SMEMBERS", "pending"]);
    assert_eq!(left.len() + taken.len(), 20);
    assert!(left.iter().all(|item| !taken.contains(item)));
    assert_eq!(
        run::<i64>(&mut con, &["SCARD", "pending"]),
        left.len() as i64
    );
    assert_eq!(
        run::<Vec<i64>>(&mut con, &["SMISMEMBER", "pending", &left[0], &one]),
        vec![1, 0]
    );
    // SRANDMEMBER looks without taking.
    let peek: Vec<String> = run(&mut con, &["SRANDMEMBER", "pending", "3"]);
    assert_eq!(peek.iter().collect::<BTreeSet<_>>().len(), 3);
    assert_eq!(
        run::<i64>(&mut con, &["SCARD", "pending"]),
        left.len() as i64
    );
    let drawn: Vec<String> = run(&mut con, &["SRANDMEMBER", "pending", "-30"]);
    assert_eq!(drawn.len(), 30);

    // Everything handed out: the key goes.
    let rest: Vec<String> = run(&mut con, &["SPOP", "pending", "100"]);
    assert_eq!(sorted(rest), sorted(left));
    assert_eq!(run::<i64>(&mut con, &["EXISTS", "pending"]), 0);
    assert_eq!(run::<Option<String>>(&mut con, &["SPOP", "pending"]), None);
}

#[test]
fn set_algebra_and_replies_in_resp2_and_resp3() {
    let server = Server::start();
    let mut con = server.connect();
    run::<i64>(&mut con, &["SADD", "a", "x", "y", "z"]);
    run::<i64>(&mut con, &["SADD", "b", "y", "z", "w"]);
    assert_eq!(
        run::<Value>(&mut con, &["SINTER", "a", "b"]),
        Value::Array(vec![bulk("y"), bulk("z")])
    );
    assert_eq!(
        run::<Value>(&mut con, &["SUNION", "a", "b"]),
        Value::Array(vec![bulk("x"), bulk("y"), bulk("z"), bulk("w")])
    );
    assert_eq!(
        run::<Value>(&mut con, &["SDIFF", "a", "b"]),
        Value::Array(vec![bulk("x")])
    );
    assert_eq!(run::<i64>(&mut con, &["SINTERSTORE", "i", "a", "b"]), 2);
    assert_eq!(run::<i64>(&mut con, &["SUNIONSTORE", "u", "a", "b"]), 4);
    assert_eq!(run::<i64>(&mut con, &["SDIFFSTORE", "d", "b", "a"]), 1);
    assert_eq!(
        run::<i64>(&mut con, &["SINTERCARD", "2", "a", "b", "LIMIT", "1"]),
        1
    );
    assert_eq!(run::<i64>(&mut con, &["SINTERCARD", "2", "a", "b"]), 2);
    assert_eq!(
        run_err(&mut con, &["SINTERCARD", "3", "a", "b"]),
        "ERR Number of keys can't be greater than number of args"
    );
    let keys: Vec<String> = {
        let reply: (String, Vec<String>) =
            run(&mut con, &["SCAN", "0", "TYPE", "set", "COUNT", "100"]);
        sorted(reply.1)
    };
    assert_eq!(keys, vec!["a", "b", "d", "i", "u"]);

    // SSCAN pages through every member once.
    let members: Vec<String> = (0..50).map(|n| format!("m{n}")).collect();
    let mut sadd = vec!["SADD", "big"];
    sadd.extend(members.iter().map(String::as_str));
    run::<i64>(&mut con, &sadd);
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    loop {
        let (next, page): (String, Vec<String>) =
            run(&mut con, &["SSCAN", "big", &cursor, "COUNT", "7"]);
        seen.extend(page);
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(sorted(seen), sorted(members));

    run::<()>(&mut con, &["SET", "s", "v"]);
    assert_eq!(run_err(&mut con, &["SADD", "s", "a"]), WRONGTYPE);
    assert_eq!(run_err(&mut con, &["SINTER", "a", "s"]), WRONGTYPE);
    assert_eq!(run_err(&mut con, &["GET", "a"]), WRONGTYPE);

    let mut con3 = server.connect_resp3();
    assert_eq!(
        run::<Value>(&mut con3, &["SMEMBERS", "i"]),
        Value::Set(vec![bulk("y"), bulk("z")])
    );
    assert_eq!(
        run::<Value>(&mut con3, &["SUNION", "missing"]),
        Value::Set(vec![])
    );
    assert_eq!(
        run::<Value>(&mut con3, &["SPOP", "d", "5"]),
        Value::Set(vec![bulk("w")])
    );
    assert_eq!(
        run::<Value>(&mut con3, &["SRANDMEMBER", "i", "5"]),
        Value::Array(vec![bulk("y"), bulk("z")])
    );
}

#[test]
fn sets_in_scripts_transactions_and_watch() {
    let server = Server::start();
    let mut con = server.connect();
    let script = "redis.call('SADD', KEYS[1], ARGV[1], ARGV[2]) \
                  return {redis.call('SCARD', KEYS[1]), redis.call('SMEMBERS', KEYS[1])}";
    let reply: (i64, Vec<String>) = redis::cmd("EVAL")
        .arg(script)
        .arg(1)
        .arg("s")
        .arg("a")
        .arg("b")
        .query(&mut con)
        .unwrap();
    assert_eq!(reply, (2, vec!["a".to_string(), "b".to_string()]));

    let (added, members): (i64, Vec<String>) = redis::pipe()
        .atomic()
        .cmd("SADD")
        .arg("s")
        .arg("c")
        .cmd("SMEMBERS")
        .arg("s")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        (added, members),
        (1, vec!["a".into(), "b".into(), "c".into()])
    );

    // A set changed by another client fails a watcher's EXEC; a no-op does not.
    let mut other = server.connect();
    run::<()>(&mut con, &["WATCH", "s"]);
    run::<i64>(&mut other, &["SADD", "s", "a"]);
    let ran: Option<(i64,)> = redis::pipe()
        .atomic()
        .cmd("SCARD")
        .arg("s")
        .query(&mut con)
        .unwrap();
    assert_eq!(ran, Some((3,)));
    run::<()>(&mut con, &["WATCH", "s"]);
    run::<i64>(&mut other, &["SREM", "s", "a"]);
    let ran: Option<(i64,)> = redis::pipe()
        .atomic()
        .cmd("SCARD")
        .arg("s")
        .query(&mut con)
        .unwrap();
    assert_eq!(ran, None);
}

/// Sets, popped at random, come back from the log after a restart exactly as they were:
/// the same members in the same order, the same tokens, the same deadlines.
fn sets_survive_a_restart(extra_args: &[&str]) {
    let mut server = Server::start_with(extra_args);
    let mut con = server.connect();
    let members: Vec<String> = (0..30).map(|n| format!("m{n}")).collect();
    let mut sadd = vec!["SADD", "s"];
    sadd.extend(members.iter().map(String::as_str));
    run::<i64>(&mut con, &sadd);
    run::<Vec<String>>(&mut con, &["SPOP", "s", "4"]);
    run::<String>(&mut con, &["SPOP", "s"]);
    run::<i64>(&mut con, &["SREM", "s", "m3", "m7"]);
    run::<i64>(&mut con, &["SUNIONSTORE", "t", "s"]);
    run::<i64>(&mut con, &["PEXPIRE", "t", "600000"]);
    let s_before: Vec<String> = run(&mut con, &["SMEMBERS", "s"]);
    let t_before: Vec<String> = run(&mut con, &["SMEMBERS", "t"]);
    let token: i64 = run(&mut con, &["FENCE", "s"]);
    drop(con);
    server.restart();
    let mut con = server.connect();
    assert_eq!(run::<Vec<String>>(&mut con, &["SMEMBERS", "s"]), s_before);
    assert_eq!(run::<Vec<String>>(&mut con, &["SMEMBERS", "t"]), t_before);
    assert_eq!(run::<i64>(&mut con, &["FENCE", "s"]), token);
    assert!(run::<i64>(&mut con, &["PTTL", "t"]) > 0);
    assert_eq!(run::<i64>(&mut con, &["TTL", "s"]), -1);
    run::<i64>(&mut con, &["SADD", "s", "new"]);
    assert!(run::<i64>(&mut con, &["FENCE", "s"]) > token);
}

#[test]
fn sets_survive_a_restart_from_the_log() {
    sets_survive_a_restart(&[]);
}

#[test]
fn sets_survive_a_restart_from_a_snapshot() {
    sets_survive_a_restart(&["--snapshot-every-entries", "3"]);
}
