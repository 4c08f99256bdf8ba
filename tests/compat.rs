//! Unmodified third-party lock libraries against the real binary: redis-py's `Lock` on
//! RESP2 and on RESP3 (`tests/compat/test_redis_py_lock.py`, run with pytest), and the
//! `redlock` npm package on ioredis (`tests/compat/redlock.test.mjs`, run with
//! `node --test`). Each test starts its own node and runs one suite as a child process,
//! with the node's port in `RAFTLOCK_PORT`; the test fails with the suite's output (and
//! the server's log) when the suite fails. redis-py's `Sentinel` client
//! (`tests/compat/test_redis_py_sentinel.py`) runs against a 3-node cluster instead, and
//! asks this side to kill the leader halfway.
//!
//! The libraries are pinned in `tests/compat/requirements.txt` and
//! `tests/compat/package-lock.json`; `scripts/test.sh` installs them (a venv in
//! `target/compat-venv`, `npm ci` in `tests/compat`). A test never skips:
//! when `python3`, `node` or the pinned libraries are missing, it fails and says how to
//! install them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::suite::{compat_dir, on_path, python, run_suite_with_log, SUITE_TIMEOUT};
use common::Server;

/// `node` on PATH; fails when the machine has none: scripts/test.sh installs it.
fn node() -> PathBuf {
    on_path("node")
        .expect("node is not installed: scripts/test.sh installs it (apt-get install nodejs npm)")
}

/// The version that `requirements.txt` pins for `package`.
fn pinned_python_version(package: &str) -> String {
    let path = compat_dir().join("requirements.txt");
    let text = std::fs::read_to_string(&path).expect("read tests/compat/requirements.txt");
    text.lines()
        .filter_map(|line| line.split_once("=="))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case(package))
        .map(|(_, version)| version.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_else(|| panic!("{} pins no {package}", path.display()))
}

/// Fails, saying how to install them, unless redis-py (at its pinned version) and pytest
/// are importable by `python`.
fn require_python_packages(python: &Path) {
    let probe = Command::new(python)
        .args([
            "-c",
            "import pytest, redis, redlock, pottery; print(redis.__version__)",
        ])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|err| panic!("run {}: {err}", python.display()));
    let installed = String::from_utf8_lossy(&probe.stdout).trim().to_string();
    assert!(
        probe.status.success(),
        "redis-py, redlock-py, pottery and pytest are not installed for {}: run scripts/test.sh, or \
         `python3 -m venv target/compat-venv && target/compat-venv/bin/pip install -r \
         tests/compat/requirements.txt`\n{}",
        python.display(),
        String::from_utf8_lossy(&probe.stderr)
    );
    let pinned = pinned_python_version("redis");
    assert_eq!(
        installed,
        pinned,
        "{} has redis-py {installed}, tests/compat/requirements.txt pins {pinned}: run \
         scripts/test.sh (or pip install -r tests/compat/requirements.txt)",
        python.display()
    );
}

/// Fails, saying how to install them, unless `npm ci` has installed the pinned packages.
fn require_node_packages() {
    for package in ["redlock", "ioredis", "redis-semaphore"] {
        let manifest = compat_dir()
            .join("node_modules")
            .join(package)
            .join("package.json");
        assert!(
            manifest.is_file(),
            "the npm package {package} is not installed in tests/compat: run scripts/test.sh, \
             or `npm ci` in tests/compat"
        );
    }
}

/// Runs one suite against `server`, killing it if it runs past SUITE_TIMEOUT; panics with
/// its output and the server's log unless it exits 0.
fn run_suite(what: &str, server: &Server, mut command: Command) {
    command
        .env("RAFTLOCK_HOST", "127.0.0.1")
        .env("RAFTLOCK_PORT", server.port.to_string());
    run_suite_with_log(what, || server.log(), command);
}

fn redis_py_suite(protocol: &str) {
    let python = python();
    require_python_packages(&python);
    let server = Server::start();
    let mut command = Command::new(&python);
    command
        .args([
            "-m",
            "pytest",
            "-v",
            "-p",
            "no:cacheprovider",
            "test_redis_py_lock.py",
        ])
        .env("RAFTLOCK_RESP", protocol);
    run_suite(
        &format!("redis-py Lock suite on RESP{protocol}"),
        &server,
        command,
    );
}

#[test]
fn redis_py_lock_resp2() {
    redis_py_suite("2");
}

#[test]
fn redis_py_lock_resp3() {
    redis_py_suite("3");
}

#[test]
fn node_redlock_on_ioredis() {
    let node = node();
    require_node_packages();
    let server = Server::start();
    let mut command = Command::new(node);
    command.args(["--test", "--test-reporter=spec", "redlock.test.mjs"]);
    run_suite("redlock suite (node --test)", &server, command);
}

#[test]
fn redis_py_sentinel_follows_a_leader_kill() {
    let python = python();
    require_python_packages(&python);
    let mut cluster = Cluster::start(3, &[]);
    let handshake = tempfile::tempdir().expect("temp dir");
    let sentinels = cluster
        .nodes
        .iter()
        .map(|n| n.client_addr())
        .collect::<Vec<_>>()
        .join(",");
    let log_files: Vec<PathBuf> = cluster
        .nodes
        .iter()
        .map(|n| n.data_dir.with_extension("log"))
        .collect();
    let mut command = Command::new(&python);
    command
        .args([
            "-m",
            "pytest",
            "-v",
            "-s",
            "-p",
            "no:cacheprovider",
            "test_redis_py_sentinel.py",
        ])
        .env("RAFTLOCK_SENTINELS", sentinels)
        .env("RAFTLOCK_HANDSHAKE_DIR", handshake.path());
    let suite = std::thread::spawn(move || {
        let log = || {
            log_files
                .iter()
                .map(|path| {
                    let text = std::fs::read_to_string(path).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(40).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    format!("--- {} ---\n{}\n", path.display(), tail.join("\n"))
                })
                .collect::<String>()
        };
        run_suite_with_log("redis-py Sentinel suite on 3 nodes", log, command);
    });
    // The suite asks for the leader's death once it holds a lock through it.
    let request = handshake.path().join("kill-request");
    let deadline = Instant::now() + SUITE_TIMEOUT;
    while !suite.is_finished() && Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(&request) {
            let port: u16 = text.trim().parse().expect("a port in kill-request");
            let id = cluster
                .nodes
                .iter()
                .find(|n| n.port == port)
                .map(|n| n.id)
                .expect("the suite named a node of the cluster");
            assert_eq!(cluster.leader(), Some(id), "the suite named the leader");
            cluster.kill(id);
            std::fs::write(handshake.path().join("killed"), b"").expect("write killed");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Err(panic) = suite.join() {
        std::panic::resume_unwind(panic);
    }
    assert!(
        handshake.path().join("killed").exists(),
        "the suite passed without asking for the leader's death"
    );
}

/// Runs a suite against every node of a fresh 3-node cluster (their client ports in
/// `RAFTLOCK_PORTS`) with the Redlock replay rule on, as docs/LOCKS.md says to run it for
/// Redlock clients, with the tails of the nodes' logs if it fails.
fn run_cluster_suite(what: &str, mut command: Command) {
    let cluster = Cluster::start(3, &["--redlock-replay-window-ms", "5000"]);
    cluster.wait_leader(Duration::from_secs(30));
    let ports = cluster
        .nodes
        .iter()
        .map(|n| n.port.to_string())
        .collect::<Vec<_>>()
        .join(",");
    command
        .env("RAFTLOCK_HOST", "127.0.0.1")
        .env("RAFTLOCK_PORTS", ports);
    run_suite_with_log(what, || cluster.logs(), command);
}

/// node-redlock and redis-semaphore's RedlockMutex with one client per node of a cluster:
/// each copy of a request is answered alike, so they reach their majority.
#[test]
fn node_redlock_and_redis_semaphore_on_every_node_of_one_cluster() {
    let node = node();
    require_node_packages();
    let mut command = Command::new(node);
    command.args(["--test", "--test-reporter=spec", "redlock_cluster.test.mjs"]);
    run_cluster_suite("Redlock clients on 3 nodes (node --test)", command);
}

/// redlock-py and pottery with one client per node of a cluster.
#[test]
fn redlock_py_and_pottery_on_every_node_of_one_cluster() {
    let python = python();
    require_python_packages(&python);
    let mut command = Command::new(&python);
    command.args([
        "-m",
        "pytest",
        "-v",
        "-p",
        "no:cacheprovider",
        "test_redlock_cluster.py",
    ]);
    run_cluster_suite("Redlock clients on 3 nodes (pytest)", command);
}
