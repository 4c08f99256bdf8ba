use bytes::Bytes;

use super::super::tests::{bulk, bulks, err, int, Harness};
use super::super::Event;
use super::{BlockingPop, Holds};
use crate::reply::Reply;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INT: &str = "ERR value is not an integer or out of range";
const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
const SYNTAX: &str = "ERR syntax error";

fn pushed(key: &str) -> Event {
    Event::Filled(Bytes::copy_from_slice(key.as_bytes()))
}

#[test]
fn push_answers_the_length_and_orders_elements_like_redis() {
    let mut h = Harness::new();
    assert_eq!(h.write("rpush l a b"), int(2));
    assert_eq!(h.write("lpush l x y"), int(4));
    assert_eq!(h.read("lrange l 0 -1"), bulks(&["y", "x", "a", "b"]));
    assert_eq!(h.read("type l"), Reply::Status("list".into()));
    assert_eq!(h.read("llen l"), int(4));
    h.ks.assert_consistent();
}

#[test]
fn pushx_pushes_only_onto_an_existing_list() {
    let mut h = Harness::new();
    assert_eq!(h.write("lpushx l a"), int(0));
    assert_eq!(h.write("rpushx l a"), int(0));
    assert_eq!(h.read("exists l"), int(0));
    h.write("rpush l a");
    assert_eq!(h.write("lpushx l b c"), int(3));
    assert_eq!(h.write("rpushx l d"), int(4));
    assert_eq!(h.read("lrange l 0 -1"), bulks(&["c", "b", "a", "d"]));
}

#[test]
fn pop_without_count_gives_an_element_or_nil() {
    let mut h = Harness::new();
    assert_eq!(h.write("lpop l"), Reply::Nil);
    h.write("rpush l a b c");
    assert_eq!(h.write("lpop l"), bulk("a"));
    assert_eq!(h.write("rpop l"), bulk("c"));
    assert_eq!(h.write("rpop l"), bulk("b"));
    assert_eq!(h.read("exists l"), int(0), "an emptied list is removed");
    assert_eq!(h.write("rpop l"), Reply::Nil);
    h.ks.assert_consistent();
}

#[test]
fn pop_with_count_follows_redis_7_reply_rules() {
    let mut h = Harness::new();
    assert_eq!(h.write("lpop l 2"), Reply::NilArray);
    assert_eq!(h.write("lpop l 0"), Reply::NilArray);
    h.write("rpush l a b c d");
    assert_eq!(h.write("lpop l 0"), Reply::Array(Vec::new()));
    assert_eq!(h.write("lpop l 2"), bulks(&["a", "b"]));
    assert_eq!(h.write("rpop l 1"), bulks(&["d"]));
    assert_eq!(h.write("rpop l 10"), bulks(&["c"]));
    assert_eq!(h.read("exists l"), int(0));
    for line in ["lpop l -1", "rpop l x", "lpop l 1.5"] {
        assert_eq!(h.write(line), err(NOT_POSITIVE), "{line}");
    }
    assert_eq!(
        h.write("lpop l 1 2"),
        err("ERR wrong number of arguments for 'lpop' command")
    );
}

#[test]
fn lrange_handles_negative_and_out_of_range_indexes() {
    let mut h = Harness::new();
    assert_eq!(h.read("lrange l 0 -1"), bulks(&[]));
    h.write("rpush l a b c d e");
    assert_eq!(h.read("lrange l 1 2"), bulks(&["b", "c"]));
    assert_eq!(h.read("lrange l -2 -1"), bulks(&["d", "e"]));
    assert_eq!(h.read("lrange l -100 1"), bulks(&["a", "b"]));
    assert_eq!(h.read("lrange l 3 100"), bulks(&["d", "e"]));
    assert_eq!(h.read("lrange l 3 1"), bulks(&[]));
    assert_eq!(h.read("lrange l 5 10"), bulks(&[]));
    assert_eq!(
        h.read("lrange l -9223372036854775808 9223372036854775807"),
        bulks(&["a", "b", "c", "d", "e"])
    );
    assert_eq!(h.read("lrange l x 1"), err(NOT_INT));
    assert_eq!(h.read("lrange missing x 1"), err(NOT_INT));
}

#[test]
fn lindex_counts_from_either_end() {
    let mut h = Harness::new();
    assert_eq!(h.read("lindex l 0"), Reply::Nil);
    assert_eq!(h.read("lindex l x"), Reply::Nil, "key looked up first");
    h.write("rpush l a b c");
    assert_eq!(h.read("lindex l 0"), bulk("a"));
    assert_eq!(h.read("lindex l -1"), bulk("c"));
    assert_eq!(h.read("lindex l 3"), Reply::Nil);
    assert_eq!(h.read("lindex l -4"), Reply::Nil);
    assert_eq!(h.read("lindex l x"), err(NOT_INT));
}

#[test]
fn lrem_removes_from_the_head_the_tail_or_everywhere() {
    let mut h = Harness::new();
    assert_eq!(h.write("lrem l 0 a"), int(0));
    h.write("rpush l a b a c a");
    assert_eq!(h.write("lrem l 1 a"), int(1));
    assert_eq!(h.read("lrange l 0 -1"), bulks(&["b", "a", "c", "a"]));
    h.write("rpush l a");
    assert_eq!(h.write("lrem l -2 a"), int(2));
    assert_eq!(h.read("lrange l 0 -1"), bulks(&["b", "a", "c"]));
    assert_eq!(h.write("lrem l 0 z"), int(0));
    h.write("rpush l b");
    assert_eq!(h.write("lrem l 0 b"), int(2));
    assert_eq!(h.read("lrange l 0 -1"), bulks(&["a", "c"]));
    assert_eq!(h.write("lrem l 0 a"), int(1));
    assert_eq!(h.write("lrem l 0 c"), int(1));
    assert_eq!(h.read("exists l"), int(0));
    assert_eq!(h.write("lrem l x a"), err(NOT_INT));
    h.ks.assert_consistent();
}

#[test]
fn ltrim_keeps_a_range_and_removes_an_emptied_list() {
    let mut h = Harness::new();
    assert_eq!(h.write("ltrim l 0 1"), Reply::Ok);
    h.write("rpush l a b c d e");
    assert_eq!(h.write("ltrim l 1 -2"), Reply::Ok);
    assert_eq!(h.read("lrange l 0 -1"), bulks(&["b", "c", "d"]));
    assert_eq!(h.write("ltrim l -2 100"), Reply::Ok);
    assert_eq!(h.read("lrange l 0 -1"), bulks(&["c", "d"]));
    assert_eq!(h.write("ltrim l 1 0"), Reply::Ok);
    assert_eq!(h.read("exists l"), int(0));
    assert_eq!(h.write("ltrim l a 0"), err(NOT_INT));
    h.ks.assert_consistent();
}

#[test]
fn lmove_moves_between_any_ends() {
    let mut h = Harness::new();
    assert_eq!(h.write("lmove src dst left right"), Reply::Nil);
    assert_eq!(h.read("exists dst"), int(0));
    h.write("rpush src a b c");
    assert_eq!(h.write("lmove src dst LEFT RIGHT"), bulk("a"));
    assert_eq!(h.write("lmove src dst right left"), bulk("c"));
    assert_eq!(h.read("lrange dst 0 -1"), bulks(&["c", "a"]));
    assert_eq!(h.write("rpoplpush src dst"), bulk("b"));
    assert_eq!(h.read("exists src"), int(0));
    assert_eq!(h.read("lrange dst 0 -1"), bulks(&["b", "c", "a"]));
    assert_eq!(h.write("lmove src dst up left"), err(SYNTAX));
    assert_eq!(h.write("lmove src dst left down"), err(SYNTAX));
    h.ks.assert_consistent();
}

#[test]
fn lmove_onto_the_same_list_rotates_and_keeps_the_key() {
    let mut h = Harness::new();
    h.write("rpush l a b c");
    assert_eq!(h.write("rpoplpush l l"), bulk("c"));
    assert_eq!(h.read("lrange l 0 -1"), bulks(&["c", "a", "b"]));
    assert_eq!(h.write("lmove l l left right"), bulk("c"));
    assert_eq!(h.read("lrange l 0 -1"), bulks(&["a", "b", "c"]));
    h.write("del l");
    h.write("rpush l only");
    h.write("expire l 100");
    let token = h.token("l");
    assert_eq!(h.write("lmove l l left left"), bulk("only"));
    assert_eq!(h.read("lrange l 0 -1"), bulks(&["only"]));
    assert_eq!(h.read("ttl l"), int(100));
    assert!(h.token("l") > token, "a rotation is a write");
}

#[test]
fn lmove_checks_the_destination_type_before_taking_anything() {
    let mut h = Harness::new();
    h.write("rpush src a");
    h.write("set str v");
    assert_eq!(h.write("lmove src str left left"), err(WRONGTYPE));
    assert_eq!(h.read("lrange src 0 -1"), bulks(&["a"]));
    // A missing source answers nil before the destination is looked at.
    assert_eq!(h.write("rpoplpush nothing str"), Reply::Nil);
    assert_eq!(h.write("rpoplpush str src"), err(WRONGTYPE));
}

#[test]
fn every_list_command_refuses_strings_and_locks() {
    let mut h = Harness::new();
    h.write("set s v");
    h.write("lock lk owner 10000");
    for key in ["s", "lk"] {
        for line in [
            "lpush {} a",
            "rpush {} a",
            "lpushx {} a",
            "rpushx {} a",
            "lpop {}",
            "rpop {} 2",
            "lrem {} 0 a",
            "ltrim {} 0 1",
            "lmove {} d left left",
            "rpoplpush {} d",
            "blpop {} 0",
            "brpop {} 1",
            "blmove {} d left left 0",
            "brpoplpush {} d 0",
        ] {
            let line = line.replace("{}", key);
            assert_eq!(h.write(&line), err(WRONGTYPE), "{line}");
        }
        for line in ["llen {}", "lrange {} 0 -1", "lindex {} 0"] {
            let line = line.replace("{}", key);
            assert_eq!(h.read(&line), err(WRONGTYPE), "{line}");
        }
    }
    assert_eq!(h.read("get s"), bulk("v"));
    assert_eq!(h.read("type lk"), Reply::Status("lock".into()));
    h.write("rpush l a");
    // A read in the log (a connection's read behind its writes) answers as a read.
    assert_eq!(h.write("get l"), err(WRONGTYPE));
    assert_eq!(h.read("get l"), err(WRONGTYPE));
    assert_eq!(h.write("incr l"), err(WRONGTYPE));
}

#[test]
fn lists_expire_by_their_key_deadline_and_pushes_keep_it() {
    let mut h = Harness::new();
    h.write("rpush l a b");
    h.write("pexpire l 1000");
    h.write("rpush l c");
    h.write("lpop l");
    assert_eq!(h.read("pttl l"), int(1000));
    h.advance(1000);
    assert_eq!(h.read("llen l"), int(0));
    assert_eq!(h.read("lrange l 0 -1"), bulks(&[]));
    assert_eq!(h.write("rpushx l z"), int(0));
    assert_eq!(h.write("rpush l z"), int(1));
    assert_eq!(h.read("ttl l"), int(-1));
    h.ks.assert_consistent();
}

#[test]
fn every_change_of_a_list_takes_a_new_token_and_reads_do_not() {
    let mut h = Harness::new();
    h.write("rpush l a b c d");
    let mut last = h.token("l");
    for line in [
        "lpush l x",
        "rpushx l y",
        "lpop l",
        "rpop l 1",
        "lrem l 1 b",
        "ltrim l 0 0",
        "rpush l q",
        "lmove l other left left",
    ] {
        h.write(line);
        let token = h.token("l");
        assert!(token > last, "{line} did not raise the token");
        last = token;
    }
    for line in ["lrem l 0 nothing", "ltrim l 0 -1", "lpop l 0"] {
        h.write(line);
        assert_eq!(h.token("l"), last, "{line} changed nothing");
    }
    h.read("lrange l 0 -1");
    assert_eq!(h.token("l"), last);
    assert!(h.token("other") > 0);
}

#[test]
fn blocking_pops_inside_apply_pop_or_answer_nil() {
    let mut h = Harness::new();
    assert_eq!(h.write("blpop a b 0"), Reply::NilArray);
    assert_eq!(h.write("brpop a 0.5"), Reply::NilArray);
    assert_eq!(h.write("blmove a b left left 0"), Reply::Nil);
    assert_eq!(h.write("brpoplpush a b 1"), Reply::Nil);
    h.write("rpush b x y");
    assert_eq!(h.write("blpop a b 0"), bulks(&["b", "x"]));
    assert_eq!(h.write("brpop a b 0"), bulks(&["b", "y"]));
    h.write("rpush a 1 2 3");
    assert_eq!(h.write("brpoplpush a b 0"), bulk("3"));
    assert_eq!(h.write("blmove a b left right 0"), bulk("1"));
    assert_eq!(h.read("lrange b 0 -1"), bulks(&["3", "1"]));
    assert_eq!(h.read("lrange a 0 -1"), bulks(&["2"]));
    // A missing key before a wrong-type one is skipped; the wrong type is an error.
    h.write("set s v");
    assert_eq!(h.write("blpop nothing s 0"), err(WRONGTYPE));
    assert_eq!(h.write("blpop a s 0"), bulks(&["a", "2"]));
}

#[test]
fn blocking_pop_timeouts_are_checked_like_redis() {
    let mut h = Harness::new();
    h.write("rpush l a");
    for line in [
        "blpop l x",
        "brpop l nan",
        "blmove l d left left 1s",
        "brpoplpush l d ''",
    ] {
        assert_eq!(
            h.write(line),
            err("ERR timeout is not a float or out of range"),
            "{line}"
        );
    }
    for line in ["blpop l -1", "brpop l -0.001", "brpoplpush l d -inf"] {
        assert_eq!(h.write(line), err("ERR timeout is negative"), "{line}");
    }
    assert_eq!(h.write("blpop l inf"), err("ERR timeout is out of range"));
    assert_eq!(h.write("blmove l d left up 0"), err(SYNTAX));
    assert_eq!(h.write("blmove l d left up x"), err(SYNTAX));
    assert_eq!(h.read("llen l"), int(1), "nothing was popped");
    assert_eq!(super::parse_timeout_ms(b"0.0001"), Ok(1));
    assert_eq!(super::parse_timeout_ms(b"1.5"), Ok(1500));
    assert_eq!(super::parse_timeout_ms(b"0"), Ok(0));
}

#[test]
fn pushes_report_events_and_pops_do_not() {
    let mut h = Harness::new();
    h.ks.take_events();
    h.write("rpush l a b");
    h.write("lpushx l c");
    h.write("lpushx missing c");
    h.write("lpop l");
    h.write("lrem l 0 a");
    h.write("rpoplpush l dst");
    h.write("lmove dst dst left right");
    assert_eq!(
        h.ks.take_events(),
        vec![pushed("l"), pushed("l"), pushed("dst")]
    );
    h.write("rename dst moved");
    assert_eq!(h.ks.take_events(), vec![pushed("moved")]);
}

#[test]
fn lists_survive_a_snapshot_round_trip() {
    let mut h = Harness::new();
    h.write("rpush l a b c");
    h.write("pexpire l 5000");
    let snapshot = h.ks.to_snapshot();
    let restored = super::super::Keyspace::from_snapshot(&snapshot).unwrap();
    assert_eq!(
        restored.query(h.now_ms, &super::super::tests::argv("lrange l 0 -1")),
        bulks(&["a", "b", "c"])
    );
    assert_eq!(
        restored.query(h.now_ms, &super::super::tests::argv("pttl l")),
        int(5000)
    );
}

#[test]
fn blocking_pop_parse_names_the_keys_to_wait_on() {
    let parse = |line: &str| BlockingPop::parse(&super::super::tests::argv(line));
    let keys = |names: &[&str]| -> Vec<Bytes> {
        names
            .iter()
            .map(|n| Bytes::copy_from_slice(n.as_bytes()))
            .collect()
    };
    assert_eq!(
        parse("BLPOP a b a 1.5"),
        Some(BlockingPop {
            keys: keys(&["a", "b"]),
            timeout_ms: 1500,
            holds: Holds::List
        })
    );
    assert_eq!(
        parse("blmove src dst left right 0"),
        Some(BlockingPop {
            keys: keys(&["src"]),
            timeout_ms: 0,
            holds: Holds::List
        })
    );
    assert_eq!(
        parse("brpoplpush src dst 2"),
        Some(BlockingPop {
            keys: keys(&["src"]),
            timeout_ms: 2000,
            holds: Holds::List
        })
    );
    assert_eq!(
        parse("blmpop 0.5 2 a b right count 3"),
        Some(BlockingPop {
            keys: keys(&["a", "b"]),
            timeout_ms: 500,
            holds: Holds::List
        })
    );
    assert_eq!(
        parse("BZPOPMIN z1 z2 0"),
        Some(BlockingPop {
            keys: keys(&["z1", "z2"]),
            timeout_ms: 0,
            holds: Holds::Zset
        })
    );
    assert_eq!(
        parse("bzmpop 1 1 z max"),
        Some(BlockingPop {
            keys: keys(&["z"]),
            timeout_ms: 1000,
            holds: Holds::Zset
        })
    );
    assert_eq!(parse("bzmpop 1 2 z max"), None);
    assert_eq!(parse("blmpop 1 0 a left"), None);
    assert_eq!(parse("blpop a -1"), None);
    assert_eq!(parse("blpop 0"), None);
    assert_eq!(parse("blmove s d left nowhere 0"), None);
    assert_eq!(parse("lpop a"), None);
}

#[test]
fn edits_inside_a_list_take_a_new_token_only_when_they_change_it() {
    let mut h = Harness::new();
    h.write("rpush l a b c");
    let token = h.token("l");
    assert_eq!(h.write("lset l 1 B"), Reply::Ok);
    let after_lset = h.token("l");
    assert!(after_lset > token);
    assert_eq!(h.write("linsert l before nosuch x"), int(-1));
    assert_eq!(h.write("lset l 9 x"), err("ERR index out of range"));
    assert_eq!(h.token("l"), after_lset, "a refused edit keeps the token");
    assert_eq!(h.write("linsert l after B x"), int(4));
    assert!(h.token("l") > after_lset);
    assert_eq!(h.read("lrange l 0 -1"), bulks(&["a", "B", "x", "c"]));
    assert_eq!(
        h.write("lmpop 1 l left count 9"),
        Reply::Array(vec![bulk("l"), bulks(&["a", "B", "x", "c"])])
    );
    assert_eq!(h.read("exists l"), int(0), "an emptied list is removed");
}
