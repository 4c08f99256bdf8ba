//! The client connection's wire format: RESP2/RESP3 framing, inline commands, limits.
//!
//! Requests are parsed by hand, following Redis 7's `networking.c` (its limits, its error
//! texts, its inline splitting), so that clients see exactly what Redis would tell them.
//! Replies are encoded from [`Reply`] for whichever protocol the connection speaks, which
//! `HELLO` may switch at any time: the protocol is a parameter of [`encode`], not state.

mod encode;
mod inline;
mod parse;
mod reply_parser;

use std::fmt;

pub use encode::{double_text, encode};
pub use parse::RequestParser;
pub use reply_parser::{encode_request, parse_reply, parse_reply_in, MalformedReply};

use crate::reply::Reply;

/// The reply protocol of a connection: RESP2 until the client sends `HELLO 3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Resp2,
    Resp3,
}

/// A fatal framing error: the server writes `-ERR <text>\r\n` and closes the connection,
/// as Redis does, because after a malformed frame it cannot tell where the next one starts.
///
/// The text is Redis's own (`Protocol error: invalid bulk length`), already free of
/// `\r` and `\n` so it can go on the wire as is.
#[derive(Debug, PartialEq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    /// The reply to write before closing the connection.
    pub fn to_reply(&self) -> Reply {
        Reply::Error(format!("ERR {}", self.0))
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProtocolError {}
