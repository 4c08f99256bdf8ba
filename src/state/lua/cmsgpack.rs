//! The `cmsgpack` table scripts use, as lua-cmsgpack 0.4 (the library Redis embeds):
//! `pack(...)`, `unpack(s)`, `unpack_one(s [, offset])`, `unpack_limit(s, limit [,
//! offset])`.
//!
//! Packing follows lua-cmsgpack's choices: a number that is a whole int64 packs as the
//! smallest integer, any other as a float32 when that is exact, else a float64; a table
//! whose keys are exactly 1..n packs as an array, any other as a map (in the table's
//! iteration order); nesting deeper than 16 and values MessagePack has no type for
//! (functions, userdata) pack as nil. Unpacked integers and floats become Lua numbers,
//! strings and binaries Lua strings.
//!
//! The Rust functions return `(nil, message)` on an error; the prelude raises it.

use mlua::{Lua, MultiValue, Table, Value};

/// lua-cmsgpack's `LUACMSGPACK_MAX_NESTING`.
const MAX_NESTING: usize = 16;

fn pack_int(n: i64, out: &mut Vec<u8>) {
    match n {
        0..=127 => out.push(n as u8),
        128..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        n if n > 0 => {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
        -32..=-1 => out.push(n as i8 as u8),
        -128..=-33 => out.extend_from_slice(&[0xd0, n as i8 as u8]),
        -32768..=-129 => {
            out.push(0xd1);
            out.extend_from_slice(&(n as i16).to_be_bytes());
        }
        -2_147_483_648..=-32769 => {
            out.push(0xd2);
            out.extend_from_slice(&(n as i32).to_be_bytes());
        }
        n => {
            out.push(0xd3);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn pack_number(n: f64, out: &mut Vec<u8>) {
    // lua-cmsgpack's IS_INT64_EQUIVALENT: finite and unchanged by a cast to int64.
    let whole = n.is_finite() && (n as i64) as f64 == n && n != 9.223_372_036_854_776e18;
    if whole {
        pack_int(n as i64, out);
    } else if f64::from(n as f32) == n {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A length-prefixed header: the fix form below `fix_limit`, else the 8 (strings only),
/// 16 and 32-bit forms.
fn header(len: usize, fix: u8, fix_limit: usize, wide: [Option<u8>; 3], out: &mut Vec<u8>) {
    if len < fix_limit {
        out.push(fix | len as u8);
    } else if let (Some(tag), true) = (wide[0], len <= 0xff) {
        out.extend_from_slice(&[tag, len as u8]);
    } else if len <= 0xffff {
        out.push(wide[1].unwrap_or(0));
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(wide[2].unwrap_or(0));
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// lua-cmsgpack's `table_is_an_array`: every key a positive whole number and as many
/// keys as the largest.
fn array_len(table: &Table) -> mlua::Result<Option<usize>> {
    let mut count = 0usize;
    let mut max = 0f64;
    for pair in table.clone().pairs::<Value, Value>() {
        let (key, _) = pair?;
        let n = match key {
            Value::Integer(n) => n as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if n <= 0.0 || n.fract() != 0.0 {
            return Ok(None);
        }
        max = max.max(n);
        count += 1;
    }
    Ok((max == count as f64).then_some(count))
}

fn pack(value: &Value, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match value {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => pack_int(*n, out),
        Value::Number(n) => pack_number(*n, out),
        Value::String(s) => {
            let bytes = s.as_bytes();
            header(
                bytes.len(),
                0xa0,
                32,
                [Some(0xd9), Some(0xda), Some(0xdb)],
                out,
            );
            out.extend_from_slice(&bytes);
        }
        Value::Table(table) if level < MAX_NESTING => match array_len(table)? {
            Some(len) => {
                header(len, 0x90, 16, [None, Some(0xdc), Some(0xdd)], out);
                for i in 1..=len {
                    pack(&table.raw_get::<Value>(i)?, level + 1, out)?;
                }
            }
            None => {
                let pairs: Vec<(Value, Value)> = table
                    .clone()
                    .pairs::<Value, Value>()
                    .collect::<mlua::Result<_>>()?;
                header(pairs.len(), 0x80, 16, [None, Some(0xde), Some(0xdf)], out);
                for (key, value) in &pairs {
                    pack(key, level + 1, out)?;
                    pack(value, level + 1, out)?;
                }
            }
        },
        _ => out.push(0xc0),
    }
    Ok(())
}

/// A decoder over one string; errors in lua-cmsgpack's words.
struct Reader<'a> {
    lua: &'a Lua,
    data: &'a [u8],
    pos: usize,
}

const MISSING: &str = "Missing bytes in input.";
const BAD: &str = "Bad data format in input.";

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len());
        let end = end.ok_or(MISSING)?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn int(&mut self, n: usize) -> Result<i64, String> {
        let raw = self.uint(n)?;
        let shift = 64 - 8 * n as u32;
        Ok(((raw << shift) as i64) >> shift)
    }

    fn string(&mut self, len: usize) -> Result<Value, String> {
        let bytes = self.take(len)?.to_vec();
        Ok(Value::String(
            self.lua.create_string(&bytes).map_err(|e| e.to_string())?,
        ))
    }

    fn table(&mut self, len: usize, map: bool, depth: usize) -> Result<Value, String> {
        let table = self.lua.create_table().map_err(|e| e.to_string())?;
        for i in 1..=len {
            let (key, value) = if map {
                (self.value(depth + 1)?, self.value(depth + 1)?)
            } else {
                (Value::Integer(i as _), self.value(depth + 1)?)
            };
            if !matches!(key, Value::Nil) {
                table.raw_set(key, value).map_err(|e| e.to_string())?;
            }
        }
        Ok(Value::Table(table))
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > 1000 {
            return Err(BAD.into());
        }
        let number = |n: f64| Ok(Value::Number(n));
        let tag = self.take(1)?[0];
        match tag {
            0x00..=0x7f => number(f64::from(tag)),
            0x80..=0x8f => self.table(usize::from(tag & 0x0f), true, depth),
            0x90..=0x9f => self.table(usize::from(tag & 0x0f), false, depth),
            0xa0..=0xbf => self.string(usize::from(tag & 0x1f)),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xc4 | 0xd9 => {
                let len = self.uint(1)? as usize;
                self.string(len)
            }
            0xc5 | 0xda => {
                let len = self.uint(2)? as usize;
                self.string(len)
            }
            0xc6 | 0xdb => {
                let len = self.uint(4)? as usize;
                self.string(len)
            }
            0xca => number(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => number(f64::from_bits(self.uint(8)?)),
            0xcc => number(self.uint(1)? as f64),
            0xcd => number(self.uint(2)? as f64),
            0xce => number(self.uint(4)? as f64),
            0xcf => number(self.uint(8)? as f64),
            0xd0 => number(self.int(1)? as f64),
            0xd1 => number(self.int(2)? as f64),
            0xd2 => number(self.int(4)? as f64),
            0xd3 => number(self.int(8)? as f64),
            0xdc => {
                let len = self.uint(2)? as usize;
                self.table(len, false, depth)
            }
            0xdd => {
                let len = self.uint(4)? as usize;
                self.table(len, false, depth)
            }
            0xde => {
                let len = self.uint(2)? as usize;
                self.table(len, true, depth)
            }
            0xdf => {
                let len = self.uint(4)? as usize;
                self.table(len, true, depth)
            }
            0xe0..=0xff => number(f64::from(tag as i8)),
            _ => Err(BAD.into()),
        }
    }
}

/// Decodes up to `limit` objects (0: all) from `offset`: the values and the offset after
/// them, -1 at the end of the string.
fn unpack(
    lua: &Lua,
    data: &[u8],
    limit: usize,
    offset: usize,
) -> Result<(i64, Vec<Value>), String> {
    let mut reader = Reader {
        lua,
        data,
        pos: offset,
    };
    let mut values = Vec::new();
    while reader.pos < data.len() && (limit == 0 || values.len() < limit) {
        values.push(reader.value(0)?);
    }
    let next = if reader.pos >= data.len() {
        -1
    } else {
        reader.pos as i64
    };
    Ok((next, values))
}

fn error_pair(lua: &Lua, message: String) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_iter([
        Value::Nil,
        Value::String(lua.create_string(message)?),
    ]))
}

pub(super) fn register(lua: &Lua, rust: &Table) -> mlua::Result<()> {
    rust.raw_set(
        "msgpack_pack",
        lua.create_function(|lua, args: MultiValue| {
            let mut out = Vec::new();
            for value in args.iter() {
                pack(value, 0, &mut out)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    // (ok-marker, next offset, values...) or (nil, message).
    rust.raw_set(
        "msgpack_unpack",
        lua.create_function(|lua, (text, limit, offset): (mlua::LuaString, i64, i64)| {
            let data = text.as_bytes();
            if offset < 0 || offset as u64 > data.len() as u64 {
                let message = format!(
                    "Start offset {offset} greater than input length {}.",
                    data.len()
                );
                return error_pair(lua, message);
            }
            let offset = offset as usize;
            match unpack(lua, &data, usize::try_from(limit).unwrap_or(0), offset) {
                Ok((next, values)) => Ok(MultiValue::from_iter(
                    [Value::Boolean(true), Value::Integer(next as _)]
                        .into_iter()
                        .chain(values),
                )),
                Err(message) => error_pair(lua, message),
            }
        })?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(lua: &Lua, code: &str) -> Vec<u8> {
        let value: Value = lua.load(code).eval().unwrap();
        let mut out = Vec::new();
        pack(&value, 0, &mut out).unwrap();
        out
    }

    #[test]
    fn values_pack_as_lua_cmsgpack_packs_them() {
        let lua = Lua::new();
        assert_eq!(packed(&lua, "1"), [0x01]);
        assert_eq!(packed(&lua, "-1"), [0xff]);
        assert_eq!(packed(&lua, "200"), [0xcc, 200]);
        assert_eq!(packed(&lua, "-200"), [0xd1, 0xff, 0x38]);
        assert_eq!(packed(&lua, "70000"), [0xce, 0, 1, 0x11, 0x70]);
        assert_eq!(packed(&lua, "1.5"), [0xca, 0x3f, 0xc0, 0, 0]);
        assert_eq!(packed(&lua, "0.1")[0], 0xcb);
        assert_eq!(packed(&lua, "'abc'"), [0xa3, b'a', b'b', b'c']);
        assert_eq!(packed(&lua, "string.rep('x', 40)")[..2], [0xd9, 40]);
        assert_eq!(packed(&lua, "{1, 2, 3}"), [0x93, 1, 2, 3]);
        assert_eq!(packed(&lua, "{}"), [0x90]);
        assert_eq!(packed(&lua, "{a = true}"), [0x81, 0xa1, b'a', 0xc3]);
        assert_eq!(
            packed(&lua, "{[1] = 1, [3] = 3}")[0],
            0x82,
            "a hole makes a map"
        );
        assert_eq!(packed(&lua, "print"), [0xc0]);
    }

    #[test]
    fn what_is_packed_unpacks_to_the_same_values() {
        let lua = Lua::new();
        let data = packed(&lua, "{1, -300, 2.25, 'x', {k = {true, false}}, 1e300}");
        let (next, values) = unpack(&lua, &data, 0, 0).unwrap();
        assert_eq!(next, -1);
        let Value::Table(t) = &values[0] else {
            panic!("{values:?}")
        };
        assert_eq!(t.raw_get::<f64>(2).unwrap(), -300.0);
        assert_eq!(t.raw_get::<f64>(3).unwrap(), 2.25);
        assert_eq!(t.raw_get::<f64>(6).unwrap(), 1e300);
        let inner: Table = t.raw_get::<Table>(5).unwrap().raw_get("k").unwrap();
        assert!(!inner.raw_get::<bool>(2).unwrap());
        assert_eq!(
            unpack(&lua, &data[..data.len() - 1], 0, 0).unwrap_err(),
            MISSING
        );
        assert_eq!(unpack(&lua, &[0xc1], 0, 0).unwrap_err(), BAD);
        let two = [1u8, 2, 3];
        assert_eq!(unpack(&lua, &two, 2, 0).unwrap().0, 2, "stops at the limit");
    }
}
