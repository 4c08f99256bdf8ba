//! Request framing: multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline (`GET k\n`)
//! requests, parsed as Redis 7's `processMultibulkBuffer` and `processInlineBuffer` do.

use bytes::{Buf, Bytes, BytesMut};

use super::inline::split_args;
use super::ProtocolError;
use crate::config::RespLimits;

/// A bulk at least this long is read into room reserved for it (Redis `PROTO_MBULK_BIG_ARG`).
const BIG_BULK_BYTES: usize = 32 * 1024;

/// The most room reserved for a big bulk beyond what has arrived of it: a header may claim
/// 512 MB, but memory is only committed as fast as the client actually sends data.
const BIG_BULK_RESERVE_STEP_BYTES: usize = 1024 * 1024;

/// Free room below which the buffer is grown while a big bulk arrives (one socket read).
const BIG_BULK_READ_ROOM_BYTES: usize = 64 * 1024;

/// Before a client authenticates, a request may have at most this many arguments
/// (Redis 7's limit for `authRequired` clients), so a stranger cannot make us hold much.
const UNAUTHENTICATED_MAX_MULTIBULK_LEN: usize = 10;

/// Before a client authenticates, a bulk may be at most this long (Redis 7's limit).
const UNAUTHENTICATED_MAX_BULK_BYTES: usize = 16 * 1024;

/// Parses requests off the front of a connection's read buffer.
///
/// A request may arrive over many reads. The parser keeps what it has parsed so far (the
/// finished arguments, the length of the bulk being read, how far it has searched for a
/// line end), so each byte is examined once however the request is split: a million
/// arguments or a 100 MB bulk cost linear time. Finished arguments are split off the
/// buffer (zero-copy), so the buffer holds only the unparsed rest.
///
/// Give it the same buffer every time, only appended to in between. After an error the
/// connection must be closed; the parser is then of no further use.
pub struct RequestParser {
    limits: RespLimits,
    /// Arguments of the multibulk request being read.
    args: Vec<Bytes>,
    /// Arguments still to come in that request; 0 between requests.
    pending_args: usize,
    /// Length of the bulk whose header has been read but whose data has not all arrived.
    bulk_len: Option<usize>,
    /// Bytes at the front of the buffer already searched for a line end, without one.
    searched: usize,
    /// The client must still authenticate: smaller limits apply.
    auth_required: bool,
    /// Bytes examined while searching for line ends, to test that parsing stays linear.
    #[cfg(test)]
    examined: usize,
}

impl RequestParser {
    pub fn new(limits: RespLimits) -> RequestParser {
        RequestParser {
            limits,
            args: Vec::new(),
            pending_args: 0,
            bulk_len: None,
            searched: 0,
            auth_required: false,
            #[cfg(test)]
            examined: 0,
        }
    }

    /// Whether the client must still authenticate (`requirepass` is set and no `AUTH` has
    /// succeeded yet). While it must, requests over 10 arguments or with a bulk over
    /// 16 KiB are protocol errors (`unauthenticated multibulk length` / `bulk length`),
    /// as in Redis. Call it between requests: it applies to headers not yet read.
    pub fn set_auth_required(&mut self, required: bool) {
        self.auth_required = required;
    }

    /// Takes one complete request off the front of `buf`. Ok(None): need more bytes (keep reading).
    /// Empty requests (`*0\r\n`, `*-1\r\n`, a blank inline line) are skipped, not returned.
    /// Arguments are zero-copy slices of the buffer (split_to + freeze).
    pub fn next_request(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        while self.pending_args == 0 {
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            if first != b'*' {
                match self.read_inline(buf)? {
                    None => return Ok(None),
                    Some(args) if args.is_empty() => continue,
                    Some(args) => return Ok(Some(args)),
                }
            }
            let Some(count) = self.read_multibulk_len(buf)? else {
                return Ok(None);
            };
            self.pending_args = count;
            // Like Redis, trust a large count only as far as arguments actually arrive.
            self.args = Vec::with_capacity(count.min(1024));
        }
        self.read_bulks(buf)
    }

    /// Reads `*<count>\r\n`; a count of 0 or below is an empty request (count 0).
    fn read_multibulk_len(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, ProtocolError> {
        let Some(end) = self.find_line_end(buf, b'\r', "too big mbulk count string")? else {
            return Ok(None);
        };
        let count = match parse_strict_i64(&buf[1..end]) {
            Some(n) if n <= 0 => 0,
            Some(n) if n as u64 <= self.limits.max_multibulk_len as u64 => n as usize,
            _ => return Err(error("invalid multibulk length")),
        };
        if self.auth_required && count > UNAUTHENTICATED_MAX_MULTIBULK_LEN {
            return Err(error("unauthenticated multibulk length"));
        }
        self.consume_line(buf, end + 2);
        Ok(Some(count))
    }

    /// Reads the arguments of the current multibulk request as far as `buf` allows.
    fn read_bulks(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        while self.pending_args > 0 {
            let len = match self.bulk_len {
                Some(len) => len,
                None => {
                    let Some(len) = self.read_bulk_len(buf)? else {
                        return Ok(None);
                    };
                    self.bulk_len = Some(len);
                    len
                }
            };
            // Like Redis, the two bytes after the data are skipped, not checked.
            if buf.len() < len + 2 {
                if len >= BIG_BULK_BYTES {
                    reserve_for_bulk(buf, len + 2);
                }
                return Ok(None);
            }
            self.args.push(buf.split_to(len).freeze());
            buf.advance(2);
            self.bulk_len = None;
            self.pending_args -= 1;
        }
        Ok(Some(std::mem::take(&mut self.args)))
    }

    /// Reads `$<len>\r\n`, rejecting a length over the limit before any data arrives.
    fn read_bulk_len(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, ProtocolError> {
        let Some(end) = self.find_line_end(buf, b'\r', "too big bulk count string")? else {
            return Ok(None);
        };
        if buf[0] != b'$' {
            // Redis puts the raw byte in its reply; a byte above 0x7f becomes its Latin-1
            // character here, since the text is a String. Line breaks become spaces.
            let got = match buf[0] {
                b'\r' | b'\n' => ' ',
                other => char::from(other),
            };
            return Err(error(&format!("expected '$', got '{got}'")));
        }
        let len = match parse_strict_i64(&buf[1..end]) {
            Some(n) if n >= 0 && n as u64 <= self.limits.max_bulk_bytes as u64 => n as usize,
            _ => return Err(error("invalid bulk length")),
        };
        if self.auth_required && len > UNAUTHENTICATED_MAX_BULK_BYTES {
            return Err(error("unauthenticated bulk length"));
        }
        self.consume_line(buf, end + 2);
        Ok(Some(len))
    }

    /// Reads one inline command line; `Some(vec![])` for a blank line.
    fn read_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(newline) = self.find_line_end(buf, b'\n', "too big inline request")? else {
            return Ok(None);
        };
        let mut line = buf.split_to(newline + 1).freeze();
        self.searched = 0;
        let mut end = newline;
        if end > 0 && line[end - 1] == b'\r' {
            end -= 1;
        }
        line.truncate(end);
        split_args(&line)
            .map(Some)
            .ok_or_else(|| error("unbalanced quotes in request"))
    }

    /// Finds the `delim` that ends the line at the front of `buf`, resuming where the last
    /// search stopped. A `\r` counts only once the byte after it (the `\n`) has arrived.
    /// Without a line end, more than `max_inline_bytes` buffered is the `too_big` error.
    fn find_line_end(
        &mut self,
        buf: &BytesMut,
        delim: u8,
        too_big: &str,
    ) -> Result<Option<usize>, ProtocolError> {
        let unsearched = &buf[self.searched..];
        let found = unsearched.iter().position(|&b| b == delim);
        #[cfg(test)]
        {
            self.examined += found.map_or(unsearched.len(), |at| at + 1);
        }
        match found {
            Some(at) => {
                let end = self.searched + at;
                let needs = if delim == b'\r' { 2 } else { 1 };
                if end + needs <= buf.len() {
                    return Ok(Some(end));
                }
                self.searched = end;
                Ok(None)
            }
            None if buf.len() > self.limits.max_inline_bytes => Err(error(too_big)),
            None => {
                self.searched = buf.len();
                Ok(None)
            }
        }
    }

    fn consume_line(&mut self, buf: &mut BytesMut, len: usize) {
        buf.advance(len);
        self.searched = 0;
    }
}

/// Makes room for the rest of a big bulk so it arrives without a reallocation per read,
/// growing at most by what has arrived (or 1 MiB): memory follows data actually sent,
/// not the length a header claims, and the number of reallocations stays logarithmic.
fn reserve_for_bulk(buf: &mut BytesMut, needed: usize) {
    let missing = needed - buf.len();
    let room = buf.capacity() - buf.len();
    if room < missing.min(BIG_BULK_READ_ROOM_BYTES) {
        buf.reserve(missing.min(buf.len().max(BIG_BULK_RESERVE_STEP_BYTES)));
    }
}

fn error(what: &str) -> ProtocolError {
    ProtocolError(format!("Protocol error: {what}"))
}

/// Parses a decimal integer as Redis's `string2ll` does: no sign but `-`, no leading
/// zeros, no spaces, no `-0`, fewer than 21 bytes, within `i64`.
fn parse_strict_i64(s: &[u8]) -> Option<i64> {
    if s == b"0" {
        return Some(0);
    }
    if s.len() >= 21 {
        return None;
    }
    let (negative, digits) = match s.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, s),
    };
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut value = u64::from(first - b'0');
    for &c in rest {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    let value = i128::from(value);
    i64::try_from(if negative { -value } else { value }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser() -> RequestParser {
        RequestParser::new(RespLimits::default())
    }

    fn small_limits() -> RespLimits {
        RespLimits {
            max_bulk_bytes: 100,
            max_multibulk_len: 10,
            max_inline_bytes: 64,
        }
    }

    /// Every request `input` yields when fed in pieces of `chunk` bytes, and the error
    /// that ended it, if any.
    fn parse_in_chunks(
        limits: RespLimits,
        input: &[u8],
        chunk: usize,
    ) -> (Vec<Vec<Vec<u8>>>, Option<ProtocolError>) {
        let mut parser = RequestParser::new(limits);
        let mut buf = BytesMut::new();
        let mut requests = Vec::new();
        for piece in input.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                match parser.next_request(&mut buf) {
                    Ok(Some(args)) => requests.push(args.iter().map(|a| a.to_vec()).collect()),
                    Ok(None) => break,
                    Err(e) => return (requests, Some(e)),
                }
            }
        }
        (requests, None)
    }

    fn parse_all(input: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let (requests, err) = parse_in_chunks(RespLimits::default(), input, input.len().max(1));
        assert_eq!(err, None);
        requests
    }

    fn first_error(limits: RespLimits, input: &[u8]) -> String {
        let (_, err) = parse_in_chunks(limits, input, input.len().max(1));
        err.expect("input should be rejected").0
    }

    fn req(args: &[&str]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn multibulk_request_is_parsed() {
        assert_eq!(
            parse_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n"),
            vec![req(&["SET", "k", "hello"])]
        );
    }

    #[test]
    fn bulk_data_may_hold_any_bytes() {
        assert_eq!(
            parse_all(b"*2\r\n$4\r\n\r\n\0*\r\n$0\r\n\r\n"),
            vec![vec![b"\r\n\0*".to_vec(), b"".to_vec()]]
        );
    }

    #[test]
    fn incomplete_request_waits_and_consumes_nothing_returned() {
        let mut p = parser();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\n"[..]);
        assert_eq!(p.next_request(&mut buf), Ok(None));
        buf.extend_from_slice(b"k\r\n");
        let args = p.next_request(&mut buf).unwrap().unwrap();
        assert_eq!(args, vec![Bytes::from("GET"), Bytes::from("k")]);
        assert!(buf.is_empty());
        assert_eq!(p.next_request(&mut buf), Ok(None));
    }

    #[test]
    fn pipelined_requests_come_out_in_order() {
        let input = b"*1\r\n$4\r\nPING\r\nECHO a\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\n";
        assert_eq!(
            parse_all(input),
            vec![
                req(&["PING"]),
                req(&["ECHO", "a"]),
                req(&["GET", "k"]),
                req(&["PING"])
            ]
        );
    }

    #[test]
    fn any_split_of_the_input_gives_the_same_requests() {
        let input: &[u8] = b"*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$10\r\n0123456789\r\n\
            SET \"a b\" 'c d'\r\n*0\r\n\r\n*-1\r\n*1\r\n$0\r\n\r\nINCR  x\n";
        let whole = parse_all(input);
        assert_eq!(
            whole,
            vec![
                vec![b"SET".to_vec(), b"k\r\n".to_vec(), b"0123456789".to_vec()],
                req(&["SET", "a b", "c d"]),
                req(&[""]),
                req(&["INCR", "x"]),
            ]
        );
        for chunk in [1, 2, 3, 5, 7, 11, 13, 64] {
            let (requests, err) = parse_in_chunks(RespLimits::default(), input, chunk);
            assert_eq!(err, None, "chunk {chunk}");
            assert_eq!(requests, whole, "chunk {chunk}");
        }
    }

    #[test]
    fn empty_requests_are_skipped() {
        assert_eq!(
            parse_all(b"*0\r\n*-1\r\n*-7\r\n\r\n\n   \r\n \t \n*1\r\n$4\r\nPING\r\n"),
            vec![req(&["PING"])]
        );
        let mut p = parser();
        let mut buf = BytesMut::from(&b"*0\r\n\r\n"[..]);
        assert_eq!(p.next_request(&mut buf), Ok(None));
        assert!(buf.is_empty());
    }

    #[test]
    fn inline_commands_split_like_redis() {
        assert_eq!(
            parse_all(b"SET k v\r\nSET k \"a\\x41\\n\"\nSET k 'it\\'s'\r\n"),
            vec![
                req(&["SET", "k", "v"]),
                req(&["SET", "k", "aA\n"]),
                req(&["SET", "k", "it's"])
            ]
        );
    }

    #[test]
    fn inline_line_without_newline_waits() {
        let mut p = parser();
        let mut buf = BytesMut::from(&b"SET k v\r"[..]);
        assert_eq!(p.next_request(&mut buf), Ok(None));
        buf.extend_from_slice(b"\n");
        assert_eq!(
            p.next_request(&mut buf).unwrap().unwrap(),
            vec![Bytes::from("SET"), Bytes::from("k"), Bytes::from("v")]
        );
    }

    #[test]
    fn inline_unbalanced_quotes_are_a_protocol_error() {
        for line in [
            &b"SET k \"v\r\n"[..],
            b"SET k 'v\n",
            b"SET k \"v\"x\n",
            b"GET 'k'\"\n",
        ] {
            assert_eq!(
                first_error(RespLimits::default(), line),
                "Protocol error: unbalanced quotes in request"
            );
        }
    }

    #[test]
    fn inline_line_longer_than_the_limit_without_newline_is_rejected() {
        let limits = small_limits();
        let mut p = RequestParser::new(limits.clone());
        let mut buf = BytesMut::from(&[b'a'; 64][..]);
        assert_eq!(
            p.next_request(&mut buf),
            Ok(None),
            "at the limit it still waits"
        );
        buf.extend_from_slice(b"a");
        assert_eq!(
            p.next_request(&mut buf),
            Err(ProtocolError(
                "Protocol error: too big inline request".into()
            ))
        );
        // A longer line that did end in a newline is accepted, as in Redis.
        let mut line = vec![b'a'; 100];
        line.push(b'\n');
        assert_eq!(
            parse_in_chunks(limits, &line, 101).0,
            vec![vec![vec![b'a'; 100]]]
        );
    }

    #[test]
    fn bad_multibulk_count_is_invalid_multibulk_length() {
        for input in [
            &b"*x\r\n"[..],
            b"*\r\n",
            b"*+1\r\n",
            b"*01\r\n",
            b"*-0\r\n",
            b"* 1\r\n",
            b"*1 \r\n",
            b"*99999999999999999999\r\n",
            b"*11\r\n",
        ] {
            assert_eq!(
                first_error(small_limits(), input),
                "Protocol error: invalid multibulk length",
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(parse_in_chunks(small_limits(), b"*10\r\n", 5).1, None);
    }

    #[test]
    fn bulk_header_must_start_with_dollar() {
        assert_eq!(
            first_error(parser().limits, b"*1\r\n:3\r\n"),
            "Protocol error: expected '$', got ':'"
        );
        assert_eq!(
            first_error(parser().limits, b"*2\r\n$1\r\na\r\nGET\r\n"),
            "Protocol error: expected '$', got 'G'"
        );
        // The error text never carries a line break onto the wire.
        assert_eq!(
            first_error(parser().limits, b"*1\r\n\r\n"),
            "Protocol error: expected '$', got ' '"
        );
    }

    #[test]
    fn bad_bulk_length_is_invalid_bulk_length() {
        for header in [
            &b"$x"[..],
            b"$",
            b"$-1",
            b"$-5",
            b"$+3",
            b"$03",
            b"$3 ",
            b"$101",
            b"$99999999999999999999999",
        ] {
            let mut input = b"*1\r\n".to_vec();
            input.extend_from_slice(header);
            input.extend_from_slice(b"\r\n");
            assert_eq!(
                first_error(small_limits(), &input),
                "Protocol error: invalid bulk length",
                "{}",
                String::from_utf8_lossy(header)
            );
        }
        let mut at_limit = b"*1\r\n$100\r\n".to_vec();
        at_limit.extend_from_slice(&[b'x'; 102]);
        assert_eq!(parse_in_chunks(small_limits(), &at_limit, 7).1, None);
    }

    #[test]
    fn unauthenticated_clients_get_redis_small_limits() {
        let mut p = parser();
        p.set_auth_required(true);
        let mut buf = BytesMut::from(&b"*10\r\n$16384\r\n"[..]);
        assert_eq!(p.next_request(&mut buf), Ok(None), "at the limits it waits");

        let mut p = parser();
        p.set_auth_required(true);
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(
            p.next_request(&mut buf),
            Err(ProtocolError(
                "Protocol error: unauthenticated multibulk length".into()
            ))
        );

        let mut p = parser();
        p.set_auth_required(true);
        let mut buf = BytesMut::from(&b"*1\r\n$16385\r\n"[..]);
        assert_eq!(
            p.next_request(&mut buf),
            Err(ProtocolError(
                "Protocol error: unauthenticated bulk length".into()
            ))
        );
    }

    #[test]
    fn authenticating_lifts_the_small_limits_for_the_next_request() {
        let mut p = parser();
        p.set_auth_required(true);
        let mut buf = BytesMut::from(&b"AUTH pw\r\n*11\r\n"[..]);
        assert!(p.next_request(&mut buf).unwrap().is_some());
        p.set_auth_required(false);
        assert_eq!(p.next_request(&mut buf), Ok(None));
    }

    #[test]
    fn huge_bulk_header_is_rejected_before_its_data() {
        let mut p = parser();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$10000000000\r\n"[..]);
        assert_eq!(
            p.next_request(&mut buf),
            Err(ProtocolError("Protocol error: invalid bulk length".into()))
        );
    }

    #[test]
    fn header_line_without_end_past_the_limit_is_too_big() {
        let mut count = b"*".to_vec();
        count.extend_from_slice(&[b'1'; 63]);
        assert_eq!(
            parse_in_chunks(small_limits(), &count, 3).1,
            None,
            "at the limit"
        );
        count.push(b'1');
        assert_eq!(
            parse_in_chunks(small_limits(), &count, 3).1,
            Some(ProtocolError(
                "Protocol error: too big mbulk count string".into()
            ))
        );
        let mut bulk = b"*1\r\n$".to_vec();
        bulk.extend_from_slice(&[b'1'; 70]);
        assert_eq!(
            parse_in_chunks(small_limits(), &bulk, 3).1,
            Some(ProtocolError(
                "Protocol error: too big bulk count string".into()
            ))
        );
    }

    #[test]
    fn header_waits_for_the_byte_after_cr() {
        let mut p = parser();
        let mut buf = BytesMut::from(&b"*1\r"[..]);
        assert_eq!(p.next_request(&mut buf), Ok(None));
        buf.extend_from_slice(b"\n$1\r");
        assert_eq!(p.next_request(&mut buf), Ok(None));
        buf.extend_from_slice(b"\nx\r\n");
        assert_eq!(p.next_request(&mut buf), Ok(Some(vec![Bytes::from("x")])));
    }

    #[test]
    fn arguments_are_slices_of_the_read_buffer() {
        let mut p = parser();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"[..]);
        let start = buf.as_ptr() as usize;
        let end = start + buf.len();
        let args = p.next_request(&mut buf).unwrap().unwrap();
        for arg in &args {
            let at = arg.as_ptr() as usize;
            assert!(start <= at && at + arg.len() <= end, "argument was copied");
        }
    }

    #[test]
    fn many_arguments_in_chunks_are_parsed_in_linear_work() {
        const ARGS: usize = 200_000;
        let mut input = format!("*{ARGS}\r\n").into_bytes();
        for i in 0..ARGS {
            let arg = format!("arg{i}");
            input.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
        let mut p = parser();
        let mut buf = BytesMut::new();
        let mut reads = 0;
        let mut request = None;
        for piece in input.chunks(64 * 1024 - 3) {
            reads += 1;
            buf.extend_from_slice(piece);
            if let Some(args) = p.next_request(&mut buf).unwrap() {
                request = Some(args);
            }
            // Finished arguments leave the buffer: nothing parsed stays to be parsed again.
            assert!(buf.len() < 32, "{} bytes left after a read", buf.len());
        }
        let request = request.expect("the request completes with its last byte");
        assert_eq!(request.len(), ARGS);
        assert_eq!(
            &request[ARGS - 1][..],
            format!("arg{}", ARGS - 1).as_bytes()
        );
        assert!(reads > 30);
        // Line searches touch each header byte about once, never bulk data or old headers.
        assert!(
            p.examined <= input.len(),
            "examined {} bytes of {}",
            p.examined,
            input.len()
        );
    }

    #[test]
    fn long_header_arriving_byte_by_byte_is_searched_once() {
        let mut p = RequestParser::new(small_limits());
        let mut buf = BytesMut::new();
        for _ in 0..60 {
            buf.extend_from_slice(b" ");
            assert_eq!(p.next_request(&mut buf), Ok(None));
        }
        assert_eq!(p.examined, 60);
    }

    #[test]
    fn big_bulk_grows_the_buffer_geometrically_from_data_received() {
        const BULK: usize = 16 * 1024 * 1024;
        const READ: usize = 64 * 1024;
        let mut p = parser();
        let mut buf = BytesMut::with_capacity(READ);
        buf.extend_from_slice(format!("*1\r\n${BULK}\r\n").as_bytes());
        let mut data = vec![b'v'; BULK];
        data.extend_from_slice(b"\r\n");
        let mut reallocations = 0;
        let mut request = None;
        for piece in data.chunks(READ) {
            assert!(request.is_none());
            request = p.next_request(&mut buf).unwrap();
            // The connection's read: into spare room, reserving a read's worth if short.
            let before = buf.as_ptr();
            if buf.capacity() - buf.len() < piece.len() {
                buf.reserve(READ);
            }
            buf.extend_from_slice(piece);
            if buf.as_ptr() != before {
                reallocations += 1;
            }
            assert!(
                buf.capacity() <= 2 * buf.len() + 2 * 1024 * 1024,
                "capacity {} for {} bytes received",
                buf.capacity(),
                buf.len()
            );
        }
        let request = request
            .or_else(|| p.next_request(&mut buf).unwrap())
            .unwrap();
        assert_eq!(request[0].len(), BULK);
        assert!(reallocations <= 8, "{reallocations} reallocations");
    }

    #[test]
    fn claimed_bulk_length_does_not_allocate_before_data() {
        let mut p = parser();
        let mut buf = BytesMut::from(&b"*1\r\n$500000000\r\nabc"[..]);
        assert_eq!(p.next_request(&mut buf), Ok(None));
        assert!(
            buf.capacity() <= 2 * 1024 * 1024,
            "capacity {}",
            buf.capacity()
        );
    }

    #[test]
    fn strict_integers_follow_string2ll() {
        assert_eq!(parse_strict_i64(b"0"), Some(0));
        assert_eq!(parse_strict_i64(b"-1"), Some(-1));
        assert_eq!(parse_strict_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_strict_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"+1",
            b" 1",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
        ] {
            assert_eq!(
                parse_strict_i64(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
