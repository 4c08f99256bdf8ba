//! A disk that fills up or fails under a real node: its data dir on a small tmpfs of its
//! own (so "full" is the kernel's ENOSPC), or fsync failing with EIO (a preloaded shim,
//! tests/faults/fail_fsync.c, as a failing disk reports it). Nothing unacknowledged is
//! ever acknowledged, nothing acknowledged is lost, reads go on while writes cannot.
//! Mounting needs root, as CI runs: without it these tests fail, they do not skip.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{bulk, run, Server};
use redis::Value;

/// The exit status of a node stopped by a storage failure (`raft::log_store`).
const STORAGE_FAILURE_EXIT_CODE: i32 = 74;
const MIB: u64 = 1024 * 1024;

/// A tmpfs of its own, unmounted when dropped (after the server using it, declared later,
/// is dropped).
struct Tmpfs {
    _dir: tempfile::TempDir,
    point: PathBuf,
}

impl Tmpfs {
    fn mount(size_mib: u64) -> Tmpfs {
        let dir = tempfile::tempdir().expect("temp dir");
        let point = dir.path().join("disk");
        std::fs::create_dir(&point).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(&point)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount -t tmpfs failed ({status}): these tests need root, as CI has"
        );
        Tmpfs { _dir: dir, point }
    }

    /// The node's data dir: the mount point itself, so its log (beside it) is not on the
    /// small disk.
    fn data_dir(&self) -> PathBuf {
        self.point.clone()
    }

    /// Writes a file of zeros until fewer than `free_bytes` are left (0: until the disk is
    /// full); its path.
    fn fill_until_free_below(&self, free_bytes: u64) -> PathBuf {
        let path = self.point.join("filler");
        let mut file = std::fs::File::create(&path).expect("create filler");
        let chunk = vec![0u8; 64 * 1024];
        while free_bytes == 0 || self.free_bytes() >= free_bytes {
            match file.write_all(&chunk).and_then(|()| file.flush()) {
                Ok(()) => {}
                Err(err) if err.raw_os_error() == Some(libc::ENOSPC) => {
                    // Whatever part of the chunk fitted is in; top up byte by byte.
                    while file.write_all(&[0]).is_ok() {}
                    break;
                }
                Err(err) => panic!("filling the disk: {err}"),
            }
        }
        path
    }

    fn free_bytes(&self) -> u64 {
        free_bytes(&self.point)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.point).status();
    }
}

fn free_bytes(path: &Path) -> u64 {
    let text = String::from_utf8(
        Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(path)
            .output()
            .expect("run df")
            .stdout,
    )
    .expect("df output");
    text.lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .expect("df avail")
}

/// Runs `args` until `accept` takes its reply, for up to `within`; the reply.
fn until(
    con: &mut redis::Connection,
    args: &[&str],
    within: Duration,
    accept: impl Fn(&redis::RedisResult<Value>) -> bool,
) -> redis::RedisResult<Value> {
    let deadline = Instant::now() + within;
    loop {
        let reply: redis::RedisResult<Value> = common::cmd(args).query(con);
        if accept(&reply) {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} still answered {reply:?} after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_nearly_full_disk_refuses_writes_with_misconf_serves_reads_and_recovers() {
    let disk = Tmpfs::mount(64);
    let server = Server::start_in_dir(
        disk.data_dir(),
        &["--min-free-disk-bytes", &(16 * MIB).to_string()],
        &[],
    );
    let mut con = server.connect();
    for i in 0..100 {
        run::<()>(&mut con, &["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    let token: i64 = run(&mut con, &["LOCK", "res", "holder", "60000"]);

    let filler = disk.fill_until_free_below(8 * MIB);
    let refused = until(&mut con, &["SET", "x", "1"], Duration::from_secs(3), |r| {
        r.is_err()
    })
    .unwrap_err();
    assert_eq!(refused.code(), Some("MISCONF"), "{refused}");
    let lock_refused = common::run_err(&mut con, &["LOCK", "other", "b", "1000"]);
    assert!(lock_refused.starts_with("MISCONF"), "{lock_refused}");
    // Reads go on.
    assert_eq!(run::<Value>(&mut con, &["GET", "k42"]), bulk("v42"));
    assert_eq!(
        run::<i64>(&mut con, &["CHECKFENCE", "res", &token.to_string()]),
        1
    );
    let info: String = run(&mut con, &["INFO", "persistence"]);
    assert!(info.contains("aof_last_write_status:err"), "{info}");

    std::fs::remove_file(filler).expect("free the disk");
    until(&mut con, &["SET", "x", "1"], Duration::from_secs(3), |r| {
        r.is_ok()
    })
    .unwrap();
    for i in 0..100 {
        assert_eq!(
            run::<Value>(&mut con, &["GET", &format!("k{i}")]),
            bulk(&format!("v{i}"))
        );
    }
    assert_eq!(run::<i64>(&mut con, &["UNLOCK", "res", "holder"]), 0);
}

/// The reply of a write the node may not live through: `None` if the connection broke.
fn try_set(con: &mut redis::Connection, key: &str, value: &[u8]) -> Option<Result<(), String>> {
    let reply: redis::RedisResult<Value> = redis::cmd("SET").arg(key).arg(value).query(con);
    match reply {
        Ok(Value::Okay) => Some(Ok(())),
        Ok(other) => Some(Err(format!("{other:?}"))),
        Err(err) if err.is_io_error() || err.is_connection_dropped() => None,
        Err(err) => Some(Err(err.to_string())),
    }
}

/// Writes `value` under new keys until one is not acknowledged; the keys that were, and
/// what the refused one got (`None`: the connection broke).
fn write_until_refused(con: &mut redis::Connection, value: &[u8]) -> (Vec<String>, Option<String>) {
    let mut acknowledged = Vec::new();
    for i in 0..10_000 {
        let key = format!("big{i}");
        match try_set(con, &key, value) {
            Some(Ok(())) => acknowledged.push(key),
            Some(Err(refusal)) => return (acknowledged, Some(refusal)),
            None => return (acknowledged, None),
        }
    }
    panic!("10,000 writes were all acknowledged on a failing disk");
}

#[test]
fn a_write_the_full_disk_cannot_take_stops_the_node_and_loses_nothing_acknowledged() {
    full_disk_stops_the_node_and_loses_nothing_acknowledged(&[], 64 * 1024);
}

#[test]
fn a_snapshot_the_full_disk_cannot_take_stops_the_node_and_loses_nothing_acknowledged() {
    // A snapshot every few entries: one meets the full disk first, and openraft's core
    // quits on its failure; the node must not linger with its Raft gone.
    let log = full_disk_stops_the_node_and_loses_nothing_acknowledged(
        &["--snapshot-every-entries", "3"],
        512,
    );
    assert!(log.contains("Raft failed"), "{log}");
}

/// Fills the disk under a node started with `extra_args`, writes values of `value_bytes`
/// until one fails, and checks the node stopped and a restart lost nothing; the log of
/// the node's stop.
fn full_disk_stops_the_node_and_loses_nothing_acknowledged(
    extra_args: &[&str],
    value_bytes: usize,
) -> String {
    let disk = Tmpfs::mount(64);
    // No early refusal: the write itself meets ENOSPC.
    let mut args = vec!["--min-free-disk-bytes", "0"];
    args.extend_from_slice(extra_args);
    let mut server = Server::start_in_dir(disk.data_dir(), &args, &[]);
    let mut con = server.connect();
    let value = vec![b'x'; value_bytes];
    run::<()>(&mut con, &["SET", "before", "v"]);
    let filler = disk.fill_until_free_below(0);
    let (acknowledged, refusal) = write_until_refused(&mut con, &value);
    let status = server
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| {
            panic!(
                "the node kept running after a write failed ({refusal:?}): {}",
                server.log()
            )
        });
    assert_eq!(status.code(), Some(STORAGE_FAILURE_EXIT_CODE), "{status}");
    let stop_log = server.log();

    std::fs::remove_file(filler).expect("free the disk");
    server.restart();
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["GET", "before"]), bulk("v"));
    for key in &acknowledged {
        let got: Vec<u8> = redis::cmd("GET").arg(key).query(&mut con).unwrap();
        assert!(got == value, "{key} lost after the restart");
    }
    run::<()>(&mut con, &["SET", "after", "v"]);
    println!(
        "{} writes acknowledged before the disk filled",
        acknowledged.len()
    );
    stop_log
}

/// Builds the fsync-failing shim into `dir`; the library's path.
fn build_fail_fsync_shim(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faults/fail_fsync.c");
    let library = dir.join("fail_fsync.so");
    let status = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .status()
        .expect("run gcc (build-essential)");
    assert!(status.success(), "gcc failed on {}", source.display());
    library
}

#[test]
fn a_failed_fsync_stops_the_node_before_any_reply_and_a_restart_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let library = build_fail_fsync_shim(dir.path());
    let trigger = dir.path().join("disk-failing");
    let env = [
        ("LD_PRELOAD", library.to_str().expect("utf-8 path")),
        (
            "RAFTLOCK_TEST_FSYNC_FAIL_FILE",
            trigger.to_str().expect("utf-8 path"),
        ),
    ];
    let mut server = Server::start_in_dir(dir.path().join("data"), &[], &env);
    let mut con = server.connect();
    let value = vec![b'y'; 1024];
    let mut acknowledged = Vec::new();
    for i in 0..200 {
        let key = format!("k{i}");
        assert_eq!(try_set(&mut con, &key, &value), Some(Ok(())));
        acknowledged.push(key);
    }
    std::fs::write(&trigger, b"").expect("fail the disk");
    // The first write after it reaches an fsync that fails: no reply says OK.
    let (after, _) = write_until_refused(&mut con, &value);
    assert!(
        after.is_empty(),
        "acknowledged on a disk whose fsync fails: {after:?}"
    );
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("the node kept running after an fsync failed");
    assert_eq!(status.code(), Some(STORAGE_FAILURE_EXIT_CODE), "{status}");
    assert!(
        server.log().contains("stopping this node"),
        "{}",
        server.log()
    );

    std::fs::remove_file(&trigger).expect("heal the disk");
    server.restart();
    let mut con = server.connect();
    for key in &acknowledged {
        let got: Vec<u8> = redis::cmd("GET").arg(key).query(&mut con).unwrap();
        assert!(got == value, "{key} lost after the restart");
    }
}
