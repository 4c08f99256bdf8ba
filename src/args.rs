//! A cursor over one command's arguments, with Redis's wording for each parse error.
//! A leaf: the command table and the state machine's handlers both parse with it.

use bytes::Bytes;

use crate::reply::Reply;

pub struct Args<'a> {
    argv: &'a [Bytes],
    pos: usize,
}

impl<'a> Args<'a> {
    /// Starts after the command name (`argv[0]`).
    pub fn new(argv: &'a [Bytes]) -> Args<'a> {
        Args { argv, pos: 1 }
    }

    pub fn remaining(&self) -> usize {
        self.argv.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next argument; a syntax error when there is none (option without its value).
    pub fn next_bytes(&mut self) -> Result<&'a Bytes, Reply> {
        let arg = self.argv.get(self.pos).ok_or_else(Reply::syntax_error)?;
        self.pos += 1;
        Ok(arg)
    }

    /// The next argument, only if it equals `word` ignoring ASCII case.
    pub fn eat(&mut self, word: &str) -> bool {
        match self.argv.get(self.pos) {
            Some(arg) if arg.eq_ignore_ascii_case(word.as_bytes()) => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }
}

/// Parses a decimal integer exactly as Redis's `string2ll` does: no spaces, no `+`,
/// no leading zeros, no "-0", within i64.
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(arg).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
        || text == "-0"
    {
        return None;
    }
    text.parse().ok()
}

/// Parses a float as Redis's `strtold`-based parsing does (accepting `inf`, `-inf`),
/// refusing NaN and surrounding spaces.
pub fn parse_f64(arg: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(arg).ok()?;
    if text.is_empty() || text.trim() != text {
        return None;
    }
    let value = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => text.parse::<f64>().ok()?,
    };
    (!value.is_nan()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_like_redis() {
        assert_eq!(parse_i64(b"42"), Some(42));
        assert_eq!(parse_i64(b"-7"), Some(-7));
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"007"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn floats_refuse_nan_and_spaces() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
    }

    #[test]
    fn cursor_reads_options_in_order() {
        let argv: Vec<Bytes> = ["set", "k", "v", "px", "100"]
            .iter()
            .map(|s| Bytes::from(*s))
            .collect();
        let mut args = Args::new(&argv);
        assert_eq!(args.next_bytes().unwrap().as_ref(), b"k");
        assert_eq!(args.next_bytes().unwrap().as_ref(), b"v");
        assert!(args.eat("PX"));
        assert_eq!(parse_i64(args.next_bytes().unwrap()), Some(100));
        assert!(args.is_empty());
        assert_eq!(args.next_bytes(), Err(Reply::syntax_error()));
    }
}
