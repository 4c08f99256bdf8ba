//! Keyspace notifications, as Redis's `notify-keyspace-events`: what changed, reported as
//! `Event::Keyspace` for the node to publish on `__keyspace@0__:<key>` and
//! `__keyevent@0__:<event>`.
//!
//! The setting is the node's (CONFIG SET, as in Redis, where it is not replicated either):
//! apply collects notices only while it has a class on, so a node that wants none pays
//! one atomic load per change. Every replica applies the same entries, so each node's
//! subscribers hear of the same changes in the same order, whichever node they use.
//!
//! The event of a change is its command's, in Redis's names (`set`, `incrby`, `lpush`,
//! `hset`, `zincr`, `rename_from`/`rename_to`, `expire`, ...); SET with a deadline adds
//! `expire`, a collection emptied by a pop or removal adds `del`, and a key whose time is
//! up `expired` (when the expiry tick or a write finds it: a read that finds it expired
//! does not remove it, as Redis's lazy expiry would). raftlock's lock commands report
//! their own names (`lock`, `unlock`, ...) in the generic class. Not reported: `new`
//! (`n`), `evicted` (no eviction), key misses (`m`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::{Event, Keyspace};
use crate::command::CommandSpec;

/// The classes and channels Redis's letters turn on.
pub mod class {
    pub const KEYSPACE: u32 = 1 << 0; // K
    pub const KEYEVENT: u32 = 1 << 1; // E
    pub const GENERIC: u32 = 1 << 2; // g
    pub const STRING: u32 = 1 << 3; // $
    pub const LIST: u32 = 1 << 4; // l
    pub const SET: u32 = 1 << 5; // s
    pub const HASH: u32 = 1 << 6; // h
    pub const ZSET: u32 = 1 << 7; // z
    pub const EXPIRED: u32 = 1 << 8; // x
    pub const EVICTED: u32 = 1 << 9; // e
    pub const STREAM: u32 = 1 << 10; // t
    pub const KEY_MISS: u32 = 1 << 11; // m
    pub const MODULE: u32 = 1 << 12; // d
    pub const NEW: u32 = 1 << 13; // n
    /// `A`: every class but `m` and `n`.
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// Redis's letters, in the order CONFIG GET lists them.
const LETTERS: [(u8, u32); 14] = [
    (b'g', class::GENERIC),
    (b'$', class::STRING),
    (b'l', class::LIST),
    (b's', class::SET),
    (b'h', class::HASH),
    (b'z', class::ZSET),
    (b'x', class::EXPIRED),
    (b'e', class::EVICTED),
    (b't', class::STREAM),
    (b'd', class::MODULE),
    (b'n', class::NEW),
    (b'K', class::KEYSPACE),
    (b'E', class::KEYEVENT),
    (b'm', class::KEY_MISS),
];

/// Parses `notify-keyspace-events` (`""` for none, `KEA`, `Kx`, ...); `None` for a letter
/// Redis does not know.
pub fn parse_classes(text: &[u8]) -> Option<u32> {
    text.iter().try_fold(0, |flags, &letter| {
        if letter == b'A' {
            return Some(flags | class::ALL);
        }
        LETTERS
            .iter()
            .find(|(l, _)| *l == letter)
            .map(|(_, bit)| flags | bit)
    })
}

/// The setting as CONFIG GET shows it (`AKE` for `KEA`).
pub fn render_classes(flags: u32) -> String {
    let mut text = String::new();
    let all = flags & class::ALL == class::ALL;
    if all {
        text.push('A');
    }
    for (letter, bit) in LETTERS {
        let covered_by_all = all && bit & class::ALL != 0;
        if flags & bit != 0 && !covered_by_all {
            text.push(letter as char);
        }
    }
    text
}

/// The node's setting, shared by the state machine (what to collect) and the node (what
/// to publish, CONFIG SET).
#[derive(Clone, Debug, Default)]
pub struct NotifyFlags(Arc<AtomicU32>);

impl NotifyFlags {
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, flags: u32) {
        self.0.store(flags, Ordering::Relaxed);
    }

    /// Whether notices of `class` are published anywhere.
    pub fn wants(&self, bits: u32) -> bool {
        let flags = self.get();
        flags & bits != 0 && flags & (class::KEYSPACE | class::KEYEVENT) != 0
    }
}

/// The class of a command's changes, from its group.
fn class_of(spec: &CommandSpec) -> u32 {
    match spec.group {
        "string" | "bitmap" => class::STRING,
        "list" => class::LIST,
        "hash" => class::HASH,
        "set" => class::SET,
        "sorted-set" => class::ZSET,
        _ => class::GENERIC,
    }
}

/// Redis's event for a change `spec` makes to `key` (`argv` tells which end a move
/// takes from, or which key of a RENAME).
fn event_of(spec: &CommandSpec, argv: &[Bytes], key: &[u8]) -> &'static str {
    let word = |at: usize| argv.get(at).map(|w| w.to_ascii_lowercase());
    let is_source = argv.get(1).is_some_and(|first| first.as_ref() == key);
    match spec.name {
        "incr" | "incrby" | "decr" | "decrby" => "incrby",
        "setnx" | "setex" | "psetex" | "getset" | "mset" | "msetnx" | "bitop" => "set",
        "getdel" | "unlink" => "del",
        "hmset" | "hsetnx" => "hset",
        "lpushx" => "lpush",
        "rpushx" => "rpush",
        "getex" if argv.iter().any(|a| a.eq_ignore_ascii_case(b"persist")) => "persist",
        "pexpire" | "expireat" | "pexpireat" | "getex" => "expire",
        "zincrby" => "zincr",
        "zadd" if argv.iter().any(|a| a.eq_ignore_ascii_case(b"incr")) => "zincr",
        "copy" => "copy_to",
        "rename" | "renamenx" if is_source => "rename_from",
        "rename" | "renamenx" => "rename_to",
        "smove" if is_source => "srem",
        "smove" => "sadd",
        "blpop" => "lpop",
        "brpop" => "rpop",
        "bzpopmin" => "zpopmin",
        "bzpopmax" => "zpopmax",
        "rpoplpush" | "brpoplpush" if is_source => "rpop",
        "rpoplpush" | "brpoplpush" => "lpush",
        "lmove" | "blmove" => {
            let at = if is_source { 3 } else { 4 };
            match (is_source, word(at).as_deref()) {
                (true, Some(b"right")) => "rpop",
                (true, _) => "lpop",
                (false, Some(b"right")) => "rpush",
                (false, _) => "lpush",
            }
        }
        "lmpop" | "blmpop" | "zmpop" | "bzmpop" => {
            let from_end = argv
                .iter()
                .any(|a| a.eq_ignore_ascii_case(b"right") || a.eq_ignore_ascii_case(b"max"));
            match (
                spec.name.starts_with('z') || spec.name.starts_with("bz"),
                from_end,
            ) {
                (false, false) => "lpop",
                (false, true) => "rpop",
                (true, false) => "zpopmin",
                (true, true) => "zpopmax",
            }
        }
        name => name,
    }
}

fn is_list_move(spec: &CommandSpec) -> bool {
    matches!(spec.name, "lmove" | "blmove" | "rpoplpush" | "brpoplpush")
}

/// Whether a SET-family write gives its key a deadline (SET's EX, PX, EXAT, PXAT; SETEX,
/// PSETEX).
fn sets_a_deadline(spec: &CommandSpec, argv: &[Bytes]) -> bool {
    match spec.name {
        "setex" | "psetex" => true,
        "set" => argv.iter().skip(3).any(|option| {
            [&b"ex"[..], b"px", b"exat", b"pxat"]
                .iter()
                .any(|name| option.eq_ignore_ascii_case(name))
        }),
        _ => false,
    }
}

/// The command whose changes are being noticed: set while a write runs with
/// notifications on.
#[derive(Clone)]
pub(super) struct NoticedOp {
    spec: &'static CommandSpec,
    argv: Vec<Bytes>,
    /// Notices held until the write is done: (class, event, key, and whether the key
    /// was removed).
    deferred: Vec<(u32, &'static str, Bytes, bool)>,
}

impl std::fmt::Debug for NoticedOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoticedOp")
            .field("command", &self.spec.name)
            .finish()
    }
}

impl Keyspace {
    /// Runs `write` as `spec`'s, noticing its changes if this node publishes any.
    pub(crate) fn noticing<R>(
        &mut self,
        spec: &'static CommandSpec,
        argv: &[Bytes],
        write: impl FnOnce(&mut Keyspace) -> R,
    ) -> R {
        if self.runtime.notify.get() == 0 {
            return write(self);
        }
        let outer = self.runtime.noticed.replace(NoticedOp {
            spec,
            argv: argv.to_vec(),
            deferred: Vec::new(),
        });
        let result = write(self);
        let done = std::mem::replace(&mut self.runtime.noticed, outer);
        for (bits, event, key, removed) in done.map(|op| op.deferred).unwrap_or_default() {
            self.notice(bits, event, &key);
            if removed {
                self.notice(class::GENERIC, "del", &key);
            }
        }
        result
    }

    /// The node's notification setting, shared with the node.
    pub(crate) fn set_notify(&mut self, flags: NotifyFlags) {
        self.runtime.notify = flags;
    }

    fn notice(&mut self, bits: u32, event: &'static str, key: &[u8]) {
        if self.runtime.notify.wants(bits) {
            self.runtime.events.push(Event::Keyspace {
                event,
                key: Bytes::copy_from_slice(key),
            });
        }
    }

    /// `key` changed (written, or removed with `removed`) by the command running now.
    pub(super) fn notice_change(&mut self, key: &[u8], removed: bool) {
        if self.runtime.notify.get() == 0 {
            return;
        }
        let Some(op) = self.runtime.noticed.clone() else {
            return;
        };
        let event = event_of(op.spec, &op.argv, key);
        match event {
            // A deadline set in the past removes the key: only `del`, as Redis.
            "expire" if removed => return self.notice(class::GENERIC, "del", key),
            "del" | "rename_from" if removed => return self.notice(class::GENERIC, event, key),
            _ => {}
        }
        if is_list_move(op.spec) && op.argv.get(1).is_some_and(|s| s.as_ref() == key) {
            // LMOVE and RPOPLPUSH report the push before the pop, as Redis does.
            let deferred = (class::LIST, event, Bytes::copy_from_slice(key), removed);
            if let Some(op) = self.runtime.noticed.as_mut() {
                op.deferred.push(deferred);
            }
            return;
        }
        self.notice(class_of(op.spec), event, key);
        if !removed && event == "set" && sets_a_deadline(op.spec, &op.argv) {
            // SET ... EX, SETEX: Redis reports the deadline as its own event.
            self.notice(class::GENERIC, "expire", key);
        }
        if removed {
            // A collection its last element left (LPOP, SREM, ...), or a key EXPIRE set
            // in the past.
            self.notice(class::GENERIC, "del", key);
        }
    }

    /// `key`'s time was up.
    pub(super) fn notice_expired(&mut self, key: &[u8]) {
        if self.runtime.notify.get() != 0 {
            self.notice(class::EXPIRED, "expired", key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_render_as_redis_does() {
        assert_eq!(parse_classes(b""), Some(0));
        let kea = parse_classes(b"KEA").unwrap();
        assert_eq!(render_classes(kea), "AKE");
        assert_eq!(render_classes(parse_classes(b"Ex").unwrap()), "xE");
        assert_eq!(render_classes(parse_classes(b"gK$").unwrap()), "g$K");
        assert_eq!(render_classes(parse_classes(b"AKEnm").unwrap()), "AnKEm");
        assert_eq!(parse_classes(b"KEq"), None);
    }

    #[test]
    fn nothing_is_wanted_without_a_channel_or_a_class() {
        let flags = NotifyFlags::default();
        flags.set(parse_classes(b"A").unwrap());
        assert!(!flags.wants(class::STRING), "no K or E");
        flags.set(parse_classes(b"Kl").unwrap());
        assert!(!flags.wants(class::STRING));
        assert!(flags.wants(class::LIST));
    }
}
