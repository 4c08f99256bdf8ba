//! Starts the real `raftlock` binary on loopback ports, in a temporary data dir, and
//! ends it (by PID, through its `Child`) when the test is done.

#![allow(dead_code)]

pub mod cluster;
pub mod fake_clock;
pub mod netns;
pub mod pki;
pub mod proxy;
pub mod redis_server;
pub mod suite;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct loopback ports that were free a moment ago (each stays bound until all
/// are chosen: ports asked for one by one may repeat, as the kernel hands a port it just
/// got back out again).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("a bound address").port())
        .collect()
}

fn two_free_ports() -> [u16; 2] {
    let ports = free_ports(2);
    [ports[0], ports[1]]
}

/// How long a test client waits for one reply before the test fails.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Server {
    pub port: u16,
    pub raft_port: u16,
    pub data_dir: PathBuf,
    child: Option<Child>,
    extra_args: Vec<String>,
    /// The `--requirepass` value, if the server was started with one.
    password: Option<String>,
    /// Environment variables the process starts with, besides the test's own.
    env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

/// Runs `start` until it succeeds, again (up to 5 times) while it fails with "Address
/// already in use": something else took a port between `free_ports` and the bind (client
/// connections of parallel tests use ephemeral ports too), so `start` must choose new
/// ports after a failure. Panics with `what` and the log of any other failure.
pub fn retry_port_clash<T>(what: &str, mut start: impl FnMut() -> Result<T, String>) -> T {
    const ATTEMPTS: usize = 5;
    for attempt in 1..=ATTEMPTS {
        match start() {
            Ok(started) => return started,
            Err(log) if attempt < ATTEMPTS && log.contains("Address already in use") => {}
            Err(log) => panic!("{what}: {log}"),
        }
    }
    unreachable!("the last attempt returns or panics")
}

impl Server {
    /// A fresh single-node server.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(extra_args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        Server::start_in(data_dir, Some(tmp), extra_args, &[])
    }

    /// A server whose data lives in `data_dir` (its log beside it, in `data_dir.log`),
    /// started (and restarted) with `env` added to its environment.
    pub fn start_in_dir(data_dir: PathBuf, extra_args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_in(data_dir, None, extra_args, env)
    }

    fn start_in(
        data_dir: PathBuf,
        tmp: Option<tempfile::TempDir>,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let [port, raft_port] = two_free_ports();
        let mut server = Server {
            port,
            raft_port,
            data_dir,
            child: None,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            password: extra_args
                .iter()
                .position(|a| *a == "--requirepass")
                .and_then(|i| extra_args.get(i + 1))
                .map(|p| p.to_string()),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _tmp: tmp,
        };
        retry_port_clash("raftlock exited before it was ready", || {
            let started = server.try_spawn();
            if started.is_err() {
                [server.port, server.raft_port] = two_free_ports();
            }
            started
        });
        server
    }

    fn spawn(&mut self) {
        if let Err(log) = self.try_spawn() {
            panic!("raftlock exited before it was ready: {log}");
        }
    }

    /// Starts the binary and waits until it is ready; if it exits first, returns what
    /// it logged during this start.
    fn try_spawn(&mut self) -> Result<(), String> {
        let log_offset = self.log().len();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .expect("open server log");
        let child = Command::new(env!("CARGO_BIN_EXE_raftlock"))
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--raft-listen")
            .arg(format!("127.0.0.1:{}", self.raft_port))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start raftlock");
        self.child = Some(child);
        self.wait_ready(log_offset).map_err(|status| {
            let log = self.log();
            format!("{status}: {}", log.get(log_offset..).unwrap_or(&log))
        })
    }

    /// Waits until the node accepts connections and answers a read (which needs a
    /// leader); returns the exit status if the process ended first. A node without a
    /// plain port (`--port 0`, TLS only) is ready once it logs that it listens.
    fn wait_ready(&mut self, log_offset: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let tls_only = self
            .extra_args
            .windows(2)
            .any(|w| w[0] == "--port" && w[1] == "0");
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("exited with {status}"));
            }
            if tls_only {
                if self
                    .log()
                    .get(log_offset..)
                    .unwrap_or("")
                    .contains("raftlock ready")
                {
                    return Ok(());
                }
                assert!(
                    Instant::now() < deadline,
                    "raftlock did not start: {}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let connection = match &self.password {
                Some(password) => self.try_connection_to(&self.url_with_password(password)),
                None => self.try_connection(),
            };
            if let Ok(mut con) = connection {
                let ready: redis::RedisResult<i64> = redis::cmd("EXISTS")
                    .arg("__raftlock_test_ready")
                    .query(&mut con);
                if ready.is_ok() {
                    return Ok(());
                }
            }
            assert!(
                Instant::now() < deadline,
                "raftlock did not become ready: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn url_with_password(&self, password: &str) -> String {
        format!("redis://:{password}@127.0.0.1:{}/", self.port)
    }

    fn try_connection(&self) -> redis::RedisResult<redis::Connection> {
        self.try_connection_to(&self.url())
    }

    /// Connects with a read timeout, so a server that stops answering fails the test
    /// instead of hanging it.
    fn try_connection_to(&self, url: &str) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(url)?;
        let con = client.get_connection_with_timeout(Duration::from_secs(2))?;
        con.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        con.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        Ok(con)
    }

    /// A synchronous `redis` crate connection (RESP2).
    pub fn connect(&self) -> redis::Connection {
        self.try_connection().expect("connect to raftlock")
    }

    /// A connection that speaks RESP3 (the client sends HELLO 3).
    pub fn connect_resp3(&self) -> redis::Connection {
        self.try_connection_to(&format!("{}?protocol=resp3", self.url()))
            .expect("connect with RESP3")
    }

    /// A raw TCP connection for protocol tests.
    pub fn raw(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("raw connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        stream
    }

    /// A raw connection that reads whole reply frames.
    pub fn raw_client(&self) -> RawClient {
        RawClient::new(self.raw())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits up to `timeout` for the process to end by itself; its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Starts the binary again on the same ports and data dir.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends raw bytes and reads until `expect_len` bytes arrived or the peer closed.
pub fn raw_exchange(stream: &mut TcpStream, request: &[u8], expect: &[u8]) -> Vec<u8> {
    stream.write_all(request).expect("raw write");
    read_until(stream, expect)
}

/// Reads until the bytes received end with `suffix`, the peer closes, or 10 s pass.
pub fn read_until(stream: &mut TcpStream, suffix: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(suffix) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// True once the peer has closed the connection (a read returns 0 bytes).
pub fn peer_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// The error a command got, as the server worded it: `CODE detail`
/// (e.g. `ERR syntax error`). Panics if the command succeeded.
pub fn query_err(con: &mut redis::Connection, cmd: &redis::Cmd) -> String {
    match cmd.query::<redis::Value>(con) {
        Ok(value) => panic!("expected an error from {:?}, got {value:?}", cmd_text(cmd)),
        Err(err) => err_text(&err),
    }
}

/// A `redis` crate error as the server sent it: `CODE detail`.
pub fn err_text(err: &redis::RedisError) -> String {
    match (err.code(), err.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => format!("(not a server error) {err}"),
    }
}

/// The arguments of a command, for failure messages.
pub fn cmd_text(cmd: &redis::Cmd) -> String {
    cmd.args_iter()
        .map(|arg| match arg {
            redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            _ => "<cursor>".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A map reply as (key, value) pairs: a RESP3 map, or a RESP2 flat array of pairs.
pub fn map_entries(value: redis::Value) -> Vec<(String, redis::Value)> {
    let pairs = match value {
        redis::Value::Map(pairs) => pairs,
        redis::Value::Array(items) => {
            assert!(
                items.len() % 2 == 0,
                "odd-length array is not a map: {items:?}"
            );
            let mut items = items.into_iter();
            let mut pairs = Vec::new();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                pairs.push((k, v));
            }
            pairs
        }
        other => panic!("expected a map reply, got {other:?}"),
    };
    pairs
        .into_iter()
        .map(|(k, v)| (value_text(&k), v))
        .collect()
}

/// The text of a string-like reply (bulk, simple, verbatim).
pub fn value_text(value: &redis::Value) -> String {
    match value {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Okay => "OK".to_string(),
        redis::Value::VerbatimString { text, .. } => text.clone(),
        other => panic!("expected a string reply, got {other:?}"),
    }
}

/// Milliseconds since the Unix epoch on this machine.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// The `redis-cli` on PATH; fails when there is none (scripts/test.sh installs it).
pub fn redis_cli() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("redis-cli"))
                .find(|path| path.is_file())
        })
        .expect(
            "redis-cli is not installed: scripts/test.sh installs it (apt-get install redis-tools)",
        )
}

/// `raftlock restore BACKUP --data-dir DATA_DIR EXTRA...`, which must succeed.
pub fn restore(backup: &Path, data_dir: &Path, extra_args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_raftlock"))
        .arg("restore")
        .arg(backup)
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra_args)
        .output()
        .expect("run raftlock restore");
    assert!(
        out.status.success(),
        "raftlock restore failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A command from its words, e.g. `cmd(&["SET", "k", "v"])`.
pub fn cmd(args: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd
}

/// Runs a command that must succeed and returns its reply converted to `T`.
pub fn run<T: redis::FromRedisValue>(con: &mut redis::Connection, args: &[&str]) -> T {
    match cmd(args).query(con) {
        Ok(value) => value,
        Err(err) => panic!("{} failed: {}", args.join(" "), err_text(&err)),
    }
}

/// Runs a command that must fail and returns the error as the server worded it.
pub fn run_err(con: &mut redis::Connection, args: &[&str]) -> String {
    query_err(con, &cmd(args))
}

/// A bulk string reply.
pub fn bulk(text: &str) -> redis::Value {
    redis::Value::BulkString(text.as_bytes().to_vec())
}

/// Polls until `leader` names a node and a write through the connection it gives
/// commits; that node's id. Panics with `logs()` after `timeout`.
pub fn wait_until_a_leader_writes(
    timeout: Duration,
    mut leader: impl FnMut() -> Option<(u64, redis::Connection)>,
    logs: impl Fn() -> String,
) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((id, mut con)) = leader() {
            let wrote: redis::RedisResult<i64> =
                redis::cmd("INCR").arg("__leader_probe").query(&mut con);
            if wrote.is_ok() {
                return id;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no leader within {timeout:?}; logs:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One RESP request (an array of bulk strings) from its arguments, encoded by the server's
/// own encoder (`raftlock::resp::encode_request`, the one the relay sends with).
pub fn resp_request<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = Vec::new();
    raftlock::resp::encode_request(args, &mut out);
    out
}

/// A raw TCP client that reads whole RESP2/RESP3 frames, for tests of the wire format.
/// Frames are cut by the server's own reply parser (`raftlock::resp::parse_reply_in`, the
/// one the relay and the benchmark use) and returned byte for byte.
pub struct RawClient {
    stream: TcpStream,
    /// Bytes read but not yet returned as a frame.
    pending: Vec<u8>,
}

impl RawClient {
    pub fn new(stream: TcpStream) -> RawClient {
        RawClient {
            stream,
            pending: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("raw write");
    }

    /// The next whole reply frame, byte for byte; panics on EOF or timeout.
    pub fn frame(&mut self) -> Vec<u8> {
        match self.read_frame() {
            Ok(frame) => frame,
            Err(err) => panic!(
                "no complete reply ({err}); got so far: {:?}",
                String::from_utf8_lossy(&self.pending)
            ),
        }
    }

    /// The next whole reply frame, or `None` if the connection closed or timed out first.
    pub fn try_frame(&mut self) -> Option<Vec<u8>> {
        self.read_frame().ok()
    }

    /// The next frame as text (lossy UTF-8).
    pub fn frame_text(&mut self) -> String {
        String::from_utf8_lossy(&self.frame()).into_owned()
    }

    /// Sends `request` and returns the next reply frame as text.
    pub fn call(&mut self, request: &str) -> String {
        self.send(request.as_bytes());
        self.frame_text()
    }

    fn read_frame(&mut self) -> std::io::Result<Vec<u8>> {
        loop {
            match raftlock::resp::parse_reply_in(&self.pending) {
                Ok(Some((_, used))) => return Ok(self.pending.drain(..used).collect()),
                Ok(None) => {}
                Err(err) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("malformed reply: {err:?}"),
                    ))
                }
            }
            let mut buf = [0u8; 16 * 1024];
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed inside a frame",
                ));
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    /// True once the server has closed the connection (a read returns 0 bytes, or
    /// the connection is reset) within the read timeout; any bytes still buffered
    /// before the close are skipped.
    pub fn closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}
