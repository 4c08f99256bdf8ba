//! server commands
use bytes::Bytes;

use super::Keyspace;
use crate::reply::Reply;

pub fn dbsize(_ks: &Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn flushall(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn flushdb(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
