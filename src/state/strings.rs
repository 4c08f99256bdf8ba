//! strings commands
use bytes::Bytes;

use super::Keyspace;
use crate::reply::Reply;

pub fn get(_ks: &Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn set(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn setnx(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn setex(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn getdel(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn getex(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn getset(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn mget(_ks: &Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn mset(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn msetnx(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn incr(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn append(_ks: &mut Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn strlen(_ks: &Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
pub fn fence(_ks: &Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("ERR not implemented")
}
