//! Real clusters of the binary on loopback: failover under lock contention, a paused
//! leader, catch-up by snapshot, membership changes under load, five nodes losing two,
//! waits across nodes, Sentinel discovery.
//!
//! The tests run one at a time (`serial`): several clusters of debug builds at once on a
//! small machine starve heartbeats and turn timing bounds into noise.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::{parse_info, Cluster, FollowingClient};
use common::{cmd, map_entries, run, value_text};
use redis::Value;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long a new leader may take to serve after the old one is gone. Generous: debug
/// builds on a shared machine; the measured time is printed.
const FAILOVER_BOUND: Duration = Duration::from_secs(15);
/// A log filter that adds openraft's election steps to the default.
const ELECTION_LOG: &str = "warn,raftlock=info,openraft::engine=info";

/// Polls `done` every 20 ms for up to `within`.
fn eventually(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// The owners LOCKINFO lists under `field` (`holders` or `waiters`).
fn lock_owners(con: &mut redis::Connection, resource: &str, field: &str) -> Vec<String> {
    let reply: Value = run(con, &["LOCKINFO", resource]);
    if reply == Value::Nil {
        return Vec::new();
    }
    let list = map_entries(reply)
        .into_iter()
        .find(|(k, _)| k == field)
        .map(|(_, v)| v);
    let Some(Value::Array(items)) = list else {
        panic!("LOCKINFO {resource} has no {field} array");
    };
    items
        .into_iter()
        .map(|item| {
            map_entries(item)
                .into_iter()
                .find(|(k, _)| k == "owner")
                .map(|(_, v)| value_text(&v))
                .expect("an owner")
        })
        .collect()
}

/// A client of a list of nodes that moves to the next node when its node fails or has
/// no leader, as an application with several addresses would.
struct Roaming {
    ports: Vec<u16>,
    at: usize,
    con: Option<redis::Connection>,
}

impl Roaming {
    fn new(ports: Vec<u16>, start: usize) -> Roaming {
        Roaming {
            at: start % ports.len(),
            ports,
            con: None,
        }
    }

    fn query<T: redis::FromRedisValue>(&mut self, args: &[&str]) -> Result<T, String> {
        if self.con.is_none() {
            let port = self.ports[self.at];
            let connected = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
                .and_then(|con| {
                    con.set_read_timeout(Some(Duration::from_secs(20)))?;
                    Ok(con)
                });
            match connected {
                Ok(con) => self.con = Some(con),
                Err(e) => {
                    self.at = (self.at + 1) % self.ports.len();
                    return Err(e.to_string());
                }
            }
        }
        let con = self.con.as_mut().expect("connected above");
        match cmd(args).query(con) {
            Ok(value) => Ok(value),
            Err(err) => {
                if err.is_io_error() || err.is_connection_dropped() || err.is_timeout() {
                    self.con = None;
                    self.at = (self.at + 1) % self.ports.len();
                }
                Err(common::err_text(&err))
            }
        }
    }
}

/// One exclusive hold as a client saw it: from the grant's reply to the UNLOCK's request,
/// in µs since the test began. The real hold contains this interval.
#[derive(Debug, Clone)]
struct Hold {
    from_us: u64,
    to_us: u64,
    token: i64,
    checkfence: i64,
}

fn contend(
    worker: usize,
    ports: Vec<u16>,
    began: Instant,
    stop: Arc<AtomicBool>,
    holds: Arc<Mutex<Vec<Hold>>>,
) {
    let mut client = Roaming::new(ports, worker);
    let owner = format!("w{worker}");
    let since = |t: Instant| t.duration_since(began).as_micros() as u64;
    while !stop.load(Ordering::Relaxed) {
        let token: i64 =
            match client.query::<Option<i64>>(&["LOCK", "res", &owner, "10000", "WAIT", "3000"]) {
                Ok(Some(token)) => token,
                Ok(None) => continue,
                Err(_) => {
                    thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
        let from = Instant::now();
        // The grant must be current, by a linearizable read (retried through failover).
        let check_deadline = Instant::now() + Duration::from_secs(8);
        let checkfence = loop {
            match client.query::<i64>(&["CHECKFENCE", "res", &token.to_string()]) {
                Ok(n) => break n,
                Err(_) if Instant::now() < check_deadline => {
                    thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("CHECKFENCE kept failing: {e}"),
            }
        };
        thread::sleep(Duration::from_millis(2));
        let to = Instant::now();
        // Release every hold (a LOCK retried after a lost reply may have re-entered).
        let release_deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match client.query::<i64>(&["UNLOCK", "res", &owner]) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.starts_with("NOTOWNER") => break,
                Err(_) if Instant::now() < release_deadline => {
                    thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("UNLOCK kept failing: {e}"),
            }
        }
        holds.lock().unwrap().push(Hold {
            from_us: since(from),
            to_us: since(to),
            token,
            checkfence,
        });
    }
}

/// Writes through `ports` until one succeeds; the time it took. On failure it names the
/// errors met (each change of error, with when) and shows the nodes' logs.
fn time_until_a_write_succeeds(cluster: &Cluster, ports: Vec<u16>, start: Instant) -> Duration {
    let mut client = Roaming::new(ports, 0);
    let deadline = start + FAILOVER_BOUND;
    let mut errors: Vec<String> = Vec::new();
    let mut last = String::new();
    loop {
        let err = match client.query::<i64>(&["INCR", "failover_probe"]) {
            Ok(_) => return start.elapsed(),
            Err(e) => e,
        };
        if err != last {
            errors.push(format!("{} ms: {err}", start.elapsed().as_millis()));
            last = err;
        }
        assert!(
            Instant::now() < deadline,
            "no write succeeded within {FAILOVER_BOUND:?} of the leader's loss; errors:\n{}\n\
             logs:\n{}",
            errors.join("\n"),
            cluster.logs()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn three_nodes_serve_writes_and_linearizable_reads_on_every_node() {
    let _serial = serial();
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    for writer in &cluster.nodes {
        let mut con = writer.connect();
        let key = format!("written-on-{}", writer.id);
        let _: () = run(&mut con, &["SET", &key, "v"]);
        let n: i64 = run(&mut con, &["INCR", "shared"]);
        // Every node reads what was just acknowledged anywhere.
        for reader in &cluster.nodes {
            let mut con = reader.connect();
            let got: Option<String> = run(&mut con, &["GET", &key]);
            assert_eq!(got.as_deref(), Some("v"), "node {} reads {key}", reader.id);
            let shared: i64 = run(&mut con, &["GET", "shared"]);
            assert!(shared >= n);
        }
    }
    // ROLE and RAFT.INFO agree on the leader.
    for node in &cluster.nodes {
        let info = node.raft_info();
        assert_eq!(info["leader_id"], leader.to_string(), "node {}", node.id);
        assert_eq!(info["num_voting_nodes"], "3");
        let expected = if node.id == leader {
            "leader"
        } else {
            "follower"
        };
        assert_eq!(info["role"], expected);
    }
    let info = cluster.node(leader).raft_info();
    let commit: u64 = info["commit_index"].parse().unwrap();
    assert!(commit > 0, "{info:?}");
    for node in &cluster.nodes {
        eventually(
            "every node to apply what was committed",
            Duration::from_secs(10),
            || {
                let applied: u64 = node.raft_info()["last_applied_index"].parse().unwrap();
                applied >= commit
            },
        );
    }
    let matched: Vec<&String> = info
        .iter()
        .filter(|(k, _)| {
            k.strip_prefix("node")
                .is_some_and(|i| i.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|(_, v)| v)
        .collect();
    assert_eq!(matched.len(), 3, "{info:?}");
    assert!(matched
        .iter()
        .all(|line| !line.contains("match_index=unknown")));
}

#[test]
fn sentinel_commands_name_the_leader_on_every_node() {
    let _serial = serial();
    let cluster = Cluster::start(3, &["--sentinel-master-name", "locks"]);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let leader_port = cluster.node(leader).port;
    for node in &cluster.nodes {
        let mut con = node.connect();
        let addr: (String, u16) = run(&mut con, &["SENTINEL", "get-master-addr-by-name", "locks"]);
        assert_eq!(addr, ("127.0.0.1".to_string(), leader_port));
        let unknown: Option<(String, u16)> = run(
            &mut con,
            &["SENTINEL", "get-master-addr-by-name", "raftlock"],
        );
        assert_eq!(unknown, None);
        assert_eq!(
            common::run_err(&mut con, &["SENTINEL", "master", "nope"]),
            "ERR No such master with that name"
        );
        let masters: Vec<Value> = run(&mut con, &["SENTINEL", "masters"]);
        assert_eq!(masters.len(), 1);
        let master: BTreeMap<String, String> = map_entries(masters[0].clone())
            .into_iter()
            .map(|(k, v)| (k, value_text(&v)))
            .collect();
        assert_eq!(master["name"], "locks");
        assert_eq!(master["port"], leader_port.to_string());
        assert_eq!(master["flags"], "master");
        assert_eq!(master["num-slaves"], "2");
        assert_eq!(master["num-other-sentinels"], "2");
        assert_eq!(master["quorum"], "2");
        let replicas: Vec<Value> = run(&mut con, &["SENTINEL", "replicas", "locks"]);
        let slaves: Vec<Value> = run(&mut con, &["SENTINEL", "slaves", "locks"]);
        assert_eq!(replicas, slaves);
        assert_eq!(replicas.len(), 2);
        for replica in replicas {
            let fields: BTreeMap<String, String> = map_entries(replica)
                .into_iter()
                .map(|(k, v)| (k, value_text(&v)))
                .collect();
            assert_eq!(fields["flags"], "slave");
            assert_eq!(fields["master-port"], leader_port.to_string());
            assert_eq!(fields["master-link-status"], "ok");
            assert_ne!(fields["port"], leader_port.to_string());
        }
        let sentinels: Vec<Value> = run(&mut con, &["SENTINEL", "sentinels", "locks"]);
        let ports: Vec<String> = sentinels
            .into_iter()
            .map(|s| {
                let fields: BTreeMap<String, String> = map_entries(s)
                    .into_iter()
                    .map(|(k, v)| (k, value_text(&v)))
                    .collect();
                assert_eq!(fields["flags"], "sentinel");
                fields["port"].clone()
            })
            .collect();
        assert_eq!(ports.len(), 2);
        assert!(!ports.contains(&node.port.to_string()), "not itself");
    }
}

#[test]
fn leader_kill_under_lock_contention_loses_no_grant_and_never_overlaps_owners() {
    let _serial = serial();
    let mut cluster = Cluster::start(3, &[]);
    let old = cluster.wait_leader(Duration::from_secs(20));
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    let began = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let holds = Arc::new(Mutex::new(Vec::new()));
    // Twenty clients, spread over the three nodes.
    let workers: Vec<_> = (0..20)
        .map(|i| {
            let (ports, stop, holds) = (ports.clone(), stop.clone(), holds.clone());
            thread::spawn(move || contend(i, ports, began, stop, holds))
        })
        .collect();
    thread::sleep(Duration::from_secs(2));
    let before_kill = holds.lock().unwrap().len();
    let killed_at = Instant::now();
    let killed_at_us = killed_at.duration_since(began).as_micros() as u64;
    cluster.kill(old);
    let survivors: Vec<u16> = cluster.running().map(|n| n.port).collect();
    let failover = time_until_a_write_succeeds(&cluster, survivors, killed_at);
    let new = cluster.wait_new_leader(old, FAILOVER_BOUND);
    println!(
        "failover: node {old} killed, node {new} leads; first write acknowledged {} ms after the kill",
        failover.as_millis()
    );
    thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("worker panicked");
    }
    let mut holds = holds.lock().unwrap().clone();
    holds.sort_by_key(|h| h.from_us);
    let after_kill = holds.iter().filter(|h| h.from_us > killed_at_us).count();
    println!(
        "grants: {before_kill} before the kill, {after_kill} after it, {} in all",
        holds.len()
    );
    assert!(before_kill > 0, "no grant before the kill");
    assert!(after_kill > 0, "no grant after the kill");
    for hold in &holds {
        assert_eq!(
            hold.checkfence, 1,
            "an acknowledged grant was not current: {hold:?}"
        );
    }
    for pair in holds.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(a.to_us <= b.from_us, "two owners at once: {a:?} and {b:?}");
        assert!(a.token < b.token, "tokens went back: {a:?} then {b:?}");
    }
}

#[test]
fn a_paused_leader_steps_down_and_grants_nothing_on_its_stale_term() {
    let _serial = serial();
    let cluster = Cluster::start(3, &[]);
    let old = cluster.wait_leader(Duration::from_secs(20));
    let mut con = cluster.node(old).connect();
    let first: i64 = run(&mut con, &["LOCK", "held", "a", "60000"]);
    cluster.pause(old);
    // Requests sent to the paused leader wait in its socket buffer.
    let old_addr = cluster.node(old).client_addr();
    let stale = thread::spawn(move || {
        let client = redis::Client::open(format!("redis://{old_addr}/")).unwrap();
        let mut con = client
            .get_connection_with_timeout(Duration::from_secs(30))
            .expect("connect to the paused node");
        con.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let lock: redis::RedisResult<Option<i64>> =
            cmd(&["LOCK", "contested", "x", "60000"]).query(&mut con);
        let set: redis::RedisResult<()> = cmd(&["SET", "paused-write", "v"]).query(&mut con);
        (lock, set)
    });
    let new = cluster.wait_new_leader(old, FAILOVER_BOUND);
    let mut on_new = cluster.node(new).connect();
    let second: i64 = run(&mut on_new, &["LOCK", "contested", "y", "60000"]);
    assert!(second > first, "tokens keep increasing across terms");
    // The old leader's lease on "held" survived the leader change.
    let holder: Option<i64> = run(&mut on_new, &["LOCK", "held", "b", "1000"]);
    assert_eq!(holder, None);
    cluster.resume(old);
    let (lock, set) = stale.join().unwrap();
    println!("LOCK sent to the paused leader: {lock:?}; SET: {set:?}");
    if let Ok(Some(token)) = lock {
        panic!("the stale leader granted 'contested' (token {token})");
    }
    let after: Option<String> = run(&mut on_new, &["GET", "paused-write"]);
    if set.is_ok() {
        assert_eq!(
            after.as_deref(),
            Some("v"),
            "an acknowledged write was lost"
        );
    }
    eventually(
        "the old leader to step down",
        Duration::from_secs(10),
        || {
            let info = cluster.node(old).raft_info();
            info["role"] == "follower" && info["leader_id"] == new.to_string()
        },
    );
    assert_eq!(lock_owners(&mut on_new, "contested", "holders"), vec!["y"]);
}

#[test]
fn a_follower_restarted_after_compaction_catches_up_by_snapshot() {
    let _serial = serial();
    let mut cluster = Cluster::start(
        3,
        &[
            "--snapshot-every-entries",
            "50",
            "--log-entries-kept-after-snapshot",
            "10",
        ],
    );
    let leader = cluster.wait_leader(Duration::from_secs(20));
    // Both followers are up and hold the leader's log: otherwise the one left running may
    // not have answered yet, and the leader, acknowledged by no majority, steps down.
    cluster.wait_replicated(leader, Duration::from_secs(10));
    let follower = cluster.other_than(&[leader]);
    cluster.kill(follower);
    let mut con = cluster.node(leader).connect();
    for i in 0..300 {
        let _: () = run(&mut con, &["SET", &format!("key{i}"), &i.to_string()]);
    }
    let lead_applied: u64 = {
        let info = cluster.node(leader).raft_info();
        info["last_applied_index"].parse().unwrap()
    };
    eventually(
        "the leader to purge its log",
        Duration::from_secs(20),
        || {
            let info = cluster.node(leader).raft_info();
            info["purged_index"].parse::<u64>().unwrap() > 100
        },
    );
    cluster.restart(follower);
    eventually("the follower to catch up", Duration::from_secs(30), || {
        let Ok(mut con) = cluster.node(follower).try_connect() else {
            return false;
        };
        let Ok(text) = cmd(&["RAFT.INFO"]).query::<String>(&mut con) else {
            return false;
        };
        let info = parse_info(&text);
        info["last_applied_index"].parse::<u64>().unwrap() >= lead_applied
    });
    let info = cluster.node(follower).raft_info();
    let snapshot: u64 = info["snapshot_last_index"].parse().unwrap();
    assert!(snapshot > 100, "caught up without a snapshot: {info:?}");
    // The follower's own state (INFO keyspace reads it without the leader).
    let mut con = cluster.node(follower).connect();
    let keyspace: String = run(&mut con, &["INFO", "keyspace"]);
    let keys: u64 = parse_info(&keyspace)["db0"]
        .split(',')
        .next()
        .and_then(|kv| kv.strip_prefix("keys="))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(keys >= 300, "{keyspace}");
    let value: String = run(&mut con, &["GET", "key299"]);
    assert_eq!(value, "299");
}

#[test]
fn nodes_are_added_and_removed_at_run_time_under_load() {
    let _serial = serial();
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, tried) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let writer = {
        let (stop, acked, tried) = (stop.clone(), acked.clone(), tried.clone());
        thread::spawn(move || {
            let mut client = Roaming::new(ports, 0);
            while !stop.load(Ordering::Relaxed) {
                tried.fetch_add(1, Ordering::Relaxed);
                if client.query::<i64>(&["INCR", "counter"]).is_ok() {
                    acked.fetch_add(1, Ordering::Relaxed);
                } else {
                    thread::sleep(Duration::from_millis(10));
                }
            }
        })
    };
    let new = cluster.spawn_joining();
    let (client_addr, raft_addr) = {
        let node = cluster.node(new);
        (node.client_addr(), node.raft_addr())
    };
    // Through a follower: it relays to the leader.
    let via = cluster.other_than(&[leader, new]);
    let mut con = cluster.node(via).connect();
    let added: String = run(
        &mut con,
        &[
            "RAFT.NODE",
            "ADD",
            &new.to_string(),
            &client_addr,
            &raft_addr,
        ],
    );
    assert_eq!(added, "OK");
    let again: String = run(
        &mut con,
        &[
            "RAFT.NODE",
            "ADD",
            &new.to_string(),
            &client_addr,
            &raft_addr,
        ],
    );
    assert_eq!(again, "OK", "adding a member again is a no-op");
    let info = cluster.node(leader).raft_info();
    assert_eq!(info["num_voting_nodes"], "4", "{info:?}");
    // The new node serves clients and holds the state.
    let mut on_new = cluster.node(new).connect();
    let counter: i64 = run(&mut on_new, &["GET", "counter"]);
    assert!(counter > 0);
    eventually(
        "the new node to apply entries",
        Duration::from_secs(10),
        || {
            let info = cluster.node(new).raft_info();
            info["last_applied_index"].parse::<u64>().unwrap() > 0 && info["role"] == "follower"
        },
    );
    // Remove an original follower, asked through the new node.
    let removed = cluster.other_than(&[leader, new, 0]);
    let reply: String = run(&mut on_new, &["RAFT.NODE", "REMOVE", &removed.to_string()]);
    assert_eq!(reply, "OK");
    let info = cluster.node(leader).raft_info();
    assert_eq!(info["num_voting_nodes"], "3", "{info:?}");
    assert!(!info
        .values()
        .any(|v| v.starts_with(&format!("id={removed},"))));
    assert!(
        common::run_err(&mut on_new, &["RAFT.NODE", "REMOVE", &removed.to_string()])
            .starts_with("ERR node")
    );
    cluster.kill(removed);
    thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let mut con = cluster.node(leader).connect();
    let counter: u64 = run(&mut con, &["GET", "counter"]);
    let (acked, tried) = (acked.load(Ordering::Relaxed), tried.load(Ordering::Relaxed));
    println!(
        "membership changes under load: {acked} of {tried} INCRs acknowledged, counter {counter}"
    );
    assert!(acked > 0);
    assert!(
        counter >= acked && counter <= tried,
        "acked {acked}, tried {tried}, counter {counter}"
    );
}

#[test]
fn five_nodes_keep_serving_after_losing_two() {
    let _serial = serial();
    let mut cluster = Cluster::start(5, &[]);
    let old = cluster.wait_leader(Duration::from_secs(20));
    let mut con = cluster.node(old).connect();
    let _: () = run(&mut con, &["SET", "before", "1"]);
    let first: i64 = run(&mut con, &["LOCK", "r", "a", "500"]);
    let follower = cluster.other_than(&[old]);
    let killed_at = Instant::now();
    cluster.kill(old);
    cluster.kill(follower);
    let new = cluster.wait_new_leader(old, FAILOVER_BOUND);
    println!(
        "five nodes, two killed: node {new} leads {} ms after the kill",
        killed_at.elapsed().as_millis()
    );
    let survivors: Vec<u64> = cluster.running().map(|n| n.id).collect();
    assert_eq!(survivors.len(), 3);
    for id in survivors {
        let mut con = cluster.node(id).connect();
        let before: String = run(&mut con, &["GET", "before"]);
        assert_eq!(before, "1");
        let _: () = run(&mut con, &["SET", &format!("after{id}"), "1"]);
    }
    let mut con = cluster.node(new).connect();
    // a's 500 ms lease ends (after the new leader's hold); b then gets a larger token.
    let second: i64 = run(&mut con, &["LOCK", "r", "b", "1000", "WAIT", "10000"]);
    assert!(second > first);
}

#[test]
fn a_waiter_on_a_follower_is_granted_when_the_holder_on_another_node_unlocks() {
    let _serial = serial();
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    let f1 = cluster.other_than(&[leader]);
    let f2 = cluster.other_than(&[leader, f1]);
    let mut holder = cluster.node(f2).connect();
    let held: i64 = run(&mut holder, &["LOCK", "r", "a", "30000"]);
    let waiter_node = cluster.node(f1).client_addr();
    let waiter = thread::spawn(move || {
        let client = redis::Client::open(format!("redis://{waiter_node}/")).unwrap();
        let mut con = client.get_connection().unwrap();
        con.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let started = Instant::now();
        let token: Option<i64> = run(&mut con, &["LOCK", "r", "b", "30000", "WAIT", "20000"]);
        (token, started.elapsed())
    });
    let mut on_leader = cluster.node(leader).connect();
    eventually("b to queue", Duration::from_secs(10), || {
        lock_owners(&mut on_leader, "r", "waiters") == vec!["b"]
    });
    let left: i64 = run(&mut holder, &["UNLOCK", "r", "a"]);
    assert_eq!(left, 0);
    let (token, waited) = waiter.join().unwrap();
    let token = token.expect("the waiter was granted");
    assert!(token > held);
    assert!(waited < Duration::from_secs(15), "waited {waited:?}");
}

#[test]
fn transfer_leader_moves_leadership_to_another_voter() {
    let _serial = serial();
    let cluster = Cluster::start(3, &[]);
    let old = cluster.wait_leader(Duration::from_secs(20));
    let target = cluster.other_than(&[old]);
    // Asked on the third node: it relays to the leader. Best effort (README), so an
    // operator retries; three attempts must do.
    let via = cluster.other_than(&[old, target]);
    let mut con = cluster.node(via).connect();
    let mut attempts = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let reply = cmd(&["RAFT.TRANSFER-LEADER", &target.to_string()]).query::<String>(&mut con);
        attempts.push(format!(
            "{reply:?} after {} ms",
            started.elapsed().as_millis()
        ));
        if reply.is_ok() {
            break;
        }
        cluster.wait_leader(FAILOVER_BOUND);
    }
    println!("RAFT.TRANSFER-LEADER {target}: {attempts:?}");
    assert_eq!(cluster.wait_leader(FAILOVER_BOUND), target, "{attempts:?}");
}

/// Leadership moves while clients keep writing: each RAFT.TRANSFER-LEADER reaches the voter
/// asked at the first attempt (the leader stops proposing meanwhile, so no other voter's
/// log is longer than the target's and refuses it its vote), and every acknowledged write
/// is there afterwards.
#[test]
fn transfers_under_writes_reach_their_target_and_keep_every_acknowledged_write() {
    let _serial = serial();
    let cluster = Cluster::start(3, &[]);
    cluster.wait_leader(Duration::from_secs(20));
    let ports: Vec<u16> = (1..=3).map(|id| cluster.node(id).port).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (ports, stop) = (ports.clone(), stop.clone());
            thread::spawn(move || {
                let mut client = Roaming::new(ports, w);
                let mut acknowledged = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{w}:{}", acknowledged.len());
                    match client.query::<String>(&["SET", &key, "v"]) {
                        Ok(_) => acknowledged.push(key),
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
                acknowledged
            })
        })
        .collect();
    let mut moves = Vec::new();
    for _ in 0..4 {
        let leader = cluster.wait_leader(FAILOVER_BOUND);
        let target = cluster.other_than(&[leader]);
        // Writes flow to the leader before each move.
        thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let reply = cmd(&["RAFT.TRANSFER-LEADER", &target.to_string()])
            .query::<String>(&mut cluster.node(leader).connect());
        moves.push(format!(
            "{leader} -> {target}: {reply:?} after {} ms",
            started.elapsed().as_millis()
        ));
        assert!(reply.is_ok(), "{moves:?}");
        assert_eq!(cluster.wait_leader(FAILOVER_BOUND), target, "{moves:?}");
    }
    stop.store(true, Ordering::Relaxed);
    let acknowledged: Vec<String> = writers
        .into_iter()
        .flat_map(|writer| writer.join().unwrap())
        .collect();
    println!("{moves:?}; {} writes acknowledged", acknowledged.len());
    assert!(acknowledged.len() > 100, "{} writes", acknowledged.len());
    let leader = cluster.wait_leader(FAILOVER_BOUND);
    let mut con = cluster.node(leader).connect();
    for keys in acknowledged.chunks(500) {
        let mut exists = cmd(&["EXISTS"]);
        exists.arg(keys);
        let found: usize = exists.query(&mut con).unwrap();
        assert_eq!(found, keys.len(), "an acknowledged write is missing");
    }
}

/// RAFT.HOLD-ELECTIONS (what RAFT.TRANSFER-LEADER asks of the other voters): a held
/// follower does not stand while the hold lasts, and stands again once it ends; a bad
/// argument is refused. The leader is paused, so nothing else can make the follower's term
/// move.
#[test]
fn a_follower_holding_its_elections_does_not_stand_until_the_hold_ends() {
    let _serial = serial();
    let cluster = Cluster::start(3, &[]);
    let old = cluster.wait_leader(Duration::from_secs(20));
    let held = cluster.other_than(&[old]);
    let other = cluster.other_than(&[old, held]);
    let mut con = cluster.node(held).connect();
    for bad in ["-1", "soon"] {
        let err = cmd(&["RAFT.HOLD-ELECTIONS", bad])
            .query::<String>(&mut con)
            .unwrap_err();
        assert!(err.to_string().contains("invalid hold"), "{err}");
    }
    // Both followers hold (5 s at most, whatever is asked); the leader stops.
    for id in [held, other] {
        let ok: String = run(
            &mut cluster.node(id).connect(),
            &["RAFT.HOLD-ELECTIONS", "60000"],
        );
        assert_eq!(ok, "OK");
    }
    let term = |id: u64| -> u64 {
        cluster.node(id).raft_info()["current_term"]
            .parse()
            .unwrap()
    };
    // Both followers hold the leader's whole log: otherwise the released one could lose
    // the vote for being behind, as Raft demands, rather than for holding.
    cluster.wait_replicated(old, Duration::from_secs(10));
    let before = term(held);
    cluster.pause(old);
    // Well past the leader lease and an election timeout (600 + 600 ms): nobody stood.
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        (term(held), term(other)),
        (before, before),
        "a held node stood"
    );
    // Ending the hold on one follower: it stands at once, before the other's hold ends.
    let ok: String = run(&mut con, &["RAFT.HOLD-ELECTIONS", "0"]);
    assert_eq!(ok, "OK");
    eventually(
        "the released follower to stand",
        Duration::from_millis(1200),
        || term(held) > before,
    );
    cluster.resume(old);
    cluster.wait_leader(FAILOVER_BOUND);
}

#[test]
fn a_sentinel_following_client_keeps_locking_across_a_leader_kill() {
    let _serial = serial();
    let mut cluster = Cluster::start(3, &[]);
    let old = cluster.wait_leader(Duration::from_secs(20));
    let mut client = FollowingClient::new(cluster.nodes.iter().map(|n| n.port).collect());
    let mut last = 0i64;
    for i in 0..5 {
        let token: i64 = client
            .query(&cmd(&["LOCK", "job", &format!("c{i}"), "5000"]))
            .expect("lock");
        assert!(token > last);
        last = token;
        let _: i64 = client
            .query(&cmd(&["UNLOCK", "job", &format!("c{i}")]))
            .unwrap();
    }
    let killed_at = Instant::now();
    cluster.kill(old);
    let deadline = killed_at + FAILOVER_BOUND;
    let token = loop {
        match client.query::<i64>(&cmd(&["LOCK", "job", "after", "5000"])) {
            Ok(token) => break token,
            Err(e) => {
                assert!(Instant::now() < deadline, "still failing: {e}");
                thread::sleep(Duration::from_millis(20));
            }
        }
    };
    println!(
        "sentinel-following client locked again {} ms after the leader was killed",
        killed_at.elapsed().as_millis()
    );
    assert!(token > last, "tokens keep increasing across the failover");
}

/// A command on the cut-off node `id` that must not succeed: its error as the server
/// worded it (or the client's, if no reply came within 10 s), and how long it took.
fn must_fail_on(cluster: &Cluster, id: u64, args: &[&str]) -> (String, Duration) {
    // A cut-off leader may never answer a write (it cannot commit, and it does not step
    // down by itself): no reply within the bound counts as a failure too.
    let mut con = cluster
        .node(id)
        .try_connect_waiting(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connect to node {id}: {e}"));
    let started = Instant::now();
    match cmd(args).query::<Value>(&mut con) {
        Ok(value) => panic!(
            "node {id}, cut off from the majority, answered {} with {value:?} after {} ms",
            args.join(" "),
            started.elapsed().as_millis()
        ),
        Err(err) => (common::err_text(&err), started.elapsed()),
    }
}

/// Cuts node `cut` off from the others: it must answer no read, write or grant (every
/// such command fails within a bounded time, none returns the value it last saw), while
/// the other two keep serving; after healing it catches up and reads its writes.
fn cut_off_then_heal(cluster: &Cluster, cut: u64, round: u32) {
    let key = "partitioned";
    let stale = format!("before-{round}");
    let fresh = format!("after-{round}");
    let leader = cluster.wait_leader(FAILOVER_BOUND);
    let _: () = run(&mut cluster.node(leader).connect(), &["SET", key, &stale]);
    // The node to be cut off has applied the value it could serve stale.
    let commit: u64 = cluster.node(leader).raft_info()["commit_index"]
        .parse()
        .unwrap();
    eventually(
        "the node to apply the write",
        Duration::from_secs(10),
        || {
            let applied = cluster.node(cut).raft_info()["last_applied_index"].parse::<u64>();
            applied.unwrap_or(0) >= commit
        },
    );
    let was_leader = leader == cut;
    let cut_at = Instant::now();
    cluster.isolate(cut);
    let majority: Vec<u16> = cluster
        .nodes
        .iter()
        .filter(|n| n.id != cut)
        .map(|n| n.port)
        .collect();
    let serving = time_until_a_write_succeeds(cluster, majority.clone(), cut_at);
    let mut client = Roaming::new(majority.clone(), 1);
    let deadline = Instant::now() + FAILOVER_BOUND;
    while let Err(e) = client.query::<()>(&["SET", key, &fresh]) {
        assert!(Instant::now() < deadline, "the majority cannot write: {e}");
        thread::sleep(Duration::from_millis(20));
    }
    for node in cluster.nodes.iter().filter(|n| n.id != cut) {
        let got: String = run(&mut node.connect(), &["GET", key]);
        assert_eq!(got, fresh, "node {} of the majority", node.id);
    }
    // The cut-off node: a linearizable read, a write and a grant all fail.
    let (read, read_took) = must_fail_on(cluster, cut, &["GET", key]);
    let (write, write_took) = must_fail_on(cluster, cut, &["SET", "minority-write", "x"]);
    let (lock, lock_took) = must_fail_on(cluster, cut, &["LOCK", "minority-lock", "m", "60000"]);
    let role: Value = run(&mut cluster.node(cut).connect(), &["ROLE"]);
    println!(
        "partition round {round}: node {cut} (leader before: {was_leader}) cut off; the \
         majority wrote {} ms after the cut; on the cut-off node GET failed in {} ms ({read}), \
         SET in {} ms ({write}), LOCK in {} ms ({lock}); its ROLE: {role:?}",
        serving.as_millis(),
        read_took.as_millis(),
        write_took.as_millis(),
        lock_took.as_millis()
    );
    // The majority granted nothing to the cut-off side.
    let mut client = Roaming::new(majority, 0);
    let holders: Value = loop {
        match client.query::<Value>(&["LOCKINFO", "minority-lock"]) {
            Ok(v) => break v,
            Err(e) => {
                assert!(Instant::now() < deadline, "LOCKINFO kept failing: {e}");
                thread::sleep(Duration::from_millis(20));
            }
        }
    };
    assert_eq!(holders, Value::Nil, "a grant made on the minority side");
    // Heal: the node follows the majority's leader and catches up.
    let healed_at = Instant::now();
    cluster.heal(cut);
    let mut leader = cluster.wait_leader(FAILOVER_BOUND);
    let commit: u64 = cluster.node(leader).raft_info()["commit_index"]
        .parse()
        .unwrap();
    // A follower cut off stands for election over and over; healed, its higher term makes
    // the majority elect again, and the other node may win (its log is the shorter, so
    // not the healed node). It must follow whichever node leads now.
    eventually(
        "the healed node to follow the leader and catch up",
        Duration::from_secs(30),
        || {
            let Some(now) = cluster.leader().filter(|id| *id != cut) else {
                return false;
            };
            leader = now;
            let info = cluster.node(cut).raft_info();
            info["leader_id"] == leader.to_string()
                && info["last_applied_index"].parse::<u64>().unwrap_or(0) >= commit
        },
    );
    let caught_up = healed_at.elapsed();
    let mut con = cluster.node(cut).connect();
    let got: String = run(&mut con, &["GET", key]);
    assert_eq!(got, fresh, "the healed node reads the majority's write");
    let own = format!("healed-{round}");
    let _: () = run(&mut con, &["SET", "written-after-heal", &own]);
    let got: String = run(&mut con, &["GET", "written-after-heal"]);
    assert_eq!(got, own);
    for node in &cluster.nodes {
        let got: String = run(&mut node.connect(), &["GET", "written-after-heal"]);
        assert_eq!(got, own, "node {} reads the healed node's write", node.id);
    }
    let minority_write: Option<String> = run(&mut con, &["GET", "minority-write"]);
    println!(
        "partition round {round}: healed; node {cut} follows node {leader} and applied \
         index {commit} {} ms after healing; the refused minority write reads as \
         {minority_write:?}",
        caught_up.as_millis()
    );
}

#[test]
fn a_node_cut_off_serves_nothing_while_the_majority_serves_and_it_catches_up_when_healed() {
    let _serial = serial();
    // openraft's election steps are logged, for a failure's diagnosis.
    let cluster = Cluster::start_partitionable(3, &["--log-level", ELECTION_LOG]);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    // First the leader is cut off (it must stop serving), then a follower.
    cut_off_then_heal(&cluster, leader, 1);
    let leader = cluster.wait_leader(FAILOVER_BOUND);
    let follower = cluster.other_than(&[leader]);
    cut_off_then_heal(&cluster, follower, 2);
}

#[test]
fn a_publish_on_one_node_reaches_subscribers_on_every_node() {
    let _serial = serial();
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    // A subscriber on every node, by channel and by pattern. (Dropping a `PubSub`
    // unsubscribes, so they live to the end.)
    let mut cons: Vec<(u64, redis::Connection)> =
        cluster.nodes.iter().map(|n| (n.id, n.connect())).collect();
    let mut subscribers: Vec<(u64, redis::PubSub)> = cons
        .iter_mut()
        .map(|(id, con)| {
            let mut pubsub = con.as_pubsub();
            pubsub.subscribe("news").expect("SUBSCRIBE");
            pubsub.psubscribe("ne*").expect("PSUBSCRIBE");
            pubsub
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            (*id, pubsub)
        })
        .collect();
    // One message published on each node, followers first, in turn.
    let mut order: Vec<u64> = cluster.nodes.iter().map(|n| n.id).collect();
    order.sort_by_key(|id| *id == leader);
    let mut published = Vec::new();
    for id in &order {
        let mut con = cluster.node(*id).connect();
        let payload = format!("from-node-{id}");
        let started = Instant::now();
        let receivers: i64 = run(&mut con, &["PUBLISH", "news", &payload]);
        println!(
            "PUBLISH on node {id} (leader: {}): {receivers} receivers reported, {} ms",
            *id == leader,
            started.elapsed().as_millis()
        );
        published.push(payload);
    }
    for (id, pubsub) in &mut subscribers {
        let mut by_channel = Vec::new();
        let mut by_pattern = Vec::new();
        // Two deliveries (channel and pattern) per message; bounded by the read timeout.
        for _ in 0..published.len() * 2 {
            let msg = pubsub
                .get_message()
                .unwrap_or_else(|e| panic!("subscriber on node {id}: {e}"));
            assert_eq!(msg.get_channel_name(), "news");
            let payload: String = msg.get_payload().unwrap();
            if msg.from_pattern() {
                assert_eq!(msg.get_pattern::<String>().unwrap(), "ne*");
                by_pattern.push(payload);
            } else {
                by_channel.push(payload);
            }
        }
        assert_eq!(by_channel, published, "SUBSCRIBE on node {id}");
        assert_eq!(by_pattern, published, "PSUBSCRIBE on node {id}");
    }
}

#[test]
fn waiters_that_reconnect_after_a_leader_kill_keep_their_place_or_find_their_grant() {
    let _serial = serial();
    let mut cluster = Cluster::start(3, &[]);
    let old = cluster.wait_leader(Duration::from_secs(20));
    let f1 = cluster.other_than(&[old]);
    let f2 = cluster.other_than(&[old, f1]);
    let mut holder = cluster.node(f1).connect();
    let held: i64 = run(&mut holder, &["LOCK", "q", "a", "60000"]);
    // b waits on the leader itself (its connection dies with it); c waits through a
    // follower, which relays to the leader (its relay dies with it).
    let waiting = |addr: String, owner: &'static str| {
        thread::spawn(move || {
            let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
            let mut con = client.get_connection().unwrap();
            con.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            let reply: redis::RedisResult<Option<i64>> =
                cmd(&["LOCK", "q", owner, "60000", "WAIT", "60000"]).query(&mut con);
            reply.map_err(|e| common::err_text(&e))
        })
    };
    let mut on_f1 = cluster.node(f1).connect();
    let b = waiting(cluster.node(old).client_addr(), "b");
    eventually("b to queue", Duration::from_secs(10), || {
        lock_owners(&mut on_f1, "q", "waiters") == vec!["b"]
    });
    let c = waiting(cluster.node(f2).client_addr(), "c");
    eventually("c to queue", Duration::from_secs(10), || {
        lock_owners(&mut on_f1, "q", "waiters") == vec!["b", "c"]
    });
    let killed_at = Instant::now();
    cluster.kill(old);
    let new = cluster.wait_new_leader(old, FAILOVER_BOUND);
    let (b_lost, c_lost) = (b.join().unwrap(), c.join().unwrap());
    println!(
        "node {old} killed, node {new} leads after {} ms; b's LOCK got {b_lost:?}, c's {c_lost:?}",
        killed_at.elapsed().as_millis()
    );
    assert!(
        !matches!(b_lost, Ok(Some(_))) && !matches!(c_lost, Ok(Some(_))),
        "granted while a holder held the lock"
    );
    let mut on_new = cluster.node(new).connect();
    assert_eq!(
        lock_owners(&mut on_new, "q", "waiters"),
        vec!["b", "c"],
        "the queue survived the failover"
    );
    // b reconnects (to a survivor) and asks again: it keeps its place ahead of c.
    let survivor = cluster.other_than(&[old, new]);
    let b = waiting(cluster.node(survivor).client_addr(), "b");
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        lock_owners(&mut on_new, "q", "waiters"),
        vec!["b", "c"],
        "b kept its place"
    );
    let left: i64 = run(&mut holder, &["UNLOCK", "q", "a"]);
    assert_eq!(left, 0);
    let b_token = b.join().unwrap().expect("b's LOCK").expect("b was granted");
    assert!(b_token > held, "tokens keep increasing");
    assert_eq!(lock_owners(&mut on_new, "q", "holders"), vec!["b"]);
    assert_eq!(lock_owners(&mut on_new, "q", "waiters"), vec!["c"]);
    // b releases while c is away: c is granted in its absence, and finds the grant when
    // it asks again.
    let mut b_con = cluster.node(survivor).connect();
    let left: i64 = run(&mut b_con, &["UNLOCK", "q", "b"]);
    assert_eq!(left, 0);
    assert_eq!(lock_owners(&mut on_new, "q", "holders"), vec!["c"]);
    let mut c_con = cluster.node(f2).connect();
    let started = Instant::now();
    let c_token: Option<i64> = run(&mut c_con, &["LOCK", "q", "c", "60000", "WAIT", "10000"]);
    let c_token = c_token.expect("c finds its grant");
    println!(
        "b kept its place and got token {b_token}; c found its grant (token {c_token}) in {} ms",
        started.elapsed().as_millis()
    );
    assert!(c_token > b_token);
    assert_eq!(lock_owners(&mut on_new, "q", "holders"), vec!["c"]);
    let fence: i64 = run(&mut c_con, &["CHECKFENCE", "q", &c_token.to_string()]);
    assert_eq!(fence, 1);
    // c releases everything it holds (its question again counted as a reentrant hold).
    let mut unlocks = Vec::new();
    for _ in 0..3 {
        let left: i64 = run(&mut c_con, &["UNLOCK", "q", "c"]);
        unlocks.push(left);
        if left == 0 {
            break;
        }
    }
    println!("c's UNLOCKs returned {unlocks:?}");
    assert_eq!(unlocks.last(), Some(&0));
    assert_eq!(
        lock_owners(&mut on_new, "q", "holders"),
        Vec::<String>::new()
    );
}

#[test]
fn every_node_publishes_the_keyspace_notifications_its_setting_asks_for() {
    let _serial = serial();
    // Expiry events on every node from the start; the leader's setting changes later.
    let cluster = Cluster::start(3, &["--notify-keyspace-events", "Ex"]);
    let leader = cluster.wait_leader(Duration::from_secs(20));
    cluster.wait_replicated(leader, Duration::from_secs(20));
    let follower = cluster.other_than(&[leader]);
    let subscribe = |id: u64, channel: &str| {
        let stream = std::net::TcpStream::connect(cluster.node(id).client_addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        let mut raw = common::RawClient::new(stream);
        raw.send(&common::resp_request(&["SUBSCRIBE", channel]));
        raw.frame();
        raw
    };
    let mut expired_on_follower = subscribe(follower, "__keyevent@0__:expired");
    let mut sets_on_leader = subscribe(leader, "__keyspace@0__:job-lock");
    let mut con = cluster.node(leader).connect();
    let _: () = run(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "KA"]);
    let flags: Vec<String> = run(&mut con, &["CONFIG", "GET", "notify-keyspace-events"]);
    assert_eq!(flags, ["notify-keyspace-events", "AK"]);
    // A `SET NX PX` lock, written through the leader, whose holder never releases it.
    let _: () = run(&mut con, &["SET", "job-lock", "token-1", "NX", "PX", "300"]);
    let frame = |raw: &mut common::RawClient| raw.frame_text();
    assert!(
        frame(&mut sets_on_leader).ends_with("$3\r\nset\r\n"),
        "the leader publishes the set"
    );
    assert!(frame(&mut sets_on_leader).ends_with("$6\r\nexpire\r\n"));
    let expired = frame(&mut expired_on_follower);
    assert!(
        expired.ends_with("$8\r\njob-lock\r\n"),
        "the follower publishes the expiry: {expired:?}"
    );
    assert!(frame(&mut sets_on_leader).ends_with("$7\r\nexpired\r\n"));
    // A bad setting is refused in Redis's words and changes nothing.
    let err = common::run_err(&mut con, &["CONFIG", "SET", "notify-keyspace-events", "KQ"]);
    assert!(err.contains("Invalid event class character"), "{err}");
    let flags: Vec<String> = run(&mut con, &["CONFIG", "GET", "notify-keyspace-events"]);
    assert_eq!(flags, ["notify-keyspace-events", "AK"]);
}
