//! Crash safety: SIGKILL the server, start it again on the same data dir, and find every
//! acknowledged write, deadlines counting on from where they stood (cluster time stands
//! still while no leader runs: README, "Guarantees"), expiry resuming after the
//! restart, and fencing tokens that keep growing.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bulk, run, unix_ms, Server};
use redis::Value;

const WRITERS: usize = 4;
const KEYS_PER_WRITER: usize = 500;
/// Time to live of the keys written just before the kill: longer than the server is
/// down, they still exist after the restart and expire by their remaining time then.
const SHORT_TTL_MS: i64 = 2_000;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Ttl {
    None,
    LongPx,
    LongEx,
    Short,
}

fn ttl_kind(i: usize) -> Ttl {
    match i % 4 {
        0 => Ttl::None,
        1 => Ttl::LongPx,
        2 => Ttl::LongEx,
        _ => Ttl::Short,
    }
}

fn key(writer: usize, i: usize) -> String {
    format!("d:{writer}:{i}")
}

fn value(writer: usize, i: usize) -> String {
    format!("value-{writer}-{i}")
}

fn fence(con: &mut redis::Connection, key: &str) -> Option<i64> {
    match run::<Value>(con, &["FENCE", key]) {
        Value::Int(token) => Some(token),
        Value::Nil => None,
        other => panic!("FENCE {key}: expected an integer or nil, got {other:?}"),
    }
}

/// Polls DBSIZE until it is `want` or 10 s pass; returns the last value.
fn dbsize_eventually(con: &mut redis::Connection, want: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let size: i64 = run(con, &["DBSIZE"]);
        if size == want || Instant::now() > deadline {
            return size;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn acknowledged_writes_and_deadlines_survive_sigkill() {
    let mut server = Server::start();

    // Several connections write at once, in pipelined chunks; a write counts once its
    // reply arrived. Keys with a short time to live come last.
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let server = &server;
            scope.spawn(move || {
                let mut con = server.connect();
                for chunk in (0..KEYS_PER_WRITER).collect::<Vec<_>>().chunks(25) {
                    let mut pipe = redis::pipe();
                    for &i in chunk {
                        let cmd = pipe.cmd("SET").arg(key(writer, i)).arg(value(writer, i));
                        match ttl_kind(i) {
                            Ttl::None | Ttl::Short => {}
                            Ttl::LongPx => {
                                cmd.arg("PX").arg(600_000 + i as i64);
                            }
                            Ttl::LongEx => {
                                cmd.arg("EX").arg(3_600 + i as i64);
                            }
                        }
                    }
                    pipe.cmd("INCR").arg("acked-chunks");
                    let replies: Vec<Value> = pipe.query(&mut con).expect("write chunk");
                    assert!(replies[..chunk.len()].iter().all(|r| *r == Value::Okay));
                }
            });
        }
    });
    let mut con = server.connect();
    let chunks: i64 = run(&mut con, &["GET", "acked-chunks"]);
    assert_eq!(chunks, (WRITERS * KEYS_PER_WRITER / 25) as i64);

    // What the server says before the crash.
    let mut fences = BTreeMap::new();
    let mut deadlines = BTreeMap::new();
    let mut pttl_before = BTreeMap::new();
    let mut pipe = redis::pipe();
    let mut order = Vec::new();
    for writer in 0..WRITERS {
        for i in 0..KEYS_PER_WRITER {
            if ttl_kind(i) != Ttl::Short {
                pipe.cmd("FENCE").arg(key(writer, i));
                pipe.cmd("PEXPIRETIME").arg(key(writer, i));
                pipe.cmd("PTTL").arg(key(writer, i));
                order.push(key(writer, i));
            }
        }
    }
    let replies: Vec<Value> = pipe.query(&mut con).expect("read state before the crash");
    let read_at = Instant::now();
    for (k, reply) in order.iter().zip(replies.chunks(3)) {
        let Value::Int(token) = reply[0] else {
            panic!("FENCE {k} before the crash: {:?}", reply[0]);
        };
        fences.insert(k.clone(), token);
        let (Value::Int(deadline), Value::Int(pttl)) = (&reply[1], &reply[2]) else {
            panic!("PEXPIRETIME/PTTL {k}: {reply:?}");
        };
        deadlines.insert(k.clone(), *deadline);
        pttl_before.insert(k.clone(), *pttl);
    }
    let max_token = *fences.values().max().expect("tokens");

    // Now the short-lived keys; check they are alive just before the kill.
    let mut pipe = redis::pipe();
    let mut short = Vec::new();
    for writer in 0..WRITERS {
        for i in (0..KEYS_PER_WRITER).filter(|&i| ttl_kind(i) == Ttl::Short) {
            pipe.cmd("SET")
                .arg(key(writer, i))
                .arg(value(writer, i))
                .arg("PX")
                .arg(SHORT_TTL_MS)
                .ignore();
            short.push(key(writer, i));
        }
    }
    let short_written_at = unix_ms();
    pipe.query::<()>(&mut con).expect("write short-lived keys");
    let mut exists = redis::cmd("EXISTS");
    for k in &short {
        exists.arg(k);
    }
    let alive: i64 = exists.query(&mut con).expect("EXISTS short keys");
    assert_eq!(
        alive,
        short.len() as i64,
        "short-lived keys alive before the kill"
    );

    server.kill();
    // Stay down for longer than the short keys had to live: time that passes with no
    // leader does not count against them.
    let killed = Instant::now();
    let down_until = short_written_at + SHORT_TTL_MS + 500;
    while unix_ms() < down_until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let down_ms = killed.elapsed().as_millis() as i64;
    server.restart();
    let restarted = Instant::now();
    let mut con = server.connect();

    // Every acknowledged write is there, with its deadline unchanged.
    let mut pipe = redis::pipe();
    for k in &order {
        pipe.cmd("GET").arg(k);
        pipe.cmd("PEXPIRETIME").arg(k);
        pipe.cmd("PTTL").arg(k);
        pipe.cmd("FENCE").arg(k);
    }
    // At least this much time passed on the server between the two reads: the first
    // was answered before `read_at`, the second is sent after this line.
    let elapsed_ms = read_at.elapsed().as_millis() as i64;
    let replies: Vec<Value> = pipe.query(&mut con).expect("read state after restart");
    for (k, reply) in order.iter().zip(replies.chunks(4)) {
        let (writer, i) = {
            let mut parts = k.split(':').skip(1).map(|p| p.parse::<usize>().unwrap());
            (parts.next().unwrap(), parts.next().unwrap())
        };
        assert_eq!(
            reply[0],
            bulk(&value(writer, i)),
            "value of {k} after restart"
        );
        let Value::Int(pttl) = reply[2] else {
            panic!("PTTL {k}: {:?}", reply[2]);
        };
        match ttl_kind(i) {
            Ttl::None => {
                assert_eq!(pttl, -1, "{k} has no deadline");
                assert_eq!(reply[1], Value::Int(-1), "PEXPIRETIME of {k}");
            }
            _ => {
                // The deadline counted while the server ran and stood still while it was
                // down; PEXPIRETIME moved on by the time down, in Unix time.
                let before = pttl_before[k];
                let up_ms = elapsed_ms - down_ms;
                assert!(pttl > 0, "{k}: PTTL {pttl}");
                assert!(
                    pttl <= before && pttl >= before - up_ms - 1_000,
                    "{k}: PTTL {pttl} after restart, {before} before, {up_ms} ms up between"
                );
                let Value::Int(expiretime) = reply[1] else {
                    panic!("PEXPIRETIME {k}: {:?}", reply[1]);
                };
                let moved = expiretime - deadlines[k];
                assert!(
                    moved >= 0 && moved <= down_ms + 1_000,
                    "PEXPIRETIME of {k} moved {moved} ms, down {down_ms} ms"
                );
            }
        }
        assert_eq!(
            reply[3],
            Value::Int(fences[k]),
            "FENCE of {k} is the token of its value"
        );
    }
    assert_eq!(run::<i64>(&mut con, &["GET", "acked-chunks"]), chunks);

    // The short keys counted none of the time down: they expire by what was left of
    // their time to live once the server runs again, by a committed entry.
    for k in &short {
        let pttl = run::<i64>(&mut con, &["PTTL", k]);
        assert!(pttl == -2 || pttl <= SHORT_TTL_MS, "{k}: PTTL {pttl}");
    }
    let gone_by = restarted + Duration::from_millis(SHORT_TTL_MS as u64 + 1_000);
    std::thread::sleep(gone_by.saturating_duration_since(Instant::now()));
    for k in &short {
        assert_eq!(run::<Value>(&mut con, &["GET", k]), Value::Nil, "{k}");
        assert_eq!(run::<i64>(&mut con, &["PTTL", k]), -2, "{k}");
        assert_eq!(fence(&mut con, k), None, "{k}");
    }
    let keys: Vec<String> = run(&mut con, &["KEYS", "d:*"]);
    assert_eq!(keys.len(), order.len());
    assert_eq!(
        dbsize_eventually(&mut con, order.len() as i64 + 1),
        order.len() as i64 + 1
    );

    // New writes get tokens above every token handed out before the crash.
    run::<()>(&mut con, &["SET", "after-restart", "v"]);
    let token = fence(&mut con, "after-restart").expect("token");
    assert!(
        token > max_token,
        "token {token} after restart <= {max_token} before"
    );
    run::<()>(&mut con, &["SET", &order[0], "rewritten"]);
    assert!(fence(&mut con, &order[0]).expect("token") > token);
}

#[test]
fn writes_in_flight_at_the_kill_lose_nothing_acknowledged() {
    let mut server = Server::start();
    let stop = Arc::new(AtomicBool::new(false));
    const LIMIT: usize = 5_000;

    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let mut con = server.connect();
            let stop = stop.clone();
            std::thread::spawn(move || {
                // (last key index acknowledged, last counter value acknowledged)
                let mut acked: (Option<usize>, i64) = (None, 0);
                let started = Instant::now();
                for i in 0..LIMIT {
                    if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(30) {
                        break;
                    }
                    let set: redis::RedisResult<Value> = redis::cmd("SET")
                        .arg(key(writer, i))
                        .arg(value(writer, i))
                        .query(&mut con);
                    if set.is_err() {
                        break;
                    }
                    acked.0 = Some(i);
                    match redis::cmd("INCR")
                        .arg(format!("c:{writer}"))
                        .query::<i64>(&mut con)
                    {
                        Ok(n) => acked.1 = n,
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect();

    // Let some writes through, then kill while they are still coming.
    let mut con = server.connect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let total: i64 = (0..WRITERS)
            .map(|w| run::<Option<i64>>(&mut con, &["GET", &format!("c:{w}")]).unwrap_or(0))
            .sum();
        if total >= 400 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<(Option<usize>, i64)> = writers
        .into_iter()
        .map(|w| w.join().expect("writer"))
        .collect();
    assert!(
        acked.iter().any(|a| a.0.is_some()),
        "no write was acknowledged"
    );

    server.restart();
    let mut con = server.connect();
    for (writer, (last, counter)) in acked.iter().enumerate() {
        let Some(last) = *last else { continue };
        let mut pipe = redis::pipe();
        for i in 0..=last {
            pipe.cmd("GET").arg(key(writer, i));
        }
        let values: Vec<Value> = pipe.query(&mut con).expect("read back");
        for (i, got) in values.iter().enumerate() {
            assert_eq!(
                *got,
                bulk(&value(writer, i)),
                "acknowledged {} lost",
                key(writer, i)
            );
        }
        // At most the one write in flight may have landed beyond the last acknowledged.
        let mut beyond = redis::cmd("EXISTS");
        for i in last + 2..(last + 50).min(LIMIT) {
            beyond.arg(key(writer, i));
        }
        if last + 2 < (last + 50).min(LIMIT) {
            assert_eq!(
                beyond.query::<i64>(&mut con).unwrap(),
                0,
                "writes nobody sent"
            );
        }
        let stored: i64 =
            run::<Option<i64>>(&mut con, &["GET", &format!("c:{writer}")]).unwrap_or(0);
        assert!(
            stored >= *counter && stored <= counter + 1,
            "counter c:{writer}: acknowledged {counter}, stored {stored}"
        );
    }
}

#[test]
fn a_server_restarted_twice_keeps_working_and_its_tokens_keep_growing() {
    let mut server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "a", "1"]);
    run::<()>(&mut con, &["SET", "ttl", "v", "EX", "1000"]);
    run::<()>(&mut con, &["SET", "brief", "v", "PX", "300"]);
    let token_a = fence(&mut con, "a").expect("token of a");
    let deadline = run::<i64>(&mut con, &["PEXPIRETIME", "ttl"]);
    let first_read = Instant::now();
    let mut highest = fence(&mut con, "brief").expect("token of brief");

    server.restart();
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["GET", "a"]), bulk("1"));
    assert_eq!(fence(&mut con, "a"), Some(token_a));
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(run::<Value>(&mut con, &["GET", "brief"]), Value::Nil);
    run::<()>(&mut con, &["SET", "b", "2"]);
    let token_b = fence(&mut con, "b").expect("token of b");
    assert!(token_b > highest, "{token_b} <= {highest}");
    highest = token_b;
    assert_eq!(run::<i64>(&mut con, &["INCR", "a"]), 2);
    let token = fence(&mut con, "a").expect("token of a");
    assert!(token > highest);
    highest = token;

    server.restart();
    let mut con = server.connect();
    assert_eq!(
        run::<Value>(&mut con, &["MGET", "a", "b", "brief"]),
        Value::Array(vec![bulk("2"), bulk("2"), Value::Nil])
    );
    // Its Unix deadline moved on by at most the time the server was down (cluster time
    // stands still then), never back.
    let moved = run::<i64>(&mut con, &["PEXPIRETIME", "ttl"]) - deadline;
    let since_first_read = first_read.elapsed().as_millis() as i64;
    assert!(
        (0..=since_first_read).contains(&moved),
        "PEXPIRETIME moved {moved} ms in {since_first_read} ms"
    );
    assert_eq!(fence(&mut con, "a"), Some(highest));
    assert_eq!(fence(&mut con, "brief"), None);
    run::<()>(&mut con, &["SET", "c", "3"]);
    assert!(fence(&mut con, "c").expect("token of c") > highest);
    assert_eq!(run::<i64>(&mut con, &["DBSIZE"]), 4);
    // Still a working server: a fresh connection reads and writes.
    let mut other = server.connect();
    assert_eq!(run::<Value>(&mut other, &["SET", "d", "4"]), Value::Okay);
    assert_eq!(run::<Value>(&mut con, &["GET", "d"]), bulk("4"));
    let highest = fence(&mut con, "d").expect("token of d");

    // Deletions are durable too: a flushed keyspace stays empty.
    run::<()>(&mut con, &["FLUSHALL"]);
    server.restart();
    let mut con = server.connect();
    assert_eq!(run::<i64>(&mut con, &["DBSIZE"]), 0);
    assert_eq!(
        run::<i64>(&mut con, &["EXISTS", "a", "b", "c", "d", "ttl"]),
        0
    );
    run::<()>(&mut con, &["SET", "a", "again"]);
    assert!(fence(&mut con, "a").expect("token of a") > highest);
}

fn info_field(con: &mut redis::Connection, section: &str, field: &str) -> Option<i64> {
    let text: String = run(con, &["INFO", section]);
    text.split("\r\n")
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.parse().ok())
}

#[test]
fn state_survives_restart_from_a_snapshot_after_log_compaction() {
    let mut server = Server::start_with(&["--snapshot-every-entries", "50"]);
    let mut con = server.connect();
    // One write at a time: one Raft entry each, so snapshots are taken and the log
    // behind them is purged (the node keeps 1,000 entries behind a snapshot).
    const N: usize = 1_500;
    for i in 0..N {
        let (k, v) = (format!("s:{i}"), format!("v{i}"));
        match i % 3 {
            0 => run::<()>(&mut con, &["SET", &k, &v]),
            1 => run::<()>(&mut con, &["SET", &k, &v, "EX", "3600"]),
            _ => run::<()>(&mut con, &["INCRBY", "sum", &i.to_string()]),
        }
    }
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query(&mut con)
        .unwrap();
    run::<()>(&mut con, &["DEL", "s:0"]);
    run::<()>(&mut con, &["SET", "brief", "v", "PX", "400"]);
    let sum: i64 = run(&mut con, &["GET", "sum"]);
    let deadline: i64 = run(&mut con, &["PEXPIRETIME", "s:1"]);
    let deadline_read = Instant::now();
    let token = fence(&mut con, "s:3").expect("token");
    let highest = fence(&mut con, "brief").expect("token");

    // Wait (bounded) until a snapshot exists and the log before it was purged.
    let wait_until = Instant::now() + Duration::from_secs(20);
    loop {
        let snapshot = info_field(&mut con, "persistence", "raft_snapshot_index").unwrap_or(0);
        let purged = info_field(&mut con, "persistence", "raft_purged_index").unwrap_or(0);
        if snapshot > 0 && purged > 0 {
            break;
        }
        assert!(
            Instant::now() < wait_until,
            "no snapshot and purge after {N} entries: snapshot {snapshot}, purged {purged}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    server.kill();
    std::thread::sleep(Duration::from_millis(500));
    server.restart();
    let mut con = server.connect();
    let mut pipe = redis::pipe();
    for i in (0..N).filter(|i| i % 3 != 2) {
        pipe.cmd("GET").arg(format!("s:{i}"));
    }
    let values: Vec<Value> = pipe.query(&mut con).expect("read back");
    for (i, got) in (0..N).filter(|i| i % 3 != 2).zip(values) {
        let want = if i == 0 {
            Value::Nil
        } else {
            bulk(&format!("v{i}"))
        };
        assert_eq!(got, want, "s:{i} after restart");
    }
    assert_eq!(run::<i64>(&mut con, &["GET", "sum"]), sum);
    let got: Vec<u8> = redis::cmd("GET").arg("big").query(&mut con).unwrap();
    assert!(got == big, "the 1 MB value came back different");
    // The Unix deadline moved on by at most the time down (cluster time stood still).
    let moved = run::<i64>(&mut con, &["PEXPIRETIME", "s:1"]) - deadline;
    let since_read = deadline_read.elapsed().as_millis() as i64;
    assert!(
        (0..=since_read).contains(&moved),
        "PEXPIRETIME moved {moved} ms in {since_read} ms"
    );
    assert_eq!(run::<i64>(&mut con, &["TTL", "s:3"]), -1);
    assert_eq!(fence(&mut con, "s:3"), Some(token));
    // The brief key expires by what was left of its 400 ms once the node runs again.
    let gone_by = Instant::now() + Duration::from_secs(2);
    while run::<Value>(&mut con, &["GET", "brief"]) != Value::Nil {
        assert!(Instant::now() < gone_by, "brief never expired");
        std::thread::sleep(Duration::from_millis(20));
    }
    let live = (0..N).filter(|i| i % 3 != 2).count() as i64 - 1 + 2;
    assert_eq!(dbsize_eventually(&mut con, live), live);
    run::<()>(&mut con, &["SET", "after", "v"]);
    assert!(fence(&mut con, "after").expect("token") > highest);
}
