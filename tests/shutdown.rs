//! Graceful shutdown of the real binary: SIGTERM to the leader of a 3-node cluster under
//! load from clients on every node, and the SHUTDOWN command on a single node.
//!
//! The tests run one at a time (`serial`), as the cluster tests do.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{cmd, run, run_err, Server};

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How long a stopped leader's process may take to exit: its `--shutdown-timeout-ms`
/// (10 s by default) and a margin for a debug build on a shared machine.
const EXIT_BOUND: Duration = Duration::from_secs(20);
const CLIENTS: usize = 6;

/// What one client had acknowledged: its counter's last INCR reply, and every SET.
#[derive(Default)]
struct Acknowledged {
    counter: i64,
    sets: BTreeMap<String, String>,
    /// When each write was acknowledged.
    times: Vec<Instant>,
}

/// A client that writes through the node at `ports[first]`, and on any error moves to the
/// next node and goes on (a write whose reply was lost counts as not acknowledged).
fn writer(client: usize, ports: Vec<u16>, stop: Arc<AtomicBool>) -> Acknowledged {
    let mut acked = Acknowledged::default();
    let mut at = client % ports.len();
    let mut con: Option<redis::Connection> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = con.as_mut() else {
            let url = format!("redis://127.0.0.1:{}/", ports[at]);
            con = redis::Client::open(url)
                .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
                .ok();
            if let Some(c) = con.as_mut() {
                let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
            } else {
                at = (at + 1) % ports.len();
                thread::sleep(Duration::from_millis(10));
            }
            continue;
        };
        n += 1;
        let key = format!("shutdown:{client}:{n}");
        let value = format!("v{n}");
        let incr: redis::RedisResult<i64> = cmd(&["INCR", &format!("counter:{client}")]).query(c);
        let set: redis::RedisResult<()> = incr.and_then(|count| {
            acked.counter = count;
            acked.times.push(Instant::now());
            cmd(&["SET", &key, &value]).query(c)
        });
        match set {
            Ok(()) => {
                acked.sets.insert(key, value);
                acked.times.push(Instant::now());
            }
            Err(_) => {
                con = None;
                at = (at + 1) % ports.len();
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
    acked
}

/// The longest time between two acknowledged writes (of any client) from `from` on.
fn longest_gap(mut times: Vec<Instant>, from: Instant) -> Duration {
    times.retain(|t| *t >= from);
    times.sort();
    times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

#[test]
fn sigterm_to_the_leader_under_load_loses_no_acknowledged_write_and_exits_zero() {
    let _serial = serial();
    let mut cluster = Cluster::start(3, &[]);
    let old = cluster.wait_leader(Duration::from_secs(30));
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (ports, stop) = (ports.clone(), stop.clone());
            thread::spawn(move || writer(client, ports, stop))
        })
        .collect();
    thread::sleep(Duration::from_millis(1500));

    let signalled = Instant::now();
    let status = cluster.terminate(old, EXIT_BOUND);
    let exited_after = signalled.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!(
            "the leader did not exit within {EXIT_BOUND:?}:\n{}",
            cluster.logs()
        )
    });
    assert!(
        status.success(),
        "the leader exited with {status}:\n{}",
        cluster.logs()
    );
    let new = cluster.wait_new_leader(old, Duration::from_secs(15));
    thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<Acknowledged> = writers
        .into_iter()
        .map(|w| w.join().expect("writer thread"))
        .collect();

    let mut con = cluster.node(new).connect();
    let mut sets = 0;
    for (client, acked) in acked.iter().enumerate() {
        let count: i64 = run(&mut con, &["GET", &format!("counter:{client}")]);
        assert!(
            count >= acked.counter,
            "client {client}'s counter is {count}, but INCR acknowledged {}",
            acked.counter
        );
        for (key, value) in &acked.sets {
            let stored: Option<String> = run(&mut con, &["GET", key]);
            assert_eq!(stored.as_deref(), Some(value.as_str()), "{key} was lost");
        }
        sets += acked.sets.len();
    }
    let after: Vec<usize> = acked
        .iter()
        .map(|a| a.times.iter().filter(|t| **t > signalled).count())
        .collect();
    assert!(
        after.iter().sum::<usize>() > 0,
        "no write was acknowledged after the leader stopped:\n{}",
        cluster.logs()
    );
    let from = signalled - Duration::from_millis(500);
    let client_gap = acked
        .iter()
        .map(|a| longest_gap(a.times.clone(), from))
        .max()
        .unwrap_or_default();
    let times: Vec<Instant> = acked.into_iter().flat_map(|a| a.times).collect();
    let gap = longest_gap(times, from);
    let old_log = cluster.node(old).log();
    eprintln!(
        "leader {old} exited 0 after {} ms, new leader {new}; {sets} SETs acknowledged and \
         found; longest pause in acknowledged writes around the stop: {} ms (cluster), {} ms \
         (one client, reconnecting included)",
        exited_after.as_millis(),
        gap.as_millis(),
        client_gap.as_millis()
    );
    // For the record of a slow stop: what the stopped node did.
    if exited_after > Duration::from_secs(1) {
        let lines: Vec<&str> = old_log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(60)..];
        eprintln!(
            "the stop took over a second; its log ends:\n{}",
            tail.join("\n")
        );
    }
    assert!(
        old_log.contains("leadership handed over"),
        "the leader stopped without handing over:\n{old_log}"
    );
}

#[test]
fn sigint_to_a_follower_exits_zero_and_the_others_keep_writing() {
    let _serial = serial();
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let follower = cluster.other_than(&[leader]);
    let mut con = cluster.node(leader).connect();
    run::<()>(&mut con, &["SET", "before", "1"]);
    let status = cluster
        .stop_by_signal(follower, "INT", EXIT_BOUND)
        .unwrap_or_else(|| panic!("the follower did not exit:\n{}", cluster.logs()));
    assert!(status.success(), "the follower exited with {status}");
    assert_eq!(cluster.leader(), Some(leader), "leadership moved");
    // The two left keep writing. (On a loaded machine the leader may still step down and
    // be elected again: a write is retried on whichever of them leads.)
    let writer = common::wait_until_a_leader_writes(
        Duration::from_secs(30),
        || {
            let id = cluster.leader()?;
            Some((id, cluster.node(id).try_connect().ok()?))
        },
        || cluster.logs(),
    );
    let mut con = cluster.node(writer).connect();
    run::<()>(&mut con, &["SET", "after", "2"]);
    let values: Vec<String> = run(&mut con, &["MGET", "before", "after"]);
    assert_eq!(values, ["1", "2"]);
    assert!(!cluster
        .node(follower)
        .log()
        .contains("leadership handed over"));
}

#[test]
fn shutdown_command_stops_a_node_that_then_restarts_with_its_data() {
    let _serial = serial();
    let mut server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "before", "1"]);
    assert_eq!(
        run_err(&mut con, &["SHUTDOWN", "ABORT"]),
        "ERR No shutdown in progress."
    );
    assert_eq!(
        run_err(&mut con, &["SHUTDOWN", "SAVE", "NOSAVE"]),
        "ERR syntax error"
    );
    assert_eq!(
        run_err(&mut con, &["SHUTDOWN", "LATER"]),
        "ERR syntax error"
    );
    let closed: redis::RedisResult<redis::Value> = cmd(&["SHUTDOWN", "NOSAVE"]).query(&mut con);
    assert!(
        closed.is_err(),
        "SHUTDOWN answered {closed:?} instead of closing"
    );
    let status = server
        .wait_exit(EXIT_BOUND)
        .unwrap_or_else(|| panic!("SHUTDOWN did not stop the node: {}", server.log()));
    assert!(status.success(), "exit status {status}: {}", server.log());
    server.restart();
    let mut con = server.connect();
    let before: String = run(&mut con, &["GET", "before"]);
    assert_eq!(before, "1");
}
