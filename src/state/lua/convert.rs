//! Redis's conversion rules between Lua values and replies, both ways, for the two
//! protocols a script can choose with `redis.setresp` (Redis's `script_lua.c`).

use bytes::Bytes;
use mlua::{Lua, Table, Value};

use crate::reply::Reply;
use crate::resp::double_text;

/// Nesting deeper than this in a script's reply becomes an error element, as Redis's
/// `reached lua stack limit`: a table that contains itself must not recurse forever.
const MAX_REPLY_DEPTH: usize = 1000;

/// A reply from redis.call as the script sees it: `Err` holds the error table, raised by
/// redis.call and returned by redis.pcall.
pub(super) fn reply_to_lua(lua: &Lua, reply: &Reply, resp3: bool) -> mlua::Result<Value> {
    Ok(match reply {
        Reply::Ok => single_field(lua, "ok", "OK")?,
        Reply::Status(text) => single_field(lua, "ok", text.as_str())?,
        Reply::Error(text) => error_table(lua, text)?,
        Reply::Int(n) => Value::Number(*n as f64),
        Reply::Bulk(data) => Value::String(lua.create_string(data)?),
        Reply::Nil | Reply::NilArray if resp3 => Value::Nil,
        Reply::Nil | Reply::NilArray => Value::Boolean(false),
        Reply::Array(items) | Reply::Push(items) => array(lua, items, resp3)?,
        Reply::Map(pairs) if resp3 => {
            let map = lua.create_table_with_capacity(0, pairs.len())?;
            for (key, value) in pairs {
                map.raw_set(
                    reply_to_lua(lua, key, resp3)?,
                    reply_to_lua(lua, value, resp3)?,
                )?;
            }
            wrap(lua, "map", Value::Table(map))?
        }
        Reply::Map(pairs) => {
            let flat = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (key, value)) in pairs.iter().enumerate() {
                flat.raw_set(2 * i + 1, reply_to_lua(lua, key, resp3)?)?;
                flat.raw_set(2 * i + 2, reply_to_lua(lua, value, resp3)?)?;
            }
            Value::Table(flat)
        }
        // ZRANGE WITHSCORES: [member, score] pairs in RESP3, flat in RESP2, as on the wire.
        Reply::Pairs(pairs) if resp3 => {
            let outer = lua.create_table_with_capacity(pairs.len(), 0)?;
            for (i, (key, value)) in pairs.iter().enumerate() {
                let pair = lua.create_table_with_capacity(2, 0)?;
                pair.raw_set(1, reply_to_lua(lua, key, resp3)?)?;
                pair.raw_set(2, reply_to_lua(lua, value, resp3)?)?;
                outer.raw_set(i + 1, pair)?;
            }
            Value::Table(outer)
        }
        Reply::Pairs(pairs) => {
            let flat = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (key, value)) in pairs.iter().enumerate() {
                flat.raw_set(2 * i + 1, reply_to_lua(lua, key, resp3)?)?;
                flat.raw_set(2 * i + 2, reply_to_lua(lua, value, resp3)?)?;
            }
            Value::Table(flat)
        }
        Reply::Set(items) if resp3 => {
            let set = lua.create_table_with_capacity(0, items.len())?;
            for item in items {
                set.raw_set(reply_to_lua(lua, item, resp3)?, true)?;
            }
            wrap(lua, "set", Value::Table(set))?
        }
        Reply::Set(items) => array(lua, items, resp3)?,
        Reply::Double(d) if resp3 => wrap(lua, "double", Value::Number(*d))?,
        Reply::Double(d) => Value::String(lua.create_string(double_text(*d))?),
        Reply::Bool(b) if resp3 => Value::Boolean(*b),
        Reply::Bool(b) => Value::Number(if *b { 1.0 } else { 0.0 }),
        Reply::Verbatim(format, text) if resp3 => {
            let verbatim = lua.create_table()?;
            verbatim.raw_set("format", format.as_str())?;
            verbatim.raw_set("string", lua.create_string(text)?)?;
            wrap(lua, "verbatim_string", Value::Table(verbatim))?
        }
        Reply::Verbatim(_, text) => Value::String(lua.create_string(text)?),
        // Blocking commands run in their non-blocking form inside scripts, so no handler
        // can queue a script; this is the reply should one ever try.
        Reply::Blocked => error_table(lua, "ERR blocking commands cannot block inside a script")?,
    })
}

fn array(lua: &Lua, items: &[Reply], resp3: bool) -> mlua::Result<Value> {
    let table = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        table.raw_set(i + 1, reply_to_lua(lua, item, resp3)?)?;
    }
    Ok(Value::Table(table))
}

fn single_field(lua: &Lua, field: &str, text: &str) -> mlua::Result<Value> {
    let table = lua.create_table()?;
    table.raw_set(field, lua.create_string(text)?)?;
    Ok(Value::Table(table))
}

fn wrap(lua: &Lua, field: &str, value: Value) -> mlua::Result<Value> {
    let table = lua.create_table()?;
    table.raw_set(field, value)?;
    Ok(Value::Table(table))
}

/// `{err = "CODE text"}`, as Redis builds it from an error reply (trailing newlines
/// trimmed).
pub(super) fn error_table(lua: &Lua, text: &str) -> mlua::Result<Value> {
    single_field(lua, "err", text.trim_end_matches(['\r', '\n']))
}

/// The text of `redis.error_reply(msg)`: a leading `-` is dropped, and a message with no
/// space gets the generic `ERR` code (Redis's `luaPushErrorBuff`).
pub(super) fn error_reply_text(msg: &str) -> String {
    let msg = msg.strip_prefix('-').unwrap_or(msg);
    let text = match msg.split_once(' ') {
        Some((code, rest)) => format!("{code} {rest}"),
        None => format!("ERR {msg}"),
    };
    text.trim_end_matches(['\r', '\n']).to_string()
}

/// Counts reply elements so a script cannot make the node build an unbounded reply
/// (a table listed in itself twice doubles at every level).
pub(super) struct ReplyBudget {
    pub left: usize,
}

/// A script's return value as a reply (Redis's `luaReplyToRedisReply`). `resp3` is the
/// protocol the script chose with `redis.setresp`; it decides only how booleans convert.
pub(super) fn lua_to_reply(
    value: &Value,
    resp3: bool,
    depth: usize,
    budget: &mut ReplyBudget,
) -> Reply {
    if budget.left == 0 {
        return Reply::error("ERR reply too large: a script reply has too many elements");
    }
    budget.left -= 1;
    match value {
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp3 => Reply::Bool(*b),
        Value::Boolean(true) => Reply::Int(1),
        Value::Integer(n) => Reply::Int(*n),
        Value::Number(n) => Reply::Int(truncate(*n)),
        Value::Table(_) if depth >= MAX_REPLY_DEPTH => Reply::error("ERR reached lua stack limit"),
        Value::Table(table) => table_to_reply(table, resp3, depth, budget),
        _ => Reply::Nil,
    }
}

/// C's `(long long)` cast as x86-64 does it: toward zero, and NaN or a value out of
/// range gives the "integer indefinite" value, i64::MIN.
pub(super) fn truncate(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if n.is_nan() || !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

fn table_to_reply(table: &Table, resp3: bool, depth: usize, budget: &mut ReplyBudget) -> Reply {
    let field = |name: &str| table.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(err) = field("err") {
        return Reply::Error(err.to_string_lossy());
    }
    if let Value::String(ok) = field("ok") {
        return Reply::Status(ok.to_string_lossy());
    }
    match field("double") {
        Value::Number(d) => return Reply::Double(d),
        Value::Integer(n) => return Reply::Double(n as f64),
        _ => {}
    }
    if let Value::String(big) = field("big_number") {
        // No big-number reply type here: the digits go out as a bulk string.
        return Reply::Bulk(Bytes::copy_from_slice(&big.as_bytes()));
    }
    if let Value::Table(verbatim) = field("verbatim_string") {
        let format = verbatim.raw_get::<Value>("format").unwrap_or(Value::Nil);
        let text = verbatim.raw_get::<Value>("string").unwrap_or(Value::Nil);
        if let (Value::String(format), Value::String(text)) = (format, text) {
            return Reply::Verbatim(
                format.to_string_lossy(),
                Bytes::copy_from_slice(&text.as_bytes()),
            );
        }
    }
    if let Value::Table(map) = field("map") {
        let mut pairs = Vec::new();
        for (key, value) in map.pairs::<Value, Value>().flatten() {
            let key = lua_to_reply(&key, resp3, depth + 1, budget);
            pairs.push((key, lua_to_reply(&value, resp3, depth + 1, budget)));
        }
        return Reply::Map(pairs);
    }
    if let Value::Table(set) = field("set") {
        let items = set
            .pairs::<Value, Value>()
            .flatten()
            .map(|(key, _)| lua_to_reply(&key, resp3, depth + 1, budget))
            .collect();
        return Reply::Set(items);
    }
    // An array: elements 1, 2, ... up to the first nil.
    let mut items = Vec::new();
    for index in 1.. {
        match table.raw_get::<Value>(index) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(value) => items.push(lua_to_reply(&value, resp3, depth + 1, budget)),
        }
    }
    Reply::Array(items)
}

/// A redis.call argument: strings as they are, numbers as Redis 7 prints them (`%.17g`),
/// anything else refused.
pub(super) fn lua_to_arg(value: &Value) -> Option<Bytes> {
    match value {
        Value::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(n) => Some(Bytes::from(n.to_string())),
        Value::Number(n) => Some(Bytes::from(format_g17(*n))),
        _ => None,
    }
}

/// C's `printf("%.17g", n)`.
pub(crate) fn format_g17(n: f64) -> String {
    format_g(n, 17)
}

/// C's `printf("%.<precision>g", n)`: the shorter of fixed and scientific notation for
/// `precision` significant digits, trailing zeros dropped.
pub(crate) fn format_g(n: f64, precision: i32) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf" } else { "-inf" }.into();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let scientific = format!("{:.*e}", (precision - 1) as usize, n);
    let (mantissa, exp) = scientific.split_once('e').expect("{:e} writes an exponent");
    let exp: i32 = exp.parse().expect("{:e} writes a decimal exponent");
    if (-4..precision).contains(&exp) {
        let decimals = (precision - 1 - exp).max(0) as usize;
        strip_fraction_zeros(&format!("{n:.decimals$}")).to_string()
    } else {
        let mantissa = strip_fraction_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

fn strip_fraction_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17_matches_printf() {
        assert_eq!(format_g17(5.0), "5");
        assert_eq!(format_g17(-3.0), "-3");
        assert_eq!(format_g17(0.1), "0.10000000000000001");
        assert_eq!(format_g17(1.5), "1.5");
        assert_eq!(format_g17(1e20), "1e+20");
        assert_eq!(format_g17(123456789012345680.0), "1.2345678901234568e+17");
        assert_eq!(format_g17(1e16), "10000000000000000");
        assert_eq!(format_g17(0.0001), "0.0001");
        assert_eq!(format_g17(0.00001), "1.0000000000000001e-05");
        assert_eq!(format_g17(f64::INFINITY), "inf");
    }

    #[test]
    fn truncation_is_toward_zero_like_c() {
        assert_eq!(truncate(3.9), 3);
        assert_eq!(truncate(-3.9), -3);
        assert_eq!(truncate(f64::NAN), i64::MIN);
        assert_eq!(truncate(f64::INFINITY), i64::MIN);
        assert_eq!(truncate(-9.3e18), i64::MIN);
    }

    #[test]
    fn error_reply_text_takes_the_code_from_the_message() {
        assert_eq!(error_reply_text("My Error"), "My Error");
        assert_eq!(error_reply_text("-WRONG bad"), "WRONG bad");
        assert_eq!(error_reply_text("OOPS"), "ERR OOPS");
        assert_eq!(error_reply_text("x\r\n"), "ERR x");
    }
}
