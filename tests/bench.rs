//! `raftlock bench` against a real server: it runs its workloads to the end and prints the
//! table. No timing is asserted: this machine's speed varies too much.

mod common;

use std::process::Command;

use common::Server;

#[test]
fn bench_runs_lock_and_get_workloads_and_prints_the_table() {
    let server = Server::start();
    let output = Command::new(env!("CARGO_BIN_EXE_raftlock"))
        .args(["bench", "-h", "127.0.0.1", "-p"])
        .arg(server.port.to_string())
        .args(["-t", "lock,get", "-n", "2000", "-c", "4"])
        .output()
        .expect("run raftlock bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench failed with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(stdout.contains("server: raftlock"), "{stdout}");
    let header = stdout
        .lines()
        .find(|l| l.starts_with("workload"))
        .unwrap_or_else(|| panic!("no table header in:\n{stdout}"));
    for column in ["ops/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "jain"] {
        assert!(header.contains(column), "{header}");
    }
    for workload in ["lock", "get"] {
        let row = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(workload))
            .unwrap_or_else(|| panic!("no {workload} row in:\n{stdout}"));
        let fields: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(fields[6], "2000", "{workload} did all its ops: {row}");
        assert_eq!(fields[7], "0", "{workload} had no errors: {row}");
    }
}

#[test]
fn bench_csv_has_one_row_per_workload() {
    let server = Server::start();
    let output = Command::new(env!("CARGO_BIN_EXE_raftlock"))
        .args(["bench", "-p"])
        .arg(server.port.to_string())
        .args([
            "-t",
            "setnx,lock-contended",
            "-n",
            "200",
            "-c",
            "4",
            "--csv",
        ])
        .output()
        .expect("run raftlock bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("\"workload\",\"clients\""), "{stdout}");
    assert!(
        lines[1].starts_with("\"setnx\",\"4\",\"1\",\"200\","),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("\"lock-contended\",\"4\",\"1\",\"200\","),
        "{stdout}"
    );
}

#[test]
fn bench_reports_a_server_it_cannot_reach() {
    let port = common::free_port();
    let output = Command::new(env!("CARGO_BIN_EXE_raftlock"))
        .args(["bench", "-p"])
        .arg(port.to_string())
        .args(["-n", "10"])
        .output()
        .expect("run raftlock bench");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect"), "{stderr}");
}
