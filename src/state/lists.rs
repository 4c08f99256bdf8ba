//! List commands, with Redis 7's replies and errors. A list is never empty: the command
//! that takes its last element removes the key. Every change of a list gives the key a new
//! fencing token; reading it does not.
//!
//! The blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, and the sorted sets'
//! BZPOPMIN, BZPOPMAX, BZMPOP) are plain writes here: they pop
//! if they can and answer nil if not, as inside MULTI in Redis. Waiting is the node's job
//! (`server::list_waiters`): it proposes the pop again when apply reports a push.

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;

use super::multi_pop::MultiPop;
use super::{invoked_as, run, wrong_arity, Keyspace};
use crate::args::{parse_f64, parse_i64};
use crate::reply::Reply;

/// Which end of a list a command works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Left,
    Right,
}

impl End {
    fn parse(arg: &[u8]) -> Result<End, Reply> {
        if arg.eq_ignore_ascii_case(b"left") {
            Ok(End::Left)
        } else if arg.eq_ignore_ascii_case(b"right") {
            Ok(End::Right)
        } else {
            Err(Reply::syntax_error())
        }
    }

    fn pop(self, list: &mut VecDeque<Bytes>) -> Option<Bytes> {
        match self {
            End::Left => list.pop_front(),
            End::Right => list.pop_back(),
        }
    }

    fn push(self, list: &mut VecDeque<Bytes>, value: Bytes) {
        match self {
            End::Left => list.push_front(value),
            End::Right => list.push_back(value),
        }
    }
}

/// The list at `key` for a read: `None` if missing, WRONGTYPE for another type.
pub(super) fn list_at<'a>(
    ks: &'a Keyspace,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'a VecDeque<Bytes>>, Reply> {
    ks.get(key, now_ms).map(|entry| entry.as_list()).transpose()
}

fn integer(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(Reply::not_integer)
}

/// The `[start, end]` range an LRANGE/LTRIM pair of indexes names in a list of `len`
/// elements, negative indexes counting from the tail; `None` when it is empty.
fn index_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

/// LPUSH, RPUSH, LPUSHX, RPUSHX key element [element ...]: the new length; the X forms
/// push only onto an existing list and answer 0 otherwise.
pub fn push(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, values @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        if values.is_empty() {
            return Err(wrong_arity(argv));
        }
        let end = if invoked_as(argv, "lpush") || invoked_as(argv, "lpushx") {
            End::Left
        } else {
            End::Right
        };
        let create = invoked_as(argv, "lpush") || invoked_as(argv, "rpush");
        let len = ks.with_list(key, now_ms, create, |list| {
            for value in values {
                // Copied, so the list does not pin the buffer the argument came in.
                end.push(list, Bytes::copy_from_slice(value));
            }
            (list.len(), true)
        })?;
        Ok(Reply::Int(len.unwrap_or(0) as i64))
    })
}

/// LPOP, RPOP key [count]: without a count the element or nil; with one an array of up
/// to `count` elements, or a nil array when the key is missing.
pub fn pop(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let (key, count) = match argv {
            [_, key] => (key, None),
            [_, key, count] => {
                let count = parse_i64(count)
                    .filter(|count| *count >= 0)
                    .ok_or_else(|| Reply::error("ERR value is out of range, must be positive"))?;
                (key, Some(count as usize))
            }
            _ => return Err(wrong_arity(argv)),
        };
        let end = if invoked_as(argv, "lpop") {
            End::Left
        } else {
            End::Right
        };
        let popped = ks.with_list(key, now_ms, false, |list| match count {
            None => (end.pop(list).map_or(Reply::Nil, Reply::Bulk), true),
            Some(0) => (Reply::Array(Vec::new()), false),
            Some(count) => {
                let taken = (0..count.min(list.len()))
                    .filter_map(|_| end.pop(list))
                    .map(Reply::Bulk)
                    .collect();
                (Reply::Array(taken), true)
            }
        })?;
        Ok(match (popped, count) {
            (Some(reply), _) => reply,
            (None, None) => Reply::Nil,
            (None, Some(_)) => Reply::NilArray,
        })
    })
}

/// LLEN key: 0 for a missing key.
pub fn llen(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key] = argv else {
            return Err(wrong_arity(argv));
        };
        let len = list_at(ks, key, now_ms)?.map_or(0, VecDeque::len);
        Ok(Reply::Int(len as i64))
    })
}

/// LRANGE key start stop: the elements from `start` to `stop` inclusive.
pub fn lrange(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, start, end] = argv else {
            return Err(wrong_arity(argv));
        };
        let (start, end) = (integer(start)?, integer(end)?);
        let Some(list) = list_at(ks, key, now_ms)? else {
            return Ok(Reply::Array(Vec::new()));
        };
        let items = match index_range(start, end, list.len()) {
            Some((first, last)) => list
                .range(first..=last)
                .map(|item| Reply::Bulk(item.clone()))
                .collect(),
            None => Vec::new(),
        };
        Ok(Reply::Array(items))
    })
}

/// LINDEX key index: the element, or nil when the index is out of range.
pub fn lindex(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, index] = argv else {
            return Err(wrong_arity(argv));
        };
        // Redis looks the key up before it parses the index.
        let Some(list) = list_at(ks, key, now_ms)? else {
            return Ok(Reply::Nil);
        };
        let index = integer(index)?;
        let index = if index < 0 {
            list.len() as i64 + index
        } else {
            index
        };
        let item = usize::try_from(index).ok().and_then(|i| list.get(i));
        Ok(item.map_or(Reply::Nil, |item| Reply::Bulk(item.clone())))
    })
}

/// LREM key count element: removes the first `count` occurrences (from the tail when
/// negative, all when 0); the number removed.
pub fn lrem(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, count, element] = argv else {
            return Err(wrong_arity(argv));
        };
        let count = integer(count)?;
        let limit = match count {
            0 => usize::MAX,
            count => usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX),
        };
        let removed = ks.with_list(key, now_ms, false, |list| {
            let mut removed = 0;
            let mut matches = |item: &Bytes| {
                let hit = removed < limit && item == element;
                removed += usize::from(hit);
                hit
            };
            if count >= 0 {
                list.retain(|item| !matches(item));
            } else {
                let mut kept = VecDeque::with_capacity(list.len());
                while let Some(item) = list.pop_back() {
                    if !matches(&item) {
                        kept.push_front(item);
                    }
                }
                *list = kept;
            }
            (removed, removed > 0)
        })?;
        Ok(Reply::Int(removed.unwrap_or(0) as i64))
    })
}

/// LTRIM key start stop: keeps only the elements from `start` to `stop`; OK even for a
/// missing key.
pub fn ltrim(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, start, end] = argv else {
            return Err(wrong_arity(argv));
        };
        let (start, end) = (integer(start)?, integer(end)?);
        ks.with_list(key, now_ms, false, |list| {
            let len = list.len();
            match index_range(start, end, len) {
                Some((first, last)) => {
                    list.truncate(last + 1);
                    list.drain(..first);
                }
                None => list.clear(),
            }
            ((), list.len() != len)
        })?;
        Ok(Reply::Ok)
    })
}

/// Moves one element from `source`'s `from` end to `destination`'s `to` end: the element,
/// or nil when `source` is missing. Like Redis, checks the destination's type before it
/// takes anything from the source.
fn move_element(
    ks: &mut Keyspace,
    now_ms: u64,
    source: &[u8],
    destination: &[u8],
    from: End,
    to: End,
) -> Result<Reply, Reply> {
    if list_at(ks, source, now_ms)?.is_none() {
        return Ok(Reply::Nil);
    }
    list_at(ks, destination, now_ms)?;
    let moved = if source == destination {
        // One list: the element goes round, and the key never disappears in between
        // (its deadline stays, even for a single element).
        ks.with_list(source, now_ms, false, |list| {
            let value = from.pop(list);
            if let Some(value) = &value {
                to.push(list, value.clone());
            }
            let changed = value.is_some();
            (value, changed)
        })?
        .flatten()
    } else {
        let value = ks
            .with_list(source, now_ms, false, |list| {
                let value = from.pop(list);
                let changed = value.is_some();
                (value, changed)
            })?
            .flatten();
        if let Some(value) = &value {
            ks.with_list(destination, now_ms, true, |list| {
                to.push(list, value.clone());
                ((), true)
            })?;
        }
        value
    };
    Ok(moved.map_or(Reply::Nil, Reply::Bulk))
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn lmove(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, source, destination, from, to] = argv else {
            return Err(wrong_arity(argv));
        };
        let (from, to) = (End::parse(from)?, End::parse(to)?);
        move_element(ks, now_ms, source, destination, from, to)
    })
}

/// RPOPLPUSH source destination: LMOVE source destination RIGHT LEFT.
pub fn rpoplpush(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, source, destination] = argv else {
            return Err(wrong_arity(argv));
        };
        move_element(ks, now_ms, source, destination, End::Right, End::Left)
    })
}

/// A blocking pop's timeout in whole milliseconds (0 = wait forever), checked as Redis's
/// `getTimeoutFromObjectOrReply` does: seconds as a float, rounded up to a millisecond.
pub fn parse_timeout_ms(arg: &[u8]) -> Result<u64, Reply> {
    let seconds =
        parse_f64(arg).ok_or_else(|| Reply::error("ERR timeout is not a float or out of range"))?;
    let ms = (seconds * 1000.0).ceil();
    if ms > i64::MAX as f64 {
        return Err(Reply::error("ERR timeout is out of range"));
    }
    if ms < 0.0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    Ok(ms as u64)
}

/// BLPOP, BRPOP key [key ...] timeout: `[key, element]` from the first key that holds a
/// list, or a nil array (the node then waits for a push).
pub fn blocking_pop(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let keys = keys_then_timeout(argv)?;
        let end = if invoked_as(argv, "blpop") {
            End::Left
        } else {
            End::Right
        };
        for key in keys {
            let popped = ks.with_list(key, now_ms, false, |list| {
                let value = end.pop(list);
                let changed = value.is_some();
                (value, changed)
            })?;
            if let Some(value) = popped.flatten() {
                return Ok(Reply::Array(vec![
                    Reply::Bulk(key.clone()),
                    Reply::Bulk(value),
                ]));
            }
        }
        Ok(Reply::NilArray)
    })
}

/// The keys of `BLPOP key [key ...] timeout` and its kind (BRPOP, BZPOPMIN...), once the
/// timeout is checked.
pub(super) fn keys_then_timeout(argv: &[Bytes]) -> Result<&[Bytes], Reply> {
    match argv {
        [_, keys @ .., timeout] if !keys.is_empty() => {
            parse_timeout_ms(timeout)?;
            Ok(keys)
        }
        _ => Err(wrong_arity(argv)),
    }
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout: LMOVE, nil when `source`
/// is missing (the node then waits for a push to it).
pub fn blmove(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, source, destination, from, to, timeout] = argv else {
            return Err(wrong_arity(argv));
        };
        let (from, to) = (End::parse(from)?, End::parse(to)?);
        parse_timeout_ms(timeout)?;
        move_element(ks, now_ms, source, destination, from, to)
    })
}

/// BRPOPLPUSH source destination timeout: BLMOVE source destination RIGHT LEFT timeout.
pub fn brpoplpush(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, source, destination, timeout] = argv else {
            return Err(wrong_arity(argv));
        };
        parse_timeout_ms(timeout)?;
        move_element(ks, now_ms, source, destination, End::Right, End::Left)
    })
}

/// What a blocking pop takes from: the wake-ups it waits for are pushes to lists, or
/// members added to sorted sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    List,
    Zset,
}

impl Holds {
    /// Whether `entry` holds what such a pop takes.
    pub fn matches(self, entry: &super::Entry) -> bool {
        match self {
            Holds::List => entry.as_list().is_ok(),
            Holds::Zset => matches!(entry.value, super::Value::Zset(_)),
        }
    }
}

/// A blocking pop as the node sees it: the keys whose pushes may serve it and how long
/// it may wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockingPop {
    /// Each key once, in the order given.
    pub keys: Vec<Bytes>,
    /// 0: without limit.
    pub timeout_ms: u64,
    pub holds: Holds,
}

impl BlockingPop {
    /// `None` when `argv` is not a blocking pop, or has an argument the state machine
    /// will refuse (it then answers the error and nobody waits).
    pub fn parse(argv: &[Bytes]) -> Option<BlockingPop> {
        let name = argv.first()?;
        let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
        let keys_then_timeout = || match argv {
            [_, keys @ .., timeout] if !keys.is_empty() => Some((keys, timeout)),
            _ => None,
        };
        let multi_pop = |ends| {
            let [_, timeout, args @ ..] = argv else {
                return None;
            };
            Some((MultiPop::parse(args, ends).ok()?.keys, timeout))
        };
        let (keys, timeout, holds): (&[Bytes], &Bytes, Holds) = if is("blpop") || is("brpop") {
            let (keys, timeout) = keys_then_timeout()?;
            (keys, timeout, Holds::List)
        } else if is("bzpopmin") || is("bzpopmax") {
            let (keys, timeout) = keys_then_timeout()?;
            (keys, timeout, Holds::Zset)
        } else if is("blmpop") {
            let (keys, timeout) = multi_pop(["left", "right"])?;
            (keys, timeout, Holds::List)
        } else if is("bzmpop") {
            let (keys, timeout) = multi_pop(["min", "max"])?;
            (keys, timeout, Holds::Zset)
        } else if is("blmove") {
            match argv {
                [_, source, _, from, to, timeout] => {
                    End::parse(from).ok()?;
                    End::parse(to).ok()?;
                    (std::slice::from_ref(source), timeout, Holds::List)
                }
                _ => return None,
            }
        } else if is("brpoplpush") {
            match argv {
                [_, source, _, timeout] => (std::slice::from_ref(source), timeout, Holds::List),
                _ => return None,
            }
        } else {
            return None;
        };
        let timeout_ms = parse_timeout_ms(timeout).ok()?;
        let mut seen = HashSet::with_capacity(keys.len());
        let keys = keys
            .iter()
            .filter(|key| seen.insert(*key))
            .cloned()
            .collect();
        Some(BlockingPop {
            keys,
            timeout_ms,
            holds,
        })
    }
}

#[cfg(test)]
#[path = "lists_tests.rs"]
mod tests;
