use super::super::tests::{bulk, bulks, err, int, Harness};
use crate::reply::Reply;

const INVALID_SET: &str = "ERR invalid expire time in 'set' command";
const NOT_INT: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

#[test]
fn get_and_set_round_trip_and_missing_is_nil() {
    let mut h = Harness::new();
    assert_eq!(h.read("get k"), Reply::Nil);
    assert_eq!(h.write("set k v"), Reply::Ok);
    assert_eq!(h.read("get k"), bulk("v"));
    assert_eq!(h.write("SET k w"), Reply::Ok);
    assert_eq!(h.read("GET k"), bulk("w"));
}

#[test]
fn set_nx_and_xx_write_only_when_their_condition_holds() {
    let mut h = Harness::new();
    assert_eq!(h.write("set k v xx"), Reply::Nil);
    assert_eq!(h.read("get k"), Reply::Nil);
    assert_eq!(h.write("set k v nx"), Reply::Ok);
    assert_eq!(h.write("set k w nx"), Reply::Nil);
    assert_eq!(h.read("get k"), bulk("v"));
    assert_eq!(h.write("set k w xx"), Reply::Ok);
    assert_eq!(h.read("get k"), bulk("w"));
}

#[test]
fn set_get_returns_the_old_value_even_when_nx_refuses() {
    let mut h = Harness::new();
    assert_eq!(h.write("set k v get"), Reply::Nil);
    assert_eq!(h.write("set k w get"), bulk("v"));
    assert_eq!(h.write("set k x nx get"), bulk("w"));
    assert_eq!(h.read("get k"), bulk("w"));
    assert_eq!(h.write("set other x xx get"), Reply::Nil);
    assert_eq!(h.read("get other"), Reply::Nil);
}

#[test]
fn set_expiry_options_set_absolute_deadlines() {
    let mut h = Harness::new();
    let now = h.now_ms;
    h.write("set a v ex 10");
    assert_eq!(h.read("pttl a"), int(10_000));
    h.write("set b v px 1500");
    assert_eq!(h.read("pttl b"), int(1_500));
    h.write(&format!("set c v exat {}", now / 1000 + 100));
    assert_eq!(
        h.read("pexpiretime c"),
        int(((now / 1000 + 100) * 1000) as i64)
    );
    h.write(&format!("set d v pxat {}", now + 42));
    assert_eq!(h.read("pttl d"), int(42));
    // A plain SET drops the deadline; KEEPTTL keeps it.
    h.write("set a w");
    assert_eq!(h.read("ttl a"), int(-1));
    h.write("set b w keepttl");
    assert_eq!(h.read("pttl b"), int(1_500));
    h.write("set new w keepttl");
    assert_eq!(h.read("ttl new"), int(-1));
}

#[test]
fn set_with_a_past_absolute_time_removes_the_key() {
    let mut h = Harness::new();
    h.write("set k v");
    assert_eq!(h.write("set k w pxat 1"), Reply::Ok);
    assert_eq!(h.read("get k"), Reply::Nil);
    assert_eq!(h.read("dbsize"), int(0));
}

#[test]
fn set_options_in_any_order_and_case() {
    let mut h = Harness::new();
    assert_eq!(h.write("set k v PX 100 nx GeT"), Reply::Nil);
    assert_eq!(h.read("pttl k"), int(100));
    assert_eq!(h.write("set k v get xx ex 5"), bulk("v"));
    assert_eq!(h.read("ttl k"), int(5));
    // Repeating an option is allowed; the last value wins.
    assert_eq!(h.write("set k v ex 5 ex 7"), Reply::Ok);
    assert_eq!(h.read("ttl k"), int(7));
    assert_eq!(h.write("set k v nx nx"), Reply::Nil);
}

#[test]
fn set_conflicting_or_incomplete_options_are_syntax_errors() {
    let mut h = Harness::new();
    for line in [
        "set k v nx xx",
        "set k v xx nx",
        "set k v ex 1 px 100",
        "set k v px 100 exat 5",
        "set k v ex 1 keepttl",
        "set k v keepttl pxat 5",
        "set k v ex",
        "set k v persist",
        "set k v foo",
    ] {
        assert_eq!(h.write(line), err(SYNTAX), "{line}");
    }
    assert_eq!(h.read("exists k"), int(0));
}

#[test]
fn set_rejects_bad_expire_times_like_redis() {
    let mut h = Harness::new();
    for line in [
        "set k v ex 0",
        "set k v px -1",
        "set k v exat 0",
        "set k v ex 9223372036854775",
        "set k v px 9223372036854775807",
    ] {
        assert_eq!(h.write(line), err(INVALID_SET), "{line}");
    }
    assert_eq!(h.write("set k v ex abc"), err(NOT_INT));
    assert_eq!(h.write("set k v ex 1.5"), err(NOT_INT));
    assert_eq!(h.read("exists k"), int(0));
    // The largest absolute time is fine.
    assert_eq!(h.write("set k v pxat 9223372036854775807"), Reply::Ok);
}

#[test]
fn setnx_answers_one_when_it_sets() {
    let mut h = Harness::new();
    assert_eq!(h.write("setnx k v"), int(1));
    assert_eq!(h.write("setnx k w"), int(0));
    assert_eq!(h.read("get k"), bulk("v"));
}

#[test]
fn setex_and_psetex_set_value_and_deadline() {
    let mut h = Harness::new();
    assert_eq!(h.write("setex k 10 v"), Reply::Ok);
    assert_eq!(h.read("get k"), bulk("v"));
    assert_eq!(h.read("pttl k"), int(10_000));
    assert_eq!(h.write("psetex k 250 w"), Reply::Ok);
    assert_eq!(h.read("pttl k"), int(250));
    assert_eq!(
        h.write("setex k 0 v"),
        err("ERR invalid expire time in 'setex' command")
    );
    assert_eq!(
        h.write("PSETEX k -5 v"),
        err("ERR invalid expire time in 'psetex' command")
    );
    assert_eq!(h.write("setex k x v"), err(NOT_INT));
    assert_eq!(h.read("get k"), bulk("w"));
}

#[test]
fn getdel_returns_the_value_and_removes_the_key() {
    let mut h = Harness::new();
    assert_eq!(h.write("getdel k"), Reply::Nil);
    h.write("set k v ex 100");
    assert_eq!(h.write("getdel k"), bulk("v"));
    assert_eq!(h.read("exists k"), int(0));
    assert_eq!(h.ks.expires_count(), 0);
}

#[test]
fn getex_changes_only_the_deadline() {
    let mut h = Harness::new();
    assert_eq!(h.write("getex k ex 10"), Reply::Nil);
    h.write("set k v");
    assert_eq!(h.write("getex k"), bulk("v"));
    assert_eq!(h.read("ttl k"), int(-1));
    assert_eq!(h.write("getex k px 500"), bulk("v"));
    assert_eq!(h.read("pttl k"), int(500));
    assert_eq!(h.write("getex k persist"), bulk("v"));
    assert_eq!(h.read("ttl k"), int(-1));
    assert_eq!(
        h.write(&format!("getex k exat {}", h.now_ms / 1000 + 60)),
        bulk("v")
    );
    assert!(matches!(h.read("ttl k"), Reply::Int(59..=60)));
    // A past absolute time removes the key after answering.
    assert_eq!(h.write("getex k pxat 10"), bulk("v"));
    assert_eq!(h.read("get k"), Reply::Nil);
}

#[test]
fn getex_option_errors() {
    let mut h = Harness::new();
    h.write("set k v");
    for line in [
        "getex k nx",
        "getex k get",
        "getex k keepttl",
        "getex k ex 1 persist",
        "getex k persist px 1",
        "getex k ex 1 px 1",
        "getex k ex",
    ] {
        assert_eq!(h.write(line), err(SYNTAX), "{line}");
    }
    assert_eq!(
        h.write("getex k ex 0"),
        err("ERR invalid expire time in 'getex' command")
    );
    assert_eq!(h.write("getex k px x"), err(NOT_INT));
}

#[test]
fn getset_returns_the_old_value_and_drops_the_deadline() {
    let mut h = Harness::new();
    assert_eq!(h.write("getset k a"), Reply::Nil);
    h.write("expire k 100");
    assert_eq!(h.write("getset k b"), bulk("a"));
    assert_eq!(h.read("get k"), bulk("b"));
    assert_eq!(h.read("ttl k"), int(-1));
}

#[test]
fn mget_gives_nil_for_missing_keys() {
    let mut h = Harness::new();
    h.write("mset a 1 b 2");
    assert_eq!(
        h.read("mget a nope b a"),
        Reply::Array(vec![bulk("1"), Reply::Nil, bulk("2"), bulk("1")])
    );
}

#[test]
fn mset_sets_all_pairs_and_drops_deadlines() {
    let mut h = Harness::new();
    h.write("set a old ex 100");
    assert_eq!(h.write("mset a 1 b 2 a 3"), Reply::Ok);
    assert_eq!(h.read("mget a b"), bulks(&["3", "2"]));
    assert_eq!(h.read("ttl a"), int(-1));
    assert_eq!(
        h.write("mset a 1 b"),
        err("ERR wrong number of arguments for 'mset' command")
    );
    assert_eq!(h.read("get a"), bulk("3"));
}

#[test]
fn msetnx_is_all_or_nothing() {
    let mut h = Harness::new();
    assert_eq!(h.write("msetnx a 1 b 2"), int(1));
    assert_eq!(h.write("msetnx c 3 b 4"), int(0));
    assert_eq!(
        h.read("mget a b c"),
        Reply::Array(vec![bulk("1"), bulk("2"), Reply::Nil])
    );
    assert_eq!(
        h.write("msetnx a 1 b"),
        err("ERR wrong number of arguments for 'msetnx' command")
    );
}

#[test]
fn incr_family_counts_from_zero_and_keeps_the_deadline() {
    let mut h = Harness::new();
    assert_eq!(h.write("incr n"), int(1));
    assert_eq!(h.write("incrby n 10"), int(11));
    assert_eq!(h.write("decr n"), int(10));
    assert_eq!(h.write("decrby n 15"), int(-5));
    assert_eq!(h.write("incrby n -5"), int(-10));
    assert_eq!(h.read("get n"), bulk("-10"));
    h.write("pexpire n 1000");
    h.write("incr n");
    assert_eq!(h.read("pttl n"), int(1000));
}

#[test]
fn incr_errors_match_redis() {
    let mut h = Harness::new();
    h.write("set s abc");
    assert_eq!(h.write("incr s"), err(NOT_INT));
    h.write("set s 007");
    assert_eq!(h.write("incr s"), err(NOT_INT));
    h.write("set s -0");
    assert_eq!(h.write("incr s"), err(NOT_INT));
    h.write_args(&["set", "s", " 1"]);
    assert_eq!(h.write("incr s"), err(NOT_INT));
    assert_eq!(h.write("incrby n x"), err(NOT_INT));
    assert_eq!(h.write("incrby n 99999999999999999999"), err(NOT_INT));
    h.write("set max 9223372036854775807");
    assert_eq!(
        h.write("incr max"),
        err("ERR increment or decrement would overflow")
    );
    h.write("set min -9223372036854775808");
    assert_eq!(
        h.write("decr min"),
        err("ERR increment or decrement would overflow")
    );
    assert_eq!(
        h.write("decrby n -9223372036854775808"),
        err("ERR decrement would overflow")
    );
    assert_eq!(h.write("decrby n 9223372036854775807"), int(-i64::MAX));
    assert_eq!(h.read("get max"), bulk("9223372036854775807"));
}

#[test]
fn append_creates_or_extends_and_answers_the_length() {
    let mut h = Harness::new();
    assert_eq!(h.write("append k hello"), int(5));
    h.write("expire k 100");
    assert_eq!(h.write("append k _world"), int(11));
    assert_eq!(h.read("get k"), bulk("hello_world"));
    assert_eq!(h.read("ttl k"), int(100));
}

#[test]
fn strlen_counts_bytes_and_missing_is_zero() {
    let mut h = Harness::new();
    assert_eq!(h.read("strlen k"), int(0));
    h.write("set k héllo");
    assert_eq!(h.read("strlen k"), int(6));
}

#[test]
fn fence_gives_the_token_or_nil() {
    let mut h = Harness::new();
    assert_eq!(h.read("fence k"), Reply::Nil);
    h.write("set k v");
    assert_eq!(h.read("fence k"), int(1));
    h.write("set j v");
    assert_eq!(h.read("fence j"), int(2));
}

#[test]
fn stored_values_do_not_share_the_argument_buffer() {
    use bytes::Bytes;
    let mut h = Harness::new();
    let buffer = Bytes::from(vec![b'x'; 1024]);
    let argv = vec![Bytes::from("set"), buffer.slice(0..3), buffer.slice(3..6)];
    h.ks.apply_batch(&super::super::Batch {
        now_ms: h.now_ms,
        ops: vec![argv],
    });
    let (key, entry) = h.ks.replicated.entries.iter().next().unwrap();
    let super::Value::Str(value) = &entry.value else {
        panic!("a string was stored");
    };
    assert!(!std::ptr::eq(key.as_ptr(), buffer.as_ptr()));
    assert!(!std::ptr::eq(value.as_ptr(), buffer[3..].as_ptr()));
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const DIGEST: &str =
    "ERR IFDEQ and IFDNE (digest conditions) are not supported by raftlock; use IFEQ or IFNE";

#[test]
fn set_ifeq_writes_only_over_an_equal_value_and_never_creates() {
    let mut h = Harness::new();
    assert_eq!(h.write("set k new ifeq old"), Reply::Nil);
    assert_eq!(h.read("exists k"), int(0));
    h.write("set k old");
    assert_eq!(h.write("set k new ifeq other"), Reply::Nil);
    assert_eq!(h.read("get k"), bulk("old"));
    let before = h.token("k");
    assert_eq!(h.write("set k new IFEQ old px 500"), Reply::Ok);
    assert_eq!(h.read("get k"), bulk("new"));
    assert_eq!(h.read("pttl k"), int(500));
    assert!(h.token("k") > before);
    // With GET the old value comes back whether or not the condition held.
    assert_eq!(h.write("set k x ifeq nope get"), bulk("new"));
    assert_eq!(h.write("set k x get ifeq new"), bulk("new"));
    assert_eq!(h.read("get k"), bulk("x"));
    assert_eq!(h.write("set missing x ifeq y get"), Reply::Nil);
}

#[test]
fn set_ifne_writes_over_a_different_value_or_a_missing_key() {
    let mut h = Harness::new();
    assert_eq!(h.write("set k v ifne v"), Reply::Ok);
    assert_eq!(h.write("set k w ifne v"), Reply::Nil);
    assert_eq!(h.read("get k"), bulk("v"));
    assert_eq!(h.write("set k w ifne other"), Reply::Ok);
    assert_eq!(h.read("get k"), bulk("w"));
}

#[test]
fn set_conditions_exclude_each_other_and_need_a_string() {
    let mut h = Harness::new();
    for line in [
        "set k v nx ifeq a",
        "set k v ifeq a xx",
        "set k v ifeq a ifne b",
        "set k v ifne a nx",
        "set k v ifeq",
    ] {
        assert_eq!(h.write(line), err(SYNTAX), "{line}");
    }
    assert_eq!(h.write("set k v ifeq a ifeq b"), Reply::Nil);
    assert_eq!(h.write("getex k ifeq a"), err(SYNTAX));
    assert_eq!(h.write("set k v ifdeq 0123456789abcdef"), err(DIGEST));
    assert_eq!(h.write("set k v ifdne 0123456789abcdef"), err(DIGEST));
    h.write("hset h f v");
    h.write("lock l owner 10000");
    for key in ["h", "l"] {
        assert_eq!(h.write(&format!("set {key} v ifeq v")), err(WRONGTYPE));
        assert_eq!(h.write(&format!("set {key} v ifne v")), err(WRONGTYPE));
    }
}

#[test]
fn delifeq_deletes_only_an_equal_string() {
    let mut h = Harness::new();
    assert_eq!(h.write("delifeq k token"), int(0));
    h.write("set k token px 1000");
    assert_eq!(h.write("delifeq k other"), int(0));
    assert_eq!(h.read("get k"), bulk("token"));
    assert_eq!(h.write("delifeq k token"), int(1));
    assert_eq!(h.read("exists k"), int(0));
    assert_eq!(h.write("delifeq k token"), int(0));
    assert_eq!(h.ks.expires_count(), 0);
    h.write("hset h f v");
    h.write("lock l owner 10000");
    assert_eq!(h.write("delifeq h v"), err(WRONGTYPE));
    assert_eq!(h.write("delifeq l owner"), err(WRONGTYPE));
    assert_eq!(
        h.write("delifeq k"),
        err("ERR wrong number of arguments for 'delifeq' command")
    );
}

#[test]
fn delifeq_does_not_see_an_expired_value() {
    let mut h = Harness::new();
    h.write("set k token px 100");
    h.advance(100);
    assert_eq!(h.write("delifeq k token"), int(0));
}

#[test]
fn delex_without_a_condition_is_del_of_any_type() {
    let mut h = Harness::new();
    assert_eq!(h.write("delex k"), int(0));
    h.write("set k v");
    h.write("hset h f v");
    assert_eq!(h.write("delex k"), int(1));
    assert_eq!(h.write("delex h"), int(1));
    assert_eq!(h.read("dbsize"), int(0));
}

#[test]
fn delex_ifeq_and_ifne_compare_the_string() {
    let mut h = Harness::new();
    assert_eq!(h.write("delex k ifeq v"), int(0));
    assert_eq!(h.write("delex k ifne v"), int(0));
    h.write("set k v");
    assert_eq!(h.write("delex k ifeq w"), int(0));
    assert_eq!(h.write("delex k IFNE v"), int(0));
    assert_eq!(h.read("get k"), bulk("v"));
    assert_eq!(h.write("delex k IfEq v"), int(1));
    h.write("set k v");
    assert_eq!(h.write("delex k ifne w"), int(1));
    assert_eq!(h.read("exists k"), int(0));
}

#[test]
fn delex_errors() {
    let mut h = Harness::new();
    h.write("set k v");
    h.write("zadd z 1 m");
    assert_eq!(h.write("delex z ifeq m"), err(WRONGTYPE));
    assert_eq!(h.write("delex k foo v"), err(SYNTAX));
    assert_eq!(h.write("delex k ifdeq 0123456789abcdef"), err(DIGEST));
    let arity = err("ERR wrong number of arguments for 'delex' command");
    assert_eq!(h.write("delex k ifeq"), arity);
    assert_eq!(h.write("delex k ifeq v ifne w"), arity);
    assert_eq!(h.read("get k"), bulk("v"));
}
