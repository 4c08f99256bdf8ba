//! The client subcommands of the real binary against a real node: `raftlock run` (a
//! command run under a lock, as flock and etcdctl lock do) and `raftlock lock / unlock /
//! info / locks / cluster`.

mod common;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::{run, Server};
use redis::Value;

/// Longest a subcommand may take in these tests: a bound for a hang, not for speed.
const HANG: Duration = Duration::from_secs(60);

fn raftlock(server: &Server, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_raftlock"));
    command.arg(args[0]);
    command.args(["-p", &server.port.to_string()]);
    command.args(&args[1..]);
    command
}

fn output(mut command: Command) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start raftlock");
    wait_output(child)
}

/// Waits for `child` (killing it, by its PID, past `HANG`) and returns what it printed.
fn wait_output(mut child: Child) -> Output {
    let deadline = Instant::now() + HANG;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("raftlock did not finish within {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(status: ExitStatus) -> i32 {
    status.code().expect("an exit code, not a signal")
}

fn lockinfo(server: &Server, name: &str) -> Value {
    run(&mut server.connect(), &["LOCKINFO", name])
}

#[test]
fn run_hands_the_token_to_the_command_returns_its_exit_code_and_releases() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("token");
    let script = format!(
        "echo $RAFTLOCK_TOKEN $RAFTLOCK_LOCK > {}; exit 7",
        file.display()
    );
    let out = output(raftlock(
        &server,
        &[
            "run", "--lock", "job", "--ttl", "2s", "--", "sh", "-c", &script,
        ],
    ));
    assert_eq!(code(out.status), 7, "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&file).expect("the command ran");
    let (token, lock) = written.trim().split_once(' ').expect("token and lock");
    assert!(token.parse::<i64>().expect("a token") > 0);
    assert_eq!(lock, "job");
    assert_eq!(lockinfo(&server, "job"), Value::Nil, "released at exit");
}

#[test]
fn two_runs_of_one_lock_never_overlap() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("log");
    let script = format!(
        "echo start $$ >> {log}; sleep 0.3; echo end $$ >> {log}",
        log = log.display()
    );
    let runs: Vec<Child> = (0..3)
        .map(|_| {
            raftlock(
                &server,
                &[
                    "run", "--lock", "job", "--ttl", "3s", "--", "sh", "-c", &script,
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start raftlock run")
        })
        .collect();
    for child in runs {
        let out = wait_output(child);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .expect("log")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    for pair in lines.chunks(2) {
        let start = pair[0].strip_prefix("start ").expect("a start");
        let end = pair[1].strip_prefix("end ").expect("then its end");
        assert_eq!(start, end, "another run started inside one: {lines:?}");
    }
}

#[test]
fn run_that_is_not_granted_in_time_exits_1_without_running_the_command() {
    let server = Server::start();
    let token: i64 = run(&mut server.connect(), &["LOCK", "job", "other", "60000"]);
    assert!(token > 0);
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("ran");
    let marker_arg = marker.to_string_lossy().into_owned();
    let out = output(raftlock(
        &server,
        &[
            "run",
            "--lock",
            "job",
            "--wait",
            "300ms",
            "--",
            "touch",
            &marker_arg,
        ],
    ));
    assert_eq!(code(out.status), 1, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not granted"),
        "{}",
        text(&out.stderr)
    );
    assert!(!marker.exists(), "the command ran without the lock");
}

#[test]
fn a_lost_lease_stops_the_command_and_exits_3() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("stopped");
    // The command waits for SIGTERM and records it.
    let script = format!(
        "trap 'kill $!; echo terminated > {}; exit 0' TERM; sleep 30 & wait",
        file.display()
    );
    let child = raftlock(
        &server,
        &[
            "run", "--lock", "job", "--ttl", "900ms", "--", "sh", "-c", &script,
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start raftlock run");
    // Once it holds the lock, an operator force-releases it.
    let deadline = Instant::now() + HANG;
    while lockinfo(&server, "job") == Value::Nil {
        assert!(Instant::now() < deadline, "never granted");
        std::thread::sleep(Duration::from_millis(10));
    }
    let removed: i64 = run(&mut server.connect(), &["DEL", "job"]);
    assert_eq!(removed, 1);
    let out = wait_output(child);
    assert_eq!(code(out.status), 3, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("lost the lease"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&file)
            .expect("the command got SIGTERM")
            .trim(),
        "terminated"
    );
}

#[test]
fn sigterm_to_run_reaches_the_command_and_the_lock_is_released() {
    let server = Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let ready = dir.path().join("ready");
    let script = format!(
        "trap 'kill $!; exit 5' TERM; touch {}; sleep 30 & wait",
        ready.display()
    );
    let child = raftlock(
        &server,
        &["run", "--lock", "job", "--", "sh", "-c", &script],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start raftlock run");
    wait_for_file(&ready);
    // This test's own child, by its PID.
    // SAFETY: kill(2) with a pid and a signal number.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = wait_output(child);
    assert_eq!(code(out.status), 5, "{}", text(&out.stderr));
    assert_eq!(
        lockinfo(&server, "job"),
        Value::Nil,
        "released after the command"
    );
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + HANG;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn lock_info_locks_and_unlock_from_the_shell() {
    let server = Server::start();
    let out = output(raftlock(
        &server,
        &["lock", "job", "--owner", "ops", "--ttl", "1m"],
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token: i64 = text(&out.stdout).trim().parse().expect("the token");
    assert!(token > 0);

    let out = output(raftlock(
        &server,
        &["lock", "job", "--owner", "other", "--wait", "0"],
    ));
    assert_eq!(code(out.status), 1, "a try-lock of a held lock");

    let out = output(raftlock(&server, &["info", "job"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info = text(&out.stdout);
    assert!(info.starts_with("job\n"), "{info}");
    assert!(
        info.contains("owner=ops") && info.contains(&format!("token={token}")),
        "{info}"
    );

    let _: () = run(&mut server.connect(), &["SET", "plain", "x"]);
    let out = output(raftlock(&server, &["locks"]));
    let listed = text(&out.stdout);
    assert!(
        listed.contains("job\n") && !listed.contains("plain"),
        "{listed}"
    );

    let out = output(raftlock(&server, &["unlock", "job", "--owner", "ops"]));
    assert_eq!(text(&out.stdout).trim(), "0", "{}", text(&out.stderr));
    let out = output(raftlock(&server, &["info", "job"]));
    assert_eq!(code(out.status), 1);

    let out = output(raftlock(&server, &["cluster", "status"]));
    assert!(
        text(&out.stdout).contains("role:leader"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn bad_durations_and_missing_commands_are_refused() {
    let server = Server::start();
    let out = output(raftlock(
        &server,
        &["run", "--lock", "job", "--ttl", "5d", "--", "true"],
    ));
    assert_eq!(code(out.status), 2);
    assert!(
        text(&out.stderr).contains("invalid duration"),
        "{}",
        text(&out.stderr)
    );
    let out = output(raftlock(&server, &["run", "--lock", "job"]));
    assert_eq!(code(out.status), 2, "no command to run");
}
