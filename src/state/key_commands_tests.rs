use std::collections::BTreeMap;

use super::super::tests::{bulk, bulks, err, int, Harness};
use super::scan_hash;
use crate::reply::Reply;

#[test]
fn del_counts_keys_that_existed_once_each() {
    let mut h = Harness::new();
    h.write("mset a 1 b 2");
    assert_eq!(h.write("del a b c a"), int(2));
    assert_eq!(h.write("unlink a"), int(0));
    h.write("set c 3 ex 100");
    assert_eq!(h.write("UNLINK c"), int(1));
    assert_eq!(h.ks.expires_count(), 0);
}

#[test]
fn del_does_not_count_expired_keys() {
    let mut h = Harness::new();
    h.write("set a 1 px 10");
    h.advance(10);
    let now = h.now_ms;
    let argv = super::super::tests::argv("del a");
    assert_eq!(super::del(&mut h.ks, now, &argv), int(0));
}

#[test]
fn exists_counts_repeated_keys() {
    let mut h = Harness::new();
    h.write("set a 1");
    assert_eq!(h.read("exists a a b a"), int(3));
    assert_eq!(h.read("exists b"), int(0));
}

#[test]
fn type_reports_string_or_none_as_status() {
    let mut h = Harness::new();
    h.write("set a 1");
    assert_eq!(h.read("type a"), Reply::status("string"));
    assert_eq!(h.read("type b"), Reply::status("none"));
}

#[test]
fn expire_variants_set_deadlines_relative_or_absolute() {
    let mut h = Harness::new();
    let now = h.now_ms;
    h.write("mset a 1 b 2 c 3 d 4");
    assert_eq!(h.write("expire a 10"), int(1));
    assert_eq!(h.read("pttl a"), int(10_000));
    assert_eq!(h.write("pexpire b 1234"), int(1));
    assert_eq!(h.read("pttl b"), int(1_234));
    assert_eq!(h.write(&format!("expireat c {}", now / 1000 + 50)), int(1));
    assert_eq!(h.read("expiretime c"), int((now / 1000 + 50) as i64));
    assert_eq!(h.write(&format!("PEXPIREAT d {}", now + 77)), int(1));
    assert_eq!(h.read("pexpiretime d"), int((now + 77) as i64));
    assert_eq!(h.write("expire missing 10"), int(0));
}

#[test]
fn expire_in_the_past_removes_the_key_and_answers_one() {
    let mut h = Harness::new();
    h.write("mset a 1 b 2 c 3");
    assert_eq!(h.write("expire a 0"), int(1));
    assert_eq!(h.write("pexpire b -100"), int(1));
    assert_eq!(h.write("expireat c 1"), int(1));
    assert_eq!(h.read("dbsize"), int(0));
    assert_eq!(h.ks.expires_count(), 0);
}

#[test]
fn expire_nx_xx_gt_lt_follow_redis_7() {
    let mut h = Harness::new();
    h.write("set k v");
    // No deadline: XX and GT refuse (no deadline is an infinite one), LT sets.
    assert_eq!(h.write("expire k 100 xx"), int(0));
    assert_eq!(h.write("expire k 100 gt"), int(0));
    assert_eq!(h.read("ttl k"), int(-1));
    assert_eq!(h.write("expire k 100 lt"), int(1));
    assert_eq!(h.write("expire k 50 nx"), int(0));
    assert_eq!(h.write("expire k 200 lt"), int(0));
    assert_eq!(h.write("expire k 50 gt"), int(0));
    assert_eq!(h.write("expire k 200 gt"), int(1));
    assert_eq!(h.write("expire k 150 xx lt"), int(1));
    assert_eq!(h.read("ttl k"), int(150));
    assert_eq!(h.write("persist k"), int(1));
    assert_eq!(h.write("expire k 10 NX"), int(1));
}

#[test]
fn expire_option_errors_match_redis() {
    let mut h = Harness::new();
    h.write("set k v");
    let both = "ERR NX and XX, GT or LT options at the same time are not compatible";
    assert_eq!(h.write("expire k 10 nx xx"), err(both));
    assert_eq!(h.write("expire k 10 gt nx"), err(both));
    assert_eq!(h.write("expire k 10 nx lt"), err(both));
    assert_eq!(
        h.write("expire k 10 gt lt"),
        err("ERR GT and LT options at the same time are not compatible")
    );
    assert_eq!(
        h.write("expire k 10 foo"),
        err("ERR Unsupported option foo")
    );
    assert_eq!(
        h.write("expire k ten"),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        h.write("expire k 9223372036854776"),
        err("ERR invalid expire time in 'expire' command")
    );
    assert_eq!(
        h.write("PEXPIRE k 9223372036854775807"),
        err("ERR invalid expire time in 'pexpire' command")
    );
    assert_eq!(
        h.write("expireat k -9223372036854776"),
        err("ERR invalid expire time in 'expireat' command")
    );
    assert_eq!(h.write("pexpireat k 9223372036854775807"), int(1));
    assert_eq!(
        h.read("ttl k"),
        int((i64::MAX - h.now_ms as i64 + 500) / 1000)
    );
}

#[test]
fn ttl_rounds_to_nearest_second_and_reports_missing_and_persistent() {
    let mut h = Harness::new();
    assert_eq!(h.read("ttl k"), int(-2));
    assert_eq!(h.read("pttl k"), int(-2));
    assert_eq!(h.read("expiretime k"), int(-2));
    h.write("set k v");
    assert_eq!(h.read("ttl k"), int(-1));
    assert_eq!(h.read("pexpiretime k"), int(-1));
    h.write("pexpire k 1499");
    assert_eq!(h.read("ttl k"), int(1));
    h.write("pexpire k 1500");
    assert_eq!(h.read("ttl k"), int(2));
    h.write("pexpire k 400");
    assert_eq!(h.read("ttl k"), int(0));
    h.advance(100);
    assert_eq!(h.read("pttl k"), int(300));
}

#[test]
fn persist_removes_a_deadline_only_when_there_is_one() {
    let mut h = Harness::new();
    assert_eq!(h.write("persist k"), int(0));
    h.write("set k v");
    assert_eq!(h.write("persist k"), int(0));
    h.write("expire k 10");
    assert_eq!(h.write("persist k"), int(1));
    assert_eq!(h.read("ttl k"), int(-1));
    assert_eq!(h.ks.expires_count(), 0);
    assert_eq!(h.ks.next_deadline_ms(), None);
}

#[test]
fn keys_lists_matching_live_keys_sorted() {
    let mut h = Harness::new();
    h.write("mset hello 1 hallo 2 hxllo 3 world 4 h*llo 5");
    h.write("set gone 1 px 5");
    h.advance(5);
    assert_eq!(
        h.read("keys *"),
        bulks(&["h*llo", "hallo", "hello", "hxllo", "world"])
    );
    assert_eq!(h.read("keys h[ae]llo"), bulks(&["hallo", "hello"]));
    assert_eq!(h.read("keys h\\*llo"), bulks(&["h*llo"]));
    assert_eq!(h.read("keys g*"), bulks(&[]));
}

#[test]
fn keys_star_includes_the_empty_key() {
    let mut h = Harness::new();
    h.write_args(&["set", "", "v"]);
    assert_eq!(h.read("keys *"), bulks(&[""]));
    assert_eq!(h.read("keys ?*"), bulks(&[]));
}

/// Runs SCAN from `cursor`; returns the next cursor and the keys.
fn scan(h: &Harness, cursor: u64, options: &str) -> (u64, Vec<String>) {
    match h.read(&format!("scan {cursor} {options}")) {
        Reply::Array(parts) => match parts.as_slice() {
            [Reply::Bulk(next), Reply::Array(keys)] => {
                let next = std::str::from_utf8(next).unwrap().parse().unwrap();
                let keys = keys
                    .iter()
                    .map(|key| match key {
                        Reply::Bulk(key) => String::from_utf8(key.to_vec()).unwrap(),
                        other => panic!("key {other:?}"),
                    })
                    .collect();
                (next, keys)
            }
            other => panic!("scan reply {other:?}"),
        },
        other => panic!("scan reply {other:?}"),
    }
}

#[test]
fn scan_returns_every_key_once_over_a_full_iteration() {
    let mut h = Harness::new();
    for i in 0..200 {
        h.write(&format!("set key:{i} v"));
    }
    let mut seen = BTreeMap::new();
    let mut cursor = 0;
    let mut calls = 0;
    loop {
        let (next, keys) = scan(&h, cursor, "count 7");
        assert!(keys.len() == 7 || (next == 0 && keys.len() <= 7));
        for key in keys {
            *seen.entry(key).or_insert(0) += 1;
        }
        calls += 1;
        if next == 0 {
            break;
        }
        assert!(next > cursor);
        cursor = next;
    }
    assert_eq!(seen.len(), 200);
    assert!(seen.values().all(|&n| n == 1));
    assert!(calls >= 200 / 7);
}

#[test]
fn scan_returns_keys_present_throughout_even_as_keys_come_and_go() {
    let mut h = Harness::new();
    for i in 0..100 {
        h.write(&format!("set stay:{i} v"));
    }
    let mut seen = BTreeMap::new();
    let mut cursor = 0;
    let mut round = 0;
    loop {
        let (next, keys) = scan(&h, cursor, "count 5");
        for key in keys {
            *seen.entry(key).or_insert(0) += 1;
        }
        // Keys added and removed between calls must not disturb the others.
        for j in 0..5 {
            h.write(&format!("set new:{round}:{j} v"));
        }
        h.write(&format!("del new:{}:0", round.max(1) - 1));
        round += 1;
        if next == 0 {
            break;
        }
        cursor = next;
    }
    for i in 0..100 {
        assert_eq!(seen.get(&format!("stay:{i}")), Some(&1), "stay:{i}");
    }
    assert!(seen.values().all(|&n| n == 1));
}

#[test]
fn scan_without_count_returns_ten_keys_in_hash_order() {
    let mut h = Harness::new();
    for i in 0..25 {
        h.write(&format!("set k{i} v"));
    }
    let (next, keys) = scan(&h, 0, "");
    assert_eq!(keys.len(), 10);
    let hashes: Vec<u64> = keys.iter().map(|key| scan_hash(key.as_bytes())).collect();
    assert!(hashes.windows(2).all(|pair| pair[0] <= pair[1]));
    assert_eq!(next, hashes[9] + 1);
}

#[test]
fn scan_match_and_type_filter_the_returned_keys() {
    let mut h = Harness::new();
    for i in 0..30 {
        h.write(&format!("set user:{i} v"));
        h.write(&format!("set item:{i} v"));
    }
    let collect = |h: &Harness, options: &str| {
        let mut all = Vec::new();
        let mut cursor = 0;
        loop {
            let (next, keys) = scan(h, cursor, options);
            all.extend(keys);
            if next == 0 {
                return all;
            }
            cursor = next;
        }
    };
    let users = collect(&h, "match user:* count 4");
    assert_eq!(users.len(), 30);
    assert!(users.iter().all(|key| key.starts_with("user:")));
    assert_eq!(collect(&h, "type STRING count 1000").len(), 60);
    assert!(collect(&h, "type list").is_empty());
    assert_eq!(collect(&h, "match * type string").len(), 60);
}

#[test]
fn scan_skips_expired_keys() {
    let mut h = Harness::new();
    h.write("set live v");
    h.write("set dying v px 10");
    h.advance(10);
    assert_eq!(scan(&h, 0, "count 100"), (0, vec!["live".to_string()]));
}

#[test]
fn scan_argument_errors() {
    let h = Harness::new();
    assert_eq!(h.read("scan abc"), err("ERR invalid cursor"));
    assert_eq!(h.read("scan -1"), err("ERR invalid cursor"));
    assert_eq!(
        h.read("scan 18446744073709551616"),
        err("ERR invalid cursor")
    );
    assert_eq!(h.read("scan 0 count 0"), err("ERR syntax error"));
    assert_eq!(
        h.read("scan 0 count x"),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(h.read("scan 0 count"), err("ERR syntax error"));
    assert_eq!(h.read("scan 0 foo bar"), err("ERR syntax error"));
    assert_eq!(scan(&h, 18446744073709551615, ""), (0, vec![]));
}

#[test]
fn rename_moves_value_and_deadline_with_a_new_token() {
    let mut h = Harness::new();
    h.write("set a 1 px 5000");
    h.write("set b 2");
    let token = h.token("a");
    assert_eq!(h.write("rename a b"), Reply::Ok);
    assert_eq!(h.read("get a"), Reply::Nil);
    assert_eq!(h.read("get b"), bulk("1"));
    assert_eq!(h.read("pttl b"), int(5000));
    assert!(h.token("b") > token);
    assert_eq!(h.ks.expires_count(), 1);
    // A destination's own deadline goes away with its old value.
    h.write("set c 3");
    h.write("rename c b");
    assert_eq!(h.read("ttl b"), int(-1));
    assert_eq!(h.ks.expires_count(), 0);
}

#[test]
fn rename_of_a_missing_key_is_an_error_and_to_itself_is_ok() {
    let mut h = Harness::new();
    assert_eq!(h.write("rename a b"), err("ERR no such key"));
    assert_eq!(h.write("rename a a"), err("ERR no such key"));
    h.write("set a 1 px 100");
    assert_eq!(h.write("rename a a"), Reply::Ok);
    assert_eq!(h.read("get a"), bulk("1"));
    assert_eq!(h.read("pttl a"), int(100));
    h.advance(100);
    assert_eq!(h.write("rename a b"), err("ERR no such key"));
}
