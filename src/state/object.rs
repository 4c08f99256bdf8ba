//! OBJECT ENCODING, REFCOUNT, IDLETIME, FREQ: what Redis 7.0 reports about a key's value,
//! derived from the value (raftlock keeps one representation per type).
//!
//! The encoding is the one Redis 7.0 would choose for the same value built by SET, RPUSH,
//! HSET, SADD or ZADD: strings `int` (a whole number of at most 20 characters), `embstr`
//! (at most 44 bytes) or `raw`; lists `quicklist`; hashes and sorted sets `listpack` while
//! small (128 entries, 64 bytes each) and `hashtable` / `skiplist` beyond; sets `intset`
//! while every member is an integer and there are at most 512, else `hashtable`. Redis
//! remembers how a value was built (APPEND makes a short string `raw`; a hash that grew
//! past the limits stays a `hashtable` when it shrinks); raftlock does not, so those read
//! as the value alone would (redis-compat.md). Locks report `raftlock-lock`.

use bytes::Bytes;

use super::{run, wrong_arity, Keyspace, Value};
use crate::args::parse_i64;
use crate::reply::Reply;

/// Redis 7.0's defaults for the small encodings.
const LISTPACK_ENTRIES: usize = 128;
const LISTPACK_VALUE: usize = 64;
const INTSET_ENTRIES: usize = 512;
const EMBSTR_BYTES: usize = 44;
/// Redis shares the integer objects 0..9999 (`OBJ_SHARED_INTEGERS`).
const SHARED_INTEGERS: i64 = 10_000;

/// Redis's `string2l`: a canonical decimal that fits in an i64.
fn integer_string(value: &[u8]) -> Option<i64> {
    if value.is_empty() || value.len() > 20 {
        return None;
    }
    let n = parse_i64(value)?;
    (n.to_string().as_bytes() == value).then_some(n)
}

fn encoding(value: &Value) -> &'static str {
    fn small(len: usize, mut items: impl Iterator<Item = usize>) -> bool {
        len <= LISTPACK_ENTRIES && items.all(|l| l <= LISTPACK_VALUE)
    }
    match value {
        Value::Str(s) if integer_string(s).is_some() => "int",
        Value::Str(s) if s.len() <= EMBSTR_BYTES => "embstr",
        Value::Str(_) => "raw",
        Value::List(_) => "quicklist",
        Value::Hash(hash) => {
            let sizes = hash.iter().flat_map(|(f, v)| [f.len(), v.len()]);
            if small(hash.len(), sizes) {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Value::Zset(zset) => {
            let sizes = zset.iter(false).map(|(member, _)| member.len());
            if small(zset.len(), sizes) {
                "listpack"
            } else {
                "skiplist"
            }
        }
        Value::Set(set) => {
            let ints =
                set.len() <= INTSET_ENTRIES && set.iter().all(|m| integer_string(m).is_some());
            if ints {
                "intset"
            } else {
                "hashtable"
            }
        }
        Value::Lock(_) => "raftlock-lock",
    }
}

/// OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ key: nil for a missing key.
pub fn object(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, sub, key] = argv else {
            return Err(wrong_arity(argv));
        };
        let Some(entry) = ks.get(key, now_ms) else {
            return Ok(Reply::Nil);
        };
        let is = |name: &str| sub.eq_ignore_ascii_case(name.as_bytes());
        Ok(if is("encoding") {
            Reply::bulk(encoding(&entry.value))
        } else if is("refcount") {
            let shared = matches!(&entry.value, Value::Str(s)
                if integer_string(s).is_some_and(|n| (0..SHARED_INTEGERS).contains(&n)));
            Reply::Int(if shared { i64::from(i32::MAX) } else { 1 })
        } else if is("idletime") {
            // No access times are kept (nothing is evicted): every key reads as just used.
            Reply::Int(0)
        } else {
            Reply::error(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. \
                 Please note that when switching between policies at runtime LRU and LFU data \
                 will take some time to adjust.",
            )
        })
    })
}
