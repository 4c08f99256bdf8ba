//! Hash commands. A hash is a map of fields in byte order: HGETALL, HKEYS and HVALS list
//! them in that order on every node. Every change takes a new fencing token and keeps the
//! key's deadline; a hash whose last field goes is removed.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{run, wrong_arity, Keyspace, Value};
use crate::command::args::parse_i64;
use crate::reply::Reply;

pub type Hash = BTreeMap<Bytes, Bytes>;

/// The hash at `key` for a read: `None` for a missing key, WRONGTYPE for another type.
fn hash_of<'a>(ks: &'a Keyspace, key: &[u8], now_ms: u64) -> Result<Option<&'a Hash>, Reply> {
    match ks.get(key, now_ms).map(|entry| &entry.value) {
        None => Ok(None),
        Some(Value::Hash(hash)) => Ok(Some(hash)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// Runs `f` on the hash at `key`, created empty when missing if `create` is set. `f`
/// answers its result and whether it changed the hash. `Ok(None)`: no hash and none
/// created.
fn update_hash<R>(
    ks: &mut Keyspace,
    key: &[u8],
    now_ms: u64,
    create: bool,
    f: impl FnOnce(&mut Hash) -> (R, bool),
) -> Result<Option<R>, Reply> {
    if let Some(entry) = ks.get_for_write(key, now_ms) {
        if !matches!(entry.value, Value::Hash(_)) {
            return Err(Reply::wrong_type());
        }
    }
    let empty = create.then(|| Value::Hash(Box::default()));
    Ok(ks.update(key, now_ms, empty, |value| match value {
        Value::Hash(hash) => f(hash),
        _ => unreachable!("checked to be a hash above"),
    }))
}

/// The field/value pairs of HSET and HMSET, or Redis's arity error for an odd count.
fn field_pairs(argv: &[Bytes]) -> Result<&[Bytes], Reply> {
    match argv.get(2..) {
        Some(pairs) if !pairs.is_empty() && pairs.len() % 2 == 0 => Ok(pairs),
        _ => Err(wrong_arity(argv)),
    }
}

fn copy(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

/// HSET key field value [field value ...]: how many fields are new. HMSET: OK.
pub fn hset(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let pairs = field_pairs(argv)?;
        let key = &argv[1];
        let added = update_hash(ks, key, now_ms, true, |hash| {
            let added = pairs
                .chunks_exact(2)
                .filter(|pair| hash.insert(copy(&pair[0]), copy(&pair[1])).is_none())
                .count();
            (added, true)
        })?
        .unwrap_or_default();
        if super::invoked_as(argv, "hmset") {
            Ok(Reply::Ok)
        } else {
            Ok(Reply::Int(added as i64))
        }
    })
}

/// HSETNX key field value: 1 if the field was new and is set, 0 if it existed.
pub fn hsetnx(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, field, value] = argv else {
            return Err(wrong_arity(argv));
        };
        let set = update_hash(ks, key, now_ms, true, |hash| {
            if hash.contains_key(field.as_ref()) {
                (false, false)
            } else {
                hash.insert(copy(field), copy(value));
                (true, true)
            }
        })?;
        Ok(Reply::Int(i64::from(set == Some(true))))
    })
}

/// HGET key field
pub fn hget(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, field] = argv else {
            return Err(wrong_arity(argv));
        };
        let value = hash_of(ks, key, now_ms)?.and_then(|hash| hash.get(field.as_ref()));
        Ok(value.map_or(Reply::Nil, |value| Reply::Bulk(value.clone())))
    })
}

/// HMGET key field [field ...]: nil for each missing field.
pub fn hmget(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, fields @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let hash = hash_of(ks, key, now_ms)?;
        Ok(Reply::Array(
            fields
                .iter()
                .map(
                    |field| match hash.and_then(|hash| hash.get(field.as_ref())) {
                        Some(value) => Reply::Bulk(value.clone()),
                        None => Reply::Nil,
                    },
                )
                .collect(),
        ))
    })
}

/// HDEL key field [field ...]: how many fields were removed.
pub fn hdel(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, fields @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let removed = update_hash(ks, key, now_ms, false, |hash| {
            let removed = fields
                .iter()
                .filter(|field| hash.remove(field.as_ref()).is_some())
                .count();
            (removed, removed > 0)
        })?
        .unwrap_or_default();
        Ok(Reply::Int(removed as i64))
    })
}

/// HEXISTS key field
pub fn hexists(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, field] = argv else {
            return Err(wrong_arity(argv));
        };
        let found = hash_of(ks, key, now_ms)?.is_some_and(|hash| hash.contains_key(field.as_ref()));
        Ok(Reply::Int(i64::from(found)))
    })
}

/// HINCRBY key field increment: the new value; a missing field counts as 0.
pub fn hincrby(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, field, increment] = argv else {
            return Err(wrong_arity(argv));
        };
        let increment = parse_i64(increment).ok_or_else(Reply::not_integer)?;
        update_hash(ks, key, now_ms, true, |hash| {
            let current = match hash.get(field.as_ref()) {
                Some(value) => match parse_i64(value) {
                    Some(current) => current,
                    None => return (Err(Reply::error("ERR hash value is not an integer")), false),
                },
                None => 0,
            };
            let Some(new) = current.checked_add(increment) else {
                return (
                    Err(Reply::error("ERR increment or decrement would overflow")),
                    false,
                );
            };
            hash.insert(copy(field), Bytes::from(new.to_string()));
            (Ok(Reply::Int(new)), true)
        })?
        .unwrap_or_else(|| unreachable!("HINCRBY creates the hash"))
    })
}

/// HLEN key: 0 for a missing key.
pub fn hlen(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key] = argv else {
            return Err(wrong_arity(argv));
        };
        let len = hash_of(ks, key, now_ms)?.map_or(0, |hash| hash.len());
        Ok(Reply::Int(len as i64))
    })
}

/// HGETALL key: a map of field to value (a flat array in RESP2).
pub fn hgetall(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key] = argv else {
            return Err(wrong_arity(argv));
        };
        let pairs = hash_of(ks, key, now_ms)?
            .into_iter()
            .flatten()
            .map(|(field, value)| (Reply::Bulk(field.clone()), Reply::Bulk(value.clone())))
            .collect();
        Ok(Reply::Map(pairs))
    })
}

/// HKEYS key, HVALS key
pub fn hkeys(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key] = argv else {
            return Err(wrong_arity(argv));
        };
        let values = super::invoked_as(argv, "hvals");
        let items = hash_of(ks, key, now_ms)?
            .into_iter()
            .flatten()
            .map(|(field, value)| Reply::Bulk(if values { value } else { field }.clone()))
            .collect();
        Ok(Reply::Array(items))
    })
}

#[cfg(test)]
mod tests {
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
    fn hgetall_hkeys_hvals_list_fields_in_byte_order() {
        let mut h = Harness::new();
        assert_eq!(h.read("hgetall h"), Reply::Map(vec![]));
        assert_eq!(h.read("hkeys h"), Reply::Array(vec![]));
        assert_eq!(h.read("hvals h"), Reply::Array(vec![]));
        h.write("hset h b 2 a 1 c 3");
        assert_eq!(
            h.read("hgetall h"),
            map(&[("a", "1"), ("b", "2"), ("c", "3")])
        );
        assert_eq!(h.read("hkeys h"), bulks(&["a", "b", "c"]));
        assert_eq!(h.read("hvals h"), bulks(&["1", "2", "3"]));
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
            map(&[("a", "1"), ("b", "2")])
        );
        assert_eq!(
            restored.query(h.now_ms, &super::super::tests::argv("pttl h")),
            int(5000)
        );
        assert_eq!(restored.to_snapshot(), snapshot);
    }
}
