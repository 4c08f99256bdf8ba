//! List commands and the blocking pops, through the `redis` crate against the real binary.
//! Expected replies and error texts are Redis 7's.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{bulk, run, run_err, Server};
use redis::Value;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
/// The most any wake-up or reply may take before a test fails; never a claim of speed.
const GENEROUS: Duration = Duration::from_secs(10);

fn bulks(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|item| bulk(item)).collect())
}

fn blocked_clients(con: &mut redis::Connection) -> usize {
    let info: String = run(con, &["INFO", "clients"]);
    info.lines()
        .find_map(|line| line.strip_prefix("blocked_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO clients reports blocked_clients")
}

/// Waits until exactly `n` clients are blocked on the node.
fn wait_blocked(con: &mut redis::Connection, n: usize) {
    let deadline = Instant::now() + GENEROUS;
    while blocked_clients(con) != n {
        assert!(Instant::now() < deadline, "never saw {n} blocked clients");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `args` on `con` in a thread; the reply arrives on the returned channel.
fn spawn_query(mut con: redis::Connection, args: &[&str]) -> mpsc::Receiver<Value> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        let reply: Value = run(&mut con, &words);
        let _ = tx.send(reply);
    });
    rx
}

#[test]
fn push_pop_and_read_commands_answer_like_redis() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run::<i64>(&mut con, &["RPUSH", "l", "a", "b"]), 2);
    assert_eq!(run::<i64>(&mut con, &["LPUSH", "l", "x", "y"]), 4);
    assert_eq!(run::<i64>(&mut con, &["LPUSHX", "nope", "x"]), 0);
    assert_eq!(run::<i64>(&mut con, &["RPUSHX", "l", "z"]), 5);
    assert_eq!(run::<String>(&mut con, &["TYPE", "l"]), "list");
    assert_eq!(
        run::<Value>(&mut con, &["LRANGE", "l", "0", "-1"]),
        bulks(&["y", "x", "a", "b", "z"])
    );
    assert_eq!(
        run::<Value>(&mut con, &["LRANGE", "l", "-2", "100"]),
        bulks(&["b", "z"])
    );
    assert_eq!(run::<i64>(&mut con, &["LLEN", "l"]), 5);
    assert_eq!(run::<i64>(&mut con, &["LLEN", "nope"]), 0);
    assert_eq!(run::<Value>(&mut con, &["LINDEX", "l", "-1"]), bulk("z"));
    assert_eq!(run::<Value>(&mut con, &["LINDEX", "l", "9"]), Value::Nil);

    assert_eq!(run::<Value>(&mut con, &["LPOP", "l"]), bulk("y"));
    assert_eq!(run::<Value>(&mut con, &["RPOP", "l"]), bulk("z"));
    assert_eq!(
        run::<Value>(&mut con, &["LPOP", "l", "2"]),
        bulks(&["x", "a"])
    );
    assert_eq!(run::<Value>(&mut con, &["LPOP", "l", "0"]), bulks(&[]));
    assert_eq!(run::<Value>(&mut con, &["RPOP", "l", "5"]), bulks(&["b"]));
    assert_eq!(
        run::<i64>(&mut con, &["EXISTS", "l"]),
        0,
        "emptied list removed"
    );
    assert_eq!(run::<Value>(&mut con, &["LPOP", "l"]), Value::Nil);
    assert_eq!(run::<Value>(&mut con, &["LPOP", "l", "1"]), Value::Nil);
    assert_eq!(
        run_err(&mut con, &["LPOP", "l", "-1"]),
        "ERR value is out of range, must be positive"
    );
    assert_eq!(
        run_err(&mut con, &["LPUSH", "l"]),
        "ERR wrong number of arguments for 'lpush' command"
    );

    run::<i64>(&mut con, &["RPUSH", "r", "a", "b", "a", "c", "a"]);
    assert_eq!(run::<i64>(&mut con, &["LREM", "r", "-2", "a"]), 2);
    assert_eq!(
        run::<Value>(&mut con, &["LRANGE", "r", "0", "-1"]),
        bulks(&["a", "b", "c"])
    );
    assert_eq!(
        run::<Value>(&mut con, &["LTRIM", "r", "1", "-1"]),
        Value::Okay
    );
    assert_eq!(
        run::<Value>(&mut con, &["LRANGE", "r", "0", "-1"]),
        bulks(&["b", "c"])
    );
    assert_eq!(
        run_err(&mut con, &["LTRIM", "r", "x", "1"]),
        "ERR value is not an integer or out of range"
    );

    assert_eq!(
        run::<Value>(&mut con, &["LMOVE", "r", "d", "LEFT", "RIGHT"]),
        bulk("b")
    );
    assert_eq!(run::<Value>(&mut con, &["RPOPLPUSH", "r", "d"]), bulk("c"));
    assert_eq!(
        run::<Value>(&mut con, &["LRANGE", "d", "0", "-1"]),
        bulks(&["c", "b"])
    );
    assert_eq!(run::<Value>(&mut con, &["RPOPLPUSH", "r", "d"]), Value::Nil);
    assert_eq!(
        run_err(&mut con, &["LMOVE", "d", "e", "UP", "LEFT"]),
        "ERR syntax error"
    );
}

#[test]
fn pops_reply_nil_or_nil_array_on_the_wire_as_redis_7_does() {
    let server = Server::start();
    let mut raw = server.raw_client();
    assert_eq!(raw.call("LPOP nothing\r\n"), "$-1\r\n");
    assert_eq!(raw.call("LPOP nothing 1\r\n"), "*-1\r\n");
    assert_eq!(raw.call("LPOP nothing 0\r\n"), "*-1\r\n");
    assert_eq!(raw.call("RPUSH l a\r\n"), ":1\r\n");
    assert_eq!(raw.call("LPOP l 0\r\n"), "*0\r\n");
    assert_eq!(raw.call("BLPOP nothing 0.01\r\n"), "*-1\r\n");
    assert_eq!(raw.call("BRPOP nothing 0.01\r\n"), "*-1\r\n");
    assert_eq!(raw.call("BLMOVE nothing l LEFT LEFT 0.01\r\n"), "$-1\r\n");
    assert_eq!(raw.call("BRPOPLPUSH nothing l 0.01\r\n"), "$-1\r\n");
    assert!(raw.call("HELLO 3\r\n").starts_with('%'));
    assert_eq!(raw.call("BLPOP nothing 0.01\r\n"), "_\r\n");
    assert_eq!(raw.call("BLMOVE nothing l LEFT LEFT 0.01\r\n"), "_\r\n");
}

#[test]
fn list_commands_refuse_strings_and_locks() {
    let server = Server::start();
    let mut con = server.connect();
    run::<Value>(&mut con, &["SET", "s", "v"]);
    run::<Value>(&mut con, &["LOCK", "lk", "me", "30000"]);
    for key in ["s", "lk"] {
        for args in [
            vec!["LPUSH", key, "a"],
            vec!["RPUSHX", key, "a"],
            vec!["LPOP", key],
            vec!["LLEN", key],
            vec!["LRANGE", key, "0", "-1"],
            vec!["LINDEX", key, "0"],
            vec!["LREM", key, "0", "a"],
            vec!["LTRIM", key, "0", "1"],
            vec!["LMOVE", key, "x", "LEFT", "LEFT"],
            vec!["RPOPLPUSH", key, "x"],
            vec!["BLPOP", key, "0"],
            vec!["BRPOP", "missing", key, "0"],
            vec!["BLMOVE", key, "x", "LEFT", "LEFT", "0"],
            vec!["BRPOPLPUSH", key, "x", "0"],
        ] {
            assert_eq!(run_err(&mut con, &args), WRONGTYPE, "{args:?}");
        }
    }
    run::<i64>(&mut con, &["RPUSH", "l", "a"]);
    assert_eq!(run_err(&mut con, &["GET", "l"]), WRONGTYPE);
    assert_eq!(
        run_err(&mut con, &["LMOVE", "l", "s", "LEFT", "LEFT"]),
        WRONGTYPE
    );
    assert_eq!(run::<i64>(&mut con, &["LLEN", "l"]), 1, "nothing moved");
    assert_eq!(run::<String>(&mut con, &["GET", "s"]), "v");
}

#[test]
fn blocking_pop_timeouts_are_validated() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        run_err(&mut con, &["BLPOP", "k", "soon"]),
        "ERR timeout is not a float or out of range"
    );
    assert_eq!(
        run_err(&mut con, &["BRPOP", "k", "-1"]),
        "ERR timeout is negative"
    );
    assert_eq!(
        run_err(&mut con, &["BRPOPLPUSH", "k", "d", "-0.5"]),
        "ERR timeout is negative"
    );
    assert_eq!(
        run_err(&mut con, &["BLMOVE", "k", "d", "LEFT", "NOWHERE", "1"]),
        "ERR syntax error"
    );
    assert_eq!(blocked_clients(&mut con), 0);
}

#[test]
fn blocking_pops_answer_at_once_when_an_element_is_there() {
    let server = Server::start();
    let mut con = server.connect();
    run::<i64>(&mut con, &["RPUSH", "b", "1", "2", "3"]);
    assert_eq!(
        run::<Value>(&mut con, &["BLPOP", "a", "b", "0"]),
        bulks(&["b", "1"])
    );
    assert_eq!(
        run::<Value>(&mut con, &["BRPOP", "a", "b", "0"]),
        bulks(&["b", "3"])
    );
    assert_eq!(
        run::<Value>(&mut con, &["BLMOVE", "b", "c", "LEFT", "RIGHT", "0"]),
        bulk("2")
    );
    run::<i64>(&mut con, &["RPUSH", "b", "4"]);
    assert_eq!(
        run::<Value>(&mut con, &["BRPOPLPUSH", "b", "c", "0"]),
        bulk("4")
    );
    assert_eq!(
        run::<Value>(&mut con, &["LRANGE", "c", "0", "-1"]),
        bulks(&["4", "2"])
    );
}

#[test]
fn a_blocked_blpop_is_woken_by_a_push_from_another_client() {
    let server = Server::start();
    let mut pusher = server.connect();
    let reply = spawn_query(server.connect(), &["BLPOP", "q", "other", "0"]);
    wait_blocked(&mut pusher, 1);
    let pushed_at = Instant::now();
    assert_eq!(run::<i64>(&mut pusher, &["RPUSH", "q", "job"]), 1);
    let got = reply.recv_timeout(GENEROUS).expect("BLPOP answered");
    let latency = pushed_at.elapsed();
    eprintln!("BLPOP woken {latency:?} after the RPUSH was sent");
    assert_eq!(got, bulks(&["q", "job"]));
    assert_eq!(
        run::<i64>(&mut pusher, &["EXISTS", "q"]),
        0,
        "the element was taken"
    );
    assert_eq!(blocked_clients(&mut pusher), 0);
}

#[test]
fn blocked_clients_are_served_in_arrival_order() {
    let server = Server::start();
    let mut pusher = server.connect();
    let mut replies = Vec::new();
    for n in 1..=3 {
        replies.push(spawn_query(server.connect(), &["BLPOP", "fifo", "0"]));
        wait_blocked(&mut pusher, n);
    }
    // One push of three elements serves all three, first come first served.
    assert_eq!(
        run::<i64>(&mut pusher, &["RPUSH", "fifo", "a", "b", "c"]),
        3
    );
    for (reply, expected) in replies.iter().zip(["a", "b", "c"]) {
        let got = reply.recv_timeout(GENEROUS).expect("BLPOP answered");
        assert_eq!(got, bulks(&["fifo", expected]));
    }
    // Pushes one at a time are served in order too.
    let mut replies = Vec::new();
    for n in 1..=3 {
        replies.push(spawn_query(server.connect(), &["BRPOP", "fifo", "0"]));
        wait_blocked(&mut pusher, n);
    }
    for (reply, element) in replies.iter().zip(["x", "y", "z"]) {
        run::<i64>(&mut pusher, &["LPUSH", "fifo", element]);
        let got = reply.recv_timeout(GENEROUS).expect("BRPOP answered");
        assert_eq!(got, bulks(&["fifo", element]));
    }
    assert_eq!(blocked_clients(&mut pusher), 0);
}

#[test]
fn a_blocking_pop_times_out_with_nil() {
    let server = Server::start();
    let mut con = server.connect();
    let started = Instant::now();
    assert_eq!(
        run::<Value>(&mut con, &["BLPOP", "none", "0.5"]),
        Value::Nil
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(450),
        "returned after {waited:?}"
    );
    assert!(waited < GENEROUS, "returned after {waited:?}");
    let started = Instant::now();
    assert_eq!(
        run::<Value>(&mut con, &["BLMOVE", "none", "d", "LEFT", "LEFT", "0.3"]),
        Value::Nil
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(blocked_clients(&mut con), 0);
    assert_eq!(run::<i64>(&mut con, &["EXISTS", "d"]), 0);
}

#[test]
fn blmove_and_brpoplpush_block_until_the_source_gets_an_element() {
    let server = Server::start();
    let mut pusher = server.connect();
    let moved = spawn_query(
        server.connect(),
        &["BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"],
    );
    wait_blocked(&mut pusher, 1);
    // A push to the destination does not serve it.
    run::<i64>(&mut pusher, &["RPUSH", "dst", "old"]);
    thread::sleep(Duration::from_millis(100));
    assert!(
        moved.try_recv().is_err(),
        "answered without a push to the source"
    );
    run::<i64>(&mut pusher, &["RPUSH", "src", "a", "b"]);
    assert_eq!(
        moved.recv_timeout(GENEROUS).expect("BLMOVE answered"),
        bulk("b")
    );
    assert_eq!(
        run::<Value>(&mut pusher, &["LRANGE", "dst", "0", "-1"]),
        bulks(&["b", "old"])
    );

    run::<i64>(&mut pusher, &["DEL", "src"]);
    let moved = spawn_query(server.connect(), &["BRPOPLPUSH", "src", "dst", "0"]);
    wait_blocked(&mut pusher, 1);
    run::<i64>(&mut pusher, &["LPUSH", "src", "c"]);
    assert_eq!(
        moved.recv_timeout(GENEROUS).expect("BRPOPLPUSH answered"),
        bulk("c")
    );
    assert_eq!(run::<i64>(&mut pusher, &["LLEN", "dst"]), 3);
    assert_eq!(run::<i64>(&mut pusher, &["EXISTS", "src"]), 0);
}

#[test]
fn an_lmove_into_a_waited_on_list_serves_the_blocked_client() {
    let server = Server::start();
    let mut pusher = server.connect();
    let reply = spawn_query(server.connect(), &["BLPOP", "target", "0"]);
    wait_blocked(&mut pusher, 1);
    run::<i64>(&mut pusher, &["RPUSH", "staging", "item"]);
    assert_eq!(
        run::<Value>(&mut pusher, &["LMOVE", "staging", "target", "LEFT", "LEFT"]),
        bulk("item")
    );
    assert_eq!(
        reply.recv_timeout(GENEROUS).expect("BLPOP answered"),
        bulks(&["target", "item"])
    );
}

#[test]
fn a_client_that_disconnects_while_blocked_does_not_swallow_a_later_push() {
    let server = Server::start();
    let mut con = server.connect();
    let mut gone = server.raw_client();
    gone.send(b"BLPOP jobs 0\r\n");
    wait_blocked(&mut con, 1);
    drop(gone);
    wait_blocked(&mut con, 0);
    // With nobody waiting, the element stays.
    run::<i64>(&mut con, &["RPUSH", "jobs", "one"]);
    assert_eq!(run::<i64>(&mut con, &["LLEN", "jobs"]), 1);
    run::<Value>(&mut con, &["DEL", "jobs"]);

    // A client gone from the head of the line does not take the next waiter's element.
    let mut gone = server.raw_client();
    gone.send(b"BLPOP jobs 0\r\n");
    wait_blocked(&mut con, 1);
    let reply = spawn_query(server.connect(), &["BLPOP", "jobs", "0"]);
    wait_blocked(&mut con, 2);
    drop(gone);
    wait_blocked(&mut con, 1);
    run::<i64>(&mut con, &["RPUSH", "jobs", "two"]);
    assert_eq!(
        reply.recv_timeout(GENEROUS).expect("BLPOP answered"),
        bulks(&["jobs", "two"])
    );
}

#[test]
fn requests_pipelined_behind_a_blocking_pop_wait_for_it() {
    let server = Server::start();
    let mut con = server.connect();
    let mut raw = server.raw_client();
    raw.send(b"BLPOP p 0\r\nRPUSH p mine\r\nPING\r\n");
    wait_blocked(&mut con, 1);
    // The pipelined RPUSH has not run: the list is still missing.
    assert_eq!(run::<i64>(&mut con, &["EXISTS", "p"]), 0);
    run::<i64>(&mut con, &["RPUSH", "p", "theirs"]);
    assert_eq!(raw.frame_text(), "*2\r\n$1\r\np\r\n$6\r\ntheirs\r\n");
    assert_eq!(raw.frame_text(), ":1\r\n");
    assert_eq!(raw.frame_text(), "+PONG\r\n");
}

#[test]
fn lists_expire_like_any_key() {
    let server = Server::start();
    let mut con = server.connect();
    run::<i64>(&mut con, &["RPUSH", "l", "a", "b"]);
    assert_eq!(run::<i64>(&mut con, &["PEXPIRE", "l", "300"]), 1);
    run::<i64>(&mut con, &["RPUSH", "l", "c"]);
    let ttl: i64 = run(&mut con, &["PTTL", "l"]);
    assert!((1..=300).contains(&ttl), "pushes keep the deadline: {ttl}");
    let deadline = Instant::now() + GENEROUS;
    while run::<i64>(&mut con, &["EXISTS", "l"]) == 1 {
        assert!(Instant::now() < deadline, "the list never expired");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(run::<i64>(&mut con, &["LLEN", "l"]), 0);
    assert_eq!(run::<Value>(&mut con, &["LPOP", "l"]), Value::Nil);
    assert_eq!(run::<i64>(&mut con, &["RPUSHX", "l", "z"]), 0);
}

#[test]
fn list_writes_take_new_fencing_tokens() {
    let server = Server::start();
    let mut con = server.connect();
    run::<i64>(&mut con, &["RPUSH", "l", "a", "b", "c"]);
    let mut last: i64 = run(&mut con, &["FENCE", "l"]);
    for args in [
        vec!["LPUSH", "l", "x"],
        vec!["LPOP", "l"],
        vec!["LREM", "l", "1", "b"],
        vec!["RPOPLPUSH", "l", "l"],
    ] {
        run::<Value>(&mut con, &args);
        let token: i64 = run(&mut con, &["FENCE", "l"]);
        assert!(token > last, "{args:?} kept token {token}");
        last = token;
    }
    run::<Value>(&mut con, &["LRANGE", "l", "0", "-1"]);
    assert_eq!(run::<i64>(&mut con, &["FENCE", "l"]), last);
}

#[test]
fn lists_survive_a_restart() {
    let mut server = Server::start();
    let mut con = server.connect();
    run::<i64>(&mut con, &["RPUSH", "l", "a", "b", "c"]);
    run::<Value>(&mut con, &["LPOP", "l"]);
    drop(con);
    server.restart();
    let mut con = server.connect();
    assert_eq!(
        run::<Value>(&mut con, &["LRANGE", "l", "0", "-1"]),
        bulks(&["b", "c"])
    );
}

#[test]
fn many_consumers_and_producers_lose_no_element_and_no_wake_up() {
    const CONSUMERS: usize = 8;
    const PRODUCERS: usize = 3;
    const PER_PRODUCER: usize = 100;
    let server = Server::start();
    let (tx, rx) = mpsc::channel::<Vec<String>>();
    for _ in 0..CONSUMERS {
        let mut con = server.connect();
        let tx = tx.clone();
        thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                // Waits without limit: a lost wake-up leaves this consumer stuck and
                // the test fails on its bound below.
                let reply: (String, String) = run(&mut con, &["BLPOP", "work", "0"]);
                if reply.1 == "stop" {
                    break;
                }
                got.push(reply.1);
            }
            let _ = tx.send(got);
        });
    }
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let mut con = server.connect();
        producers.push(thread::spawn(move || {
            let mut i = 0;
            while i < PER_PRODUCER {
                // Single pushes and pushes of several elements.
                let batch = 1 + (i + p) % 3;
                let mut args = vec!["RPUSH".to_string(), "work".to_string()];
                for j in i..(i + batch).min(PER_PRODUCER) {
                    args.push(format!("{p}-{j}"));
                }
                i += args.len() - 2;
                let words: Vec<&str> = args.iter().map(String::as_str).collect();
                run::<i64>(&mut con, &words);
            }
        }));
    }
    for producer in producers {
        producer.join().expect("producer");
    }
    let mut con = server.connect();
    for _ in 0..CONSUMERS {
        run::<i64>(&mut con, &["RPUSH", "work", "stop"]);
    }
    let mut all = Vec::new();
    for _ in 0..CONSUMERS {
        all.extend(
            rx.recv_timeout(Duration::from_secs(60))
                .expect("a consumer finished"),
        );
    }
    all.sort();
    let mut expected: Vec<String> = (0..PRODUCERS)
        .flat_map(|p| (0..PER_PRODUCER).map(move |j| format!("{p}-{j}")))
        .collect();
    expected.sort();
    assert_eq!(all, expected, "every element popped exactly once");
    assert_eq!(run::<i64>(&mut con, &["EXISTS", "work"]), 0);
    assert_eq!(blocked_clients(&mut con), 0);
}

#[test]
fn a_client_blocked_first_gets_the_element_a_later_pipelined_push_and_pop_bring() {
    let server = Server::start();
    let mut admin = server.connect();
    let first = spawn_query(server.connect(), &["BLPOP", "q", "0"]);
    wait_blocked(&mut admin, 1);
    // LPUSH and BLPOP in one write: Redis serves the client blocked first before it
    // runs the BLPOP, which then finds the list empty and blocks.
    let mut second = server.raw_client();
    second.send(
        b"*3\r\n$5\r\nLPUSH\r\n$1\r\nq\r\n$1\r\nx\r\n*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n1\r\n",
    );
    assert_eq!(
        first
            .recv_timeout(GENEROUS)
            .expect("the first client is served"),
        bulks(&["q", "x"])
    );
    assert_eq!(second.frame_text(), ":1\r\n");
    assert_eq!(second.frame_text(), "*-1\r\n", "the later BLPOP times out");
}

#[test]
fn a_transaction_that_leaves_a_string_behind_its_push_keeps_the_client_blocked() {
    let server = Server::start();
    let mut admin = server.connect();
    let started = Instant::now();
    let blocked = spawn_query(server.connect(), &["BLPOP", "q", "1"]);
    wait_blocked(&mut admin, 1);
    let replies: Value = redis::pipe()
        .atomic()
        .cmd("LPUSH")
        .arg("q")
        .arg("x")
        .cmd("DEL")
        .arg("q")
        .cmd("SET")
        .arg("q")
        .arg("string")
        .query(&mut admin)
        .expect("EXEC");
    assert_eq!(
        replies,
        Value::Array(vec![Value::Int(1), Value::Int(1), Value::Okay])
    );
    // As in Redis: woken by nothing that is still a list, it times out with nil.
    assert_eq!(blocked.recv_timeout(GENEROUS).expect("reply"), Value::Nil);
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(run::<String>(&mut admin, &["GET", "q"]), "string");
}

#[test]
fn blmpop_and_the_sorted_set_pops_block_until_their_keys_fill() {
    let server = Server::start();
    let mut writer = server.connect();
    // A sorted-set pop is woken by ZADD, a multi-key list pop by a push to any of its keys.
    let zmin = spawn_query(server.connect(), &["BZPOPMIN", "z1", "z2", "0"]);
    wait_blocked(&mut writer, 1);
    let lmulti = spawn_query(
        server.connect(),
        &["BLMPOP", "0", "2", "l1", "l2", "RIGHT", "COUNT", "2"],
    );
    wait_blocked(&mut writer, 2);
    let zmulti = spawn_query(server.connect(), &["BZMPOP", "0", "1", "z3", "MAX"]);
    wait_blocked(&mut writer, 3);
    // A push to a list does not serve the sorted-set waiters, nor a string the list one.
    run::<()>(&mut writer, &["SET", "l1", "not a list"]);
    run::<i64>(&mut writer, &["RPUSH", "z2", "x"]);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(blocked_clients(&mut writer), 3);
    run::<i64>(&mut writer, &["DEL", "z2", "l1"]);

    run::<i64>(&mut writer, &["ZADD", "z2", "2", "b", "1", "a"]);
    let got = zmin.recv_timeout(GENEROUS).expect("BZPOPMIN answered");
    assert_eq!(got, bulks(&["z2", "a", "1"]));
    run::<i64>(&mut writer, &["RPUSH", "l2", "p", "q", "r"]);
    let got = lmulti.recv_timeout(GENEROUS).expect("BLMPOP answered");
    assert_eq!(
        got,
        Value::Array(vec![bulk("l2"), bulks(&["r", "q"])]),
        "the two last elements, last first"
    );
    // A sorted set stored whole (ZUNIONSTORE) wakes its waiters too.
    run::<i64>(&mut writer, &["ZUNIONSTORE", "z3", "1", "z2"]);
    let got = zmulti.recv_timeout(GENEROUS).expect("BZMPOP answered");
    assert_eq!(
        got,
        Value::Array(vec![bulk("z3"), Value::Array(vec![bulks(&["b", "2"])])])
    );
    assert_eq!(blocked_clients(&mut writer), 0);
    assert_eq!(
        run::<Value>(&mut writer, &["BZPOPMAX", "none", "0.2"]),
        Value::Nil,
        "a null array on timeout"
    );
}
