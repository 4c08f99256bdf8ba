//! Format versions seen through the binary: a data dir marked by a later raftlock's data
//! format is refused at start-up with what to do, and left as it was.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{free_ports, run, Server};

/// Where the data dir's format mark lives (`src/raft/format.rs`, `src/raft/keys.rs`).
const STATE_KEYSPACE: &str = "raft_state";
const DATA_FORMAT: &[u8] = b"raftlock-data-format";

fn mark_format(data_dir: &std::path::Path, version: u32) {
    let db = fjall::Database::builder(data_dir.join("db"))
        .open()
        .expect("open the data dir's database");
    let state = db
        .keyspace(STATE_KEYSPACE, fjall::KeyspaceCreateOptions::default)
        .expect("the state keyspace");
    state
        .insert(DATA_FORMAT, version.to_le_bytes())
        .expect("write the mark");
    db.persist(fjall::PersistMode::SyncAll).expect("persist");
}

#[test]
fn a_data_dir_of_a_later_format_is_refused_at_start_up() {
    let mut server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "k", "v"]);
    drop(con);
    server.kill();
    mark_format(server.data_dir(), 2);

    let ports = free_ports(2);
    let out = Command::new(env!("CARGO_BIN_EXE_raftlock"))
        .arg("serve")
        .arg("--data-dir")
        .arg(server.data_dir())
        .args(["--listen", &format!("127.0.0.1:{}", ports[0])])
        .args(["--raft-listen", &format!("127.0.0.1:{}", ports[1])])
        .output()
        .expect("run raftlock serve");
    assert!(!out.status.success(), "a later data format was opened");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("written by a newer raftlock (data format 2; this build reads format 1)"),
        "{stderr}"
    );

    // Marked back with this build's format, the node serves its data again.
    mark_format(server.data_dir(), 1);
    server.restart();
    let mut con = server.connect();
    con.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let value: String = run(&mut con, &["GET", "k"]);
    assert_eq!(value, "v");
}
