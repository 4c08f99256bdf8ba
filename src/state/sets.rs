//! Set commands. A set keeps its members in one order that every replica shares:
//! insertion order, except that a removed member's place is taken by the last member (an
//! O(1) removal). SMEMBERS, SSCAN's pages and the set algebra answer in it.
//!
//! SPOP and SRANDMEMBER choose as Redis does, at random, but from numbers drawn from the
//! op's place in the Raft log (`Keyspace::draw_seed`), so every replica pops the same
//! members. Every change takes a new fencing token and keeps the key's deadline; a set
//! whose last member goes is removed. The STORE forms replace the destination as SET
//! does: a new token, no deadline.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;

use bytes::Bytes;
use indexmap::IndexSet;

use super::key_commands::{parse_cursor, scan_page, scan_reply, ScanOptions};
use super::{invoked_as, run, wrong_arity, Keyspace, Value};
use crate::args::parse_i64;
use crate::config::state_limits::MAX_RANDOM_MEMBERS;
use crate::reply::Reply;

/// Members are hashed with std's randomly keyed hasher (clients choose them); the order
/// of an `IndexSet` does not depend on the hasher, only on the inserts and removals.
pub type Set = IndexSet<Bytes, RandomState>;

/// The set at `key` for a read: `None` for a missing key, WRONGTYPE for another type.
fn set_of<'a>(ks: &'a Keyspace, key: &[u8], now_ms: u64) -> Result<Option<&'a Set>, Reply> {
    match ks.get(key, now_ms).map(|entry| &entry.value) {
        None => Ok(None),
        Some(Value::Set(set)) => Ok(Some(set)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// The sets at `keys`, a missing key as `None`; WRONGTYPE if any key holds another type
/// (Redis checks every key before it answers).
fn sets_of<'a>(
    ks: &'a Keyspace,
    keys: &[Bytes],
    now_ms: u64,
) -> Result<Vec<Option<&'a Set>>, Reply> {
    keys.iter().map(|key| set_of(ks, key, now_ms)).collect()
}

/// Runs `f` on the set at `key`, created empty when missing if `create` is set. `f`
/// answers its result and whether it changed the set. `Ok(None)`: no set and none
/// created.
fn update_set<R>(
    ks: &mut Keyspace,
    key: &[u8],
    now_ms: u64,
    create: bool,
    f: impl FnOnce(&mut Set) -> (R, bool),
) -> Result<Option<R>, Reply> {
    if let Some(entry) = ks.get_for_write(key, now_ms) {
        if !matches!(entry.value, Value::Set(_)) {
            return Err(Reply::wrong_type());
        }
    }
    let empty = create.then(|| Value::Set(Box::default()));
    Ok(ks.update(key, now_ms, empty, |value| match value {
        Value::Set(set) => f(set),
        _ => unreachable!("checked to be a set above"),
    }))
}

fn copy(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

fn members<'a>(members: impl IntoIterator<Item = &'a Bytes>) -> Vec<Reply> {
    members
        .into_iter()
        .map(|member| Reply::Bulk(member.clone()))
        .collect()
}

/// The numbers of one command's random choices: splitmix64 from `Keyspace::draw_seed`.
pub(super) struct Draws(u64);

impl Draws {
    pub(super) fn new(ks: &Keyspace, now_ms: u64) -> Draws {
        Draws(ks.draw_seed(now_ms))
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A position below `n` (> 0).
    pub(super) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    /// `k` distinct positions below `n` (k <= n), in the order drawn: the first `k` steps
    /// of a Fisher-Yates shuffle, with only the moved positions stored.
    pub(super) fn distinct(&mut self, k: usize, n: usize) -> Vec<usize> {
        let mut moved: HashMap<usize, usize> = HashMap::new();
        (0..k)
            .map(|i| {
                let j = i + self.below(n - i);
                let at_j = moved.get(&j).copied().unwrap_or(j);
                let at_i = moved.get(&i).copied().unwrap_or(i);
                moved.insert(j, at_i);
                at_j
            })
            .collect()
    }
}

/// SADD key member [member ...]: how many members are new.
pub fn sadd(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, new @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let added = update_set(ks, key, now_ms, true, |set| {
            let added = new.iter().filter(|member| set.insert(copy(member))).count();
            (added, added > 0)
        })?
        .unwrap_or_default();
        Ok(Reply::Int(added as i64))
    })
}

/// SREM key member [member ...]: how many members were removed.
pub fn srem(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, gone @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let removed = update_set(ks, key, now_ms, false, |set| {
            let removed = gone
                .iter()
                .filter(|member| set.swap_remove(member.as_ref()))
                .count();
            (removed, removed > 0)
        })?
        .unwrap_or_default();
        Ok(Reply::Int(removed as i64))
    })
}

/// SISMEMBER key member
pub fn sismember(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, member] = argv else {
            return Err(wrong_arity(argv));
        };
        let found = set_of(ks, key, now_ms)?.is_some_and(|set| set.contains(member.as_ref()));
        Ok(Reply::Int(i64::from(found)))
    })
}

/// SMISMEMBER key member [member ...]: 1 or 0 for each member; zeros for a missing key.
pub fn smismember(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, asked @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let set = set_of(ks, key, now_ms)?;
        let found = asked
            .iter()
            .map(|member| {
                Reply::Int(i64::from(
                    set.is_some_and(|set| set.contains(member.as_ref())),
                ))
            })
            .collect();
        Ok(Reply::Array(found))
    })
}

/// SCARD key: 0 for a missing key.
pub fn scard(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key] = argv else {
            return Err(wrong_arity(argv));
        };
        Ok(Reply::Int(
            set_of(ks, key, now_ms)?.map_or(0, |set| set.len()) as i64,
        ))
    })
}

/// SMEMBERS key: a RESP3 set (an array in RESP2), in the set's order.
pub fn smembers(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key] = argv else {
            return Err(wrong_arity(argv));
        };
        Ok(Reply::Set(members(
            set_of(ks, key, now_ms)?.into_iter().flatten(),
        )))
    })
}

/// SPOP key [count]: without a count, a random member (nil for a missing key); with
/// one, a set of up to `count` random members (the whole set, in its order, when it has
/// no more), each removed.
pub fn spop(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let (key, count) = match argv {
            [_, key] => (key, None),
            [_, key, count] => {
                let count = parse_i64(count)
                    .and_then(|count| usize::try_from(count).ok())
                    .ok_or_else(|| Reply::error("ERR value is out of range, must be positive"))?;
                (key, Some(count))
            }
            [_, _, _, ..] => return Err(Reply::syntax_error()),
            _ => return Err(wrong_arity(argv)),
        };
        let Some(len) = ks
            .get_for_write(key, now_ms)
            .map(|entry| match &entry.value {
                Value::Set(set) => Ok(set.len()),
                _ => Err(Reply::wrong_type()),
            })
        else {
            return Ok(count.map_or(Reply::Nil, |_| Reply::Set(Vec::new())));
        };
        let len = len?;
        let count_asked = count.unwrap_or(1);
        if count_asked == 0 {
            return Ok(Reply::Set(Vec::new()));
        }
        let mut draws = (count_asked < len).then(|| Draws::new(ks, now_ms));
        let popped = update_set(ks, key, now_ms, false, |set| {
            let popped: Vec<Bytes> = match draws.as_mut() {
                None => set.drain(..).collect(),
                Some(draws) => (0..count_asked)
                    .filter_map(|_| set.swap_remove_index(draws.below(set.len())))
                    .collect(),
            };
            (popped, true)
        })?
        .unwrap_or_default();
        Ok(match count {
            None => popped.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
            Some(_) => Reply::Set(popped.into_iter().map(Reply::Bulk).collect()),
        })
    })
}

/// SRANDMEMBER key [count]: without a count, a random member (nil for a missing key).
/// A positive count: up to `count` distinct members (the whole set, in its order, when it
/// has no more); a negative one: `-count` members drawn independently, so repeats are
/// possible. Always an array.
pub fn srandmember(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let (key, count) = match argv {
            [_, key] => (key, None),
            [_, key, count] => {
                let count = parse_i64(count).ok_or_else(Reply::not_integer)?;
                let limit = i64::try_from(MAX_RANDOM_MEMBERS).unwrap_or(i64::MAX);
                if count < -limit {
                    // Redis's words, with raftlock's bound: a reply is built whole.
                    return Err(Reply::Error(format!(
                        "ERR value is out of range, value must between -{limit} and {}",
                        i64::MAX
                    )));
                }
                (key, Some(count))
            }
            [_, _, _, ..] => return Err(Reply::syntax_error()),
            _ => return Err(wrong_arity(argv)),
        };
        // A set is never empty; were one (a corrupt snapshot), it reads as missing rather
        // than drawing from nothing.
        let Some(set) = set_of(ks, key, now_ms)?.filter(|set| !set.is_empty()) else {
            return Ok(count.map_or(Reply::Nil, |_| Reply::Array(Vec::new())));
        };
        let Some(count) = count else {
            let mut draws = Draws::new(ks, now_ms);
            return Ok(Reply::Bulk(set[draws.below(set.len())].clone()));
        };
        let picked: Vec<Reply> = if count < 0 {
            let mut draws = Draws::new(ks, now_ms);
            (0..count.unsigned_abs())
                .map(|_| Reply::Bulk(set[draws.below(set.len())].clone()))
                .collect()
        } else if count as u64 >= set.len() as u64 {
            members(set.iter())
        } else {
            let mut draws = Draws::new(ks, now_ms);
            draws
                .distinct(count as usize, set.len())
                .into_iter()
                .map(|at| Reply::Bulk(set[at].clone()))
                .collect()
        };
        Ok(Reply::Array(picked))
    })
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]: as SCAN, over the members in the
/// order of their `scan_hash`; the cursor is the hash to resume from. A missing key is
/// one empty page; options are read only for an existing set, as in Redis.
pub fn sscan(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, cursor, options @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let cursor = parse_cursor(cursor)?;
        let Some(set) = set_of(ks, key, now_ms)? else {
            return Ok(scan_reply(0, std::iter::empty()));
        };
        let options = ScanOptions::parse(options, false)?;
        let all = set.iter().map(|member| (member.as_ref(), ()));
        let (next_cursor, page) = scan_page(all, cursor, options.count);
        let found = page
            .into_iter()
            .map(|(member, ())| member)
            .filter(|member| options.matches(member));
        Ok(scan_reply(next_cursor, found))
    })
}

/// The intersection of `sets`, in the order of the smallest (the first of the smallest
/// when several are as small); empty when any is missing. Stops at `limit` members.
fn intersection(sets: &[Option<&Set>], limit: usize) -> Vec<Bytes> {
    let Some(sets) = sets.iter().copied().collect::<Option<Vec<&Set>>>() else {
        return Vec::new();
    };
    let Some(smallest) = sets.iter().copied().min_by_key(|set| set.len()) else {
        return Vec::new();
    };
    smallest
        .iter()
        .filter(|member| sets.iter().all(|set| set.contains(member.as_ref())))
        .take(limit)
        .cloned()
        .collect()
}

/// The union of `sets`, each member where it first appears, taking the sets in order.
fn union(sets: &[Option<&Set>]) -> Set {
    let mut union = Set::default();
    for set in sets.iter().flatten() {
        union.extend(set.iter().cloned());
    }
    union
}

/// The members of the first set in none of the others, in the first set's order.
fn difference(sets: &[Option<&Set>]) -> Vec<Bytes> {
    let [Some(first), others @ ..] = sets else {
        return Vec::new();
    };
    first
        .iter()
        .filter(|member| {
            !others
                .iter()
                .flatten()
                .any(|set| set.contains(member.as_ref()))
        })
        .cloned()
        .collect()
}

/// Which algebra a command runs, by the name it was invoked as.
fn combine(sets: &[Option<&Set>], argv: &[Bytes]) -> Vec<Bytes> {
    if invoked_as(argv, "sinter") || invoked_as(argv, "sinterstore") {
        intersection(sets, usize::MAX)
    } else if invoked_as(argv, "sunion") || invoked_as(argv, "sunionstore") {
        union(sets).into_iter().collect()
    } else {
        difference(sets)
    }
}

/// SINTER, SUNION, SDIFF key [key ...]: a RESP3 set (an array in RESP2); a missing key
/// is an empty set.
pub fn algebra(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, keys @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let sets = sets_of(ks, keys, now_ms)?;
        Ok(Reply::Set(members(&combine(&sets, argv))))
    })
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE destination key [key ...]: stores the result
/// (a new value: new token, no deadline) and answers its size; an empty result removes
/// the destination. A lock at the destination is WRONGTYPE: a lock is never replaced.
pub fn algebra_store(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, destination, keys @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let result: Set = {
            let sets = sets_of(ks, keys, now_ms)?;
            combine(&sets, argv).into_iter().collect()
        };
        let len = result.len();
        ks.store_result(destination, Value::Set(Box::new(result)), len, now_ms)
    })
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]: the size of the intersection,
/// counted up to `limit` (0: no limit).
pub fn sintercard(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, numkeys, rest @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let numkeys = parse_i64(numkeys)
            .filter(|&n| n >= 1)
            .ok_or_else(|| Reply::error("ERR numkeys should be greater than 0"))?;
        let numkeys = usize::try_from(numkeys)
            .ok()
            .filter(|&n| n <= rest.len())
            .ok_or_else(|| {
                Reply::error("ERR Number of keys can't be greater than number of args")
            })?;
        let (keys, mut options) = rest.split_at(numkeys);
        let mut limit = 0usize;
        while let [option, tail @ ..] = options {
            match tail {
                [value, tail @ ..] if option.eq_ignore_ascii_case(b"limit") => {
                    limit = parse_i64(value)
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| Reply::error("ERR LIMIT can't be negative"))?;
                    options = tail;
                }
                _ => return Err(Reply::syntax_error()),
            }
        }
        let sets = sets_of(ks, keys, now_ms)?;
        let limit = if limit == 0 { usize::MAX } else { limit };
        Ok(Reply::Int(intersection(&sets, limit).len() as i64))
    })
}

/// SMOVE source destination member: 1 if the member moved (or is in the source when
/// both are the same set), 0 if the source does not hold it.
pub fn smove(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, source, destination, member] = argv else {
            return Err(wrong_arity(argv));
        };
        let Some(held) = set_of(ks, source, now_ms)?.map(|set| set.contains(member.as_ref()))
        else {
            return Ok(Reply::Int(0));
        };
        set_of(ks, destination, now_ms)?;
        if source == destination || !held {
            return Ok(Reply::Int(i64::from(held)));
        }
        update_set(ks, source, now_ms, false, |set| {
            (set.swap_remove(member.as_ref()), true)
        })?;
        update_set(ks, destination, now_ms, true, |set| {
            let added = set.insert(copy(member));
            (added, added)
        })?;
        Ok(Reply::Int(1))
    })
}

#[cfg(test)]
#[path = "sets_tests.rs"]
mod tests;
