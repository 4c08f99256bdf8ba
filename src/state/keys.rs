//! keys commands
use bytes::Bytes;

use super::Keyspace;
use crate::reply::Reply;

pub fn del(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn exists(_ks: &Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn type_of(_ks: &Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn expire(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn ttl(_ks: &Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn persist(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn keys(_ks: &Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn scan(_ks: &Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn rename(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
