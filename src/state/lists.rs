//! List commands, with Redis 7's replies and errors. A list is never empty: the command
//! that takes its last element removes the key. Every change of a list gives the key a new
//! fencing token; reading it does not.
//!
//! The blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH) are plain writes here: they pop
//! if they can and answer nil if not, as inside MULTI in Redis. Waiting is the node's job
//! (`server::list_waiters`): it proposes the pop again when apply reports a push.

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;

use super::{invoked_as, run, wrong_arity, Keyspace};
use crate::command::args::{parse_f64, parse_i64};
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
fn list_at<'a>(
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
        let [_, keys @ .., timeout] = argv else {
            return Err(wrong_arity(argv));
        };
        if keys.is_empty() {
            return Err(wrong_arity(argv));
        }
        parse_timeout_ms(timeout)?;
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

/// A blocking pop as the node sees it: the keys whose pushes may serve it and how long
/// it may wait.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockingPop {
    /// Each key once, in the order given.
    pub keys: Vec<Bytes>,
    /// 0: without limit.
    pub timeout_ms: u64,
}

impl BlockingPop {
    /// `None` when `argv` is not a blocking pop, or has an argument the state machine
    /// will refuse (it then answers the error and nobody waits).
    pub fn parse(argv: &[Bytes]) -> Option<BlockingPop> {
        let name = argv.first()?;
        let (keys, timeout): (&[Bytes], &Bytes) =
            if name.eq_ignore_ascii_case(b"blpop") || name.eq_ignore_ascii_case(b"brpop") {
                match argv {
                    [_, keys @ .., timeout] if !keys.is_empty() => (keys, timeout),
                    _ => return None,
                }
            } else if name.eq_ignore_ascii_case(b"blmove") {
                match argv {
                    [_, source, _, from, to, timeout] => {
                        End::parse(from).ok()?;
                        End::parse(to).ok()?;
                        (std::slice::from_ref(source), timeout)
                    }
                    _ => return None,
                }
            } else if name.eq_ignore_ascii_case(b"brpoplpush") {
                match argv {
                    [_, source, _, timeout] => (std::slice::from_ref(source), timeout),
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
        Some(BlockingPop { keys, timeout_ms })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::tests::{bulk, bulks, err, int, Harness};
    use super::super::Event;
    use super::BlockingPop;
    use crate::reply::Reply;

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    const NOT_INT: &str = "ERR value is not an integer or out of range";
    const NOT_POSITIVE: &str = "ERR value is out of range, must be positive";
    const SYNTAX: &str = "ERR syntax error";

    fn pushed(key: &str) -> Event {
        Event::ListPushed(Bytes::copy_from_slice(key.as_bytes()))
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
                timeout_ms: 1500
            })
        );
        assert_eq!(
            parse("blmove src dst left right 0"),
            Some(BlockingPop {
                keys: keys(&["src"]),
                timeout_ms: 0
            })
        );
        assert_eq!(
            parse("brpoplpush src dst 2"),
            Some(BlockingPop {
                keys: keys(&["src"]),
                timeout_ms: 2000
            })
        );
        assert_eq!(parse("blpop a -1"), None);
        assert_eq!(parse("blpop 0"), None);
        assert_eq!(parse("blmove s d left nowhere 0"), None);
        assert_eq!(parse("lpop a"), None);
    }
}
