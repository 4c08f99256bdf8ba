//! TLS on the client port, with real clients: redis-cli (`--tls --cacert`, with and
//! without `--cert/--key`), redis-py (`ssl=True`), ioredis (`tls: { ca }`,
//! `tests/compat/tls.test.mjs`), Python's `ssl` module to read the certificate served.
//! The CA and the certificates are made in each test with the openssl command, in a
//! temporary directory. Also: certificate reload (SIGHUP, and a changed file), the plain
//! and TLS ports side by side, and a follower relaying to a leader that has only a TLS
//! port.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::pki::Pki;
use common::{free_port, run, Server};

fn start(flags: &[String]) -> Server {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start_with(&flags)
}

/// redis-cli over TLS to `port`, trusting the CA, with the client certificate if
/// `with_cert`.
fn redis_cli_tls(pki: &Pki, port: u16, with_cert: bool, args: &[&str]) -> Output {
    let mut command = Command::new(common::redis_cli());
    command
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--tls",
            "--cacert",
        ])
        .arg(pki.path("ca.crt"));
    if with_cert {
        command
            .arg("--cert")
            .arg(pki.path("client.crt"))
            .arg("--key")
            .arg(pki.path("client.key"));
    }
    command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The Python with redis-py: `RAFTLOCK_COMPAT_PYTHON` (scripts/test.sh sets it), else the
/// venv scripts/test.sh makes.
fn python() -> PathBuf {
    std::env::var_os("RAFTLOCK_COMPAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/compat-venv/bin/python")
        })
}

/// Runs a Python program; its stdout, or a panic with its stderr.
fn run_python(program: &str, env: &[(&str, String)]) -> Result<String, String> {
    let out = Command::new(python())
        .args(["-c", program])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {} (scripts/test.sh makes it): {e}", python().display()));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The serial number (hex) of the certificate a new connection to `port` is served,
/// read by Python's `ssl` (with the client certificate).
fn served_serial(pki: &Pki, port: u16) -> String {
    let program = r#"
import os, socket, ssl
ctx = ssl.create_default_context(cafile=os.environ["CA"])
ctx.load_cert_chain(os.environ["CERT"], os.environ["KEY"])
with socket.create_connection(("127.0.0.1", int(os.environ["PORT"])), timeout=10) as raw:
    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        print(tls.getpeercert()["serialNumber"])
"#;
    run_python(
        program,
        &[
            ("CA", pki.arg("ca.crt")),
            ("CERT", pki.arg("client.crt")),
            ("KEY", pki.arg("client.key")),
            ("PORT", port.to_string()),
        ],
    )
    .unwrap_or_else(|e| panic!("read the served certificate: {e}"))
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn redis_cli_over_tls_with_a_client_certificate_beside_the_plain_port() {
    let pki = Pki::generate();
    let tls_port = free_port();
    let server = start(&pki.server_flags(tls_port, &[]));
    let out = redis_cli_tls(&pki, tls_port, true, &["SET", "k", "over-tls"]);
    assert_eq!(stdout(&out), "OK", "{out:?}");
    let out = redis_cli_tls(&pki, tls_port, true, &["LOCK", "res", "owner", "30000"]);
    assert!(stdout(&out).parse::<u64>().is_ok(), "{out:?}");
    // The plain port serves the same data at the same time.
    let mut plain = server.connect();
    let got: Option<String> = run(&mut plain, &["GET", "k"]);
    assert_eq!(got.as_deref(), Some("over-tls"));
    let out = redis_cli_tls(&pki, tls_port, true, &["CONFIG", "GET", "tls-port"]);
    assert_eq!(stdout(&out), format!("tls-port\n{tls_port}"));
}

#[test]
fn a_client_without_a_certificate_is_refused_and_others_carry_on() {
    let pki = Pki::generate();
    let tls_port = free_port();
    let server = start(&pki.server_flags(tls_port, &["--tls-auth-clients", "yes"]));
    let mut plain = server.connect();
    let refused = redis_cli_tls(&pki, tls_port, false, &["PING"]);
    assert_ne!(stdout(&refused), "PONG", "{refused:?}");
    let py = run_python(
        "import os, redis\nprint(redis.Redis(host='127.0.0.1', port=int(os.environ['PORT']), ssl=True, ssl_ca_certs=os.environ['CA'], socket_timeout=10).ping())",
        &[("PORT", tls_port.to_string()), ("CA", pki.arg("ca.crt"))],
    );
    assert!(py.is_err(), "redis-py without a certificate got {py:?}");
    wait_for("the refusal is logged", Duration::from_secs(10), || {
        server.log().contains("Error accepting a client connection")
    });
    // Clients with certificates, and the plain port, still work.
    let out = redis_cli_tls(&pki, tls_port, true, &["PING"]);
    assert_eq!(stdout(&out), "PONG", "{out:?}");
    let pong: String = run(&mut plain, &["PING"]);
    assert_eq!(pong, "PONG");
}

#[test]
fn redis_py_with_and_without_a_client_certificate() {
    let pki = Pki::generate();
    let tls_port = free_port();
    let _server = start(&pki.server_flags(tls_port, &["--tls-auth-clients", "optional"]));
    let program = r#"
import os, redis
kw = dict(host="127.0.0.1", port=int(os.environ["PORT"]), ssl=True,
          ssl_ca_certs=os.environ["CA"], socket_timeout=10, decode_responses=True)
without = redis.Redis(**kw)
with_cert = redis.Redis(ssl_certfile=os.environ["CERT"], ssl_keyfile=os.environ["KEY"], **kw)
assert without.set("py", "1")
assert with_cert.incr("py") == 2
lock = without.lock("py-lock", timeout=30)
assert lock.acquire(blocking=False)
assert not with_cert.lock("py-lock", timeout=30).acquire(blocking=False)
lock.release()
r3 = redis.Redis(protocol=3, **kw)
print(r3.get("py"), r3.execute_command("HELLO", 3)["proto"])
"#;
    let out = run_python(
        program,
        &[
            ("PORT", tls_port.to_string()),
            ("CA", pki.arg("ca.crt")),
            ("CERT", pki.arg("client.crt")),
            ("KEY", pki.arg("client.key")),
        ],
    )
    .unwrap_or_else(|e| panic!("redis-py over TLS failed: {e}"));
    assert_eq!(out, "2 3");
}

#[test]
fn ioredis_over_tls_with_the_settings_in_a_config_file() {
    let pki = Pki::generate();
    let tls_port = free_port();
    let conf = pki.path("raftlock.conf");
    std::fs::write(
        &conf,
        format!(
            "tls-port {tls_port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\ntls-auth-clients no\n",
            pki.arg("server.crt"),
            pki.arg("server.key"),
            pki.arg("ca.crt")
        ),
    )
    .expect("write the config file");
    let server = start(&["--config".to_string(), conf.display().to_string()]);
    let compat = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat");
    assert!(
        compat.join("node_modules/ioredis/package.json").is_file(),
        "ioredis is not installed in tests/compat: run scripts/test.sh, or `npm ci` in tests/compat"
    );
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "tls.test.mjs"])
        .current_dir(&compat)
        .env("RAFTLOCK_TLS_PORT", tls_port.to_string())
        .env("RAFTLOCK_TLS_CA", pki.path("ca.crt"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("node is not installed: scripts/test.sh installs it");
    assert!(
        out.status.success(),
        "tls.test.mjs failed\n{}\n{}\n--- raftlock log ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
}

#[test]
fn sighup_and_changed_files_reload_the_certificate_and_a_broken_one_is_not_taken() {
    let pki = Pki::generate();
    let tls_port = free_port();
    let server = start(&pki.server_flags(tls_port, &[]));
    assert_eq!(served_serial(&pki, tls_port), "03E9"); // 1001
                                                       // SIGHUP.
    pki.issue("server", 1002, "raftlock server");
    let hup = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(hup.success());
    wait_for("SIGHUP's reload", Duration::from_secs(10), || {
        served_serial(&pki, tls_port) == "03EA"
    });
    // A broken certificate is refused; the one in use stays.
    std::fs::write(pki.path("server.crt"), "not a certificate\n").expect("break the cert");
    wait_for(
        "the failed reload is logged",
        Duration::from_secs(10),
        || {
            let _ = served_serial(&pki, tls_port);
            server.log().contains("Failed to reload TLS configuration")
        },
    );
    assert_eq!(served_serial(&pki, tls_port), "03EA");
    assert!(
        server.log().contains("no certificate in"),
        "{}",
        server.log()
    );
    // A good one replaced without a signal is taken up by the next connections.
    pki.issue("server", 1003, "raftlock server");
    wait_for("the changed files' reload", Duration::from_secs(10), || {
        served_serial(&pki, tls_port) == "03EB"
    });
}

#[test]
fn a_follower_relays_to_a_leader_that_has_only_a_tls_port() {
    let pki = Pki::generate();
    // Node 1: a plain port, relays over TLS with the node certificate.
    let one = Server::start_with(&[
        "--tls-replication",
        "yes",
        "--tls-ca-cert-file",
        &pki.arg("ca.crt"),
        "--tls-cert-file",
        &pki.arg("server.crt"),
        "--tls-key-file",
        &pki.arg("server.key"),
    ]);
    // Node 2: TLS only, waiting to be added.
    let tls_port = free_port();
    let two = start(&pki.server_flags(tls_port, &["--id", "2", "--join", "--port", "0"]));
    let mut con = one.connect();
    let added: String = run(
        &mut con,
        &[
            "RAFT.NODE",
            "ADD",
            "2",
            &format!("127.0.0.1:{tls_port}"),
            &format!("127.0.0.1:{}", two.raft_port),
        ],
    );
    assert_eq!(added, "OK");
    wait_for("node 2 leads", Duration::from_secs(30), || {
        let role: redis::Value = run(&mut con, &["ROLE"]);
        let follows =
            matches!(&role, redis::Value::Array(items) if common::value_text(&items[0]) == "slave");
        if !follows {
            let _: redis::RedisResult<String> =
                common::cmd(&["RAFT.TRANSFER-LEADER", "2"]).query(&mut con);
        }
        follows
    });
    // Node 1 relays over TLS (node 2 asks for a client certificate: it presents its own).
    let set: String = run(&mut con, &["SET", "relayed", "through-tls"]);
    assert_eq!(set, "OK");
    let token: i64 = run(&mut con, &["LOCK", "relayed-lock", "owner", "30000"]);
    assert!(token > 0);
    let out = redis_cli_tls(&pki, tls_port, true, &["GET", "relayed"]);
    assert_eq!(stdout(&out), "through-tls", "{out:?}\n{}", two.log());
    let out = redis_cli_tls(&pki, tls_port, true, &["ROLE"]);
    assert!(stdout(&out).starts_with("master"), "{out:?}");
    let out = redis_cli_tls(&pki, tls_port, true, &["CONFIG", "GET", "port"]);
    assert_eq!(stdout(&out), "port\n0");
}

#[test]
fn the_raftlock_client_subcommands_speak_tls_as_redis_cli_does() {
    let pki = Pki::generate();
    let tls_port = free_port();
    let _server = start(&pki.server_flags(tls_port, &["--tls-auth-clients", "yes"]));
    let raftlock = |with_cert: bool, args: &[&str]| -> Output {
        // The connection options go first: `run` passes everything after `--` to its
        // command.
        let mut command = Command::new(env!("CARGO_BIN_EXE_raftlock"));
        command.arg(args[0]);
        command.args(["-p", &tls_port.to_string(), "--tls", "--cacert"]);
        command.arg(pki.path("ca.crt"));
        if with_cert {
            command
                .arg("--cert")
                .arg(pki.path("client.crt"))
                .arg("--key")
                .arg(pki.path("client.key"));
        }
        command.args(&args[1..]);
        command.stdin(Stdio::null()).output().expect("run raftlock")
    };
    let out = raftlock(true, &["lock", "job", "--owner", "ops", "--ttl", "30s"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).parse::<u64>().is_ok(),
        "a fencing token: {out:?}"
    );
    let out = raftlock(
        true,
        &[
            "run",
            "--lock",
            "nightly",
            "--",
            "sh",
            "-c",
            "echo $RAFTLOCK_TOKEN",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).parse::<u64>().is_ok(), "{out:?}");
    // The server asks for a client certificate: without one the server refuses (in TLS
    // 1.3 the client hears it at its first read), and the subcommand says so and exits 2,
    // as for any connection error.
    let out = raftlock(false, &["locks"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CertificateRequired"),
        "{out:?}"
    );
}
