//! raftlock's own locks through the `redis` crate against the real binary: mutual
//! exclusion under contention, FIFO grants, wake-ups by apply events, leases that outlive
//! their client's connection, disconnected waiters, and locks that survive SIGKILL.
//!
//! Timing bounds are generous (the machine running the tests is shared and noisy): they
//! tell an event-driven wake-up from a lease running out, not milliseconds apart.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::{map_entries, run, run_err, value_text, Server};
use redis::Value;

/// How long a test waits for something the server does by itself (a disconnect noticed,
/// a queued request registered) before it fails.
const EVENTUALLY: Duration = Duration::from_secs(10);

/// One holder as LOCKINFO reports it.
#[derive(Debug, Clone, PartialEq)]
struct HolderInfo {
    owner: String,
    mode: String,
    count: i64,
    token: i64,
    ttl: i64,
}

/// One waiter as LOCKINFO reports it.
#[derive(Debug, Clone, PartialEq)]
struct WaiterInfo {
    owner: String,
    mode: String,
    wait: i64,
}

#[derive(Debug, Clone, PartialEq)]
struct LockInfo {
    mode: String,
    holders: Vec<HolderInfo>,
    token: Option<i64>,
    ttl: i64,
    waiters: Vec<WaiterInfo>,
}

fn int(value: &Value) -> i64 {
    match value {
        Value::Int(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn array(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        other => panic!("expected an array, got {other:?}"),
    }
}

fn get(fields: &[(String, Value)], name: &str) -> Value {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
        .unwrap_or_else(|| panic!("no field {name} in {fields:?}"))
}

/// LOCKINFO, parsed; `None` for a free resource. Works on RESP2 and RESP3 connections.
fn lock_info(con: &mut redis::Connection, resource: &str) -> Option<LockInfo> {
    let reply: Value = run(con, &["LOCKINFO", resource]);
    if reply == Value::Nil {
        return None;
    }
    let fields = map_entries(reply);
    Some(LockInfo {
        mode: value_text(&get(&fields, "mode")),
        holders: array(get(&fields, "holders"))
            .into_iter()
            .map(|holder| {
                let h = map_entries(holder);
                HolderInfo {
                    owner: value_text(&get(&h, "owner")),
                    mode: value_text(&get(&h, "mode")),
                    count: int(&get(&h, "count")),
                    token: int(&get(&h, "token")),
                    ttl: int(&get(&h, "ttl")),
                }
            })
            .collect(),
        token: match get(&fields, "token") {
            Value::Nil => None,
            token => Some(int(&token)),
        },
        ttl: int(&get(&fields, "ttl")),
        waiters: array(get(&fields, "waiters"))
            .into_iter()
            .map(|waiter| {
                let w = map_entries(waiter);
                WaiterInfo {
                    owner: value_text(&get(&w, "owner")),
                    mode: value_text(&get(&w, "mode")),
                    wait: int(&get(&w, "wait")),
                }
            })
            .collect(),
    })
}

fn holders(con: &mut redis::Connection, resource: &str) -> Vec<String> {
    lock_info(con, resource).map_or_else(Vec::new, |info| {
        info.holders.into_iter().map(|h| h.owner).collect()
    })
}

fn waiters(con: &mut redis::Connection, resource: &str) -> Vec<String> {
    lock_info(con, resource).map_or_else(Vec::new, |info| {
        info.waiters.into_iter().map(|w| w.owner).collect()
    })
}

/// Polls (the test polls; the server must not) until `done` holds, or fails the test
/// after `EVENTUALLY`.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + EVENTUALLY;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until LOCKINFO lists exactly `expected` as `resource`'s waiters, in order.
fn wait_for_waiters(con: &mut redis::Connection, resource: &str, expected: &[&str]) {
    eventually(&format!("{resource}'s waiters are {expected:?}"), || {
        waiters(con, resource) == expected
    });
}

/// LOCK/RLOCK that must be granted; returns the token.
fn lock(con: &mut redis::Connection, args: &[&str]) -> i64 {
    match run::<Value>(con, args) {
        Value::Int(token) => token,
        other => panic!("{} was not granted: {other:?}", args.join(" ")),
    }
}

/// A connection that is not a `redis` crate client: the test can drop its socket while
/// the server is still answering it.
struct RawWaiter(TcpStream);

impl RawWaiter {
    /// Sends `args` as one RESP request and does not wait for the reply.
    fn send(server: &Server, args: &[&str]) -> RawWaiter {
        let mut stream = server.raw();
        stream
            .write_all(&common::resp_request(args))
            .expect("raw write");
        RawWaiter(stream)
    }

    fn disconnect(self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// What one critical section of the contention test saw.
struct Hold {
    token: i64,
    /// After the grant's reply arrived.
    granted: Instant,
    /// Before UNLOCK was sent.
    releasing: Instant,
}

#[test]
fn contending_clients_keep_a_counter_exact_under_the_lock() {
    const CLIENTS: usize = 50;
    const ROUNDS: usize = 3;
    let server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "counter", "0"]);
    let holds = Mutex::new(Vec::new());
    let start = Barrier::new(CLIENTS);
    std::thread::scope(|scope| {
        for i in 0..CLIENTS {
            let (server, holds, start) = (&server, &holds, &start);
            scope.spawn(move || {
                let mut con = server.connect();
                let owner = format!("owner-{i}");
                start.wait();
                for _ in 0..ROUNDS {
                    let token = lock(&mut con, &["LOCK", "res", &owner, "5000", "WAIT", "0"]);
                    let granted = Instant::now();
                    let n: i64 = run(&mut con, &["GET", "counter"]);
                    run::<()>(&mut con, &["SET", "counter", &(n + 1).to_string()]);
                    let releasing = Instant::now();
                    let left: Value = run(&mut con, &["UNLOCK", "res", &owner]);
                    assert_eq!(
                        left,
                        Value::Int(0),
                        "{owner}'s 5 s lease ended under it (after {:?})",
                        releasing - granted
                    );
                    holds.lock().unwrap().push(Hold {
                        token,
                        granted,
                        releasing,
                    });
                }
            });
        }
    });
    let total = CLIENTS * ROUNDS;
    assert_eq!(run::<i64>(&mut con, &["GET", "counter"]), total as i64);
    let mut holds = holds.into_inner().unwrap();
    assert_eq!(holds.len(), total);
    holds.sort_by_key(|hold| hold.token);
    for pair in holds.windows(2) {
        assert!(pair[0].token < pair[1].token, "a token was given twice");
        assert!(
            pair[0].releasing < pair[1].granted,
            "token {} was granted before token {} was released",
            pair[1].token,
            pair[0].token
        );
    }
    assert_eq!(lock_info(&mut con, "res"), None, "free at the end");
}

#[test]
fn queued_requests_are_granted_in_arrival_order() {
    const WAITERS: usize = 10;
    let server = Server::start();
    let mut con = server.connect();
    let first = lock(&mut con, &["LOCK", "fifo", "holder", "30000"]);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    let mut arrived: Vec<String> = Vec::new();
    for i in 0..WAITERS {
        let owner = format!("w{i}");
        let mut waiter = server.connect();
        let order = order.clone();
        let thread_owner = owner.clone();
        threads.push(std::thread::spawn(move || {
            let owner = thread_owner;
            let token = lock(&mut waiter, &["LOCK", "fifo", &owner, "30000", "WAIT", "0"]);
            order.lock().unwrap().push((owner.clone(), token));
            let left: i64 = run(&mut waiter, &["UNLOCK", "fifo", &owner]);
            assert_eq!(left, 0);
        }));
        // The next request arrives only once this one is in the queue.
        arrived.push(owner);
        let expected: Vec<&str> = arrived.iter().map(String::as_str).collect();
        wait_for_waiters(&mut con, "fifo", &expected);
    }
    assert_eq!(run::<i64>(&mut con, &["UNLOCK", "fifo", "holder"]), 0);
    for thread in threads {
        thread.join().expect("waiter thread");
    }
    let order = order.lock().unwrap();
    let owners: Vec<&str> = order.iter().map(|(owner, _)| owner.as_str()).collect();
    assert_eq!(
        owners,
        arrived.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let mut last = first;
    for (owner, token) in order.iter() {
        assert!(*token > last, "{owner}'s token {token} after {last}");
        last = *token;
    }
}

#[test]
fn a_waiter_is_woken_by_unlock_not_by_its_lease() {
    const TTL_MS: &str = "10000";
    let server = Server::start();
    let mut con = server.connect();
    let mut latencies = Vec::new();
    for round in 0..5 {
        let holder = format!("h{round}");
        let waiter_owner = format!("w{round}");
        lock(&mut con, &["LOCK", "wake", &holder, TTL_MS]);
        let mut waiter = server.connect();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let token = lock(
                &mut waiter,
                &["LOCK", "wake", &waiter_owner, TTL_MS, "WAIT", "0"],
            );
            tx.send(Instant::now()).unwrap();
            run::<i64>(&mut waiter, &["UNLOCK", "wake", &waiter_owner]);
            token
        });
        let expected = format!("w{round}");
        wait_for_waiters(&mut con, "wake", &[expected.as_str()]);
        let unlocked = Instant::now();
        assert_eq!(run::<i64>(&mut con, &["UNLOCK", "wake", &holder]), 0);
        let woken = rx
            .recv_timeout(Duration::from_secs(9))
            .expect("the waiter was not woken before the holder's lease would end");
        thread.join().expect("waiter thread");
        latencies.push(woken.saturating_duration_since(unlocked));
    }
    latencies.sort();
    eprintln!("UNLOCK-to-grant latency over 5 rounds: {latencies:?}");
    assert!(
        latencies[latencies.len() - 1] < Duration::from_secs(2),
        "waiters were not woken promptly: {latencies:?}"
    );
}

#[test]
fn a_dropped_holder_keeps_its_lock_until_its_lease_ends() {
    const TTL_MS: u64 = 3000;
    let server = Server::start();
    let mut con = server.connect();
    let mut holder = server.connect();
    let sent = Instant::now();
    let token = lock(&mut holder, &["LOCK", "lease", "a", &TTL_MS.to_string()]);
    drop(holder);
    std::thread::sleep(Duration::from_millis(300));
    let info = lock_info(&mut con, "lease");
    if sent.elapsed() < Duration::from_millis(TTL_MS - 500) {
        let info = info.expect("the lock was freed when its holder's connection closed");
        assert_eq!(info.holders[0].owner, "a");
        assert_eq!(info.holders[0].token, token);
        assert_eq!(
            run::<i64>(&mut con, &["CHECKFENCE", "lease", &token.to_string()]),
            1
        );
    }
    let next = lock(&mut con, &["LOCK", "lease", "b", "10000", "WAIT", "0"]);
    let waited = sent.elapsed();
    assert!(next > token);
    // The lease counts from the entry that granted it, stamped after `sent`; the two
    // clocks are the same machine's, so only a little slack is needed.
    assert!(
        waited >= Duration::from_millis(TTL_MS - 100),
        "granted after {waited:?}, before the {TTL_MS} ms lease ended"
    );
    assert!(
        waited < Duration::from_millis(TTL_MS + 5000),
        "granted after {waited:?}: the lease did not end on time"
    );
    assert_eq!(holders(&mut con, "lease"), vec!["b"]);
}

#[test]
fn a_waiter_that_disconnects_leaves_the_queue() {
    let server = Server::start();
    let mut con = server.connect();
    lock(&mut con, &["LOCK", "gone", "a", "30000"]);
    let leaver = RawWaiter::send(&server, &["LOCK", "gone", "b", "30000", "WAIT", "0"]);
    wait_for_waiters(&mut con, "gone", &["b"]);
    let mut next = server.connect();
    let thread = std::thread::spawn(move || {
        let token = lock(&mut next, &["LOCK", "gone", "c", "30000", "WAIT", "0"]);
        (token, next)
    });
    wait_for_waiters(&mut con, "gone", &["b", "c"]);
    leaver.disconnect();
    wait_for_waiters(&mut con, "gone", &["c"]);
    assert_eq!(
        holders(&mut con, "gone"),
        vec!["a"],
        "the holder is untouched"
    );
    assert_eq!(run::<i64>(&mut con, &["UNLOCK", "gone", "a"]), 0);
    let (token, mut next) = thread.join().expect("waiter thread");
    let info = lock_info(&mut con, "gone").expect("held by c");
    assert_eq!(info.holders.len(), 1);
    assert_eq!(
        (info.holders[0].owner.as_str(), info.holders[0].token),
        ("c", token)
    );
    assert!(info.waiters.is_empty());
    assert_eq!(run::<i64>(&mut next, &["UNLOCK", "gone", "c"]), 0);
}

#[test]
fn a_wait_times_out_with_nil_and_leaves_the_queue() {
    let server = Server::start();
    let mut con = server.connect();
    lock(&mut con, &["LOCK", "t", "a", "30000"]);
    let mut waiter = server.connect();
    let sent = Instant::now();
    let reply: Value = run(&mut waiter, &["LOCK", "t", "b", "1000", "WAIT", "300"]);
    let waited = sent.elapsed();
    assert_eq!(reply, Value::Nil);
    assert!(
        waited >= Duration::from_millis(250),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "gave up after {waited:?}");
    assert!(waiters(&mut con, "t").is_empty());
    // The connection is usable again.
    assert_eq!(
        run::<Value>(&mut waiter, &["LOCK", "t", "b", "1000"]),
        Value::Nil
    );
}

#[test]
fn locks_queues_and_the_token_counter_survive_sigkill() {
    let mut server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "plain", "v"]);
    let plain: i64 = run(&mut con, &["FENCE", "plain"]);
    let held = lock(&mut con, &["LOCK", "held", "a", "60000"]);
    assert_eq!(lock(&mut con, &["LOCK", "held", "a", "60000"]), held);
    let x = lock(&mut con, &["RLOCK", "shared", "x", "60000"]);
    let y = lock(&mut con, &["RLOCK", "shared", "y", "60000"]);
    let _forever = RawWaiter::send(&server, &["LOCK", "held", "b", "60000", "WAIT", "0"]);
    wait_for_waiters(&mut con, "held", &["b"]);
    let _timed = RawWaiter::send(&server, &["RLOCK", "held", "c", "60000", "WAIT", "600000"]);
    wait_for_waiters(&mut con, "held", &["b", "c"]);
    let before = lock_info(&mut con, "held").unwrap();
    let shared_before = lock_info(&mut con, "shared").unwrap();
    let measured = Instant::now();
    let earlier = [plain, held, x, y];

    server.kill();
    server.restart();
    let mut con = server.connect();
    let down = measured.elapsed().as_millis() as i64;

    let after = lock_info(&mut con, "held").expect("the lock survived");
    assert_eq!(after.mode, "EX");
    assert_eq!(after.holders.len(), 1);
    let a = &after.holders[0];
    assert_eq!((a.owner.as_str(), a.count, a.token), ("a", 2, held));
    // The lease did not start over, and lost at most the time the server was down.
    // Cluster time stands still with no leader and resumes from the last entry's time:
    // what a read saw of the time since that entry (under `time_checkpoint_ms`, 1 s) is
    // given back, so the lease may show up to that much more than it did.
    assert!(
        a.ttl <= before.holders[0].ttl + 1_000,
        "{a:?} after {before:?}"
    );
    assert!(
        a.ttl >= before.holders[0].ttl - down - 1000,
        "lost more than the time down: {a:?}, down {down} ms"
    );
    let queued: Vec<(&str, &str)> = after
        .waiters
        .iter()
        .map(|w| (w.owner.as_str(), w.mode.as_str()))
        .collect();
    assert_eq!(queued, vec![("b", "EX"), ("c", "PR")]);
    assert_eq!(after.waiters[0].wait, -1, "WAIT 0 still waits forever");
    // As with the lease above: up to the time read since the last entry comes back.
    assert!(after.waiters[1].wait <= before.waiters[1].wait + 1_000);
    assert!(after.waiters[1].wait > 600_000 - down - 60_000);

    let shared_after = lock_info(&mut con, "shared").unwrap();
    let tokens = |info: &LockInfo| -> Vec<(String, i64)> {
        info.holders
            .iter()
            .map(|h| (h.owner.clone(), h.token))
            .collect()
    };
    assert_eq!(tokens(&shared_after), tokens(&shared_before));
    assert_eq!(
        run::<i64>(&mut con, &["CHECKFENCE", "held", &held.to_string()]),
        1
    );
    assert_eq!(
        run::<i64>(&mut con, &["CHECKFENCE", "shared", &x.to_string()]),
        1
    );

    let fresh = lock(&mut con, &["LOCK", "fresh", "z", "60000"]);
    assert!(
        earlier.iter().all(|&token| fresh > token),
        "token {fresh} after restart is not above every earlier one ({earlier:?})"
    );
    // The queue's survivors are served in order: the waiters' clients are gone with the
    // old process, so their grants are held until their leases end (or a LOCKCANCEL).
    assert_eq!(run::<i64>(&mut con, &["UNLOCK", "held", "a"]), 1);
    assert_eq!(run::<i64>(&mut con, &["UNLOCK", "held", "a"]), 0);
    let info = lock_info(&mut con, "held").unwrap();
    assert_eq!(info.holders[0].owner, "b");
    assert!(info.holders[0].token > fresh);
    assert_eq!(waiters(&mut con, "held"), vec!["c"]);
    assert_eq!(run::<i64>(&mut con, &["LOCKCANCEL", "held", "b"]), 1);
    assert_eq!(holders(&mut con, "held"), vec!["c"]);
}

#[test]
fn shared_and_exclusive_modes() {
    let server = Server::start();
    let mut con = server.connect();
    let a = lock(&mut con, &["RLOCK", "m", "a", "10000"]);
    let b = lock(&mut con, &["LOCK", "m", "b", "10000", "MODE", "PR"]);
    let c = lock(&mut con, &["RLOCK", "m", "c", "10000", "WAIT", "1000"]);
    assert!(a < b && b < c);
    assert_eq!(
        run::<Value>(&mut con, &["LOCK", "m", "d", "10000"]),
        Value::Nil
    );
    assert_eq!(
        run::<Value>(&mut con, &["LOCK", "m", "d", "10000", "MODE", "EX"]),
        Value::Nil
    );
    let info = lock_info(&mut con, "m").unwrap();
    assert_eq!(info.mode, "PR");
    assert_eq!(info.token, Some(c));
    let shared: Vec<(String, String)> = info
        .holders
        .iter()
        .map(|h| (h.owner.clone(), h.mode.clone()))
        .collect();
    assert_eq!(
        shared,
        vec![
            ("a".to_string(), "PR".to_string()),
            ("b".to_string(), "PR".to_string()),
            ("c".to_string(), "PR".to_string()),
        ]
    );

    // A queued writer holds back later readers, and gets in once every reader left.
    let mut writer = server.connect();
    let thread = std::thread::spawn(move || {
        let token = lock(&mut writer, &["LOCK", "m", "w", "10000", "WAIT", "0"]);
        (token, writer)
    });
    wait_for_waiters(&mut con, "m", &["w"]);
    assert_eq!(
        run::<Value>(&mut con, &["RLOCK", "m", "late", "10000"]),
        Value::Nil
    );
    for owner in ["a", "b", "c"] {
        assert_eq!(run::<i64>(&mut con, &["UNLOCK", "m", owner]), 0);
    }
    let (w, mut writer) = thread.join().expect("writer thread");
    assert!(w > c);
    let info = lock_info(&mut con, "m").unwrap();
    assert_eq!((info.mode.as_str(), info.token), ("EX", Some(w)));
    assert_eq!(
        run::<Value>(&mut con, &["RLOCK", "m", "late", "10000"]),
        Value::Nil
    );
    assert_eq!(run::<i64>(&mut writer, &["UNLOCK", "m", "w"]), 0);

    // The same reply shape in RESP3, as a map.
    let mut resp3 = server.connect_resp3();
    lock(&mut resp3, &["LOCK", "m", "e", "10000"]);
    let info = lock_info(&mut resp3, "m").unwrap();
    assert_eq!(info.holders[0].owner, "e");
    assert!(matches!(
        run::<Value>(&mut resp3, &["LOCKINFO", "m"]),
        Value::Map(_)
    ));
    assert_eq!(
        run::<Value>(&mut con, &["TYPE", "m"]),
        Value::SimpleString("lock".into())
    );
}

#[test]
fn reentrant_locks_need_as_many_unlocks() {
    let server = Server::start();
    let mut con = server.connect();
    let token = lock(&mut con, &["LOCK", "re", "a", "10000"]);
    assert_eq!(lock(&mut con, &["LOCK", "re", "a", "10000"]), token);
    assert_eq!(lock(&mut con, &["RLOCK", "re", "a", "10000"]), token);
    assert_eq!(lock_info(&mut con, "re").unwrap().holders[0].count, 3);
    for left in [2, 1, 0] {
        assert_eq!(run::<i64>(&mut con, &["UNLOCK", "re", "a"]), left);
    }
    assert_eq!(
        run_err(&mut con, &["UNLOCK", "re", "a"]),
        "NOTOWNER the lock is not held by this owner"
    );
}

#[test]
fn renew_extends_a_lease() {
    let server = Server::start();
    let mut con = server.connect();
    let sent = Instant::now();
    let token = lock(&mut con, &["LOCK", "rn", "a", "3000"]);
    assert_eq!(run::<i64>(&mut con, &["RENEW", "rn", "a", "60000"]), 1);
    assert!(
        sent.elapsed() < Duration::from_millis(2500),
        "too slow to tell a renewed lease from the first one"
    );
    let ttl = lock_info(&mut con, "rn").unwrap().ttl;
    assert!(ttl > 55_000, "ttl {ttl} after RENEW 60000");
    // Past the first lease: still held, same token.
    std::thread::sleep(
        Duration::from_millis(3000).saturating_sub(sent.elapsed()) + Duration::from_millis(300),
    );
    let info = lock_info(&mut con, "rn").expect("renewed lease still running");
    assert_eq!(
        (info.holders[0].owner.as_str(), info.token),
        ("a", Some(token))
    );
    assert_eq!(
        run_err(&mut con, &["RENEW", "rn", "b", "60000"]),
        "NOTOWNER the lock is not held by this owner"
    );
    // A short renewal ends the lease soon; RENEW after that answers 0.
    assert_eq!(run::<i64>(&mut con, &["RENEW", "rn", "a", "100"]), 1);
    eventually("the 100 ms lease ended", || {
        lock_info(&mut con, "rn").is_none()
    });
    assert_eq!(run::<i64>(&mut con, &["RENEW", "rn", "a", "1000"]), 0);
    assert_eq!(
        run::<i64>(&mut con, &["CHECKFENCE", "rn", &token.to_string()]),
        0
    );
}

#[test]
fn checkfence_tells_current_grants_from_stale_ones() {
    let server = Server::start();
    let mut con = server.connect();
    let a = lock(&mut con, &["LOCK", "cf", "a", "10000"]);
    assert_eq!(
        run::<i64>(&mut con, &["CHECKFENCE", "cf", &a.to_string()]),
        1
    );
    assert_eq!(run::<i64>(&mut con, &["FENCE", "cf"]), a);
    run::<i64>(&mut con, &["UNLOCK", "cf", "a"]);
    let b = lock(&mut con, &["LOCK", "cf", "b", "10000"]);
    assert!(b > a);
    assert_eq!(
        run::<i64>(&mut con, &["CHECKFENCE", "cf", &a.to_string()]),
        0
    );
    assert_eq!(
        run::<i64>(&mut con, &["CHECKFENCE", "cf", &b.to_string()]),
        1
    );

    // A plain Redis lock gets its token from the same counter.
    run::<()>(&mut con, &["SET", "plain", "owner-a", "NX", "PX", "10000"]);
    let plain: i64 = run(&mut con, &["FENCE", "plain"]);
    assert!(plain > b);
    assert_eq!(
        run::<i64>(&mut con, &["CHECKFENCE", "plain", &plain.to_string()]),
        1
    );
    assert_eq!(run::<i64>(&mut con, &["DEL", "plain"]), 1);
    run::<()>(&mut con, &["SET", "plain", "owner-b", "NX", "PX", "10000"]);
    assert_eq!(
        run::<i64>(&mut con, &["CHECKFENCE", "plain", &plain.to_string()]),
        0
    );
    let c = lock(&mut con, &["LOCK", "other", "c", "10000"]);
    assert!(c > plain);
}

#[test]
fn lock_commands_report_errors_in_plain_words() {
    let server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "s", "v"]);
    lock(&mut con, &["LOCK", "l", "a", "10000"]);
    let wrongtype = "WRONGTYPE Operation against a key holding the wrong kind of value";
    assert_eq!(run_err(&mut con, &["LOCK", "s", "a", "1000"]), wrongtype);
    assert_eq!(
        run_err(&mut con, &["LOCK", "s", "a", "1000", "WAIT", "0"]),
        wrongtype
    );
    assert_eq!(run_err(&mut con, &["GET", "l"]), wrongtype);
    assert_eq!(run_err(&mut con, &["SET", "l", "v"]), wrongtype);
    assert_eq!(run_err(&mut con, &["INCR", "l"]), wrongtype);
    assert_eq!(run_err(&mut con, &["EXPIRE", "l", "10"]), wrongtype);
    assert_eq!(run_err(&mut con, &["RENAME", "l", "x"]), wrongtype);
    assert_eq!(
        run_err(&mut con, &["UNLOCK", "l", "b"]),
        "NOTOWNER the lock is not held by this owner"
    );
    assert_eq!(
        run_err(&mut con, &["LOCK", "l", "a", "0"]),
        "ERR invalid ttl: must be 1 to 604800000 ms"
    );
    assert_eq!(
        run_err(&mut con, &["LOCK", "l", "a", "10", "WAIT", "-1"]),
        "ERR invalid wait timeout: must be 0 to 86400000 ms"
    );
    assert_eq!(
        run_err(&mut con, &["LOCK", "l", "", "10"]),
        "ERR owner must be 1 to 256 bytes"
    );
    assert_eq!(
        run_err(&mut con, &["LOCK", "l", "a", "10", "MODE", "CW"]),
        "ERR unknown lock mode: use EX or PR"
    );
    assert_eq!(
        run_err(&mut con, &["LOCK", "l", "a"]),
        "ERR wrong number of arguments for 'lock' command"
    );
    // DEL force-releases.
    assert_eq!(run::<i64>(&mut con, &["DEL", "l"]), 1);
    assert_eq!(lock_info(&mut con, "l"), None);
}

#[test]
fn del_hands_a_lock_to_its_next_waiter() {
    let server = Server::start();
    let mut con = server.connect();
    let old = lock(&mut con, &["LOCK", "d", "a", "30000"]);
    let mut waiter = server.connect();
    let thread =
        std::thread::spawn(move || lock(&mut waiter, &["LOCK", "d", "b", "30000", "WAIT", "0"]));
    wait_for_waiters(&mut con, "d", &["b"]);
    assert_eq!(run::<i64>(&mut con, &["DEL", "d"]), 1);
    let token = thread.join().expect("waiter thread");
    assert!(token > old);
    assert_eq!(holders(&mut con, "d"), vec!["b"]);
    assert_eq!(
        run::<i64>(&mut con, &["CHECKFENCE", "d", &old.to_string()]),
        0
    );
}

#[test]
fn flushall_answers_waiting_clients_with_nil() {
    let server = Server::start();
    let mut con = server.connect();
    lock(&mut con, &["LOCK", "f", "a", "30000"]);
    let mut waiter = server.connect();
    let thread = std::thread::spawn(move || {
        run::<Value>(&mut waiter, &["LOCK", "f", "b", "30000", "WAIT", "0"])
    });
    wait_for_waiters(&mut con, "f", &["b"]);
    run::<()>(&mut con, &["FLUSHALL"]);
    assert_eq!(thread.join().expect("waiter thread"), Value::Nil);
    assert_eq!(lock_info(&mut con, "f"), None);
}

/// Redis runs nothing a client pipelined behind a blocked command until it unblocks; a
/// client that pipelines LOCK ... WAIT with its critical section relies on that.
#[test]
fn commands_pipelined_behind_a_blocked_lock_wait_for_the_grant() {
    let server = Server::start();
    let mut con = server.connect();
    lock(&mut con, &["LOCK", "p", "a", "30000"]);
    let mut waiter = server.connect();
    let thread = std::thread::spawn(move || {
        redis::pipe()
            .cmd("LOCK")
            .arg("p")
            .arg("b")
            .arg("30000")
            .arg("WAIT")
            .arg("0")
            .cmd("SET")
            .arg("guarded")
            .arg("by-b")
            .query::<(i64, String)>(&mut waiter)
            .expect("pipeline")
    });
    wait_for_waiters(&mut con, "p", &["b"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        run::<Value>(&mut con, &["GET", "guarded"]),
        Value::Nil,
        "b's write ran while a held the lock"
    );
    assert_eq!(run::<i64>(&mut con, &["UNLOCK", "p", "a"]), 0);
    let (_, ok) = thread.join().expect("waiter thread");
    assert_eq!(ok, "OK");
    assert_eq!(run::<String>(&mut con, &["GET", "guarded"]), "by-b");
}
