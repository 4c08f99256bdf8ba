//! SLOWLOG through the binary: the reply shape and error texts compared with Debian's
//! `redis-server` (both logging every request), the length bound, the warning in the log,
//! commands that wait on purpose left out, and the knobs in CONFIG GET and the config file.

mod common;

use std::time::Duration;

use common::redis_server::RedisServer;
use common::{run, run_err, value_text, Server};
use redis::Value;

fn connect(port: u16) -> redis::Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap();
    con.set_read_timeout(Some(common::CLIENT_TIMEOUT)).unwrap();
    con
}

/// An entry's arguments, client address without its port, and client name.
type Shape = (Vec<String>, String, String);

/// An entry of SLOWLOG GET with its varying parts checked and left out: the three
/// integers (id, time, microseconds) and the client's port. Keeps the arguments, the
/// client's address without its port, and its name.
fn shape(entry: &Value) -> Shape {
    let Value::Array(fields) = entry else {
        panic!("an entry is not an array: {entry:?}");
    };
    assert_eq!(fields.len(), 6, "{entry:?}");
    for field in &fields[..3] {
        assert!(matches!(field, Value::Int(n) if *n >= 0), "{entry:?}");
    }
    let Value::Array(argv) = &fields[3] else {
        panic!("no argument array: {entry:?}");
    };
    let addr = value_text(&fields[4]);
    let (ip, port) = addr.rsplit_once(':').expect("IP:PORT");
    assert!(port.parse::<u16>().is_ok(), "{addr}");
    (
        argv.iter().map(value_text).collect(),
        ip.to_string(),
        value_text(&fields[5]),
    )
}

/// The same requests on `port`; SLOWLOG GET 3's entries, shaped, and the error texts.
fn slowlog_session(port: u16) -> (Vec<Shape>, Vec<String>) {
    let mut con = connect(port);
    run::<()>(&mut con, &["SLOWLOG", "RESET"]);
    run::<()>(&mut con, &["CLIENT", "SETNAME", "probe"]);
    let long = "x".repeat(130);
    run::<()>(&mut con, &["SET", "slow:key", &long]);
    let keys: Vec<String> = (1..=40).map(|i| format!("k{i}")).collect();
    let mut del = vec!["DEL"];
    del.extend(keys.iter().map(String::as_str));
    run::<i64>(&mut con, &del);
    let Value::Array(entries) = run::<Value>(&mut con, &["SLOWLOG", "GET", "3"]) else {
        panic!("SLOWLOG GET is not an array");
    };
    let errors = [
        &["SLOWLOG", "GET", "-2"][..],
        &["SLOWLOG", "GET", "many"],
        &["SLOWLOG", "GET", "1", "2"],
        &["SLOWLOG", "LEN", "1"],
        &["SLOWLOG", "RESET", "now"],
        &["SLOWLOG", "NOPE"],
    ]
    .iter()
    .map(|args| run_err(&mut con, args))
    .collect();
    (entries.iter().map(shape).collect(), errors)
}

#[test]
fn slowlog_replies_have_the_shape_and_words_of_redis() {
    let redis = RedisServer::start_with(&["--slowlog-log-slower-than", "0"]);
    let server = Server::start_with(&["--slowlog-log-slower-than", "0"]);
    let (theirs, their_errors) = slowlog_session(redis.port);
    let (ours, our_errors) = slowlog_session(server.port);
    assert_eq!(ours, theirs);
    assert_eq!(our_errors, their_errors);
    // What the comparison covered: the newest first, argv clipped as Redis clips it.
    assert_eq!(ours[0].0.len(), 32);
    assert_eq!(ours[0].0[31], "... (10 more arguments)");
    assert!(ours[1].0[2].ends_with("... (2 more bytes)"));
    assert_eq!(ours[2].0, ["CLIENT", "SETNAME", "probe"]);
    assert_eq!(ours[2].2, "probe");
    let help = |port| {
        let mut con = connect(port);
        run::<Vec<String>>(&mut con, &["SLOWLOG", "HELP"])
    };
    assert_eq!(help(server.port), help(redis.port));
}

#[test]
fn the_log_keeps_the_newest_warns_about_slow_ones_and_skips_waits() {
    let server = Server::start_with(&[
        "--slowlog-log-slower-than",
        "0",
        "--slowlog-max-len",
        "3",
        "--slowlog-warn-slower-than",
        "0",
    ]);
    let mut con = server.connect();
    for i in 0..5 {
        run::<()>(&mut con, &["SET", &format!("k{i}"), "v"]);
    }
    assert_eq!(run::<i64>(&mut con, &["SLOWLOG", "LEN"]), 3);
    let Value::Array(entries) = run::<Value>(&mut con, &["SLOWLOG", "GET", "-1"]) else {
        panic!("SLOWLOG GET is not an array");
    };
    // The newest three: SLOWLOG LEN itself (logged once answered, as in Redis), then the
    // last two SETs.
    let argvs: Vec<Vec<String>> = entries.iter().map(|e| shape(e).0).collect();
    assert_eq!(
        argvs,
        [
            vec!["SLOWLOG", "LEN"],
            vec!["SET", "k4", "v"],
            vec!["SET", "k3", "v"]
        ]
    );
    // Waiting on purpose is not slowness.
    run::<()>(&mut con, &["SLOWLOG", "RESET"]);
    let popped: Option<Vec<String>> = run(&mut con, &["BLPOP", "nothing", "0.05"]);
    assert_eq!(popped, None);
    run::<i64>(&mut con, &["LOCK", "held", "a", "60000"]);
    let waited: Option<i64> = run(&mut con, &["LOCK", "held", "b", "60000", "WAIT", "50"]);
    assert_eq!(waited, None);
    let Value::Array(entries) = run::<Value>(&mut con, &["SLOWLOG", "GET"]) else {
        panic!("SLOWLOG GET is not an array");
    };
    let names: Vec<String> = entries.iter().map(|e| shape(e).0[0].clone()).collect();
    assert_eq!(names, ["LOCK", "SLOWLOG"], "{entries:?}");
    assert!(
        server.log().contains("slow request"),
        "no warning logged: {}",
        server.log()
    );
    let config: Vec<String> = run(&mut con, &["CONFIG", "GET", "slowlog-*"]);
    assert_eq!(
        config,
        ["slowlog-log-slower-than", "0", "slowlog-max-len", "3"]
    );
}

#[test]
fn the_knobs_come_from_the_config_file_in_redis_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("raftlock.conf");
    std::fs::write(
        &file,
        "slowlog-log-slower-than -1\nslowlog-max-len 7\nslowlog-warn-slower-than 2000000\n",
    )
    .unwrap();
    let server = Server::start_with(&["--config", file.to_str().unwrap()]);
    let mut con = server.connect();
    let config: Vec<String> = run(&mut con, &["CONFIG", "GET", "slowlog-*"]);
    assert_eq!(
        config,
        ["slowlog-log-slower-than", "-1", "slowlog-max-len", "7"]
    );
    run::<()>(&mut con, &["SET", "k", "v"]);
    assert_eq!(run::<i64>(&mut con, &["SLOWLOG", "LEN"]), 0);
}

#[test]
fn config_set_changes_the_slowlog_knobs_at_run_time_as_redis_does() {
    let server = common::Server::start();
    let mut con = server.connect();
    let get = |con: &mut redis::Connection, name: &str| -> Vec<String> {
        common::run(con, &["CONFIG", "GET", name])
    };
    let _: () = common::run(
        &mut con,
        &[
            "CONFIG",
            "SET",
            "slowlog-log-slower-than",
            "0",
            "slowlog-max-len",
            "2",
        ],
    );
    assert_eq!(get(&mut con, "slowlog-max-len"), ["slowlog-max-len", "2"]);
    for _ in 0..5 {
        let _: () = common::run(&mut con, &["SET", "k", "v"]);
    }
    let len: i64 = common::run(&mut con, &["SLOWLOG", "LEN"]);
    assert_eq!(len, 2, "every request is slow enough; two are kept");
    let err = common::run_err(&mut con, &["CONFIG", "SET", "slowlog-max-len", "-1"]);
    assert_eq!(
        err,
        "ERR CONFIG SET failed (possibly related to argument 'slowlog-max-len') - argument must be between 0 and 1000000 inclusive"
    );
    // All or nothing: the valid pair before the bad one is not applied either.
    let err = common::run_err(
        &mut con,
        &[
            "CONFIG",
            "SET",
            "slowlog-max-len",
            "7",
            "slowlog-log-slower-than",
            "x",
        ],
    );
    assert!(err.contains("couldn't be parsed into an integer"), "{err}");
    assert_eq!(get(&mut con, "slowlog-max-len"), ["slowlog-max-len", "2"]);
}
