//! Leases against wall-clock steps (README, "Guarantees": leases count monotonic time): the nodes of a real cluster
//! run with libfaketime moving their wall clocks (never their monotonic clocks), as an NTP
//! step or a VM resume would. A lease granted for `ttl` must hold, for everyone, until at
//! least `ttl` after its request was sent, whatever any node's wall clock does; Unix times
//! (TIME, EXPIREAT) follow the leader's wall clock.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{run, unix_ms};
use redis::Value;

const TEN_MINUTES_S: i64 = 600;

/// A try-lock by `owner`: its token, or None when it is not granted (or the cluster could
/// not answer, during an election).
fn try_lock(con: &mut redis::Connection, resource: &str, owner: &str, ttl_ms: u64) -> Option<i64> {
    let reply: redis::RedisResult<Value> = redis::cmd("LOCK")
        .arg(resource)
        .arg(owner)
        .arg(ttl_ms)
        .query(con);
    match reply {
        Ok(Value::Int(token)) => Some(token),
        _ => None,
    }
}

/// Until `until` after `sent`, nobody else is granted `resource`, `token` stays the
/// current grant and `key` exists: the checks run every 50 ms through `con`.
fn still_held_until(
    con: &mut redis::Connection,
    resource: &str,
    token: i64,
    key: &str,
    sent: Instant,
    until: Duration,
) {
    let mut checks = 0;
    while sent.elapsed() < until {
        let at = sent.elapsed();
        assert_eq!(
            try_lock(con, resource, "intruder", 60_000),
            None,
            "{resource} granted to a second owner {at:?} after the first asked"
        );
        let current: redis::RedisResult<i64> =
            redis::cmd("CHECKFENCE").arg(resource).arg(token).query(con);
        if let Ok(current) = current {
            if sent.elapsed() < until {
                assert_eq!(current, 1, "token {token} called stale after {at:?}");
            }
        }
        let exists: redis::RedisResult<i64> = redis::cmd("EXISTS").arg(key).query(con);
        if let Ok(exists) = exists {
            if sent.elapsed() < until {
                assert_eq!(exists, 1, "{key} expired after {at:?}");
            }
        }
        checks += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(checks > 0, "no check ran before {until:?}");
}

/// Waits until `owner` is granted `resource`; the time from `sent`.
fn granted_after(con: &mut redis::Connection, resource: &str, sent: Instant) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if try_lock(con, resource, "next", 60_000).is_some() {
            return sent.elapsed();
        }
        assert!(Instant::now() < deadline, "{resource} never released");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The seconds of `TIME` on a node.
fn time_s(con: &mut redis::Connection) -> i64 {
    let time: Vec<String> = run(con, &["TIME"]);
    time[0].parse().expect("TIME seconds")
}

#[test]
fn a_leaders_wall_clock_stepped_ten_minutes_ahead_ends_no_lease_early() {
    let cluster = Cluster::start_with_fake_clocks(3, &[]);
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let follower = cluster.other_than(&[leader]);
    let mut on_leader = cluster.node(leader).connect();
    let mut on_follower = cluster.node(follower).connect();

    let sent = Instant::now();
    let token = try_lock(&mut on_follower, "res", "first", 3_000).expect("granted");
    run::<()>(&mut on_follower, &["SET", "plain", "v", "PX", "3000"]);
    let clock = cluster.node(leader).clock.as_ref().expect("fake clock");
    clock.set_offset_s(TEN_MINUTES_S);
    // The step is real: the leader's wall clock reads ten minutes ahead.
    assert!(time_s(&mut on_leader) >= unix_ms() / 1000 + TEN_MINUTES_S - 5);

    still_held_until(
        &mut on_follower,
        "res",
        token,
        "plain",
        sent,
        Duration::from_millis(2_800),
    );
    let released = granted_after(&mut on_follower, "res", sent);
    assert!(released >= Duration::from_millis(3_000), "{released:?}");
    println!("lease of 3000 ms ended {released:?} after it was asked for");

    // Unix times follow the leader's wall clock: a PXAT one minute ahead by its clock
    // lives one minute, not eleven or none.
    let leader_ms = time_s(&mut on_leader) * 1000;
    run::<()>(
        &mut on_follower,
        &["SET", "at", "v", "PXAT", &(leader_ms + 60_000).to_string()],
    );
    let pttl: i64 = run(&mut on_follower, &["PTTL", "at"]);
    assert!((55_000..=61_000).contains(&pttl), "PTTL {pttl}");
}

#[test]
fn a_leaders_wall_clock_stepped_back_then_forward_neither_stalls_nor_leaps_leases() {
    let cluster = Cluster::start_with_fake_clocks(3, &[]);
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let clock = cluster.node(leader).clock.as_ref().expect("fake clock");
    let mut con = cluster.node(cluster.other_than(&[leader])).connect();
    clock.set_offset_s(-TEN_MINUTES_S);

    let sent = Instant::now();
    let token = try_lock(&mut con, "res", "first", 3_000).expect("granted");
    run::<()>(&mut con, &["SET", "plain", "v", "PX", "4000"]);
    std::thread::sleep(Duration::from_millis(1_600));
    // Time kept running while the wall clock stood ten minutes back. A follower reads at
    // the last entry's time, and an entry comes at least every `time_checkpoint_ms`
    // (1 s) while something has a deadline: its PTTL may lag by that much, a stall by
    // the whole sleep.
    let pttl: i64 = run(&mut con, &["PTTL", "plain"]);
    assert!(pttl <= 3_700, "PTTL {pttl}: time stalled");
    // The wall clock is corrected: ten minutes forward at once.
    clock.set_offset_s(0);
    still_held_until(
        &mut con,
        "res",
        token,
        "plain",
        sent,
        Duration::from_millis(2_800),
    );
    let released = granted_after(&mut con, "res", sent);
    assert!(released >= Duration::from_millis(3_000), "{released:?}");
}

#[test]
fn a_follower_whose_clock_runs_ahead_wins_an_election_and_ends_no_lease_early() {
    let mut cluster = Cluster::start_with_fake_clocks(3, &[]);
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let followers: Vec<u64> = cluster
        .nodes
        .iter()
        .map(|n| n.id)
        .filter(|&id| id != leader)
        .collect();
    // One follower ten minutes ahead, the other ten minutes behind: whichever wins,
    // its wall clock is wrong.
    for (follower, offset) in followers.iter().zip([TEN_MINUTES_S, -TEN_MINUTES_S]) {
        let clock = cluster.node(*follower).clock.as_ref().expect("fake clock");
        clock.set_offset_s(offset);
    }
    let mut con = cluster.node(followers[0]).connect();
    let sent = Instant::now();
    let token = try_lock(&mut con, "res", "first", 4_000).expect("granted");
    run::<()>(&mut con, &["SET", "plain", "v", "PX", "4000"]);
    cluster.kill(leader);
    let new_leader = cluster.wait_new_leader(leader, Duration::from_secs(10));
    println!(
        "node {new_leader} leads {:?} after the lease was asked for",
        sent.elapsed()
    );
    let mut con = cluster.node(followers[0]).connect();
    still_held_until(
        &mut con,
        "res",
        token,
        "plain",
        sent,
        Duration::from_millis(3_800),
    );
    granted_after(&mut con, "res", sent);
}
