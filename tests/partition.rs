//! Real partitions: three nodes (five in one test), each in a network namespace of its own,
//! and iptables rules that drop the packets between chosen nodes without closing anything,
//! as a broken switch or a firewall does (`common::netns`). Test clients reach every node
//! all along.
//!
//! What they prove: a leader cut off from its majority steps down within about an election
//! timeout and refuses at once what it could not commit; the majority elects another; when
//! the partition heals, every node follows one leader within about a second, and a node
//! that comes back deposes no healthy leader; a connection stalled for seconds resumes at
//! once when the packets flow again.
//!
//! The times are printed (`cargo nextest run --test partition --no-capture`); the bounds
//! asserted are generous, for debug builds on a small shared machine.

mod common;

use std::time::{Duration, Instant};

use common::netns::NetCluster;
use common::{cmd, err_text, run};

/// openraft's election and check-quorum steps in the node logs, for a failure's diagnosis.
const LOG: &[&str] = &["--log-level", "warn,raftlock=info,openraft::engine=info"];
/// The nodes' `election_timeout_max_ms` (the default): also the leader lease.
const ELECTION_TIMEOUT_MAX: Duration = Duration::from_millis(600);
/// How long a leader cut off may keep saying it leads: an election timeout, plus the tick
/// that notices and some slack for a loaded machine.
const STEP_DOWN_BOUND: Duration = Duration::from_millis(2500);
/// How long a healed cluster may take to follow one leader and serve on every node
/// (the goal is one second).
const SETTLE_BOUND: Duration = Duration::from_secs(3);
/// How long a command may take to be refused by a node that knows it is cut off.
const AT_ONCE: Duration = Duration::from_millis(500);

/// Polls `done` every 20 ms for up to `within`; how long it took.
fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

fn term(cluster: &NetCluster, id: u64) -> u64 {
    cluster.node(id).raft_info()["current_term"]
        .parse()
        .expect("current_term")
}

/// Runs `args` on node `id` (a reply may take up to 10 s): the reply or the error as the
/// server worded it, and how long it took.
fn attempt(
    cluster: &NetCluster,
    id: u64,
    args: &[&str],
) -> (Result<redis::Value, String>, Duration) {
    let mut con = cluster
        .node(id)
        .connect_waiting(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connect to node {id}: {e}"));
    let started = Instant::now();
    let reply = cmd(args)
        .query::<redis::Value>(&mut con)
        .map_err(|e| err_text(&e));
    (reply, started.elapsed())
}

/// Whether a LOCK through node `id` is granted within a second.
fn locks_through(cluster: &NetCluster, id: u64) -> bool {
    let Ok(mut con) = cluster.node(id).connect_waiting(Duration::from_secs(1)) else {
        return false;
    };
    let resource = format!("settled-{id}");
    cmd(&["LOCK", &resource, "probe", "60000"])
        .query::<i64>(&mut con)
        .is_ok()
}

/// Whether every node names `leader` (RAFT.INFO) and a LOCK through each is granted.
fn all_follow(cluster: &NetCluster, leader: u64) -> bool {
    cluster.nodes.iter().all(|n| {
        n.connect_waiting(Duration::from_secs(1))
            .is_ok_and(|mut con| {
                let info: redis::RedisResult<String> = redis::cmd("RAFT.INFO").query(&mut con);
                info.is_ok_and(|text| {
                    common::cluster::parse_info(&text)["leader_id"] == leader.to_string()
                })
            })
    }) && cluster.nodes.iter().all(|n| locks_through(cluster, n.id))
}

/// Starts `n` nodes and has each lead once (RAFT.TRANSFER-LEADER), so that every node
/// holds a connection to every other, as in a cluster that has run a while: a partition
/// then stalls connections rather than finding none. Returns the cluster and its leader.
fn cluster_with_every_link_open(n: u64) -> (NetCluster, u64) {
    let cluster = NetCluster::start(n, LOG);
    let first = cluster.wait_leader(Duration::from_secs(20));
    let mut leader = first;
    for next in cluster.nodes.iter().map(|n| n.id).filter(|id| *id != first) {
        wait_until("a leadership transfer", Duration::from_secs(30), || {
            let mut con = cluster.node(leader).connect();
            let _ =
                cmd(&["RAFT.TRANSFER-LEADER", &next.to_string()]).query::<redis::Value>(&mut con);
            leader = cluster.wait_leader(Duration::from_secs(20));
            leader == next
        });
    }
    (cluster, leader)
}

/// Waits for a leader among the nodes other than `old` that serves writes; its id and how
/// long after `since` it did.
fn wait_other_leader(cluster: &NetCluster, old: u64, since: Instant) -> (u64, Duration) {
    let mut leader = 0;
    wait_until(
        "the majority to elect a leader",
        Duration::from_secs(15),
        || {
            let masters: Vec<u64> = cluster
                .masters()
                .into_iter()
                .filter(|m| *m != old)
                .collect();
            let [id] = masters[..] else { return false };
            leader = id;
            locks_through(cluster, id)
        },
    );
    (leader, since.elapsed())
}

#[test]
fn a_leader_cut_off_steps_down_within_an_election_timeout_and_refuses_at_once() {
    let (mut cluster, old) = cluster_with_every_link_open(3);
    let cut_at = Instant::now();
    cluster.isolate(old);
    // A write sent as the cut happens is proposed and cannot commit: once the leader steps
    // down it is answered at once (it may still be applied), not after the commit timeout.
    let in_flight = std::thread::scope(|scope| {
        let write = scope.spawn(|| attempt(&cluster, old, &["SET", "in-flight", "v"]));
        let stepped_down = wait_until(
            "the cut-off leader to stop saying master",
            STEP_DOWN_BOUND,
            || cluster.node(old).role() != "master",
        );
        (stepped_down, write.join().expect("in-flight write"))
    });
    let (stepped_down, (in_flight, in_flight_took)) = in_flight;
    let err = in_flight.expect_err("a write on a cut-off leader was acknowledged");
    assert!(err.starts_with("TRYAGAIN"), "in-flight write: {err}");
    assert!(
        in_flight_took < STEP_DOWN_BOUND + AT_ONCE,
        "the in-flight write was answered after {in_flight_took:?}"
    );
    // Nor does INFO or SENTINEL name it.
    let info: String = common::run(&mut cluster.node(old).connect(), &["INFO", "replication"]);
    assert!(
        info.contains("role:slave"),
        "INFO on the old leader: {info}"
    );
    let named: Option<(String, u16)> = common::run(
        &mut cluster.node(old).connect(),
        &["SENTINEL", "get-master-addr-by-name", "raftlock"],
    );
    assert_ne!(
        named.map(|(host, _)| host),
        Some(cluster.node(old).ip.clone()),
        "SENTINEL on the old leader still names it"
    );

    // A read, a write and a grant: each refused at once, in words that say why.
    let mut refusals = Vec::new();
    for args in [
        &["GET", "k"][..],
        &["SET", "k", "minority"],
        &["LOCK", "minority-lock", "m", "60000"],
    ] {
        let (reply, took) = attempt(&cluster, old, args);
        let err = reply.expect_err("a node cut off from the majority answered");
        assert!(
            err.starts_with("NOLEADER") && err.contains("majority"),
            "{}: {err}",
            args[0]
        );
        assert!(took < AT_ONCE, "{} took {took:?} to be refused", args[0]);
        refusals.push(format!("{} {} ms", args[0], took.as_millis()));
    }

    let (new, elected) = wait_other_leader(&cluster, old, cut_at);
    println!(
        "leader {old} cut off: it stopped saying master {} ms after the cut (election timeout \
         max {} ms); a write in flight was answered after {} ms; refused {}; node {new} leads \
         and granted a LOCK {} ms after the cut",
        stepped_down.as_millis(),
        ELECTION_TIMEOUT_MAX.as_millis(),
        in_flight_took.as_millis(),
        refusals.join(", "),
        elected.as_millis()
    );
}

#[test]
fn after_a_leader_partition_heals_all_follow_the_new_leader_at_once_and_its_term_holds() {
    let (mut cluster, old) = cluster_with_every_link_open(3);
    cluster.isolate(old);
    let (new, _) = wait_other_leader(&cluster, old, Instant::now());
    let term_before = term(&cluster, new);
    // Long enough for many election timeouts on the cut-off side, and for TCP to back
    // off its retransmissions on the stalled connections to seconds.
    std::thread::sleep(Duration::from_secs(8));
    let old_term = term(&cluster, old);
    assert!(
        old_term <= term_before,
        "the cut-off node raised its term to {old_term} (the majority's is {term_before})"
    );

    let healed_at = Instant::now();
    cluster.heal();
    let settled = wait_until(
        "every node to follow the new leader and serve LOCK",
        SETTLE_BOUND,
        || all_follow(&cluster, new),
    );
    println!(
        "healed after the old leader {old} was cut off: every node named node {new} and \
         granted a LOCK {} ms after the heal",
        settled.as_millis()
    );
    assert_eq!(cluster.masters(), vec![new], "the new leader was deposed");
    assert_eq!(
        term(&cluster, new),
        term_before,
        "the rejoining node changed the term"
    );
    assert!(healed_at.elapsed() < SETTLE_BOUND * 2);
}

#[test]
fn a_follower_cut_off_for_seconds_is_refused_at_once_and_deposes_nobody_when_healed() {
    let (mut cluster, leader) = cluster_with_every_link_open(3);
    let follower = cluster.other_than(&[leader]);
    let term_before = term(&cluster, leader);
    let cut_at = Instant::now();
    cluster.isolate(follower);

    // Once it knows it is cut off, its clients are refused at once.
    let mut refused = Duration::ZERO;
    let found_out = wait_until(
        "the cut-off follower to refuse at once",
        Duration::from_secs(10),
        || {
            let (reply, took) =
                attempt(&cluster, follower, &["LOCK", "minority-lock", "m", "60000"]);
            refused = took;
            matches!(reply, Err(e) if e.contains("majority")) && took < AT_ONCE
        },
    );
    // Meanwhile the leader serves.
    assert!(
        locks_through(&cluster, leader),
        "the leader stopped serving"
    );
    std::thread::sleep(Duration::from_secs(4).saturating_sub(cut_at.elapsed()));

    let healed_at = Instant::now();
    cluster.heal();
    let settled = wait_until(
        "the follower to follow the leader again",
        SETTLE_BOUND,
        || all_follow(&cluster, leader),
    );
    println!(
        "follower {follower} cut off: refused a LOCK in {} ms, {} ms after the cut; healed \
         after {} ms, every node followed node {leader} and granted a LOCK {} ms after the heal",
        refused.as_millis(),
        found_out.as_millis(),
        (healed_at - cut_at).as_millis(),
        settled.as_millis()
    );
    assert_eq!(cluster.masters(), vec![leader], "the leader was deposed");
    assert_eq!(
        term(&cluster, leader),
        term_before,
        "the rejoining follower changed the term"
    );
}

#[test]
fn replication_to_a_follower_resumes_at_once_after_its_link_stalled_for_seconds() {
    let (mut cluster, leader) = cluster_with_every_link_open(3);
    let follower = cluster.other_than(&[leader]);
    let term_before = term(&cluster, leader);
    // Only the link between the leader and one follower: it stalls, the cluster writes on.
    cluster.cut(leader, follower);
    let stalled_at = Instant::now();
    let mut con = cluster.node(leader).connect();
    let mut written = 0;
    while stalled_at.elapsed() < Duration::from_secs(7) {
        let _: i64 = common::run(&mut con, &["INCR", "during-stall"]);
        written += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let commit: u64 = cluster.node(leader).raft_info()["commit_index"]
        .parse()
        .expect("commit_index");

    cluster.heal();
    let caught_up = wait_until(
        "replication to the follower to resume",
        SETTLE_BOUND,
        || {
            let applied = cluster.node(follower).raft_info()["last_applied_index"].parse::<u64>();
            applied.is_ok_and(|a| a >= commit)
        },
    );
    println!(
        "link {leader}-{follower} stalled for 7 s ({written} writes meanwhile): the follower \
         applied index {commit} {} ms after the packets flowed again",
        caught_up.as_millis()
    );
    assert_eq!(cluster.masters(), vec![leader], "the leader was deposed");
    assert_eq!(
        term(&cluster, leader),
        term_before,
        "the stalled follower changed the term"
    );
    let value: i64 = common::run(
        &mut cluster.node(follower).connect(),
        &["GET", "during-stall"],
    );
    assert_eq!(value, written);
}

#[test]
fn five_nodes_split_two_to_three_follow_one_leader_at_once_after_the_heal() {
    let (mut cluster, old) = cluster_with_every_link_open(5);
    // The leader and one follower on one side, the three others on the other.
    let minority = [old, cluster.other_than(&[old])];
    let majority: Vec<u64> = cluster
        .nodes
        .iter()
        .map(|n| n.id)
        .filter(|id| !minority.contains(id))
        .collect();
    let cut_at = Instant::now();
    for a in minority {
        for b in &majority {
            cluster.cut(a, *b);
        }
    }
    let stepped_down = wait_until(
        "the cut-off leader to stop saying master",
        STEP_DOWN_BOUND,
        || cluster.node(old).role() != "master",
    );
    let (new, elected) = wait_other_leader(&cluster, old, cut_at);
    assert!(majority.contains(&new), "node {new} of the minority leads");
    let term_before = term(&cluster, new);
    std::thread::sleep(Duration::from_secs(5));

    cluster.heal();
    let settled = wait_until(
        "all five to follow the new leader and serve LOCK",
        SETTLE_BOUND,
        || all_follow(&cluster, new),
    );
    println!(
        "five nodes split {minority:?} | {majority:?}: the old leader {old} stopped saying master \
         {} ms after the cut, node {new} granted a LOCK {} ms after it; healed after 5 s, all \
         five followed node {new} and granted a LOCK {} ms after the heal",
        stepped_down.as_millis(),
        elected.as_millis(),
        settled.as_millis()
    );
    assert_eq!(cluster.masters(), vec![new], "the new leader was deposed");
    assert_eq!(
        term(&cluster, new),
        term_before,
        "the minority changed the term"
    );
}

#[test]
fn protected_mode_refuses_other_hosts_until_the_default_user_has_a_password() {
    let cluster = NetCluster::start(1, &[]);
    let node = cluster.node(1);
    let mut con = node.connect();
    let _: () = run(&mut con, &["CONFIG", "SET", "protected-mode", "yes"]);
    // The test process is another host to the node: refused, in Redis's words.
    let mut raw = std::net::TcpStream::connect(node.client_addr()).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::io::Write::write_all(&mut raw, b"PING\r\n").unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut raw, &mut reply).expect("read until closed");
    assert!(
        reply.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."),
        "{reply:?}"
    );
    assert!(reply.ends_with("accepting connections from the outside.\r\n"));
    // The cluster's own hosts (here the node's own address) are served.
    let inside = node.run_inside(
        "redis-cli",
        &[
            "-h", &node.ip, "-p", "7000", "ACL", "SETUSER", "default", ">s3cret",
        ],
    );
    assert_eq!(inside.trim(), "OK");
    // With a password on the default user, other hosts are served again (and must AUTH).
    let client = redis::Client::open(format!("redis://:s3cret@{}/", node.client_addr())).unwrap();
    let mut con = client
        .get_connection()
        .expect("served once a password is set");
    let pong: String = run(&mut con, &["PING"]);
    assert_eq!(pong, "PONG");
}
