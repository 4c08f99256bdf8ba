//! Sorted set commands (the value itself is `sorted_set`). Every change takes a new
//! fencing token and keeps the key's deadline; a sorted set whose last member goes is
//! removed.

use bytes::Bytes;

use super::key_commands::{parse_cursor, scan_page, scan_reply, scan_reply_items, ScanOptions};
use super::sets::Draws;
use super::sorted_set::{LexRange, ScoreRange, SortedSet};
use super::{invoked_as, run, wrong_arity, Keyspace, Value};
use crate::args::{parse_f64, parse_i64};
use crate::config::state_limits::MAX_RANDOM_MEMBERS;
use crate::reply::Reply;
use crate::resp::double_text;

const NOT_FLOAT: &str = "ERR value is not a valid float";

/// The sorted set at `key` for a read: `None` for a missing key, WRONGTYPE for another
/// type.
fn zset_of<'a>(ks: &'a Keyspace, key: &[u8], now_ms: u64) -> Result<Option<&'a SortedSet>, Reply> {
    match ks.get(key, now_ms).map(|entry| &entry.value) {
        None => Ok(None),
        Some(Value::Zset(zset)) => Ok(Some(zset)),
        Some(_) => Err(Reply::wrong_type()),
    }
}

/// Runs `f` on the sorted set at `key`, created empty when missing if `create` is set.
/// `f` answers its result and whether it changed the set. `Ok(None)`: no sorted set and
/// none created.
pub(super) fn update_zset<R>(
    ks: &mut Keyspace,
    key: &[u8],
    now_ms: u64,
    create: bool,
    f: impl FnOnce(&mut SortedSet) -> (R, bool),
) -> Result<Option<R>, Reply> {
    if let Some(entry) = ks.get_for_write(key, now_ms) {
        if !matches!(entry.value, Value::Zset(_)) {
            return Err(Reply::wrong_type());
        }
    }
    let empty = create.then(|| Value::Zset(Box::default()));
    Ok(ks.update(key, now_ms, empty, |value| match value {
        Value::Zset(zset) => f(zset),
        _ => unreachable!("checked to be a sorted set above"),
    }))
}

/// ZADD's options (Redis's `zaddGenericCommand`).
#[derive(Default)]
struct AddOptions {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What ZADD did to one member.
enum AddOutcome {
    Added,
    Updated,
    /// The member's score stayed (the same score, or INCR by 0).
    Unchanged,
    /// NX, XX, GT or LT refused it.
    Skipped,
}

impl AddOptions {
    /// Adds or updates one member as Redis's `zsetAdd` does: the outcome and the score
    /// the member has after it, or Redis's NaN error for an INCR of inf by -inf.
    fn apply(
        &self,
        zset: &mut SortedSet,
        member: &[u8],
        score: f64,
    ) -> Result<(AddOutcome, f64), Reply> {
        let Some(current) = zset.score(member) else {
            if self.xx {
                return Ok((AddOutcome::Skipped, score));
            }
            zset.insert(Bytes::copy_from_slice(member), score);
            return Ok((AddOutcome::Added, score));
        };
        if self.nx {
            return Ok((AddOutcome::Skipped, current));
        }
        let new = if self.incr {
            let sum = current + score;
            if sum.is_nan() {
                return Err(Reply::error("ERR resulting score is not a number (NaN)"));
            }
            sum
        } else {
            score
        };
        if (self.lt && new >= current) || (self.gt && new <= current) {
            return Ok((AddOutcome::Skipped, current));
        }
        if new == current {
            return Ok((AddOutcome::Unchanged, new));
        }
        zset.insert(Bytes::copy_from_slice(member), new);
        Ok((AddOutcome::Updated, new))
    }
}

/// ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]: how many
/// members were added (also updated, with CH); with INCR the new score, or nil if an
/// option refused it.
pub fn zadd(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, rest @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let mut options = AddOptions::default();
        let mut rest = rest;
        while let [option, tail @ ..] = rest {
            let is = |word: &str| option.eq_ignore_ascii_case(word.as_bytes());
            if is("nx") {
                options.nx = true;
            } else if is("xx") {
                options.xx = true;
            } else if is("gt") {
                options.gt = true;
            } else if is("lt") {
                options.lt = true;
            } else if is("ch") {
                options.ch = true;
            } else if is("incr") {
                options.incr = true;
            } else {
                break;
            }
            rest = tail;
        }
        if rest.is_empty() || rest.len() % 2 != 0 {
            return Err(Reply::syntax_error());
        }
        if options.nx && options.xx {
            return Err(Reply::error(
                "ERR XX and NX options at the same time are not compatible",
            ));
        }
        if (options.nx && (options.gt || options.lt)) || (options.gt && options.lt) {
            return Err(Reply::error(
                "ERR GT, LT, and/or NX options at the same time are not compatible",
            ));
        }
        if options.incr && rest.len() > 2 {
            return Err(Reply::error(
                "ERR INCR option supports a single increment-element pair",
            ));
        }
        let pairs = rest
            .chunks_exact(2)
            .map(|pair| {
                let score = parse_f64(&pair[0]).ok_or_else(|| Reply::error(NOT_FLOAT))?;
                Ok((score, &pair[1]))
            })
            .collect::<Result<Vec<_>, Reply>>()?;
        let outcome = update_zset(ks, key, now_ms, !options.xx, |zset| {
            let (mut added, mut updated, mut processed) = (0, 0, 0);
            let mut last_score = 0.0;
            for (score, member) in &pairs {
                let (outcome, score) = match options.apply(zset, member, *score) {
                    Ok(done) => done,
                    Err(nan) => return (Err(nan), added + updated > 0),
                };
                last_score = score;
                match outcome {
                    AddOutcome::Added => added += 1,
                    AddOutcome::Updated => updated += 1,
                    AddOutcome::Unchanged => {}
                    AddOutcome::Skipped => continue,
                }
                processed += 1;
            }
            (
                Ok((added, updated, processed, last_score)),
                added + updated > 0,
            )
        })?;
        let (added, updated, processed, score) = outcome.transpose()?.unwrap_or((0, 0, 0, 0.0));
        Ok(if options.incr {
            if processed > 0 {
                Reply::Double(score)
            } else {
                Reply::Nil
            }
        } else if options.ch {
            Reply::Int(added + updated)
        } else {
            Reply::Int(added)
        })
    })
}

/// ZREM key member [member ...]: how many members were removed.
pub fn zrem(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, members @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let removed = update_zset(ks, key, now_ms, false, |zset| {
            let removed = members.iter().filter(|member| zset.remove(member)).count();
            (removed, removed > 0)
        })?
        .unwrap_or_default();
        Ok(Reply::Int(removed as i64))
    })
}

/// ZINCRBY key increment member: the member's new score (ZADD INCR, as Redis runs it).
pub fn zincrby(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    let [_, key, increment, member] = argv else {
        return wrong_arity(argv);
    };
    let as_zadd = [
        Bytes::from_static(b"zadd"),
        key.clone(),
        Bytes::from_static(b"incr"),
        increment.clone(),
        member.clone(),
    ];
    zadd(ks, now_ms, &as_zadd)
}

/// ZMSCORE key member [member ...]: each member's score, or nil.
pub fn zmscore(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, members @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        if members.is_empty() {
            return Err(wrong_arity(argv));
        }
        let zset = zset_of(ks, key, now_ms)?;
        Ok(Reply::Array(
            members
                .iter()
                .map(|member| {
                    zset.and_then(|zset| zset.score(member))
                        .map_or(Reply::Nil, Reply::Double)
                })
                .collect(),
        ))
    })
}

/// ZCARD key: 0 for a missing key.
pub fn zcard(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key] = argv else {
            return Err(wrong_arity(argv));
        };
        let len = zset_of(ks, key, now_ms)?.map_or(0, SortedSet::len);
        Ok(Reply::Int(len as i64))
    })
}

/// ZSCORE key member: the score (a double in RESP3, a bulk string in RESP2) or nil.
pub fn zscore(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, member] = argv else {
            return Err(wrong_arity(argv));
        };
        let score = zset_of(ks, key, now_ms)?.and_then(|zset| zset.score(member));
        Ok(score.map_or(Reply::Nil, Reply::Double))
    })
}

/// ZRANK key member [WITHSCORE], ZREVRANK key member [WITHSCORE]: the 0-based rank, or
/// nil (a nil array with WITHSCORE) for a missing member.
pub fn zrank(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let (key, member, with_score) = match argv {
            [_, key, member] => (key, member, false),
            [_, key, member, option] if option.eq_ignore_ascii_case(b"withscore") => {
                (key, member, true)
            }
            [_, _, _, _] => return Err(Reply::syntax_error()),
            _ => return Err(wrong_arity(argv)),
        };
        let reverse = invoked_as(argv, "zrevrank");
        let found = zset_of(ks, key, now_ms)?.and_then(|zset| {
            let rank = zset.rank(member, reverse)?;
            Some((rank, zset.score(member)?))
        });
        Ok(match found {
            Some((rank, score)) if with_score => {
                Reply::Array(vec![Reply::Int(rank as i64), Reply::Double(score)])
            }
            Some((rank, _)) => Reply::Int(rank as i64),
            None if with_score => Reply::NilArray,
            None => Reply::Nil,
        })
    })
}

/// How ZRANGE reads its two bounds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    Rank,
    Score,
    Lex,
}

/// The options of the ZRANGE family (Redis's `zrangeGenericCommand`). A command that
/// fixes the kind or the direction (ZRANGEBYSCORE, ZREVRANGE) refuses that option.
struct RangeOptions {
    kind: Option<RangeKind>,
    reverse: Option<bool>,
    with_scores: bool,
    /// (offset, count); a negative count means all.
    limit: Option<(i64, i64)>,
}

impl RangeOptions {
    /// `store`: ZRANGESTORE, which takes no WITHSCORES.
    fn parse(
        options: &[Bytes],
        kind: Option<RangeKind>,
        reverse: Option<bool>,
        store: bool,
    ) -> Result<RangeOptions, Reply> {
        let mut parsed = RangeOptions {
            kind,
            reverse,
            with_scores: false,
            limit: None,
        };
        let mut rest = options;
        while let [option, tail @ ..] = rest {
            rest = tail;
            let is = |word: &str| option.eq_ignore_ascii_case(word.as_bytes());
            if !store && is("withscores") {
                parsed.with_scores = true;
            } else if is("limit") && tail.len() >= 2 {
                let offset = parse_i64(&tail[0]).ok_or_else(Reply::not_integer)?;
                let count = parse_i64(&tail[1]).ok_or_else(Reply::not_integer)?;
                parsed.limit = Some((offset, count));
                rest = &tail[2..];
            } else if is("rev") && parsed.reverse.is_none() {
                parsed.reverse = Some(true);
            } else if is("byscore") && parsed.kind.is_none() {
                parsed.kind = Some(RangeKind::Score);
            } else if is("bylex") && parsed.kind.is_none() {
                parsed.kind = Some(RangeKind::Lex);
            } else {
                return Err(Reply::syntax_error());
            }
        }
        if parsed.limit.is_some() && parsed.kind.unwrap_or(RangeKind::Rank) == RangeKind::Rank {
            return Err(Reply::error(
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        if parsed.with_scores && parsed.kind == Some(RangeKind::Lex) {
            return Err(Reply::error(
                "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
            ));
        }
        Ok(parsed)
    }
}

/// The reply of a range: members, or member/score pairs with WITHSCORES (flat in RESP2,
/// pairs in RESP3, as Redis 7 answers).
fn range_reply<'a>(items: impl Iterator<Item = (&'a Bytes, f64)>, with_scores: bool) -> Reply {
    if with_scores {
        Reply::Pairs(
            items
                .map(|(member, score)| (Reply::Bulk(member.clone()), Reply::Double(score)))
                .collect(),
        )
    } else {
        Reply::Array(
            items
                .map(|(member, _)| Reply::Bulk(member.clone()))
                .collect(),
        )
    }
}

/// ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES], and
/// ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX, which fix
/// some of those options.
pub fn zrange(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, first, second, options @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let (kind, reverse) = if invoked_as(argv, "zrevrange") {
            (Some(RangeKind::Rank), Some(true))
        } else if invoked_as(argv, "zrangebyscore") {
            (Some(RangeKind::Score), Some(false))
        } else if invoked_as(argv, "zrevrangebyscore") {
            (Some(RangeKind::Score), Some(true))
        } else if invoked_as(argv, "zrangebylex") {
            (Some(RangeKind::Lex), Some(false))
        } else if invoked_as(argv, "zrevrangebylex") {
            (Some(RangeKind::Lex), Some(true))
        } else {
            (None, None)
        };
        let options = RangeOptions::parse(options, kind, reverse, false)?;
        let items = range_items(ks, now_ms, key, first, second, &options)?;
        Ok(range_reply(
            items
                .iter()
                .flatten()
                .map(|(member, score)| (member, *score)),
            options.with_scores,
        ))
    })
}

/// ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]: stores the
/// range (a new value: new token, no deadline) and answers its size; an empty range (or
/// a missing source) removes the destination, as Redis does. A lock at the destination
/// is WRONGTYPE.
pub fn zrangestore(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, destination, key, first, second, options @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let options = RangeOptions::parse(options, None, None, true)?;
        let mut result = SortedSet::default();
        for (member, score) in range_items(ks, now_ms, key, first, second, &options)?
            .into_iter()
            .flatten()
        {
            result.insert(member, score);
        }
        let len = result.len();
        ks.store_result(destination, Value::Zset(Box::new(result)), len, now_ms)
    })
}

/// The members of a range in the order asked, with their scores: the bounds parsed
/// first, then the key read (`None` for a missing key), as Redis's `zrangeGenericCommand`.
fn range_items(
    ks: &Keyspace,
    now_ms: u64,
    key: &[u8],
    first: &[u8],
    second: &[u8],
    options: &RangeOptions,
) -> Result<Option<Vec<(Bytes, f64)>>, Reply> {
    let reverse = options.reverse.unwrap_or(false);
    let owned = |items: &mut dyn Iterator<Item = (&Bytes, f64)>| {
        items
            .map(|(member, score)| (member.clone(), score))
            .collect::<Vec<_>>()
    };
    let (offset, count) = options.limit.unwrap_or((0, -1));
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    // Reversed score and lex ranges give their bounds as max, min.
    let (min, max) = if reverse {
        (second, first)
    } else {
        (first, second)
    };
    match options.kind.unwrap_or(RangeKind::Rank) {
        RangeKind::Rank => {
            let start = parse_i64(first).ok_or_else(Reply::not_integer)?;
            let stop = parse_i64(second).ok_or_else(Reply::not_integer)?;
            let Some(zset) = zset_of(ks, key, now_ms)? else {
                return Ok(None);
            };
            let len = zset.len() as i64;
            let start = if start < 0 { len + start } else { start }.max(0);
            let stop = if stop < 0 { len + stop } else { stop }.min(len - 1);
            if start > stop || start >= len {
                return Ok(Some(Vec::new()));
            }
            let mut items = zset
                .iter(reverse)
                .skip(start as usize)
                .take((stop - start + 1) as usize);
            Ok(Some(owned(&mut items)))
        }
        RangeKind::Score => {
            let range = ScoreRange::parse(min, max)?;
            let Some(zset) = zset_of(ks, key, now_ms)? else {
                return Ok(None);
            };
            let Ok(offset) = usize::try_from(offset) else {
                return Ok(Some(Vec::new()));
            };
            let mut items = zset.in_range(range, reverse).skip(offset).take(count);
            Ok(Some(owned(&mut items)))
        }
        RangeKind::Lex => {
            let range = LexRange::parse(min, max)?;
            let Some(zset) = zset_of(ks, key, now_ms)? else {
                return Ok(None);
            };
            let Ok(offset) = usize::try_from(offset) else {
                return Ok(Some(Vec::new()));
            };
            let mut items = zset.in_lex_range(range, reverse).skip(offset).take(count);
            Ok(Some(owned(&mut items)))
        }
    }
}

/// ZREMRANGEBYSCORE key min max, ZREMRANGEBYLEX key min max, ZREMRANGEBYRANK key start
/// stop: how many members were removed. The range is parsed before the key is read, as
/// Redis's `zremrangeGenericCommand` does.
pub fn zremrange(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    enum Doomed {
        Score(ScoreRange),
        Lex(LexRange),
        Rank(i64, i64),
    }
    run(|| {
        let [_, key, min, max] = argv else {
            return Err(wrong_arity(argv));
        };
        let range = if invoked_as(argv, "zremrangebyrank") {
            let start = parse_i64(min).ok_or_else(Reply::not_integer)?;
            let stop = parse_i64(max).ok_or_else(Reply::not_integer)?;
            Doomed::Rank(start, stop)
        } else if invoked_as(argv, "zremrangebylex") {
            Doomed::Lex(LexRange::parse(min, max)?)
        } else {
            Doomed::Score(ScoreRange::parse(min, max)?)
        };
        let removed = update_zset(ks, key, now_ms, false, |zset| {
            let doomed: Vec<Bytes> = match range {
                Doomed::Score(range) => zset
                    .in_range(range, false)
                    .map(|(member, _)| member.clone())
                    .collect(),
                Doomed::Lex(range) => zset
                    .in_lex_range(range, false)
                    .map(|(member, _)| member.clone())
                    .collect(),
                Doomed::Rank(start, stop) => {
                    let len = zset.len() as i64;
                    let start = if start < 0 { len + start } else { start }.max(0);
                    let stop = if stop < 0 { len + stop } else { stop };
                    if start > stop || start >= len {
                        Vec::new()
                    } else {
                        let stop = stop.min(len - 1);
                        zset.iter(false)
                            .skip(start as usize)
                            .take((stop - start + 1) as usize)
                            .map(|(member, _)| member.clone())
                            .collect()
                    }
                }
            };
            for member in &doomed {
                zset.remove(member);
            }
            (doomed.len(), !doomed.is_empty())
        })?
        .unwrap_or_default();
        Ok(Reply::Int(removed as i64))
    })
}

/// ZCOUNT key min max: how many members have a score in the range.
pub fn zcount(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, min, max] = argv else {
            return Err(wrong_arity(argv));
        };
        let range = ScoreRange::parse(min, max)?;
        let count = zset_of(ks, key, now_ms)?.map_or(0, |zset| zset.in_range(range, false).count());
        Ok(Reply::Int(count as i64))
    })
}

/// ZLEXCOUNT key min max: how many members are in the lex range.
pub fn zlexcount(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, min, max] = argv else {
            return Err(wrong_arity(argv));
        };
        let range = LexRange::parse(min, max)?;
        let count =
            zset_of(ks, key, now_ms)?.map_or(0, |zset| zset.in_lex_range(range, false).count());
        Ok(Reply::Int(count as i64))
    })
}

/// ZRANDMEMBER key [count [WITHSCORES]]: as SRANDMEMBER, from the members in score
/// order, with the numbers seeded from the op's place in the log. Without a count one
/// member (nil for a missing key); a positive count up to that many distinct members (the
/// whole set, highest score first as Redis answers, when it has no more), a negative one `-count` draws with repeats.
/// WITHSCORES: member/score pairs (nested in RESP3).
pub fn zrandmember(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let (key, count, with_scores) = match argv {
            [_, key] => (key, None, false),
            [_, key, count, options @ ..] => {
                let count = parse_i64(count).ok_or_else(Reply::not_integer)?;
                if count == i64::MIN {
                    return Err(Reply::Error(format!(
                        "ERR value is out of range, value must between -{} and {}",
                        i64::MAX,
                        i64::MAX
                    )));
                }
                let with_scores = match options {
                    [] => false,
                    [option] if option.eq_ignore_ascii_case(b"withscores") => true,
                    _ => return Err(Reply::syntax_error()),
                };
                if with_scores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&count) {
                    return Err(Reply::error("ERR value is out of range"));
                }
                let limit = i64::try_from(MAX_RANDOM_MEMBERS).unwrap_or(i64::MAX);
                if count < -limit {
                    // Redis's words, with raftlock's bound: a reply is built whole.
                    return Err(Reply::Error(format!(
                        "ERR value is out of range, value must between -{limit} and {}",
                        i64::MAX
                    )));
                }
                (key, Some(count), with_scores)
            }
            _ => return Err(wrong_arity(argv)),
        };
        let Some(zset) = zset_of(ks, key, now_ms)?.filter(|zset| !zset.is_empty()) else {
            return Ok(count.map_or(Reply::Nil, |_| Reply::Array(Vec::new())));
        };
        let all: Vec<(&Bytes, f64)> = zset.iter(false).collect();
        let Some(count) = count else {
            let mut draws = Draws::new(ks, now_ms);
            return Ok(Reply::Bulk(all[draws.below(all.len())].0.clone()));
        };
        if count == 0 {
            return Ok(Reply::Array(Vec::new()));
        }
        let picked: Vec<(&Bytes, f64)> = if count < 0 || count == 1 {
            let mut draws = Draws::new(ks, now_ms);
            (0..count.unsigned_abs())
                .map(|_| all[draws.below(all.len())])
                .collect()
        } else if count as u64 >= all.len() as u64 {
            // The whole set, highest score first: Redis walks it from the tail.
            all.into_iter().rev().collect()
        } else {
            let mut draws = Draws::new(ks, now_ms);
            draws
                .distinct(count as usize, all.len())
                .into_iter()
                .map(|at| all[at])
                .collect()
        };
        Ok(range_reply(picked.into_iter(), with_scores))
    })
}

/// A sorted set Redis would keep as a listpack (its `zset-max-listpack-entries` and
/// `-value` defaults), which ZSCAN answers whole, in order, in one page.
const SMALL_ZSET_ENTRIES: usize = 128;
const SMALL_ZSET_VALUE: usize = 64;

/// ZSCAN key cursor [MATCH pattern] [COUNT count]: member and score (a bulk string, as
/// Redis answers it even in RESP3) by turns; MATCH looks at members only. A small set
/// (as Redis's listpack) comes whole in score order, cursor 0, whatever the cursor and
/// COUNT, as Redis answers; a larger one pages as SSCAN does.
pub fn zscan(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, cursor, options @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let cursor = parse_cursor(cursor)?;
        let Some(zset) = zset_of(ks, key, now_ms)? else {
            return Ok(scan_reply(0, std::iter::empty()));
        };
        let options = ScanOptions::parse(options, false)?;
        let all: Vec<(&[u8], f64)> = zset
            .iter(false)
            .map(|(member, score)| (member.as_ref(), score))
            .collect();
        let small = all.len() <= SMALL_ZSET_ENTRIES
            && all
                .iter()
                .all(|(member, _)| member.len() <= SMALL_ZSET_VALUE);
        let (next_cursor, page) = if small {
            (0, all)
        } else {
            scan_page(all.iter().copied(), cursor, options.count)
        };
        let found = page
            .into_iter()
            .filter(|(member, _)| options.matches(member))
            .flat_map(|(member, score)| {
                [
                    Reply::Bulk(Bytes::copy_from_slice(member)),
                    Reply::Bulk(Bytes::from(double_text(score))),
                ]
            })
            .collect();
        Ok(scan_reply_items(next_cursor, found))
    })
}

/// How ZUNION and ZINTER combine one member's weighted scores.
#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Redis's `zunionInterAggregate`: a NaN sum (inf + -inf) is 0.
    fn apply(self, target: f64, value: f64) -> f64 {
        match self {
            Aggregate::Sum => {
                let sum = target + value;
                if sum.is_nan() {
                    0.0
                } else {
                    sum
                }
            }
            Aggregate::Min => target.min(value),
            Aggregate::Max => target.max(value),
        }
    }
}

/// One input of the algebra: a sorted set, or a set (every member scored 1), as Redis
/// takes both.
enum Source<'a> {
    Missing,
    Zset(&'a SortedSet),
    Set(&'a super::sets::Set),
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::Missing => 0,
            Source::Zset(zset) => zset.len(),
            Source::Set(set) => set.len(),
        }
    }

    fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Missing => None,
            Source::Zset(zset) => zset.score(member),
            Source::Set(set) => set.contains(member).then_some(1.0),
        }
    }

    fn members(&self) -> Vec<(Bytes, f64)> {
        match self {
            Source::Missing => Vec::new(),
            Source::Zset(zset) => zset
                .iter(false)
                .map(|(member, score)| (member.clone(), score))
                .collect(),
            Source::Set(set) => set.iter().map(|member| (member.clone(), 1.0)).collect(),
        }
    }
}

/// The parsed arguments of the algebra, from numkeys on.
struct Algebra<'a> {
    sources: Vec<(Source<'a>, f64)>,
    aggregate: Aggregate,
    with_scores: bool,
    /// ZINTERCARD's LIMIT; 0 for none.
    limit: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

impl<'a> Algebra<'a> {
    /// Redis's `zunionInterDiffGenericCommand`: numkeys, then every key's type, then the
    /// options.
    fn parse(
        ks: &'a Keyspace,
        now_ms: u64,
        name: &str,
        args: &[Bytes],
        op: Op,
        store: bool,
        cardinality: bool,
    ) -> Result<Algebra<'a>, Reply> {
        let [numkeys, rest @ ..] = args else {
            return Err(Reply::syntax_error());
        };
        let numkeys = parse_i64(numkeys).ok_or_else(Reply::not_integer)?;
        if numkeys < 1 {
            return Err(Reply::Error(format!(
                "ERR at least 1 input key is needed for '{name}' command"
            )));
        }
        let numkeys = usize::try_from(numkeys)
            .ok()
            .filter(|&n| n <= rest.len())
            .ok_or_else(Reply::syntax_error)?;
        let (keys, mut options) = rest.split_at(numkeys);
        let mut sources = Vec::with_capacity(keys.len());
        for key in keys {
            let source = match ks.get(key, now_ms).map(|entry| &entry.value) {
                None => Source::Missing,
                Some(Value::Zset(zset)) => Source::Zset(zset),
                Some(Value::Set(set)) => Source::Set(set),
                Some(_) => return Err(Reply::wrong_type()),
            };
            sources.push((source, 1.0));
        }
        let mut parsed = Algebra {
            sources,
            aggregate: Aggregate::Sum,
            with_scores: false,
            limit: 0,
        };
        while let [option, tail @ ..] = options {
            let is = |word: &str| option.eq_ignore_ascii_case(word.as_bytes());
            let weighted = op != Op::Diff && !cardinality;
            if weighted && tail.len() >= numkeys && is("weights") {
                for (source, weight) in parsed.sources.iter_mut().zip(tail) {
                    source.1 = parse_f64(weight)
                        .ok_or_else(|| Reply::error("ERR weight value is not a float"))?;
                }
                options = &tail[numkeys..];
            } else if weighted && !tail.is_empty() && is("aggregate") {
                let word = |w: &str| tail[0].eq_ignore_ascii_case(w.as_bytes());
                parsed.aggregate = if word("sum") {
                    Aggregate::Sum
                } else if word("min") {
                    Aggregate::Min
                } else if word("max") {
                    Aggregate::Max
                } else {
                    return Err(Reply::syntax_error());
                };
                options = &tail[1..];
            } else if !store && !cardinality && is("withscores") {
                parsed.with_scores = true;
                options = tail;
            } else if cardinality && !tail.is_empty() && is("limit") {
                parsed.limit = parse_i64(&tail[0])
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| Reply::error("ERR LIMIT can't be negative"))?;
                options = &tail[1..];
            } else {
                return Err(Reply::syntax_error());
            }
        }
        Ok(parsed)
    }

    /// The result, as a sorted set. Union and intersection take the sources from the
    /// smallest, as Redis does; a weighted score that is NaN (0 * inf) counts as 0.
    fn compute(mut self, op: Op) -> SortedSet {
        let weighted = |score: f64, weight: f64| {
            let value = score * weight;
            if value.is_nan() {
                0.0
            } else {
                value
            }
        };
        let mut result = SortedSet::default();
        if op != Op::Diff {
            self.sources.sort_by_key(|(source, _)| source.len());
        }
        match op {
            Op::Inter => {
                let [(first, weight), others @ ..] = &self.sources[..] else {
                    return result;
                };
                'members: for (member, score) in first.members() {
                    let mut total = weighted(score, *weight);
                    for (other, weight) in others {
                        let Some(score) = other.score(&member) else {
                            continue 'members;
                        };
                        total = self.aggregate.apply(total, weighted(score, *weight));
                    }
                    result.insert(member, total);
                    if self.limit > 0 && result.len() >= self.limit {
                        break;
                    }
                }
            }
            Op::Union => {
                for (source, weight) in &self.sources {
                    for (member, score) in source.members() {
                        let value = weighted(score, *weight);
                        let total = match result.score(&member) {
                            Some(total) => self.aggregate.apply(total, value),
                            None => value,
                        };
                        result.insert(member, total);
                    }
                }
            }
            Op::Diff => {
                let [(first, _), others @ ..] = &self.sources[..] else {
                    return result;
                };
                for (member, score) in first.members() {
                    if others
                        .iter()
                        .all(|(other, _)| other.score(&member).is_none())
                    {
                        result.insert(member, score);
                    }
                }
            }
        }
        result
    }
}

fn algebra_op(argv: &[Bytes]) -> Op {
    if invoked_as(argv, "zinter") || invoked_as(argv, "zinterstore") {
        Op::Inter
    } else if invoked_as(argv, "zdiff") || invoked_as(argv, "zdiffstore") {
        Op::Diff
    } else {
        Op::Union
    }
}

/// ZUNION, ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX]
/// [WITHSCORES], ZDIFF numkeys key [key ...] [WITHSCORES]: the result in score order.
/// Sets count as sorted sets with every score 1, as in Redis.
pub fn zalgebra(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [name, args @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let op = algebra_op(argv);
        let algebra = Algebra::parse(ks, now_ms, &name, args, op, false, false)?;
        let with_scores = algebra.with_scores;
        let result = algebra.compute(op);
        Ok(range_reply(result.iter(false), with_scores))
    })
}

/// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE destination numkeys key [key ...] [options]:
/// stores the result (a new value: new token, no deadline) and answers its size; an
/// empty result removes the destination. A lock at the destination is WRONGTYPE.
pub fn zalgebra_store(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [name, destination, args @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let op = algebra_op(argv);
        let result = Algebra::parse(ks, now_ms, &name, args, op, true, false)?.compute(op);
        let len = result.len();
        ks.store_result(destination, Value::Zset(Box::new(result)), len, now_ms)
    })
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]: the size of the intersection, counted
/// up to `limit` (0: no limit).
pub fn zintercard(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, args @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let algebra = Algebra::parse(ks, now_ms, "zintercard", args, Op::Inter, false, true)?;
        Ok(Reply::Int(algebra.compute(Op::Inter).len() as i64))
    })
}

#[cfg(test)]
#[path = "zsets_tests.rs"]
mod tests;
