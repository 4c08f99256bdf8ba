//! The client side of RESP: reads replies (RESP2 or RESP3) into [`Reply`] values, for a
//! node that relays its clients' requests to the leader.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::reply::Reply;

/// Deepest nesting of aggregates accepted in a reply.
const MAX_REPLY_DEPTH: usize = 64;

/// The reply could not be parsed: the connection it came from is unusable.
#[derive(Debug, PartialEq, Eq)]
pub struct MalformedReply(pub String);

/// Takes one complete reply off the front of `buf`; `Ok(None)` when more bytes are needed
/// (nothing is consumed then). Push messages come back as `Reply::Push`.
pub fn parse_reply(buf: &mut BytesMut) -> Result<Option<Reply>, MalformedReply> {
    match parse_reply_in(buf)? {
        Some((reply, used)) => {
            buf.advance(used);
            Ok(Some(reply))
        }
        None => Ok(None),
    }
}

/// Parses one reply at the start of `buf` without consuming it: the reply and how many
/// bytes it took, or `Ok(None)` when it has not all arrived.
pub fn parse_reply_in(buf: &[u8]) -> Result<Option<(Reply, usize)>, MalformedReply> {
    let mut pos = 0;
    Ok(parse_at(buf, &mut pos, 0)?.map(|reply| (reply, pos)))
}

/// Appends `argv` as one multibulk request, as clients send commands.
pub fn encode_request<A: AsRef<[u8]>>(argv: &[A], out: &mut impl BufMut) {
    put_header(out, b'*', argv.len());
    for arg in argv {
        let arg = arg.as_ref();
        put_header(out, b'$', arg.len());
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

fn put_header(out: &mut impl BufMut, kind: u8, n: usize) {
    out.put_u8(kind);
    out.put_slice(n.to_string().as_bytes());
    out.put_slice(b"\r\n");
}

fn malformed(what: &str) -> MalformedReply {
    MalformedReply(what.to_string())
}

/// The line starting at `*pos` (without its CRLF); moves `*pos` past it.
fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = buf.get(*pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    *pos += end + 2;
    Some(&rest[..end])
}

fn number(text: &[u8]) -> Result<i64, MalformedReply> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| malformed("bad number"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Reply>, MalformedReply> {
    if depth > MAX_REPLY_DEPTH {
        return Err(malformed("reply nested too deeply"));
    }
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    let start = *pos;
    *pos += 1;
    let Some(head) = line(buf, pos) else {
        *pos = start;
        return Ok(None);
    };
    let reply = match kind {
        b'+' => Reply::Status(text(head)),
        b'-' => Reply::Error(text(head)),
        b':' => Reply::Int(number(head)?),
        b'_' => Reply::Nil,
        b'#' => Reply::Bool(head == b"t"),
        b',' => Reply::Double(match head {
            b"inf" => f64::INFINITY,
            b"-inf" => f64::NEG_INFINITY,
            _ => std::str::from_utf8(head)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| malformed("bad double"))?,
        }),
        b'(' => Reply::Bulk(Bytes::copy_from_slice(head)),
        b'$' | b'=' | b'!' => {
            let len = number(head)?;
            if len == -1 && kind == b'$' {
                return Ok(Some(Reply::Nil));
            }
            if len < 0 {
                return Err(malformed("negative bulk length"));
            }
            let len = len as usize;
            let Some(body) = buf.get(*pos..*pos + len) else {
                *pos = start;
                return Ok(None);
            };
            match buf.get(*pos + len..*pos + len + 2) {
                None => {
                    *pos = start;
                    return Ok(None);
                }
                Some(b"\r\n") => {}
                Some(_) => return Err(malformed("bulk reply longer than its length")),
            }
            *pos += len + 2;
            match kind {
                b'$' => Reply::Bulk(Bytes::copy_from_slice(body)),
                b'!' => Reply::Error(text(body)),
                _ => match body.get(..4) {
                    Some([a, b, c, b':']) => {
                        Reply::Verbatim(text(&[*a, *b, *c]), Bytes::copy_from_slice(&body[4..]))
                    }
                    _ => return Err(malformed("bad verbatim string")),
                },
            }
        }
        b'*' | b'~' | b'>' | b'%' => {
            let n = number(head)?;
            if n == -1 && kind == b'*' {
                return Ok(Some(Reply::NilArray));
            }
            if n < 0 {
                return Err(malformed("negative aggregate length"));
            }
            let count = if kind == b'%' {
                2 * n as usize
            } else {
                n as usize
            };
            let mut items = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                match parse_at(buf, pos, depth + 1)? {
                    Some(item) => items.push(item),
                    None => {
                        *pos = start;
                        return Ok(None);
                    }
                }
            }
            match kind {
                b'*' => Reply::Array(items),
                b'~' => Reply::Set(items),
                b'>' => Reply::Push(items),
                _ => {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Reply::Map(pairs)
                }
            }
        }
        other => {
            return Err(MalformedReply(format!(
                "unknown reply type byte {other:#x}"
            )))
        }
    };
    Ok(Some(reply))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::{encode, Protocol};

    fn round_trip(reply: Reply) {
        let mut buf = BytesMut::new();
        encode(&reply, Protocol::Resp3, &mut buf);
        let whole = buf.clone();
        assert_eq!(parse_reply(&mut buf), Ok(Some(reply.clone())));
        assert!(buf.is_empty());
        // Every strict prefix is incomplete, never an error, and consumes nothing.
        for cut in 0..whole.len() {
            let mut part = BytesMut::from(&whole[..cut]);
            assert_eq!(
                parse_reply(&mut part),
                Ok(None),
                "prefix {cut} of {reply:?}"
            );
            assert_eq!(part.len(), cut);
        }
    }

    #[test]
    fn resp3_replies_round_trip_through_the_encoder() {
        round_trip(Reply::Status("OK".into()));
        round_trip(Reply::Error("ERR x".into()));
        round_trip(Reply::Int(-42));
        round_trip(Reply::bulk("a\r\nb"));
        round_trip(Reply::Nil);
        round_trip(Reply::Bool(true));
        round_trip(Reply::Double(1.5));
        round_trip(Reply::Double(f64::NEG_INFINITY));
        round_trip(Reply::Verbatim("txt".into(), Bytes::from("hi")));
        round_trip(Reply::Array(vec![
            Reply::Int(1),
            Reply::Array(vec![Reply::bulk("x")]),
        ]));
        round_trip(Reply::Map(vec![(
            Reply::bulk("k"),
            Reply::Set(vec![Reply::Int(2)]),
        )]));
        round_trip(Reply::Push(vec![Reply::bulk("message")]));
    }

    #[test]
    fn resp2_nils_parse() {
        assert_eq!(
            parse_reply(&mut BytesMut::from("$-1\r\n")),
            Ok(Some(Reply::Nil))
        );
        assert_eq!(
            parse_reply(&mut BytesMut::from("*-1\r\n")),
            Ok(Some(Reply::NilArray))
        );
    }

    #[test]
    fn requests_encode_as_multibulk() {
        let mut out = Vec::new();
        encode_request(&["SET", "k", "a b"], &mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na b\r\n");
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(parse_reply_in(b"$2\r\nabc\r\n").is_err());
        assert!(parse_reply_in(b"~-1\r\n").is_err());
        assert!(parse_reply(&mut BytesMut::from("?x\r\n")).is_err());
        assert!(parse_reply(&mut BytesMut::from(":abc\r\n")).is_err());
    }

    #[test]
    fn pipelined_replies_come_out_in_order() {
        let mut buf = BytesMut::from("+OK\r\n:1\r\n$1\r\nx\r\n");
        assert_eq!(parse_reply(&mut buf), Ok(Some(Reply::Status("OK".into()))));
        assert_eq!(parse_reply(&mut buf), Ok(Some(Reply::Int(1))));
        assert_eq!(parse_reply(&mut buf), Ok(Some(Reply::bulk("x"))));
        assert_eq!(parse_reply(&mut buf), Ok(None));
    }
}
