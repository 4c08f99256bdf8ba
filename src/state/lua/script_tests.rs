//! Scripts driven through apply and query, as Raft drives them.

use bytes::Bytes;

use crate::reply::Reply;
use crate::state::tests::{bulk, err, int, Harness};

const RELEASE: &str =
    "if redis.call('get',KEYS[1]) == ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end";

fn eval(h: &mut Harness, script: &str, keys: &[&str], args: &[&str]) -> Reply {
    let numkeys = keys.len().to_string();
    let mut argv = vec!["eval", script, numkeys.as_str()];
    argv.extend_from_slice(keys);
    argv.extend_from_slice(args);
    h.write_args(&argv)
}

fn eval0(h: &mut Harness, script: &str) -> Reply {
    eval(h, script, &[], &[])
}

#[test]
fn redlock_release_deletes_only_the_owners_key() {
    let mut h = Harness::new();
    h.write("set lock owner-a px 10000");
    assert_eq!(eval(&mut h, RELEASE, &["lock"], &["owner-b"]), int(0));
    assert_eq!(h.read("get lock"), bulk("owner-a"));
    assert_eq!(eval(&mut h, RELEASE, &["lock"], &["owner-a"]), int(1));
    assert_eq!(h.read("get lock"), Reply::Nil);
}

#[test]
fn evalsha_runs_a_cached_script_and_noscript_otherwise() {
    let mut h = Harness::new();
    let sha = super::sha1_hex(RELEASE.as_bytes());
    assert_eq!(
        h.write_args(&["evalsha", &sha, "1", "lock", "me"]),
        err("NOSCRIPT No matching script. Please use EVAL.")
    );
    assert_eq!(h.write_args(&["script", "load", RELEASE]), bulk(&sha));
    h.write("set lock me");
    assert_eq!(
        h.write_args(&["evalsha", &sha.to_uppercase(), "1", "lock", "me"]),
        int(1)
    );
    assert_eq!(
        h.read(&format!("script exists {sha} {}", "0".repeat(40))),
        Reply::Array(vec![int(1), int(0)])
    );
}

#[test]
fn runtime_errors_read_as_redis_7() {
    let mut h = Harness::new();
    let script = "return nosuch";
    let sha = super::sha1_hex(script.as_bytes());
    assert_eq!(
        eval0(&mut h, script),
        err(&format!("ERR user_script:1: Script attempted to access nonexistent global variable 'nosuch' script: {sha}, on @user_script:1."))
    );
    let script = "x = 1";
    let sha = super::sha1_hex(script.as_bytes());
    assert_eq!(
        eval0(&mut h, script),
        err(&format!("ERR user_script:1: Attempt to modify a readonly table script: {sha}, on @user_script:1."))
    );
    let script = "\nreturn redis.call('nosuchcommand')";
    let sha = super::sha1_hex(script.as_bytes());
    assert_eq!(
        eval0(&mut h, script),
        err(&format!(
            "ERR Unknown Redis command called from script script: {sha}, on @user_script:2."
        ))
    );
    assert_eq!(
        eval0(&mut h, "return +"),
        err("ERR Error compiling script (new function): user_script:1: unexpected symbol near '+'")
    );
}

#[test]
fn an_infinite_loop_is_stopped_by_the_budget() {
    let mut h = Harness::new();
    let reply = eval0(&mut h, "while true do end");
    assert!(
        matches!(&reply, Reply::Error(e) if e.starts_with("ERR Script killed")),
        "{reply:?}"
    );
    let reply = eval0(
        &mut h,
        "while true do pcall(function() while true do end end) end",
    );
    assert!(
        matches!(&reply, Reply::Error(e) if e.starts_with("ERR Script killed")),
        "{reply:?}"
    );
    assert_eq!(eval0(&mut h, "return 1"), int(1));
}

#[test]
fn argv_keeps_binary() {
    let mut h = Harness::new();
    let reply = h.ks.apply_batch(&crate::state::Batch {
        now_ms: h.now_ms,
        ops: vec![vec![
            Bytes::from("eval"),
            Bytes::from("return ARGV[1]"),
            Bytes::from("0"),
            Bytes::from(vec![0u8, 255, 10]),
        ]],
    });
    assert_eq!(reply, vec![Reply::Bulk(Bytes::from(vec![0u8, 255, 10]))]);
}
