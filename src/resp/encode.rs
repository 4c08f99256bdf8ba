//! Reply encoding for RESP2 and RESP3, written straight into the connection's output
//! buffer: numbers are formatted on the stack, never through an allocated `String`.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use super::Protocol;
use crate::reply::Reply;

/// Appends the encoding of `reply` for `proto`.
pub fn encode(reply: &Reply, proto: Protocol, out: &mut BytesMut) {
    let resp3 = proto == Protocol::Resp3;
    match reply {
        Reply::Ok => out.put_slice(b"+OK\r\n"),
        Reply::Status(text) => put_line(out, b'+', text.as_bytes()),
        Reply::Error(text) => put_line(out, b'-', text.as_bytes()),
        Reply::Int(n) => put_int_line(out, b':', *n),
        Reply::Bulk(data) => put_bulk(out, data),
        Reply::Nil if resp3 => out.put_slice(b"_\r\n"),
        Reply::Nil => out.put_slice(b"$-1\r\n"),
        Reply::NilArray if resp3 => out.put_slice(b"_\r\n"),
        Reply::NilArray => out.put_slice(b"*-1\r\n"),
        Reply::Array(items) => put_aggregate(out, b'*', items, proto),
        Reply::Set(items) => put_aggregate(out, if resp3 { b'~' } else { b'*' }, items, proto),
        Reply::Push(items) => put_aggregate(out, if resp3 { b'>' } else { b'*' }, items, proto),
        // The connection turns Blocked into the real reply; reaching here is a bug, and
        // nil is the harmless answer.
        Reply::Blocked => encode(&Reply::Nil, proto, out),
        Reply::Map(pairs) => {
            if resp3 {
                put_len_line(out, b'%', pairs.len());
            } else {
                put_len_line(out, b'*', 2 * pairs.len());
            }
            for (key, value) in pairs {
                encode(key, proto, out);
                encode(value, proto, out);
            }
        }
        Reply::Pairs(pairs) if resp3 => {
            put_len_line(out, b'*', pairs.len());
            for (first, second) in pairs {
                put_len_line(out, b'*', 2);
                encode(first, proto, out);
                encode(second, proto, out);
            }
        }
        Reply::Pairs(pairs) => {
            put_len_line(out, b'*', 2 * pairs.len());
            for (first, second) in pairs {
                encode(first, proto, out);
                encode(second, proto, out);
            }
        }
        Reply::Double(d) => {
            let text = DoubleText::new(*d);
            if resp3 {
                put_line(out, b',', text.as_bytes());
            } else {
                put_bulk(out, text.as_bytes());
            }
        }
        Reply::Bool(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Reply::Bool(b) => out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
        Reply::Verbatim(format, content) if resp3 => {
            put_len_line(out, b'=', format.len() + 1 + content.len());
            out.reserve(format.len() + 1 + content.len() + 2);
            out.put_slice(format.as_bytes());
            out.put_u8(b':');
            out.put_slice(content);
            out.put_slice(b"\r\n");
        }
        Reply::Verbatim(_, content) => put_bulk(out, content),
    }
}

/// A double as Redis writes it in a reply (RESP3 `,` line, RESP2 bulk string).
pub fn double_text(d: f64) -> String {
    String::from_utf8_lossy(DoubleText::new(d).as_bytes()).into_owned()
}

fn put_aggregate(out: &mut BytesMut, kind: u8, items: &[Reply], proto: Protocol) {
    put_len_line(out, kind, items.len());
    for item in items {
        encode(item, proto, out);
    }
}

fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    put_len_line(out, b'$', data.len());
    out.reserve(data.len() + 2);
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// A simple line (`+status`, `-error`); a `\r` or `\n` in the text would end the line
/// early and desynchronize the client, so each becomes a space, as Redis does for errors.
fn put_line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(kind);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(text.iter().map(|&b| match b {
            b'\r' | b'\n' => b' ',
            other => other,
        }));
    } else {
        out.put_slice(text);
    }
    out.put_slice(b"\r\n");
}

fn put_len_line(out: &mut BytesMut, kind: u8, len: usize) {
    put_number_line(out, kind, false, len as u64);
}

fn put_int_line(out: &mut BytesMut, kind: u8, n: i64) {
    put_number_line(out, kind, n < 0, n.unsigned_abs());
}

/// Writes `<kind>[-]<digits>\r\n` with one copy out of a stack buffer.
fn put_number_line(out: &mut BytesMut, kind: u8, negative: bool, mut magnitude: u64) {
    // kind, sign, 20 digits, \r\n
    let mut line = [0u8; 24];
    let mut start = line.len() - 2;
    line[start..].copy_from_slice(b"\r\n");
    loop {
        start -= 1;
        line[start] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if negative {
        start -= 1;
        line[start] = b'-';
    }
    start -= 1;
    line[start] = kind;
    out.put_slice(&line[start..]);
}

/// The text of a double as Redis 7.2+ prints it (`fpconv_dtoa`, after `addReplyDouble`
/// handles infinity): `inf`, `-inf`, `nan`, `0`, `-0`; otherwise the shortest digits that
/// round-trip, laid out by the decimal exponent `e` of the first digit:
/// - a whole number with `e < digits + 7` in full, without `.0` (`3`, `10000000`,
///   `12345678901234567000`),
/// - a number with a fraction whose last digit is at 10^-6 or above, or with `|e| < 4`,
///   in plain decimal (`0.1`, `0.000001`, `123.456`, `0.00123456789`),
/// - anything else in scientific notation with a signed exponent and no padding
///   (`1e+21`, `1e+8`, `1.5e-7`).
///
/// Digits come from Rust's shortest round-trip formatting; Redis's Grisu2 gives the same
/// digits except in rare cases where it emits one more.
struct DoubleText {
    bytes: [u8; 32],
    len: usize,
}

impl DoubleText {
    fn new(d: f64) -> DoubleText {
        let mut text = DoubleText::empty();
        if d.is_infinite() {
            text.push_str(if d > 0.0 { "inf" } else { "-inf" });
            return text;
        }
        if d.is_sign_negative() {
            text.push(b'-');
        }
        if d.is_nan() {
            text.push_str("nan");
            return text;
        }
        if d == 0.0 {
            text.push(b'0');
            return text;
        }
        // Shortest round-trip digits, as `d.ddde<exp>`, then laid out as fpconv does.
        let mut scientific = DoubleText::empty();
        write!(scientific, "{:e}", d.abs()).expect("a double's text fits in 32 bytes");
        let sci = scientific.as_bytes();
        let e_at = sci
            .iter()
            .position(|&b| b == b'e')
            .expect("{:e} always writes an exponent");
        let mut digits = [0u8; 20];
        let mut ndigits = 0;
        for &b in sci[..e_at].iter().filter(|b| b.is_ascii_digit()) {
            digits[ndigits] = b;
            ndigits += 1;
        }
        let first_exp: i32 = std::str::from_utf8(&sci[e_at + 1..])
            .ok()
            .and_then(|e| e.parse().ok())
            .expect("{:e} writes a decimal exponent");
        text.push_fpconv_layout(&digits[..ndigits], first_exp);
        text
    }

    fn empty() -> DoubleText {
        DoubleText {
            bytes: [0; 32],
            len: 0,
        }
    }

    /// fpconv's `emit_digits`: the value is `digits` × 10^`k`.
    fn push_fpconv_layout(&mut self, digits: &[u8], first_exp: i32) {
        let ndigits = digits.len() as i32;
        let k = first_exp - (ndigits - 1);
        let exp = first_exp.abs();
        if k >= 0 && exp < ndigits + 7 {
            self.push_slice(digits);
            for _ in 0..k {
                self.push(b'0');
            }
        } else if k < 0 && (k > -7 || exp < 4) {
            let int_digits = ndigits + k;
            if int_digits <= 0 {
                self.push_str("0.");
                for _ in 0..-int_digits {
                    self.push(b'0');
                }
                self.push_slice(digits);
            } else {
                let (int_part, frac_part) = digits.split_at(int_digits as usize);
                self.push_slice(int_part);
                self.push(b'.');
                self.push_slice(frac_part);
            }
        } else {
            self.push(digits[0]);
            if digits.len() > 1 {
                self.push(b'.');
                self.push_slice(&digits[1..]);
            }
            self.push(b'e');
            self.push(if first_exp < 0 { b'-' } else { b'+' });
            write!(self, "{exp}").expect("a double's text fits in 32 bytes");
        }
    }

    fn push(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }

    fn push_slice(&mut self, s: &[u8]) {
        self.bytes[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    fn push_str(&mut self, s: &str) {
        self.push_slice(s.as_bytes());
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl std::fmt::Write for DoubleText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.len + s.len() > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.push_str(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn wire(reply: &Reply, proto: Protocol) -> String {
        let mut out = BytesMut::new();
        encode(reply, proto, &mut out);
        String::from_utf8(out.to_vec()).expect("test replies are UTF-8")
    }

    /// The encoding in RESP2 and in RESP3.
    fn both(reply: Reply) -> (String, String) {
        (wire(&reply, Protocol::Resp2), wire(&reply, Protocol::Resp3))
    }

    fn same_in_both(reply: Reply, expected: &str) {
        assert_eq!(both(reply), (expected.to_string(), expected.to_string()));
    }

    fn double_text(d: f64) -> String {
        String::from_utf8(DoubleText::new(d).as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn simple_replies_are_the_same_in_both_protocols() {
        same_in_both(Reply::Ok, "+OK\r\n");
        same_in_both(Reply::status("PONG"), "+PONG\r\n");
        same_in_both(Reply::syntax_error(), "-ERR syntax error\r\n");
        same_in_both(Reply::Int(0), ":0\r\n");
        same_in_both(Reply::Int(-42), ":-42\r\n");
        same_in_both(Reply::Int(i64::MAX), ":9223372036854775807\r\n");
        same_in_both(Reply::Int(i64::MIN), ":-9223372036854775808\r\n");
        same_in_both(Reply::bulk("hello"), "$5\r\nhello\r\n");
        same_in_both(Reply::bulk(""), "$0\r\n\r\n");
        same_in_both(Reply::bulk("a\r\nb"), "$4\r\na\r\nb\r\n");
    }

    #[test]
    fn line_breaks_in_errors_and_statuses_become_spaces() {
        same_in_both(Reply::error("ERR bad\r\nthing\n"), "-ERR bad  thing \r\n");
        same_in_both(Reply::status("a\rb"), "+a b\r\n");
    }

    #[test]
    fn nils_are_typed_in_resp2_and_null_in_resp3() {
        assert_eq!(both(Reply::Nil), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(Reply::NilArray), ("*-1\r\n".into(), "_\r\n".into()));
    }

    #[test]
    fn aggregates_have_their_resp3_types_and_are_arrays_in_resp2() {
        let items = || vec![Reply::Int(1), Reply::bulk("x")];
        assert_eq!(
            both(Reply::Array(items())),
            (
                "*2\r\n:1\r\n$1\r\nx\r\n".into(),
                "*2\r\n:1\r\n$1\r\nx\r\n".into()
            )
        );
        assert_eq!(
            both(Reply::Set(items())),
            (
                "*2\r\n:1\r\n$1\r\nx\r\n".into(),
                "~2\r\n:1\r\n$1\r\nx\r\n".into()
            )
        );
        assert_eq!(
            both(Reply::Push(items())),
            (
                "*2\r\n:1\r\n$1\r\nx\r\n".into(),
                ">2\r\n:1\r\n$1\r\nx\r\n".into()
            )
        );
        same_in_both(Reply::Array(vec![]), "*0\r\n");
    }

    #[test]
    fn map_is_a_flat_array_of_twice_its_length_in_resp2() {
        let map = Reply::Map(vec![
            (Reply::bulk("a"), Reply::Int(1)),
            (Reply::bulk("b"), Reply::Nil),
        ]);
        assert_eq!(
            both(map),
            (
                "*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$-1\r\n".into(),
                "%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n_\r\n".into()
            )
        );
        assert_eq!(both(Reply::Map(vec![])), ("*0\r\n".into(), "%0\r\n".into()));
    }

    #[test]
    fn pairs_are_nested_in_resp3_and_flat_in_resp2() {
        let pairs = Reply::Pairs(vec![
            (Reply::bulk("a"), Reply::Double(1.0)),
            (Reply::bulk("b"), Reply::Double(2.5)),
        ]);
        assert_eq!(
            both(pairs),
            (
                "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$3\r\n2.5\r\n".into(),
                "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n".into()
            )
        );
        same_in_both(Reply::Pairs(vec![]), "*0\r\n");
    }

    #[test]
    fn nested_aggregates_encode_each_level_for_the_protocol() {
        let reply = Reply::Array(vec![
            Reply::Map(vec![(
                Reply::status("k"),
                Reply::Array(vec![
                    Reply::Bool(true),
                    Reply::Set(vec![Reply::Double(1.5)]),
                ]),
            )]),
            Reply::NilArray,
            Reply::Array(vec![Reply::Array(vec![])]),
        ]);
        assert_eq!(
            both(reply),
            (
                "*3\r\n*2\r\n+k\r\n*2\r\n:1\r\n*1\r\n$3\r\n1.5\r\n*-1\r\n*1\r\n*0\r\n".into(),
                "*3\r\n%1\r\n+k\r\n*2\r\n#t\r\n~1\r\n,1.5\r\n_\r\n*1\r\n*0\r\n".into()
            )
        );
    }

    #[test]
    fn double_is_a_bulk_string_in_resp2() {
        assert_eq!(
            both(Reply::Double(3.0)),
            ("$1\r\n3\r\n".into(), ",3\r\n".into())
        );
        assert_eq!(
            both(Reply::Double(-0.25)),
            ("$5\r\n-0.25\r\n".into(), ",-0.25\r\n".into())
        );
        assert_eq!(
            both(Reply::Double(f64::INFINITY)),
            ("$3\r\ninf\r\n".into(), ",inf\r\n".into())
        );
        assert_eq!(
            both(Reply::Double(f64::NEG_INFINITY)),
            ("$4\r\n-inf\r\n".into(), ",-inf\r\n".into())
        );
    }

    #[test]
    fn bool_is_an_integer_in_resp2() {
        assert_eq!(both(Reply::Bool(true)), (":1\r\n".into(), "#t\r\n".into()));
        assert_eq!(both(Reply::Bool(false)), (":0\r\n".into(), "#f\r\n".into()));
    }

    #[test]
    fn verbatim_carries_its_format_only_in_resp3() {
        let reply = Reply::Verbatim("txt".into(), Bytes::from("hi\r\nthere"));
        assert_eq!(
            both(reply),
            (
                "$9\r\nhi\r\nthere\r\n".into(),
                "=13\r\ntxt:hi\r\nthere\r\n".into()
            )
        );
    }

    #[test]
    fn encoding_appends_to_the_buffer() {
        let mut out = BytesMut::from(&b"+OK\r\n"[..]);
        encode(&Reply::Int(7), Protocol::Resp2, &mut out);
        assert_eq!(&out[..], b"+OK\r\n:7\r\n");
    }

    #[test]
    fn doubles_print_as_redis_7_2_does() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (3.0, "3"),
            (-3.0, "-3"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (123.456, "123.456"),
            (-2.5e-3, "-0.0025"),
            (1e-6, "0.000001"),
            (1.5e-6, "1.5e-6"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (0.000123456789, "1.23456789e-4"),
            (0.00123456789, "0.00123456789"),
            (1234.5678e-10, "1.2345678e-7"),
            (1e7, "10000000"),
            (1e8, "1e+8"),
            (123456789.0, "123456789"),
            (1.25e9, "1250000000"),
            (1.25e10, "1.25e+10"),
            (12345678901234567890.0, "12345678901234567000"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::NAN, "nan"),
        ];
        for &(d, text) in cases {
            assert_eq!(double_text(d), text, "{d:e}");
        }
    }

    #[test]
    fn double_text_round_trips() {
        let mut x = 1.0e-300_f64;
        while x < 1e300 {
            for d in [x, -x, x * 1.234_567_890_123_456_7, x / 3.0] {
                let text = double_text(d);
                assert_eq!(text.parse::<f64>().unwrap(), d, "{text}");
            }
            x *= 7.3;
        }
    }
}
