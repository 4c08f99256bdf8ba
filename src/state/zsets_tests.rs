use super::super::tests::{argv, bulk, bulks, err, int, Harness};
use crate::reply::Reply;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_FLOAT: &str = "ERR value is not a valid float";
const RANGE_NOT_FLOAT: &str = "ERR min or max is not a float";
const NOT_INT: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

fn with_scores(pairs: &[(&str, f64)]) -> Reply {
    Reply::Pairs(
        pairs
            .iter()
            .map(|(member, score)| (bulk(member), Reply::Double(*score)))
            .collect(),
    )
}

/// A set with members a..e scored 1..5.
fn five() -> Harness {
    let mut h = Harness::new();
    assert_eq!(h.write("zadd z 1 a 2 b 3 c 4 d 5 e"), int(5));
    h
}

#[test]
fn zadd_counts_added_members_and_updates_scores() {
    let mut h = Harness::new();
    assert_eq!(h.write("zadd z 1 a 2 b"), int(2));
    assert_eq!(h.write("zadd z 10 a 3 c"), int(1));
    assert_eq!(h.read("zscore z a"), Reply::Double(10.0));
    assert_eq!(h.read("zcard z"), int(3));
    assert_eq!(h.read("type z"), Reply::status("zset"));
    // The same member twice: the last score wins.
    assert_eq!(h.write("zadd y 1 m 2 m"), int(1));
    assert_eq!(h.read("zscore y m"), Reply::Double(2.0));
    h.ks.assert_consistent();
}

#[test]
fn zadd_ch_counts_changed_members_too() {
    let mut h = five();
    assert_eq!(h.write("zadd z ch 1 a 20 b 6 f"), int(2));
    assert_eq!(h.write("zadd z CH 1 a"), int(0));
}

#[test]
fn zadd_nx_and_xx_only_add_or_only_update() {
    let mut h = five();
    assert_eq!(h.write("zadd z nx 100 a 6 f"), int(1));
    assert_eq!(h.read("zscore z a"), Reply::Double(1.0));
    assert_eq!(h.write("zadd z xx ch 100 a 7 g"), int(1));
    assert_eq!(h.read("zscore z a"), Reply::Double(100.0));
    assert_eq!(h.read("zscore z g"), Reply::Nil);
    assert_eq!(h.write("zadd missing xx 1 a"), int(0));
    assert_eq!(h.read("exists missing"), int(0));
}

#[test]
fn zadd_gt_and_lt_update_only_in_their_direction_but_always_add() {
    let mut h = five();
    assert_eq!(h.write("zadd z gt ch 0 a 10 b 1 new"), int(2));
    assert_eq!(h.read("zscore z a"), Reply::Double(1.0));
    assert_eq!(h.read("zscore z b"), Reply::Double(10.0));
    assert_eq!(h.write("zadd z lt ch 0 a 20 c"), int(1));
    assert_eq!(h.read("zscore z a"), Reply::Double(0.0));
    assert_eq!(h.read("zscore z c"), Reply::Double(3.0));
    assert_eq!(h.write("zadd z xx gt ch 50 c 1 nope"), int(1));
    assert_eq!(h.read("zscore z nope"), Reply::Nil);
}

#[test]
fn zadd_incr_answers_the_new_score_or_nil() {
    let mut h = Harness::new();
    assert_eq!(h.write("zadd z incr 2.5 m"), Reply::Double(2.5));
    assert_eq!(h.write("zadd z incr -1 m"), Reply::Double(1.5));
    assert_eq!(h.write("zadd z incr 0 m"), Reply::Double(1.5));
    assert_eq!(h.write("zadd z nx incr 1 m"), Reply::Nil);
    assert_eq!(h.write("zadd z xx incr 1 other"), Reply::Nil);
    assert_eq!(h.write("zadd z gt incr -1 m"), Reply::Nil);
    assert_eq!(h.write("zadd z lt incr -1 m"), Reply::Double(0.5));
    assert_eq!(h.write("zadd missing xx incr 1 m"), Reply::Nil);
    assert_eq!(h.write("zadd z incr +inf m"), Reply::Double(f64::INFINITY));
    assert_eq!(
        h.write("zadd z incr -inf m"),
        err("ERR resulting score is not a number (NaN)")
    );
    assert_eq!(h.read("zscore z m"), Reply::Double(f64::INFINITY));
}

#[test]
fn zadd_option_errors_match_redis() {
    let mut h = Harness::new();
    assert_eq!(
        h.write("zadd z nx xx 1 a"),
        err("ERR XX and NX options at the same time are not compatible")
    );
    for line in ["zadd z nx gt 1 a", "zadd z lt nx 1 a", "zadd z gt lt 1 a"] {
        assert_eq!(
            h.write(line),
            err("ERR GT, LT, and/or NX options at the same time are not compatible"),
            "{line}"
        );
    }
    assert_eq!(
        h.write("zadd z incr 1 a 2 b"),
        err("ERR INCR option supports a single increment-element pair")
    );
    // Pairs are checked before option conflicts, as Redis does.
    assert_eq!(h.write("zadd z nx xx 1"), err(SYNTAX));
    assert_eq!(h.write("zadd z 1 a 2"), err(SYNTAX));
    assert_eq!(h.write("zadd z nx ch"), err(SYNTAX));
    assert_eq!(h.write("zadd z foo a"), err(NOT_FLOAT));
    assert_eq!(h.write("zadd z nan a"), err(NOT_FLOAT));
    // A bad score anywhere changes nothing.
    assert_eq!(h.write("zadd z 1 a x b"), err(NOT_FLOAT));
    assert_eq!(h.read("exists z"), int(0));
    assert_eq!(
        h.write("zadd z 1"),
        err("ERR wrong number of arguments for 'zadd' command")
    );
}

#[test]
fn every_change_takes_a_new_token_and_keeps_the_deadline() {
    let mut h = Harness::new();
    h.write("zadd z 1 a");
    h.write("pexpire z 5000");
    let first = h.token("z");
    h.write("zadd z 2 b");
    let second = h.token("z");
    assert!(second > first);
    assert_eq!(h.read("pttl z"), int(5000));
    // No change, no token.
    h.write("zadd z 2 b");
    h.write("zadd z nx 5 a");
    h.write("zrem z nope");
    h.write("zremrangebyscore z 100 200");
    assert_eq!(h.token("z"), second);
    h.write("zrem z a");
    assert!(h.token("z") > second);
}

#[test]
fn zrem_counts_removed_members_and_removes_an_empty_set() {
    let mut h = Harness::new();
    assert_eq!(h.write("zrem z a"), int(0));
    h.write("zadd z 1 a 2 b");
    h.write("expire z 100");
    assert_eq!(h.write("zrem z a a x"), int(1));
    assert_eq!(h.write("zrem z b"), int(1));
    assert_eq!(h.read("exists z"), int(0));
    assert_eq!(h.ks.expires_count(), 0);
    h.ks.assert_consistent();
}

#[test]
fn zcard_and_zscore_of_missing_keys_and_members() {
    let mut h = Harness::new();
    assert_eq!(h.read("zcard z"), int(0));
    assert_eq!(h.read("zscore z a"), Reply::Nil);
    h.write("zadd z -0.5 a 1e3 b");
    assert_eq!(h.read("zscore z a"), Reply::Double(-0.5));
    assert_eq!(h.read("zscore z b"), Reply::Double(1000.0));
    assert_eq!(h.read("zscore z c"), Reply::Nil);
}

#[test]
fn members_order_by_score_then_bytes() {
    let mut h = Harness::new();
    h.write("zadd z 2 b 1 z 2 a 1 y -inf low +inf high");
    assert_eq!(
        h.read("zrange z 0 -1"),
        bulks(&["low", "y", "z", "a", "b", "high"])
    );
    assert_eq!(h.read("zrank z a"), int(3));
    assert_eq!(h.read("zrevrank z a"), int(2));
}

#[test]
fn zrank_with_and_without_score() {
    let h = five();
    assert_eq!(h.read("zrank z a"), int(0));
    assert_eq!(h.read("zrank z e"), int(4));
    assert_eq!(h.read("zrevrank z e"), int(0));
    assert_eq!(
        h.read("zrank z c withscore"),
        Reply::Array(vec![int(2), Reply::Double(3.0)])
    );
    assert_eq!(h.read("zrank z nope"), Reply::Nil);
    assert_eq!(h.read("zrank z nope WITHSCORE"), Reply::NilArray);
    assert_eq!(h.read("zrank missing a"), Reply::Nil);
    assert_eq!(h.read("zrank missing a withscore"), Reply::NilArray);
    assert_eq!(h.read("zrank z a withscores"), err(SYNTAX));
    assert_eq!(
        h.read("zrank z a withscore x"),
        err("ERR wrong number of arguments for 'zrank' command")
    );
}

#[test]
fn zrange_by_index_clamps_like_redis() {
    let h = five();
    assert_eq!(h.read("zrange z 0 -1"), bulks(&["a", "b", "c", "d", "e"]));
    assert_eq!(h.read("zrange z 1 2"), bulks(&["b", "c"]));
    assert_eq!(h.read("zrange z -2 100"), bulks(&["d", "e"]));
    assert_eq!(h.read("zrange z -100 0"), bulks(&["a"]));
    assert_eq!(h.read("zrange z 3 1"), bulks(&[]));
    assert_eq!(h.read("zrange z 5 10"), bulks(&[]));
    assert_eq!(h.read("zrange z 0 -100"), bulks(&[]));
    assert_eq!(h.read("zrange missing 0 -1"), bulks(&[]));
    assert_eq!(h.read("zrange z 0 1 rev"), bulks(&["e", "d"]));
    assert_eq!(h.read("zrevrange z 0 1"), bulks(&["e", "d"]));
    assert_eq!(
        h.read("zrange z 0 1 withscores"),
        with_scores(&[("a", 1.0), ("b", 2.0)])
    );
    assert_eq!(h.read("zrange z x 1"), err(NOT_INT));
    assert_eq!(h.read("zrange z 0 1.5"), err(NOT_INT));
}

#[test]
fn zrange_by_score_with_exclusive_bounds_infinities_and_limit() {
    let h = five();
    assert_eq!(h.read("zrange z 2 4 byscore"), bulks(&["b", "c", "d"]));
    assert_eq!(h.read("zrange z (2 4 byscore"), bulks(&["c", "d"]));
    assert_eq!(h.read("zrange z (2 (4 byscore"), bulks(&["c"]));
    assert_eq!(h.read("zrange z (2 (2 byscore"), bulks(&[]));
    assert_eq!(h.read("zrange z 2 2 byscore"), bulks(&["b"]));
    assert_eq!(h.read("zrange z 4 2 byscore"), bulks(&[]));
    assert_eq!(
        h.read("zrange z -inf +inf byscore"),
        bulks(&["a", "b", "c", "d", "e"])
    );
    assert_eq!(h.read("zrange z (4 inf byscore"), bulks(&["e"]));
    // REV takes max first.
    assert_eq!(h.read("zrange z 4 2 byscore rev"), bulks(&["d", "c", "b"]));
    assert_eq!(
        h.read("zrange z (4 -inf byscore rev"),
        bulks(&["c", "b", "a"])
    );
    assert_eq!(
        h.read("zrange z -inf +inf byscore limit 1 2"),
        bulks(&["b", "c"])
    );
    assert_eq!(
        h.read("zrange z +inf -inf byscore rev limit 1 2 withscores"),
        with_scores(&[("d", 4.0), ("c", 3.0)])
    );
    assert_eq!(
        h.read("zrange z -inf +inf byscore limit 3 -1"),
        bulks(&["d", "e"])
    );
    assert_eq!(h.read("zrange z -inf +inf byscore limit -1 2"), bulks(&[]));
    assert_eq!(h.read("zrange z -inf +inf byscore limit 9 2"), bulks(&[]));
    assert_eq!(h.read("zrange missing 0 1 byscore"), bulks(&[]));
}

#[test]
fn zrangebyscore_and_zrevrangebyscore() {
    let h = five();
    assert_eq!(
        h.read("zrangebyscore z (1 3 withscores"),
        with_scores(&[("b", 2.0), ("c", 3.0)])
    );
    assert_eq!(
        h.read("zrangebyscore z -inf +inf limit 0 2"),
        bulks(&["a", "b"])
    );
    assert_eq!(h.read("zrevrangebyscore z 3 (1"), bulks(&["c", "b"]));
    assert_eq!(h.read("zrangebyscore z 1 3 rev"), err(SYNTAX));
    assert_eq!(h.read("zrangebyscore z 1 3 byscore"), err(SYNTAX));
}

#[test]
fn zrange_option_errors_match_redis() {
    let h = five();
    assert_eq!(
        h.read("zrange z 0 1 limit 0 1"),
        err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    assert_eq!(h.read("zrange z 0 1 byscore limit 0"), err(SYNTAX));
    assert_eq!(h.read("zrange z 0 1 byscore limit x 1"), err(NOT_INT));
    assert_eq!(h.read("zrange z 0 1 foo"), err(SYNTAX));
    assert_eq!(h.read("zrange z 0 1 rev rev"), err(SYNTAX));
    assert_eq!(h.read("zrange z 0 1 byscore byscore"), err(SYNTAX));
    assert_eq!(h.read("zrange z a 1 byscore"), err(RANGE_NOT_FLOAT));
    assert_eq!(h.read("zrange z 0 nan byscore"), err(RANGE_NOT_FLOAT));
    assert_eq!(h.read("zrange z ((1 2 byscore"), err(RANGE_NOT_FLOAT));
    assert_eq!(h.read("zrange z [a [b bylex"), bulks(&["a", "b"]));
    assert_eq!(
        h.read("zrange z [a [b bylex withscores"),
        err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    );
    assert_eq!(h.read("zrange z 0 1 bylex byscore"), err(SYNTAX));
    assert_eq!(
        h.read("zrange z 0"),
        err("ERR wrong number of arguments for 'zrange' command")
    );
}

#[test]
fn zremrangebyscore_removes_the_range_and_an_emptied_set() {
    let mut h = five();
    assert_eq!(h.write("zremrangebyscore z (1 3"), int(2));
    assert_eq!(h.read("zrange z 0 -1"), bulks(&["a", "d", "e"]));
    assert_eq!(h.write("zremrangebyscore z 10 20"), int(0));
    assert_eq!(h.write("zremrangebyscore missing -inf +inf"), int(0));
    assert_eq!(h.write("zremrangebyscore z x 1"), err(RANGE_NOT_FLOAT));
    assert_eq!(h.write("zremrangebyscore z -inf +inf"), int(3));
    assert_eq!(h.read("exists z"), int(0));
    h.ks.assert_consistent();
}

#[test]
fn zcount_counts_the_range() {
    let h = five();
    assert_eq!(h.read("zcount z -inf +inf"), int(5));
    assert_eq!(h.read("zcount z (1 (5"), int(3));
    assert_eq!(h.read("zcount z 6 10"), int(0));
    assert_eq!(h.read("zcount missing 0 1"), int(0));
    assert_eq!(h.read("zcount z 1 x"), err(RANGE_NOT_FLOAT));
}

#[test]
fn zset_commands_on_other_types_are_wrongtype() {
    let mut h = Harness::new();
    h.write("set s v");
    h.write("hset h f v");
    h.write("lock l owner 10000");
    for key in ["s", "h", "l"] {
        for line in [
            format!("zadd {key} 1 a"),
            format!("zrem {key} a"),
            format!("zremrangebyscore {key} 0 1"),
        ] {
            assert_eq!(h.write(&line), err(WRONGTYPE), "{line}");
        }
        for line in [
            format!("zcard {key}"),
            format!("zscore {key} a"),
            format!("zrank {key} a"),
            format!("zrange {key} 0 -1"),
            format!("zrangebyscore {key} 0 1"),
            format!("zcount {key} 0 1"),
        ] {
            assert_eq!(h.read(&line), err(WRONGTYPE), "{line}");
        }
    }
    h.write("zadd z 1 a");
    assert_eq!(h.read("hget z a"), err(WRONGTYPE));
    assert_eq!(h.read("get z"), err(WRONGTYPE));
}

#[test]
fn a_semaphore_of_holders_with_expiry_scores() {
    let mut h = Harness::new();
    let now = h.now_ms;
    h.write(&format!("zadd sem {} alice {} bob", now + 100, now + 200));
    h.advance(150);
    let cutoff = h.now_ms;
    assert_eq!(
        h.write(&format!("zremrangebyscore sem -inf {cutoff}")),
        int(1)
    );
    assert_eq!(h.read("zcard sem"), int(1));
    assert_eq!(h.read("zrank sem bob"), int(0));
    assert_eq!(h.read("zrank sem alice"), Reply::Nil);
}

#[test]
fn sorted_sets_survive_a_snapshot_and_a_restore() {
    let mut h = Harness::new();
    h.write("zadd z 2 b 1 a -inf c 2 aa");
    let snapshot = h.ks.to_snapshot();
    let restored = super::super::Keyspace::from_snapshot(&snapshot).unwrap();
    assert_eq!(
        restored.query(h.now_ms, &argv("zrange z 0 -1 withscores")),
        with_scores(&[
            ("c", f64::NEG_INFINITY),
            ("a", 1.0),
            ("aa", 2.0),
            ("b", 2.0)
        ])
    );
    assert_eq!(
        restored.query(h.now_ms, &argv("zscore z b")),
        Reply::Double(2.0)
    );
    assert_eq!(restored.to_snapshot(), snapshot);
}

#[test]
fn zincrby_adds_to_the_score_and_creates_missing_members_and_keys() {
    let mut h = five();
    assert_eq!(h.write("zincrby z 2.5 a"), Reply::Double(3.5));
    assert_eq!(h.write("zincrby z -10 b"), Reply::Double(-8.0));
    assert_eq!(h.read("zrange z 0 0"), bulks(&["b"]));
    assert_eq!(h.write("zincrby new 3 m"), Reply::Double(3.0));
    assert_eq!(h.read("zscore new m"), Reply::Double(3.0));
    assert_eq!(h.write("zincrby new +inf m"), Reply::Double(f64::INFINITY));
    assert_eq!(
        h.write("zincrby new -inf m"),
        err("ERR resulting score is not a number (NaN)")
    );
    assert_eq!(h.read("zscore new m"), Reply::Double(f64::INFINITY));
    assert_eq!(h.write("zincrby z abc a"), err(NOT_FLOAT));
    assert_eq!(h.write("zincrby z nan a"), err(NOT_FLOAT));
    assert_eq!(
        h.write("zincrby z 1"),
        err("ERR wrong number of arguments for 'zincrby' command")
    );
    h.write("set s v");
    // The increment is parsed before the key is looked up, as Redis does.
    assert_eq!(h.write("zincrby s abc a"), err(NOT_FLOAT));
    assert_eq!(h.write("zincrby s 1 a"), err(WRONGTYPE));
    h.ks.assert_consistent();
}

#[test]
fn zincrby_takes_a_new_token_unless_the_score_stays() {
    let mut h = five();
    h.write("pexpire z 5000");
    let first = h.token("z");
    h.write("zincrby z 0 a");
    assert_eq!(h.token("z"), first);
    h.write("zincrby z 1 a");
    assert!(h.token("z") > first);
    assert_eq!(h.read("pttl z"), int(5000));
}

#[test]
fn zmscore_answers_each_score_or_nil() {
    let mut h = five();
    assert_eq!(
        h.read("zmscore z a nope e"),
        Reply::Array(vec![Reply::Double(1.0), Reply::Nil, Reply::Double(5.0)])
    );
    assert_eq!(
        h.read("zmscore missing a b"),
        Reply::Array(vec![Reply::Nil, Reply::Nil])
    );
    assert_eq!(
        h.read("zmscore z"),
        err("ERR wrong number of arguments for 'zmscore' command")
    );
    h.write("set s v");
    assert_eq!(h.read("zmscore s a"), err(WRONGTYPE));
}

#[test]
fn zpopmin_and_zpopmax_without_count_answer_one_flat_pair() {
    let mut h = five();
    assert_eq!(
        h.write("zpopmin z"),
        Reply::Array(vec![bulk("a"), Reply::Double(1.0)])
    );
    assert_eq!(
        h.write("zpopmax z"),
        Reply::Array(vec![bulk("e"), Reply::Double(5.0)])
    );
    assert_eq!(h.read("zrange z 0 -1"), bulks(&["b", "c", "d"]));
    assert_eq!(h.write("zpopmin missing"), Reply::Array(Vec::new()));
    assert_eq!(h.read("exists missing"), int(0));
    h.ks.assert_consistent();
}

#[test]
fn zpopmin_and_zpopmax_with_count_answer_pairs_and_remove_an_emptied_set() {
    let mut h = five();
    assert_eq!(
        h.write("zpopmin z 2"),
        with_scores(&[("a", 1.0), ("b", 2.0)])
    );
    assert_eq!(h.write("zpopmax z 1"), with_scores(&[("e", 5.0)]));
    // Count 0 pops nothing; a missing key answers an empty array.
    assert_eq!(h.write("zpopmin z 0"), Reply::Array(Vec::new()));
    assert_eq!(h.write("zpopmax missing 3"), Reply::Array(Vec::new()));
    assert_eq!(
        h.write("zpopmax z 10"),
        with_scores(&[("d", 4.0), ("c", 3.0)])
    );
    assert_eq!(h.read("exists z"), int(0));
    // Ties by score go by member bytes.
    h.write("zadd t 1 b 1 a 1 c");
    assert_eq!(
        h.write("zpopmax t 2"),
        with_scores(&[("c", 1.0), ("b", 1.0)])
    );
    assert_eq!(
        h.write("zpopmin t"),
        Reply::Array(vec![bulk("a"), Reply::Double(1.0)])
    );
    assert_eq!(h.read("exists t"), int(0));
    h.ks.assert_consistent();
}

#[test]
fn zpop_errors_match_redis() {
    let mut h = five();
    let positive = err("ERR value is out of range, must be positive");
    assert_eq!(h.write("zpopmin z -1"), positive);
    assert_eq!(h.write("zpopmin z abc"), positive);
    assert_eq!(h.write("zpopmin z 1 2"), err(SYNTAX));
    assert_eq!(
        h.write("zpopmax"),
        err("ERR wrong number of arguments for 'zpopmax' command")
    );
    h.write("set s v");
    // The count is checked before the key's type, as Redis does.
    assert_eq!(h.write("zpopmin s -1"), positive);
    assert_eq!(h.write("zpopmin s"), err(WRONGTYPE));
    assert_eq!(h.write("zpopmax s 0"), err(WRONGTYPE));
    assert_eq!(h.read("zcard z"), int(5));
}

#[test]
fn zpop_takes_a_new_token_only_when_it_pops() {
    let mut h = five();
    h.write("pexpire z 5000");
    let first = h.token("z");
    h.write("zpopmin z 0");
    assert_eq!(h.token("z"), first);
    h.write("zpopmax z");
    let second = h.token("z");
    assert!(second > first);
    assert_eq!(h.read("pttl z"), int(5000));
}

/// Members a..g, all scored 0, for the lex commands.
fn letters() -> Harness {
    let mut h = Harness::new();
    assert_eq!(h.write("zadd l 0 a 0 b 0 c 0 d 0 e 0 f 0 g"), int(7));
    h
}

const LEX_ERR: &str = "ERR min or max not valid string range item";

#[test]
fn zrangebylex_takes_inclusive_exclusive_and_open_bounds() {
    let h = letters();
    assert_eq!(
        h.read("zrangebylex l - +"),
        bulks(&["a", "b", "c", "d", "e", "f", "g"])
    );
    assert_eq!(h.read("zrangebylex l [b [d"), bulks(&["b", "c", "d"]));
    assert_eq!(h.read("zrangebylex l (b (d"), bulks(&["c"]));
    assert_eq!(h.read("zrangebylex l (f +"), bulks(&["g"]));
    assert_eq!(h.read("zrangebylex l - [aa"), bulks(&["a"]));
    assert_eq!(h.read("zrangebylex l [ [b"), bulks(&["a", "b"]));
    assert_eq!(
        h.read("zrangebylex l - + limit 2 3"),
        bulks(&["c", "d", "e"])
    );
    assert_eq!(h.read("zrangebylex l - + limit 5 -1"), bulks(&["f", "g"]));
    assert_eq!(h.read("zrangebylex l - + limit -1 2"), bulks(&[]));
    // Empty intervals.
    assert_eq!(h.read("zrangebylex l [d [b"), bulks(&[]));
    assert_eq!(h.read("zrangebylex l (c [c"), bulks(&[]));
    assert_eq!(h.read("zrangebylex l + -"), bulks(&[]));
    assert_eq!(h.read("zrangebylex l - -"), bulks(&[]));
    assert_eq!(h.read("zrangebylex l + +"), bulks(&[]));
    assert_eq!(h.read("zrangebylex l [c [c"), bulks(&["c"]));
    assert_eq!(h.read("zrangebylex missing - +"), bulks(&[]));
    // Reversed: max first.
    assert_eq!(h.read("zrevrangebylex l [d [b"), bulks(&["d", "c", "b"]));
    assert_eq!(h.read("zrevrangebylex l + (e"), bulks(&["g", "f"]));
    assert_eq!(h.read("zrevrangebylex l + - limit 1 2"), bulks(&["f", "e"]));
    assert_eq!(h.read("zrange l [b [d bylex"), bulks(&["b", "c", "d"]));
    assert_eq!(h.read("zrange l [d [b bylex rev"), bulks(&["d", "c", "b"]));
    assert_eq!(h.read("zrange l - + bylex limit 1 1"), bulks(&["b"]));
}

#[test]
fn lex_range_errors_match_redis() {
    let mut h = letters();
    for line in [
        "zrangebylex l a [b",
        "zrangebylex l [a b",
        "zrangebylex l -a +",
        "zrangebylex l - ++",
        "zrevrangebylex l + x",
        "zlexcount l {a [b",
        "zremrangebylex l a b",
    ] {
        let reply = if line.starts_with("zrem") {
            h.write(line)
        } else {
            h.read(line)
        };
        assert_eq!(reply, err(LEX_ERR), "{line}");
    }
    assert_eq!(h.write_args(&["zrangebylex", "l", "", "+"]), err(LEX_ERR));
    assert_eq!(
        h.read("zrangebylex l - + withscores"),
        err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    );
    assert_eq!(h.read("zrangebylex l - + limit 1"), err(SYNTAX));
    assert_eq!(h.read("zrangebylex l - + limit a 1"), err(NOT_INT));
    assert_eq!(h.read("zrangebylex l - + rev"), err(SYNTAX));
    assert_eq!(h.read("zrangebylex l - + bylex"), err(SYNTAX));
    h.write("set s v");
    // The range is checked before the type.
    assert_eq!(h.read("zrangebylex s a b"), err(LEX_ERR));
    assert_eq!(h.read("zrangebylex s - +"), err(WRONGTYPE));
    assert_eq!(h.read("zlexcount s - +"), err(WRONGTYPE));
    assert_eq!(h.write("zremrangebylex s x +"), err(LEX_ERR));
    assert_eq!(h.write("zremrangebylex s - +"), err(WRONGTYPE));
    assert_eq!(h.write("zremrangebyrank s x 1"), err(NOT_INT));
    assert_eq!(h.write("zremrangebyrank s 0 1"), err(WRONGTYPE));
}

#[test]
fn lex_ranges_over_mixed_scores_walk_in_order_as_small_redis_sets() {
    let mut h = Harness::new();
    h.write("zadd m 1 c 2 a 3 b");
    // Order c, a, b: from the first at or past [b (c), while at or before [c (all).
    assert_eq!(h.read("zrangebylex m [b [c"), bulks(&["c", "a", "b"]));
    assert_eq!(h.read("zrangebylex m (a (c"), bulks(&[]));
    assert_eq!(h.read("zrangebylex m - +"), bulks(&["c", "a", "b"]));
}

#[test]
fn zlexcount_counts_the_range() {
    let h = letters();
    assert_eq!(h.read("zlexcount l - +"), int(7));
    assert_eq!(h.read("zlexcount l [b (e"), int(3));
    assert_eq!(h.read("zlexcount l (g +"), int(0));
    assert_eq!(h.read("zlexcount missing - +"), int(0));
}

#[test]
fn zremrangebylex_removes_the_range_and_an_emptied_set() {
    let mut h = letters();
    h.write("pexpire l 5000");
    let first = h.token("l");
    assert_eq!(h.write("zremrangebylex l (x +"), int(0));
    assert_eq!(h.write("zremrangebylex l [d [b"), int(0));
    assert_eq!(h.token("l"), first);
    assert_eq!(h.write("zremrangebylex l [b (e"), int(3));
    assert!(h.token("l") > first);
    assert_eq!(h.read("pttl l"), int(5000));
    assert_eq!(h.read("zrange l 0 -1"), bulks(&["a", "e", "f", "g"]));
    assert_eq!(h.write("zremrangebylex missing - +"), int(0));
    assert_eq!(h.write("zremrangebylex l - +"), int(4));
    assert_eq!(h.read("exists l"), int(0));
    h.ks.assert_consistent();
}

#[test]
fn zremrangebyrank_removes_by_index_and_an_emptied_set() {
    let mut h = five();
    h.write("pexpire z 5000");
    let first = h.token("z");
    assert_eq!(h.write("zremrangebyrank z 3 1"), int(0));
    assert_eq!(h.write("zremrangebyrank z 5 10"), int(0));
    assert_eq!(h.write("zremrangebyrank z 0 -6"), int(0));
    assert_eq!(h.token("z"), first);
    assert_eq!(h.write("zremrangebyrank z 1 2"), int(2));
    assert!(h.token("z") > first);
    assert_eq!(h.read("pttl z"), int(5000));
    assert_eq!(h.read("zrange z 0 -1"), bulks(&["a", "d", "e"]));
    assert_eq!(h.write("zremrangebyrank z -1 100"), int(1));
    assert_eq!(h.write("zremrangebyrank z -100 0"), int(1));
    assert_eq!(h.write("zremrangebyrank missing 0 -1"), int(0));
    assert_eq!(h.write("zremrangebyrank z 0 -1"), int(1));
    assert_eq!(h.read("exists z"), int(0));
    h.ks.assert_consistent();
}

fn members_of(reply: &Reply) -> Vec<Reply> {
    match reply {
        Reply::Array(items) => items.clone(),
        Reply::Pairs(pairs) => pairs.iter().map(|(member, _)| member.clone()).collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn zrandmember_without_count_answers_a_member_or_nil() {
    let h = five();
    let all = ["a", "b", "c", "d", "e"].map(bulk);
    assert!(all.contains(&h.read("zrandmember z")));
    assert_eq!(h.read("zrandmember missing"), Reply::Nil);
}

#[test]
fn zrandmember_with_count_draws_distinct_or_repeated_members() {
    let h = five();
    // At least the set's size: the whole set, highest score first.
    assert_eq!(h.read("zrandmember z 5"), bulks(&["e", "d", "c", "b", "a"]));
    assert_eq!(
        h.read("zrandmember z 9 withscores"),
        with_scores(&[("e", 5.0), ("d", 4.0), ("c", 3.0), ("b", 2.0), ("a", 1.0)])
    );
    assert_eq!(h.read("zrandmember z 0"), bulks(&[]));
    assert_eq!(h.read("zrandmember missing 3"), bulks(&[]));
    assert_eq!(h.read("zrandmember missing 3 withscores"), bulks(&[]));
    let three = members_of(&h.read("zrandmember z 3"));
    assert_eq!(three.len(), 3);
    let mut distinct = three.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 3);
    let repeated = members_of(&h.read("zrandmember z -20"));
    assert_eq!(repeated.len(), 20);
    // With scores, each member comes with its own score.
    let Reply::Pairs(pairs) = h.read("zrandmember z -7 withscores") else {
        panic!("pairs")
    };
    assert_eq!(pairs.len(), 7);
    for (member, score) in pairs {
        let Reply::Bulk(member) = member else {
            panic!()
        };
        let expected = f64::from(member[0] - b'a' + 1);
        assert_eq!(score, Reply::Double(expected));
    }
    // The same state answers alike (the numbers are seeded, not random).
    assert_eq!(h.read("zrandmember z -20"), h.read("zrandmember z -20"));
}

#[test]
fn zrandmember_errors_match_redis() {
    let mut h = five();
    assert_eq!(h.read("zrandmember z abc"), err(NOT_INT));
    assert_eq!(h.read("zrandmember z 1 foo"), err(SYNTAX));
    assert_eq!(h.read("zrandmember z 1 withscores x"), err(SYNTAX));
    assert_eq!(
        h.read("zrandmember z -9223372036854775808"),
        err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    );
    assert_eq!(
        h.read("zrandmember z 9223372036854775807 withscores"),
        err("ERR value is out of range")
    );
    assert_eq!(
        h.read("zrandmember z -1048577"),
        err("ERR value is out of range, value must between -1048576 and 9223372036854775807")
    );
    h.write("set s v");
    assert_eq!(h.read("zrandmember s abc"), err(NOT_INT));
    assert_eq!(h.read("zrandmember s"), err(WRONGTYPE));
    assert_eq!(h.read("zrandmember s 0"), err(WRONGTYPE));
}

#[test]
fn zscan_answers_a_small_set_whole_in_order_with_scores_as_strings() {
    let mut h = five();
    h.write("zadd z 0.5 f");
    let page = |items: &[&str]| Reply::Array(vec![bulk("0"), bulks(items)]);
    assert_eq!(
        h.read("zscan z 0"),
        page(&["f", "0.5", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5"])
    );
    assert_eq!(
        h.read("zscan z 0 count 1 match [ab]"),
        page(&["a", "1", "b", "2"])
    );
    assert_eq!(h.read("zscan missing 0"), page(&[]));
    assert_eq!(h.read("zscan z x"), err("ERR invalid cursor"));
    assert_eq!(h.read("zscan z 0 count 0"), err(SYNTAX));
    assert_eq!(h.read("zscan z 0 match"), err(SYNTAX));
    h.write("set s v");
    assert_eq!(h.read("zscan s 0"), err(WRONGTYPE));
}

#[test]
fn zscan_pages_a_large_set_returning_each_member_once() {
    let mut h = Harness::new();
    let mut line = String::from("zadd big");
    for i in 0..300 {
        line.push_str(&format!(" {i} m{i}"));
    }
    assert_eq!(h.write(&line), int(300));
    let mut cursor = String::from("0");
    let mut seen = Vec::new();
    loop {
        let Reply::Array(reply) = h.read(&format!("zscan big {cursor} count 50")) else {
            panic!("zscan")
        };
        let [Reply::Bulk(next), Reply::Array(items)] = &reply[..] else {
            panic!("zscan reply")
        };
        for pair in items.chunks(2) {
            let (Reply::Bulk(member), Reply::Bulk(score)) = (&pair[0], &pair[1]) else {
                panic!("pair")
            };
            assert_eq!(&member[1..], &score[..]);
            seen.push(member.clone());
        }
        cursor = String::from_utf8(next.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 300);
}

/// x: a 1, b 2, c 3; y: b 10, c 20, d 30; s (a set): c, d.
fn algebra() -> Harness {
    let mut h = Harness::new();
    h.write("zadd x 1 a 2 b 3 c");
    h.write("zadd y 10 b 20 c 30 d");
    h.write("sadd s c d");
    h
}

#[test]
fn zunion_zinter_zdiff_combine_with_weights_and_aggregates() {
    let h = algebra();
    assert_eq!(h.read("zunion 2 x y"), bulks(&["a", "b", "c", "d"]));
    assert_eq!(
        h.read("zunion 2 x y withscores"),
        with_scores(&[("a", 1.0), ("b", 12.0), ("c", 23.0), ("d", 30.0)])
    );
    assert_eq!(
        h.read("zunion 2 x y weights 2 0.5 aggregate max withscores"),
        with_scores(&[("a", 2.0), ("b", 5.0), ("c", 10.0), ("d", 15.0)])
    );
    assert_eq!(
        h.read("zinter 2 x y withscores"),
        with_scores(&[("b", 12.0), ("c", 23.0)])
    );
    assert_eq!(
        h.read("zinter 2 x y aggregate min withscores"),
        with_scores(&[("b", 2.0), ("c", 3.0)])
    );
    // A set counts as a sorted set scored 1.
    assert_eq!(
        h.read("zinter 3 x y s withscores"),
        with_scores(&[("c", 24.0)])
    );
    assert_eq!(h.read("zdiff 2 x y withscores"), with_scores(&[("a", 1.0)]));
    assert_eq!(h.read("zdiff 2 y s"), bulks(&["b"]));
    assert_eq!(h.read("zinter 2 x missing"), bulks(&[]));
    assert_eq!(h.read("zunion 2 missing x"), bulks(&["a", "b", "c"]));
    assert_eq!(h.read("zdiff 1 missing"), bulks(&[]));
    // 0 * inf is 0; inf + -inf is 0.
    let mut h = Harness::new();
    h.write("zadd i inf m");
    h.write("zadd j -inf m");
    assert_eq!(
        h.read("zunion 1 i weights 0 withscores"),
        with_scores(&[("m", 0.0)])
    );
    assert_eq!(
        h.read("zunion 2 i j withscores"),
        with_scores(&[("m", 0.0)])
    );
}

#[test]
fn zintercard_counts_up_to_the_limit() {
    let h = algebra();
    assert_eq!(h.read("zintercard 2 x y"), int(2));
    assert_eq!(h.read("zintercard 2 x y limit 1"), int(1));
    assert_eq!(h.read("zintercard 2 x y limit 0"), int(2));
    assert_eq!(h.read("zintercard 3 x y s"), int(1));
    assert_eq!(h.read("zintercard 2 x missing"), int(0));
    assert_eq!(
        h.read("zintercard 2 x y limit -1"),
        err("ERR LIMIT can't be negative")
    );
    assert_eq!(h.read("zintercard 2 x y withscores"), err(SYNTAX));
    assert_eq!(
        h.read("zintercard 0 x"),
        err("ERR at least 1 input key is needed for 'zintercard' command")
    );
}

#[test]
fn algebra_errors_match_redis() {
    let mut h = algebra();
    assert_eq!(h.read("zunion abc x"), err(NOT_INT));
    assert_eq!(
        h.read("zunion 0 x"),
        err("ERR at least 1 input key is needed for 'zunion' command")
    );
    assert_eq!(h.read("zunion 3 x y"), err(SYNTAX));
    assert_eq!(h.read("zunion 2 x y weights 1"), err(SYNTAX));
    assert_eq!(
        h.read("zunion 2 x y weights 1 abc"),
        err("ERR weight value is not a float")
    );
    assert_eq!(h.read("zunion 2 x y aggregate avg"), err(SYNTAX));
    assert_eq!(h.read("zunion 2 x y aggregate"), err(SYNTAX));
    assert_eq!(h.read("zdiff 2 x y weights 1 2"), err(SYNTAX));
    assert_eq!(h.read("zdiff 2 x y aggregate sum"), err(SYNTAX));
    assert_eq!(h.write("zunionstore d 2 x y withscores"), err(SYNTAX));
    h.write("set str v");
    // Every key's type is checked before the options.
    assert_eq!(h.read("zunion 2 x str aggregate avg"), err(WRONGTYPE));
    assert_eq!(h.read("zinter 2 missing str"), err(WRONGTYPE));
    assert_eq!(h.write("zinterstore d 2 x str"), err(WRONGTYPE));
}

#[test]
fn the_store_forms_replace_or_remove_the_destination() {
    let mut h = algebra();
    h.write("set d v");
    h.write("pexpire d 5000");
    assert_eq!(h.write("zunionstore d 2 x y aggregate min"), int(4));
    assert_eq!(h.read("type d"), Reply::status("zset"));
    assert_eq!(h.read("pttl d"), int(-1));
    assert_eq!(
        h.read("zrange d 0 -1 withscores"),
        with_scores(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 30.0)])
    );
    let first = h.token("d");
    assert_eq!(h.write("zinterstore d 2 x y weights 1 -1"), int(2));
    assert!(h.token("d") > first);
    assert_eq!(
        h.read("zrange d 0 -1 withscores"),
        with_scores(&[("c", -17.0), ("b", -8.0)])
    );
    assert_eq!(h.write("zdiffstore d 2 x y"), int(1));
    assert_eq!(h.read("zrange d 0 -1"), bulks(&["a"]));
    // The destination may be a source.
    assert_eq!(h.write("zunionstore x 2 x s"), int(4));
    assert_eq!(
        h.read("zrange x 0 -1 withscores"),
        with_scores(&[("a", 1.0), ("d", 1.0), ("b", 2.0), ("c", 4.0)])
    );
    assert_eq!(h.write("zinterstore d 2 x missing"), int(0));
    assert_eq!(h.read("exists d"), int(0));
    h.write("lock l owner 10000");
    assert_eq!(h.write("zunionstore l 1 x"), err(WRONGTYPE));
    h.ks.assert_consistent();
}

#[test]
fn zrangestore_stores_every_form_of_range() {
    let mut h = five();
    h.write("set d v");
    h.write("pexpire d 5000");
    assert_eq!(h.write("zrangestore d z 1 2"), int(2));
    assert_eq!(h.read("pttl d"), int(-1));
    assert_eq!(
        h.read("zrange d 0 -1 withscores"),
        with_scores(&[("b", 2.0), ("c", 3.0)])
    );
    let first = h.token("d");
    assert_eq!(h.write("zrangestore d z (1 +inf byscore limit 1 2"), int(2));
    assert!(h.token("d") > first);
    assert_eq!(h.read("zrange d 0 -1"), bulks(&["c", "d"]));
    assert_eq!(h.write("zrangestore d z 5 3 byscore rev"), int(3));
    assert_eq!(h.read("zrange d 0 -1"), bulks(&["c", "d", "e"]));
    assert_eq!(h.write("zrangestore d z 0 0 rev"), int(1));
    assert_eq!(h.read("zrange d 0 -1"), bulks(&["e"]));
    h.write("zadd l 0 a 0 b 0 c");
    assert_eq!(h.write("zrangestore d l [b + bylex"), int(2));
    assert_eq!(h.read("zrange d 0 -1"), bulks(&["b", "c"]));
    // An empty range or a missing source removes the destination.
    assert_eq!(h.write("zrangestore d z 10 20"), int(0));
    assert_eq!(h.read("exists d"), int(0));
    h.write("zadd d 1 x");
    assert_eq!(h.write("zrangestore d missing 0 -1"), int(0));
    assert_eq!(h.read("exists d"), int(0));
    // The source may be the destination.
    assert_eq!(h.write("zrangestore z z 0 1"), int(2));
    assert_eq!(h.read("zrange z 0 -1"), bulks(&["a", "b"]));
    h.ks.assert_consistent();
}

#[test]
fn zrangestore_errors_match_redis() {
    let mut h = five();
    assert_eq!(h.write("zrangestore d z 0 -1 withscores"), err(SYNTAX));
    assert_eq!(
        h.write("zrangestore d z 0 -1 limit 0 1"),
        err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
        )
    );
    assert_eq!(h.write("zrangestore d z a 1"), err(NOT_INT));
    assert_eq!(h.write("zrangestore d z a 1 byscore"), err(RANGE_NOT_FLOAT));
    assert_eq!(h.write("zrangestore d z a b bylex"), err(LEX_ERR));
    assert_eq!(
        h.write("zrangestore d z 0"),
        err("ERR wrong number of arguments for 'zrangestore' command")
    );
    h.write("set s v");
    assert_eq!(h.write("zrangestore d s 0 -1"), err(WRONGTYPE));
    assert_eq!(h.read("exists d"), int(0));
    h.write("lock l owner 10000");
    assert_eq!(h.write("zrangestore l z 0 -1"), err(WRONGTYPE));
}

#[test]
fn the_new_commands_work_in_transactions_and_scripts() {
    let mut h = five();
    assert_eq!(
        h.write("txn 0 3 4 zincrby z 10 a 2 zpopmin z 4 zlexcount z - +"),
        Reply::Array(vec![
            Reply::Double(11.0),
            Reply::Array(vec![bulk("b"), Reply::Double(2.0)]),
            int(4)
        ])
    );
    let script = "redis.call('zunionstore', KEYS[2], 1, KEYS[1]) \
                  redis.call('zremrangebyrank', KEYS[2], 0, 0) \
                  return {redis.call('zcard', KEYS[2]), redis.call('zrangebylex', KEYS[2], '-', '+'), \
                  redis.call('zintercard', 2, KEYS[1], KEYS[2])}";
    assert_eq!(
        h.write_args(&["eval", script, "2", "z", "u"]),
        Reply::Array(vec![int(3), bulks(&["d", "e", "a"]), int(3)])
    );
    // A failed script leaves the sets as they were.
    let failing = "redis.call('zpopmax', 'z', 2) redis.call('zrangestore', 'u', 'z', 0, -1) \
                   redis.call('zincrby', 'z', 1, 'new') error('undo')";
    h.write_args(&["script", "load", failing]);
    let before = h.ks.to_snapshot();
    let sha = crate::state::lua::sha1_hex(failing.as_bytes());
    assert!(h.write_args(&["evalsha", &sha, "0"]).is_error());
    assert_eq!(h.ks.to_snapshot(), before);
    h.ks.assert_consistent();
}
