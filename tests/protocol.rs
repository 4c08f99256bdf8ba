//! The wire: inline commands, pipelining, mass insertion, malformed and oversized frames,
//! half-sent frames, and the client limit. Raw TCP, byte for byte as Redis 7 answers.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bulk, redis_cli, resp_request as resp, run, RawClient, Server};
use redis::Value;

/// Checks that the server still serves other clients and kept earlier data.
fn assert_healthy(server: &Server) {
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["GET", "sentinel"]), bulk("intact"));
    let n: i64 = run(&mut con, &["INCR", "health-checks"]);
    assert!(n >= 1);
}

#[test]
fn inline_commands_work_like_typing_into_telnet() {
    let server = Server::start();
    let mut raw = server.raw_client();
    assert_eq!(raw.call("PING\r\n"), "+PONG\r\n");
    assert_eq!(raw.call("ping\n"), "+PONG\r\n", "a bare LF ends a line too");
    assert_eq!(raw.call("SET k \"a b\"\r\n"), "+OK\r\n");
    assert_eq!(raw.call("GET k\r\n"), "$3\r\na b\r\n");
    assert_eq!(
        raw.call("SET q 'it''s'\r\n"),
        "-ERR Protocol error: unbalanced quotes in request\r\n"
    );
    assert!(raw.closed_by_server());

    let mut raw = server.raw_client();
    assert_eq!(raw.call("SET e \"tab\\there\\x41\"\r\n"), "+OK\r\n");
    assert_eq!(raw.call("GET e\r\n"), "$9\r\ntab\thereA\r\n");
    assert_eq!(raw.call("  SET   spaced   value  \r\n"), "+OK\r\n");
    assert_eq!(raw.call("GET spaced\r\n"), "$5\r\nvalue\r\n");
    // Empty lines are skipped; the next command still answers.
    assert_eq!(raw.call("\r\n\r\nECHO hi\r\n"), "$2\r\nhi\r\n");
    assert_eq!(raw.call("INCR n\r\nINCR n\r\n"), ":1\r\n");
    assert_eq!(raw.frame_text(), ":2\r\n");
    assert_eq!(
        raw.call("NOSUCH a\r\n"),
        "-ERR unknown command 'NOSUCH', with args beginning with: 'a' \r\n"
    );
    assert_eq!(raw.call("PING\r\n"), "+PONG\r\n");
}

/// Sends `request` from a writer thread (so neither side can block the other on full
/// socket buffers) and reads exactly `expected.len()` bytes back.
fn pipeline_exchange(server: &Server, request: Vec<u8>, expected: &[u8]) -> Vec<u8> {
    let stream = server.raw();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || writer.write_all(&request));
    let mut reader = stream;
    let mut got = vec![0u8; expected.len()];
    let mut filled = 0;
    while filled < got.len() {
        match reader.read(&mut got[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) => panic!("reading pipelined replies after {filled} bytes: {err}"),
        }
    }
    got.truncate(filled);
    sender
        .join()
        .expect("writer thread")
        .expect("pipelined write");
    got
}

#[test]
fn ten_thousand_pipelined_commands_in_one_write_are_answered_in_order() {
    let server = Server::start();
    const N: usize = 10_000;
    let mut request = Vec::new();
    let mut expected = Vec::new();
    let mut counter = 0;
    for i in 0..N {
        match i % 4 {
            0 => {
                request.extend(resp(&["SET", &format!("key:{i}"), &format!("value:{i}")]));
                expected.extend_from_slice(b"+OK\r\n");
            }
            1 => {
                let value = format!("value:{}", i - 1);
                request.extend(resp(&["GET", &format!("key:{}", i - 1)]));
                expected.extend(format!("${}\r\n{value}\r\n", value.len()).into_bytes());
            }
            2 => {
                counter += 1;
                request.extend(resp(&["INCR", "counter"]));
                expected.extend(format!(":{counter}\r\n").into_bytes());
            }
            _ => {
                // Inline commands mixed into the same stream.
                request.extend_from_slice(format!("ECHO e{i}\r\n").as_bytes());
                let echo = format!("e{i}");
                expected.extend(format!("${}\r\n{echo}\r\n", echo.len()).into_bytes());
            }
        }
    }
    let got = pipeline_exchange(&server, request, &expected);
    assert_eq!(got.len(), expected.len(), "reply stream length");
    if got != expected {
        let at = got
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        let from = at.saturating_sub(40);
        panic!(
            "replies differ at byte {at}: got {:?}, expected {:?}",
            String::from_utf8_lossy(&got[from..(at + 40).min(got.len())]),
            String::from_utf8_lossy(&expected[from..(at + 40).min(expected.len())])
        );
    }
    let mut con = server.connect();
    assert_eq!(run::<i64>(&mut con, &["GET", "counter"]), counter);
    assert_eq!(run::<i64>(&mut con, &["DBSIZE"]), N as i64 / 4 + 1);
}

#[test]
fn errors_inside_a_pipeline_keep_their_place_in_the_reply_stream() {
    let server = Server::start();
    let mut raw = server.raw_client();
    let mut request = resp(&["SET", "a", "1"]);
    request.extend(resp(&["INCR", "a", "extra"]));
    request.extend(resp(&["GET", "a"]));
    request.extend(resp(&["NOSUCH"]));
    request.extend(resp(&["SET", "a", "1", "NX", "XX"]));
    request.extend(resp(&["INCR", "b"]));
    raw.send(&request);
    assert_eq!(raw.frame_text(), "+OK\r\n");
    assert_eq!(
        raw.frame_text(),
        "-ERR wrong number of arguments for 'incr' command\r\n"
    );
    assert_eq!(raw.frame_text(), "$1\r\n1\r\n");
    assert_eq!(
        raw.frame_text(),
        "-ERR unknown command 'NOSUCH', with args beginning with: \r\n"
    );
    assert_eq!(raw.frame_text(), "-ERR syntax error\r\n");
    assert_eq!(raw.frame_text(), ":1\r\n");
}

#[test]
fn pipelined_reads_see_exactly_the_writes_sent_before_them() {
    let server = Server::start();
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for n in 1..=1_000 {
        request.extend(resp(&["INCR", "c"]));
        request.extend(resp(&["GET", "c"]));
        request.extend(resp(&["EXISTS", &format!("k{n}")]));
        request.extend(resp(&["SET", &format!("k{n}"), "v"]));
        let text = n.to_string();
        expected.extend(format!(":{n}\r\n${}\r\n{text}\r\n:0\r\n+OK\r\n", text.len()).into_bytes());
    }
    let got = pipeline_exchange(&server, request, &expected);
    if got != expected {
        let at = got
            .iter()
            .zip(&expected)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        let from = at.saturating_sub(30);
        panic!(
            "a read saw a write sent after it (or missed one before): at byte {at} got {:?}, expected {:?}",
            String::from_utf8_lossy(&got[from..(at + 30).min(got.len())]),
            String::from_utf8_lossy(&expected[from..(at + 30).min(expected.len())])
        );
    }
}

#[test]
fn a_client_that_reads_its_replies_late_still_gets_all_of_them_in_order() {
    let server = Server::start();
    const N: usize = 20_000;
    let stream = server.raw();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let mut writer = stream.try_clone().expect("clone");
    let request: Vec<u8> = (0..N).flat_map(|_| resp(&["INCR", "late"])).collect();
    let sender = std::thread::spawn(move || writer.write_all(&request));
    // Nobody reads for a while: the server must hold back, not drop or reorder.
    std::thread::sleep(Duration::from_millis(1_000));
    let expected: Vec<u8> = (1..=N)
        .flat_map(|n| format!(":{n}\r\n").into_bytes())
        .collect();
    let mut reader = stream;
    let mut got = vec![0u8; expected.len()];
    reader.read_exact(&mut got).expect("all replies");
    sender.join().expect("writer thread").expect("write");
    assert!(got == expected, "replies out of order or missing");
}

#[test]
fn many_concurrent_connections_are_served() {
    let server = Server::start();
    const CLIENTS: usize = 100;
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let server = &server;
            scope.spawn(move || {
                let mut con = server.connect();
                let key = format!("client:{client}");
                for i in 0..10 {
                    run::<()>(&mut con, &["SET", &key, &i.to_string()]);
                    assert_eq!(run::<i64>(&mut con, &["GET", &key]), i);
                    run::<()>(&mut con, &["INCR", "shared"]);
                }
            });
        }
    });
    let mut con = server.connect();
    assert_eq!(
        run::<i64>(&mut con, &["GET", "shared"]),
        (CLIENTS * 10) as i64
    );
    assert_eq!(run::<i64>(&mut con, &["DBSIZE"]), CLIENTS as i64 + 1);
}

#[test]
fn redis_crate_pipeline_of_ten_thousand_commands() {
    let server = Server::start();
    let mut con = server.connect();
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(i);
    }
    let replies: Vec<Value> = pipe.query(&mut con).unwrap();
    assert_eq!(replies.len(), 10_000);
    assert!(replies.iter().all(|r| *r == Value::Okay));
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        pipe.cmd("GET").arg(format!("k{i}"));
    }
    let values: Vec<i64> = pipe.query(&mut con).unwrap();
    assert_eq!(values, (0..10_000).collect::<Vec<i64>>());
}

#[test]
fn redis_cli_pipe_mass_insertion() {
    let cli = redis_cli();
    let server = Server::start();
    const N: usize = 20_000;
    let mut input = Vec::new();
    for i in 0..N {
        input.extend(resp(&["SET", &format!("mass:{i}"), &format!("v{i}")]));
    }
    let mut child = Command::new(cli)
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "--pipe"])
        .arg("--pipe-timeout")
        .arg("60")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start redis-cli --pipe");
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("redis-cli --pipe");
    feeder.join().expect("feeder").expect("feed redis-cli");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "redis-cli --pipe failed: {stdout} {stderr}"
    );
    assert!(
        stdout.contains(&format!("errors: 0, replies: {N}")),
        "redis-cli --pipe summary: {stdout} {stderr}"
    );
    let mut con = server.connect();
    assert_eq!(run::<i64>(&mut con, &["DBSIZE"]), N as i64);
    for i in [0, 1, N / 2, N - 1] {
        assert_eq!(
            run::<Value>(&mut con, &["GET", &format!("mass:{i}")]),
            bulk(&format!("v{i}"))
        );
    }
}

/// Sends `request` on a fresh connection; the server must answer exactly `reply` and
/// close the connection; then the server must still be healthy.
fn assert_protocol_error(server: &Server, request: &[u8], reply: &str) {
    let mut raw = server.raw_client();
    raw.send(request);
    assert_eq!(
        raw.frame_text(),
        reply,
        "reply to {:?}",
        String::from_utf8_lossy(&request[..request.len().min(60)])
    );
    assert!(
        raw.closed_by_server(),
        "connection must be closed after {:?}",
        String::from_utf8_lossy(&request[..request.len().min(60)])
    );
    assert_healthy(server);
}

#[test]
fn garbage_bytes_get_a_protocol_error_and_the_connection_is_closed() {
    let server = Server::start();
    run::<()>(&mut server.connect(), &["SET", "sentinel", "intact"]);
    assert_protocol_error(
        &server,
        b"*1\r\nxyz\r\n",
        "-ERR Protocol error: expected '$', got 'x'\r\n",
    );
    assert_protocol_error(
        &server,
        b"*2\r\n$3\r\nGET\r\n!garbage\r\n",
        "-ERR Protocol error: expected '$', got '!'\r\n",
    );
    assert_protocol_error(
        &server,
        b"*\xff\xfe\xfd\r\n",
        "-ERR Protocol error: invalid multibulk length\r\n",
    );
    assert_protocol_error(
        &server,
        b"*1\r\n$\xff\xfe\r\n",
        "-ERR Protocol error: invalid bulk length\r\n",
    );
    assert_protocol_error(
        &server,
        b"SET k \"unbalanced\r\n",
        "-ERR Protocol error: unbalanced quotes in request\r\n",
    );
    // Commands before the bad frame were served; nothing after it is.
    let mut raw = server.raw_client();
    raw.send(b"SET before 1\r\n*1\r\nxyz\r\nSET after 1\r\n");
    assert_eq!(raw.frame_text(), "+OK\r\n");
    assert_eq!(
        raw.frame_text(),
        "-ERR Protocol error: expected '$', got 'x'\r\n"
    );
    assert!(raw.closed_by_server());
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["GET", "before"]), bulk("1"));
    assert_eq!(run::<Value>(&mut con, &["GET", "after"]), Value::Nil);
    // Bytes that are not a known command are an ordinary error, not a protocol error.
    let mut raw = server.raw_client();
    raw.send(b"\xff\xfe\xfd\r\n");
    let reply = raw.frame_text();
    assert!(reply.starts_with("-ERR unknown command '"), "{reply:?}");
    assert_eq!(raw.call("PING\r\n"), "+PONG\r\n");
    assert_healthy(&server);
}

#[test]
fn a_huge_bulk_header_is_refused_without_allocating() {
    let server = Server::start();
    run::<()>(&mut server.connect(), &["SET", "sentinel", "intact"]);
    // 10 GB, far over the 512 MB limit.
    assert_protocol_error(
        &server,
        b"*1\r\n$10000000000\r\n",
        "-ERR Protocol error: invalid bulk length\r\n",
    );
    // One byte over 512 MB.
    assert_protocol_error(
        &server,
        b"*2\r\n$3\r\nGET\r\n$536870913\r\n",
        "-ERR Protocol error: invalid bulk length\r\n",
    );
    assert_protocol_error(
        &server,
        b"*1\r\n$-5\r\n",
        "-ERR Protocol error: invalid bulk length\r\n",
    );
    assert_protocol_error(
        &server,
        b"*1\r\n$abc\r\n",
        "-ERR Protocol error: invalid bulk length\r\n",
    );
}

#[test]
fn a_bad_multibulk_length_is_refused() {
    let server = Server::start();
    run::<()>(&mut server.connect(), &["SET", "sentinel", "intact"]);
    assert_protocol_error(
        &server,
        b"*abc\r\n",
        "-ERR Protocol error: invalid multibulk length\r\n",
    );
    assert_protocol_error(
        &server,
        b"*99999999999\r\n",
        "-ERR Protocol error: invalid multibulk length\r\n",
    );
}

#[test]
fn an_inline_request_without_end_is_refused_past_64_kb() {
    let server = Server::start();
    run::<()>(&mut server.connect(), &["SET", "sentinel", "intact"]);
    assert_protocol_error(
        &server,
        &vec![b'a'; 70_000],
        "-ERR Protocol error: too big inline request\r\n",
    );
}

#[test]
fn half_sent_frames_then_disconnect_change_nothing() {
    let server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "sentinel", "intact"]);

    // An acknowledged write, then half a frame, then the client goes away.
    let mut raw = server.raw_client();
    assert_eq!(raw.call("SET acked 1\r\n"), "+OK\r\n");
    raw.send(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nva");
    drop(raw);

    // Cut inside a header, inside an inline line, and inside a large declared bulk.
    for partial in [
        &b"*3\r\n$3\r\nSET\r\n$4\r\nha"[..],
        &b"*3\r\n$3"[..],
        &b"SET half val"[..],
    ] {
        let mut raw = server.raw_client();
        raw.send(partial);
        drop(raw);
    }
    let mut raw = server.raw_client();
    raw.send(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$100000000\r\n");
    raw.send(&vec![b'x'; 1_000_000]);
    drop(raw);

    assert_healthy(&server);
    assert_eq!(run::<Value>(&mut con, &["GET", "acked"]), bulk("1"));
    assert_eq!(run::<Value>(&mut con, &["GET", "half"]), Value::Nil);
    assert_eq!(run::<i64>(&mut con, &["DBSIZE"]), 3);
}

/// Opens a raw connection that the server has accepted as a client (it answers PING),
/// retrying while the server may still count connections that just closed.
fn accepted_client(server: &Server) -> RawClient {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut raw = server.raw_client();
        raw.send(b"PING\r\n");
        let reply = raw.try_frame();
        if reply.as_deref() == Some(&b"+PONG\r\n"[..]) {
            return raw;
        }
        assert!(
            Instant::now() < deadline,
            "could not get a client slot: {:?}",
            reply.map(|r| String::from_utf8_lossy(&r).into_owned())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn frames_split_across_many_writes_are_reassembled() {
    let server = Server::start();
    let stream = server.raw();
    stream.set_nodelay(true).expect("nodelay");
    let mut raw = RawClient::new(stream);
    let mut request = resp(&["SET", "split", "a value"]);
    request.extend(resp(&["GET", "split"]));
    request.extend_from_slice(b"ECHO inline\r\n");
    for byte in &request {
        raw.send(std::slice::from_ref(byte));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(raw.frame_text(), "+OK\r\n");
    assert_eq!(raw.frame_text(), "$7\r\na value\r\n");
    assert_eq!(raw.frame_text(), "$6\r\ninline\r\n");
}

#[test]
fn the_bulk_limit_from_the_command_line_is_enforced() {
    let server = Server::start_with(&["--max-bulk-bytes", "1000"]);
    run::<()>(&mut server.connect(), &["SET", "sentinel", "intact"]);
    let at_limit = "x".repeat(1000);
    let mut raw = server.raw_client();
    raw.send(&resp(&["SET", "big", &at_limit]));
    assert_eq!(raw.frame_text(), "+OK\r\n");
    let over = "x".repeat(1001);
    assert_protocol_error(
        &server,
        &resp(&["SET", "big", &over]),
        "-ERR Protocol error: invalid bulk length\r\n",
    );
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["STRLEN", "big"]), Value::Int(1000));
}

#[test]
fn unauthenticated_clients_may_not_send_large_frames() {
    let server = Server::start_with(&["--requirepass", "secret"]);
    let mut raw = server.raw_client();
    raw.send(b"*100\r\n");
    assert_eq!(
        raw.frame_text(),
        "-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
    assert!(raw.closed_by_server());
    let mut raw = server.raw_client();
    raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20000\r\n");
    assert_eq!(
        raw.frame_text(),
        "-ERR Protocol error: unauthenticated bulk length\r\n"
    );
    assert!(raw.closed_by_server());
    // Once authenticated, the ordinary limits apply.
    let mut raw = server.raw_client();
    assert_eq!(raw.call("AUTH secret\r\n"), "+OK\r\n");
    let big = "v".repeat(20_000);
    raw.send(&resp(&["SET", "k", &big]));
    assert_eq!(raw.frame_text(), "+OK\r\n");
    let mut many = vec!["MSET"];
    for _ in 0..50 {
        many.extend(["a", "b"]);
    }
    raw.send(&resp(&many));
    assert_eq!(raw.frame_text(), "+OK\r\n");
}

#[test]
fn clients_over_maxclients_are_refused_with_an_error() {
    let server = Server::start_with(&["--maxclients", "5"]);
    let mut clients: Vec<RawClient> = (0..5).map(|_| accepted_client(&server)).collect();

    let mut refused = server.raw_client();
    assert_eq!(
        refused.frame_text(),
        "-ERR max number of clients reached\r\n"
    );
    assert!(refused.closed_by_server());

    for client in clients.iter_mut() {
        assert_eq!(client.call("PING\r\n"), "+PONG\r\n");
    }
    // A freed slot can be taken again.
    clients.pop();
    let mut again = accepted_client(&server);
    assert_eq!(again.call("SET k v\r\n"), "+OK\r\n");
    assert_eq!(clients[0].call("GET k\r\n"), "$1\r\nv\r\n");
    let stats = clients[0].call("INFO stats\r\n");
    let rejected = stats
        .split("\r\n")
        .find_map(|line| line.strip_prefix("rejected_connections:"))
        .and_then(|n| n.parse::<i64>().ok());
    assert!(
        rejected >= Some(1),
        "rejected_connections in INFO stats: {stats:?}"
    );
}
