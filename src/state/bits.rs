//! Bit commands on strings, as rate limiters and bloom filters use them: SETBIT, GETBIT,
//! BITCOUNT, BITPOS, BITOP. Bit 0 is the most significant bit of the first byte.

use bytes::{Bytes, BytesMut};

use super::string_ranges::clamp_range;
use super::{run, wrong_arity, Keyspace, Ttl, Value};
use crate::args::parse_i64;
use crate::config::state_limits::MAX_STRING_BYTES;
use crate::reply::Reply;

fn bad_offset() -> Reply {
    Reply::error("ERR bit offset is not an integer or out of range")
}

/// A bit offset: not negative, within `proto-max-bulk-len` bytes.
fn parse_offset(arg: &[u8]) -> Result<u64, Reply> {
    match parse_i64(arg) {
        Some(offset) if offset >= 0 && ((offset as u64) >> 3) < MAX_STRING_BYTES as u64 => {
            Ok(offset as u64)
        }
        _ => Err(bad_offset()),
    }
}

fn bit_at(value: &[u8], offset: u64) -> u8 {
    value
        .get((offset >> 3) as usize)
        .map_or(0, |byte| (byte >> (7 - (offset & 7))) & 1)
}

/// The string under `key` for a bit command: empty when missing, WRONGTYPE when not a
/// string.
fn string_or_empty(ks: &Keyspace, key: &[u8], now_ms: u64) -> Result<Option<Bytes>, Reply> {
    match ks.get(key, now_ms) {
        Some(entry) => Ok(Some(entry.as_str()?.clone())),
        None => Ok(None),
    }
}

/// SETBIT key offset 0|1: the bit's old value. The string grows with zero bytes as
/// needed (even to set a 0), keeps its deadline and takes a new fencing token.
pub fn setbit(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, offset, bit] = argv else {
            return Err(wrong_arity(argv));
        };
        let offset = parse_offset(offset)?;
        let on = match bit.as_ref() {
            b"1" => true,
            b"0" => false,
            _ => return Err(Reply::error("ERR bit is not an integer or out of range")),
        };
        ks.get_for_write(key, now_ms);
        let old = string_or_empty(ks, key, now_ms)?;
        let old = old.as_deref().unwrap_or_default();
        let byte = (offset >> 3) as usize;
        let mut value = BytesMut::from(old);
        if value.len() <= byte {
            value.resize(byte + 1, 0);
        }
        let mask = 1u8 << (7 - (offset & 7));
        let was = bit_at(old, offset);
        if on {
            value[byte] |= mask;
        } else {
            value[byte] &= !mask;
        }
        ks.refuse_lock(key, now_ms)?;
        ks.store(key, Value::Str(value.freeze()), Ttl::Keep, now_ms);
        Ok(Reply::Int(i64::from(was)))
    })
}

/// GETBIT key offset: 0 past the end or for a missing key.
pub fn getbit(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, offset] = argv else {
            return Err(wrong_arity(argv));
        };
        let offset = parse_offset(offset)?;
        let value = string_or_empty(ks, key, now_ms)?;
        Ok(Reply::Int(i64::from(bit_at(
            value.as_deref().unwrap_or_default(),
            offset,
        ))))
    })
}

/// BYTE or BIT: how a range's indexes count.
fn counts_bits(unit: &[u8]) -> Result<bool, Reply> {
    if unit.eq_ignore_ascii_case(b"bit") {
        Ok(true)
    } else if unit.eq_ignore_ascii_case(b"byte") {
        Ok(false)
    } else {
        Err(Reply::syntax_error())
    }
}

/// The bits `[first, last]` (inclusive, in bits) a range of `value` names.
fn bit_span(value: &[u8], start: i64, end: i64, in_bits: bool) -> Option<(u64, u64)> {
    let len = value.len() as i64 * if in_bits { 8 } else { 1 };
    let (start, end) = clamp_range(start, end, len)?;
    Some(if in_bits {
        (start as u64, end as u64)
    } else {
        (start as u64 * 8, end as u64 * 8 + 7)
    })
}

/// BITCOUNT key [start end [BYTE | BIT]]: the set bits in the range; 0 for a missing key.
pub fn bitcount(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, range @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        // Redis 7.0 answers a missing key before it reads the range.
        let Some(value) = string_or_empty(ks, key, now_ms)? else {
            return Ok(Reply::Int(0));
        };
        let (start, end, in_bits) = match range {
            [] => (0, -1, false),
            [start, end, unit @ ..] if unit.len() <= 1 => (
                parse_i64(start).ok_or_else(Reply::not_integer)?,
                parse_i64(end).ok_or_else(Reply::not_integer)?,
                unit.first()
                    .map(|u| counts_bits(u))
                    .transpose()?
                    .unwrap_or(false),
            ),
            _ => return Err(Reply::syntax_error()),
        };
        let Some((first, last)) = bit_span(&value, start, end, in_bits) else {
            return Ok(Reply::Int(0));
        };
        let count = (first..=last)
            .filter(|&bit| bit_at(&value, bit) == 1)
            .count();
        Ok(Reply::Int(count as i64))
    })
}

/// BITPOS key 0|1 [start [end [BYTE | BIT]]]: the first bit with that value, or -1. Without
/// an end, looking for 0 past a string of ones answers the bit just after it, as the
/// string were padded with zeros.
pub fn bitpos(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, bit, range @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let wanted = match parse_i64(bit) {
            Some(bit @ (0 | 1)) => bit as u8,
            Some(_) => return Err(Reply::error("ERR The bit argument must be 1 or 0.")),
            None => return Err(Reply::not_integer()),
        };
        let Some(value) = string_or_empty(ks, key, now_ms)? else {
            return Ok(Reply::Int(if wanted == 1 { -1 } else { 0 }));
        };
        let int = |arg: &Bytes| parse_i64(arg).ok_or_else(Reply::not_integer);
        let (start, end, in_bits, end_given) = match range {
            [] => (0, -1, false, false),
            [start] => (int(start)?, -1, false, false),
            [start, end, unit @ ..] if unit.len() <= 1 => {
                let in_bits = unit.first().map(|u| counts_bits(u)).transpose()?;
                (int(start)?, int(end)?, in_bits.unwrap_or(false), true)
            }
            _ => return Err(Reply::syntax_error()),
        };
        let len = value.len() as i64 * if in_bits { 8 } else { 1 };
        // BITPOS clamps as GETRANGE does, except that two negative indexes out of order
        // are an empty range rather than a special case.
        let from_end = |i: i64| if i < 0 { (len + i).max(0) } else { i };
        let (start, end) = (from_end(start), from_end(end).min(len - 1));
        if start > end {
            return Ok(Reply::Int(-1));
        }
        let (first, last) = if in_bits {
            (start as u64, end as u64)
        } else {
            (start as u64 * 8, end as u64 * 8 + 7)
        };
        let skip = if wanted == 1 { 0x00 } else { 0xff };
        let mut bit = first;
        while bit <= last {
            let whole_byte = bit & 7 == 0 && bit + 7 <= last;
            if whole_byte && value[(bit >> 3) as usize] == skip {
                bit += 8;
                continue;
            }
            if bit_at(&value, bit) == wanted {
                return Ok(Reply::Int(bit as i64));
            }
            bit += 1;
        }
        Ok(Reply::Int(if wanted == 0 && !end_given {
            last as i64 + 1
        } else {
            -1
        }))
    })
}

/// BITOP AND | OR | XOR | NOT destkey key [key ...]: stores the bitwise result (as long as
/// the longest source, shorter ones padded with zeros) and answers its length; an empty
/// result removes the destination.
pub fn bitop(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, op, destination, sources @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let is = |name: &str| op.eq_ignore_ascii_case(name.as_bytes());
        let not = is("not");
        let combine: fn(u8, u8) -> u8 = if is("and") {
            |a, b| a & b
        } else if is("or") {
            |a, b| a | b
        } else if is("xor") {
            |a, b| a ^ b
        } else if not {
            if sources.len() != 1 {
                return Err(Reply::error(
                    "ERR BITOP NOT must be called with a single source key.",
                ));
            }
            |a, _| !a
        } else {
            return Err(Reply::syntax_error());
        };
        if sources.is_empty() {
            return Err(wrong_arity(argv));
        }
        let values = sources
            .iter()
            .map(|key| string_or_empty(ks, key, now_ms).map(Option::unwrap_or_default))
            .collect::<Result<Vec<Bytes>, Reply>>()?;
        let len = values.iter().map(Bytes::len).max().unwrap_or(0);
        let byte = |value: &Bytes, i: usize| value.get(i).copied().unwrap_or(0);
        let result: Vec<u8> = (0..len)
            .map(|i| {
                let first = byte(&values[0], i);
                match &values[1..] {
                    // One source: NOT inverts it, the others copy it.
                    [] if not => !first,
                    rest => rest.iter().fold(first, |acc, v| combine(acc, byte(v, i))),
                }
            })
            .collect();
        ks.store_result(destination, Value::Str(Bytes::from(result)), len, now_ms)
    })
}

#[cfg(test)]
#[path = "bits_tests.rs"]
mod tests;
