//! The benchmark client's side of RESP, on the server's own encoder and reply parser.
//!
//! Replies a benchmark sees are small (OK, integers, short bulks), so a partial reply is
//! simply parsed again from its start once more bytes arrive.

use std::fmt;

/// One reply. RESP3 types map to their RESP2 look-alikes: maps and sets arrive as arrays,
/// `_` as a nil bulk, booleans, doubles and big numbers as status text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// True for the error a server gives for a command it does not have.
    pub fn is_unknown_command(&self) -> bool {
        matches!(self, Reply::Error(text) if text.starts_with("ERR unknown command"))
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Reply::Bulk(None) | Reply::Array(None))
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Status(s) if s == "OK")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protocol error in a reply: {}", self.0)
    }
}

impl std::error::Error for ProtocolError {}

/// Appends `args` as one multibulk request.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    crate::resp::encode_request(args, out);
}

/// Parses one reply off the front of `buf` with the server's own reply parser: `Ok(None)`
/// if it has not all arrived yet, else the reply and how many bytes it took.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    match crate::resp::parse_reply_in(buf) {
        Ok(Some((reply, used))) => Ok(Some((Reply::from(reply), used))),
        Ok(None) => Ok(None),
        Err(err) => Err(ProtocolError(err.0)),
    }
}

/// The benchmark's view of a reply: RESP3 types as their RESP2 look-alikes.
impl From<crate::reply::Reply> for Reply {
    fn from(reply: crate::reply::Reply) -> Reply {
        use crate::reply::Reply as R;
        let array =
            |items: Vec<R>| Reply::Array(Some(items.into_iter().map(Reply::from).collect()));
        match reply {
            R::Ok => Reply::Status("OK".into()),
            R::Status(text) => Reply::Status(text),
            R::Error(text) => Reply::Error(text),
            R::Int(n) => Reply::Int(n),
            R::Bulk(data) | R::Verbatim(_, data) => Reply::Bulk(Some(data.to_vec())),
            R::Nil | R::Blocked => Reply::Bulk(None),
            R::NilArray => Reply::Array(None),
            R::Array(items) | R::Set(items) | R::Push(items) => array(items),
            R::Map(pairs) | R::Pairs(pairs) => {
                array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect())
            }
            R::Double(d) => Reply::Status(crate::resp::double_text(d)),
            R::Bool(b) => Reply::Status(if b { "t" } else { "f" }.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8]) -> Reply {
        let (reply, used) = parse_reply(bytes).unwrap().expect("a whole reply");
        assert_eq!(used, bytes.len(), "the reply takes every byte");
        reply
    }

    #[test]
    fn encodes_a_multibulk_request() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"SET", b"k", b"a b"]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na b\r\n");
    }

    #[test]
    fn parses_every_resp2_reply() {
        assert_eq!(parse_all(b"+OK\r\n"), Reply::Status("OK".into()));
        assert!(parse_all(b"+OK\r\n").is_ok());
        assert_eq!(
            parse_all(b"-ERR unknown command 'eval'\r\n"),
            Reply::Error("ERR unknown command 'eval'".into())
        );
        assert_eq!(parse_all(b":-42\r\n"), Reply::Int(-42));
        assert_eq!(
            parse_all(b"$3\r\na\r\n\r\n"),
            Reply::Bulk(Some(b"a\r\n".to_vec()))
        );
        assert_eq!(parse_all(b"$0\r\n\r\n"), Reply::Bulk(Some(Vec::new())));
        assert!(parse_all(b"$-1\r\n").is_nil());
        assert!(parse_all(b"*-1\r\n").is_nil());
        assert_eq!(
            parse_all(b"*2\r\n:1\r\n*1\r\n$1\r\nx\r\n"),
            Reply::Array(Some(vec![
                Reply::Int(1),
                Reply::Array(Some(vec![Reply::Bulk(Some(b"x".to_vec()))]))
            ]))
        );
    }

    #[test]
    fn parses_resp3_replies_as_their_resp2_look_alikes() {
        assert!(parse_all(b"_\r\n").is_nil());
        assert_eq!(parse_all(b"#t\r\n"), Reply::Status("t".into()));
        assert_eq!(parse_all(b",1.5\r\n"), Reply::Status("1.5".into()));
        assert_eq!(
            parse_all(b"=7\r\ntxt:abc\r\n"),
            Reply::Bulk(Some(b"abc".to_vec()))
        );
        assert_eq!(
            parse_all(b"!9\r\nERR oops!\r\n"),
            Reply::Error("ERR oops!".into())
        );
        assert_eq!(
            parse_all(b"%1\r\n+k\r\n:2\r\n"),
            Reply::Array(Some(vec![Reply::Status("k".into()), Reply::Int(2)]))
        );
    }

    #[test]
    fn an_incomplete_reply_waits_for_more_bytes() {
        let whole = b"*2\r\n$5\r\nhello\r\n:7\r\n";
        for cut in 0..whole.len() {
            assert_eq!(parse_reply(&whole[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert!(parse_reply(whole).unwrap().is_some());
    }

    #[test]
    fn parses_pipelined_replies_one_at_a_time() {
        let buf = b"+OK\r\n:1\r\n$-1\r\n";
        let (first, used) = parse_reply(buf).unwrap().unwrap();
        assert!(first.is_ok());
        let (second, used2) = parse_reply(&buf[used..]).unwrap().unwrap();
        assert_eq!(second, Reply::Int(1));
        let (third, used3) = parse_reply(&buf[used + used2..]).unwrap().unwrap();
        assert!(third.is_nil());
        assert_eq!(used + used2 + used3, buf.len());
    }

    #[test]
    fn refuses_malformed_replies() {
        assert!(parse_reply(b"?x\r\n").is_err());
        assert!(parse_reply(b":12a\r\n").is_err());
        assert!(parse_reply(b"$2\r\nabc\r\n").is_err());
        assert!(parse_reply(b"~-1\r\n").is_err());
    }

    #[test]
    fn refuses_replies_nested_too_deep() {
        let deep = b"*1\r\n".repeat(100);
        assert!(parse_reply(&deep).is_err());
    }

    #[test]
    fn recognises_an_unknown_command_error() {
        let unknown =
            Reply::Error("ERR unknown command 'FENCE', with args beginning with: ".into());
        assert!(unknown.is_unknown_command());
        assert!(!Reply::Error("ERR syntax error".into()).is_unknown_command());
        assert!(!Reply::Status("OK".into()).is_unknown_command());
    }
}
