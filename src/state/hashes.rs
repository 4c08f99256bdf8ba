//! Hash commands. A hash keeps its fields in the order they were first set, as Redis's
//! small hashes (listpacks) do: HGETALL, HKEYS and HVALS list them in that order on every
//! node, an HSET of an existing field keeps its place, and HDEL closes the gap. (Redis's
//! large hashes answer in hash-table order, which no client can rely on.) Every change takes a new fencing token and keeps the
//! key's deadline; a hash whose last field goes is removed.

use bytes::Bytes;

use super::{run, wrong_arity, Keyspace, Value};
use crate::args::parse_i64;
use crate::reply::Reply;

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
