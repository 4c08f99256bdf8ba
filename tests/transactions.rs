//! MULTI/EXEC/DISCARD/WATCH against a real node, with the `redis` crate.

mod common;

use common::{run, run_err, Server};
use redis::Value;

#[test]
fn exec_runs_queued_commands_in_order_and_reads_see_earlier_writes() {
    let server = Server::start();
    let mut con = server.connect();
    let (a, n, got): (String, i64, String) = redis::pipe()
        .atomic()
        .set("a", "1")
        .incr("a", 5)
        .get("a")
        .query(&mut con)
        .unwrap();
    assert_eq!((a.as_str(), n, got.as_str()), ("OK", 6, "6"));
}

#[test]
fn queued_commands_answer_queued_and_exec_returns_every_reply() {
    let server = Server::start();
    let mut raw = server.raw_client();
    assert_eq!(raw.call("MULTI\r\n"), "+OK\r\n");
    for command in ["SET s x", "INCR s", "PING", "ECHO hi", "GET s"] {
        assert_eq!(
            raw.call(&format!("{command}\r\n")),
            "+QUEUED\r\n",
            "{command}"
        );
    }
    // A runtime error is one element of the reply; the others still run.
    assert_eq!(
        raw.call("EXEC\r\n"),
        "*5\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+PONG\r\n$2\r\nhi\r\n$1\r\nx\r\n"
    );
}

#[test]
fn a_refused_command_while_queueing_aborts_the_exec() {
    let server = Server::start();
    let mut con = server.connect();
    run::<String>(&mut con, &["MULTI"]);
    run::<String>(&mut con, &["SET", "k", "v"]);
    assert_eq!(
        run_err(&mut con, &["NOSUCH", "x"]),
        "ERR unknown command 'NOSUCH', with args beginning with: 'x' "
    );
    assert_eq!(
        run_err(&mut con, &["GET"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        run_err(&mut con, &["EXEC"]),
        "EXECABORT Transaction discarded because of previous errors."
    );
    assert_eq!(
        run::<Option<String>>(&mut con, &["GET", "k"]),
        None,
        "nothing ran"
    );
}

#[test]
fn nesting_and_misplaced_commands_get_redis_errors() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run_err(&mut con, &["EXEC"]), "ERR EXEC without MULTI");
    assert_eq!(run_err(&mut con, &["DISCARD"]), "ERR DISCARD without MULTI");
    run::<String>(&mut con, &["MULTI"]);
    assert_eq!(
        run_err(&mut con, &["MULTI"]),
        "ERR MULTI calls can not be nested"
    );
    assert_eq!(
        run_err(&mut con, &["WATCH", "k"]),
        "ERR WATCH inside MULTI is not allowed"
    );
    run::<String>(&mut con, &["SET", "k", "v"]);
    assert_eq!(
        run::<Vec<String>>(&mut con, &["EXEC"]),
        vec!["OK"],
        "neither error dooms it"
    );
}

#[test]
fn discard_drops_the_queue() {
    let server = Server::start();
    let mut con = server.connect();
    run::<String>(&mut con, &["MULTI"]);
    run::<String>(&mut con, &["SET", "k", "v"]);
    assert_eq!(run::<String>(&mut con, &["DISCARD"]), "OK");
    assert_eq!(run::<Option<String>>(&mut con, &["GET", "k"]), None);
    assert_eq!(run_err(&mut con, &["EXEC"]), "ERR EXEC without MULTI");
}

#[test]
fn a_watched_key_changed_by_another_client_fails_the_exec() {
    let server = Server::start();
    let mut con = server.connect();
    let mut other = server.connect();
    run::<String>(&mut con, &["SET", "balance", "10"]);
    run::<String>(&mut con, &["WATCH", "balance"]);
    run::<String>(&mut other, &["SET", "balance", "20"]);
    run::<String>(&mut con, &["MULTI"]);
    run::<String>(&mut con, &["SET", "balance", "0"]);
    let reply: Value = redis::cmd("EXEC").query(&mut con).unwrap();
    assert_eq!(reply, Value::Nil, "null array");
    assert_eq!(run::<String>(&mut con, &["GET", "balance"]), "20");
}

#[test]
fn an_unchanged_watched_key_lets_the_exec_run() {
    let server = Server::start();
    let mut con = server.connect();
    let mut other = server.connect();
    run::<String>(&mut con, &["SET", "k", "1"]);
    run::<String>(&mut con, &["WATCH", "k", "missing"]);
    run::<String>(&mut other, &["SET", "unrelated", "1"]);
    run::<String>(&mut other, &["GET", "k"]);
    run::<String>(&mut con, &["MULTI"]);
    run::<String>(&mut con, &["INCR", "k"]);
    assert_eq!(run::<Vec<i64>>(&mut con, &["EXEC"]), vec![2]);
}

#[test]
fn watch_sees_deletion_recreation_and_expiry() {
    let server = Server::start();
    let mut con = server.connect();
    let mut other = server.connect();
    let exec_after = |con: &mut redis::Connection,
                      other: &mut redis::Connection,
                      key: &str,
                      change: &[&[&str]]| {
        run::<String>(con, &["WATCH", key]);
        for c in change {
            run::<Value>(other, c);
        }
        run::<String>(con, &["MULTI"]);
        run::<String>(con, &["SET", "probe", "1"]);
        redis::cmd("EXEC").query::<Value>(con).unwrap()
    };
    run::<String>(&mut con, &["SET", "k", "1"]);
    let reply = exec_after(
        &mut con,
        &mut other,
        "k",
        &[&["DEL", "k"], &["SET", "k", "1"]],
    );
    assert_eq!(
        reply,
        Value::Nil,
        "deleted and recreated with the same value"
    );
    let reply = exec_after(
        &mut con,
        &mut other,
        "fresh",
        &[&["SET", "fresh", "1"], &["DEL", "fresh"]],
    );
    assert_eq!(reply, Value::Nil, "created and deleted while watched");
    run::<String>(&mut con, &["SET", "short", "1", "PX", "100"]);
    run::<String>(&mut con, &["WATCH", "short"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    run::<String>(&mut con, &["MULTI"]);
    run::<String>(&mut con, &["SET", "probe", "1"]);
    assert_eq!(
        redis::cmd("EXEC").query::<Value>(&mut con).unwrap(),
        Value::Nil,
        "expired"
    );
}

#[test]
fn unwatch_and_exec_forget_the_watched_keys() {
    let server = Server::start();
    let mut con = server.connect();
    let mut other = server.connect();
    run::<String>(&mut con, &["WATCH", "k"]);
    run::<String>(&mut other, &["SET", "k", "1"]);
    run::<String>(&mut con, &["UNWATCH"]);
    run::<String>(&mut con, &["MULTI"]);
    run::<String>(&mut con, &["GET", "k"]);
    assert_eq!(run::<Vec<String>>(&mut con, &["EXEC"]), vec!["1"]);
    run::<String>(&mut con, &["WATCH", "k"]);
    run::<String>(&mut other, &["SET", "k", "2"]);
    run::<String>(&mut con, &["MULTI"]);
    assert_eq!(
        redis::cmd("EXEC").query::<Value>(&mut con).unwrap(),
        Value::Nil
    );
    run::<String>(&mut other, &["SET", "k", "3"]);
    run::<String>(&mut con, &["MULTI"]);
    run::<String>(&mut con, &["GET", "k"]);
    assert_eq!(
        run::<Vec<String>>(&mut con, &["EXEC"]),
        vec!["3"],
        "the failed EXEC unwatched"
    );
}

#[test]
fn blocking_commands_inside_multi_do_not_block() {
    let server = Server::start();
    let mut con = server.connect();
    let mut holder = server.connect();
    run::<i64>(&mut holder, &["LOCK", "r", "a", "10000"]);
    run::<String>(&mut con, &["MULTI"]);
    run::<String>(&mut con, &["LOCK", "r", "b", "10000", "WAIT", "0"]);
    run::<String>(&mut con, &["BLPOP", "empty", "0"]);
    run::<String>(&mut con, &["SET", "after", "1"]);
    let reply: Value = redis::cmd("EXEC").query(&mut con).unwrap();
    assert_eq!(
        reply,
        Value::Array(vec![Value::Nil, Value::Nil, Value::Okay])
    );
}

#[test]
fn a_watched_transaction_increments_exactly_under_contention() {
    let server = Server::start();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let mut con = server.connect();
            std::thread::spawn(move || {
                let mut done = 0;
                while done < 25 {
                    run::<String>(&mut con, &["WATCH", "counter"]);
                    let n: i64 = run::<Option<i64>>(&mut con, &["GET", "counter"]).unwrap_or(0);
                    run::<String>(&mut con, &["MULTI"]);
                    run::<String>(&mut con, &["SET", "counter", &(n + 1).to_string()]);
                    if redis::cmd("EXEC").query::<Value>(&mut con).unwrap() != Value::Nil {
                        done += 1;
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut con = server.connect();
    assert_eq!(run::<i64>(&mut con, &["GET", "counter"]), 100);
}

#[test]
fn wait_and_waitaof_answer_at_once_on_a_single_node() {
    let server = Server::start();
    let mut con = server.connect();
    run::<String>(&mut con, &["SET", "k", "v"]);
    assert_eq!(run::<i64>(&mut con, &["WAIT", "1", "0"]), 0);
    assert_eq!(
        run::<Vec<i64>>(&mut con, &["WAITAOF", "1", "0", "100"]),
        vec![1, 0]
    );
    assert_eq!(
        run_err(&mut con, &["WAIT", "1", "-1"]),
        "ERR timeout is negative"
    );
    assert_eq!(
        run_err(&mut con, &["WAIT", "x", "0"]),
        "ERR value is not an integer or out of range"
    );
    let info: String = run(&mut con, &["INFO", "replication"]);
    assert!(
        info.contains("role:master") && info.contains("connected_slaves:0"),
        "{info}"
    );
    let info: String = run(&mut con, &["INFO", "persistence"]);
    assert!(info.contains("aof_enabled:1"), "{info}");
}

#[test]
fn transactions_survive_a_restart() {
    let mut server = Server::start();
    let mut con = server.connect();
    run::<String>(&mut con, &["MULTI"]);
    run::<String>(&mut con, &["SET", "a", "1"]);
    run::<String>(&mut con, &["RPUSH", "l", "x", "y"]);
    run::<Value>(&mut con, &["EXEC"]);
    server.restart();
    let mut con = server.connect();
    assert_eq!(run::<String>(&mut con, &["GET", "a"]), "1");
    assert_eq!(
        run::<Vec<String>>(&mut con, &["LRANGE", "l", "0", "-1"]),
        vec!["x", "y"]
    );
    run::<String>(&mut con, &["WATCH", "a"]);
    run::<String>(&mut con, &["MULTI"]);
    run::<String>(&mut con, &["INCR", "a"]);
    assert_eq!(run::<Vec<i64>>(&mut con, &["EXEC"]), vec![2]);
}
