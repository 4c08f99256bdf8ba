//! The `bit` table scripts use, as LuaBitOp 1.0 (the library Redis embeds): `tobit`,
//! `tohex`, `bnot`, `band`, `bor`, `bxor`, `lshift`, `rshift`, `arshift`, `rol`, `ror`,
//! `bswap`. Numbers become 32-bit integers the way LuaBitOp makes them (rounded to the
//! nearest integer, ties to even, then the low 32 bits) and results come back signed.
//!
//! The Rust functions return `(nil, message)` on a bad argument; the prelude raises the
//! message at the caller's level, with LuaBitOp's (luaL_checknumber's) words.

use mlua::{Lua, MultiValue, Table, Value};

/// LuaBitOp's `barg`: `n + 2^52 + 2^51` rounds to an integer held in the low bits of the
/// double's mantissa.
fn to_bits(n: f64) -> u32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32
}

/// Argument `index` (1-based) of `name` as a number, as `luaL_checknumber` takes it
/// (strings that read as numbers included).
fn number(args: &[Value], index: usize, name: &str) -> Result<f64, String> {
    let value = args.get(index - 1).unwrap_or(&Value::Nil);
    let got = match value {
        Value::Integer(n) => return Ok(*n as f64),
        Value::Number(n) => return Ok(*n),
        Value::String(s) => match s.to_str().ok().and_then(|t| parse_lua_number(&t)) {
            Some(n) => return Ok(n),
            None => "string",
        },
        Value::Nil if index > args.len() => "no value",
        other => other.type_name(),
    };
    Err(format!(
        "bad argument #{index} to '{name}' (number expected, got {got})"
    ))
}

/// What Lua's `tonumber` reads from a string: decimal (with exponent) or `0x` hex, with
/// spaces around.
fn parse_lua_number(text: &str) -> Option<f64> {
    let t = text.trim();
    let (negative, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let value = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok()? as f64,
        None if body.starts_with(|c: char| c.is_ascii_digit() || c == '.') => body.parse().ok()?,
        None => return None,
    };
    Some(if negative { -value } else { value })
}

fn signed(bits: u32) -> f64 {
    f64::from(bits as i32)
}

type BitResult = Result<Value, String>;

fn fold(args: &[Value], name: &str, op: fn(u32, u32) -> u32) -> BitResult {
    let mut acc = to_bits(number(args, 1, name)?);
    for index in 2..=args.len() {
        acc = op(acc, to_bits(number(args, index, name)?));
    }
    Ok(Value::Number(signed(acc)))
}

fn shift(args: &[Value], name: &str, op: fn(u32, u32) -> u32) -> BitResult {
    let x = to_bits(number(args, 1, name)?);
    let n = to_bits(number(args, 2, name)?) & 31;
    Ok(Value::Number(signed(op(x, n))))
}

fn unary(args: &[Value], name: &str, op: fn(u32) -> u32) -> BitResult {
    Ok(Value::Number(signed(op(to_bits(number(args, 1, name)?)))))
}

fn tohex(lua: &Lua, args: &[Value]) -> BitResult {
    let x = to_bits(number(args, 1, "tohex")?);
    let n = match args.get(1) {
        None | Some(Value::Nil) => 8,
        Some(_) => to_bits(number(args, 2, "tohex")?) as i32,
    };
    let upper = n < 0;
    let digits = n.unsigned_abs().min(8) as usize;
    let full = if upper {
        format!("{x:08X}")
    } else {
        format!("{x:08x}")
    };
    lua.create_string(&full[8 - digits..])
        .map(Value::String)
        .map_err(|e| e.to_string())
}

/// One function of the table by name.
fn call(lua: &Lua, name: &str, args: &[Value]) -> BitResult {
    match name {
        "tobit" => unary(args, name, |x| x),
        "bnot" => unary(args, name, |x| !x),
        "bswap" => unary(args, name, u32::swap_bytes),
        "band" => fold(args, name, |a, b| a & b),
        "bor" => fold(args, name, |a, b| a | b),
        "bxor" => fold(args, name, |a, b| a ^ b),
        "lshift" => shift(args, name, |x, n| x << n),
        "rshift" => shift(args, name, |x, n| x >> n),
        "arshift" => shift(args, name, |x, n| ((x as i32) >> n) as u32),
        "rol" => shift(args, name, u32::rotate_left),
        "ror" => shift(args, name, u32::rotate_right),
        "tohex" => tohex(lua, args),
        _ => Err(format!("no function bit.{name}")),
    }
}

/// The functions' names, for the prelude.
pub(super) const NAMES: [&str; 12] = [
    "tobit", "tohex", "bnot", "band", "bor", "bxor", "lshift", "rshift", "arshift", "rol", "ror",
    "bswap",
];

pub(super) fn register(lua: &Lua, rust: &Table) -> mlua::Result<()> {
    rust.raw_set(
        "bit",
        lua.create_function(|lua, (name, args): (String, MultiValue)| {
            let args: Vec<Value> = args.into_iter().collect();
            Ok(match call(lua, &name, &args) {
                Ok(value) => (value, Value::Nil),
                Err(message) => (Value::Nil, Value::String(lua.create_string(message)?)),
            })
        })?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_32_bit_integers_as_luabitop_makes_them() {
        assert_eq!(to_bits(1.0), 1);
        assert_eq!(to_bits(-1.0), u32::MAX);
        assert_eq!(to_bits(2.5), 2, "ties to even");
        assert_eq!(to_bits(3.5), 4);
        assert_eq!(to_bits(4294967296.0 + 5.0), 5, "the low 32 bits");
        assert_eq!(signed(to_bits(2147483648.0)), -2147483648.0);
    }

    #[test]
    fn the_functions_answer_as_luabitop_documents() {
        let lua = Lua::new();
        let n = |v: f64| Value::Number(v);
        let num = |name: &str, args: &[f64]| {
            let args: Vec<Value> = args.iter().map(|&a| n(a)).collect();
            match call(&lua, name, &args).unwrap() {
                Value::Number(x) => x,
                other => panic!("{other:?}"),
            }
        };
        // LuaBitOp's own examples.
        assert_eq!(num("tobit", &[4294967295.0]), -1.0);
        assert_eq!(num("bnot", &[0.0]), -1.0);
        assert_eq!(num("bor", &[1.0, 2.0, 4.0, 8.0]), 15.0);
        assert_eq!(num("band", &[0x12345678 as f64, 0xff as f64]), 0x78 as f64);
        assert_eq!(
            num("bxor", &[0xa5a5f0f0u32 as f64, 0xaa55ff00u32 as f64]),
            0x0ff00ff0 as f64
        );
        assert_eq!(num("lshift", &[1.0, 0.0]), 1.0);
        assert_eq!(num("lshift", &[1.0, 8.0]), 256.0);
        assert_eq!(
            num("lshift", &[1.0, 40.0]),
            256.0,
            "counts are taken mod 32"
        );
        assert_eq!(num("rshift", &[256.0, 8.0]), 1.0);
        assert_eq!(num("rshift", &[-256.0, 8.0]), 16777215.0);
        assert_eq!(num("arshift", &[-256.0, 8.0]), -1.0);
        assert_eq!(num("rol", &[0x12345678 as f64, 12.0]), 0x45678123 as f64);
        assert_eq!(num("ror", &[0x12345678 as f64, 12.0]), 0x67812345 as f64);
        assert_eq!(num("bswap", &[0x12345678 as f64]), 0x78563412 as f64);
        let hex = |args: &[f64]| {
            let args: Vec<Value> = args.iter().map(|&a| n(a)).collect();
            match call(&lua, "tohex", &args).unwrap() {
                Value::String(s) => s.to_str().unwrap().to_string(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(hex(&[1.0]), "00000001");
        assert_eq!(hex(&[-1.0]), "ffffffff");
        assert_eq!(hex(&[0xffffffffu32 as f64, -4.0]), "FFFF");
        assert_eq!(hex(&[0x21 as f64, 2.0]), "21");
        let err = call(&lua, "band", &[n(1.0), Value::Boolean(true)]).unwrap_err();
        assert_eq!(
            err,
            "bad argument #2 to 'band' (number expected, got boolean)"
        );
        assert_eq!(
            call(&lua, "bnot", &[]).unwrap_err(),
            "bad argument #1 to 'bnot' (number expected, got no value)"
        );
    }
}
