//! String commands, and FENCE. Every write of a value takes a new fencing token; changing
//! only a deadline (GETEX, EXPIRE, PERSIST) keeps the token.

use bytes::{Bytes, BytesMut};

use super::decimal::{Decimal, DecimalError};
use super::{command_name, invoked_as, now_i64, run, wrong_arity, Keyspace, Ttl, Value};
use crate::args::parse_i64;
use crate::reply::Reply;

use crate::config::state_limits::MAX_STRING_BYTES;

/// A value to store, copied out of the argument so it does not pin the buffer the
/// argument was sliced from (see `Keyspace::store`).
fn owned(value: &[u8]) -> Value {
    Value::Str(Bytes::copy_from_slice(value))
}

fn bulk_or_nil(value: Option<Bytes>) -> Reply {
    value.map_or(Reply::Nil, Reply::Bulk)
}

/// GET key
pub fn get(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key] = argv else {
            return Err(wrong_arity(argv));
        };
        match ks.get(key, now_ms) {
            Some(entry) => Ok(Reply::Bulk(entry.as_str()?.clone())),
            None => Ok(Reply::Nil),
        }
    })
}

/// How an expiry option gives its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl ExpireKind {
    fn parse(option: &[u8]) -> Option<ExpireKind> {
        [
            (&b"ex"[..], ExpireKind::Ex),
            (b"px", ExpireKind::Px),
            (b"exat", ExpireKind::ExAt),
            (b"pxat", ExpireKind::PxAt),
        ]
        .into_iter()
        .find(|(name, _)| option.eq_ignore_ascii_case(name))
        .map(|(_, kind)| kind)
    }
}

/// SET's compare-and-set conditions (Redis 8.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Condition<'a> {
    /// Set only if the current value equals this; a missing key is not created.
    IfEq(&'a Bytes),
    /// Set only if the current value differs; a missing key is created.
    IfNe(&'a Bytes),
}

impl<'a> Condition<'a> {
    fn same_kind(&self, other: &Condition<'_>) -> bool {
        matches!(
            (self, other),
            (Condition::IfEq(_), Condition::IfEq(_)) | (Condition::IfNe(_), Condition::IfNe(_))
        )
    }

    fn holds(&self, current: &[u8]) -> bool {
        match self {
            Condition::IfEq(value) => current == value.as_ref(),
            Condition::IfNe(value) => current != value.as_ref(),
        }
    }
}

/// The options of SET and GETEX (Redis's `parseExtendedStringArgumentsOrReply`).
#[derive(Default)]
struct StringOptions<'a> {
    nx: bool,
    xx: bool,
    condition: Option<Condition<'a>>,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    expire: Option<(ExpireKind, &'a Bytes)>,
}

impl<'a> StringOptions<'a> {
    /// Options in any order; the same option twice is allowed (the last value wins), two
    /// that conflict are a syntax error, as is one missing its value.
    fn parse(options: &'a [Bytes], for_set: bool) -> Result<StringOptions<'a>, Reply> {
        let mut parsed = StringOptions::default();
        let mut rest = options;
        while let [option, tail @ ..] = rest {
            rest = tail;
            let is = |word: &str| option.eq_ignore_ascii_case(word.as_bytes());
            let no_expire = parsed.expire.is_none();
            let no_condition = parsed.condition.is_none();
            if for_set && is("nx") && !parsed.xx && no_condition {
                parsed.nx = true;
            } else if for_set && is("xx") && !parsed.nx && no_condition {
                parsed.xx = true;
            } else if for_set && (is("ifeq") || is("ifne")) {
                let [value, tail @ ..] = tail else {
                    return Err(Reply::syntax_error());
                };
                let condition = if is("ifeq") {
                    Condition::IfEq(value)
                } else {
                    Condition::IfNe(value)
                };
                // One condition of NX, XX, IFEQ, IFNE; the same one again is allowed.
                let compatible = !parsed.nx
                    && !parsed.xx
                    && parsed
                        .condition
                        .is_none_or(|previous| previous.same_kind(&condition));
                if !compatible {
                    return Err(Reply::syntax_error());
                }
                parsed.condition = Some(condition);
                rest = tail;
            } else if for_set && (is("ifdeq") || is("ifdne")) {
                return Err(Reply::error(DIGEST_UNSUPPORTED));
            } else if for_set && is("get") {
                parsed.get = true;
            } else if for_set && is("keepttl") && no_expire {
                parsed.keep_ttl = true;
            } else if !for_set && is("persist") && no_expire {
                parsed.persist = true;
            } else {
                let kind = ExpireKind::parse(option).ok_or_else(Reply::syntax_error)?;
                let compatible = !parsed.keep_ttl
                    && !parsed.persist
                    && parsed.expire.is_none_or(|(previous, _)| previous == kind);
                match tail {
                    [value, tail @ ..] if compatible => {
                        parsed.expire = Some((kind, value));
                        rest = tail;
                    }
                    _ => return Err(Reply::syntax_error()),
                }
            }
        }
        Ok(parsed)
    }
}

/// The absolute deadline in ms an expiry option names (Redis's
/// `getExpireMillisecondsOrReply`): the number must be positive and the result must fit.
/// EXAT and PXAT name Unix times: they land where the leader's wall clock puts them
/// (`wall`), while EX and PX count cluster time from the entry's.
fn deadline_ms(
    ks: &Keyspace,
    kind: ExpireKind,
    arg: &[u8],
    now_ms: u64,
    argv: &[Bytes],
) -> Result<i64, Reply> {
    let amount = parse_i64(arg).ok_or_else(Reply::not_integer)?;
    let invalid = || {
        Reply::Error(format!(
            "ERR invalid expire time in '{}' command",
            command_name(argv)
        ))
    };
    if amount <= 0 {
        return Err(invalid());
    }
    let ms = match kind {
        ExpireKind::Ex | ExpireKind::ExAt => amount.checked_mul(1000).ok_or_else(invalid)?,
        ExpireKind::Px | ExpireKind::PxAt => amount,
    };
    match kind {
        ExpireKind::Ex | ExpireKind::Px => ms.checked_add(now_i64(now_ms)).ok_or_else(invalid),
        ExpireKind::ExAt | ExpireKind::PxAt => Ok(ks.cluster_ms_from_wall(ms)),
    }
}

/// What raftlock answers to the digest conditions (IFDEQ, IFDNE) of Redis 8.4: they
/// compare an XXH3 digest raftlock does not compute.
const DIGEST_UNSUPPORTED: &str =
    "ERR IFDEQ and IFDNE (digest conditions) are not supported by raftlock; use IFEQ or IFNE";

/// SET key value [NX | XX | IFEQ value | IFNE value] [GET]
///     [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]
pub fn set(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, value, options @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let options = StringOptions::parse(options, true)?;
        let deadline = options
            .expire
            .map(|(kind, arg)| deadline_ms(ks, kind, arg, now_ms, argv))
            .transpose()?;
        let old = ks.get_for_write(key, now_ms);
        let found = old.is_some();
        let old_value = match old {
            Some(entry) if options.get => Some(entry.as_str()?.clone()),
            _ => None,
        };
        let answer = if options.get {
            bulk_or_nil(old_value)
        } else {
            Reply::Ok
        };
        let must_exist = options.xx || matches!(options.condition, Some(Condition::IfEq(_)));
        let refused = if (options.nx && found) || (must_exist && !found) {
            true
        } else {
            match (options.condition, ks.get(key, now_ms)) {
                (Some(condition), Some(entry)) => !condition.holds(entry.as_str()?),
                _ => false,
            }
        };
        if refused {
            return Ok(if options.get { answer } else { Reply::Nil });
        }
        let ttl = match deadline {
            Some(deadline) => Ttl::At(deadline),
            None if options.keep_ttl => Ttl::Keep,
            None => Ttl::Clear,
        };
        ks.refuse_lock(key, now_ms)?;
        ks.store(key, owned(value), ttl, now_ms);
        Ok(answer)
    })
}

/// SETNX key value: 1 if it was set.
pub fn setnx(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    let [_, key, value] = argv else {
        return wrong_arity(argv);
    };
    if ks.get_for_write(key, now_ms).is_some() {
        return Reply::Int(0);
    }
    ks.store(key, owned(value), Ttl::Clear, now_ms);
    Reply::Int(1)
}

/// SETEX key seconds value, PSETEX key milliseconds value
pub fn setex(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, time, value] = argv else {
            return Err(wrong_arity(argv));
        };
        let kind = if invoked_as(argv, "psetex") {
            ExpireKind::Px
        } else {
            ExpireKind::Ex
        };
        let deadline = deadline_ms(ks, kind, time, now_ms, argv)?;
        ks.refuse_lock(key, now_ms)?;
        ks.store(key, owned(value), Ttl::At(deadline), now_ms);
        Ok(Reply::Ok)
    })
}

/// GETDEL key
pub fn getdel(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key] = argv else {
            return Err(wrong_arity(argv));
        };
        let Some(entry) = ks.get_for_write(key, now_ms) else {
            return Ok(Reply::Nil);
        };
        let value = entry.as_str()?.clone();
        ks.remove(key);
        Ok(Reply::Bulk(value))
    })
}

/// DELIFEQ key value (Valkey 9): 1 if the key held exactly `value` and is now removed,
/// else 0. The lock release of Redlock-style clients, without a script.
pub fn delifeq(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, value] = argv else {
            return Err(wrong_arity(argv));
        };
        delete_if(ks, key, now_ms, Condition::IfEq(value))
    })
}

/// DELEX key [IFEQ value | IFNE value] (Redis 8.4): without a condition, DEL of one key;
/// with one, 1 if the string's value met it and the key is now removed, else 0.
pub fn delex(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| match argv {
        [_, _] => Ok(super::key_commands::del(ks, now_ms, argv)),
        [_, key, option, value] => {
            let is = |word: &str| option.eq_ignore_ascii_case(word.as_bytes());
            let condition = if is("ifeq") {
                Condition::IfEq(value)
            } else if is("ifne") {
                Condition::IfNe(value)
            } else if is("ifdeq") || is("ifdne") {
                return Err(Reply::error(DIGEST_UNSUPPORTED));
            } else {
                return Err(Reply::syntax_error());
            };
            delete_if(ks, key, now_ms, condition)
        }
        _ => Err(wrong_arity(argv)),
    })
}

/// Removes the string at `key` if its value meets `condition`: 1 if removed, 0 if the
/// key is missing or the condition fails, WRONGTYPE for another type.
fn delete_if(
    ks: &mut Keyspace,
    key: &[u8],
    now_ms: u64,
    condition: Condition<'_>,
) -> Result<Reply, Reply> {
    let Some(entry) = ks.get_for_write(key, now_ms) else {
        return Ok(Reply::Int(0));
    };
    if !condition.holds(entry.as_str()?) {
        return Ok(Reply::Int(0));
    }
    ks.remove(key);
    Ok(Reply::Int(1))
}

/// GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]: changes only the deadline, so
/// the value keeps its fencing token.
pub fn getex(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, options @ ..] = argv else {
            return Err(wrong_arity(argv));
        };
        let options = StringOptions::parse(options, false)?;
        let deadline = options
            .expire
            .map(|(kind, arg)| deadline_ms(ks, kind, arg, now_ms, argv))
            .transpose()?;
        let Some(entry) = ks.get_for_write(key, now_ms) else {
            return Ok(Reply::Nil);
        };
        let value = entry.as_str()?.clone();
        if deadline.is_some() || options.persist {
            ks.set_deadline(key, deadline, now_ms);
        }
        Ok(Reply::Bulk(value))
    })
}

/// GETSET key value: the old value; the new one has no deadline.
pub fn getset(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, value] = argv else {
            return Err(wrong_arity(argv));
        };
        let old = match ks.get_for_write(key, now_ms) {
            Some(entry) => Some(entry.as_str()?.clone()),
            None => None,
        };
        ks.store(key, owned(value), Ttl::Clear, now_ms);
        Ok(bulk_or_nil(old))
    })
}

/// MGET key [key ...]: nil for a missing key or one that is not a string.
pub fn mget(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    let keys = argv.get(1..).unwrap_or_default();
    Reply::Array(
        keys.iter()
            .map(|key| {
                let value = ks.get(key, now_ms).and_then(|entry| entry.as_str().ok());
                bulk_or_nil(value.cloned())
            })
            .collect(),
    )
}

/// The key/value pairs of MSET and MSETNX, or Redis's arity error for an odd count.
fn pairs(argv: &[Bytes]) -> Result<&[Bytes], Reply> {
    match argv.get(1..) {
        Some(pairs) if !pairs.is_empty() && pairs.len() % 2 == 0 => Ok(pairs),
        _ => Err(wrong_arity(argv)),
    }
}

/// MSET key value [key value ...]
pub fn mset(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let pairs = pairs(argv)?;
        for pair in pairs.chunks_exact(2) {
            ks.refuse_lock(&pair[0], now_ms)?;
        }
        for pair in pairs.chunks_exact(2) {
            ks.store(&pair[0], owned(&pair[1]), Ttl::Clear, now_ms);
        }
        Ok(Reply::Ok)
    })
}

/// MSETNX key value [key value ...]: all or nothing, 1 if set.
pub fn msetnx(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let pairs = pairs(argv)?;
        if pairs
            .chunks_exact(2)
            .any(|pair| ks.get(&pair[0], now_ms).is_some())
        {
            return Ok(Reply::Int(0));
        }
        for pair in pairs.chunks_exact(2) {
            ks.store(&pair[0], owned(&pair[1]), Ttl::Clear, now_ms);
        }
        Ok(Reply::Int(1))
    })
}

/// INCR key, INCRBY key n, DECR key, DECRBY key n: the new value; the deadline stays.
pub fn incr(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let (key, delta) = match argv {
            [_, key] if invoked_as(argv, "decr") => (key, -1),
            [_, key] => (key, 1),
            [_, key, by] => {
                let by = parse_i64(by).ok_or_else(Reply::not_integer)?;
                if !invoked_as(argv, "decrby") {
                    (key, by)
                } else if by == i64::MIN {
                    return Err(Reply::error("ERR decrement would overflow"));
                } else {
                    (key, -by)
                }
            }
            _ => return Err(wrong_arity(argv)),
        };
        let current = match ks.get_for_write(key, now_ms) {
            Some(entry) => parse_i64(entry.as_str()?).ok_or_else(Reply::not_integer)?,
            None => 0,
        };
        let new = current
            .checked_add(delta)
            .ok_or_else(|| Reply::error("ERR increment or decrement would overflow"))?;
        ks.store(
            key,
            Value::Str(Bytes::from(new.to_string())),
            Ttl::Keep,
            now_ms,
        );
        Ok(Reply::Int(new))
    })
}

/// INCRBYFLOAT key increment: the new value, computed in decimal (`decimal.rs`); the
/// deadline stays.
pub fn incrbyfloat(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, increment] = argv else {
            return Err(wrong_arity(argv));
        };
        let current = match ks.get_for_write(key, now_ms) {
            Some(entry) => Some(parse_float(entry.as_str()?)?),
            None => None,
        };
        let sum = add_floats(current, increment)?;
        ks.store(key, Value::Str(sum.clone()), Ttl::Keep, now_ms);
        Ok(Reply::Bulk(sum))
    })
}

/// A stored or given float, or Redis's error for one that is not.
pub(crate) fn parse_float(text: &[u8]) -> Result<Decimal, Reply> {
    Decimal::parse(text).map_err(|error| match error {
        DecimalError::Invalid => Reply::error("ERR value is not a valid float"),
        DecimalError::Infinite => infinite(),
    })
}

fn infinite() -> Reply {
    Reply::error("ERR increment would produce NaN or Infinity")
}

/// `current + increment` as Redis prints it (INCRBYFLOAT, HINCRBYFLOAT).
pub(crate) fn add_floats(current: Option<Decimal>, increment: &[u8]) -> Result<Bytes, Reply> {
    let increment = parse_float(increment)?;
    let sum = match current {
        Some(current) => current.add(increment).map_err(|_| infinite())?,
        None => increment,
    };
    Ok(Bytes::from(sum.render()))
}

/// APPEND key suffix: the new length; the deadline stays.
pub fn append(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key, suffix] = argv else {
            return Err(wrong_arity(argv));
        };
        let value = match ks.get_for_write(key, now_ms) {
            Some(entry) => {
                let old = entry.as_str()?;
                if old.len() + suffix.len() > MAX_STRING_BYTES {
                    return Err(Reply::error(
                        "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
                    ));
                }
                let mut joined = BytesMut::with_capacity(old.len() + suffix.len());
                joined.extend_from_slice(old);
                joined.extend_from_slice(suffix);
                joined.freeze()
            }
            None => Bytes::copy_from_slice(suffix),
        };
        let len = value.len() as i64;
        ks.store(key, Value::Str(value), Ttl::Keep, now_ms);
        Ok(Reply::Int(len))
    })
}

/// STRLEN key: 0 for a missing key.
pub fn strlen(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, key] = argv else {
            return Err(wrong_arity(argv));
        };
        let len = match ks.get(key, now_ms) {
            Some(entry) => entry.as_str()?.len(),
            None => 0,
        };
        Ok(Reply::Int(len as i64))
    })
}

/// FENCE key: the fencing token of the key's current value, nil without the key.
pub fn fence(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    let [_, key] = argv else {
        return wrong_arity(argv);
    };
    let token = match ks.get(key, now_ms) {
        // A lock's token is its latest current grant.
        Some(entry) => match entry.as_lock() {
            Some(lock) => lock
                .holders
                .iter()
                .filter(|h| ks.expiry_hold().live(h.lease_deadline_ms, now_ms))
                .map(|h| h.token)
                .max(),
            None => Some(entry.token),
        },
        None => None,
    };
    token.map_or(Reply::Nil, |t| {
        Reply::Int(i64::try_from(t).unwrap_or(i64::MAX))
    })
}

#[cfg(test)]
#[path = "strings_tests.rs"]
mod tests;
