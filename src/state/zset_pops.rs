//! The pops of sorted sets: ZPOPMIN, ZPOPMAX, ZMPOP, and the blocking BZPOPMIN, BZPOPMAX,
//! BZMPOP as the state machine sees them (a pop that answers a nil array when there is
//! nothing; the node waits, as for BLPOP: `server::blocking_pop`).

use bytes::Bytes;

use super::lists::{keys_then_timeout, parse_timeout_ms};
use super::multi_pop::MultiPop;
use super::zsets::update_zset;
use super::{invoked_as, run, wrong_arity, Keyspace};
use crate::args::parse_i64;
use crate::reply::Reply;

/// Takes up to `count` of the lowest (highest, `reverse`) members of the sorted set at
/// `key`: none for a missing key, WRONGTYPE for another type.
fn pop_members(
    ks: &mut Keyspace,
    key: &[u8],
    now_ms: u64,
    reverse: bool,
    count: usize,
) -> Result<Vec<(Bytes, f64)>, Reply> {
    Ok(update_zset(ks, key, now_ms, false, |zset| {
        let doomed: Vec<(Bytes, f64)> = zset
            .iter(reverse)
            .take(count)
            .map(|(member, score)| (member.clone(), score))
            .collect();
        for (member, _) in &doomed {
            zset.remove(member);
        }
        let changed = !doomed.is_empty();
        (doomed, changed)
    })?
    .unwrap_or_default())
}

/// ZPOPMIN key [count], ZPOPMAX key [count]: the lowest (highest) members, removed. Without
/// a count a flat member, score array; with one, pairs (nested in RESP3, as Redis 7).
pub fn zpop(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
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
        let reverse = invoked_as(argv, "zpopmax");
        let popped = pop_members(ks, key, now_ms, reverse, count.unwrap_or(1))?;
        if popped.is_empty() {
            return Ok(Reply::Array(Vec::new()));
        }
        let items = popped
            .into_iter()
            .map(|(member, score)| (Reply::Bulk(member), Reply::Double(score)));
        Ok(if count.is_some() {
            Reply::Pairs(items.collect())
        } else {
            Reply::Array(items.flat_map(|(member, score)| [member, score]).collect())
        })
    })
}

/// BZPOPMIN key [key ...] timeout, BZPOPMAX ...: `[key, member, score]` from the first key
/// that holds a sorted set, or a nil array.
pub fn bzpop(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let keys = keys_then_timeout(argv)?;
        let reverse = invoked_as(argv, "bzpopmax");
        for key in keys {
            if let Some((member, score)) = pop_members(ks, key, now_ms, reverse, 1)?.pop() {
                return Ok(Reply::Array(vec![
                    Reply::Bulk(key.clone()),
                    Reply::Bulk(member),
                    Reply::Double(score),
                ]));
            }
        }
        Ok(Reply::NilArray)
    })
}

/// ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]: `[key, [[member, score] ...]]` from
/// the first key that holds a sorted set, or a nil array. BZMPOP timeout numkeys ...: the
/// same once its timeout is checked.
pub fn zmpop(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let blocking = invoked_as(argv, "bzmpop");
        let args = argv.get(1 + usize::from(blocking)..).unwrap_or_default();
        let pop = MultiPop::parse(args, ["min", "max"])?;
        if blocking {
            parse_timeout_ms(&argv[1])?;
        }
        for key in pop.keys {
            let popped = pop_members(ks, key, now_ms, pop.from_end, pop.count)?;
            if !popped.is_empty() {
                let members = popped
                    .into_iter()
                    .map(|(member, score)| {
                        Reply::Array(vec![Reply::Bulk(member), Reply::Double(score)])
                    })
                    .collect();
                return Ok(Reply::Array(vec![
                    Reply::Bulk(key.clone()),
                    Reply::Array(members),
                ]));
            }
        }
        Ok(Reply::NilArray)
    })
}
