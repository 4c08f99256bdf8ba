use super::*;

#[test]
fn tokens_are_long_random_ids_and_ordinary_values_are_not() {
    for token in [
        "2f1e5b1c9a7d4e3f8b6a0c1d2e3f4a5b", // node-redlock: 16 bytes, hex
        "QmFzZTY0IHJhbmRvbSBieXRlcw==",     // redlock-py: base64
        "9b2d3f1e-7c4a-4e8b-9a1d-2c3e4f5a6b7c", // pottery, aioredlock: uuid4
        "7c4a9b2d-3f1e-4e8b-9a1d-2c3e4f5a6b7c:57", // Redisson: uuid:thread
    ] {
        assert!(is_token(token.as_bytes()), "{token}");
    }
    for value in [
        "1",
        "locked",
        "worker-7",
        "aaaaaaaaaaaaaaaaaaaaaaaa",
        "hello world, this is text",
        "host.example.com-12345678",
    ] {
        assert!(!is_token(value.as_bytes()), "{value}");
    }
    assert!(!is_token("x".repeat(300).as_bytes()));
}

fn argv(words: &[&str]) -> Vec<Bytes> {
    words.iter().map(|w| Bytes::from(w.to_string())).collect()
}

const TOKEN: &str = "2f1e5b1c9a7d4e3f8b6a0c1d2e3f4a5b";

#[test]
fn only_keyed_writes_with_a_token_outside_their_keys_are_replayable() {
    let spec = |name: &str| crate::command::lookup(name.as_bytes()).unwrap();
    let set = argv(&["SET", "res", TOKEN, "NX", "PX", "30000"]);
    assert_eq!(replayable_keys(spec("set"), &set), Some(argv(&["res"])));
    let plain = argv(&["SET", "res", "1", "NX", "PX", "30000"]);
    assert_eq!(replayable_keys(spec("set"), &plain), None);
    let script = argv(&[
        "EVALSHA",
        "a".repeat(40).as_str(),
        "1",
        "res",
        TOKEN,
        "30000",
    ]);
    assert_eq!(
        replayable_keys(spec("evalsha"), &script),
        Some(argv(&["res"]))
    );
    // The sha1 alone is not a token; nor is a key that looks like one.
    let sha_only = argv(&["EVALSHA", &"0123456789abcdef".repeat(2), "1", "res", "1"]);
    assert_eq!(replayable_keys(spec("evalsha"), &sha_only), None);
    let token_key = argv(&["DEL", TOKEN]);
    assert_eq!(replayable_keys(spec("del"), &token_key), None);
    let no_keys = argv(&["EVAL", "return 1", "0", TOKEN]);
    assert_eq!(replayable_keys(spec("eval"), &no_keys), None);
    let read = argv(&["GET", TOKEN]);
    assert_eq!(replayable_keys(spec("get"), &read), None);
}

#[test]
fn the_cache_finds_the_same_request_within_the_window_only() {
    let mut cache = ReplayCache::default();
    cache.set_window_ms(1000);
    let set = argv(&["SET", "res", TOKEN, "NX", "PX", "30000"]);
    cache.record(&set, vec![(Bytes::from("res"), 7)], 7, &Reply::Ok, 100);
    let same_in_lower_case = argv(&["set", "res", TOKEN, "NX", "PX", "30000"]);
    let earlier = cache
        .earlier(&same_in_lower_case, 900)
        .expect("within the window");
    assert_eq!(earlier.reply, Reply::Ok);
    assert_eq!(earlier.keys, vec![(Bytes::from("res"), 7)]);
    let other = argv(&["SET", "res", TOKEN, "NX", "PX", "30001"]);
    assert!(cache.earlier(&other, 900).is_none());
    assert!(cache.earlier(&set, 1101).is_none(), "past the window");
    assert!(cache.order.is_empty() && cache.by_hash.is_empty());
}

use crate::config::state_limits::{MAX_REPLAY_ENTRIES, REPLAY_WINDOW_MS};
use crate::state::tests::{bulk, int, Harness};

/// A keyspace with the rule on, at the window docs/LOCKS.md recommends.
fn harness() -> Harness {
    let mut h = Harness::new();
    h.ks.set_replay_window_ms(REPLAY_WINDOW_MS);
    h
}

/// node-redlock's acquire and release scripts, as it sends them.
const ACQUIRE: &str = "for i, key in ipairs(KEYS) do if redis.call('exists', key) == 1 then return 0 end end for i, key in ipairs(KEYS) do redis.call('set', key, ARGV[1], 'PX', ARGV[2]) end return #KEYS";
const RELEASE: &str = "local count = 0 for _, key in ipairs(KEYS) do if redis.call('get', key) == ARGV[1] then redis.pcall('del', key) count = count + 1 end end return count";

#[test]
fn copies_of_a_set_nx_px_are_granted_alike_and_other_owners_are_refused() {
    let mut h = harness();
    let acquire = ["SET", "res", TOKEN, "NX", "PX", "30000"];
    assert_eq!(h.write_args(&acquire), Reply::Ok);
    h.advance(5);
    assert_eq!(h.write_args(&acquire), Reply::Ok, "the second node's copy");
    assert_eq!(h.write_args(&acquire), Reply::Ok, "the third node's copy");
    // The lease counts from the first copy.
    assert_eq!(h.read("PTTL res"), int(29_995));
    let other = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    assert_eq!(
        h.write_args(&["SET", "res", other, "NX", "PX", "30000"]),
        Reply::Nil
    );
    // An ordinary value keeps SET NX's meaning.
    assert_eq!(h.write("SET plain 1 NX PX 30000"), Reply::Ok);
    assert_eq!(h.write("SET plain 1 NX PX 30000"), Reply::Nil);
}

#[test]
fn a_copy_that_finds_the_key_changed_is_answered_as_it_ran() {
    let mut h = harness();
    let acquire = ["SET", "res", TOKEN, "NX", "PX", "30000"];
    assert_eq!(h.write_args(&acquire), Reply::Ok);
    // Released and taken by another owner between the copies.
    assert_eq!(h.write("DEL res"), int(1));
    assert_eq!(h.write("SET res someone-else"), Reply::Ok);
    assert_eq!(h.write_args(&acquire), Reply::Nil);
    // Released, then the late copy: it takes the free lock, as it would in Redis.
    assert_eq!(h.write("DEL res"), int(1));
    assert_eq!(h.write_args(&acquire), Reply::Ok);
    assert_eq!(h.read("GET res"), bulk(TOKEN));
}

#[test]
fn a_copy_past_the_window_or_with_the_rule_off_is_answered_as_redis_would() {
    let mut h = harness();
    let acquire = ["SET", "res", TOKEN, "NX", "PX", "30000"];
    assert_eq!(h.write_args(&acquire), Reply::Ok);
    h.advance(REPLAY_WINDOW_MS + 1);
    assert_eq!(h.write_args(&acquire), Reply::Nil);

    // Off, as by default.
    let mut off = Harness::new();
    assert_eq!(off.write_args(&acquire), Reply::Ok);
    assert_eq!(off.write_args(&acquire), Reply::Nil);
}

#[test]
fn node_redlock_scripts_acquire_and_release_on_every_copy() {
    let mut h = harness();
    let acquire = ["EVAL", ACQUIRE, "1", "res", TOKEN, "30000"];
    for copy in 0..3 {
        assert_eq!(h.write_args(&acquire), int(1), "acquire copy {copy}");
    }
    let rival = [
        "EVAL",
        ACQUIRE,
        "1",
        "res",
        "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "30000",
    ];
    assert_eq!(h.write_args(&rival), int(0));
    let release = ["EVAL", RELEASE, "1", "res", TOKEN];
    for copy in 0..3 {
        assert_eq!(h.write_args(&release), int(1), "release copy {copy}");
    }
    assert_eq!(h.read("EXISTS res"), int(0));
    // The rival's copies now find a free lock: its first retry takes it.
    assert_eq!(h.write_args(&rival), int(1));
}

#[test]
fn a_release_copy_after_another_client_took_the_lock_is_answered_released_and_frees_nothing() {
    let mut h = harness();
    let rival_token = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    assert_eq!(
        h.write_args(&["EVAL", ACQUIRE, "1", "res", TOKEN, "30000"]),
        int(1)
    );
    let release = ["EVAL", RELEASE, "1", "res", TOKEN];
    assert_eq!(h.write_args(&release), int(1), "the first copy releases");
    // The rival's acquire lands between the holder's release copies.
    assert_eq!(
        h.write_args(&["EVAL", ACQUIRE, "1", "res", rival_token, "30000"]),
        int(1)
    );
    assert_eq!(
        h.write_args(&release),
        int(1),
        "a later copy: released, as the first"
    );
    assert_eq!(
        h.read("GET res"),
        bulk(rival_token),
        "the rival's lock stays"
    );
    // An acquire copy that finds the lock another's is refused, whatever it got first.
    assert_eq!(
        h.write_args(&["EVAL", ACQUIRE, "1", "res", TOKEN, "30000"]),
        int(0)
    );
}

#[test]
fn an_evalsha_copy_of_an_eval_is_the_same_request() {
    let mut h = harness();
    assert_eq!(
        h.write_args(&["EVAL", ACQUIRE, "1", "res", TOKEN, "30000"]),
        int(1)
    );
    let sha = crate::state::lua::sha1_hex(ACQUIRE.as_bytes());
    let upper = sha.to_ascii_uppercase();
    for sha in [&sha, &upper] {
        let copy = ["EVALSHA", sha.as_str(), "1", "res", TOKEN, "30000"];
        assert_eq!(h.write_args(&copy), int(1));
    }
}

#[test]
fn a_copy_that_changes_something_is_answered_as_it_ran() {
    let mut h = harness();
    // An extend: every copy runs and moves the lease, each answered as it ran.
    let extend = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";
    assert_eq!(
        h.write_args(&["SET", "res", TOKEN, "PX", "1000"]),
        Reply::Ok
    );
    h.advance(500);
    assert_eq!(
        h.write_args(&["EVAL", extend, "1", "res", TOKEN, "30000"]),
        int(1)
    );
    h.advance(100);
    assert_eq!(
        h.write_args(&["EVAL", extend, "1", "res", TOKEN, "30000"]),
        int(1)
    );
    assert_eq!(
        h.read("PTTL res"),
        int(30_000),
        "the later copy moved the lease"
    );
    // A counter with a token among its arguments counts every copy.
    let incr = "return redis.call('incrby', KEYS[1], 1)";
    assert_eq!(h.write_args(&["EVAL", incr, "1", "n", TOKEN]), int(1));
    assert_eq!(h.write_args(&["EVAL", incr, "1", "n", TOKEN]), int(2));
}

#[test]
fn the_cache_is_off_by_default_bounded_and_a_zero_window_turns_it_off() {
    let mut cache = ReplayCache::default();
    assert!(!cache.enabled(), "off unless the node is configured");
    cache.set_window_ms(REPLAY_WINDOW_MS);
    for i in 0..MAX_REPLAY_ENTRIES + 10 {
        let request = argv(&["SET", &format!("k{i}"), TOKEN]);
        cache.record(&request, Vec::new(), 0, &Reply::Ok, 1);
    }
    assert_eq!(cache.order.len(), MAX_REPLAY_ENTRIES);
    assert!(cache.by_hash.len() <= MAX_REPLAY_ENTRIES);
    cache.set_window_ms(0);
    assert!(!cache.enabled());
    assert!(cache.by_hash.is_empty());
}
