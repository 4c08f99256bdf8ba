//! Sessions against real processes: a waiter whose leader died, or whose client went
//! silent, leaves its queue within the session timeout; LOCKINFO shows whose holds and
//! waits are still attached to a live client; a waiter told TRYAGAIN by a leader change
//! keeps its place when it asks again.
//!
//! The tests run one at a time (`serial`): clusters of debug builds at once on a small
//! machine starve heartbeats and turn timing bounds into noise. Bounds are generous; the
//! measured times are printed.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{map_entries, run, value_text, Server};
use redis::Value;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The session timeout the nodes run with: short, to keep the tests fast.
const SESSION_TIMEOUT: Duration = Duration::from_secs(2);
const SESSION_TIMEOUT_FLAG: [&str; 2] = ["--session-timeout-ms", "2000"];
/// What a bound allows beyond what the design promises: a new leader's expiry hold
/// (600 ms), expiry ticks, polling, and debug builds on a shared machine.
const SLACK: Duration = Duration::from_secs(4);

/// Polls `done` every 20 ms for up to `within`; how long it took.
fn eventually(what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// One holder or waiter as LOCKINFO lists it: every field, by name, in order.
type Listed = Vec<(String, Value)>;

/// The holders or waiters (`which`) LOCKINFO lists for `resource`.
fn listed(con: &mut redis::Connection, resource: &str, which: &str) -> Vec<Listed> {
    let reply: Value = run(con, &["LOCKINFO", resource]);
    if reply == Value::Nil {
        return Vec::new();
    }
    let Some((_, Value::Array(items))) = map_entries(reply).into_iter().find(|(k, _)| k == which)
    else {
        panic!("LOCKINFO {resource} has no {which} array");
    };
    items.into_iter().map(map_entries).collect()
}

fn get<'a>(fields: &'a Listed, name: &str) -> &'a Value {
    &fields
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
        .1
}

fn owners(con: &mut redis::Connection, resource: &str, which: &str) -> Vec<String> {
    listed(con, resource, which)
        .iter()
        .map(|fields| value_text(get(fields, "owner")))
        .collect()
}

/// `(owner, session, attached)` of each holder or waiter.
fn sessions(
    con: &mut redis::Connection,
    resource: &str,
    which: &str,
) -> Vec<(String, String, i64)> {
    listed(con, resource, which)
        .iter()
        .map(|fields| {
            let attached = match get(fields, "attached") {
                Value::Int(n) => *n,
                other => panic!("attached is {other:?}"),
            };
            (
                value_text(get(fields, "owner")),
                value_text(get(fields, "session")),
                attached,
            )
        })
        .collect()
}

/// A LOCK ... WAIT sent on a connection of its own, in a thread; its reply (or error)
/// when it returns.
fn lock_in_thread(addr: String, args: Vec<String>) -> thread::JoinHandle<Result<Value, String>> {
    thread::spawn(move || {
        let client = redis::Client::open(format!("redis://{addr}/")).map_err(|e| e.to_string())?;
        let mut con = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .map_err(|e| e.to_string())?;
        con.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let mut cmd = redis::cmd(&args[0]);
        for arg in &args[1..] {
            cmd.arg(arg);
        }
        cmd.query::<Value>(&mut con)
            .map_err(|e| common::err_text(&e))
    })
}

fn words(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// (1) The leader dies with a holder and a waiter (WAIT 0) queued through it. Before
/// sessions the waiter stayed queued for ever, was granted when the holder's lease ended,
/// and held the lock for nobody for its whole lease. Now it leaves within the session
/// timeout of the new leader's election, and the next client gets the lock as soon as the
/// holder's lease ends.
#[test]
fn a_dead_leaders_waiter_leaves_and_the_lock_passes_when_the_holders_lease_ends() {
    let _serial = serial();
    let mut cluster = Cluster::start(3, &SESSION_TIMEOUT_FLAG);
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let addr = cluster.node(leader).client_addr();
    let mut holder = cluster.node(leader).connect();
    let lease = Duration::from_secs(10);
    let asked = Instant::now();
    let token: i64 = run(&mut holder, &["LOCK", "job", "holder", "10000"]);
    assert!(token > 0);
    let dead = lock_in_thread(addr, words("LOCK job dead 60000 WAIT 0"));
    let survivor = cluster.other_than(&[leader]);
    let mut watcher = cluster.node(survivor).connect();
    eventually("the waiter to queue", Duration::from_secs(10), || {
        owners(&mut watcher, "job", "waiters") == ["dead"]
    });

    let killed = Instant::now();
    cluster.kill(leader);
    let new_leader = cluster.wait_new_leader(leader, Duration::from_secs(30));
    println!(
        "a new leader was seen {:?} after the kill",
        killed.elapsed()
    );
    let mut con = cluster.node(new_leader).connect();
    eventually("the new leader to serve", Duration::from_secs(10), || {
        redis::cmd("LOCKINFO")
            .arg("job")
            .query::<Value>(&mut con)
            .is_ok()
    });
    // The holder is still there (its lease ends it), detached: its client is gone.
    let holders = sessions(&mut con, "job", "holders");
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert_eq!((holders[0].0.as_str(), holders[0].2), ("holder", 0));
    let left = eventually(
        "the dead leader's waiter to leave the queue",
        SESSION_TIMEOUT + SLACK,
        || owners(&mut con, "job", "waiters").is_empty(),
    );
    println!("the waiter left {left:?} after the new leader was seen");
    assert!(
        dead.join().expect("waiter thread").is_err(),
        "its connection died"
    );
    assert!(
        Instant::now() < asked + lease,
        "the test is too slow to tell the waiter's exit from the holder's lease"
    );

    // A new client queues, and is granted when the holder's lease ends (a failover makes
    // a lease end up to about 1.6 s late), not after the dead waiter's 60 s lease too.
    let mut fresh = cluster.node(new_leader).connect();
    let granted: Value = run(
        &mut fresh,
        &["LOCK", "job", "fresh", "10000", "WAIT", "30000"],
    );
    let after = asked.elapsed();
    println!("the next client got the lock {after:?} after the holder asked for its 10 s lease");
    assert!(matches!(granted, Value::Int(t) if t > token), "{granted:?}");
    assert!(after >= lease, "never before the holder's lease ends");
    assert!(after < lease + SLACK, "as soon as the holder's lease ends");
}

/// An iptables rule that drops every packet of one loopback TCP port, both ways; the
/// exact rule is removed when dropped.
struct DropPort {
    spec: Vec<String>,
}

impl DropPort {
    /// Fails (never skips) where iptables is missing or refuses: it needs root, as CI has.
    fn new(port: u16) -> DropPort {
        let spec = words(&format!(
            "INPUT -i lo -p tcp -m multiport --ports {port} -m comment --comment raftlock-sessions-test -j DROP"
        ));
        let added = Command::new("iptables").arg("-I").args(&spec).status();
        assert!(
            matches!(added, Ok(status) if status.success()),
            "cannot add an iptables rule ({added:?}): this test needs root and iptables"
        );
        DropPort { spec }
    }
}

impl Drop for DropPort {
    fn drop(&mut self) {
        let removed = Command::new("iptables").arg("-D").args(&self.spec).status();
        if !matches!(removed, Ok(status) if status.success()) {
            eprintln!(
                "warning: could not remove iptables rule {:?}: {removed:?}",
                self.spec
            );
        }
    }
}

/// (2) A client blocked in LOCK ... WAIT goes silent without closing (its host froze, a
/// partition): its packets, and the server's to it, are dropped. The server's TCP
/// keepalive gives up on it within the session timeout, and the disconnect takes its
/// waiter out of the queue. Before, nothing noticed: the waiter stayed queued for ever.
#[test]
fn a_silent_clients_waiter_leaves_the_queue_within_the_session_timeout() {
    let _serial = serial();
    let server = Server::start_with(&SESSION_TIMEOUT_FLAG);
    let mut con = server.connect();
    let _: i64 = run(&mut con, &["LOCK", "job", "holder", "60000"]);
    let mut silent = TcpStream::connect(format!("127.0.0.1:{}", server.port)).expect("connect");
    let port = silent.local_addr().expect("local address").port();
    silent
        .write_all(b"*6\r\n$4\r\nLOCK\r\n$3\r\njob\r\n$6\r\nsilent\r\n$5\r\n60000\r\n$4\r\nWAIT\r\n$1\r\n0\r\n")
        .expect("send LOCK");
    eventually("the waiter to queue", Duration::from_secs(10), || {
        owners(&mut con, "job", "waiters") == ["silent"]
    });
    assert_eq!(sessions(&mut con, "job", "waiters")[0].2, 1, "attached");
    let _drop = DropPort::new(port);
    let left = eventually(
        "the silent client's waiter to leave the queue",
        SESSION_TIMEOUT + SLACK,
        || owners(&mut con, "job", "waiters").is_empty(),
    );
    println!("the silent client's waiter left {left:?} after its packets were dropped");
    // The holder, whose client is alive, is still attached.
    let holders = sessions(&mut con, "job", "holders");
    assert_eq!((holders[0].0.as_str(), holders[0].2), ("holder", 1));
}

/// (3) LOCKINFO shows each holder's and waiter's session (the leader's node id, its term
/// and the connection's id there: a client of a follower has the follower's relay) and
/// whether it is attached; a closed connection detaches its holds, and a RENEW from a new
/// one attaches them again. The new fields come after the old ones.
#[test]
fn lockinfo_shows_sessions_and_whether_they_are_attached() {
    let _serial = serial();
    // A new term ends every session (rightly): on a loaded machine an election may come
    // between the LOCK and the check, and then the scenario runs again on a new cluster.
    for attempt in 1..=3 {
        if lockinfo_scenario() {
            return;
        }
        eprintln!("the term changed during attempt {attempt}; running it again");
    }
    panic!("the term changed in every attempt");
}

/// The LOCKINFO scenario; false if the term changed before its first check.
fn lockinfo_scenario() -> bool {
    let cluster = Cluster::start(3, &SESSION_TIMEOUT_FLAG);
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let follower = cluster.other_than(&[leader]);
    let term = cluster.node(leader).raft_info()["current_term"].clone();
    let mut holder = cluster.node(leader).connect();
    let holder_id: i64 = run(&mut holder, &["CLIENT", "ID"]);
    let _: i64 = run(&mut holder, &["LOCK", "job", "holder", "60000"]);
    let waiter = lock_in_thread(
        cluster.node(follower).client_addr(),
        words("LOCK job waiter 60000 WAIT 30000"),
    );
    let mut con = cluster.node(leader).connect();
    eventually("the waiter to queue", Duration::from_secs(10), || {
        owners(&mut con, "job", "waiters") == ["waiter"]
    });

    let holders = listed(&mut con, "job", "holders");
    let names: Vec<&str> = holders[0].iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["owner", "mode", "count", "token", "ttl", "session", "attached"]
    );
    let waiters = listed(&mut con, "job", "waiters");
    let names: Vec<&str> = waiters[0].iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["owner", "mode", "wait", "session", "attached"]);
    let holder_session = format!("{leader}:{term}:{holder_id}");
    let listed_sessions = sessions(&mut con, "job", "holders");
    let opened_in_term = listed_sessions
        .first()
        .is_some_and(|(_, session, _)| session.starts_with(&format!("{leader}:{term}:")));
    if cluster.node(leader).raft_info()["current_term"] != term || !opened_in_term {
        return false;
    }
    assert_eq!(
        listed_sessions,
        [("holder".to_string(), holder_session.clone(), 1)]
    );
    let (_, waiter_session, attached) = sessions(&mut con, "job", "waiters").remove(0);
    assert_eq!(attached, 1);
    assert!(
        waiter_session.starts_with(&format!("{leader}:{term}:"))
            && waiter_session != holder_session,
        "the waiter's session is the follower's relay on the leader: {waiter_session}"
    );

    // The holder's client leaves: its hold stays (the lease ends it), detached.
    drop(holder);
    eventually("the holder to be detached", Duration::from_secs(10), || {
        sessions(&mut con, "job", "holders") == [("holder".to_string(), holder_session.clone(), 0)]
    });
    // Its owner, on a new connection, renews: attached again, in the new session.
    let mut back = cluster.node(leader).connect();
    let back_id: i64 = run(&mut back, &["CLIENT", "ID"]);
    let renewed: i64 = run(&mut back, &["RENEW", "job", "holder", "60000"]);
    assert_eq!(renewed, 1);
    assert_eq!(
        sessions(&mut con, "job", "holders"),
        [(
            "holder".to_string(),
            format!("{leader}:{term}:{back_id}"),
            1
        )]
    );
    let _: i64 = run(&mut back, &["UNLOCK", "job", "holder"]);
    assert!(matches!(
        waiter.join().expect("waiter thread"),
        Ok(Value::Int(_))
    ));
    // A hold taken inside MULTI has no session.
    let _: Value = redis::pipe()
        .atomic()
        .cmd("LOCK")
        .arg("other")
        .arg("m")
        .arg("60000")
        .query(&mut con)
        .expect("MULTI LOCK");
    let holders = listed(&mut con, "other", "holders");
    assert_eq!(get(&holders[0], "session"), &Value::Nil);
    assert_eq!(get(&holders[0], "attached"), &Value::Int(0));
    true
}

/// (4) A client blocked on a leader that hands over leadership is told TRYAGAIN (its
/// session ends with the term); sent again through the new leader, its request keeps its
/// place ahead of a client that queued after it.
#[test]
fn a_waiter_told_tryagain_by_a_leader_change_keeps_its_place_when_it_asks_again() {
    let _serial = serial();
    // Long enough for the waiters to ask again however slow the machine.
    let cluster = Cluster::start(3, &["--session-timeout-ms", "5000"]);
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let target = cluster.other_than(&[leader]);
    let mut holder = cluster.node(leader).connect();
    let _: i64 = run(&mut holder, &["LOCK", "job", "holder", "60000"]);
    let first = lock_in_thread(
        cluster.node(leader).client_addr(),
        words("LOCK job first 60000 WAIT 0"),
    );
    let mut con = cluster.node(target).connect();
    eventually("the first waiter to queue", Duration::from_secs(10), || {
        owners(&mut con, "job", "waiters") == ["first"]
    });
    let second = lock_in_thread(
        cluster.node(target).client_addr(),
        words("LOCK job second 60000 WAIT 0"),
    );
    eventually(
        "the second waiter to queue",
        Duration::from_secs(10),
        || owners(&mut con, "job", "waiters") == ["first", "second"],
    );
    let moved: Value = run(&mut con, &["RAFT.TRANSFER-LEADER", &target.to_string()]);
    println!("transfer: {moved:?}");
    let told = first.join().expect("first waiter thread");
    assert!(
        matches!(&told, Err(e) if e.starts_with("TRYAGAIN")),
        "the first waiter is told to send its request again: {told:?}"
    );
    // The second waiter's relay to the old leader broke too: both ask again, second first.
    let second_told = second.join().expect("second waiter thread");
    assert!(
        matches!(&second_told, Err(e) if e.contains("TRYAGAIN")),
        "{second_told:?}"
    );
    let new_leader = cluster.wait_leader(Duration::from_secs(30));
    let second = lock_in_thread(
        cluster.node(new_leader).client_addr(),
        words("LOCK job second 60000 WAIT 0"),
    );
    let first = lock_in_thread(
        cluster.node(new_leader).client_addr(),
        words("LOCK job first 60000 WAIT 0"),
    );
    let mut con = cluster.node(new_leader).connect();
    eventually(
        "both waiters to be attached again",
        Duration::from_secs(10),
        || {
            let waiters = sessions(&mut con, "job", "waiters");
            waiters.len() == 2 && waiters.iter().all(|(_, _, attached)| *attached == 1)
        },
    );
    assert_eq!(
        owners(&mut con, "job", "waiters"),
        ["first", "second"],
        "places kept"
    );
    // Past the session timeout nobody has left.
    thread::sleep(Duration::from_secs(6));
    assert_eq!(owners(&mut con, "job", "waiters"), ["first", "second"]);
    let _: i64 = run(&mut con, &["UNLOCK", "job", "holder"]);
    assert!(matches!(first.join().expect("first"), Ok(Value::Int(_))));
    let _: i64 = run(&mut con, &["UNLOCK", "job", "first"]);
    assert!(matches!(second.join().expect("second"), Ok(Value::Int(_))));
}
