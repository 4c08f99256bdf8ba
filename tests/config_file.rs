//! `raftlock serve --config FILE`: redis.conf-style settings, overridden by flags.

mod common;

use common::{run, Server};

fn config_get(server: &Server, name: &str) -> String {
    let reply: Vec<String> = run(&mut server.connect(), &["CONFIG", "GET", name]);
    reply.get(1).cloned().unwrap_or_default()
}

#[test]
fn a_config_file_sets_what_flags_set_and_flags_override_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("raftlock.conf");
    std::fs::write(
        &file,
        "# as in redis.conf\nmaxclients 77\nproto-max-bulk-len 1000\nloglevel \"warning\"\n",
    )
    .expect("write the config file");
    let path = file.to_string_lossy().into_owned();

    let server = Server::start_with(&["--config", &path]);
    assert_eq!(config_get(&server, "maxclients"), "77");
    assert_eq!(config_get(&server, "proto-max-bulk-len"), "1000");

    let overridden = Server::start_with(&["--config", &path, "--maxclients", "88"]);
    assert_eq!(config_get(&overridden, "maxclients"), "88");
    assert_eq!(config_get(&overridden, "proto-max-bulk-len"), "1000");
}

#[test]
fn a_bad_config_file_stops_the_server_with_the_line_that_is_wrong() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("raftlock.conf");
    std::fs::write(&file, "maxclients 10\nnosuch-setting 1\n").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_raftlock"))
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .expect("run raftlock");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 2: unknown setting 'nosuch-setting'"),
        "{stderr}"
    );
}
