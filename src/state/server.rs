//! Whole-keyspace commands.

use bytes::Bytes;

use super::{wrong_arity, Keyspace};
use crate::reply::Reply;

/// DBSIZE: keys that exist now.
pub fn dbsize(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    if argv.len() != 1 {
        return wrong_arity(argv);
    }
    Reply::Int(ks.key_count(now_ms) as i64)
}

/// FLUSHALL [ASYNC | SYNC]. There is one database, so FLUSHDB is the same command. Both
/// modes free the keys at once; the fence counter stays, so tokens are never reused.
pub fn flushall(ks: &mut Keyspace, _now_ms: u64, argv: &[Bytes]) -> Reply {
    match argv {
        [_] => {}
        [_, mode] if mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async") => {}
        _ => return Reply::syntax_error(),
    }
    ks.clear();
    Reply::Ok
}

/// FLUSHDB [ASYNC | SYNC]
pub fn flushdb(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    flushall(ks, now_ms, argv)
}
