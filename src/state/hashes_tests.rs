use super::super::tests::{bulk, bulks, err, int, Harness};
use crate::reply::Reply;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INT: &str = "ERR value is not an integer or out of range";

fn map(pairs: &[(&str, &str)]) -> Reply {
    Reply::Map(
        pairs
            .iter()
            .map(|(field, value)| (bulk(field), bulk(value)))
            .collect(),
    )
}

#[test]
fn hset_counts_new_fields_and_overwrites_old_ones() {
    let mut h = Harness::new();
    assert_eq!(h.write("hset h a 1 b 2"), int(2));
    assert_eq!(h.write("hset h a 10 c 3"), int(1));
    assert_eq!(h.write("hset h a 11 a 12"), int(0));
    assert_eq!(h.read("hget h a"), bulk("12"));
    assert_eq!(h.read("type h"), Reply::status("hash"));
    h.ks.assert_consistent();
}

#[test]
fn hset_with_an_odd_count_is_an_arity_error_and_changes_nothing() {
    let mut h = Harness::new();
    assert_eq!(
        h.write("hset h a 1 b"),
        err("ERR wrong number of arguments for 'hset' command")
    );
    assert_eq!(
        h.write("hset h a"),
        err("ERR wrong number of arguments for 'hset' command")
    );
    assert_eq!(
        h.write("HMSET h a 1 b"),
        err("ERR wrong number of arguments for 'hmset' command")
    );
    assert_eq!(h.read("exists h"), int(0));
}

#[test]
fn hmset_answers_ok() {
    let mut h = Harness::new();
    assert_eq!(h.write("hmset h a 1 b 2"), Reply::Ok);
    assert_eq!(h.read("hlen h"), int(2));
}

#[test]
fn every_hash_change_takes_a_new_token_and_keeps_the_deadline() {
    let mut h = Harness::new();
    h.write("hset h a 1");
    let first = h.token("h");
    h.write("pexpire h 5000");
    h.write("hset h b 2");
    let second = h.token("h");
    assert!(second > first);
    assert_eq!(h.read("pttl h"), int(5000));
    h.write("hincrby h n 1");
    assert!(h.token("h") > second);
    let third = h.token("h");
    // Nothing changed: no new token.
    h.write("hdel h nope");
    h.write("hsetnx h a 9");
    assert_eq!(h.token("h"), third);
    h.write("hdel h a");
    assert!(h.token("h") > third);
}

#[test]
fn hsetnx_sets_only_a_new_field() {
    let mut h = Harness::new();
    assert_eq!(h.write("hsetnx h f v"), int(1));
    assert_eq!(h.write("hsetnx h f w"), int(0));
    assert_eq!(h.read("hget h f"), bulk("v"));
}

#[test]
fn hget_and_hmget_give_nil_for_missing_fields_and_keys() {
    let mut h = Harness::new();
    assert_eq!(h.read("hget h f"), Reply::Nil);
    assert_eq!(
        h.read("hmget h a b"),
        Reply::Array(vec![Reply::Nil, Reply::Nil])
    );
    h.write("hset h a 1 c 3");
    assert_eq!(h.read("hget h a"), bulk("1"));
    assert_eq!(h.read("hget h b"), Reply::Nil);
    assert_eq!(
        h.read("hmget h a b c a"),
        Reply::Array(vec![bulk("1"), Reply::Nil, bulk("3"), bulk("1")])
    );
}

#[test]
fn hdel_counts_removed_fields_and_removes_an_empty_hash() {
    let mut h = Harness::new();
    assert_eq!(h.write("hdel h a"), int(0));
    h.write("hset h a 1 b 2");
    h.write("expire h 100");
    assert_eq!(h.write("hdel h a a x"), int(1));
    assert_eq!(h.read("hlen h"), int(1));
    assert_eq!(h.write("hdel h b"), int(1));
    assert_eq!(h.read("exists h"), int(0));
    assert_eq!(h.ks.expires_count(), 0);
    h.ks.assert_consistent();
}

#[test]
fn hexists_and_hlen() {
    let mut h = Harness::new();
    assert_eq!(h.read("hexists h a"), int(0));
    assert_eq!(h.read("hlen h"), int(0));
    h.write("hset h a 1 b 2");
    assert_eq!(h.read("hexists h a"), int(1));
    assert_eq!(h.read("hexists h z"), int(0));
    assert_eq!(h.read("hlen h"), int(2));
}

#[test]
fn hincrby_counts_from_zero_and_back() {
    let mut h = Harness::new();
    assert_eq!(h.write("hincrby lock owner 1"), int(1));
    assert_eq!(h.write("hincrby lock owner 1"), int(2));
    assert_eq!(h.write("hincrby lock owner -2"), int(0));
    assert_eq!(h.read("hget lock owner"), bulk("0"));
    assert_eq!(h.write("hincrby lock other -5"), int(-5));
}

#[test]
fn hincrby_errors_match_redis() {
    let mut h = Harness::new();
    h.write("hset h s abc f 1.5 z 007 max 9223372036854775807");
    for field in ["s", "f", "z"] {
        assert_eq!(
            h.write(&format!("hincrby h {field} 1")),
            err("ERR hash value is not an integer"),
            "{field}"
        );
    }
    assert_eq!(
        h.write("hincrby h max 1"),
        err("ERR increment or decrement would overflow")
    );
    assert_eq!(h.read("hget h max"), bulk("9223372036854775807"));
    assert_eq!(h.write("hincrby h n x"), err(NOT_INT));
    assert_eq!(h.write("hincrby h n 1.0"), err(NOT_INT));
    assert_eq!(h.write("hincrby new n x"), err(NOT_INT));
    assert_eq!(h.read("exists new"), int(0));
    assert_eq!(h.read("hexists h n"), int(0));
}

#[test]
fn hgetall_hkeys_hvals_list_fields_in_the_order_they_were_first_set() {
    let mut h = Harness::new();
    assert_eq!(h.read("hgetall h"), Reply::Map(vec![]));
    assert_eq!(h.read("hkeys h"), Reply::Array(vec![]));
    assert_eq!(h.read("hvals h"), Reply::Array(vec![]));
    h.write("hset h b 2 a 1 c 3");
    assert_eq!(
        h.read("hgetall h"),
        map(&[("b", "2"), ("a", "1"), ("c", "3")])
    );
    assert_eq!(h.read("hkeys h"), bulks(&["b", "a", "c"]));
    assert_eq!(h.read("hvals h"), bulks(&["2", "1", "3"]));
    // As in Redis's listpack: an update keeps the field's place, a delete closes the gap,
    // and a field set again goes last.
    h.write("hset h b 20");
    h.write("hincrby h a 5");
    assert_eq!(h.read("hkeys h"), bulks(&["b", "a", "c"]));
    h.write("hdel h b");
    assert_eq!(h.read("hkeys h"), bulks(&["a", "c"]));
    h.write("hsetnx h b 1");
    assert_eq!(h.read("hkeys h"), bulks(&["a", "c", "b"]));
}

#[test]
fn hash_commands_on_other_types_are_wrongtype_and_others_on_a_hash_too() {
    let mut h = Harness::new();
    h.write("set s v");
    h.write("lock l owner 10000");
    for key in ["s", "l"] {
        for line in [
            format!("hset {key} a 1"),
            format!("hsetnx {key} a 1"),
            format!("hdel {key} a"),
            format!("hincrby {key} a 1"),
        ] {
            assert_eq!(h.write(&line), err(WRONGTYPE), "{line}");
        }
        for line in [
            format!("hget {key} a"),
            format!("hmget {key} a"),
            format!("hexists {key} a"),
            format!("hlen {key}"),
            format!("hgetall {key}"),
            format!("hkeys {key}"),
            format!("hvals {key}"),
        ] {
            assert_eq!(h.read(&line), err(WRONGTYPE), "{line}");
        }
    }
    h.write("hset h a 1");
    assert_eq!(h.read("get h"), err(WRONGTYPE));
    assert_eq!(h.write("incr h"), err(WRONGTYPE));
    assert_eq!(h.write("lock h owner 1000"), err(WRONGTYPE));
    // SET replaces a value of any type but a lock.
    assert_eq!(h.write("set h v"), Reply::Ok);
    assert_eq!(h.read("get h"), bulk("v"));
}

#[test]
fn an_expired_hash_is_gone_and_a_write_starts_a_new_one() {
    let mut h = Harness::new();
    h.write("hset h a 1 b 2");
    h.write("pexpire h 100");
    h.advance(100);
    assert_eq!(h.read("hlen h"), int(0));
    assert_eq!(h.write("hset h c 3"), int(1));
    assert_eq!(h.read("hkeys h"), bulks(&["c"]));
    assert_eq!(h.read("ttl h"), int(-1));
    h.ks.assert_consistent();
}

#[test]
fn hashes_survive_a_snapshot_and_a_restore() {
    let mut h = Harness::new();
    h.write("hset h b 2 a 1");
    h.write("pexpire h 5000");
    let snapshot = h.ks.to_snapshot();
    let restored = super::super::Keyspace::from_snapshot(&snapshot).unwrap();
    assert_eq!(
        restored.query(h.now_ms, &super::super::tests::argv("hgetall h")),
        map(&[("b", "2"), ("a", "1")])
    );
    assert_eq!(
        restored.query(h.now_ms, &super::super::tests::argv("pttl h")),
        int(5000)
    );
    assert_eq!(restored.to_snapshot(), snapshot);
}
