//! Redlock on the nodes of one cluster: a write that a client sent to every node is
//! answered alike by all of them.
//!
//! A Redlock client (node-redlock, redlock-py, pottery, aioredlock, redis-semaphore...)
//! sends the same request to N independent Redis servers and holds the lock if a majority
//! grants it. Pointed at the N nodes of one raftlock cluster, its N copies are N entries of
//! one log: the first takes the lock, and every later copy finds the lock taken (SET NX
//! answers nil, the acquire script 0, the release script 0), so the client never reaches
//! its majority. The copies are one request, though: they carry the client's random
//! token, and each finds the state exactly as the first left it.
//!
//! The rule: a write whose non-key arguments include a token (see `is_token`) and which
//! names keys is remembered with its reply and what its keys looked like after it. A later
//! identical write (same command and arguments) within the replay window that finds those
//! keys unchanged since, and itself changes nothing, is answered with the first one's
//! reply. It still runs, as any write does, so every replica applies exactly what it would
//! without the rule: only the reply differs, and only on the node the cache is on. The
//! cache is node-local (not in snapshots); a node that restarted, or took over, between two
//! copies answers the later one as Redis would, which costs that client a vote, never a
//! second owner.
//!
//! Why it is safe: the replayed reply is true of the state the copy found. The key holds
//! the client's token with the lease the first copy gave it, and nothing has touched it
//! since. The lease counts from the first copy, which Redlock clients account for: they
//! measure validity from before they sent the first copy. A write that changes anything
//! (an extend, a second INCR) is answered as it ran. Requests without a token (`SET lock 1
//! NX`) are never replayed, so plain SET NX keeps its meaning for ordinary values.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use crate::command::CommandSpec;
use crate::config::state_limits::{
    MAX_REPLAY_ENTRIES, MAX_REPLAY_REPLY_BYTES, MAX_REPLAY_REQUEST_BYTES,
};
use crate::reply::Reply;

/// Shortest and longest argument that can be a token.
const TOKEN_BYTES: std::ops::RangeInclusive<usize> = 16..=256;
/// A token has at least this many different bytes: random, not a word repeated.
const TOKEN_DISTINCT_BYTES: usize = 8;

/// Whether `arg` looks like a Redlock token: 16 to 256 bytes of the characters random ids
/// are written in (hex, base64, UUIDs, `uuid:thread` as Redisson writes them), with at
/// least 8 different ones. Lock libraries make theirs from 16 or more random bytes.
pub(crate) fn is_token(arg: &[u8]) -> bool {
    if !TOKEN_BYTES.contains(&arg.len()) {
        return false;
    }
    let mut seen = [false; 256];
    let mut distinct = 0;
    for &byte in arg {
        if !(byte.is_ascii_alphanumeric() || b"+/=_:-".contains(&byte)) {
            return false;
        }
        if !seen[byte as usize] {
            seen[byte as usize] = true;
            distinct += 1;
        }
    }
    distinct >= TOKEN_DISTINCT_BYTES
}

/// The keys of a write the rule applies to, or `None`: a write that names keys and has a
/// token among its other arguments (a script's ARGV, SET's value).
pub(crate) fn replayable_keys(spec: &CommandSpec, argv: &[Bytes]) -> Option<Vec<Bytes>> {
    if !spec.is_write() {
        return None;
    }
    let keys: Vec<&Bytes> = spec.keys(argv).collect();
    if keys.is_empty() {
        return None;
    }
    let is_key = |arg: &Bytes| keys.iter().any(|key| std::ptr::eq(*key, arg));
    // A script's own text or sha1 is not the client's token.
    let first_arg = if spec.numkeys_index > 0 {
        spec.numkeys_index + 1
    } else {
        1
    };
    let has_token = argv
        .iter()
        .skip(first_arg)
        .any(|arg| !is_key(arg) && is_token(arg));
    has_token.then(|| keys.into_iter().cloned().collect())
}

/// A write the cache remembers: what it was, what its keys were after it, its reply.
#[derive(Debug)]
struct Recorded {
    argv: Vec<Bytes>,
    /// Each key and its revision after the write (0: missing).
    keys: Vec<(Bytes, u64)>,
    /// The revision counter after the write: a missing key removed since is a change.
    seen_at: u64,
    reply: Reply,
    applied_ms: u64,
}

/// A remembered write that a copy may be answered with: its keys and reply.
pub(crate) struct Earlier {
    pub keys: Vec<(Bytes, u64)>,
    pub seen_at: u64,
    pub reply: Reply,
}

/// The recent replayable writes, by a hash of their arguments, oldest first in `order`.
/// Off (a zero window) until the node turns it on.
#[derive(Debug, Default)]
pub(crate) struct ReplayCache {
    window_ms: u64,
    by_hash: HashMap<u64, Recorded>,
    order: VecDeque<(u64, u64)>,
}

/// The request as the cache compares it: an EVAL as the EVALSHA of its script, since a
/// client sends EVALSHA to the nodes that have the script and EVAL to those that answered
/// NOSCRIPT (and the first EVAL gives the script to every node).
fn canonical(argv: &[Bytes]) -> Vec<Bytes> {
    let mut out = argv.to_vec();
    if out.len() >= 2 && out[0].eq_ignore_ascii_case(b"eval") {
        out[0] = Bytes::from_static(b"evalsha");
        out[1] = Bytes::from(super::lua::sha1_hex(&out[1]));
    } else if out[0].eq_ignore_ascii_case(b"evalsha") && out.len() >= 2 {
        out[1] = Bytes::from(out[1].to_ascii_lowercase());
    }
    out
}

fn hash_argv(argv: &[Bytes]) -> u64 {
    let mut bytes = Vec::with_capacity(argv.iter().map(|a| a.len() + 8).sum());
    for (i, arg) in argv.iter().enumerate() {
        bytes.extend_from_slice(&(arg.len() as u64).to_le_bytes());
        if i == 0 {
            bytes.extend(arg.iter().map(u8::to_ascii_lowercase));
        } else {
            bytes.extend_from_slice(arg);
        }
    }
    crate::fnv::hash(&bytes)
}

fn same_request(a: &[Bytes], b: &[Bytes]) -> bool {
    a.len() == b.len()
        && a[0].eq_ignore_ascii_case(&b[0])
        && a[1..].iter().zip(&b[1..]).all(|(x, y)| x == y)
}

impl ReplayCache {
    /// 0 turns the rule off.
    pub fn set_window_ms(&mut self, window_ms: u64) {
        self.window_ms = window_ms;
        if window_ms == 0 {
            self.by_hash.clear();
            self.order.clear();
        }
    }

    pub fn enabled(&self) -> bool {
        self.window_ms > 0
    }

    /// The write identical to `argv` applied within the window before `now_ms`, if any.
    pub fn earlier(&mut self, argv: &[Bytes], now_ms: u64) -> Option<Earlier> {
        self.forget_before(now_ms);
        let argv = canonical(argv);
        let recorded = self.by_hash.get(&hash_argv(&argv))?;
        same_request(&recorded.argv, &argv).then(|| Earlier {
            keys: recorded.keys.clone(),
            seen_at: recorded.seen_at,
            reply: recorded.reply.clone(),
        })
    }

    /// Remembers a write that ran: its keys' revisions and the counter after it, its
    /// reply. Large requests and replies are not kept.
    pub fn record(
        &mut self,
        argv: &[Bytes],
        keys: Vec<(Bytes, u64)>,
        seen_at: u64,
        reply: &Reply,
        now_ms: u64,
    ) {
        let request_bytes: usize = argv.iter().map(Bytes::len).sum();
        if request_bytes > MAX_REPLAY_REQUEST_BYTES || !reply_is_small(reply) {
            return;
        }
        let argv = canonical(argv);
        let hash = hash_argv(&argv);
        self.by_hash.insert(
            hash,
            Recorded {
                argv,
                keys,
                seen_at,
                reply: reply.clone(),
                applied_ms: now_ms,
            },
        );
        self.order.push_back((now_ms, hash));
        while self.order.len() > MAX_REPLAY_ENTRIES {
            self.pop_oldest();
        }
    }

    fn forget_before(&mut self, now_ms: u64) {
        while let Some(&(applied_ms, _)) = self.order.front() {
            if applied_ms.saturating_add(self.window_ms) >= now_ms {
                break;
            }
            self.pop_oldest();
        }
    }

    /// Drops the oldest record, unless a later write under the same hash replaced it.
    fn pop_oldest(&mut self) {
        if let Some((applied_ms, hash)) = self.order.pop_front() {
            if self
                .by_hash
                .get(&hash)
                .is_some_and(|r| r.applied_ms == applied_ms)
            {
                self.by_hash.remove(&hash);
            }
        }
    }
}

/// Replies worth keeping: the integers, statuses, nils and short strings lock scripts and
/// SET answer with.
fn reply_is_small(reply: &Reply) -> bool {
    match reply {
        Reply::Bulk(b) => b.len() <= MAX_REPLAY_REPLY_BYTES,
        Reply::Status(s) | Reply::Error(s) => s.len() <= MAX_REPLAY_REPLY_BYTES,
        Reply::Array(items) => items.len() <= 16 && items.iter().all(reply_is_small),
        Reply::Blocked => false,
        _ => true,
    }
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
