//! The benchmark client's side of RESP: command encoding and reply parsing.
//!
//! Replies a benchmark sees are small (OK, integers, short bulks), so a partial reply is
//! simply parsed again from its start once more bytes arrive.

use std::fmt;

/// Deepest nesting of aggregate replies accepted; the server never sends more than a few.
const MAX_REPLY_DEPTH: usize = 32;

/// Largest bulk reply accepted, in bytes (Redis's `proto-max-bulk-len`).
const MAX_REPLY_BULK_BYTES: usize = 512 * 1024 * 1024;

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
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        out.push(b'$');
        out.extend_from_slice(arg.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses one reply off the front of `buf`: `Ok(None)` if it has not all arrived yet,
/// else the reply and how many bytes it took.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, ProtocolError> {
    let mut pos = 0;
    match parse_at(buf, &mut pos, 0)? {
        Some(reply) => Ok(Some((reply, pos))),
        None => Ok(None),
    }
}

fn bad(what: &str) -> ProtocolError {
    ProtocolError(what.to_string())
}

/// The line starting at `*pos` without its CRLF, moving `*pos` past it.
fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, ProtocolError> {
    let rest = &buf[*pos..];
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    if nl == 0 || rest[nl - 1] != b'\r' {
        return Err(bad("line not ended by CRLF"));
    }
    *pos += nl + 1;
    Ok(Some(&rest[..nl - 1]))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn number(bytes: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(&format!("not a number: {:?}", text(bytes))))
}

/// The `len` bytes of a bulk body at `*pos` (followed by CRLF), moving past them.
fn body<'a>(buf: &'a [u8], pos: &mut usize, len: i64) -> Result<Option<&'a [u8]>, ProtocolError> {
    let len = usize::try_from(len).map_err(|_| bad("negative length"))?;
    if len > MAX_REPLY_BULK_BYTES {
        return Err(bad("bulk reply too long"));
    }
    let end = *pos + len;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(bad("bulk not ended by CRLF"));
    }
    let data = &buf[*pos..end];
    *pos = end + 2;
    Ok(Some(data))
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Reply>, ProtocolError> {
    if depth > MAX_REPLY_DEPTH {
        return Err(bad("replies nested too deep"));
    }
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    *pos += 1;
    let Some(head) = line(buf, pos)? else {
        return Ok(None);
    };
    let reply = match kind {
        b'+' | b'#' | b',' | b'(' => Reply::Status(text(head)),
        b'-' => Reply::Error(text(head)),
        b':' => Reply::Int(number(head)?),
        b'_' => Reply::Bulk(None),
        b'$' | b'=' | b'!' => {
            let len = number(head)?;
            if len < 0 {
                if kind != b'$' {
                    return Err(bad("negative length"));
                }
                Reply::Bulk(None)
            } else {
                let Some(data) = body(buf, pos, len)? else {
                    return Ok(None);
                };
                match kind {
                    b'$' => Reply::Bulk(Some(data.to_vec())),
                    // A verbatim string starts with its format: `txt:`.
                    b'=' => Reply::Bulk(Some(data.get(4..).unwrap_or_default().to_vec())),
                    _ => Reply::Error(text(data)),
                }
            }
        }
        b'*' | b'~' | b'>' | b'%' => {
            let len = number(head)?;
            if len < 0 {
                if kind != b'*' {
                    return Err(bad("negative length"));
                }
                Reply::Array(None)
            } else {
                let items = if kind == b'%' { len * 2 } else { len };
                let items = usize::try_from(items).map_err(|_| bad("aggregate too long"))?;
                // Capacity from what can have arrived, not from what the header claims.
                let mut out = Vec::with_capacity(items.min(buf.len()));
                for _ in 0..items {
                    match parse_at(buf, pos, depth + 1)? {
                        Some(item) => out.push(item),
                        None => return Ok(None),
                    }
                }
                Reply::Array(Some(out))
            }
        }
        other => return Err(bad(&format!("unknown reply type byte {other:#04x}"))),
    };
    Ok(Some(reply))
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
        assert!(parse_reply(b"+OK\n").is_err());
        assert!(parse_reply(b"$2\r\nabc\r\n").is_err());
        assert!(parse_reply(b"~-1\r\n").is_err());
    }

    #[test]
    fn refuses_replies_nested_too_deep() {
        let deep = b"*1\r\n".repeat(MAX_REPLY_DEPTH + 2);
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
