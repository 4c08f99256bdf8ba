//! Keyspace commands, expiry, and command-level errors, through the `redis` crate
//! against the real binary. Expected replies and error texts are Redis 7's.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{bulk, run, run_err, unix_ms, Server};
use redis::Value;

fn status(text: &str) -> Value {
    Value::SimpleString(text.to_string())
}

fn sorted_keys(con: &mut redis::Connection, pattern: &str) -> Vec<String> {
    let mut keys: Vec<String> = run(con, &["KEYS", pattern]);
    keys.sort();
    keys
}

/// Polls until DBSIZE reaches `want` (expired keys leave by a committed entry, a little
/// after their deadline), or 10 s pass; returns the last DBSIZE seen.
fn dbsize_eventually(con: &mut redis::Connection, want: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let size: i64 = run(con, &["DBSIZE"]);
        if size == want || Instant::now() > deadline {
            return size;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn del_and_unlink_count_the_keys_they_removed() {
    let server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["MSET", "a", "1", "b", "2", "c", "3", "d", "4"]);
    assert_eq!(
        run::<Value>(&mut con, &["DEL", "a", "missing", "b", "a"]),
        Value::Int(2)
    );
    assert_eq!(run::<Value>(&mut con, &["DEL", "a"]), Value::Int(0));
    assert_eq!(
        run::<Value>(&mut con, &["UNLINK", "c", "missing"]),
        Value::Int(1)
    );
    assert_eq!(run::<Value>(&mut con, &["UNLINK", "c"]), Value::Int(0));
    assert_eq!(
        run::<Value>(&mut con, &["MGET", "a", "b", "c", "d"]),
        Value::Array(vec![Value::Nil, Value::Nil, Value::Nil, bulk("4")])
    );
    assert_eq!(
        run_err(&mut con, &["DEL"]),
        "ERR wrong number of arguments for 'del' command"
    );
    assert_eq!(
        run_err(&mut con, &["UNLINK"]),
        "ERR wrong number of arguments for 'unlink' command"
    );
}

#[test]
fn exists_counts_every_argument_that_exists() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["EXISTS", "a"]), Value::Int(0));
    run::<()>(&mut con, &["MSET", "a", "1", "b", "2"]);
    assert_eq!(run::<Value>(&mut con, &["EXISTS", "a"]), Value::Int(1));
    assert_eq!(
        run::<Value>(&mut con, &["EXISTS", "a", "a", "b", "x"]),
        Value::Int(3)
    );
    assert_eq!(
        run_err(&mut con, &["EXISTS"]),
        "ERR wrong number of arguments for 'exists' command"
    );
}

#[test]
fn type_is_string_for_a_value_and_none_for_a_missing_key() {
    let server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "s", "v"]);
    run::<()>(&mut con, &["INCR", "n"]);
    assert_eq!(run::<Value>(&mut con, &["TYPE", "s"]), status("string"));
    assert_eq!(run::<Value>(&mut con, &["TYPE", "n"]), status("string"));
    assert_eq!(run::<Value>(&mut con, &["TYPE", "missing"]), status("none"));
}

#[test]
fn ttl_family_reports_missing_persistent_and_expiring_keys() {
    let server = Server::start();
    let mut con = server.connect();
    for command in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_eq!(
            run::<Value>(&mut con, &[command, "missing"]),
            Value::Int(-2)
        );
    }
    run::<()>(&mut con, &["SET", "k", "v"]);
    for command in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_eq!(run::<Value>(&mut con, &[command, "k"]), Value::Int(-1));
    }

    assert_eq!(
        run::<Value>(&mut con, &["EXPIRE", "k", "100"]),
        Value::Int(1)
    );
    let ttl: i64 = run(&mut con, &["TTL", "k"]);
    assert!((90..=100).contains(&ttl), "TTL after EXPIRE 100: {ttl}");
    let expiretime: i64 = run(&mut con, &["EXPIRETIME", "k"]);
    let now_s = unix_ms() / 1000;
    assert!(
        (now_s + 90..=now_s + 101).contains(&expiretime),
        "EXPIRETIME {expiretime} is not about now ({now_s}) + 100"
    );

    assert_eq!(
        run::<Value>(&mut con, &["PEXPIRE", "k", "200000"]),
        Value::Int(1)
    );
    let pttl: i64 = run(&mut con, &["PTTL", "k"]);
    assert!(
        (190_000..=200_000).contains(&pttl),
        "PTTL after PEXPIRE: {pttl}"
    );
    let pexpiretime: i64 = run(&mut con, &["PEXPIRETIME", "k"]);
    let now_ms = unix_ms();
    assert!(
        (now_ms + 190_000..=now_ms + 200_000).contains(&pexpiretime),
        "PEXPIRETIME {pexpiretime} is not about now ({now_ms}) + 200000"
    );

    let at_s = unix_ms() / 1000 + 1000;
    assert_eq!(
        run::<Value>(&mut con, &["EXPIREAT", "k", &at_s.to_string()]),
        Value::Int(1)
    );
    assert_eq!(run::<i64>(&mut con, &["EXPIRETIME", "k"]), at_s);
    assert_eq!(run::<i64>(&mut con, &["PEXPIRETIME", "k"]), at_s * 1000);

    let at_ms = unix_ms() + 2_000_123;
    assert_eq!(
        run::<Value>(&mut con, &["PEXPIREAT", "k", &at_ms.to_string()]),
        Value::Int(1)
    );
    assert_eq!(run::<i64>(&mut con, &["PEXPIRETIME", "k"]), at_ms);
    // Redis rounds a deadline to the nearest second.
    assert_eq!(
        run::<i64>(&mut con, &["EXPIRETIME", "k"]),
        (at_ms + 500) / 1000
    );
    let at_ms = at_ms - at_ms % 1000 + 499;
    run::<()>(&mut con, &["PEXPIREAT", "k", &at_ms.to_string()]);
    assert_eq!(run::<i64>(&mut con, &["EXPIRETIME", "k"]), at_ms / 1000);
    run::<()>(&mut con, &["PEXPIREAT", "k", &(at_ms + 1).to_string()]);
    assert_eq!(run::<i64>(&mut con, &["EXPIRETIME", "k"]), at_ms / 1000 + 1);

    // On a missing key every form answers 0 and creates nothing.
    for args in [
        ["EXPIRE", "missing", "100"],
        ["PEXPIRE", "missing", "100"],
        ["EXPIREAT", "missing", "99999999999"],
        ["PEXPIREAT", "missing", "99999999999999"],
    ] {
        assert_eq!(
            run::<Value>(&mut con, &args),
            Value::Int(0),
            "{}",
            args.join(" ")
        );
    }
    assert_eq!(run::<i64>(&mut con, &["EXISTS", "missing"]), 0);
}

#[test]
fn expire_options_nx_xx_gt_lt_decide_whether_the_deadline_changes() {
    let server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "k", "v"]);

    // No deadline yet: XX and GT refuse (no deadline counts as infinite), NX and LT set.
    assert_eq!(
        run::<Value>(&mut con, &["EXPIRE", "k", "100", "XX"]),
        Value::Int(0)
    );
    assert_eq!(
        run::<Value>(&mut con, &["EXPIRE", "k", "100", "GT"]),
        Value::Int(0)
    );
    assert_eq!(run::<i64>(&mut con, &["TTL", "k"]), -1);
    assert_eq!(
        run::<Value>(&mut con, &["EXPIRE", "k", "100", "NX"]),
        Value::Int(1)
    );
    assert_eq!(
        run::<Value>(&mut con, &["EXPIRE", "k", "500", "NX"]),
        Value::Int(0)
    );
    let ttl: i64 = run(&mut con, &["TTL", "k"]);
    assert!(
        (90..=100).contains(&ttl),
        "NX must not have changed the TTL: {ttl}"
    );

    assert_eq!(
        run::<Value>(&mut con, &["EXPIRE", "k", "200", "XX"]),
        Value::Int(1)
    );
    assert_eq!(
        run::<Value>(&mut con, &["EXPIRE", "k", "150", "GT"]),
        Value::Int(0)
    );
    assert_eq!(
        run::<Value>(&mut con, &["EXPIRE", "k", "300", "GT"]),
        Value::Int(1)
    );
    let ttl: i64 = run(&mut con, &["TTL", "k"]);
    assert!((290..=300).contains(&ttl), "TTL after GT 300: {ttl}");
    assert_eq!(
        run::<Value>(&mut con, &["EXPIRE", "k", "400", "LT"]),
        Value::Int(0)
    );
    assert_eq!(
        run::<Value>(&mut con, &["PEXPIRE", "k", "250000", "lt"]),
        Value::Int(1)
    );
    let pttl: i64 = run(&mut con, &["PTTL", "k"]);
    assert!((240_000..=250_000).contains(&pttl), "PTTL after LT: {pttl}");

    // LT on a key without deadline sets one.
    run::<()>(&mut con, &["SET", "p", "v"]);
    assert_eq!(
        run::<Value>(&mut con, &["PEXPIRE", "p", "100000", "LT"]),
        Value::Int(1)
    );
    assert!(run::<i64>(&mut con, &["PTTL", "p"]) > 0);

    // The absolute forms take the same options.
    let later = (unix_ms() / 1000 + 10_000).to_string();
    let sooner_ms = (unix_ms() + 50_000).to_string();
    assert_eq!(
        run::<Value>(&mut con, &["EXPIREAT", "p", &later, "NX"]),
        Value::Int(0)
    );
    assert_eq!(
        run::<Value>(&mut con, &["EXPIREAT", "p", &later, "GT"]),
        Value::Int(1)
    );
    assert_eq!(
        run::<Value>(&mut con, &["PEXPIREAT", "p", &sooner_ms, "XX", "LT"]),
        Value::Int(1)
    );
    assert_eq!(run::<String>(&mut con, &["PEXPIRETIME", "p"]), sooner_ms);
    // Options on a missing key: still 0.
    assert_eq!(
        run::<Value>(&mut con, &["EXPIRE", "none", "10", "NX"]),
        Value::Int(0)
    );
}

#[test]
fn expire_rejects_bad_options_and_times() {
    let server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "k", "v"]);
    let nx_xx = "ERR NX and XX, GT or LT options at the same time are not compatible";
    assert_eq!(run_err(&mut con, &["EXPIRE", "k", "10", "NX", "XX"]), nx_xx);
    assert_eq!(
        run_err(&mut con, &["PEXPIRE", "k", "10", "NX", "GT"]),
        nx_xx
    );
    assert_eq!(
        run_err(&mut con, &["EXPIREAT", "k", "99999999999", "LT", "NX"]),
        nx_xx
    );
    assert_eq!(
        run_err(&mut con, &["EXPIRE", "k", "10", "GT", "LT"]),
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(
        run_err(&mut con, &["EXPIRE", "k", "10", "FOO"]),
        "ERR Unsupported option FOO"
    );
    let not_integer = "ERR value is not an integer or out of range";
    assert_eq!(run_err(&mut con, &["EXPIRE", "k", "abc"]), not_integer);
    assert_eq!(run_err(&mut con, &["PEXPIRE", "k", "1.5"]), not_integer);
    assert_eq!(run_err(&mut con, &["EXPIREAT", "k", ""]), not_integer);
    for (command, value) in [
        ("EXPIRE", "9223372036854775807"),
        ("PEXPIRE", "9223372036854775807"),
        ("EXPIREAT", "9223372036854775807"),
    ] {
        assert_eq!(
            run_err(&mut con, &[command, "k", value]),
            format!(
                "ERR invalid expire time in '{}' command",
                command.to_lowercase()
            )
        );
    }
    assert_eq!(
        run_err(&mut con, &["EXPIRE", "k"]),
        "ERR wrong number of arguments for 'expire' command"
    );
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("v"));
    assert_eq!(run::<i64>(&mut con, &["TTL", "k"]), -1);
}

#[test]
fn expire_with_a_deadline_in_the_past_deletes_the_key() {
    let server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["MSET", "a", "1", "b", "2", "c", "3", "d", "4"]);
    assert_eq!(run::<Value>(&mut con, &["EXPIRE", "a", "0"]), Value::Int(1));
    assert_eq!(
        run::<Value>(&mut con, &["PEXPIRE", "b", "-100"]),
        Value::Int(1)
    );
    let past = (unix_ms() / 1000 - 10).to_string();
    assert_eq!(
        run::<Value>(&mut con, &["EXPIREAT", "c", &past]),
        Value::Int(1)
    );
    assert_eq!(
        run::<Value>(&mut con, &["PEXPIREAT", "d", "1"]),
        Value::Int(1)
    );
    assert_eq!(
        run::<Value>(&mut con, &["EXISTS", "a", "b", "c", "d"]),
        Value::Int(0)
    );
    assert_eq!(run::<i64>(&mut con, &["DBSIZE"]), 0);
}

#[test]
fn persist_removes_a_deadline() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        run::<Value>(&mut con, &["PERSIST", "missing"]),
        Value::Int(0)
    );
    run::<()>(&mut con, &["SET", "k", "v"]);
    assert_eq!(run::<Value>(&mut con, &["PERSIST", "k"]), Value::Int(0));
    run::<()>(&mut con, &["PEXPIRE", "k", "300"]);
    assert_eq!(run::<Value>(&mut con, &["PERSIST", "k"]), Value::Int(1));
    assert_eq!(run::<i64>(&mut con, &["TTL", "k"]), -1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("v"));
}

#[test]
fn keys_matches_glob_patterns() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(sorted_keys(&mut con, "*"), Vec::<String>::new());
    for key in [
        "hello", "hallo", "hxllo", "hllo", "heeeello", "a*b", "axb", "user:1", "user:22",
    ] {
        run::<()>(&mut con, &["SET", key, "v"]);
    }
    let cases: &[(&str, &[&str])] = &[
        ("h?llo", &["hallo", "hello", "hxllo"]),
        ("h*llo", &["hallo", "heeeello", "hello", "hllo", "hxllo"]),
        ("h[ae]llo", &["hallo", "hello"]),
        ("h[^e]llo", &["hallo", "hxllo"]),
        ("h[a-b]llo", &["hallo"]),
        ("a\\*b", &["a*b"]),
        ("user:?", &["user:1"]),
        ("user:*", &["user:1", "user:22"]),
        ("hello", &["hello"]),
        ("nomatch*", &[]),
    ];
    for (pattern, want) in cases {
        assert_eq!(sorted_keys(&mut con, pattern), *want, "KEYS {pattern}");
    }
    assert_eq!(sorted_keys(&mut con, "*").len(), 9);
}

/// Runs a full SCAN with the given options; returns every key seen, in order seen.
fn scan_all(con: &mut redis::Connection, options: &[&str]) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    for _ in 0..100_000 {
        let mut args = vec!["SCAN", cursor.as_str()];
        args.extend_from_slice(options);
        let reply: Value = run(con, &args);
        let Value::Array(parts) = reply else {
            panic!("SCAN reply is not an array: {reply:?}");
        };
        assert_eq!(parts.len(), 2, "SCAN reply is [cursor, keys]: {parts:?}");
        let Value::BulkString(next) = &parts[0] else {
            panic!("SCAN cursor must be a bulk string: {:?}", parts[0]);
        };
        let Value::Array(keys) = &parts[1] else {
            panic!("SCAN keys must be an array: {:?}", parts[1]);
        };
        seen.extend(keys.iter().map(common::value_text));
        cursor = String::from_utf8(next.clone()).expect("cursor is text");
        if cursor == "0" {
            return seen;
        }
    }
    panic!("SCAN did not finish");
}

#[test]
fn scan_returns_every_key_once_and_honours_match_count_and_type() {
    let server = Server::start();
    let mut con = server.connect();
    assert!(scan_all(&mut con, &[]).is_empty());
    let mut all = BTreeSet::new();
    let mut pipe = redis::pipe();
    for i in 0..300 {
        let key = if i % 3 == 0 {
            format!("even:{i}")
        } else {
            format!("odd:{i}")
        };
        pipe.cmd("SET").arg(&key).arg(i).ignore();
        all.insert(key);
    }
    pipe.query::<()>(&mut con).unwrap();

    for options in [&[][..], &["COUNT", "7"][..], &["COUNT", "1000"][..]] {
        let seen = scan_all(&mut con, options);
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "SCAN {options:?} returned a key twice"
        );
        assert_eq!(unique, all, "SCAN {options:?}");
    }

    let want: BTreeSet<String> = all
        .iter()
        .filter(|k| k.starts_with("even:"))
        .cloned()
        .collect();
    let seen = scan_all(&mut con, &["MATCH", "even:*", "COUNT", "10"]);
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(seen.len(), want.len());

    let seen = scan_all(&mut con, &["TYPE", "string", "COUNT", "50"]);
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), all);
    assert!(scan_all(&mut con, &["TYPE", "list"]).is_empty());
    assert!(scan_all(&mut con, &["MATCH", "nothing*", "TYPE", "string"]).is_empty());

    assert_eq!(run_err(&mut con, &["SCAN", "abc"]), "ERR invalid cursor");
    assert_eq!(
        run_err(&mut con, &["SCAN", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        run_err(&mut con, &["SCAN", "0", "MATCH"]),
        "ERR syntax error"
    );
    assert_eq!(
        run_err(&mut con, &["SCAN", "0", "FOO", "1"]),
        "ERR syntax error"
    );
    assert_eq!(
        run_err(&mut con, &["SCAN", "0", "COUNT", "x"]),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn rename_moves_value_and_deadline() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        run_err(&mut con, &["RENAME", "missing", "x"]),
        "ERR no such key"
    );
    run::<()>(&mut con, &["SET", "a", "1", "EX", "100"]);
    assert_eq!(run::<Value>(&mut con, &["RENAME", "a", "b"]), Value::Okay);
    assert_eq!(run::<i64>(&mut con, &["EXISTS", "a"]), 0);
    assert_eq!(run::<Value>(&mut con, &["GET", "b"]), bulk("1"));
    let ttl: i64 = run(&mut con, &["TTL", "b"]);
    assert!(
        (90..=100).contains(&ttl),
        "deadline moves with the value: {ttl}"
    );
    // Onto an existing key: replaces its value and its deadline.
    run::<()>(&mut con, &["SET", "c", "2"]);
    assert_eq!(run::<Value>(&mut con, &["RENAME", "c", "b"]), Value::Okay);
    assert_eq!(run::<Value>(&mut con, &["GET", "b"]), bulk("2"));
    assert_eq!(run::<i64>(&mut con, &["TTL", "b"]), -1);
    // Onto itself: OK, nothing changes.
    assert_eq!(run::<Value>(&mut con, &["RENAME", "b", "b"]), Value::Okay);
    assert_eq!(run::<Value>(&mut con, &["GET", "b"]), bulk("2"));
    assert_eq!(run::<i64>(&mut con, &["DBSIZE"]), 1);
    // An expired source counts as missing.
    run::<()>(&mut con, &["SET", "e", "v", "PX", "50"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(run_err(&mut con, &["RENAME", "e", "f"]), "ERR no such key");
}

#[test]
fn expired_keys_are_invisible_to_every_read() {
    let server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "stay", "v"]);
    run::<()>(&mut con, &["SET", "go", "v", "PX", "150"]);
    run::<()>(&mut con, &["SET", "go2", "v"]);
    run::<()>(&mut con, &["PEXPIRE", "go2", "150"]);
    std::thread::sleep(Duration::from_millis(400));
    for key in ["go", "go2"] {
        assert_eq!(run::<Value>(&mut con, &["GET", key]), Value::Nil);
        assert_eq!(run::<i64>(&mut con, &["EXISTS", key]), 0);
        assert_eq!(run::<Value>(&mut con, &["TYPE", key]), status("none"));
        assert_eq!(run::<i64>(&mut con, &["TTL", key]), -2);
        assert_eq!(run::<i64>(&mut con, &["STRLEN", key]), 0);
        assert_eq!(run::<i64>(&mut con, &["PERSIST", key]), 0);
    }
    assert_eq!(sorted_keys(&mut con, "*"), vec!["stay".to_string()]);
    assert_eq!(scan_all(&mut con, &[]), vec!["stay".to_string()]);
    assert_eq!(
        run::<Value>(&mut con, &["MGET", "go", "stay", "go2"]),
        Value::Array(vec![Value::Nil, bulk("v"), Value::Nil])
    );
    assert_eq!(dbsize_eventually(&mut con, 1), 1);
    // An expired counter starts again from zero.
    run::<()>(&mut con, &["SET", "n", "41", "PX", "50"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(run::<i64>(&mut con, &["INCR", "n"]), 1);
    assert_eq!(run::<i64>(&mut con, &["TTL", "n"]), -1);
}

#[test]
fn dbsize_flushall_and_flushdb() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["DBSIZE"]), Value::Int(0));
    run::<()>(&mut con, &["MSET", "a", "1", "b", "2", "c", "3"]);
    run::<()>(&mut con, &["SET", "d", "4", "EX", "100"]);
    assert_eq!(run::<Value>(&mut con, &["DBSIZE"]), Value::Int(4));
    assert_eq!(run::<Value>(&mut con, &["FLUSHALL"]), Value::Okay);
    assert_eq!(run::<Value>(&mut con, &["DBSIZE"]), Value::Int(0));
    assert_eq!(run::<Value>(&mut con, &["GET", "a"]), Value::Nil);
    assert_eq!(run::<Value>(&mut con, &["TTL", "d"]), Value::Int(-2));

    run::<()>(&mut con, &["MSET", "a", "1", "b", "2"]);
    assert_eq!(run::<Value>(&mut con, &["FLUSHDB"]), Value::Okay);
    assert_eq!(run::<Value>(&mut con, &["DBSIZE"]), Value::Int(0));
    for args in [
        ["FLUSHALL", "SYNC"],
        ["FLUSHALL", "ASYNC"],
        ["FLUSHDB", "sync"],
        ["FLUSHDB", "async"],
    ] {
        run::<()>(&mut con, &["SET", "x", "1"]);
        assert_eq!(
            run::<Value>(&mut con, &args),
            Value::Okay,
            "{}",
            args.join(" ")
        );
        assert_eq!(run::<i64>(&mut con, &["DBSIZE"]), 0, "{}", args.join(" "));
    }
    assert_eq!(run_err(&mut con, &["FLUSHALL", "FOO"]), "ERR syntax error");
    // The keyspace works as before after a flush.
    run::<()>(&mut con, &["SET", "after", "v"]);
    assert_eq!(run::<Value>(&mut con, &["GET", "after"]), bulk("v"));
    assert_eq!(run::<i64>(&mut con, &["DBSIZE"]), 1);
}

#[test]
fn wrong_arity_names_the_command_in_lowercase() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        run_err(&mut con, &["GET"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        run_err(&mut con, &["GeT", "a", "b"]),
        "ERR wrong number of arguments for 'get' command"
    );
    for (args, name) in [
        (&["TTL"][..], "ttl"),
        (&["PTTL", "a", "b"][..], "pttl"),
        (&["TYPE"][..], "type"),
        (&["PERSIST"][..], "persist"),
        (&["EXPIRETIME"][..], "expiretime"),
        (&["PEXPIRETIME"][..], "pexpiretime"),
        (&["PEXPIRE", "k"][..], "pexpire"),
        (&["EXPIREAT", "k"][..], "expireat"),
        (&["PEXPIREAT", "k"][..], "pexpireat"),
        (&["KEYS"][..], "keys"),
        (&["SCAN"][..], "scan"),
        (&["RENAME", "a"][..], "rename"),
        (&["DBSIZE", "x"][..], "dbsize"),
    ] {
        assert_eq!(
            run_err(&mut con, args),
            format!("ERR wrong number of arguments for '{name}' command"),
            "{}",
            args.join(" ")
        );
    }
    // The connection is still good after errors.
    run::<()>(&mut con, &["SET", "k", "v"]);
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("v"));
}

#[test]
fn unknown_command_quotes_its_name_and_first_arguments() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        run_err(&mut con, &["foo", "a"]),
        "ERR unknown command 'foo', with args beginning with: 'a' "
    );
    assert_eq!(
        run_err(&mut con, &["FooBar", "a", "b c"]),
        "ERR unknown command 'FooBar', with args beginning with: 'a' 'b c' "
    );
    assert_eq!(
        run_err(&mut con, &["foo"]),
        "ERR unknown command 'foo', with args beginning with: "
    );
    assert_eq!(run::<Value>(&mut con, &["PING"]), status("PONG"));
}

#[test]
fn command_names_are_case_insensitive() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["set", "k", "v"]), Value::Okay);
    assert_eq!(
        run::<Value>(&mut con, &["sEt", "k", "w", "xx"]),
        Value::Okay
    );
    assert_eq!(run::<Value>(&mut con, &["get", "k"]), bulk("w"));
    assert_eq!(run::<Value>(&mut con, &["GeT", "k"]), bulk("w"));
    assert_eq!(run::<Value>(&mut con, &["incr", "n"]), Value::Int(1));
    assert_eq!(run::<Value>(&mut con, &["Exists", "k", "n"]), Value::Int(2));
    assert_eq!(run::<Value>(&mut con, &["dbsize"]), Value::Int(2));
    // Keys are not: `K` is another key.
    assert_eq!(run::<Value>(&mut con, &["GET", "K"]), Value::Nil);
}

#[test]
fn writes_treat_an_expired_key_as_missing() {
    let server = Server::start();
    let mut con = server.connect();
    let keys = [
        "setnx", "append", "msetnx", "xx", "get", "getset", "getdel", "expire", "persist", "rename",
    ];
    for key in keys {
        run::<()>(&mut con, &["SET", key, "old", "PX", "100"]);
    }
    run::<()>(&mut con, &["SET", "source", "moved"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        run::<Value>(&mut con, &["SETNX", "setnx", "new"]),
        Value::Int(1)
    );
    assert_eq!(
        run::<Value>(&mut con, &["APPEND", "append", "new"]),
        Value::Int(3)
    );
    assert_eq!(
        run::<Value>(&mut con, &["MSETNX", "msetnx", "new"]),
        Value::Int(1)
    );
    assert_eq!(
        run::<Value>(&mut con, &["SET", "xx", "new", "XX"]),
        Value::Nil
    );
    assert_eq!(
        run::<Value>(&mut con, &["SET", "get", "new", "GET"]),
        Value::Nil
    );
    assert_eq!(
        run::<Value>(&mut con, &["GETSET", "getset", "new"]),
        Value::Nil
    );
    assert_eq!(run::<Value>(&mut con, &["GETDEL", "getdel"]), Value::Nil);
    assert_eq!(
        run::<Value>(&mut con, &["EXPIRE", "expire", "100"]),
        Value::Int(0)
    );
    assert_eq!(
        run::<Value>(&mut con, &["PERSIST", "persist"]),
        Value::Int(0)
    );
    assert_eq!(
        run::<Value>(&mut con, &["RENAME", "source", "rename"]),
        Value::Okay
    );
    assert_eq!(
        run::<Value>(
            &mut con,
            &["MGET", "setnx", "append", "msetnx", "get", "getset", "rename"]
        ),
        Value::Array(
            ["new", "new", "new", "new", "new", "moved"]
                .map(bulk)
                .to_vec()
        )
    );
    for key in ["setnx", "append", "msetnx", "get", "getset", "rename"] {
        assert_eq!(
            run::<i64>(&mut con, &["TTL", key]),
            -1,
            "{key} has no deadline"
        );
    }
    assert_eq!(
        run::<i64>(&mut con, &["EXISTS", "xx", "getdel", "expire", "persist"]),
        0
    );
    assert_eq!(dbsize_eventually(&mut con, 6), 6);
}

#[test]
fn scan_returns_every_key_that_exists_throughout_despite_concurrent_writes() {
    let server = Server::start();
    let mut con = server.connect();
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.cmd("SET").arg(format!("stable:{i}")).arg(i).ignore();
    }
    pipe.query::<()>(&mut con).unwrap();
    let mut churn = server.connect();
    let mut cursor = "0".to_string();
    let mut seen = BTreeSet::new();
    for round in 0..10_000 {
        // Between SCAN calls other keys come and go.
        run::<()>(&mut churn, &["SET", &format!("churn:{round}"), "x"]);
        if round >= 3 {
            run::<()>(&mut churn, &["DEL", &format!("churn:{}", round - 3)]);
        }
        let (next, keys): (String, Vec<String>) = run(&mut con, &["SCAN", &cursor, "COUNT", "20"]);
        seen.extend(keys.into_iter().filter(|k| k.starts_with("stable:")));
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(cursor, "0", "SCAN did not finish");
    let want: BTreeSet<String> = (0..500).map(|i| format!("stable:{i}")).collect();
    let missing: Vec<&String> = want.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "SCAN missed keys present throughout: {missing:?}"
    );
}
