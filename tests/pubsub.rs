//! Pub/sub against a real node: confirmations and messages byte for byte (RESP2 and
//! RESP3), the `redis` crate's subscriber API, and the lock-release channel.

mod common;

use std::time::Duration;

use common::{run, run_err, RawClient, Server};

/// A request as text, for `RawClient::call`.
fn resp(args: &[&str]) -> String {
    String::from_utf8(common::resp_request(args)).expect("text arguments")
}

/// A RESP2 array of bulk strings ending with an integer (subscribe confirmations).
fn confirmation(kind: &str, channel: &str, count: i64) -> String {
    format!(
        "*3\r\n${}\r\n{kind}\r\n${}\r\n{channel}\r\n:{count}\r\n",
        kind.len(),
        channel.len()
    )
}

fn message(channel: &str, payload: &str) -> String {
    format!(
        "*3\r\n$7\r\nmessage\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n",
        channel.len(),
        payload.len()
    )
}

fn subscriber(server: &Server, command: &str, names: &[&str]) -> RawClient {
    let mut raw = server.raw_client();
    let mut args = vec![command];
    args.extend_from_slice(names);
    raw.send(resp(&args).as_bytes());
    for _ in names {
        raw.frame();
    }
    raw
}

#[test]
fn subscribe_confirms_each_channel_and_receives_messages() {
    let server = Server::start();
    let mut sub = server.raw_client();
    sub.send(resp(&["SUBSCRIBE", "a", "b"]).as_bytes());
    assert_eq!(sub.frame_text(), confirmation("subscribe", "a", 1));
    assert_eq!(sub.frame_text(), confirmation("subscribe", "b", 2));
    let mut con = server.connect();
    assert_eq!(run::<i64>(&mut con, &["PUBLISH", "a", "hello"]), 1);
    assert_eq!(run::<i64>(&mut con, &["PUBLISH", "nobody", "x"]), 0);
    assert_eq!(run::<i64>(&mut con, &["PUBLISH", "b", "world"]), 1);
    assert_eq!(sub.frame_text(), message("a", "hello"));
    assert_eq!(sub.frame_text(), message("b", "world"));
}

#[test]
fn patterns_receive_pmessage_frames() {
    let server = Server::start();
    let mut sub = server.raw_client();
    sub.send(resp(&["PSUBSCRIBE", "news.*"]).as_bytes());
    assert_eq!(sub.frame_text(), confirmation("psubscribe", "news.*", 1));
    let mut con = server.connect();
    assert_eq!(run::<i64>(&mut con, &["PUBLISH", "news.tech", "rust"]), 1);
    assert_eq!(run::<i64>(&mut con, &["PUBLISH", "sports", "x"]), 0);
    assert_eq!(
        sub.frame_text(),
        "*4\r\n$8\r\npmessage\r\n$6\r\nnews.*\r\n$9\r\nnews.tech\r\n$4\r\nrust\r\n"
    );
}

#[test]
fn resp2_subscribe_mode_allows_only_subscription_commands_and_ping() {
    let server = Server::start();
    let mut sub = subscriber(&server, "SUBSCRIBE", &["c"]);
    assert_eq!(
        sub.call(&resp(&["GET", "k"])),
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    );
    assert_eq!(sub.call(&resp(&["PING"])), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    assert_eq!(
        sub.call(&resp(&["PING", "hi"])),
        "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n"
    );
    assert_eq!(
        sub.call(&resp(&["UNSUBSCRIBE"])),
        confirmation("unsubscribe", "c", 0)
    );
    assert_eq!(
        sub.call(&resp(&["GET", "k"])),
        "$-1\r\n",
        "out of subscribe mode"
    );
    assert_eq!(sub.call(&resp(&["PING"])), "+PONG\r\n");
}

#[test]
fn unsubscribe_counts_down_and_reports_nil_when_nothing_is_left() {
    let server = Server::start();
    let mut sub = server.raw_client();
    sub.send(resp(&["SUBSCRIBE", "a", "b"]).as_bytes());
    sub.frame();
    sub.frame();
    sub.send(resp(&["PSUBSCRIBE", "p*"]).as_bytes());
    assert_eq!(sub.frame_text(), confirmation("psubscribe", "p*", 3));
    assert_eq!(
        sub.call(&resp(&["UNSUBSCRIBE", "b"])),
        confirmation("unsubscribe", "b", 2)
    );
    sub.send(resp(&["UNSUBSCRIBE"]).as_bytes());
    assert_eq!(sub.frame_text(), confirmation("unsubscribe", "a", 1));
    assert_eq!(
        sub.call(&resp(&["PUNSUBSCRIBE"])),
        confirmation("punsubscribe", "p*", 0)
    );
    assert_eq!(
        sub.call(&resp(&["UNSUBSCRIBE"])),
        "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
    );
}

#[test]
fn resp3_subscribers_get_push_frames_and_may_run_any_command() {
    let server = Server::start();
    let mut sub = server.raw_client();
    sub.send(resp(&["HELLO", "3"]).as_bytes());
    sub.frame();
    assert_eq!(
        sub.call(&resp(&["SUBSCRIBE", "c"])),
        ">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
    );
    assert_eq!(sub.call(&resp(&["SET", "k", "v"])), "+OK\r\n");
    assert_eq!(sub.call(&resp(&["PING"])), "+PONG\r\n");
    let mut con = server.connect();
    assert_eq!(run::<i64>(&mut con, &["PUBLISH", "c", "m"]), 1);
    assert_eq!(
        sub.frame_text(),
        ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"
    );
}

#[test]
fn the_redis_crate_subscriber_receives_messages() {
    let server = Server::start();
    let mut con = server.connect();
    let mut publisher = server.connect();
    let mut pubsub = con.as_pubsub();
    pubsub.subscribe("events").unwrap();
    pubsub.psubscribe("ev*").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(run::<i64>(&mut publisher, &["PUBLISH", "events", "one"]), 2);
    let mut got = Vec::new();
    for _ in 0..2 {
        let msg = pubsub.get_message().unwrap();
        got.push((
            msg.get_channel_name().to_string(),
            msg.get_payload::<String>().unwrap(),
        ));
    }
    assert_eq!(
        got,
        vec![
            ("events".into(), "one".into()),
            ("events".into(), "one".into())
        ]
    );
}

#[test]
fn the_redis_crate_receives_resp3_pushes() {
    let server = Server::start();
    let mut con = server.connect_resp3();
    let (tx, rx) = std::sync::mpsc::channel();
    con.set_push_sender(tx);
    con.subscribe_resp3("pushed").unwrap();
    let mut publisher = server.connect();
    assert_eq!(
        run::<i64>(&mut publisher, &["PUBLISH", "pushed", "payload"]),
        1
    );
    // The crate reads pushes while it waits for a reply.
    let _: String = run(&mut con, &["PING"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let push = rx.recv_timeout(Duration::from_secs(10)).expect("a push");
        if push.kind == redis::PushKind::Message {
            assert_eq!(
                push.data,
                vec![common::bulk("pushed"), common::bulk("payload")]
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        let _: String = run(&mut con, &["PING"]);
    }
}

#[test]
fn pubsub_introspection_counts_this_nodes_subscribers() {
    let server = Server::start();
    let _a = subscriber(&server, "SUBSCRIBE", &["x", "y"]);
    let _b = subscriber(&server, "SUBSCRIBE", &["x"]);
    let _p = subscriber(&server, "PSUBSCRIBE", &["z*"]);
    let _s = subscriber(&server, "SSUBSCRIBE", &["shard"]);
    let mut con = server.connect();
    assert_eq!(
        run::<Vec<String>>(&mut con, &["PUBSUB", "CHANNELS"]),
        vec!["x", "y"]
    );
    assert_eq!(
        run::<Vec<String>>(&mut con, &["PUBSUB", "CHANNELS", "y*"]),
        vec!["y"]
    );
    let numsub: Vec<redis::Value> = run(&mut con, &["PUBSUB", "NUMSUB", "x", "nobody"]);
    assert_eq!(
        numsub,
        vec![
            common::bulk("x"),
            redis::Value::Int(2),
            common::bulk("nobody"),
            redis::Value::Int(0)
        ]
    );
    // Under RESP3 as well: a flat array, as Redis answers, not a map.
    let mut resp3 = server.connect_resp3();
    let numsub: redis::Value = common::cmd(&["PUBSUB", "NUMSUB", "x", "nobody"])
        .query(&mut resp3)
        .unwrap();
    assert_eq!(
        numsub,
        redis::Value::Array(vec![
            common::bulk("x"),
            redis::Value::Int(2),
            common::bulk("nobody"),
            redis::Value::Int(0)
        ])
    );
    assert_eq!(run::<i64>(&mut con, &["PUBSUB", "NUMPAT"]), 1);
    assert_eq!(
        run::<Vec<String>>(&mut con, &["PUBSUB", "SHARDCHANNELS"]),
        vec!["shard"]
    );
    assert_eq!(
        run_err(&mut con, &["PUBSUB", "NOPE"]),
        "ERR unknown subcommand 'NOPE'. Try PUBSUB HELP."
    );
    assert_eq!(run::<i64>(&mut con, &["PUBLISH", "x", "m"]), 2);
    assert_eq!(run::<i64>(&mut con, &["SPUBLISH", "shard", "m"]), 1);
    assert_eq!(
        run::<i64>(&mut con, &["PUBLISH", "shard", "m"]),
        0,
        "a namespace of its own"
    );
}

#[test]
fn sharded_subscribers_get_smessage_frames() {
    let server = Server::start();
    let mut sub = server.raw_client();
    assert_eq!(
        sub.call(&resp(&["SSUBSCRIBE", "s"])),
        confirmation("ssubscribe", "s", 1)
    );
    let mut con = server.connect();
    assert_eq!(run::<i64>(&mut con, &["SPUBLISH", "s", "m"]), 1);
    assert_eq!(
        sub.frame_text(),
        "*3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nm\r\n"
    );
    assert_eq!(
        sub.call(&resp(&["SUNSUBSCRIBE"])),
        confirmation("sunsubscribe", "s", 0)
    );
}

#[test]
fn subscribing_inside_multi_is_refused() {
    let server = Server::start();
    let mut con = server.connect();
    run::<String>(&mut con, &["MULTI"]);
    assert_eq!(
        run_err(&mut con, &["SUBSCRIBE", "c"]),
        "ERR Command not allowed inside a transaction"
    );
    run::<String>(&mut con, &["DISCARD"]);
}

#[test]
fn publish_inside_multi_counts_receivers() {
    let server = Server::start();
    let mut sub = subscriber(&server, "SUBSCRIBE", &["c"]);
    let mut con = server.connect();
    run::<String>(&mut con, &["MULTI"]);
    run::<String>(&mut con, &["PUBLISH", "c", "in-tx"]);
    assert_eq!(run::<Vec<i64>>(&mut con, &["EXEC"]), vec![1]);
    assert_eq!(sub.frame_text(), message("c", "in-tx"));
}

#[test]
fn the_release_channel_fires_on_unlock_and_on_lease_expiry() {
    let server = Server::start();
    let mut sub = subscriber(&server, "SUBSCRIBE", &["raftlock:released:job"]);
    let mut con = server.connect();
    run::<i64>(&mut con, &["LOCK", "job", "a", "10000"]);
    run::<i64>(&mut con, &["LOCK", "job", "a", "10000"]);
    assert_eq!(
        run::<i64>(&mut con, &["UNLOCK", "job", "a"]),
        1,
        "still held once"
    );
    assert_eq!(run::<i64>(&mut con, &["UNLOCK", "job", "a"]), 0);
    assert_eq!(sub.frame_text(), message("raftlock:released:job", "job"));
    run::<i64>(&mut con, &["LOCK", "job", "b", "200"]);
    // Nobody unlocks: the lease runs out and the leader's expiry entry releases it.
    assert_eq!(sub.frame_text(), message("raftlock:released:job", "job"));
}

#[test]
fn a_subscriber_that_leaves_is_forgotten() {
    let server = Server::start();
    let sub = subscriber(&server, "SUBSCRIBE", &["c"]);
    drop(sub);
    let mut con = server.connect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while run::<i64>(&mut con, &["PUBLISH", "c", "m"]) != 0 {
        assert!(std::time::Instant::now() < deadline, "still counted");
        std::thread::sleep(Duration::from_millis(20));
    }
}
