//! String commands and FENCE, through the `redis` crate against the real binary.
//! Expected replies and error texts are Redis 7's.

mod common;

use std::time::Duration;

use common::{bulk, run, run_err, unix_ms, Server};
use redis::Value;

const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

fn ttl_ms(con: &mut redis::Connection, key: &str) -> i64 {
    run(con, &["PTTL", key])
}

#[test]
fn get_returns_nil_for_a_missing_key_and_the_value_set() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), Value::Nil);
    assert_eq!(run::<Value>(&mut con, &["SET", "k", "v1"]), Value::Okay);
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("v1"));
    assert_eq!(run::<Value>(&mut con, &["SET", "k", "v2"]), Value::Okay);
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("v2"));

    // Values are binary-safe: empty, NUL, CR LF, non-UTF-8, and large.
    let odd: Vec<u8> = vec![0, b'\r', b'\n', 0xff, 0xfe, b'$', b'*', 0];
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    for value in [Vec::new(), odd, big] {
        let ok: Value = redis::cmd("SET")
            .arg("bin")
            .arg(&value)
            .query(&mut con)
            .unwrap();
        assert_eq!(ok, Value::Okay);
        let got: Value = redis::cmd("GET").arg("bin").query(&mut con).unwrap();
        assert_eq!(got, Value::BulkString(value.clone()));
        assert_eq!(run::<i64>(&mut con, &["STRLEN", "bin"]), value.len() as i64);
    }
    // Binary keys too.
    let key = [b'k', 0, 0xff, b'\n'];
    let _: () = redis::cmd("SET")
        .arg(&key[..])
        .arg("x")
        .query(&mut con)
        .unwrap();
    let got: Value = redis::cmd("GET").arg(&key[..]).query(&mut con).unwrap();
    assert_eq!(got, bulk("x"));
}

#[test]
fn set_nx_and_xx_write_only_when_the_key_is_missing_or_present() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["SET", "k", "a", "XX"]), Value::Nil);
    assert_eq!(run::<Value>(&mut con, &["EXISTS", "k"]), Value::Int(0));
    assert_eq!(
        run::<Value>(&mut con, &["SET", "k", "a", "NX"]),
        Value::Okay
    );
    assert_eq!(run::<Value>(&mut con, &["SET", "k", "b", "NX"]), Value::Nil);
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("a"));
    assert_eq!(
        run::<Value>(&mut con, &["SET", "k", "c", "XX"]),
        Value::Okay
    );
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("c"));
}

#[test]
fn set_get_returns_the_previous_value() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        run::<Value>(&mut con, &["SET", "k", "a", "GET"]),
        Value::Nil
    );
    assert_eq!(run::<Value>(&mut con, &["SET", "k", "b", "GET"]), bulk("a"));
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("b"));
    // With NX the old value comes back and nothing is written.
    assert_eq!(
        run::<Value>(&mut con, &["SET", "k", "c", "NX", "GET"]),
        bulk("b")
    );
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("b"));
    // With XX on a missing key: nil and nothing written.
    assert_eq!(
        run::<Value>(&mut con, &["SET", "m", "c", "XX", "GET"]),
        Value::Nil
    );
    assert_eq!(run::<Value>(&mut con, &["EXISTS", "m"]), Value::Int(0));
    assert_eq!(
        run::<Value>(&mut con, &["SET", "k", "d", "XX", "GET"]),
        bulk("b")
    );
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("d"));
}

#[test]
fn set_expiry_options_set_the_deadline() {
    let server = Server::start();
    let mut con = server.connect();

    assert_eq!(
        run::<Value>(&mut con, &["SET", "ex", "v", "EX", "100"]),
        Value::Okay
    );
    let ttl: i64 = run(&mut con, &["TTL", "ex"]);
    assert!((90..=100).contains(&ttl), "TTL after EX 100: {ttl}");

    assert_eq!(
        run::<Value>(&mut con, &["SET", "px", "v", "PX", "100000"]),
        Value::Okay
    );
    let pttl = ttl_ms(&mut con, "px");
    assert!(
        (90_000..=100_000).contains(&pttl),
        "PTTL after PX 100000: {pttl}"
    );

    let at_s = unix_ms() / 1000 + 200;
    let at = at_s.to_string();
    assert_eq!(
        run::<Value>(&mut con, &["SET", "exat", "v", "EXAT", &at]),
        Value::Okay
    );
    assert_eq!(run::<i64>(&mut con, &["EXPIRETIME", "exat"]), at_s);

    let at_ms = unix_ms() + 300_000;
    let at = at_ms.to_string();
    assert_eq!(
        run::<Value>(&mut con, &["SET", "pxat", "v", "PXAT", &at]),
        Value::Okay
    );
    assert_eq!(run::<i64>(&mut con, &["PEXPIRETIME", "pxat"]), at_ms);

    // KEEPTTL keeps the deadline; a plain SET clears it.
    let before: i64 = run(&mut con, &["PEXPIRETIME", "pxat"]);
    assert_eq!(
        run::<Value>(&mut con, &["SET", "pxat", "w", "KEEPTTL"]),
        Value::Okay
    );
    assert_eq!(run::<Value>(&mut con, &["GET", "pxat"]), bulk("w"));
    assert_eq!(run::<i64>(&mut con, &["PEXPIRETIME", "pxat"]), before);
    assert_eq!(run::<Value>(&mut con, &["SET", "pxat", "x"]), Value::Okay);
    assert_eq!(run::<i64>(&mut con, &["TTL", "pxat"]), -1);
    // KEEPTTL on a missing key makes a key without a deadline.
    assert_eq!(
        run::<Value>(&mut con, &["SET", "fresh", "v", "KEEPTTL"]),
        Value::Okay
    );
    assert_eq!(run::<i64>(&mut con, &["TTL", "fresh"]), -1);
}

#[test]
fn set_options_are_accepted_in_any_order_and_case() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        run::<Value>(&mut con, &["SET", "k", "a", "px", "100000", "nx"]),
        Value::Okay
    );
    assert_eq!(
        run::<Value>(&mut con, &["SET", "k", "b", "Get", "Ex", "200", "xX"]),
        bulk("a")
    );
    let ttl: i64 = run(&mut con, &["TTL", "k"]);
    assert!((190..=200).contains(&ttl), "TTL after EX 200: {ttl}");
    assert_eq!(
        run::<Value>(&mut con, &["SET", "k", "c", "KEEPTTL", "XX", "GET"]),
        bulk("b")
    );
    let ttl: i64 = run(&mut con, &["TTL", "k"]);
    assert!((190..=200).contains(&ttl), "TTL kept: {ttl}");
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("c"));
}

#[test]
fn set_rejects_conflicting_or_unknown_options_with_syntax_error() {
    let server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "k", "orig"]);
    let bad: &[&[&str]] = &[
        &["SET", "k", "v", "NX", "XX"],
        &["SET", "k", "v", "EX", "10", "PX", "10000"],
        &["SET", "k", "v", "EX", "10", "EXAT", "99999999999"],
        &["SET", "k", "v", "PX", "10", "PXAT", "99999999999999"],
        &["SET", "k", "v", "KEEPTTL", "EX", "10"],
        &["SET", "k", "v", "PX", "10", "KEEPTTL"],
        &["SET", "k", "v", "EX"],
        &["SET", "k", "v", "FOO"],
        &["SET", "k", "v", "10"],
        &["GETEX", "k", "EX", "10", "PX", "10"],
        &["GETEX", "k", "PERSIST", "EX", "10"],
        &["GETEX", "k", "FOO"],
    ];
    for args in bad {
        assert_eq!(run_err(&mut con, args), SYNTAX, "{}", args.join(" "));
    }
    // Nothing was written by the rejected commands.
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("orig"));
    assert_eq!(run::<i64>(&mut con, &["TTL", "k"]), -1);
}

#[test]
fn set_rejects_bad_expire_times() {
    let server = Server::start();
    let mut con = server.connect();
    let invalid = "ERR invalid expire time in 'set' command";
    for args in [
        ["SET", "k", "v", "EX", "0"],
        ["SET", "k", "v", "EX", "-1"],
        ["SET", "k", "v", "PX", "0"],
        ["SET", "k", "v", "PX", "-100"],
        ["SET", "k", "v", "EXAT", "0"],
        ["SET", "k", "v", "PXAT", "-1"],
        ["SET", "k", "v", "EX", "9223372036854775807"],
    ] {
        assert_eq!(run_err(&mut con, &args), invalid, "{}", args.join(" "));
    }
    for args in [
        ["SET", "k", "v", "EX", "abc"],
        ["SET", "k", "v", "PX", "1.5"],
        ["SET", "k", "v", "EX", "99999999999999999999"],
    ] {
        assert_eq!(run_err(&mut con, &args), NOT_INTEGER, "{}", args.join(" "));
    }
    assert_eq!(run::<i64>(&mut con, &["EXISTS", "k"]), 0);
    assert_eq!(
        run_err(&mut con, &["SETEX", "k", "0", "v"]),
        "ERR invalid expire time in 'setex' command"
    );
    assert_eq!(
        run_err(&mut con, &["PSETEX", "k", "-5", "v"]),
        "ERR invalid expire time in 'psetex' command"
    );
    assert_eq!(run_err(&mut con, &["SETEX", "k", "x", "v"]), NOT_INTEGER);
    run::<()>(&mut con, &["SET", "k", "v"]);
    assert_eq!(
        run_err(&mut con, &["GETEX", "k", "EX", "0"]),
        "ERR invalid expire time in 'getex' command"
    );
    assert_eq!(run::<i64>(&mut con, &["TTL", "k"]), -1);
}

#[test]
fn keys_whose_deadline_passed_are_invisible() {
    let server = Server::start();
    let mut con = server.connect();
    // A deadline in the past: OK, and the key is gone at once.
    assert_eq!(
        run::<Value>(&mut con, &["SET", "past", "v", "EXAT", "1"]),
        Value::Okay
    );
    assert_eq!(run::<Value>(&mut con, &["GET", "past"]), Value::Nil);
    assert_eq!(
        run::<Value>(&mut con, &["SET", "short", "v", "PX", "100"]),
        Value::Okay
    );
    run::<()>(&mut con, &["SET", "long", "v", "PX", "60000"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(run::<Value>(&mut con, &["GET", "short"]), Value::Nil);
    assert_eq!(run::<i64>(&mut con, &["PTTL", "short"]), -2);
    assert_eq!(run::<Value>(&mut con, &["GET", "long"]), bulk("v"));
    // An expired key counts as missing for NX.
    assert_eq!(
        run::<Value>(&mut con, &["SET", "short", "w", "NX"]),
        Value::Okay
    );
    assert_eq!(run::<i64>(&mut con, &["TTL", "short"]), -1);
}

#[test]
fn setnx_setex_and_psetex() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["SETNX", "k", "a"]), Value::Int(1));
    assert_eq!(run::<Value>(&mut con, &["SETNX", "k", "b"]), Value::Int(0));
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("a"));

    assert_eq!(
        run::<Value>(&mut con, &["SETEX", "k", "100", "b"]),
        Value::Okay
    );
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("b"));
    let ttl: i64 = run(&mut con, &["TTL", "k"]);
    assert!((90..=100).contains(&ttl), "TTL after SETEX 100: {ttl}");

    assert_eq!(
        run::<Value>(&mut con, &["PSETEX", "p", "50000", "c"]),
        Value::Okay
    );
    assert_eq!(run::<Value>(&mut con, &["GET", "p"]), bulk("c"));
    let pttl = ttl_ms(&mut con, "p");
    assert!(
        (40_000..=50_000).contains(&pttl),
        "PTTL after PSETEX: {pttl}"
    );
}

#[test]
fn getdel_getex_and_getset() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["GETDEL", "k"]), Value::Nil);
    run::<()>(&mut con, &["SET", "k", "v"]);
    assert_eq!(run::<Value>(&mut con, &["GETDEL", "k"]), bulk("v"));
    assert_eq!(run::<i64>(&mut con, &["EXISTS", "k"]), 0);

    assert_eq!(run::<Value>(&mut con, &["GETEX", "k"]), Value::Nil);
    assert_eq!(
        run::<Value>(&mut con, &["GETEX", "k", "EX", "100"]),
        Value::Nil
    );
    assert_eq!(
        run::<i64>(&mut con, &["EXISTS", "k"]),
        0,
        "GETEX must not create a key"
    );
    run::<()>(&mut con, &["SET", "k", "v"]);
    assert_eq!(run::<Value>(&mut con, &["GETEX", "k"]), bulk("v"));
    assert_eq!(run::<i64>(&mut con, &["TTL", "k"]), -1);
    assert_eq!(
        run::<Value>(&mut con, &["GETEX", "k", "EX", "100"]),
        bulk("v")
    );
    let ttl: i64 = run(&mut con, &["TTL", "k"]);
    assert!((90..=100).contains(&ttl), "TTL after GETEX EX 100: {ttl}");
    assert_eq!(
        run::<Value>(&mut con, &["GETEX", "k", "PX", "200000"]),
        bulk("v")
    );
    let pttl = ttl_ms(&mut con, "k");
    assert!(
        (190_000..=200_000).contains(&pttl),
        "PTTL after GETEX PX: {pttl}"
    );
    let at_s = unix_ms() / 1000 + 500;
    assert_eq!(
        run::<Value>(&mut con, &["GETEX", "k", "EXAT", &at_s.to_string()]),
        bulk("v")
    );
    assert_eq!(run::<i64>(&mut con, &["EXPIRETIME", "k"]), at_s);
    let at_ms = unix_ms() + 600_000;
    assert_eq!(
        run::<Value>(&mut con, &["GETEX", "k", "PXAT", &at_ms.to_string()]),
        bulk("v")
    );
    assert_eq!(run::<i64>(&mut con, &["PEXPIRETIME", "k"]), at_ms);
    assert_eq!(
        run::<Value>(&mut con, &["GETEX", "k", "PERSIST"]),
        bulk("v")
    );
    assert_eq!(run::<i64>(&mut con, &["TTL", "k"]), -1);

    assert_eq!(run::<Value>(&mut con, &["GETSET", "g", "1"]), Value::Nil);
    assert_eq!(run::<Value>(&mut con, &["GETSET", "g", "2"]), bulk("1"));
    assert_eq!(run::<Value>(&mut con, &["GET", "g"]), bulk("2"));
    // GETSET, like SET, drops the deadline.
    run::<()>(&mut con, &["EXPIRE", "g", "100"]);
    assert_eq!(run::<Value>(&mut con, &["GETSET", "g", "3"]), bulk("2"));
    assert_eq!(run::<i64>(&mut con, &["TTL", "g"]), -1);
}

#[test]
fn mget_mset_and_msetnx() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        run::<Value>(&mut con, &["MSET", "a", "1", "b", "2", "c", "3"]),
        Value::Okay
    );
    assert_eq!(
        run::<Value>(&mut con, &["MGET", "a", "missing", "c", "b", "a"]),
        Value::Array(vec![bulk("1"), Value::Nil, bulk("3"), bulk("2"), bulk("1")])
    );
    // MSET overwrites and drops deadlines; the last of repeated keys wins.
    run::<()>(&mut con, &["EXPIRE", "a", "100"]);
    run::<()>(&mut con, &["MSET", "a", "x", "a", "y"]);
    assert_eq!(run::<Value>(&mut con, &["GET", "a"]), bulk("y"));
    assert_eq!(run::<i64>(&mut con, &["TTL", "a"]), -1);
    assert_eq!(
        run_err(&mut con, &["MSET", "a", "1", "b"]),
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(
        run_err(&mut con, &["MSET"]),
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(
        run_err(&mut con, &["MGET"]),
        "ERR wrong number of arguments for 'mget' command"
    );

    // MSETNX: all or nothing.
    assert_eq!(
        run::<Value>(&mut con, &["MSETNX", "n1", "1", "a", "2"]),
        Value::Int(0)
    );
    assert_eq!(run::<i64>(&mut con, &["EXISTS", "n1"]), 0);
    assert_eq!(run::<Value>(&mut con, &["GET", "a"]), bulk("y"));
    assert_eq!(
        run::<Value>(&mut con, &["MSETNX", "n1", "1", "n2", "2"]),
        Value::Int(1)
    );
    assert_eq!(
        run::<Value>(&mut con, &["MGET", "n1", "n2"]),
        Value::Array(vec![bulk("1"), bulk("2")])
    );
    assert_eq!(
        run_err(&mut con, &["MSETNX", "n3", "1", "n4"]),
        "ERR wrong number of arguments for 'msetnx' command"
    );
}

#[test]
fn incr_and_decr_count_as_64_bit_integers() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["INCR", "n"]), Value::Int(1));
    assert_eq!(
        run::<Value>(&mut con, &["INCRBY", "n", "41"]),
        Value::Int(42)
    );
    assert_eq!(run::<Value>(&mut con, &["DECR", "n"]), Value::Int(41));
    assert_eq!(
        run::<Value>(&mut con, &["DECRBY", "n", "50"]),
        Value::Int(-9)
    );
    assert_eq!(
        run::<Value>(&mut con, &["INCRBY", "n", "-1"]),
        Value::Int(-10)
    );
    assert_eq!(run::<Value>(&mut con, &["GET", "n"]), bulk("-10"));
    assert_eq!(run::<Value>(&mut con, &["DECR", "fresh"]), Value::Int(-1));
    assert_eq!(
        run::<Value>(&mut con, &["DECRBY", "fresh2", "5"]),
        Value::Int(-5)
    );
    run::<()>(&mut con, &["SET", "s", "10"]);
    assert_eq!(run::<Value>(&mut con, &["INCR", "s"]), Value::Int(11));

    // The deadline of a counter survives INCR.
    run::<()>(&mut con, &["SET", "t", "5", "EX", "100"]);
    assert_eq!(run::<Value>(&mut con, &["INCR", "t"]), Value::Int(6));
    let ttl: i64 = run(&mut con, &["TTL", "t"]);
    assert!((90..=100).contains(&ttl), "TTL after INCR: {ttl}");
}

#[test]
fn incr_rejects_non_integers_and_overflow() {
    let server = Server::start();
    let mut con = server.connect();
    for (key, value) in [
        ("word", "abc"),
        ("float", "1.5"),
        ("space", " 1"),
        ("trailing", "1 "),
        ("huge", "99999999999999999999"),
        ("empty", ""),
    ] {
        run::<()>(&mut con, &["SET", key, value]);
        assert_eq!(
            run_err(&mut con, &["INCR", key]),
            NOT_INTEGER,
            "INCR of {value:?}"
        );
        assert_eq!(run_err(&mut con, &["DECRBY", key, "1"]), NOT_INTEGER);
        assert_eq!(run::<Value>(&mut con, &["GET", key]), bulk(value));
    }
    assert_eq!(run_err(&mut con, &["INCRBY", "n", "abc"]), NOT_INTEGER);
    assert_eq!(run_err(&mut con, &["INCRBY", "n", "1.0"]), NOT_INTEGER);
    assert_eq!(run_err(&mut con, &["DECRBY", "n", "x"]), NOT_INTEGER);
    assert_eq!(run::<i64>(&mut con, &["EXISTS", "n"]), 0);

    let overflow = "ERR increment or decrement would overflow";
    run::<()>(&mut con, &["SET", "max", "9223372036854775807"]);
    assert_eq!(run_err(&mut con, &["INCR", "max"]), overflow);
    assert_eq!(run_err(&mut con, &["INCRBY", "max", "1"]), overflow);
    assert_eq!(run_err(&mut con, &["DECRBY", "max", "-1"]), overflow);
    assert_eq!(
        run::<Value>(&mut con, &["GET", "max"]),
        bulk("9223372036854775807")
    );
    run::<()>(&mut con, &["SET", "min", "-9223372036854775808"]);
    assert_eq!(run_err(&mut con, &["DECR", "min"]), overflow);
    assert_eq!(run_err(&mut con, &["INCRBY", "min", "-1"]), overflow);
    assert_eq!(
        run::<Value>(&mut con, &["GET", "min"]),
        bulk("-9223372036854775808")
    );
    // Negating i64::MIN would overflow before the addition.
    assert_eq!(
        run_err(&mut con, &["DECRBY", "zero", "-9223372036854775808"]),
        "ERR decrement would overflow"
    );
    assert_eq!(
        run::<Value>(&mut con, &["INCRBY", "m", "-9223372036854775808"]),
        Value::Int(i64::MIN)
    );
}

#[test]
fn append_and_strlen() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["STRLEN", "k"]), Value::Int(0));
    assert_eq!(
        run::<Value>(&mut con, &["APPEND", "k", "Hello"]),
        Value::Int(5)
    );
    assert_eq!(
        run::<Value>(&mut con, &["APPEND", "k", " World"]),
        Value::Int(11)
    );
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("Hello World"));
    assert_eq!(run::<Value>(&mut con, &["STRLEN", "k"]), Value::Int(11));
    assert_eq!(run::<Value>(&mut con, &["APPEND", "k", ""]), Value::Int(11));
    // APPEND keeps the deadline; it works on counters as text.
    run::<()>(&mut con, &["EXPIRE", "k", "100"]);
    run::<()>(&mut con, &["APPEND", "k", "!"]);
    let ttl: i64 = run(&mut con, &["TTL", "k"]);
    assert!((90..=100).contains(&ttl), "TTL after APPEND: {ttl}");
    run::<()>(&mut con, &["SET", "n", "12"]);
    assert_eq!(run::<Value>(&mut con, &["APPEND", "n", "3"]), Value::Int(3));
    assert_eq!(run::<Value>(&mut con, &["INCR", "n"]), Value::Int(124));
}

#[test]
fn string_commands_check_their_arity() {
    let server = Server::start();
    let mut con = server.connect();
    for (args, name) in [
        (&["GET"][..], "get"),
        (&["GET", "a", "b"][..], "get"),
        (&["SET", "k"][..], "set"),
        (&["SETNX", "k"][..], "setnx"),
        (&["SETEX", "k", "10"][..], "setex"),
        (&["PSETEX", "k", "10"][..], "psetex"),
        (&["GETDEL"][..], "getdel"),
        (&["GETEX"][..], "getex"),
        (&["GETSET", "k"][..], "getset"),
        (&["INCR"][..], "incr"),
        (&["INCRBY", "k"][..], "incrby"),
        (&["DECR", "a", "b"][..], "decr"),
        (&["DECRBY", "k"][..], "decrby"),
        (&["APPEND", "k"][..], "append"),
        (&["STRLEN"][..], "strlen"),
        (&["FENCE"][..], "fence"),
    ] {
        assert_eq!(
            run_err(&mut con, args),
            format!("ERR wrong number of arguments for '{name}' command"),
            "{}",
            args.join(" ")
        );
    }
}

fn fence(con: &mut redis::Connection, key: &str) -> i64 {
    match run::<Value>(con, &["FENCE", key]) {
        Value::Int(token) => token,
        other => panic!("FENCE {key}: expected an integer, got {other:?}"),
    }
}

#[test]
fn fence_is_nil_for_a_missing_key() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["FENCE", "nothing"]), Value::Nil);
    run::<()>(&mut con, &["SET", "gone", "v", "PX", "50"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(run::<Value>(&mut con, &["FENCE", "gone"]), Value::Nil);
    run::<()>(&mut con, &["SET", "deleted", "v"]);
    run::<()>(&mut con, &["DEL", "deleted"]);
    assert_eq!(run::<Value>(&mut con, &["FENCE", "deleted"]), Value::Nil);
}

#[test]
fn fence_strictly_increases_on_every_write_to_a_key_and_across_keys() {
    let server = Server::start();
    let mut con = server.connect();
    let mut last = 0;
    let writes: &[&[&str]] = &[
        &["SET", "a", "1"],
        &["SET", "a", "2"],
        &["SET", "b", "1"],
        &["SET", "a", "2"],
        &["INCR", "a"],
        &["APPEND", "b", "x"],
        &["SETEX", "c", "100", "v"],
        &["GETSET", "c", "w"],
        &["MSET", "a", "9", "b", "9"],
        &["SET", "b", "z", "XX", "GET"],
        &["DECRBY", "a", "3"],
    ];
    for write in writes {
        run::<Value>(&mut con, write);
        let key = write[1];
        let token = fence(&mut con, key);
        assert!(
            token > last,
            "FENCE {key} after {}: {token} <= {last}",
            write.join(" ")
        );
        last = token;
    }
    let a = fence(&mut con, "a");
    let c = fence(&mut con, "c");
    assert!(c < a, "c was written before the last write of a");
    // Deleted and written again: a new, larger token.
    run::<()>(&mut con, &["DEL", "c"]);
    run::<()>(&mut con, &["SET", "c", "again"]);
    assert!(fence(&mut con, "c") > last);
    // Reading does not change the token.
    let before = fence(&mut con, "c");
    run::<Value>(&mut con, &["GET", "c"]);
    run::<Value>(&mut con, &["MGET", "c", "a"]);
    assert_eq!(fence(&mut con, "c"), before);
    // A write that did not happen does not change it either.
    assert_eq!(run::<Value>(&mut con, &["SET", "c", "x", "NX"]), Value::Nil);
    assert_eq!(fence(&mut con, "c"), before);
}

#[test]
fn fence_of_a_rename_target_or_a_key_written_after_flushall_still_grows() {
    let server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "src", "1"]);
    run::<()>(&mut con, &["SET", "dst", "2"]);
    let dst_before = fence(&mut con, "dst");
    assert!(fence(&mut con, "src") < dst_before);
    // The older value moves onto dst: dst's token must still go up, never back.
    run::<()>(&mut con, &["RENAME", "src", "dst"]);
    assert_eq!(run::<Value>(&mut con, &["GET", "dst"]), bulk("1"));
    let dst_after = fence(&mut con, "dst");
    assert!(
        dst_after > dst_before,
        "RENAME: {dst_after} <= {dst_before}"
    );
    assert_eq!(run::<Value>(&mut con, &["FENCE", "src"]), Value::Nil);

    run::<()>(&mut con, &["FLUSHALL"]);
    assert_eq!(run::<Value>(&mut con, &["FENCE", "dst"]), Value::Nil);
    run::<()>(&mut con, &["SET", "dst", "3"]);
    let after_flush = fence(&mut con, "dst");
    assert!(
        after_flush > dst_after,
        "after FLUSHALL: {after_flush} <= {dst_after}"
    );
}

#[test]
fn fence_stays_the_same_across_getex_and_expire() {
    let server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "k", "v"]);
    let token = fence(&mut con, "k");
    run::<Value>(&mut con, &["GETEX", "k", "EX", "100"]);
    assert_eq!(fence(&mut con, "k"), token);
    run::<Value>(&mut con, &["EXPIRE", "k", "200"]);
    assert_eq!(fence(&mut con, "k"), token);
    run::<Value>(&mut con, &["PEXPIRE", "k", "300000"]);
    assert_eq!(fence(&mut con, "k"), token);
    run::<Value>(&mut con, &["GETEX", "k", "PERSIST"]);
    assert_eq!(fence(&mut con, "k"), token);
    // Writes to other keys in between leave it alone.
    run::<()>(&mut con, &["SET", "other", "v"]);
    assert_eq!(fence(&mut con, "k"), token);
    assert!(fence(&mut con, "other") > token);
}

#[test]
fn concurrent_incr_from_many_connections_loses_no_update() {
    let server = Server::start();
    const THREADS: i64 = 8;
    const EACH: i64 = 250;
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            let server = &server;
            scope.spawn(move || {
                let mut con = server.connect();
                let mut last = 0;
                for _ in 0..EACH {
                    let n: i64 = run(&mut con, &["INCR", "counter"]);
                    assert!(
                        n > last,
                        "INCR replies grow on one connection: {n} after {last}"
                    );
                    last = n;
                }
            });
        }
    });
    let mut con = server.connect();
    assert_eq!(run::<i64>(&mut con, &["GET", "counter"]), THREADS * EACH);
}

#[test]
fn set_nx_grants_a_key_to_exactly_one_of_many_racing_clients() {
    let server = Server::start();
    const CLIENTS: usize = 8;
    const ROUNDS: usize = 20;
    let mut cons: Vec<redis::Connection> = (0..CLIENTS).map(|_| server.connect()).collect();
    for round in 0..ROUNDS {
        let key = format!("lock:{round}");
        let barrier = std::sync::Barrier::new(CLIENTS);
        let winners: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = cons
                .iter_mut()
                .enumerate()
                .map(|(client, con)| {
                    let (key, barrier) = (&key, &barrier);
                    scope.spawn(move || {
                        let owner = format!("owner-{client}");
                        barrier.wait();
                        let reply: Value = run(con, &["SET", key, &owner, "NX", "PX", "30000"]);
                        (reply == Value::Okay).then_some(owner)
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let mut con = server.connect();
        assert_eq!(run::<Value>(&mut con, &["GET", &key]), bulk(&winners[0]));
    }
}

#[test]
fn a_read_never_misses_a_write_acknowledged_before_it_was_sent() {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    let server = Server::start();
    let acked = AtomicI64::new(0);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut con = server.connect();
            for _ in 0..1_000 {
                let n: i64 = run(&mut con, &["INCR", "c"]);
                acked.store(n, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
        });
        for _ in 0..2 {
            scope.spawn(|| {
                let mut con = server.connect();
                for _ in 0..5_000 {
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    let floor = acked.load(Ordering::SeqCst);
                    let seen: Option<i64> = run(&mut con, &["GET", "c"]);
                    let seen = seen.unwrap_or(0);
                    assert!(
                        seen >= floor,
                        "stale read: {seen} after {floor} was acknowledged"
                    );
                }
            });
        }
    });
}
