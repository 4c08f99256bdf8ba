//! Commands on parts of a string: GETRANGE (and its old name SUBSTR), SETRANGE, and LCS,
//! the longest common subsequence of two strings.

use bytes::{Bytes, BytesMut};

use super::{run, wrong_arity, Keyspace, Ttl, Value};
use crate::args::parse_i64;
use crate::config::state_limits::{MAX_LCS_CELLS, MAX_STRING_BYTES};
use crate::reply::Reply;

/// Redis's error for a string that would grow past `proto-max-bulk-len`.
pub(crate) fn too_long() -> Reply {
    Reply::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
}

/// The inclusive range `[start, end]` of a sequence of `len` items that Redis's GETRANGE
/// and BITCOUNT take from possibly negative indexes, or `None` when it is empty.
pub(crate) fn clamp_range(start: i64, end: i64, len: i64) -> Option<(i64, i64)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let from_end = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (start, end) = (from_end(start), from_end(end).min(len - 1));
    (len > 0 && start <= end).then_some((start, end))
}

/// GETRANGE key start end, SUBSTR key start end: the bytes from `start` to `end`
/// inclusive; an empty string for a missing key or an empty range.
pub fn getrange(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, start, end] = argv else {
            return Err(wrong_arity(argv));
        };
        let start = parse_i64(start).ok_or_else(Reply::not_integer)?;
        let end = parse_i64(end).ok_or_else(Reply::not_integer)?;
        let Some(entry) = ks.get(key, now_ms) else {
            return Ok(Reply::Bulk(Bytes::new()));
        };
        let value = entry.as_str()?;
        Ok(Reply::Bulk(
            match clamp_range(start, end, value.len() as i64) {
                Some((start, end)) => value.slice(start as usize..=end as usize),
                None => Bytes::new(),
            },
        ))
    })
}

/// SETRANGE key offset value: overwrites from `offset`, padding with zero bytes; the new
/// length. The deadline stays; the value takes a new fencing token.
pub fn setrange(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, offset, patch] = argv else {
            return Err(wrong_arity(argv));
        };
        let offset = parse_i64(offset).ok_or_else(Reply::not_integer)?;
        if offset < 0 {
            return Err(Reply::error("ERR offset is out of range"));
        }
        let offset = offset as u64;
        let old = match ks.get_for_write(key, now_ms) {
            Some(entry) => Some(entry.as_str()?.clone()),
            None => None,
        };
        let old_len = old.as_ref().map_or(0, Bytes::len);
        if patch.is_empty() {
            return Ok(Reply::Int(old_len as i64));
        }
        if offset + patch.len() as u64 > MAX_STRING_BYTES as u64 {
            return Err(too_long());
        }
        let offset = offset as usize;
        let new_len = old_len.max(offset + patch.len());
        let mut value = BytesMut::with_capacity(new_len);
        value.extend_from_slice(old.as_deref().unwrap_or_default());
        value.resize(new_len, 0);
        value[offset..offset + patch.len()].copy_from_slice(patch);
        ks.refuse_lock(key, now_ms)?;
        ks.store(key, Value::Str(value.freeze()), Ttl::Keep, now_ms);
        Ok(Reply::Int(new_len as i64))
    })
}

/// What LCS is asked to answer.
#[derive(Default)]
struct LcsOptions {
    len: bool,
    idx: bool,
    min_match_len: usize,
    with_match_len: bool,
}

impl LcsOptions {
    fn parse(options: &[Bytes]) -> Result<LcsOptions, Reply> {
        let mut parsed = LcsOptions::default();
        let mut rest = options;
        while let [option, tail @ ..] = rest {
            rest = tail;
            let is = |word: &str| option.eq_ignore_ascii_case(word.as_bytes());
            if is("idx") {
                parsed.idx = true;
            } else if is("len") {
                parsed.len = true;
            } else if is("withmatchlen") {
                parsed.with_match_len = true;
            } else if let (true, [value, tail @ ..]) = (is("minmatchlen"), tail) {
                let min = parse_i64(value).ok_or_else(Reply::not_integer)?;
                parsed.min_match_len = min.max(0) as usize;
                rest = tail;
            } else {
                return Err(Reply::syntax_error());
            }
        }
        if parsed.len && parsed.idx {
            return Err(Reply::error(
                "ERR If you want both the length and indexes, please just use IDX.",
            ));
        }
        Ok(parsed)
    }
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]: the longest common
/// subsequence of two strings (missing keys are empty), its length, or the matching
/// ranges from the end, as Redis reports them.
pub fn lcs(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key_a, key_b, options @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let string_of = |key: &Bytes| match ks.get(key, now_ms) {
            None => Ok(Bytes::new()),
            Some(entry) => entry
                .as_str()
                .cloned()
                .map_err(|_| Reply::error("ERR The specified keys must contain string values")),
        };
        let (a, b) = (string_of(key_a)?, string_of(key_b)?);
        let options = LcsOptions::parse(options)?;
        if (a.len() + 1).saturating_mul(b.len() + 1) > MAX_LCS_CELLS {
            return Err(Reply::error(
                "ERR the strings are too long for LCS (max-lcs-cells)",
            ));
        }
        Ok(Table::new(&a, &b).answer(&a, &b, &options))
    })
}

/// The dynamic-programming table: `cell(i, j)` is the LCS length of `a[..i]`, `b[..j]`.
struct Table {
    width: usize,
    cells: Vec<u32>,
}

impl Table {
    fn new(a: &[u8], b: &[u8]) -> Table {
        let width = b.len() + 1;
        let mut cells = vec![0u32; (a.len() + 1) * width];
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                cells[i * width + j] = if a[i - 1] == b[j - 1] {
                    cells[(i - 1) * width + j - 1] + 1
                } else {
                    cells[(i - 1) * width + j].max(cells[i * width + j - 1])
                };
            }
        }
        Table { width, cells }
    }

    fn cell(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.width + j]
    }

    /// Walks back from the end, collecting the subsequence and its matching ranges (Redis
    /// reports the ranges from the last one to the first).
    fn answer(&self, a: &[u8], b: &[u8], options: &LcsOptions) -> Reply {
        let total = self.cell(a.len(), b.len());
        if options.len {
            return Reply::Int(i64::from(total));
        }
        let mut subsequence = vec![0u8; total as usize];
        let mut left = total as usize;
        let mut matches = Vec::new();
        // The range being grown: (a_start, a_end, b_start, b_end).
        let mut range: Option<(usize, usize, usize, usize)> = None;
        let (mut i, mut j) = (a.len(), b.len());
        while i > 0 && j > 0 {
            let mut emit = false;
            if a[i - 1] == b[j - 1] {
                left -= 1;
                subsequence[left] = a[i - 1];
                range = match range {
                    None => Some((i - 1, i - 1, j - 1, j - 1)),
                    Some((a_start, a_end, b_start, b_end)) if a_start == i && b_start == j => {
                        Some((a_start - 1, a_end, b_start - 1, b_end))
                    }
                    Some(other) => {
                        emit = true;
                        Some(other)
                    }
                };
                if matches!(range, Some((0, ..)) | Some((_, _, 0, _))) {
                    emit = true;
                }
                i -= 1;
                j -= 1;
            } else {
                if self.cell(i - 1, j) > self.cell(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                emit = range.is_some();
            }
            if let (true, Some((a_start, a_end, b_start, b_end))) = (emit, range) {
                let len = a_end - a_start + 1;
                if len >= options.min_match_len {
                    let pair = |start: usize, end: usize| {
                        Reply::Array(vec![Reply::Int(start as i64), Reply::Int(end as i64)])
                    };
                    let mut entry = vec![pair(a_start, a_end), pair(b_start, b_end)];
                    if options.with_match_len {
                        entry.push(Reply::Int(len as i64));
                    }
                    matches.push(Reply::Array(entry));
                }
                range = None;
            }
        }
        if !options.idx {
            return Reply::Bulk(Bytes::from(subsequence));
        }
        Reply::Map(vec![
            (
                Reply::Bulk(Bytes::from_static(b"matches")),
                Reply::Array(matches),
            ),
            (
                Reply::Bulk(Bytes::from_static(b"len")),
                Reply::Int(i64::from(total)),
            ),
        ])
    }
}
