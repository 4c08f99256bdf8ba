//! Splitting an inline command line (`SET k "a b"`) into arguments, as Redis's
//! `sdssplitargs` does, so `nc` and telnet users get the same quoting rules as with Redis.

use bytes::Bytes;

/// Splits `line` (without its line ending) into arguments; `None` on unbalanced quotes.
///
/// Plain tokens are zero-copy slices of `line`; only quoted tokens are copied (their
/// escapes change the bytes). A NUL byte is an ordinary byte here; Redis, which splits C
/// strings, never answers a line holding one (it waits for a newline it cannot find).
pub(super) fn split_args(line: &Bytes) -> Option<Vec<Bytes>> {
    let s = &line[..];
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < s.len() && is_space(s[i]) {
            i += 1;
        }
        if i == s.len() {
            return Some(args);
        }
        let start = i;
        while i < s.len() && !ends_plain_token(s[i]) && !is_quote(s[i]) {
            i += 1;
        }
        if i == s.len() || ends_plain_token(s[i]) {
            args.push(line.slice(start..i));
            continue;
        }
        // A quote inside or at the start of the token: build it byte by byte.
        let mut token = s[start..i].to_vec();
        loop {
            match s.get(i) {
                None => break,
                Some(&c) if ends_plain_token(c) => break,
                Some(b'"') => {
                    i = read_double_quoted(s, i + 1, &mut token)?;
                    break;
                }
                Some(b'\'') => {
                    i = read_single_quoted(s, i + 1, &mut token)?;
                    break;
                }
                Some(&c) => {
                    token.push(c);
                    i += 1;
                }
            }
        }
        args.push(Bytes::from(token));
    }
}

/// Reads a `"..."` body starting at `i` (after the opening quote) into `token`; returns
/// the index after the closing quote.
fn read_double_quoted(s: &[u8], mut i: usize, token: &mut Vec<u8>) -> Option<usize> {
    loop {
        let c = *s.get(i)?;
        if c == b'\\' && s.get(i + 1) == Some(&b'x') {
            if let (Some(hi), Some(lo)) = (hex_value(s.get(i + 2)), hex_value(s.get(i + 3))) {
                token.push(hi * 16 + lo);
                i += 4;
                continue;
            }
        }
        if c == b'\\' && i + 1 < s.len() {
            token.push(match s[i + 1] {
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'b' => 0x08,
                b'a' => 0x07,
                other => other,
            });
            i += 2;
        } else if c == b'"' {
            return closing_quote_end(s, i);
        } else {
            token.push(c);
            i += 1;
        }
    }
}

/// Reads a `'...'` body starting at `i` (after the opening quote); only `\'` is an escape.
fn read_single_quoted(s: &[u8], mut i: usize, token: &mut Vec<u8>) -> Option<usize> {
    loop {
        let c = *s.get(i)?;
        if c == b'\\' && s.get(i + 1) == Some(&b'\'') {
            token.push(b'\'');
            i += 2;
        } else if c == b'\'' {
            return closing_quote_end(s, i);
        } else {
            token.push(c);
            i += 1;
        }
    }
}

/// A closing quote must be followed by a space or the end of the line.
fn closing_quote_end(s: &[u8], quote: usize) -> Option<usize> {
    match s.get(quote + 1) {
        Some(&next) if !is_space(next) => None,
        _ => Some(quote + 1),
    }
}

/// C's `isspace`: what separates tokens.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// What ends an unquoted token in `sdssplitargs` (a narrower set than `isspace`).
fn ends_plain_token(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn is_quote(b: u8) -> bool {
    b == b'"' || b == b'\''
}

fn hex_value(b: Option<&u8>) -> Option<u8> {
    char::from(*b?).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &[u8]) -> Option<Vec<Vec<u8>>> {
        split_args(&Bytes::copy_from_slice(line))
            .map(|args| args.into_iter().map(|a| a.to_vec()).collect())
    }

    fn words(ws: &[&[u8]]) -> Option<Vec<Vec<u8>>> {
        Some(ws.iter().map(|w| w.to_vec()).collect())
    }

    #[test]
    fn whitespace_separates_plain_tokens() {
        assert_eq!(split(b"SET k v"), words(&[b"SET", b"k", b"v"]));
        assert_eq!(split(b"  SET \t k  v  "), words(&[b"SET", b"k", b"v"]));
        assert_eq!(split(b""), words(&[]));
        assert_eq!(split(b" \t "), words(&[]));
    }

    #[test]
    fn plain_tokens_are_slices_of_the_line() {
        let line = Bytes::from_static(b"GET key");
        let args = split_args(&line).unwrap();
        assert_eq!(args[1].as_ptr(), line[4..].as_ptr());
    }

    #[test]
    fn double_quotes_keep_spaces_and_decode_escapes() {
        assert_eq!(split(br#"SET k "a b""#), words(&[b"SET", b"k", b"a b"]));
        assert_eq!(
            split(br#""\n\r\t\b\a\\\"\q""#),
            words(&[b"\n\r\t\x08\x07\\\"q"])
        );
        assert_eq!(split(br#""\x41\x7a\xff\x0""#), words(&[b"Az\xffx0"]));
        assert_eq!(split(br#"SET k """#), words(&[b"SET", b"k", b""]));
    }

    #[test]
    fn single_quotes_only_unescape_a_quote() {
        assert_eq!(split(br"'it\'s \n'"), words(&[b"it's \\n"]));
        assert_eq!(split(b"''"), words(&[b""]));
    }

    #[test]
    fn quote_inside_a_token_joins_it() {
        assert_eq!(split(br#"a"b c" d"#), words(&[b"ab c", b"d"]));
        assert_eq!(split(b"x'y z'"), words(&[b"xy z"]));
    }

    #[test]
    fn closing_quote_must_be_followed_by_space_or_end() {
        assert_eq!(split(br#""a"b"#), None);
        assert_eq!(split(b"'a'b"), None);
        assert_eq!(split(b"\"a\"\x0b"), words(&[b"a"]));
    }

    #[test]
    fn unterminated_quotes_are_unbalanced() {
        assert_eq!(split(br#"SET k "abc"#), None);
        assert_eq!(split(b"SET k 'abc"), None);
        assert_eq!(split(br#""abc\"#), None);
        assert_eq!(split(br#""abc\""#), None);
    }

    #[test]
    fn vertical_tab_separates_only_between_tokens() {
        assert_eq!(split(b"\x0ba\x0bb"), words(&[b"a\x0bb"]));
    }

    #[test]
    fn nul_is_an_ordinary_byte() {
        assert_eq!(split(b"GET k\0v w"), words(&[b"GET", b"k\0v", b"w"]));
        assert_eq!(split(b"GET \"k\0\""), words(&[b"GET", b"k\0"]));
    }
}
