//! Debian's `redis-cli`, run non-interactively against the real binary. A test fails when
//! redis-cli is not installed (scripts/test.sh installs redis-tools).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{redis_cli, Server};

/// Runs `redis-cli -h 127.0.0.1 -p PORT args...`, feeding `stdin`; returns stdout.
fn cli(cli: &Path, server: &Server, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(cli)
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start redis-cli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("feed redis-cli");
    let output = child.wait_with_output().expect("redis-cli output");
    assert!(
        output.status.success(),
        "redis-cli {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("redis-cli prints UTF-8")
}

#[test]
fn redis_cli_runs_single_commands() {
    let bin = redis_cli();
    let server = Server::start();
    let run = |args: &[&str]| cli(&bin, &server, args, "");
    assert_eq!(run(&["PING"]), "PONG\n");
    assert_eq!(run(&["SET", "foo", "bar"]), "OK\n");
    assert_eq!(run(&["GET", "foo"]), "bar\n");
    assert_eq!(run(&["GET", "missing"]), "\n");
    assert_eq!(run(&["INCR", "counter"]), "1\n");
    assert_eq!(run(&["INCRBY", "counter", "41"]), "42\n");
    assert_eq!(run(&["TTL", "foo"]), "-1\n");
    assert_eq!(run(&["EXPIRE", "foo", "100"]), "1\n");
    let ttl: i64 = run(&["TTL", "foo"])
        .trim()
        .parse()
        .expect("TTL is a number");
    assert!((90..=100).contains(&ttl), "TTL {ttl}");
    assert_eq!(run(&["TTL", "missing"]), "-2\n");
    assert_eq!(run(&["DBSIZE"]), "2\n");
    assert_eq!(
        run(&["GET"]),
        "ERR wrong number of arguments for 'get' command\n\n"
    );
    // Formatted as on a terminal.
    assert_eq!(run(&["--no-raw", "INCR", "counter"]), "(integer) 43\n");
    assert_eq!(run(&["--no-raw", "GET", "missing"]), "(nil)\n");
    assert_eq!(
        run(&["--no-raw", "MGET", "foo", "missing"]),
        "1) \"bar\"\n2) (nil)\n"
    );
    assert_eq!(
        run(&["--no-raw", "GET"]),
        "(error) ERR wrong number of arguments for 'get' command\n"
    );
}

#[test]
fn redis_cli_reads_commands_from_stdin() {
    let bin = redis_cli();
    let server = Server::start();
    let out = cli(
        &bin,
        &server,
        &[],
        "SET a 1\nINCR a\nGET a\nSET greeting \"hello world\"\nGET greeting\nDEL a greeting\n",
    );
    assert_eq!(out, "OK\n2\n2\nOK\nhello world\n2\n");
}

#[test]
fn redis_cli_info_and_resp3() {
    let bin = redis_cli();
    let server = Server::start();
    let info = cli(&bin, &server, &["INFO"], "");
    assert!(info.contains("# Server"), "{info}");
    assert!(info.contains("redis_version:"), "{info}");
    assert!(info.contains("role:master"), "{info}");
    let replication = cli(&bin, &server, &["INFO", "replication"], "");
    assert!(replication.contains("role:master"), "{replication}");
    assert!(!replication.contains("# Server"), "{replication}");

    let hello = cli(&bin, &server, &["-3", "--no-raw", "HELLO"], "");
    assert!(hello.contains("\"proto\" => (integer) 3"), "{hello}");
    assert!(hello.contains("\"role\" => \"master\""), "{hello}");
    assert_eq!(
        cli(
            &bin,
            &server,
            &["-3", "--no-raw", "CONFIG", "GET", "maxclients"],
            ""
        ),
        "1# \"maxclients\" => \"10000\"\n"
    );
    assert_eq!(cli(&bin, &server, &["-3", "GET", "missing"], ""), "\n");
    assert_eq!(
        cli(&bin, &server, &["-3", "--no-raw", "GET", "missing"], ""),
        "(nil)\n"
    );
}

#[test]
fn redis_cli_authenticates_with_a_password() {
    let bin = redis_cli();
    let server = Server::start_with(&["--requirepass", "secret"]);
    assert_eq!(
        cli(&bin, &server, &["SET", "k", "v"], ""),
        "NOAUTH Authentication required.\n\n"
    );
    let auth = ["-a", "secret", "--no-auth-warning"];
    assert_eq!(
        cli(&bin, &server, &[&auth[..], &["SET", "k", "v"]].concat(), ""),
        "OK\n"
    );
    assert_eq!(
        cli(&bin, &server, &[&auth[..], &["GET", "k"]].concat(), ""),
        "v\n"
    );
    let wrong = cli(
        &bin,
        &server,
        &["-a", "wrong", "--no-auth-warning", "GET", "k"],
        "",
    );
    assert!(
        wrong.contains("NOAUTH") || wrong.contains("WRONGPASS"),
        "{wrong:?}"
    );
}
