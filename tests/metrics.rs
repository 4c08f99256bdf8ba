//! `--metrics-listen`: Prometheus metrics at `/metrics` scraped while a client locks
//! (counters move, histograms fill, the command and error labels appear), the live page
//! at `/` and its event stream at `/events`, and the page in a real headless browser
//! (Debian's chromium through selenium: `tests/compat/test_live_page.py`).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::suite::{python, run_suite_with_log};
use common::{free_port, run, run_err, Server};

/// A node serving its metrics on a port of its own.
fn server_with_metrics() -> (Server, u16) {
    let port = free_port();
    let server = Server::start_with(&["--metrics-listen", &format!("127.0.0.1:{port}")]);
    (server, port)
}

/// One HTTP/1.1 request; the status line, the headers (names in lower case) and the body.
fn http(port: u16, method: &str, path: &str) -> (String, BTreeMap<String, String>, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// The samples of one scrape, by name with labels (`raftlock_commands_total{cmd="set"}`).
fn scrape(port: u16) -> BTreeMap<String, f64> {
    let (status, headers, body) = http(port, "GET", "/metrics");
    assert!(status.contains("200"), "{status}");
    assert!(
        headers["content-type"].starts_with("application/openmetrics-text"),
        "{headers:?}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(name, value)| (name.to_string(), value.parse().expect("a number")))
        .collect()
}

fn sample(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {samples:#?}"))
}

#[test]
fn a_scrape_while_a_client_locks_shows_counters_move_and_histograms_fill() {
    let (server, port) = server_with_metrics();
    let before = scrape(port);
    assert_eq!(sample(&before, "raftlock_raft_role{role=\"leader\"}"), 1.0);
    assert_eq!(
        sample(&before, "raftlock_raft_role{role=\"follower\"}"),
        0.0
    );
    assert!(sample(&before, "raftlock_raft_term") >= 1.0);
    assert_eq!(sample(&before, "raftlock_raft_leader_changes_total"), 1.0);
    assert_eq!(sample(&before, "raftlock_lock_grants_total"), 0.0);

    let mut con = server.connect();
    for i in 0..5 {
        let token: i64 = run(&mut con, &["LOCK", "job", "worker", "10000"]);
        assert!(token > 0, "{i}");
        let left: i64 = run(&mut con, &["UNLOCK", "job", "worker"]);
        assert_eq!(left, 0);
    }
    // A lease that runs out, and a waiter granted when it does.
    let _: i64 = run(&mut con, &["LOCK", "short", "a", "200"]);
    let mut waiter = server.connect();
    let granted: i64 = run(
        &mut waiter,
        &["LOCK", "short", "b", "10000", "WAIT", "5000"],
    );
    assert!(granted > 0);
    let _: () = run(&mut con, &["SET", "plain", "v"]);
    assert!(run_err(&mut con, &["LPUSH", "plain", "x"]).starts_with("WRONGTYPE"));
    assert!(run_err(&mut con, &["UNLOCK", "job", "nobody"]).starts_with("NOTOWNER"));
    assert!(run_err(&mut con, &["GET"]).starts_with("ERR wrong number of arguments"));

    let after = scrape(port);
    let grown = |name: &str| sample(&after, name) - before.get(name).copied().unwrap_or(0.0);
    assert_eq!(grown("raftlock_lock_grants_total"), 7.0, "5 LOCKs, a, b");
    assert_eq!(grown("raftlock_lock_waits_total"), 1.0);
    assert_eq!(grown("raftlock_lock_lease_expiries_total"), 1.0);
    assert_eq!(grown("raftlock_lock_wait_duration_seconds_count"), 1.0);
    assert!(sample(&after, "raftlock_lock_wait_duration_seconds_sum") >= 0.1);
    assert_eq!(grown("raftlock_lock_hold_duration_seconds_count"), 6.0);
    assert!(
        sample(&after, "raftlock_lock_sessions") >= 1.0,
        "b holds in its session"
    );
    assert_eq!(grown("raftlock_commands_total{cmd=\"lock\"}"), 7.0);
    assert_eq!(grown("raftlock_commands_total{cmd=\"unlock\"}"), 6.0);
    assert_eq!(grown("raftlock_commands_total{cmd=\"set\"}"), 1.0);
    assert_eq!(grown("raftlock_errors_total{code=\"WRONGTYPE\"}"), 1.0);
    assert_eq!(grown("raftlock_errors_total{code=\"NOTOWNER\"}"), 1.0);
    assert_eq!(grown("raftlock_errors_total{code=\"ERR\"}"), 1.0);
    for histogram in [
        "raftlock_raft_fsync_duration_seconds",
        "raftlock_raft_commit_duration_seconds",
        "raftlock_raft_apply_duration_seconds",
        "raftlock_raft_entry_size_bytes",
        "raftlock_raft_entries_per_fsync",
        "raftlock_raft_commands_per_fsync",
    ] {
        let count = grown(&format!("{histogram}_count"));
        assert!(count >= 10.0, "{histogram}: {count}");
        assert_eq!(
            sample(&after, &format!("{histogram}_bucket{{le=\"+Inf\"}}")),
            sample(&after, &format!("{histogram}_count")),
            "{histogram}"
        );
    }
    let applied = sample(&after, "raftlock_raft_applied_index");
    assert!(applied > sample(&before, "raftlock_raft_applied_index"));
    assert!(sample(&after, "raftlock_raft_commit_index") >= applied);
    assert!(sample(&after, "raftlock_connections") >= 2.0);
    assert_eq!(sample(&after, "raftlock_proposals_queued"), 0.0);
}

#[test]
fn the_page_and_its_event_stream_answer() {
    let (server, port) = server_with_metrics();
    let (status, headers, body) = http(port, "GET", "/");
    assert!(status.contains("200"), "{status}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(body.contains("new EventSource(\"events\")"), "{body}");

    let mut con = server.connect();
    let token: i64 = run(&mut con, &["LOCK", "stream:lock", "owner-1", "30000"]);

    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a timeout");
    write!(
        stream,
        "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("send");
    let wanted = format!("\"owner\":\"owner-1\",\"mode\":\"EX\",\"token\":{token}");
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut chunk = [0u8; 4096];
    while !seen.contains(&wanted) {
        assert!(Instant::now() < deadline, "no event with the lock: {seen}");
        let n = stream.read(&mut chunk).expect("read the event stream");
        assert!(n > 0, "the stream ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("content-type: text/event-stream"), "{seen}");
    assert!(
        seen.contains("data: {\"node_id\":1,\"role\":\"leader\""),
        "{seen}"
    );
    assert!(seen.contains("\"resource\":\"stream:lock\""), "{seen}");

    let (status, _, _) = http(port, "GET", "/nosuch");
    assert!(status.contains("404"), "{status}");
    let (status, headers, _) = http(port, "POST", "/metrics");
    assert!(status.contains("405"), "{status}");
    assert_eq!(headers["allow"], "GET, HEAD");
    // The node serves its clients as before.
    let pong: String = run(&mut con, &["PING"]);
    assert_eq!(pong, "PONG");
}

#[test]
fn metrics_listen_comes_from_the_config_file_and_a_clash_is_refused() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("raftlock.conf");
    std::fs::write(&file, format!("metrics-listen 127.0.0.1:{port}\n")).expect("write");
    let _server = Server::start_with(&["--config", file.to_str().expect("utf-8 path")]);
    let samples = scrape(port);
    assert_eq!(sample(&samples, "raftlock_raft_role{role=\"leader\"}"), 1.0);

    let out = Command::new(env!("CARGO_BIN_EXE_raftlock"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:7379",
            "--metrics-listen",
            "127.0.0.1:7379",
        ])
        .output()
        .expect("run raftlock");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--metrics-listen must differ from --listen and --raft-listen"),
        "{stderr}"
    );
}

/// The live page in Debian's headless chromium, driven by selenium from Python: fails
/// (never skips) when the browser, its driver or selenium is missing.
#[test]
fn the_live_page_in_a_real_browser_shows_a_lock_and_its_waiter_leave() {
    let python = python();
    let (server, port) = server_with_metrics();
    let mut command = Command::new(&python);
    command
        .args([
            "-m",
            "pytest",
            "-v",
            "-p",
            "no:cacheprovider",
            "test_live_page.py",
        ])
        .env("RAFTLOCK_HOST", "127.0.0.1")
        .env("RAFTLOCK_PORT", server.port.to_string())
        .env("RAFTLOCK_METRICS_PORT", port.to_string());
    run_suite_with_log(
        "the live page in chromium (pytest)",
        || server.log(),
        command,
    );
}

/// The metric names in `text`: `raftlock_` and the lower-case letters and underscores after.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("raftlock_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn the_grafana_dashboard_uses_metrics_the_node_serves() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/grafana-dashboard.json");
    let text = std::fs::read_to_string(&path).expect("read contrib/grafana-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() > 10);

    let (server, port) = server_with_metrics();
    let mut con = server.connect();
    let _: i64 = run(&mut con, &["LOCK", "r", "o", "1000"]);
    assert!(run_err(&mut con, &["GET"]).starts_with("ERR"));
    let served: std::collections::BTreeSet<String> = scrape(port)
        .keys()
        .map(|sample| sample.split('{').next().unwrap_or(sample).to_string())
        .collect();
    let used = metric_names(&text);
    assert!(used.len() > 15, "{used:?}");
    for name in &used {
        assert!(
            served.contains(name),
            "the dashboard uses {name}, which /metrics does not serve"
        );
    }
}

/// The follower's scrape once it has applied everything the leader had applied.
fn caught_up(cluster: &Cluster, leader: u64, port: u16) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let applied: f64 = cluster.node(leader).raft_info()["last_applied_index"]
            .parse()
            .expect("an index");
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let samples = scrape(port);
            if sample(&samples, "raftlock_raft_applied_index") >= applied {
                return samples;
            }
        }
        assert!(Instant::now() < deadline, "the follower did not catch up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lock grants come from apply, so a follower counts the grants it applies, and says it
/// follows; commit latency is the leader's alone.
#[test]
fn a_follower_counts_the_lock_grants_it_applies() {
    let mut cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let follower = cluster
        .nodes
        .iter()
        .map(|n| n.id)
        .find(|id| *id != leader)
        .expect("a follower");
    let port = free_port();
    cluster.restart_with(
        follower,
        &["--metrics-listen", &format!("127.0.0.1:{port}")],
    );
    let mut con = cluster.node(leader).connect();
    let before = caught_up(&cluster, leader, port);
    for i in 0..4 {
        let _: i64 = run(&mut con, &["LOCK", &format!("r{i}"), "o", "10000"]);
    }
    let after = caught_up(&cluster, leader, port);
    let grown = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(grown("raftlock_lock_grants_total"), 4.0);
    assert_eq!(sample(&after, "raftlock_raft_role{role=\"follower\"}"), 1.0);
    assert_eq!(sample(&after, "raftlock_raft_leader_id"), leader as f64);
    assert_eq!(
        sample(&after, "raftlock_raft_commit_duration_seconds_count"),
        0.0
    );
    assert!(grown("raftlock_raft_fsync_duration_seconds_count") >= 1.0);
    assert!(grown("raftlock_raft_entries_per_fsync_sum") >= 4.0);
}
