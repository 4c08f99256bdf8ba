//! The lock-release scripts client libraries send, run without the Lua VM.
//!
//! Releasing a lock by compare-and-delete is the script lock clients run most: once per
//! lock, in the Redlock pattern, redis-py's `Lock.release` and node-redlock's `release`.
//! Those few scripts are recognised by their text, token for token, and run here as the
//! very `redis.call`s their Lua would make, through the same command table
//! (`call_command`), so the reply, the writes, the revisions and the events are the Lua
//! run's. It saves the Lua VM's work, which on every node is most of a release's cost.
//!
//! What may differ from a known text is whitespace: any amount where the text has some,
//! and blank lines. In a text with a `--` comment, line breaks must stay where they are
//! (a comment ends at one). Anything else (another comment, quote style mixed within the
//! script, one more token) runs in Lua. A run that Lua would end with an error (a GET that
//! fails, such as WRONGTYPE) undoes what it did and hands the script to Lua, so errors
//! keep Lua's words.

use bytes::Bytes;

use super::calls::call_command;
use super::{Access, Invocation};
use crate::reply::Reply;
use crate::state::Keyspace;

/// What a recognised script does once it has found which keys hold `ARGV[1]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Release {
    /// `KEYS[1]` if it holds `ARGV[1]`; returns DEL's reply, else 0 (Redis's docs, Redlock).
    ReturnDel,
    /// `KEYS[1]` if it holds `ARGV[1]`; returns 1 when it did, else 0 (redis-py).
    ReturnOne,
    /// Every key of `KEYS` that holds `ARGV[1]`, through `redis.pcall` (a failed DEL still
    /// counts); returns how many (node-redlock).
    CountKeys,
}

/// node-redlock 5's `RELEASE_SCRIPT`, less the blank first and last lines.
const NODE_REDLOCK_RELEASE: &str = r#"local count = 0
  for i, key in ipairs(KEYS) do
    -- Only remove entries for *this* lock value.
    if redis.call("get", key) == ARGV[1] then
      redis.pcall("del", key)
      count = count + 1
    end
  end

  -- Return the number of entries removed.
  return count"#;

/// The known texts, with `"` for the quotes; the same text with `'` matches too.
const KNOWN: &[(&str, Release)] = &[
    // Redis's documentation (the Redlock pattern), redlock-py, raftlock bench.
    (
        r#"if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end"#,
        Release::ReturnDel,
    ),
    // redis-py (redis.lock.Lock.LUA_RELEASE_SCRIPT, 4.x to 8.x).
    (
        r#"local token = redis.call("get", KEYS[1])
        if not token or token ~= ARGV[1] then
            return 0
        end
        redis.call("del", KEYS[1])
        return 1"#,
        Release::ReturnOne,
    ),
    // node-redlock 5 (RELEASE_SCRIPT).
    (NODE_REDLOCK_RELEASE, Release::CountKeys),
];

/// The known script `source` is, if it is one.
pub(crate) fn recognize(source: &[u8]) -> Option<Release> {
    KNOWN.iter().find_map(|(text, release)| {
        let text = text.as_bytes();
        let same = |quote| {
            if text.windows(2).any(|w| w == b"--") {
                same_lines(source, text, quote)
            } else {
                same_tokens(source, text, quote)
            }
        };
        (same(b'"') || same(b'\'')).then_some(*release)
    })
}

/// Lua's whitespace, line breaks included.
fn is_space(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn is_line_break(b: &u8) -> bool {
    matches!(b, b'\n' | b'\r')
}

fn tokens(text: &[u8], split: fn(&u8) -> bool) -> impl Iterator<Item = &[u8]> {
    text.split(split).filter(|t| !t.is_empty())
}

/// The same token, where `known`'s `"` stands for `quote`.
fn same_token(source: &[u8], known: &[u8], quote: u8) -> bool {
    source.len() == known.len()
        && source
            .iter()
            .zip(known)
            .all(|(&s, &k)| s == if k == b'"' { quote } else { k })
}

/// The same tokens in the same order, whatever whitespace is between them.
fn same_tokens(source: &[u8], known: &[u8], quote: u8) -> bool {
    let mut source = tokens(source, is_space);
    let mut known = tokens(known, is_space);
    loop {
        match (source.next(), known.next()) {
            (None, None) => return true,
            (Some(s), Some(k)) if same_token(s, k, quote) => {}
            _ => return false,
        }
    }
}

/// The same non-blank lines, each with the same tokens.
fn same_lines(source: &[u8], known: &[u8], quote: u8) -> bool {
    let lines = |text| tokens(text, is_line_break).filter(|line| line.iter().any(|b| !is_space(b)));
    let mut source = lines(source);
    let mut known = lines(known);
    loop {
        match (source.next(), known.next()) {
            (None, None) => return true,
            (Some(s), Some(k)) if same_tokens(s, k, quote) => {}
            _ => return false,
        }
    }
}

/// Runs a recognised script as its Lua would, inside an undo scope. None: Lua must run it
/// (no key or no `ARGV[1]`, which Lua handles its own way, or a `redis.call` that failed).
pub(crate) fn run(release: Release, ks: &mut Keyspace, inv: &Invocation<'_>) -> Option<Reply> {
    let token = inv.args.first()?;
    let keys = match release {
        Release::CountKeys => inv.keys,
        Release::ReturnDel | Release::ReturnOne => inv.keys.get(..1)?,
    };
    if inv.read_only {
        return None;
    }
    ks.begin_undo();
    let mut reply = Reply::Int(0);
    let mut count = 0;
    for key in keys {
        match call(ks, inv, b"get", key) {
            Reply::Bulk(value) if value == *token => {}
            // Lua's `==` and `~=` compare a string with nil (false), a number or a table
            // as different.
            Reply::Error(_) => return give_up(ks),
            _ => continue,
        }
        let deleted = call(ks, inv, b"del", key);
        match (release, deleted) {
            (Release::CountKeys, _) => count += 1,
            (Release::ReturnDel, Reply::Int(n)) => reply = Reply::Int(n),
            (Release::ReturnOne, Reply::Int(_)) => reply = Reply::Int(1),
            _ => return give_up(ks),
        }
    }
    ks.commit_undo();
    Some(match release {
        Release::CountKeys => Reply::Int(count),
        Release::ReturnDel | Release::ReturnOne => reply,
    })
}

fn call(ks: &mut Keyspace, inv: &Invocation<'_>, name: &'static [u8], key: &Bytes) -> Reply {
    call_command(
        &mut Access::Write(ks),
        inv,
        &[Bytes::from_static(name), key.clone()],
    )
}

fn give_up(ks: &mut Keyspace) -> Option<Reply> {
    ks.rollback_undo();
    None
}

#[cfg(test)]
#[path = "native_tests.rs"]
mod tests;
