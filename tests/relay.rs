//! A follower relays its clients' data commands to the leader: whatever the
//! pipelining, every request sent to a follower gets exactly one reply, in order, and the
//! connection keeps working afterwards. Requests are written with raw sockets, in one
//! go or split across writes, so no client library reorders or paces them.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::cluster::Cluster;
use common::{map_entries, resp_request, run, value_text, RawClient};

/// How long a test waits for one reply: a relay that lost a reply hangs until then.
const REPLY_TIMEOUT: Duration = Duration::from_secs(15);

/// A raw connection to node `id`, and a second handle on it for writing.
fn connect(cluster: &Cluster, id: u64) -> (RawClient, TcpStream) {
    let stream = TcpStream::connect(cluster.node(id).client_addr()).expect("connect");
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT))
        .expect("timeout");
    let writer = stream.try_clone().expect("clone stream");
    (RawClient::new(stream), writer)
}

/// Writes `bytes` with one `write_all` on another thread, so the test reads replies while
/// the pipeline is still going out (as a client must, once replies outgrow the buffers).
fn write_in_background(mut writer: TcpStream, bytes: Vec<u8>) -> JoinHandle<()> {
    thread::spawn(move || writer.write_all(&bytes).expect("write the pipeline"))
}

/// A cluster of three and one of its followers.
fn cluster_and_follower() -> (Cluster, u64) {
    let cluster = Cluster::start(3, &[]);
    let leader = cluster.wait_leader(Duration::from_secs(30));
    // Every node up and following: a leader whose followers had not answered yet could
    // still step down (check-quorum) in the middle of the test.
    cluster.wait_replicated(leader, Duration::from_secs(30));
    let follower = cluster.other_than(&[leader]);
    (cluster, follower)
}

/// The next reply; fails the test with `what` if none comes in time.
fn next_reply(client: &mut RawClient, what: impl std::fmt::Display) -> String {
    match client.try_frame() {
        Some(frame) => String::from_utf8_lossy(&frame).into_owned(),
        None => panic!("no reply to {what} within {REPLY_TIMEOUT:?}"),
    }
}

fn bulk_frame(value: &[u8]) -> Vec<u8> {
    let mut frame = format!("${}\r\n", value.len()).into_bytes();
    frame.extend_from_slice(value);
    frame.extend_from_slice(b"\r\n");
    frame
}

#[test]
fn pipelined_sets_to_a_follower_get_one_ok_each_in_order() {
    let (cluster, follower) = cluster_and_follower();
    for count in [600, 20_000] {
        let key = format!("pipelined-{count}");
        let pipeline: Vec<u8> = (0..count)
            .flat_map(|i| resp_request(&["SET", &key, &i.to_string()]))
            .collect();
        let (mut client, writer) = connect(&cluster, follower);
        let writing = write_in_background(writer, pipeline);
        for i in 0..count {
            let what = format!("SET {i} of {count} pipelined");
            assert_eq!(next_reply(&mut client, &what), "+OK\r\n", "{what}");
        }
        writing.join().expect("writer");
        // Applied in order: the last SET's value stays.
        let get = client.call(&String::from_utf8(resp_request(&["GET", &key])).unwrap());
        assert_eq!(
            get.as_bytes(),
            bulk_frame((count - 1).to_string().as_bytes())
        );
    }
}

const FIRST: (&str, &str) = ("return 'first'", "c831c38f98f52c070ded9e558dcd9a36533b5bcf");
const SECOND: (&str, &str) = (
    "return 'second'",
    "47673101c33ec3f768e19775e884a11922252f2f",
);
const THIRD: (&str, &str) = ("return 'third'", "902d5313d7bc026810a9dfd39b87871538f8e7bc");
const GET_KEY: (&str, &str) = (
    "return redis.call('GET', KEYS[1])",
    "d3c21d0c2b9ca22f82737626a27bcaf5d288f99f",
);

/// Writes `pipeline` to node `id` in two parts, split at byte `split`, with `pause` between
/// them, and checks that the replies are exactly `expected`, in order.
fn split_pipeline(
    cluster: &Cluster,
    id: u64,
    pipeline: &[u8],
    split: usize,
    pause: Duration,
    expected: &[Vec<u8>],
) {
    let (mut client, mut writer) = connect(cluster, id);
    writer.write_all(&pipeline[..split]).expect("first part");
    thread::sleep(pause);
    writer.write_all(&pipeline[split..]).expect("second part");
    for (i, want) in expected.iter().enumerate() {
        let what = format!("request {i} (pipeline split at byte {split}, {pause:?} apart)");
        let got = next_reply(&mut client, &what);
        assert_eq!(got, String::from_utf8_lossy(want), "{what}");
    }
    assert_eq!(
        client.call("PING\r\n"),
        "+PONG\r\n",
        "the connection still works"
    );
}

#[test]
fn script_loads_split_across_two_writes_to_a_follower_are_all_answered_in_order() {
    let (cluster, follower) = cluster_and_follower();
    let loads: Vec<Vec<u8>> = [FIRST, SECOND, THIRD]
        .iter()
        .map(|(script, _)| resp_request(&["SCRIPT", "LOAD", script]))
        .collect();
    let expected: Vec<Vec<u8>> = [FIRST, SECOND, THIRD]
        .iter()
        .map(|(_, sha)| bulk_frame(sha.as_bytes()))
        .collect();
    let pipeline = loads.concat();
    // Two in the first read and one in the second, one and two, and cut inside a request.
    let splits = [
        loads[0].len() + loads[1].len(),
        loads[0].len(),
        loads[0].len() + 5,
    ];
    for split in splits {
        for pause_ms in [0, 1, 3] {
            let pause = Duration::from_millis(pause_ms);
            split_pipeline(&cluster, follower, &pipeline, split, pause, &expected);
        }
    }
}

#[test]
fn a_mixed_pipeline_split_across_two_writes_to_a_follower_is_answered_in_order() {
    let (cluster, follower) = cluster_and_follower();
    let mut round = 0;
    let (script, sha) = GET_KEY;
    // Requests and their replies; the node answers PING, MULTI and the QUEUEDs itself,
    // relays the rest, and merges EXEC's reply.
    let exchange = |key: &str, counter: &str| -> Vec<(Vec<u8>, Vec<u8>)> {
        let pairs: [(&[&str], &[u8]); 13] = [
            (&["SCRIPT", "LOAD", script], &bulk_frame(sha.as_bytes())),
            (&["SET", key, "v1"], b"+OK\r\n"),
            (&["GET", key], b"$2\r\nv1\r\n"),
            (&["EVALSHA", sha, "1", key], b"$2\r\nv1\r\n"),
            (&["PING"], b"+PONG\r\n"),
            (&["MULTI"], b"+OK\r\n"),
            (&["SET", key, "v2"], b"+QUEUED\r\n"),
            (&["INCR", counter], b"+QUEUED\r\n"),
            (&["EXEC"], b"*2\r\n+OK\r\n:1\r\n"),
            (&["GET", key], b"$2\r\nv2\r\n"),
            (&["EVALSHA", sha, "1", key], b"$2\r\nv2\r\n"),
            (&["INCR", counter], b":2\r\n"),
            (&["PING", "done"], b"$4\r\ndone\r\n"),
        ];
        pairs
            .iter()
            .map(|(args, reply)| (resp_request(args), reply.to_vec()))
            .collect()
    };
    let requests = exchange("k", "n").len();
    // Split after each request, and inside each.
    for cut in 1..requests {
        for inside in [false, true] {
            round += 1;
            let key = format!("mixed-{round}");
            let counter = format!("counter-{round}");
            let pairs = exchange(&key, &counter);
            let pipeline: Vec<u8> = pairs.iter().flat_map(|(req, _)| req.clone()).collect();
            let expected: Vec<Vec<u8>> = pairs.iter().map(|(_, reply)| reply.clone()).collect();
            let mut split: usize = pairs[..cut].iter().map(|(req, _)| req.len()).sum();
            if inside {
                split -= 3;
            }
            let pause = Duration::from_millis(1);
            split_pipeline(&cluster, follower, &pipeline, split, pause, &expected);
        }
    }
}

#[test]
fn large_values_pipelined_to_a_follower_are_all_answered_in_order() {
    // 64 MB through one relay keeps two cores busy: if the leader steps down meanwhile,
    // the relay rightly answers TRYAGAIN, and the scenario runs again on a new cluster.
    for attempt in 1..=3 {
        if large_values_scenario() {
            return;
        }
        eprintln!("the leader changed during attempt {attempt}; running it again");
    }
    panic!("the leader changed in every attempt");
}

/// False if a reply was the relay's TRYAGAIN (the leader changed).
fn large_values_scenario() -> bool {
    const VALUES: usize = 32;
    const VALUE_BYTES: usize = 1024 * 1024;
    let (cluster, follower) = cluster_and_follower();
    let value = |i: usize| -> Vec<u8> {
        let mut value = vec![b'a' + (i % 26) as u8; VALUE_BYTES];
        value[..8].copy_from_slice(format!("{i:08}").as_bytes());
        value
    };
    // All the SETs, then all the GETs: big requests go up the relay, then big replies
    // come down it while the client is still writing.
    let mut pipeline = Vec::with_capacity(VALUES * (VALUE_BYTES + 64));
    for i in 0..VALUES {
        pipeline.extend(resp_request(&[
            b"SET",
            format!("large-{i}").as_bytes(),
            &value(i),
        ]));
    }
    for i in 0..VALUES {
        pipeline.extend(resp_request(&[b"GET", format!("large-{i}").as_bytes()]));
    }
    let (mut client, writer) = connect(&cluster, follower);
    let writing = write_in_background(writer, pipeline);
    let sets: Vec<String> = (0..VALUES)
        .map(|i| next_reply(&mut client, format!("SET {i}")))
        .collect();
    let gets: Vec<String> = (0..VALUES)
        .map(|i| next_reply(&mut client, format!("GET {i}")))
        .collect();
    writing.join().expect("writer");
    if sets.iter().chain(&gets).any(|r| r.starts_with("-TRYAGAIN")) {
        return false;
    }
    for (i, set) in sets.iter().enumerate() {
        assert_eq!(set, "+OK\r\n", "SET {i}");
    }
    for (i, get) in gets.iter().enumerate() {
        assert!(get.as_bytes() == bulk_frame(&value(i)), "GET {i}");
    }
    assert_eq!(client.call("PING\r\n"), "+PONG\r\n");
    true
}

/// The owners queued for `resource`, as LOCKINFO lists them.
fn lock_waiters(con: &mut redis::Connection, resource: &str) -> Vec<String> {
    let info: redis::Value = run(con, &["LOCKINFO", resource]);
    let waiters = map_entries(info)
        .into_iter()
        .find(|(field, _)| field == "waiters")
        .map(|(_, waiters)| waiters);
    let Some(redis::Value::Array(waiters)) = waiters else {
        return Vec::new();
    };
    waiters
        .into_iter()
        .filter_map(|waiter| {
            map_entries(waiter)
                .into_iter()
                .find(|(field, _)| field == "owner")
                .map(|(_, owner)| value_text(&owner))
        })
        .collect()
}

#[test]
fn a_relay_broken_mid_pipeline_answers_every_request_once() {
    const BEHIND: usize = 1_000;
    let (mut cluster, follower) = cluster_and_follower();
    let leader = cluster.wait_leader(Duration::from_secs(30));
    let mut holder = cluster.node(leader).connect();
    let token: i64 = run(&mut holder, &["LOCK", "broken", "holder", "60000"]);
    assert!(token > 0);
    // A lock request that waits on the leader, and writes behind it that the leader holds
    // back until it is answered: all in flight on the relay when the leader dies.
    let mut pipeline = resp_request(&["LOCK", "broken", "waiter", "60000", "WAIT", "0"]);
    for i in 0..BEHIND {
        pipeline.extend(resp_request(&["SET", "behind", &i.to_string()]));
    }
    let (mut client, writer) = connect(&cluster, follower);
    write_in_background(writer, pipeline)
        .join()
        .expect("writer");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !lock_waiters(&mut holder, "broken").contains(&"waiter".to_string()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the LOCK never queued"
        );
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(200));
    cluster.kill(leader);
    for i in 0..=BEHIND {
        let reply = next_reply(&mut client, format!("request {i}"));
        assert!(
            reply.starts_with("-TRYAGAIN"),
            "reply {i} of {}: {reply:?}",
            BEHIND + 1
        );
    }
    // Nothing more was owed, and the connection still serves, through the new leader.
    assert_eq!(client.call("PING\r\n"), "+PONG\r\n");
    cluster.wait_new_leader(leader, Duration::from_secs(30));
    let set = String::from_utf8(resp_request(&["SET", "after", "1"])).unwrap();
    assert_eq!(client.call(&set), "+OK\r\n");
}
