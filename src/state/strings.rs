//! String commands, and FENCE. Every write of a value takes a new fencing token; changing
//! only a deadline (GETEX, EXPIRE, PERSIST) keeps the token.

use bytes::{Bytes, BytesMut};

use super::{command_name, invoked_as, now_i64, run, wrong_arity, Keyspace, Ttl, Value};
use crate::command::args::parse_i64;
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
        [_, _] => Ok(super::keys::del(ks, now_ms, argv)),
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
mod tests {
    use super::super::tests::{bulk, bulks, err, int, Harness};
    use crate::reply::Reply;

    const INVALID_SET: &str = "ERR invalid expire time in 'set' command";
    const NOT_INT: &str = "ERR value is not an integer or out of range";
    const SYNTAX: &str = "ERR syntax error";

    #[test]
    fn get_and_set_round_trip_and_missing_is_nil() {
        let mut h = Harness::new();
        assert_eq!(h.read("get k"), Reply::Nil);
        assert_eq!(h.write("set k v"), Reply::Ok);
        assert_eq!(h.read("get k"), bulk("v"));
        assert_eq!(h.write("SET k w"), Reply::Ok);
        assert_eq!(h.read("GET k"), bulk("w"));
    }

    #[test]
    fn set_nx_and_xx_write_only_when_their_condition_holds() {
        let mut h = Harness::new();
        assert_eq!(h.write("set k v xx"), Reply::Nil);
        assert_eq!(h.read("get k"), Reply::Nil);
        assert_eq!(h.write("set k v nx"), Reply::Ok);
        assert_eq!(h.write("set k w nx"), Reply::Nil);
        assert_eq!(h.read("get k"), bulk("v"));
        assert_eq!(h.write("set k w xx"), Reply::Ok);
        assert_eq!(h.read("get k"), bulk("w"));
    }

    #[test]
    fn set_get_returns_the_old_value_even_when_nx_refuses() {
        let mut h = Harness::new();
        assert_eq!(h.write("set k v get"), Reply::Nil);
        assert_eq!(h.write("set k w get"), bulk("v"));
        assert_eq!(h.write("set k x nx get"), bulk("w"));
        assert_eq!(h.read("get k"), bulk("w"));
        assert_eq!(h.write("set other x xx get"), Reply::Nil);
        assert_eq!(h.read("get other"), Reply::Nil);
    }

    #[test]
    fn set_expiry_options_set_absolute_deadlines() {
        let mut h = Harness::new();
        let now = h.now_ms;
        h.write("set a v ex 10");
        assert_eq!(h.read("pttl a"), int(10_000));
        h.write("set b v px 1500");
        assert_eq!(h.read("pttl b"), int(1_500));
        h.write(&format!("set c v exat {}", now / 1000 + 100));
        assert_eq!(
            h.read("pexpiretime c"),
            int(((now / 1000 + 100) * 1000) as i64)
        );
        h.write(&format!("set d v pxat {}", now + 42));
        assert_eq!(h.read("pttl d"), int(42));
        // A plain SET drops the deadline; KEEPTTL keeps it.
        h.write("set a w");
        assert_eq!(h.read("ttl a"), int(-1));
        h.write("set b w keepttl");
        assert_eq!(h.read("pttl b"), int(1_500));
        h.write("set new w keepttl");
        assert_eq!(h.read("ttl new"), int(-1));
    }

    #[test]
    fn set_with_a_past_absolute_time_removes_the_key() {
        let mut h = Harness::new();
        h.write("set k v");
        assert_eq!(h.write("set k w pxat 1"), Reply::Ok);
        assert_eq!(h.read("get k"), Reply::Nil);
        assert_eq!(h.read("dbsize"), int(0));
    }

    #[test]
    fn set_options_in_any_order_and_case() {
        let mut h = Harness::new();
        assert_eq!(h.write("set k v PX 100 nx GeT"), Reply::Nil);
        assert_eq!(h.read("pttl k"), int(100));
        assert_eq!(h.write("set k v get xx ex 5"), bulk("v"));
        assert_eq!(h.read("ttl k"), int(5));
        // Repeating an option is allowed; the last value wins.
        assert_eq!(h.write("set k v ex 5 ex 7"), Reply::Ok);
        assert_eq!(h.read("ttl k"), int(7));
        assert_eq!(h.write("set k v nx nx"), Reply::Nil);
    }

    #[test]
    fn set_conflicting_or_incomplete_options_are_syntax_errors() {
        let mut h = Harness::new();
        for line in [
            "set k v nx xx",
            "set k v xx nx",
            "set k v ex 1 px 100",
            "set k v px 100 exat 5",
            "set k v ex 1 keepttl",
            "set k v keepttl pxat 5",
            "set k v ex",
            "set k v persist",
            "set k v foo",
        ] {
            assert_eq!(h.write(line), err(SYNTAX), "{line}");
        }
        assert_eq!(h.read("exists k"), int(0));
    }

    #[test]
    fn set_rejects_bad_expire_times_like_redis() {
        let mut h = Harness::new();
        for line in [
            "set k v ex 0",
            "set k v px -1",
            "set k v exat 0",
            "set k v ex 9223372036854775",
            "set k v px 9223372036854775807",
        ] {
            assert_eq!(h.write(line), err(INVALID_SET), "{line}");
        }
        assert_eq!(h.write("set k v ex abc"), err(NOT_INT));
        assert_eq!(h.write("set k v ex 1.5"), err(NOT_INT));
        assert_eq!(h.read("exists k"), int(0));
        // The largest absolute time is fine.
        assert_eq!(h.write("set k v pxat 9223372036854775807"), Reply::Ok);
    }

    #[test]
    fn setnx_answers_one_when_it_sets() {
        let mut h = Harness::new();
        assert_eq!(h.write("setnx k v"), int(1));
        assert_eq!(h.write("setnx k w"), int(0));
        assert_eq!(h.read("get k"), bulk("v"));
    }

    #[test]
    fn setex_and_psetex_set_value_and_deadline() {
        let mut h = Harness::new();
        assert_eq!(h.write("setex k 10 v"), Reply::Ok);
        assert_eq!(h.read("get k"), bulk("v"));
        assert_eq!(h.read("pttl k"), int(10_000));
        assert_eq!(h.write("psetex k 250 w"), Reply::Ok);
        assert_eq!(h.read("pttl k"), int(250));
        assert_eq!(
            h.write("setex k 0 v"),
            err("ERR invalid expire time in 'setex' command")
        );
        assert_eq!(
            h.write("PSETEX k -5 v"),
            err("ERR invalid expire time in 'psetex' command")
        );
        assert_eq!(h.write("setex k x v"), err(NOT_INT));
        assert_eq!(h.read("get k"), bulk("w"));
    }

    #[test]
    fn getdel_returns_the_value_and_removes_the_key() {
        let mut h = Harness::new();
        assert_eq!(h.write("getdel k"), Reply::Nil);
        h.write("set k v ex 100");
        assert_eq!(h.write("getdel k"), bulk("v"));
        assert_eq!(h.read("exists k"), int(0));
        assert_eq!(h.ks.expires_count(), 0);
    }

    #[test]
    fn getex_changes_only_the_deadline() {
        let mut h = Harness::new();
        assert_eq!(h.write("getex k ex 10"), Reply::Nil);
        h.write("set k v");
        assert_eq!(h.write("getex k"), bulk("v"));
        assert_eq!(h.read("ttl k"), int(-1));
        assert_eq!(h.write("getex k px 500"), bulk("v"));
        assert_eq!(h.read("pttl k"), int(500));
        assert_eq!(h.write("getex k persist"), bulk("v"));
        assert_eq!(h.read("ttl k"), int(-1));
        assert_eq!(
            h.write(&format!("getex k exat {}", h.now_ms / 1000 + 60)),
            bulk("v")
        );
        assert!(matches!(h.read("ttl k"), Reply::Int(59..=60)));
        // A past absolute time removes the key after answering.
        assert_eq!(h.write("getex k pxat 10"), bulk("v"));
        assert_eq!(h.read("get k"), Reply::Nil);
    }

    #[test]
    fn getex_option_errors() {
        let mut h = Harness::new();
        h.write("set k v");
        for line in [
            "getex k nx",
            "getex k get",
            "getex k keepttl",
            "getex k ex 1 persist",
            "getex k persist px 1",
            "getex k ex 1 px 1",
            "getex k ex",
        ] {
            assert_eq!(h.write(line), err(SYNTAX), "{line}");
        }
        assert_eq!(
            h.write("getex k ex 0"),
            err("ERR invalid expire time in 'getex' command")
        );
        assert_eq!(h.write("getex k px x"), err(NOT_INT));
    }

    #[test]
    fn getset_returns_the_old_value_and_drops_the_deadline() {
        let mut h = Harness::new();
        assert_eq!(h.write("getset k a"), Reply::Nil);
        h.write("expire k 100");
        assert_eq!(h.write("getset k b"), bulk("a"));
        assert_eq!(h.read("get k"), bulk("b"));
        assert_eq!(h.read("ttl k"), int(-1));
    }

    #[test]
    fn mget_gives_nil_for_missing_keys() {
        let mut h = Harness::new();
        h.write("mset a 1 b 2");
        assert_eq!(
            h.read("mget a nope b a"),
            Reply::Array(vec![bulk("1"), Reply::Nil, bulk("2"), bulk("1")])
        );
    }

    #[test]
    fn mset_sets_all_pairs_and_drops_deadlines() {
        let mut h = Harness::new();
        h.write("set a old ex 100");
        assert_eq!(h.write("mset a 1 b 2 a 3"), Reply::Ok);
        assert_eq!(h.read("mget a b"), bulks(&["3", "2"]));
        assert_eq!(h.read("ttl a"), int(-1));
        assert_eq!(
            h.write("mset a 1 b"),
            err("ERR wrong number of arguments for 'mset' command")
        );
        assert_eq!(h.read("get a"), bulk("3"));
    }

    #[test]
    fn msetnx_is_all_or_nothing() {
        let mut h = Harness::new();
        assert_eq!(h.write("msetnx a 1 b 2"), int(1));
        assert_eq!(h.write("msetnx c 3 b 4"), int(0));
        assert_eq!(
            h.read("mget a b c"),
            Reply::Array(vec![bulk("1"), bulk("2"), Reply::Nil])
        );
        assert_eq!(
            h.write("msetnx a 1 b"),
            err("ERR wrong number of arguments for 'msetnx' command")
        );
    }

    #[test]
    fn incr_family_counts_from_zero_and_keeps_the_deadline() {
        let mut h = Harness::new();
        assert_eq!(h.write("incr n"), int(1));
        assert_eq!(h.write("incrby n 10"), int(11));
        assert_eq!(h.write("decr n"), int(10));
        assert_eq!(h.write("decrby n 15"), int(-5));
        assert_eq!(h.write("incrby n -5"), int(-10));
        assert_eq!(h.read("get n"), bulk("-10"));
        h.write("pexpire n 1000");
        h.write("incr n");
        assert_eq!(h.read("pttl n"), int(1000));
    }

    #[test]
    fn incr_errors_match_redis() {
        let mut h = Harness::new();
        h.write("set s abc");
        assert_eq!(h.write("incr s"), err(NOT_INT));
        h.write("set s 007");
        assert_eq!(h.write("incr s"), err(NOT_INT));
        h.write("set s -0");
        assert_eq!(h.write("incr s"), err(NOT_INT));
        h.write_args(&["set", "s", " 1"]);
        assert_eq!(h.write("incr s"), err(NOT_INT));
        assert_eq!(h.write("incrby n x"), err(NOT_INT));
        assert_eq!(h.write("incrby n 99999999999999999999"), err(NOT_INT));
        h.write("set max 9223372036854775807");
        assert_eq!(
            h.write("incr max"),
            err("ERR increment or decrement would overflow")
        );
        h.write("set min -9223372036854775808");
        assert_eq!(
            h.write("decr min"),
            err("ERR increment or decrement would overflow")
        );
        assert_eq!(
            h.write("decrby n -9223372036854775808"),
            err("ERR decrement would overflow")
        );
        assert_eq!(h.write("decrby n 9223372036854775807"), int(-i64::MAX));
        assert_eq!(h.read("get max"), bulk("9223372036854775807"));
    }

    #[test]
    fn append_creates_or_extends_and_answers_the_length() {
        let mut h = Harness::new();
        assert_eq!(h.write("append k hello"), int(5));
        h.write("expire k 100");
        assert_eq!(h.write("append k _world"), int(11));
        assert_eq!(h.read("get k"), bulk("hello_world"));
        assert_eq!(h.read("ttl k"), int(100));
    }

    #[test]
    fn strlen_counts_bytes_and_missing_is_zero() {
        let mut h = Harness::new();
        assert_eq!(h.read("strlen k"), int(0));
        h.write("set k héllo");
        assert_eq!(h.read("strlen k"), int(6));
    }

    #[test]
    fn fence_gives_the_token_or_nil() {
        let mut h = Harness::new();
        assert_eq!(h.read("fence k"), Reply::Nil);
        h.write("set k v");
        assert_eq!(h.read("fence k"), int(1));
        h.write("set j v");
        assert_eq!(h.read("fence j"), int(2));
    }

    #[test]
    fn stored_values_do_not_share_the_argument_buffer() {
        use bytes::Bytes;
        let mut h = Harness::new();
        let buffer = Bytes::from(vec![b'x'; 1024]);
        let argv = vec![Bytes::from("set"), buffer.slice(0..3), buffer.slice(3..6)];
        h.ks.apply_batch(&super::super::Batch {
            now_ms: h.now_ms,
            ops: vec![argv],
        });
        let (key, entry) = h.ks.entries.iter().next().unwrap();
        let super::Value::Str(value) = &entry.value else {
            panic!("a string was stored");
        };
        assert!(!std::ptr::eq(key.as_ptr(), buffer.as_ptr()));
        assert!(!std::ptr::eq(value.as_ptr(), buffer[3..].as_ptr()));
    }

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    const DIGEST: &str =
        "ERR IFDEQ and IFDNE (digest conditions) are not supported by raftlock; use IFEQ or IFNE";

    #[test]
    fn set_ifeq_writes_only_over_an_equal_value_and_never_creates() {
        let mut h = Harness::new();
        assert_eq!(h.write("set k new ifeq old"), Reply::Nil);
        assert_eq!(h.read("exists k"), int(0));
        h.write("set k old");
        assert_eq!(h.write("set k new ifeq other"), Reply::Nil);
        assert_eq!(h.read("get k"), bulk("old"));
        let before = h.token("k");
        assert_eq!(h.write("set k new IFEQ old px 500"), Reply::Ok);
        assert_eq!(h.read("get k"), bulk("new"));
        assert_eq!(h.read("pttl k"), int(500));
        assert!(h.token("k") > before);
        // With GET the old value comes back whether or not the condition held.
        assert_eq!(h.write("set k x ifeq nope get"), bulk("new"));
        assert_eq!(h.write("set k x get ifeq new"), bulk("new"));
        assert_eq!(h.read("get k"), bulk("x"));
        assert_eq!(h.write("set missing x ifeq y get"), Reply::Nil);
    }

    #[test]
    fn set_ifne_writes_over_a_different_value_or_a_missing_key() {
        let mut h = Harness::new();
        assert_eq!(h.write("set k v ifne v"), Reply::Ok);
        assert_eq!(h.write("set k w ifne v"), Reply::Nil);
        assert_eq!(h.read("get k"), bulk("v"));
        assert_eq!(h.write("set k w ifne other"), Reply::Ok);
        assert_eq!(h.read("get k"), bulk("w"));
    }

    #[test]
    fn set_conditions_exclude_each_other_and_need_a_string() {
        let mut h = Harness::new();
        for line in [
            "set k v nx ifeq a",
            "set k v ifeq a xx",
            "set k v ifeq a ifne b",
            "set k v ifne a nx",
            "set k v ifeq",
        ] {
            assert_eq!(h.write(line), err(SYNTAX), "{line}");
        }
        assert_eq!(h.write("set k v ifeq a ifeq b"), Reply::Nil);
        assert_eq!(h.write("getex k ifeq a"), err(SYNTAX));
        assert_eq!(h.write("set k v ifdeq 0123456789abcdef"), err(DIGEST));
        assert_eq!(h.write("set k v ifdne 0123456789abcdef"), err(DIGEST));
        h.write("hset h f v");
        h.write("lock l owner 10000");
        for key in ["h", "l"] {
            assert_eq!(h.write(&format!("set {key} v ifeq v")), err(WRONGTYPE));
            assert_eq!(h.write(&format!("set {key} v ifne v")), err(WRONGTYPE));
        }
    }

    #[test]
    fn delifeq_deletes_only_an_equal_string() {
        let mut h = Harness::new();
        assert_eq!(h.write("delifeq k token"), int(0));
        h.write("set k token px 1000");
        assert_eq!(h.write("delifeq k other"), int(0));
        assert_eq!(h.read("get k"), bulk("token"));
        assert_eq!(h.write("delifeq k token"), int(1));
        assert_eq!(h.read("exists k"), int(0));
        assert_eq!(h.write("delifeq k token"), int(0));
        assert_eq!(h.ks.expires_count(), 0);
        h.write("hset h f v");
        h.write("lock l owner 10000");
        assert_eq!(h.write("delifeq h v"), err(WRONGTYPE));
        assert_eq!(h.write("delifeq l owner"), err(WRONGTYPE));
        assert_eq!(
            h.write("delifeq k"),
            err("ERR wrong number of arguments for 'delifeq' command")
        );
    }

    #[test]
    fn delifeq_does_not_see_an_expired_value() {
        let mut h = Harness::new();
        h.write("set k token px 100");
        h.advance(100);
        assert_eq!(h.write("delifeq k token"), int(0));
    }

    #[test]
    fn delex_without_a_condition_is_del_of_any_type() {
        let mut h = Harness::new();
        assert_eq!(h.write("delex k"), int(0));
        h.write("set k v");
        h.write("hset h f v");
        assert_eq!(h.write("delex k"), int(1));
        assert_eq!(h.write("delex h"), int(1));
        assert_eq!(h.read("dbsize"), int(0));
    }

    #[test]
    fn delex_ifeq_and_ifne_compare_the_string() {
        let mut h = Harness::new();
        assert_eq!(h.write("delex k ifeq v"), int(0));
        assert_eq!(h.write("delex k ifne v"), int(0));
        h.write("set k v");
        assert_eq!(h.write("delex k ifeq w"), int(0));
        assert_eq!(h.write("delex k IFNE v"), int(0));
        assert_eq!(h.read("get k"), bulk("v"));
        assert_eq!(h.write("delex k IfEq v"), int(1));
        h.write("set k v");
        assert_eq!(h.write("delex k ifne w"), int(1));
        assert_eq!(h.read("exists k"), int(0));
    }

    #[test]
    fn delex_errors() {
        let mut h = Harness::new();
        h.write("set k v");
        h.write("zadd z 1 m");
        assert_eq!(h.write("delex z ifeq m"), err(WRONGTYPE));
        assert_eq!(h.write("delex k foo v"), err(SYNTAX));
        assert_eq!(h.write("delex k ifdeq 0123456789abcdef"), err(DIGEST));
        let arity = err("ERR wrong number of arguments for 'delex' command");
        assert_eq!(h.write("delex k ifeq"), arity);
        assert_eq!(h.write("delex k ifeq v ifne w"), arity);
        assert_eq!(h.read("get k"), bulk("v"));
    }
}
