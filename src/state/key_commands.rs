//! Generic key commands: existence, type, deadlines, listing and renaming.

use std::collections::BinaryHeap;

use bytes::Bytes;

use super::sets::Draws;
use super::{glob, invoked_as, now_i64, run, wrong_arity, Key, Keyspace, Ttl};
use crate::args::parse_i64;
use crate::reply::Reply;

/// DEL key [key ...], UNLINK key [key ...]: how many of the keys existed.
pub fn del(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    let keys = argv.get(1..).unwrap_or_default();
    let removed = keys
        .iter()
        .filter(|key| {
            // DEL of a lock ends every hold; the queue stays and is served in order. The
            // type is checked first: most keys deleted are strings, and `with_lock` on one
            // builds a WRONGTYPE reply only to drop it.
            let is_lock = ks
                .get(key, now_ms)
                .is_some_and(|entry| entry.as_lock().is_some());
            if is_lock {
                let released = ks.with_lock(key, now_ms, false, |lock, fx| {
                    lock.force_release(now_ms, fx)
                });
                if let Ok(Some(())) = released {
                    return true;
                }
            }
            ks.remove_live(key, now_ms).is_some()
        })
        .count();
    Reply::Int(removed as i64)
}

/// EXISTS key [key ...]: a key named twice counts twice, as in Redis.
pub fn exists(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    let keys = argv.get(1..).unwrap_or_default();
    let found = keys
        .iter()
        .filter(|key| ks.get(key, now_ms).is_some())
        .count();
    Reply::Int(found as i64)
}

/// TYPE key
pub fn type_of(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    let [_, key] = argv else {
        return wrong_arity(argv);
    };
    let name = ks
        .get(key, now_ms)
        .map_or("none", |entry| entry.value.type_name());
    Reply::status(name)
}

/// EXPIRE / PEXPIRE / EXPIREAT / PEXPIREAT key time [NX | XX | GT | LT], with Redis 7's
/// rules: a key without a deadline counts as an infinite one for GT and LT, and a
/// deadline at or before now removes the key (and answers 1).
pub fn expire(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, time, options @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let (in_seconds, relative) = if invoked_as(argv, "expire") {
            (true, true)
        } else if invoked_as(argv, "pexpire") {
            (false, true)
        } else if invoked_as(argv, "expireat") {
            (true, false)
        } else {
            (false, false)
        };
        let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
        for option in options {
            let flag = if option.eq_ignore_ascii_case(b"nx") {
                &mut nx
            } else if option.eq_ignore_ascii_case(b"xx") {
                &mut xx
            } else if option.eq_ignore_ascii_case(b"gt") {
                &mut gt
            } else if option.eq_ignore_ascii_case(b"lt") {
                &mut lt
            } else {
                return Err(Reply::Error(format!(
                    "ERR Unsupported option {}",
                    String::from_utf8_lossy(option)
                )));
            };
            *flag = true;
        }
        if nx && (xx || gt || lt) {
            return Err(Reply::error(
                "ERR NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if gt && lt {
            return Err(Reply::error(
                "ERR GT and LT options at the same time are not compatible",
            ));
        }
        let when = parse_i64(time).ok_or_else(Reply::not_integer)?;
        let invalid = || {
            Reply::Error(format!(
                "ERR invalid expire time in '{}' command",
                super::command_name(argv)
            ))
        };
        let when = if in_seconds {
            when.checked_mul(1000).ok_or_else(invalid)?
        } else {
            when
        };
        let when = if relative {
            when.checked_add(now_i64(now_ms)).ok_or_else(invalid)?
        } else {
            // A Unix time: where the leader's wall clock puts it in cluster time.
            ks.cluster_ms_from_wall(when)
        };

        let Some(entry) = ks.get_for_write(key, now_ms) else {
            return Ok(Reply::Int(0));
        };
        if entry.as_lock().is_some() {
            // A lock ends by its leases, UNLOCK or DEL, not by a key deadline.
            return Err(Reply::wrong_type());
        }
        let current = entry.deadline_ms().map(|deadline| deadline as i64);
        let refused = (nx && current.is_some())
            || (xx && current.is_none())
            || (gt && current.is_none_or(|current| when <= current))
            || (lt && current.is_some_and(|current| when >= current));
        if refused {
            return Ok(Reply::Int(0));
        }
        ks.set_deadline(key, Some(when), now_ms);
        Ok(Reply::Int(1))
    })
}

/// TTL / PTTL / EXPIRETIME / PEXPIRETIME key: -2 without the key, -1 without a deadline;
/// seconds are rounded to nearest, as Redis does.
pub fn ttl(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    let [_, key] = argv else {
        return wrong_arity(argv);
    };
    let Some(entry) = ks.get(key, now_ms) else {
        return Reply::Int(-2);
    };
    let Some(deadline) = entry.deadline_ms() else {
        return Reply::Int(-1);
    };
    let (in_ms, absolute) = if invoked_as(argv, "pttl") {
        (true, false)
    } else if invoked_as(argv, "expiretime") {
        (false, true)
    } else if invoked_as(argv, "pexpiretime") {
        (true, true)
    } else {
        (false, false)
    };
    let ms = if absolute {
        ks.wall_ms_from_cluster(deadline)
    } else {
        now_i64(deadline.saturating_sub(now_ms))
    };
    Reply::Int(if in_ms {
        ms
    } else {
        ms.saturating_add(500) / 1000
    })
}

/// PERSIST key: 1 if a deadline was removed.
pub fn persist(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    let [_, key] = argv else {
        return wrong_arity(argv);
    };
    match ks.get_for_write(key, now_ms) {
        Some(entry) if entry.deadline_ms().is_some() => {
            ks.set_deadline(key, None, now_ms);
            Reply::Int(1)
        }
        _ => Reply::Int(0),
    }
}

/// KEYS pattern: every live key matching the glob, sorted so every node answers alike.
/// `*` alone takes every key, the empty one included, as in Redis.
pub fn keys(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    let [_, pattern] = argv else {
        return wrong_arity(argv);
    };
    let all = pattern.as_ref() == b"*";
    let mut found: Vec<&Key> = ks
        .live_entries(now_ms)
        .map(|(key, _)| key)
        .filter(|key| all || glob::matches(pattern, key))
        .collect();
    found.sort_unstable();
    Reply::Array(
        found
            .into_iter()
            .map(|key| Reply::Bulk(Bytes::copy_from_slice(key)))
            .collect(),
    )
}

/// The order SCAN walks keys in: FNV-1a, 64 bits. Fixed and seedless, so a cursor means
/// the same thing on every node and after a restart or a change of leader.
pub(crate) fn scan_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// SCAN's cursor: a decimal `u64`, else `ERR invalid cursor`.
pub(crate) fn parse_cursor(cursor: &[u8]) -> Result<u64, Reply> {
    std::str::from_utf8(cursor)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| Reply::error("ERR invalid cursor"))
}

/// The options of SCAN and SSCAN: `MATCH pattern`, `COUNT count`, and for SCAN only
/// `TYPE type`, in any order, each followed by its value.
pub(crate) struct ScanOptions<'a> {
    pub count: usize,
    /// `None` for no pattern, or `*`, which matches everything.
    pub pattern: Option<&'a Bytes>,
    pub type_name: Option<&'a Bytes>,
}

impl<'a> ScanOptions<'a> {
    pub(crate) fn parse(options: &'a [Bytes], allow_type: bool) -> Result<Self, Reply> {
        let mut parsed = ScanOptions {
            count: 10,
            pattern: None,
            type_name: None,
        };
        let mut rest = options;
        while let [option, value, tail @ ..] = rest {
            if option.eq_ignore_ascii_case(b"count") {
                let n = parse_i64(value).ok_or_else(Reply::not_integer)?;
                if n < 1 {
                    return Err(Reply::syntax_error());
                }
                parsed.count = usize::try_from(n).unwrap_or(usize::MAX);
            } else if option.eq_ignore_ascii_case(b"match") {
                parsed.pattern = (value.as_ref() != b"*").then_some(value);
            } else if allow_type && option.eq_ignore_ascii_case(b"type") {
                parsed.type_name = Some(value);
            } else {
                return Err(Reply::syntax_error());
            }
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(Reply::syntax_error());
        }
        Ok(parsed)
    }

    pub(crate) fn matches(&self, name: &[u8]) -> bool {
        self.pattern
            .is_none_or(|pattern| glob::matches(pattern, name))
    }
}

/// One page of a walk in `scan_hash` order (SCAN's keys, SSCAN's members): the `count`
/// items with the smallest hashes at or above `cursor`, plus any others sharing the last
/// of those hashes, in hash order, and the next cursor (that hash + 1, 0 when nothing is
/// left). So an item present for the whole walk is returned exactly once, however the
/// collection changes in between. Two passes over `items`, O(count) memory.
pub(crate) fn scan_page<'a, T>(
    items: impl Iterator<Item = (&'a [u8], T)> + Clone,
    cursor: u64,
    count: usize,
) -> (u64, Vec<(&'a [u8], T)>) {
    // First pass: the COUNT smallest hashes at or above the cursor (a max-heap).
    let mut smallest = BinaryHeap::new();
    let mut more_left = false;
    for (name, _) in items.clone() {
        let hash = scan_hash(name);
        if hash < cursor {
            continue;
        }
        if smallest.len() < count {
            smallest.push(hash);
        } else {
            more_left = true;
            if smallest.peek().is_some_and(|&largest| hash < largest) {
                smallest.pop();
                smallest.push(hash);
            }
        }
    }
    let last = if more_left {
        smallest.peek().copied()
    } else {
        None
    };
    let next_cursor = last.and_then(|last| last.checked_add(1)).unwrap_or(0);
    let last = last.unwrap_or(u64::MAX);

    // Second pass: every item in [cursor, last], ties at `last` included.
    let mut page: Vec<(u64, &'a [u8], T)> = items
        .map(|(name, item)| (scan_hash(name), name, item))
        .filter(|(hash, _, _)| (cursor..=last).contains(hash))
        .collect();
    page.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let page = page
        .into_iter()
        .map(|(_, name, item)| (name, item))
        .collect();
    (next_cursor, page)
}

/// The reply of SCAN and SSCAN: the next cursor and the names.
pub(crate) fn scan_reply<'a>(next_cursor: u64, names: impl Iterator<Item = &'a [u8]>) -> Reply {
    let names = names
        .map(|name| Reply::Bulk(Bytes::copy_from_slice(name)))
        .collect();
    scan_reply_items(next_cursor, names)
}

/// A SCAN-family reply from items already made (HSCAN's and ZSCAN's pairs).
pub(crate) fn scan_reply_items(next_cursor: u64, items: Vec<Reply>) -> Reply {
    Reply::Array(vec![
        Reply::Bulk(Bytes::from(next_cursor.to_string())),
        Reply::Array(items),
    ])
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type].
///
/// Keys are visited in order of `scan_hash`; the cursor is the hash to resume from
/// (`scan_page`). MATCH and TYPE filter after the selection, as in Redis, so a call may
/// return fewer keys than COUNT, even none, before the end.
///
/// Each call walks the whole keyspace (O(n) time, O(COUNT) memory): there is no
/// ordered index by hash, to keep writes cheap.
pub fn scan(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, cursor, options @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let cursor = parse_cursor(cursor)?;
        let options = ScanOptions::parse(options, true)?;
        let keys = ks
            .live_entries(now_ms)
            .map(|(key, entry)| (key.as_ref(), entry));
        let (next_cursor, page) = scan_page(keys, cursor, options.count);
        let keys = page
            .into_iter()
            .filter(|(key, entry)| {
                options.matches(key)
                    && options.type_name.is_none_or(|name| {
                        name.eq_ignore_ascii_case(entry.value.type_name().as_bytes())
                    })
            })
            .map(|(key, _)| key);
        Ok(scan_reply(next_cursor, keys))
    })
}

/// RENAME key newkey, RENAMENX key newkey: the value and its deadline move; the
/// destination's value gets a new fencing token, since a holder of the old destination's
/// token must be fenced off. RENAMENX answers 0 and changes nothing when the destination
/// exists, 1 when it renamed.
pub fn rename(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    let [_, source, destination] = argv else {
        return wrong_arity(argv);
    };
    let nx = invoked_as(argv, "renamenx");
    if ks.get_for_write(source, now_ms).is_none() {
        return Reply::error("ERR no such key");
    }
    // Waiting clients know a lock by its name: a lock is neither moved nor replaced.
    if let Err(wrong_type) = ks
        .refuse_lock(source, now_ms)
        .and_then(|()| ks.refuse_lock(destination, now_ms))
    {
        return wrong_type;
    }
    let refused = source == destination || (nx && ks.get(destination, now_ms).is_some());
    if refused {
        return if nx { Reply::Int(0) } else { Reply::Ok };
    }
    let Some(entry) = ks.remove(source) else {
        return Reply::error("ERR no such key");
    };
    let ttl = match entry.deadline_ms() {
        Some(deadline) => Ttl::At(deadline as i64),
        None => Ttl::Clear,
    };
    ks.store(destination, entry.value, ttl, now_ms);
    if nx {
        Reply::Int(1)
    } else {
        Reply::Ok
    }
}

/// COPY source destination [DB db] [REPLACE]: copies the value and its deadline; 1 if
/// copied, 0 when the source is missing or the destination exists without REPLACE. The
/// copy takes a new fencing token. raftlock has one database: `DB 0` only. A lock is
/// never copied nor replaced (WRONGTYPE).
pub fn copy(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, source, destination, options @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let mut replace = false;
        let mut rest = options;
        while let [option, tail @ ..] = rest {
            rest = tail;
            if option.eq_ignore_ascii_case(b"replace") {
                replace = true;
            } else if let (true, [db, tail @ ..]) = (option.eq_ignore_ascii_case(b"db"), tail) {
                let db = parse_i64(db).ok_or_else(Reply::not_integer)?;
                if db != 0 {
                    return Err(Reply::error("ERR DB index is out of range"));
                }
                rest = tail;
            } else {
                return Err(Reply::syntax_error());
            }
        }
        if source == destination {
            return Err(Reply::error(
                "ERR source and destination objects are the same",
            ));
        }
        let Some(entry) = ks.get(source, now_ms) else {
            return Ok(Reply::Int(0));
        };
        if entry.as_lock().is_some() {
            return Err(Reply::wrong_type());
        }
        let (value, deadline) = (entry.value.clone(), entry.deadline_ms());
        if ks.get_for_write(destination, now_ms).is_some() {
            if !replace {
                return Ok(Reply::Int(0));
            }
            ks.refuse_lock(destination, now_ms)?;
        }
        let ttl = deadline.map_or(Ttl::Clear, |deadline| Ttl::At(deadline as i64));
        ks.store(destination, value, ttl, now_ms);
        Ok(Reply::Int(1))
    })
}

/// RANDOMKEY: a live key chosen with numbers seeded by the op's place in the log (as
/// SRANDMEMBER), nil when there is none: the first key at or after a random point of
/// SCAN's hash order (wrapping around), so the choice depends on the keys alone, not on
/// where the key table holds them (a replica restored from a snapshot holds them in
/// another order). O(keys).
pub fn randomkey(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    let [_] = argv else {
        return wrong_arity(argv);
    };
    let point = Draws::new(ks, now_ms).next();
    ks.live_entries(now_ms)
        .map(|(key, _)| (scan_hash(key).wrapping_sub(point), key))
        .min()
        .map_or(Reply::Nil, |(_, key)| {
            Reply::Bulk(Bytes::copy_from_slice(key))
        })
}

#[cfg(test)]
#[path = "key_commands_tests.rs"]
mod tests;
