//! The value every command produces. The state machine returns it from apply (so it
//! travels through Raft and must serialize); the RESP layer encodes it for RESP2 or RESP3.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// `+OK`, the most common reply: a variant of its own so it never allocates.
    Ok,
    /// A simple string (`+PONG`).
    Status(String),
    /// An error; the text starts with its code (`ERR syntax error`, `WRONGTYPE ...`).
    Error(String),
    Int(i64),
    Bulk(Bytes),
    /// RESP2 `$-1`, RESP3 `_`.
    Nil,
    /// RESP2 `*-1`, RESP3 `_`.
    NilArray,
    Array(Vec<Reply>),
    /// RESP3 map; a flat array of key, value, key, value in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 array of two-element arrays; a flat array of key, value, ... in RESP2
    /// (ZRANGE WITHSCORES).
    Pairs(Vec<(Reply, Reply)>),
    /// RESP3 set; an array in RESP2.
    Set(Vec<Reply>),
    /// RESP3 double; a bulk string in RESP2.
    Double(f64),
    /// RESP3 boolean; integer 1 or 0 in RESP2.
    Bool(bool),
    /// RESP3 verbatim string with its three-letter format (`txt`); a bulk string in RESP2.
    Verbatim(String, Bytes),
    /// RESP3 push (pub/sub messages); an array in RESP2.
    Push(Vec<Reply>),
    /// Internal, never sent: the request joined a queue in the state machine, and the node
    /// answers it when apply reports its grant or its timeout.
    Blocked,
}

impl Reply {
    pub fn error(text: impl Into<String>) -> Reply {
        Reply::Error(text.into())
    }

    pub fn bulk(data: impl Into<Bytes>) -> Reply {
        Reply::Bulk(data.into())
    }

    pub fn status(text: impl Into<String>) -> Reply {
        Reply::Status(text.into())
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Redis's reply to a command with the wrong number of arguments.
    pub fn wrong_arity(command: &str) -> Reply {
        Reply::Error(format!(
            "ERR wrong number of arguments for '{}' command",
            command.to_ascii_lowercase()
        ))
    }

    pub fn syntax_error() -> Reply {
        Reply::Error("ERR syntax error".into())
    }

    pub fn not_integer() -> Reply {
        Reply::Error("ERR value is not an integer or out of range".into())
    }

    pub fn wrong_type() -> Reply {
        Reply::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into())
    }
}
