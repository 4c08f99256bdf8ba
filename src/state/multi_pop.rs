//! The arguments LMPOP, BLMPOP, ZMPOP and BZMPOP share (Redis 7): `numkeys key [key ...]
//! LEFT|RIGHT (or MIN|MAX) [COUNT count]`.

use bytes::Bytes;

use crate::args::parse_i64;
use crate::reply::Reply;

/// A parsed multi-key pop.
pub(crate) struct MultiPop<'a> {
    pub keys: &'a [Bytes],
    /// RIGHT (lists) or MAX (sorted sets).
    pub from_end: bool,
    pub count: usize,
}

impl<'a> MultiPop<'a> {
    /// Parses `args` (what follows the command name, or BLMPOP's timeout) with `ends`
    /// naming the two ends (`["left", "right"]` or `["min", "max"]`), in Redis's order and
    /// words.
    pub(crate) fn parse(args: &'a [Bytes], ends: [&str; 2]) -> Result<MultiPop<'a>, Reply> {
        let positive = |arg: &[u8], what: &str| {
            parse_i64(arg)
                .filter(|n| *n >= 1)
                .ok_or_else(|| Reply::Error(format!("ERR {what} should be greater than 0")))
        };
        let [numkeys, rest @ ..] = args else {
            return Err(Reply::syntax_error());
        };
        let numkeys = positive(numkeys, "numkeys")?;
        let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
        if numkeys >= rest.len() {
            return Err(Reply::syntax_error());
        }
        let (keys, rest) = rest.split_at(numkeys);
        let [end, options @ ..] = rest else {
            return Err(Reply::syntax_error());
        };
        let from_end = if end.eq_ignore_ascii_case(ends[0].as_bytes()) {
            false
        } else if end.eq_ignore_ascii_case(ends[1].as_bytes()) {
            true
        } else {
            return Err(Reply::syntax_error());
        };
        let count = match options {
            [] => 1,
            [option, count] if option.eq_ignore_ascii_case(b"count") => {
                usize::try_from(positive(count, "count")?).unwrap_or(usize::MAX)
            }
            _ => return Err(Reply::syntax_error()),
        };
        Ok(MultiPop {
            keys,
            from_end,
            count,
        })
    }
}
