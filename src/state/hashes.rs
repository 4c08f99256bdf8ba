//! Hash commands. A hash keeps its fields in the order they were first set, as Redis's
//! small hashes (listpacks) do: HGETALL, HKEYS and HVALS list them in that order on every
//! node, an HSET of an existing field keeps its place, and HDEL closes the gap. (Redis's
//! large hashes answer in hash-table order, which no client can rely on.) Every change takes a new fencing token and keeps the
//! key's deadline; a hash whose last field goes is removed.

use bytes::Bytes;

use super::key_commands::{parse_cursor, scan_page, scan_reply_items, ScanOptions};
use super::sets::Draws;
use super::strings::{add_floats, parse_float};
use super::{run, wrong_arity, Keyspace, Value};
use crate::args::parse_i64;
use crate::config::state_limits::MAX_RANDOM_MEMBERS;
use crate::reply::Reply;

/// Redis's `hash-max-listpack-entries` and `hash-max-listpack-value` defaults: a hash
/// within both is one HSCAN page, as Redis answers a listpack-encoded hash.
const SMALL_HASH_ENTRIES: usize = 128;
const SMALL_HASH_VALUE: usize = 64;

/// Fields in insertion order; the hasher only speeds lookups (the order never depends on
/// it), so it may be seeded at random, which keeps chosen field names from colliding.
pub type Hash = indexmap::IndexMap<Bytes, Bytes>;

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
                .filter(|field| hash.shift_remove(field.as_ref()).is_some())
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

/// HINCRBYFLOAT key field increment: the new value, in decimal as INCRBYFLOAT.
pub fn hincrbyfloat(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, field, increment] = argv else {
            return Err(wrong_arity(argv));
        };
        if let Err(error) = parse_float(increment) {
            let infinite = error == Reply::error("ERR increment would produce NaN or Infinity");
            return Err(if infinite {
                Reply::error("ERR value is NaN or Infinity")
            } else {
                error
            });
        }
        update_hash(ks, key, now_ms, true, |hash| {
            let current = match hash.get(field.as_ref()).map(|value| parse_float(value)) {
                Some(Ok(current)) => Some(current),
                Some(Err(_)) => return (Err(Reply::error("ERR hash value is not a float")), false),
                None => None,
            };
            match add_floats(current, increment) {
                Ok(sum) => {
                    hash.insert(copy(field), sum.clone());
                    (Ok(Reply::Bulk(sum)), true)
                }
                Err(error) => (Err(error), false),
            }
        })?
        .unwrap_or_else(|| unreachable!("HINCRBYFLOAT creates the hash"))
    })
}

/// HSTRLEN key field: the value's length, 0 for a missing field or key.
pub fn hstrlen(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, field] = argv else {
            return Err(wrong_arity(argv));
        };
        let len = hash_of(ks, key, now_ms)?
            .and_then(|hash| hash.get(field.as_ref()))
            .map_or(0, Bytes::len);
        Ok(Reply::Int(len as i64))
    })
}

/// HRANDFIELD key [count [WITHVALUES]]: random fields, drawn from numbers seeded by the
/// op's place in the log (as SRANDMEMBER). Without a count one field (nil for a missing
/// key); a positive count up to that many distinct fields (the whole hash, in its order,
/// when it has no more); a negative one `-count` draws with repeats. WITHVALUES:
/// field/value pairs (nested in RESP3).
pub fn hrandfield(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let (key, count, with_values) = match argv {
            [_, key] => (key, None, false),
            [_, key, count, options @ ..] => {
                let count = parse_i64(count).ok_or_else(Reply::not_integer)?;
                let with_values = match options {
                    [] => false,
                    [option] if option.eq_ignore_ascii_case(b"withvalues") => true,
                    _ => return Err(Reply::syntax_error()),
                };
                let limit = i64::try_from(MAX_RANDOM_MEMBERS).unwrap_or(i64::MAX);
                if count < -limit {
                    // Redis's words, with raftlock's bound: a reply is built whole.
                    return Err(Reply::Error(format!(
                        "ERR value is out of range, value must between -{limit} and {}",
                        i64::MAX
                    )));
                }
                (key, Some(count), with_values)
            }
            _ => return Err(wrong_arity(argv)),
        };
        let Some(hash) = hash_of(ks, key, now_ms)?.filter(|hash| !hash.is_empty()) else {
            return Ok(count.map_or(Reply::Nil, |_| Reply::Array(Vec::new())));
        };
        let mut draws = Draws::new(ks, now_ms);
        let Some(count) = count else {
            let (field, _) = hash.get_index(draws.below(hash.len())).expect("below len");
            return Ok(Reply::Bulk(field.clone()));
        };
        let picked: Vec<usize> = if count < 0 {
            (0..count.unsigned_abs())
                .map(|_| draws.below(hash.len()))
                .collect()
        } else if count as u64 >= hash.len() as u64 {
            (0..hash.len()).collect()
        } else {
            draws.distinct(count as usize, hash.len())
        };
        let pairs = picked.into_iter().filter_map(|at| hash.get_index(at));
        Ok(if with_values {
            Reply::Pairs(
                pairs
                    .map(|(field, value)| (Reply::Bulk(field.clone()), Reply::Bulk(value.clone())))
                    .collect(),
            )
        } else {
            Reply::Array(pairs.map(|(field, _)| Reply::Bulk(field.clone())).collect())
        })
    })
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]: as SCAN, over field/value
/// pairs; a small hash (as Redis's listpacks) is one page with cursor 0. MATCH filters on
/// the field.
pub fn hscan(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, cursor, options @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let cursor = parse_cursor(cursor)?;
        let Some(hash) = hash_of(ks, key, now_ms)? else {
            return Ok(scan_reply_items(0, Vec::new()));
        };
        let options = ScanOptions::parse(options, false)?;
        let all = hash
            .iter()
            .map(|(field, value)| (field.as_ref(), value.as_ref()));
        let small = hash.len() <= SMALL_HASH_ENTRIES
            && hash
                .iter()
                .all(|(f, v)| f.len() <= SMALL_HASH_VALUE && v.len() <= SMALL_HASH_VALUE);
        let (next_cursor, page) = if small {
            (0, all.collect())
        } else {
            scan_page(all, cursor, options.count)
        };
        let items = page
            .into_iter()
            .filter(|(field, _)| options.matches(field))
            .flat_map(|(field, value)| [copy(field), copy(value)])
            .map(Reply::Bulk)
            .collect();
        Ok(scan_reply_items(next_cursor, items))
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
#[path = "hashes_tests.rs"]
mod tests;
