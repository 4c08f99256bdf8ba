use std::collections::BTreeSet;

use bytes::Bytes;

use super::super::tests::{argv, bulk, bulks, err, int, Harness};
use super::super::{Batch, Keyspace};
use crate::reply::Reply;

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INT: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

fn set(members: &[&str]) -> Reply {
    Reply::Set(members.iter().map(|member| bulk(member)).collect())
}

fn ints(values: &[i64]) -> Reply {
    Reply::Array(values.iter().map(|&n| int(n)).collect())
}

/// The members of a reply (array or set), as strings.
fn names(reply: &Reply) -> Vec<String> {
    match reply {
        Reply::Array(items) | Reply::Set(items) => items
            .iter()
            .map(|item| match item {
                Reply::Bulk(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                other => panic!("not a member: {other:?}"),
            })
            .collect(),
        other => panic!("not a list of members: {other:?}"),
    }
}

fn sorted(reply: &Reply) -> Vec<String> {
    let mut names = names(reply);
    names.sort();
    names
}

#[test]
fn sadd_counts_new_members_and_smembers_lists_them_in_insertion_order() {
    let mut h = Harness::new();
    assert_eq!(h.write("sadd s b a c"), int(3));
    assert_eq!(h.write("sadd s a d a"), int(1));
    assert_eq!(h.read("smembers s"), set(&["b", "a", "c", "d"]));
    assert_eq!(h.read("scard s"), int(4));
    assert_eq!(h.read("type s"), Reply::status("set"));
    h.ks.assert_consistent();
}

#[test]
fn srem_moves_the_last_member_into_the_gap_and_removes_an_empty_set() {
    let mut h = Harness::new();
    assert_eq!(h.write("srem s a"), int(0));
    h.write("sadd s a b c d");
    h.write("expire s 100");
    assert_eq!(h.write("srem s b b x"), int(1));
    assert_eq!(h.read("smembers s"), set(&["a", "d", "c"]));
    assert_eq!(h.write("srem s a c d"), int(3));
    assert_eq!(h.read("exists s"), int(0));
    assert_eq!(h.read("smembers s"), set(&[]));
    assert_eq!(h.ks.expires_count(), 0);
    h.ks.assert_consistent();
}

#[test]
fn sismember_smismember_and_scard_on_sets_and_missing_keys() {
    let mut h = Harness::new();
    assert_eq!(h.read("sismember s a"), int(0));
    assert_eq!(h.read("smismember s a b"), ints(&[0, 0]));
    assert_eq!(h.read("scard s"), int(0));
    h.write("sadd s a c");
    assert_eq!(h.read("sismember s a"), int(1));
    assert_eq!(h.read("sismember s b"), int(0));
    assert_eq!(h.read("smismember s a b c a"), ints(&[1, 0, 1, 1]));
    assert_eq!(h.read("scard s"), int(2));
}

#[test]
fn every_set_change_takes_a_new_token_and_keeps_the_deadline() {
    let mut h = Harness::new();
    h.write("sadd s a");
    let first = h.token("s");
    h.write("pexpire s 5000");
    h.write("sadd s b c d");
    let second = h.token("s");
    assert!(second > first);
    assert_eq!(h.read("pttl s"), int(5000));
    // Nothing changed: no new token, no new revision.
    let revision = h.ks.revision(b"s", h.now_ms);
    h.write("sadd s a");
    h.write("srem s nope");
    h.write("spop s 0");
    h.write("smove s t nope");
    assert_eq!(h.token("s"), second);
    assert_eq!(h.ks.revision(b"s", h.now_ms), revision);
    h.write("srem s a");
    let third = h.token("s");
    assert!(third > second);
    h.write("spop s");
    assert!(h.token("s") > third);
    assert_eq!(h.read("pttl s"), int(5000));
}

#[test]
fn set_commands_on_other_types_are_wrongtype_and_others_on_a_set_too() {
    let mut h = Harness::new();
    h.write("set str v");
    h.write("lock l owner 10000");
    h.write("sadd ok a");
    for key in ["str", "l"] {
        for line in [
            format!("sadd {key} a"),
            format!("srem {key} a"),
            format!("spop {key}"),
            format!("spop {key} 2"),
            format!("smove {key} ok a"),
            format!("smove ok {key} a"),
            format!("sinterstore d {key}"),
            format!("sunionstore d ok {key}"),
            format!("sdiffstore d ok {key}"),
        ] {
            assert_eq!(h.write(&line), err(WRONGTYPE), "{line}");
        }
        for line in [
            format!("sismember {key} a"),
            format!("smismember {key} a"),
            format!("smembers {key}"),
            format!("scard {key}"),
            format!("srandmember {key}"),
            format!("srandmember {key} 2"),
            format!("sscan {key} 0"),
            format!("sinter ok {key}"),
            format!("sinter missing {key}"),
            format!("sunion ok {key}"),
            format!("sdiff ok {key}"),
            format!("sdiff missing {key}"),
            format!("sintercard 2 ok {key}"),
        ] {
            assert_eq!(h.read(&line), err(WRONGTYPE), "{line}");
        }
    }
    assert_eq!(h.read("smembers ok"), set(&["a"]));
    assert_eq!(h.read("exists d"), int(0));
    assert_eq!(h.read("get ok"), err(WRONGTYPE));
    assert_eq!(h.write("hset ok f v"), err(WRONGTYPE));
    assert_eq!(h.write("lpush ok x"), err(WRONGTYPE));
    assert_eq!(h.write("lock ok owner 1000"), err(WRONGTYPE));
    // SET replaces a value of any type but a lock.
    assert_eq!(h.write("set ok v"), Reply::Ok);
    assert_eq!(h.read("get ok"), bulk("v"));
}

#[test]
fn an_expired_set_is_gone_and_a_write_starts_a_new_one() {
    let mut h = Harness::new();
    h.write("sadd s a b");
    h.write("pexpire s 100");
    h.advance(100);
    assert_eq!(h.read("scard s"), int(0));
    assert_eq!(h.read("smembers s"), set(&[]));
    assert_eq!(h.write("spop s"), Reply::Nil);
    assert_eq!(h.write("sadd s c"), int(1));
    assert_eq!(h.read("smembers s"), set(&["c"]));
    assert_eq!(h.read("ttl s"), int(-1));
    h.ks.assert_consistent();
}

#[test]
fn spop_without_count_pops_one_member_and_removes_the_last() {
    let mut h = Harness::new();
    assert_eq!(h.write("spop s"), Reply::Nil);
    h.write("sadd s a b c");
    let mut popped = BTreeSet::new();
    for left in [2, 1, 0] {
        let Reply::Bulk(member) = h.write("spop s") else {
            panic!("a member");
        };
        assert!(popped.insert(member));
        assert_eq!(h.read("scard s"), int(left));
    }
    assert_eq!(popped.len(), 3);
    assert_eq!(h.read("exists s"), int(0));
    h.ks.assert_consistent();
}

#[test]
fn spop_with_count_answers_a_set_of_distinct_members() {
    let mut h = Harness::new();
    assert_eq!(h.write("spop s 3"), set(&[]));
    h.write("sadd s a b c d e f");
    assert_eq!(h.write("spop s 0"), set(&[]));
    let reply = h.write("spop s 4");
    assert!(matches!(reply, Reply::Set(_)), "{reply:?}");
    let popped = sorted(&reply);
    assert_eq!(popped.len(), 4);
    assert_eq!(popped.iter().collect::<BTreeSet<_>>().len(), 4);
    let left = sorted(&h.read("smembers s"));
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|member| !popped.contains(member)));
    // At or above the size: the whole set, in its order, and the key goes.
    let rest = h.read("smembers s");
    assert_eq!(h.write("spop s 10"), rest);
    assert_eq!(h.read("exists s"), int(0));
    h.ks.assert_consistent();
}

#[test]
fn spop_errors_match_redis() {
    let mut h = Harness::new();
    h.write("sadd s a");
    for count in ["-1", "x", "1.5"] {
        assert_eq!(
            h.write(&format!("spop s {count}")),
            err("ERR value is out of range, must be positive"),
            "{count}"
        );
        // The count is read before the key.
        assert_eq!(
            h.write(&format!("spop missing {count}")),
            err("ERR value is out of range, must be positive")
        );
    }
    assert_eq!(h.write("spop s 1 2"), err(SYNTAX));
    assert_eq!(
        h.write("spop"),
        err("ERR wrong number of arguments for 'spop' command")
    );
    assert_eq!(h.read("scard s"), int(1));
}

#[test]
fn srandmember_without_count_answers_a_member_and_changes_nothing() {
    let mut h = Harness::new();
    assert_eq!(h.read("srandmember s"), Reply::Nil);
    h.write("sadd s a b c");
    let before = h.ks.to_snapshot();
    for _ in 0..20 {
        let member = names(&Reply::Array(vec![h.read("srandmember s")]));
        assert!(["a", "b", "c"].contains(&member[0].as_str()));
    }
    assert_eq!(h.ks.to_snapshot(), before);
}

#[test]
fn srandmember_with_count_distinct_repeated_and_whole() {
    let mut h = Harness::new();
    assert_eq!(h.read("srandmember s 3"), Reply::Array(vec![]));
    assert_eq!(h.read("srandmember s -3"), Reply::Array(vec![]));
    h.write("sadd s a b c d e");
    assert_eq!(h.read("srandmember s 0"), Reply::Array(vec![]));
    // Positive: distinct members, an array even in RESP3.
    for count in 1..5 {
        let reply = h.read(&format!("srandmember s {count}"));
        assert!(matches!(reply, Reply::Array(_)));
        let picked = sorted(&reply);
        assert_eq!(picked.len(), count);
        assert_eq!(picked.iter().collect::<BTreeSet<_>>().len(), count);
    }
    // At or above the size: the whole set, in its order.
    assert_eq!(h.read("srandmember s 5"), bulks(&["a", "b", "c", "d", "e"]));
    assert_eq!(
        h.read("srandmember s 99"),
        bulks(&["a", "b", "c", "d", "e"])
    );
    // Negative: that many draws, repeats allowed.
    let drawn = names(&h.read("srandmember s -50"));
    assert_eq!(drawn.len(), 50);
    assert!(drawn
        .iter()
        .all(|m| ["a", "b", "c", "d", "e"].contains(&m.as_str())));
    assert!(drawn.iter().collect::<BTreeSet<_>>().len() < 50);
    assert_eq!(names(&h.read("srandmember s -1")).len(), 1);
}

#[test]
fn srandmember_errors_match_redis() {
    let mut h = Harness::new();
    h.write("sadd s a");
    assert_eq!(h.read("srandmember s x"), err(NOT_INT));
    assert_eq!(h.read("srandmember missing x"), err(NOT_INT));
    assert_eq!(h.read("srandmember s 1 2"), err(SYNTAX));
    assert_eq!(
        h.read("srandmember s -1048577"),
        err("ERR value is out of range, value must between -1048576 and 9223372036854775807")
    );
    assert_eq!(names(&h.read("srandmember s -1048576")).len(), 1 << 20);
}

#[test]
fn random_choices_are_the_same_on_every_replica() {
    // Two replicas apply the same entries: SPOP, SPOP in a script and in a transaction
    // remove the same members and answer alike.
    let sadd = format!(
        "sadd s {}",
        (0..40)
            .map(|n| format!("m{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let ops = [sadd.as_str(), "spop s", "spop s 3", "multi_placeholder"];
    let mut one = Keyspace::new();
    let mut two = Keyspace::new();
    for (index, line) in ops.iter().enumerate() {
        let op = if *line == "multi_placeholder" {
            argv("txn 0 2 3 spop s 3 3 spop s 2")
        } else {
            argv(line)
        };
        let batch = Batch {
            now_ms: 1_000 + index as u64,
            ops: vec![op.clone(), argv("srandmember s -5"), op],
        };
        let a = one.apply_entry(10 + index as u64, &batch);
        let b = two.apply_entry(10 + index as u64, &batch);
        assert_eq!(a, b, "{line}");
        assert_eq!(one.to_snapshot(), two.to_snapshot());
    }
    let script = "return {redis.call('spop', 's'), redis.call('spop', 's')}";
    let batch = Batch {
        now_ms: 2_000,
        ops: vec![["eval", script, "0"].map(Bytes::from).to_vec()],
    };
    let a = one.apply_entry(20, &batch);
    let b = two.apply_entry(20, &batch);
    assert_eq!(a, b);
    let [Reply::Array(popped)] = &a[..] else {
        panic!("two members: {a:?}");
    };
    assert_eq!(popped.len(), 2);
    assert_ne!(popped[0], popped[1]);
    assert_eq!(one.to_snapshot(), two.to_snapshot());
}

#[test]
fn spop_at_other_log_positions_draws_other_members() {
    let mut seen = BTreeSet::new();
    for index in 0..20 {
        let mut ks = Keyspace::new();
        let members: Vec<String> = (0..100).map(|n| format!("m{n}")).collect();
        let mut sadd = vec![Bytes::from("sadd"), Bytes::from("s")];
        sadd.extend(members.iter().map(|m| Bytes::from(m.clone())));
        ks.apply_entry(
            1,
            &Batch {
                now_ms: 1,
                ops: vec![sadd],
            },
        );
        let reply = ks.apply_entry(
            2 + index,
            &Batch {
                now_ms: 2,
                ops: vec![argv("spop s")],
            },
        );
        seen.insert(format!("{reply:?}"));
    }
    assert!(seen.len() > 10, "{seen:?}");
}

#[test]
fn srandmember_reads_answer_alike_on_every_node_and_change_with_time() {
    let mut h = Harness::new();
    let sadd = format!(
        "sadd s {}",
        (0..40)
            .map(|n| format!("m{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    h.write(&sadd);
    // A node restarted from a snapshot has none of the other's node-local counts.
    let restored = Keyspace::from_snapshot(&h.ks.to_snapshot()).unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        for line in ["srandmember s", "srandmember s 3", "srandmember s -3"] {
            let reply = h.ks.query(h.now_ms, &argv(line));
            assert_eq!(reply, restored.query(h.now_ms, &argv(line)), "{line}");
            seen.insert(format!("{reply:?}"));
        }
        h.advance(1);
    }
    assert!(seen.len() > 40, "{}", seen.len());
}

#[test]
fn sscan_walks_every_member_once_in_pages() {
    let mut h = Harness::new();
    assert_eq!(
        h.read("sscan s 0"),
        Reply::Array(vec![bulk("0"), Reply::Array(vec![])])
    );
    // A missing key is one empty page, whatever the options.
    assert_eq!(
        h.read("sscan s 0 bogus"),
        Reply::Array(vec![bulk("0"), Reply::Array(vec![])])
    );
    let mut sadd = String::from("sadd s");
    for n in 0..35 {
        sadd.push_str(&format!(" m{n}"));
    }
    h.write(&sadd);
    let mut cursor = String::from("0");
    let mut seen = Vec::new();
    let mut calls = 0;
    loop {
        let reply = h.read(&format!("sscan s {cursor} count 10"));
        let Reply::Array(parts) = reply else {
            panic!("cursor and members");
        };
        let Reply::Bulk(next) = &parts[0] else {
            panic!("a cursor");
        };
        seen.extend(names(&parts[1]));
        calls += 1;
        cursor = String::from_utf8_lossy(next).into_owned();
        if cursor == "0" {
            break;
        }
    }
    assert!(calls >= 4, "{calls}");
    seen.sort();
    let mut all: Vec<String> = (0..35).map(|n| format!("m{n}")).collect();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
fn sscan_match_and_count_and_their_errors() {
    let mut h = Harness::new();
    h.write("sadd s apple avocado banana");
    let Reply::Array(parts) = h.read("sscan s 0 match a*") else {
        panic!("cursor and members");
    };
    assert_eq!(parts[0], bulk("0"));
    assert_eq!(sorted(&parts[1]), vec!["apple", "avocado"]);
    assert_eq!(h.read("sscan s x"), err("ERR invalid cursor"));
    assert_eq!(h.read("sscan s -1"), err("ERR invalid cursor"));
    assert_eq!(h.read("sscan s 0 count 0"), err(SYNTAX));
    assert_eq!(h.read("sscan s 0 count x"), err(NOT_INT));
    assert_eq!(h.read("sscan s 0 type set"), err(SYNTAX));
    assert_eq!(h.read("sscan s 0 match"), err(SYNTAX));
    assert_eq!(h.read("sscan s 0 bogus x"), err(SYNTAX));
    h.write("set str v");
    assert_eq!(h.read("sscan str 0"), err(WRONGTYPE));
}

#[test]
fn sinter_sunion_sdiff_in_their_documented_orders() {
    let mut h = Harness::new();
    h.write("sadd a 1 2 3 4 5");
    h.write("sadd b 5 4 3");
    h.write("sadd c 3 5 9");
    // Intersection: in the order of the smallest set (b, the first of b and c).
    assert_eq!(h.read("sinter a b c"), set(&["5", "3"]));
    assert_eq!(h.read("sinter a"), set(&["1", "2", "3", "4", "5"]));
    assert_eq!(h.read("sinter a missing"), set(&[]));
    assert_eq!(h.read("sinter a a"), set(&["1", "2", "3", "4", "5"]));
    // Union: each member where it first appears.
    assert_eq!(h.read("sunion c b"), set(&["3", "5", "9", "4"]));
    assert_eq!(h.read("sunion missing c"), set(&["3", "5", "9"]));
    assert_eq!(h.read("sunion missing"), set(&[]));
    // Difference: the first set's order.
    assert_eq!(h.read("sdiff a b"), set(&["1", "2"]));
    assert_eq!(h.read("sdiff a missing c"), set(&["1", "2", "4"]));
    assert_eq!(h.read("sdiff a a"), set(&[]));
    assert_eq!(h.read("sdiff missing a"), set(&[]));
}

#[test]
fn store_forms_replace_the_destination_and_remove_it_when_empty() {
    let mut h = Harness::new();
    h.write("sadd a 1 2 3");
    h.write("sadd b 2 3 4");
    h.write("set d old ex 100");
    let old = h.token("d");
    assert_eq!(h.write("sinterstore d a b"), int(2));
    assert_eq!(h.read("smembers d"), set(&["2", "3"]));
    assert!(h.token("d") > old);
    assert_eq!(h.read("ttl d"), int(-1));
    assert_eq!(h.write("sunionstore d a b"), int(4));
    assert_eq!(h.read("smembers d"), set(&["1", "2", "3", "4"]));
    assert_eq!(h.write("sdiffstore d a b"), int(1));
    assert_eq!(h.read("smembers d"), set(&["1"]));
    // The destination may be a source.
    assert_eq!(h.write("sunionstore a a b"), int(4));
    assert_eq!(h.read("smembers a"), set(&["1", "2", "3", "4"]));
    // An empty result removes the destination, whatever it held.
    assert_eq!(h.write("sinterstore d a missing"), int(0));
    assert_eq!(h.read("exists d"), int(0));
    h.write("hset d f v");
    assert_eq!(h.write("sdiffstore d b a"), int(0));
    assert_eq!(h.read("exists d"), int(0));
    assert_eq!(h.write("sunionstore d missing"), int(0));
    // A lock is never replaced.
    h.write("lock l owner 10000");
    assert_eq!(h.write("sunionstore l a"), err(WRONGTYPE));
    assert_eq!(h.write("sinterstore l a missing"), err(WRONGTYPE));
    assert_eq!(h.read("type l"), Reply::status("lock"));
    h.ks.assert_consistent();
}

#[test]
fn sintercard_counts_up_to_the_limit() {
    let mut h = Harness::new();
    h.write("sadd a 1 2 3 4");
    h.write("sadd b 2 3 4 5");
    assert_eq!(h.read("sintercard 2 a b"), int(3));
    assert_eq!(h.read("sintercard 1 a"), int(4));
    assert_eq!(h.read("sintercard 2 a b limit 2"), int(2));
    assert_eq!(h.read("sintercard 2 a b LIMIT 0"), int(3));
    assert_eq!(h.read("sintercard 2 a b limit 10"), int(3));
    assert_eq!(h.read("sintercard 2 a missing"), int(0));
    for (line, error) in [
        ("sintercard 0 a", "ERR numkeys should be greater than 0"),
        ("sintercard -1 a", "ERR numkeys should be greater than 0"),
        ("sintercard x a", "ERR numkeys should be greater than 0"),
        (
            "sintercard 3 a b",
            "ERR Number of keys can't be greater than number of args",
        ),
        ("sintercard 2 a b limit -1", "ERR LIMIT can't be negative"),
        ("sintercard 2 a b limit x", "ERR LIMIT can't be negative"),
        ("sintercard 2 a b limit", SYNTAX),
        ("sintercard 1 a b", SYNTAX),
    ] {
        assert_eq!(h.read(line), err(error), "{line}");
    }
}

#[test]
fn smove_moves_a_member_between_sets() {
    let mut h = Harness::new();
    assert_eq!(h.write("smove src dst a"), int(0));
    // A missing source answers 0 before the destination's type is looked at.
    h.write("set str v");
    assert_eq!(h.write("smove src str a"), int(0));
    h.write("sadd src a b");
    assert_eq!(h.write("smove src dst x"), int(0));
    assert_eq!(h.read("exists dst"), int(0));
    assert_eq!(h.write("smove src dst a"), int(1));
    assert_eq!(h.read("smembers src"), set(&["b"]));
    assert_eq!(h.read("smembers dst"), set(&["a"]));
    // Already in the destination: still moved out of the source.
    h.write("sadd dst b");
    let dst_token = h.token("dst");
    assert_eq!(h.write("smove src dst b"), int(1));
    assert_eq!(h.read("exists src"), int(0));
    assert_eq!(h.read("smembers dst"), set(&["a", "b"]));
    assert_eq!(h.token("dst"), dst_token);
    // The same set: whether it holds the member, nothing changes.
    assert_eq!(h.write("smove dst dst a"), int(1));
    assert_eq!(h.write("smove dst dst z"), int(0));
    assert_eq!(h.token("dst"), dst_token);
    assert_eq!(h.write("smove dst str a"), err(WRONGTYPE));
    assert_eq!(h.read("smembers dst"), set(&["a", "b"]));
    h.ks.assert_consistent();
}

#[test]
fn scan_type_set_finds_sets() {
    let mut h = Harness::new();
    h.write("sadd s1 a");
    h.write("sadd s2 a");
    h.write("hset h f v");
    h.write("set k v");
    let Reply::Array(parts) = h.read("scan 0 type set count 100") else {
        panic!("cursor and keys");
    };
    assert_eq!(sorted(&parts[1]), vec!["s1", "s2"]);
}

#[test]
fn watch_sees_a_set_change_but_not_a_no_op() {
    let mut h = Harness::new();
    h.write("sadd s a");
    let revision = h.ks.revision(b"s", h.now_ms);
    h.write("sadd s a");
    h.write("srem s b");
    assert_eq!(h.ks.revision(b"s", h.now_ms), revision);
    h.write("sadd s b");
    assert!(h.ks.revision(b"s", h.now_ms) > revision);
}

#[test]
fn sets_work_in_transactions_and_scripts() {
    let mut h = Harness::new();
    assert_eq!(
        h.write("txn 0 3 4 sadd s a b 2 scard s 2 smembers s"),
        Reply::Array(vec![int(2), int(2), set(&["a", "b"])])
    );
    let script = "redis.call('sadd', KEYS[1], 'c', 'd') \
                  return {redis.call('scard', KEYS[1]), redis.call('smembers', KEYS[1]), \
                  redis.call('sismember', KEYS[1], 'c')}";
    assert_eq!(
        h.write_args(&["eval", script, "1", "s"]),
        Reply::Array(vec![int(4), bulks(&["a", "b", "c", "d"]), int(1)])
    );
    // A failed script leaves the set as it was.
    let failing = "redis.call('spop', 's') redis.call('sadd', 's', 'x') \
                   redis.call('sunionstore', 't', 's') error('undo')";
    h.write_args(&["script", "load", failing]);
    let before = h.ks.to_snapshot();
    let sha = crate::state::lua::sha1_hex(failing.as_bytes());
    assert!(h.write_args(&["evalsha", &sha, "0"]).is_error());
    assert_eq!(h.ks.to_snapshot(), before);
    h.ks.assert_consistent();
}

#[test]
fn sets_survive_a_snapshot_and_a_restore_in_their_order() {
    let mut h = Harness::new();
    h.write("sadd s c a b d");
    h.write("srem s a");
    h.write("pexpire s 5000");
    let snapshot = h.ks.to_snapshot();
    let restored = Keyspace::from_snapshot(&snapshot).unwrap();
    restored.assert_consistent();
    assert_eq!(
        restored.query(h.now_ms, &argv("smembers s")),
        set(&["c", "d", "b"])
    );
    assert_eq!(restored.query(h.now_ms, &argv("pttl s")), int(5000));
    assert_eq!(restored.to_snapshot(), snapshot);
}

#[test]
fn wrong_arity_is_refused_before_the_handler() {
    let mut h = Harness::new();
    for (line, name) in [
        ("sadd s", "sadd"),
        ("srem s", "srem"),
        ("sismember s", "sismember"),
        ("smismember s", "smismember"),
        ("smembers", "smembers"),
        ("scard", "scard"),
        ("sscan s", "sscan"),
        ("sinter", "sinter"),
        ("sinterstore d", "sinterstore"),
        ("sintercard 1", "sintercard"),
        ("smove a b", "smove"),
    ] {
        assert_eq!(
            h.write(line),
            err(&format!(
                "ERR wrong number of arguments for '{name}' command"
            )),
            "{line}"
        );
    }
}

#[test]
fn an_empty_set_from_a_corrupt_snapshot_reads_as_missing() {
    let mut h = Harness::new();
    h.write("sadd s a");
    let entry = h.ks.replicated.entries.get_mut(b"s".as_slice()).unwrap();
    let super::super::Value::Set(members) = &mut entry.value else {
        panic!("a set");
    };
    members.clear();
    let ks = Keyspace::from_snapshot(&h.ks.to_snapshot()).unwrap();
    let read = |line: &str| ks.query(h.now_ms, &argv(line));
    assert_eq!(read("srandmember s"), Reply::Nil);
    assert_eq!(read("srandmember s -3"), Reply::Array(vec![]));
    assert_eq!(read("srandmember s 2"), Reply::Array(vec![]));
    assert_eq!(read("smembers s"), set(&[]));
}
