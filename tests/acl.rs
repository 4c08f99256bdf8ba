//! ACL users through the real binary: Debian's redis-cli with `--user`/`--pass`, the
//! redis crate, and a 3-node cluster whose followers check and relay a restricted user's
//! commands, with users replicated, restarted and snapshotted. redis-py's
//! `username=`/`password=` is in tests/compat.rs (`redis_py_acl_users`).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{bulk, map_entries, redis_cli, run, run_err, value_text, Server};

const NO_KEY: &str = "NOPERM No permissions to access a key";

/// A user allowed LOCK, UNLOCK, GET and EVAL, only on `lock:*`.
const ALICE: &[&str] = &[
    "ACL", "SETUSER", "alice", "on", ">pw", "~lock:*", "+lock", "+unlock", "+get", "+eval",
];

/// A connection authenticated as `user`.
fn connect_as(server: &Server, user: &str, password: &str) -> redis::Connection {
    let mut con = server.connect();
    let _: () = run(&mut con, &["AUTH", user, password]);
    con
}

/// `redis-cli --user USER --pass PASS args...` on `port`: its output.
fn redis_cli_as(port: u16, user: &str, password: &str, args: &[&str]) -> String {
    let output = Command::new(redis_cli())
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["--user", user, "--pass", password, "--no-auth-warning"])
        .args(args)
        .output()
        .expect("run redis-cli");
    assert!(output.status.success(), "redis-cli {args:?} failed");
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned()
}

#[test]
fn a_lock_only_user_is_refused_other_keys_and_commands_in_redis_words() {
    let server = Server::start_with(&["--requirepass", "req"]);
    let mut admin = connect_as(&server, "default", "req");
    let _: () = run(&mut admin, ALICE);
    let token = redis_cli_as(
        server.port,
        "alice",
        "pw",
        &["LOCK", "lock:1", "me", "30000"],
    );
    assert!(token.parse::<u64>().is_ok(), "{token}");
    assert_eq!(
        redis_cli_as(
            server.port,
            "alice",
            "pw",
            &["LOCK", "other", "me", "30000"]
        ),
        NO_KEY
    );
    assert_eq!(
        redis_cli_as(server.port, "alice", "pw", &["DEL", "lock:1"]),
        "NOPERM User alice has no permissions to run the 'del' command"
    );
    assert_eq!(
        redis_cli_as(server.port, "alice", "wrong", &["GET", "lock:1"]),
        "NOAUTH Authentication required."
    );
    // The refusals changed nothing, and the server serves everyone else.
    let holders: redis::Value = run(&mut admin, &["LOCKINFO", "lock:1"]);
    assert!(format!("{holders:?}").contains("\"me\""), "{holders:?}");
    assert_eq!(run::<i64>(&mut admin, &["EXISTS", "other"]), 0);
    let whoami: String = run(
        &mut connect_as(&server, "default", "req"),
        &["ACL", "WHOAMI"],
    );
    assert_eq!(whoami, "default");
}

#[test]
fn acl_setuser_errors_and_replies_are_redis_s() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        run_err(&mut con, &["ACL", "SETUSER", "bob", "+nosuch"]),
        "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
    );
    assert_eq!(
        run_err(&mut con, &["ACL", "SETUSER", "bob", "#abc"]),
        "ERR Error in ACL SETUSER modifier '#abc': The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
    );
    let users: Vec<String> = run(&mut con, &["ACL", "USERS"]);
    assert_eq!(users, ["default"], "a refused SETUSER creates nothing");
    let _: () = run(&mut con, ALICE);
    let list: Vec<String> = run(&mut con, &["ACL", "LIST"]);
    assert_eq!(
        list,
        [
            "user alice on #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~lock:* resetchannels -@all +lock +unlock +get +eval",
            "user default on nopass ~* &* +@all",
        ]
    );
    let user = map_entries(run(&mut con, &["ACL", "GETUSER", "alice"]));
    let names: Vec<&str> = user.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "flags",
            "passwords",
            "commands",
            "keys",
            "channels",
            "selectors"
        ]
    );
    assert_eq!(user[0].1, redis::Value::Array(vec![bulk("on")]));
    assert_eq!(value_text(&user[2].1), "-@all +lock +unlock +get +eval");
    assert_eq!(value_text(&user[3].1), "~lock:*");
    let dry: String = run(&mut con, &["ACL", "DRYRUN", "alice", "GET", "other"]);
    assert_eq!(
        dry,
        "User alice has no permissions to access the 'other' key"
    );
    let dry: String = run(&mut con, &["ACL", "DRYRUN", "alice", "GET", "lock:1"]);
    assert_eq!(dry, "OK");
    let pass: String = run(&mut con, &["ACL", "GENPASS"]);
    assert_eq!(pass.len(), 64);
    assert_eq!(
        run::<i64>(&mut con, &["ACL", "DELUSER", "alice", "nobody"]),
        1
    );
    assert_eq!(
        run_err(&mut con, &["ACL", "DELUSER", "default"]),
        "ERR The 'default' user cannot be removed"
    );
    // HELLO 3 AUTH with a user, then the same with a wrong password.
    let _: () = run(&mut con, ALICE);
    let mut other = server.connect();
    let hello = map_entries(run(&mut other, &["HELLO", "3", "AUTH", "alice", "pw"]));
    assert!(hello
        .iter()
        .any(|(k, v)| k == "proto" && *v == redis::Value::Int(3)));
    let missing: redis::Value = run(&mut other, &["GET", "lock:x"]);
    assert_eq!(missing, redis::Value::Nil);
    assert_eq!(
        run_err(&mut other, &["HELLO", "3", "AUTH", "alice", "nope"]),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
}

#[test]
fn a_script_s_redis_call_on_a_forbidden_key_is_refused_and_writes_nothing() {
    let server = Server::start();
    let mut admin = server.connect();
    let _: () = run(&mut admin, &[ALICE, &["+set"]].concat());
    let mut alice = connect_as(&server, "alice", "pw");
    // EVAL's own keys are checked before anything runs.
    assert_eq!(
        run_err(&mut alice, &["EVAL", "return 1", "1", "other"]),
        NO_KEY
    );
    let script = "redis.call('SET', 'lock:a', '1'); return redis.call('SET', ARGV[1], 'x')";
    let refused = run_err(&mut alice, &["EVAL", script, "0", "other"]);
    assert!(
        refused.starts_with("ERR ACL failure in script: No permissions to access a key"),
        "{refused}"
    );
    let script = "return redis.call('DEL', 'lock:a')";
    let refused = run_err(&mut alice, &["EVAL", script, "0"]);
    assert!(
        refused.starts_with(
            "ERR ACL failure in script: User alice has no permissions to run the 'del' command"
        ),
        "{refused}"
    );
    let log: Vec<redis::Value> = run(&mut admin, &["ACL", "LOG", "1"]);
    let entry = format!("{log:?}");
    assert!(
        entry.contains("\"lua\"") && entry.contains("\"del\"") && entry.contains("\"alice\""),
        "{entry}"
    );
    // All or nothing: the SET before the refusal left no trace.
    assert_eq!(run::<i64>(&mut admin, &["EXISTS", "lock:a", "other"]), 0);
    let allowed: String = run(
        &mut alice,
        &[
            "EVAL",
            "return redis.call('SET', KEYS[1], 'v')",
            "1",
            "lock:a",
        ],
    );
    assert_eq!(allowed, "OK");
    // A release script (run natively for others) is checked too.
    let release = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
    let refused = run_err(&mut alice, &["EVAL", release, "1", "lock:a", "v"]);
    assert!(
        refused.contains("has no permissions to run the 'del' command"),
        "{refused}"
    );
}

#[test]
fn multi_refuses_at_queue_time_and_dooms_exec() {
    let server = Server::start();
    let mut admin = server.connect();
    let _: () = run(&mut admin, &[ALICE, &["+multi", "+exec", "+set"]].concat());
    let mut alice = connect_as(&server, "alice", "pw");
    let _: () = run(&mut alice, &["MULTI"]);
    assert_eq!(run_err(&mut alice, &["SET", "other", "v"]), NO_KEY);
    assert_eq!(
        run_err(&mut alice, &["EXEC"]),
        "EXECABORT Transaction discarded because of previous errors."
    );
    let _: () = run(&mut alice, &["MULTI"]);
    let _: () = run(&mut alice, &["SET", "lock:t", "v"]);
    let replies: Vec<String> = run(&mut alice, &["EXEC"]);
    assert_eq!(replies, ["OK"]);
}

#[test]
fn acl_log_records_refusals_and_wrong_passwords_get_slower() {
    let server = Server::start();
    let mut admin = server.connect();
    let _: () = run(&mut admin, ALICE);
    let mut guesser = server.connect();
    // Each failure on a connection is answered later than the last: 100, 200, 400 ms.
    let mut took = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(
            run_err(&mut guesser, &["AUTH", "alice", "guess"]),
            "WRONGPASS invalid username-password pair or user is disabled."
        );
        took.push(started.elapsed());
    }
    for (failure, (elapsed, floor_ms)) in took.iter().zip([100, 200, 400]).enumerate() {
        assert!(
            *elapsed >= Duration::from_millis(floor_ms),
            "failure {failure} answered after {elapsed:?}, before its {floor_ms} ms delay"
        );
    }
    // Other clients are served meanwhile; the right password still works.
    let _: () = run(&mut guesser, &["AUTH", "alice", "pw"]);
    assert_eq!(
        run_err(&mut guesser, &["SET", "lock:1", "v"]),
        "NOPERM User alice has no permissions to run the 'set' command"
    );
    let log: Vec<redis::Value> = run(&mut admin, &["ACL", "LOG"]);
    let entries: Vec<Vec<(String, String)>> = log
        .into_iter()
        .map(|e| {
            map_entries(e)
                .into_iter()
                .map(|(k, v)| match v {
                    redis::Value::Int(n) => (k, n.to_string()),
                    redis::Value::Double(_) => (k, String::new()),
                    v => (k, value_text(&v)),
                })
                .collect()
        })
        .collect();
    let field = |entry: &Vec<(String, String)>, name: &str| {
        entry
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(field(&entries[0], "reason"), "command");
    assert_eq!(field(&entries[0], "object"), "set");
    assert_eq!(field(&entries[0], "username"), "alice");
    assert_eq!(field(&entries[1], "reason"), "auth");
    assert_eq!(field(&entries[1], "count"), "3");
    let _: () = run(&mut admin, &["ACL", "LOG", "RESET"]);
    let log: Vec<redis::Value> = run(&mut admin, &["ACL", "LOG"]);
    assert!(log.is_empty());
}

#[test]
fn an_acl_file_seeds_the_users_and_acl_save_and_load_use_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("users.acl");
    std::fs::write(
        &file,
        "user admin on >adminpw ~* &* +@all\nuser default on nopass ~* &* +@all -@dangerous\n\
         user alice on >pw ~lock:* +lock\n",
    )
    .expect("write the ACL file");
    let server = Server::start_with(&["--aclfile", file.to_str().expect("a UTF-8 path")]);
    // The seed is proposed once the node leads.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut admin = loop {
        let mut con = server.connect();
        if redis::cmd("AUTH")
            .arg("admin")
            .arg("adminpw")
            .query::<()>(&mut con)
            .is_ok()
        {
            break con;
        }
        assert!(
            Instant::now() < deadline,
            "the ACL file never seeded: {}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        run_err(&mut server.connect(), &["FLUSHALL"]),
        "NOPERM User default has no permissions to run the 'flushall' command"
    );
    let _: () = run(
        &mut admin,
        &["ACL", "SETUSER", "bob", "on", "nopass", "+ping"],
    );
    let _: () = run(&mut admin, &["ACL", "SAVE"]);
    let saved = std::fs::read_to_string(&file).expect("read the saved file");
    assert!(
        saved.contains("user bob on nopass resetchannels -@all +ping\n"),
        "{saved}"
    );
    std::fs::write(&file, "user admin on >adminpw ~* &* +@all\n").expect("rewrite");
    let _: () = run(&mut admin, &["ACL", "LOAD"]);
    let users: Vec<String> = run(&mut admin, &["ACL", "USERS"]);
    assert_eq!(users, ["admin", "default"]);
    std::fs::write(&file, "user admin on >adminpw\nbogus\n").expect("rewrite");
    let refused = run_err(&mut admin, &["ACL", "LOAD"]);
    assert!(
        refused.ends_with("line 2: should start with user keyword"),
        "{refused}"
    );
}

#[test]
fn a_bad_acl_file_stops_the_start_with_the_line_that_is_wrong() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("users.acl");
    std::fs::write(&file, "user admin on >pw +@all\nuser bob +nosuch\n").expect("write");
    let [port, raft_port] = [common::free_port(), common::free_port()];
    let out = Command::new(env!("CARGO_BIN_EXE_raftlock"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--raft-listen", &format!("127.0.0.1:{raft_port}")])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--aclfile")
        .arg(&file)
        .output()
        .expect("run raftlock");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "line 2: Error in user declaration 'bob': Unknown command or category name in ACL"
        ),
        "{stderr}"
    );
}

#[test]
fn users_reach_followers_relay_as_their_user_and_survive_restarts_and_snapshots() {
    let mut cluster = Cluster::start(
        3,
        &[
            "--snapshot-every-entries",
            "50",
            "--log-entries-kept-after-snapshot",
            "10",
        ],
    );
    let leader = cluster.wait_leader(Duration::from_secs(30));
    cluster.wait_replicated(leader, Duration::from_secs(30));
    let follower = cluster.other_than(&[leader]);
    let mut on_leader = cluster.node(leader).connect();
    let _: () = run(&mut on_leader, ALICE);
    let acl_index: u64 = cluster.node(leader).raft_info()["last_applied_index"]
        .parse()
        .expect("an index");
    cluster.wait_replicated(leader, Duration::from_secs(10));

    // On a follower: its own check refuses, the leader's apply refuses inside a script.
    let alice_on = |cluster: &Cluster, id: u64| {
        let mut con = cluster.node(id).connect();
        let _: () = run(&mut con, &["AUTH", "alice", "pw"]);
        con
    };
    let mut alice = alice_on(&cluster, follower);
    let token: i64 = run(&mut alice, &["LOCK", "lock:1", "me", "60000"]);
    assert!(token > 0);
    assert_eq!(
        run_err(&mut alice, &["LOCK", "other", "me", "60000"]),
        NO_KEY
    );
    assert_eq!(
        run_err(&mut alice, &["SET", "lock:1", "v"]),
        "NOPERM User alice has no permissions to run the 'set' command"
    );
    let refused = run_err(
        &mut alice,
        &["EVAL", "return redis.call('GET', 'other')", "0"],
    );
    assert!(
        refused.starts_with("ERR ACL failure in script: No permissions to access a key"),
        "{refused}"
    );

    // Enough entries for every node to snapshot past the ACL change and purge it.
    for i in 0..200 {
        let _: () = run(&mut on_leader, &["SET", &format!("key{i}"), "v"]);
    }
    cluster.wait_replicated(leader, Duration::from_secs(10));
    for node in &cluster.nodes {
        let info = node.raft_info();
        let purged: u64 = info["purged_index"].parse().expect("an index");
        assert!(
            purged > acl_index,
            "node {} kept the ACL entry: {info:?}",
            node.id
        );
    }
    drop((alice, on_leader));
    let ids: Vec<u64> = cluster.nodes.iter().map(|n| n.id).collect();
    for id in &ids {
        cluster.kill(*id);
    }
    for id in &ids {
        cluster.restart(*id);
    }
    let leader = cluster.wait_leader(Duration::from_secs(30));
    cluster.wait_replicated(leader, Duration::from_secs(30));
    for id in &ids {
        let mut alice = alice_on(&cluster, *id);
        let info: redis::Value = run(&mut alice, &["GET", "lock:missing"]);
        assert_eq!(info, redis::Value::Nil);
        assert_eq!(run_err(&mut alice, &["GET", "key1"]), NO_KEY, "node {id}");
    }

    // With the default user off, a follower's relay still reaches the leader.
    let mut on_leader = cluster.node(leader).connect();
    let _: () = run(
        &mut on_leader,
        &["ACL", "SETUSER", "admin", "on", ">apw", "~*", "&*", "+@all"],
    );
    let _: () = run(&mut on_leader, &["ACL", "SETUSER", "default", "off"]);
    let follower = cluster.other_than(&[leader]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis::cmd("GET")
        .arg("k")
        .query::<redis::Value>(&mut cluster.node(follower).connect())
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "default is still on at node {follower}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut alice = alice_on(&cluster, follower);
    let token: i64 = run(&mut alice, &["LOCK", "lock:2", "me", "60000"]);
    assert!(token > 0);
    let held: i64 = run(&mut alice, &["UNLOCK", "lock:2", "me"]);
    assert_eq!(held, 0);

    // The nodes' own requests to each other (a leadership transfer asked of a follower)
    // authenticate with the relay secret too. A transfer is best effort: three tries.
    let target = cluster.other_than(&[leader, follower]);
    let mut admin = cluster.node(follower).connect();
    let _: () = run(&mut admin, &["AUTH", "admin", "apw"]);
    let role_of = |id: u64| -> String {
        let mut con = cluster.node(id).connect();
        let _: () = run(&mut con, &["AUTH", "admin", "apw"]);
        let role: Vec<redis::Value> = run(&mut con, &["ROLE"]);
        value_text(&role[0])
    };
    let mut replies = Vec::new();
    for _ in 0..3 {
        let reply = redis::cmd("RAFT.TRANSFER-LEADER")
            .arg(target)
            .query::<String>(&mut admin);
        let moved = Instant::now() + Duration::from_secs(10);
        while role_of(target) != "master" && Instant::now() < moved {
            std::thread::sleep(Duration::from_millis(50));
        }
        replies.push(format!("{reply:?}"));
        if role_of(target) == "master" {
            break;
        }
    }
    println!("RAFT.TRANSFER-LEADER {target} asked of node {follower}: {replies:?}");
    assert_eq!(role_of(target), "master", "{replies:?}");
}
