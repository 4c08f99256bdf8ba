//! Lua scripting against the real binary: the Redlock scripts lock libraries send, the
//! EVALSHA-then-EVAL fallback they use, the script cache commands, and a cache that
//! survives a kill -9.

mod common;

use common::{bulk, run, run_err, Server};
use redis::Value;

/// The compare-and-delete every Redlock implementation releases with.
const RELEASE: &str = r#"if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end"#;
/// The compare-and-extend Redlock libraries use.
const EXTEND: &str = r#"if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("pexpire",KEYS[1],ARGV[2]) else return 0 end"#;

fn sha1(text: &str) -> String {
    sha1_smol::Sha1::from(text).digest().to_string()
}

/// What a client library does: EVALSHA, and EVAL only when the server answers NOSCRIPT.
fn invoke(con: &mut redis::Connection, script: &str, keys: &[&str], args: &[&str]) -> Value {
    let numkeys = keys.len().to_string();
    let sha = sha1(script);
    let mut evalsha = vec!["EVALSHA", sha.as_str(), numkeys.as_str()];
    evalsha.extend_from_slice(keys);
    evalsha.extend_from_slice(args);
    match common::cmd(&evalsha).query::<Value>(con) {
        Ok(value) => value,
        Err(err) if err.code() == Some("NOSCRIPT") => {
            let mut eval = vec!["EVAL", script, numkeys.as_str()];
            eval.extend_from_slice(keys);
            eval.extend_from_slice(args);
            run(con, &eval)
        }
        Err(err) => panic!("EVALSHA failed: {}", common::err_text(&err)),
    }
}

#[test]
fn redlock_release_and_extend_by_eval_and_evalsha() {
    let server = Server::start();
    let mut con = server.connect();
    let _: () = run(&mut con, &["SET", "res", "token-1", "NX", "PX", "30000"]);
    let other: i64 = run(&mut con, &["EVAL", RELEASE, "1", "res", "token-2"]);
    assert_eq!(other, 0, "another owner's token releases nothing");
    let extended: i64 = run(&mut con, &["EVAL", EXTEND, "1", "res", "token-1", "60000"]);
    assert_eq!(extended, 1);
    let ttl: i64 = run(&mut con, &["PTTL", "res"]);
    assert!(ttl > 30_000, "PEXPIRE from the script took effect: {ttl}");
    // EVAL cached the body: EVALSHA finds it.
    let released: i64 = run(
        &mut con,
        &["EVALSHA", &sha1(RELEASE), "1", "res", "token-1"],
    );
    assert_eq!(released, 1);
    let gone: Value = run(&mut con, &["GET", "res"]);
    assert_eq!(gone, Value::Nil);
}

#[test]
fn noscript_then_eval_fallback() {
    let server = Server::start();
    let mut con = server.connect();
    let script = "return 'fallback ' .. ARGV[1]";
    assert_eq!(
        run_err(&mut con, &["EVALSHA", &sha1(script), "0", "x"]),
        "NOSCRIPT No matching script. Please use EVAL."
    );
    assert_eq!(
        invoke(&mut con, script, &[], &["one"]),
        bulk("fallback one")
    );
    // The fallback EVAL cached it; the next call is served by EVALSHA alone.
    let again: String = run(&mut con, &["EVALSHA", &sha1(script), "0", "two"]);
    assert_eq!(again, "fallback two");
    let _: () = run(&mut con, &["SET", "k", "v"]);
    assert_eq!(invoke(&mut con, RELEASE, &["k"], &["v"]), Value::Int(1));
}

#[test]
fn script_load_exists_and_flush() {
    let server = Server::start();
    let mut con = server.connect();
    let sha: String = run(&mut con, &["SCRIPT", "LOAD", RELEASE]);
    assert_eq!(sha, sha1(RELEASE));
    let missing = "0".repeat(40);
    let exists: Vec<i64> = run(&mut con, &["SCRIPT", "EXISTS", &sha, &missing]);
    assert_eq!(exists, vec![1, 0]);
    let _: () = run(&mut con, &["SCRIPT", "FLUSH"]);
    let exists: Vec<i64> = run(&mut con, &["script", "exists", &sha]);
    assert_eq!(exists, vec![0]);
    assert_eq!(
        run_err(&mut con, &["EVALSHA", &sha, "1", "k", "v"]),
        "NOSCRIPT No matching script. Please use EVAL."
    );
    assert_eq!(
        run_err(&mut con, &["SCRIPT", "LOAD", "return +"]),
        "ERR Error compiling script (new function): user_script:1: unexpected symbol near '+'"
    );
    assert_eq!(
        run_err(&mut con, &["SCRIPT", "KILL"]),
        "NOTBUSY No scripts in execution right now."
    );
    assert!(run_err(&mut con, &["SCRIPT", "NOPE"]).starts_with("ERR unknown subcommand 'NOPE'"));
}

#[test]
fn evalsha_works_after_kill_and_restart() {
    let mut server = Server::start();
    let sha = {
        let mut con = server.connect();
        let sha: String = run(&mut con, &["SCRIPT", "LOAD", RELEASE]);
        let _: () = run(&mut con, &["SET", "lock", "me"]);
        sha
    };
    server.kill();
    server.restart();
    let mut con = server.connect();
    let exists: Vec<i64> = run(&mut con, &["SCRIPT", "EXISTS", &sha]);
    assert_eq!(exists, vec![1]);
    let released: i64 = run(&mut con, &["EVALSHA", &sha, "1", "lock", "me"]);
    assert_eq!(released, 1);
}

#[test]
fn failed_scripts_leave_nothing_and_read_only_scripts_refuse_writes() {
    let server = Server::start();
    let mut con = server.connect();
    let script = "redis.call('set', KEYS[1], 'x'); return redis.call('incr', KEYS[2])";
    let _: () = run(&mut con, &["SET", "text", "abc"]);
    let error = run_err(&mut con, &["EVAL", script, "2", "written", "text"]);
    assert_eq!(
        error,
        format!(
            "ERR value is not an integer or out of range script: {}, on @user_script:1.",
            sha1(script)
        )
    );
    let written: Value = run(&mut con, &["GET", "written"]);
    assert_eq!(written, Value::Nil, "the failed script's SET was undone");
    assert_eq!(
        run_err(&mut con, &["EVAL_RO", "return redis.call('set', 'a', 'b')", "0"]),
        format!(
            "ERR Write commands are not allowed from read-only scripts. script: {}, on @user_script:1.",
            sha1("return redis.call('set', 'a', 'b')")
        )
    );
    let read: String = run(
        &mut con,
        &["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "text"],
    );
    assert_eq!(read, "abc");
}

#[test]
fn resp3_scripts_return_resp3_types() {
    let server = Server::start();
    let mut con = server.connect_resp3();
    let reply: Value = run(
        &mut con,
        &[
            "EVAL",
            "redis.setresp(3); return {map={a=1}, double=nil}",
            "0",
        ],
    );
    assert_eq!(reply, Value::Map(vec![(bulk("a"), Value::Int(1))]));
    let reply: Value = run(&mut con, &["EVAL", "redis.setresp(3); return true", "0"]);
    assert_eq!(reply, Value::Boolean(true));
    let reply: Value = run(&mut con, &["EVAL", "return {double=1.5}", "0"]);
    assert_eq!(reply, Value::Double(1.5));
}
