//! The Raft port's handshake against real nodes: a cluster that shares a secret works; a
//! node with the wrong secret, or of another cluster, is refused by its peers (it can
//! neither vote nor append, nor be appended to), and the cluster keeps its leader and its
//! committed writes. With `--tls-cluster`, the Raft port speaks TLS and a node whose
//! certificate another CA signed is refused the same way. The handshake's own cases are unit tests in
//! `src/raft/handshake_tests.rs`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::pki::Pki;
use common::run;

const SECRET: &[&str] = &["--cluster-secret", "correct horse battery staple"];

/// Long enough for a refused node to stand for election several times (election timeout
/// 300-600 ms), and for the leader to retry it at many heartbeats.
const REFUSED_FOR: Duration = Duration::from_secs(3);

fn raft_number(cluster: &Cluster, id: u64, field: &str) -> u64 {
    cluster.node(id).raft_info()[field]
        .parse()
        .unwrap_or_else(|e| panic!("node {id} {field}: {e}"))
}

/// Waits until node `id`'s log contains `text`.
fn wait_for_log(cluster: &Cluster, id: u64, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cluster.node(id).log().contains(text) {
        assert!(
            Instant::now() < deadline,
            "node {id} never logged {text:?}; logs:\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Restarts a follower with `own_args`, then checks over `REFUSED_FOR` that the leader
/// and its term stay, that writes still commit and are kept, and that the refused node
/// applies none of them; returns (leader, refused node).
fn refused_follower_changes_nothing(
    cluster: &mut Cluster,
    own_args: &[&str],
    wipe: bool,
) -> (u64, u64) {
    let leader = cluster.wait_leader(Duration::from_secs(10));
    let mut con = cluster.node(leader).connect();
    let _: () = run(&mut con, &["SET", "before", "1"]);
    cluster.wait_replicated(leader, Duration::from_secs(10));
    let term = raft_number(cluster, leader, "current_term");
    let bad = cluster.other_than(&[leader]);
    if wipe {
        cluster.kill(bad);
        std::fs::remove_dir_all(&cluster.node(bad).data_dir).expect("wipe the data dir");
    }
    cluster.restart_with(bad, own_args);
    let applied_at_restart = {
        // The restarted node answers once it listens; it may apply what its own log holds.
        let deadline = Instant::now() + Duration::from_secs(20);
        while cluster.node(bad).try_connect().is_err() {
            assert!(
                Instant::now() < deadline,
                "node {bad} did not start: {}",
                cluster.node(bad).log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(500));
        raft_number(cluster, bad, "last_applied_index")
    };
    let started = Instant::now();
    let mut writes = 0;
    while started.elapsed() < REFUSED_FOR {
        let _: () = run(&mut con, &["SET", &format!("during:{writes}"), "x"]);
        writes += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(cluster.leader(), Some(leader), "the leader stays");
    assert_eq!(
        raft_number(cluster, leader, "current_term"),
        term,
        "no election happened"
    );
    let committed = raft_number(cluster, leader, "commit_index");
    assert_eq!(
        raft_number(cluster, bad, "last_applied_index"),
        applied_at_restart,
        "the refused node was appended nothing (the leader committed up to {committed})"
    );
    assert!(raft_number(cluster, bad, "last_applied_index") < committed);
    let before: Option<String> = run(&mut con, &["GET", "before"]);
    assert_eq!(before.as_deref(), Some("1"));
    let last: Option<String> = run(&mut con, &["GET", &format!("during:{}", writes - 1)]);
    assert_eq!(last.as_deref(), Some("x"));
    (leader, bad)
}

#[test]
fn a_cluster_sharing_a_secret_elects_replicates_and_keeps_one_cluster_id() {
    // The secret from a file, as an operator keeps it out of `ps`.
    let secret_dir = tempfile::tempdir().expect("temp dir");
    let secret_file = secret_dir.path().join("cluster-secret");
    std::fs::write(&secret_file, format!("{}\n", SECRET[1])).expect("write the secret");
    let secret_file = secret_file.display().to_string();
    let cluster = Cluster::start(3, &["--cluster-secret-file", &secret_file]);
    let leader = cluster.wait_leader(Duration::from_secs(10));
    let mut con = cluster.node(leader).connect();
    let _: () = run(&mut con, &["SET", "k", "v"]);
    cluster.wait_replicated(leader, Duration::from_secs(10));
    // Every follower relays to the leader and every node applied the write.
    for node in &cluster.nodes {
        let mut con = node.connect();
        let got: Option<String> = run(&mut con, &["GET", "k"]);
        assert_eq!(got.as_deref(), Some("v"), "node {}", node.id);
        assert!(
            !node.log().contains("is unauthenticated"),
            "node {} warned",
            node.id
        );
    }
    let ids: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| std::fs::read_to_string(n.data_dir.join("cluster-id")).expect("cluster-id file"))
        .collect();
    assert!(ids[0].starts_with("ic-"), "{ids:?}");
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
}

#[test]
fn a_cluster_without_a_secret_warns_that_its_raft_port_is_unauthenticated() {
    let cluster = Cluster::start(3, &[]);
    for node in &cluster.nodes {
        assert!(
            node.log().contains("the Raft port is unauthenticated"),
            "node {}",
            node.id
        );
    }
}

#[test]
fn a_node_with_the_wrong_secret_cannot_join_vote_or_append() {
    let mut cluster = Cluster::start(3, SECRET);
    let (leader, bad) =
        refused_follower_changes_nothing(&mut cluster, &["--cluster-secret", "guess"], false);
    wait_for_log(
        &cluster,
        bad,
        "has another cluster secret than this node (--cluster-secret differs)",
    );
    wait_for_log(
        &cluster,
        leader,
        &format!("node {bad} has another cluster secret than this node"),
    );
    // Retried at every heartbeat, the handshake logs it at most once per 10 s per reason
    // (openraft logs its unreachable peer besides, as it does a dead one).
    let log = cluster.node(leader).log();
    let refusals = log
        .lines()
        .filter(|l| l.contains("raftlock::raft::handshake") && l.contains("refused"))
        .count();
    assert!(refusals <= 4, "{refusals} refusals logged:\n{log}");
    // The refused node knows no leader: it cannot serve.
    let mut con = cluster.node(bad).connect();
    let err = common::run_err(&mut con, &["SET", "from-bad", "1"]);
    assert!(
        err.starts_with("NOLEADER") || err.starts_with("TRYAGAIN"),
        "{err}"
    );
}

#[test]
fn a_node_of_another_cluster_is_refused() {
    let mut cluster = Cluster::start(3, SECRET);
    // Same secret, same addresses, a fresh data dir of another cluster.
    let (leader, bad) =
        refused_follower_changes_nothing(&mut cluster, &["--cluster-id", "another"], true);
    wait_for_log(
        &cluster,
        leader,
        &format!("node {bad} is of cluster 'another'"),
    );
    wait_for_log(&cluster, bad, "this node of cluster 'another'");
}

/// The serial number of the certificate the Raft port at `port` serves to a client that
/// presents the node certificate, read with `openssl s_client`.
fn raft_port_serial(pki: &Pki, port: u16) -> String {
    let script = format!(
        "openssl s_client -connect 127.0.0.1:{port} -CAfile {ca} -cert {crt} -key {key} </dev/null 2>/dev/null | openssl x509 -noout -serial",
        ca = pki.arg("ca.crt"),
        crt = pki.arg("server.crt"),
        key = pki.arg("server.key"),
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("run openssl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_raft_port_speaks_tls_and_refuses_a_node_whose_certificate_another_ca_signed() {
    let pki = Pki::generate();
    let flags = [
        "--tls-cluster".to_string(),
        "yes".into(),
        "--tls-cert-file".into(),
        pki.arg("server.crt"),
        "--tls-key-file".into(),
        pki.arg("server.key"),
        "--tls-ca-cert-file".into(),
        pki.arg("ca.crt"),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut cluster = Cluster::start(3, &flags);
    let leader = cluster.wait_leader(Duration::from_secs(10));
    assert_eq!(
        raft_port_serial(&pki, cluster.node(leader).raft_port),
        "serial=03E9"
    );
    // Certificates are the only check here (no secret): no warning.
    assert!(!cluster.node(leader).log().contains("is unauthenticated"));
    let stranger = Pki::generate();
    let (leader, bad) = refused_follower_changes_nothing(
        &mut cluster,
        &[
            "--tls-cert-file",
            &stranger.arg("server.crt"),
            "--tls-key-file",
            &stranger.arg("server.key"),
        ],
        false,
    );
    wait_for_log(&cluster, leader, "refused: TLS: invalid peer certificate");
    wait_for_log(&cluster, bad, "refused: TLS:");
}
