//! List commands that edit or search inside a list (LSET, LINSERT, LPOS) and the
//! multi-key pops (LMPOP, and BLMPOP as the state machine sees it: a pop that answers nil
//! when there is nothing, the node doing the waiting as for BLPOP).

use bytes::Bytes;

use super::lists::{list_at, parse_timeout_ms};
use super::multi_pop::MultiPop;
use super::{run, wrong_arity, Keyspace};
use crate::args::parse_i64;
use crate::reply::Reply;

/// LSET key index element: OK; `ERR no such key` for a missing list, `ERR index out of
/// range` past either end.
pub fn lset(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, index, element] = argv else {
            return Err(wrong_arity(argv));
        };
        // Redis looks the key up before it reads the index.
        if list_at(ks, key, now_ms)?.is_none() {
            return Err(Reply::error("ERR no such key"));
        }
        let index = parse_i64(index).ok_or_else(Reply::not_integer)?;
        let set = ks.with_list(key, now_ms, false, |list| {
            let at = if index < 0 {
                list.len() as i64 + index
            } else {
                index
            };
            match usize::try_from(at).ok().and_then(|at| list.get_mut(at)) {
                Some(item) => {
                    *item = Bytes::copy_from_slice(element);
                    (true, true)
                }
                None => (false, false),
            }
        })?;
        match set {
            None => Err(Reply::error("ERR no such key")),
            Some(false) => Err(Reply::error("ERR index out of range")),
            Some(true) => Ok(Reply::Ok),
        }
    })
}

/// LINSERT key BEFORE|AFTER pivot element: the new length, -1 when the pivot is not
/// there, 0 for a missing key.
pub fn linsert(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, place, pivot, element] = argv else {
            return Err(wrong_arity(argv));
        };
        let after = if place.eq_ignore_ascii_case(b"after") {
            true
        } else if place.eq_ignore_ascii_case(b"before") {
            false
        } else {
            return Err(Reply::syntax_error());
        };
        let len = ks.with_list(key, now_ms, false, |list| {
            match list.iter().position(|item| item == pivot) {
                Some(at) => {
                    list.insert(at + usize::from(after), Bytes::copy_from_slice(element));
                    (list.len() as i64, true)
                }
                None => (-1, false),
            }
        })?;
        Ok(Reply::Int(len.unwrap_or(0)))
    })
}

/// LPOS's options.
struct PosOptions {
    /// The match to start from: 1 the first, -1 the first from the tail.
    rank: i64,
    /// `None`: one position (or nil); `Some(0)`: every match.
    count: Option<usize>,
    /// Elements compared at most, 0 for all.
    max_len: usize,
}

impl PosOptions {
    fn parse(options: &[Bytes]) -> Result<PosOptions, Reply> {
        let mut parsed = PosOptions {
            rank: 1,
            count: None,
            max_len: 0,
        };
        let mut rest = options;
        while let [option, value, tail @ ..] = rest {
            let is = |word: &str| option.eq_ignore_ascii_case(word.as_bytes());
            let number = parse_i64(value).ok_or_else(Reply::not_integer);
            // Redis words a count that is not a number as one that is negative.
            let not_negative = |what: &str| match parse_i64(value) {
                Some(n) if n >= 0 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                _ => Err(Reply::Error(format!("ERR {what} can't be negative"))),
            };
            if is("rank") {
                parsed.rank = match number? {
                    0 => {
                        return Err(Reply::error(
                            "ERR RANK can't be zero: use 1 to start from the first match, 2 \
                             from the second ... or use negative to start from the end of the \
                             list",
                        ))
                    }
                    i64::MIN => {
                        return Err(Reply::Error(format!(
                            "ERR value is out of range, value must between {} and {}",
                            -i64::MAX,
                            i64::MAX
                        )))
                    }
                    rank => rank,
                };
            } else if is("count") {
                parsed.count = Some(not_negative("COUNT")?);
            } else if is("maxlen") {
                parsed.max_len = not_negative("MAXLEN")?;
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
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]: the index of a match
/// (nil if none), or with COUNT an array of up to that many (0: all).
pub fn lpos(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, element, options @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let options = PosOptions::parse(options)?;
        let Some(list) = list_at(ks, key, now_ms)? else {
            return Ok(match options.count {
                Some(_) => Reply::Array(Vec::new()),
                None => Reply::Nil,
            });
        };
        let len = list.len();
        let scanned = match options.max_len {
            0 => len,
            max => max.min(len),
        };
        let from_tail = options.rank < 0;
        let skip = usize::try_from(options.rank.unsigned_abs() - 1).unwrap_or(usize::MAX);
        let positions = (0..scanned)
            .map(|i| if from_tail { len - 1 - i } else { i })
            .filter(|&at| list[at] == element)
            .skip(skip);
        Ok(match options.count {
            None => positions
                .map(|at| Reply::Int(at as i64))
                .next()
                .unwrap_or(Reply::Nil),
            Some(count) => Reply::Array(
                positions
                    .take(if count == 0 { usize::MAX } else { count })
                    .map(|at| Reply::Int(at as i64))
                    .collect(),
            ),
        })
    })
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: `[key, [elements]]` from the
/// first key that holds a list, or a nil array. BLMPOP timeout numkeys ...: the same once
/// its timeout is checked.
pub fn lmpop(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let blocking = super::invoked_as(argv, "blmpop");
        let args = argv.get(1 + usize::from(blocking)..).unwrap_or_default();
        let pop = MultiPop::parse(args, ["left", "right"])?;
        if blocking {
            parse_timeout_ms(&argv[1])?;
        }
        for key in pop.keys {
            let popped = ks.with_list(key, now_ms, false, |list| {
                let taken: Vec<Reply> = (0..pop.count.min(list.len()))
                    .filter_map(|_| {
                        if pop.from_end {
                            list.pop_back()
                        } else {
                            list.pop_front()
                        }
                    })
                    .map(Reply::Bulk)
                    .collect();
                (taken, true)
            })?;
            if let Some(taken) = popped.filter(|taken| !taken.is_empty()) {
                return Ok(Reply::Array(vec![
                    Reply::Bulk(key.clone()),
                    Reply::Array(taken),
                ]));
            }
        }
        Ok(Reply::NilArray)
    })
}
