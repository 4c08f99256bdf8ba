//! The command table: every command raftlock knows, declared once with Redis's metadata
//! (arity, flags, key positions) and raftlock's own (its kind, which says how a
//! connection serves it, and the marks the pre-check chain reads). Dispatch, MULTI, Lua,
//! COMMAND replies, routing and the check of redis-compat.md all read it.

pub(crate) use crate::args;
pub mod check;
mod table;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;

use crate::fnv::Fnv1a;
use crate::reply::Reply;
use crate::server::{Node, Session, Step};
use crate::state::Keyspace;

pub use table::COMMANDS;

/// The Redis version raftlock answers as (HELLO, INFO, `redis.REDIS_VERSION` in scripts).
pub const REDIS_COMPAT_VERSION: &str = "7.2.4";

/// Runs a read against the state at the leader's time `now_ms`; `argv[0]` is the name.
pub type ReadFn = fn(&Keyspace, u64, &[Bytes]) -> Reply;
/// Runs a write inside apply, with the entry's time `now_ms`; `argv[0]` is the name.
pub type WriteFn = fn(&mut Keyspace, u64, &[Bytes]) -> Reply;

/// Runs a command the node serves itself, on one connection's session.
pub type ServeFn = fn(&Arc<Node>, &mut Session, &[Bytes]) -> Step;

/// What the state machine runs for a command (apply, queries, scripts, transactions).
#[derive(Clone, Copy)]
pub enum Handler {
    /// Reads the state machine after a read barrier.
    Read(ReadFn),
    /// A Raft entry: proposed, committed, then applied on every node.
    Write(WriteFn),
    /// Served by the node itself (connection state, server information); `Kind` names
    /// the function.
    Server,
}

/// How a connection serves a command: the one place special behaviour is declared, so
/// that no code outside this table looks at command names.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Reads the state machine: after a read barrier, or through the log when pipelined
    /// behind a write of the same connection.
    StateRead,
    /// A write: proposed as an op of a Raft entry, answered when applied.
    StateWrite,
    /// A write proposed in the connection's lock session (RENEW): what it holds is
    /// detached when the connection closes.
    SessionWrite,
    /// A write answered with this node's subscriber count (PUBLISH, SPUBLISH).
    Publish { sharded: bool },
    /// A write the connection may wait on after its entry applies (Redis's `blocking`).
    BlockingWrite(Blocking),
    /// A transaction step that reads or writes the state (WATCH, EXEC).
    Transaction(TxnStep),
    /// The connection's own state: handshake, authentication, MULTI, subscriptions.
    Connection(ServeFn),
    /// Served by the node from what it knows itself: INFO, COMMAND, ROLE, RAFT.*.
    Node(ServeFn),
    /// A container (SCRIPT): never served itself, `resolve` picks a subcommand.
    Container,
}

/// What a blocking write waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Blocking {
    /// LOCK, RLOCK with WAIT: a grant or timeout that a later entry applies, in the
    /// connection's lock session.
    Lock,
    /// BLPOP, BRPOP, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP: an element pushed (a member
    /// added) to one of the keys; a null array on timeout.
    ListPop,
    /// BLMOVE, BRPOPLPUSH: the same, answering nil on timeout.
    ListMove,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TxnStep {
    /// Reads the keys' revisions once the pipeline before it is answered.
    Watch,
    /// Proposes the queued commands as one TXN op.
    Exec,
}

/// raftlock's own marks, which the pre-check chain (`check`) reads. They are not Redis
/// flags, so COMMAND does not report them.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct Marks(u8);

impl Marks {
    pub const NONE: Marks = Marks(0);
    /// Runs at once inside MULTI instead of being queued (MULTI, EXEC, DISCARD, WATCH,
    /// QUIT, RESET), as in Redis.
    pub const NOT_QUEUED: Marks = Marks(1);
    /// Refused inside MULTI, which it dooms (the (un)subscribe commands).
    pub const NO_MULTI: Marks = Marks(1 << 1);
    /// Allowed while a RESP2 connection is in subscribe mode.
    pub const SUBSCRIBE_MODE: Marks = Marks(1 << 2);

    pub const fn with(self, other: Marks) -> Marks {
        Marks(self.0 | other.0)
    }

    pub const fn contains(self, other: Marks) -> bool {
        self.0 & other.0 == other.0
    }
}

pub struct CommandSpec {
    /// Lower-case name, as COMMAND reports it.
    pub name: &'static str,
    /// Redis's convention: `n` exactly n arguments including the name, `-n` at least n.
    pub arity: i32,
    pub flags: &'static [&'static str],
    /// Key positions (first, last, step) as in COMMAND INFO; 0,0,0 for none.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub group: &'static str,
    pub summary: &'static str,
    pub handler: Handler,
    pub kind: Kind,
    pub marks: Marks,
    /// For commands whose keys are counted by an argument (EVAL's `numkeys`): that
    /// argument's index; the keys follow it. 0 when the key positions above apply.
    pub numkeys_index: usize,
    /// A container command (SCRIPT): its subcommands, named `container|sub` as COMMAND
    /// names them, each with its own arity, flags and handler. The container's own handler
    /// is never run.
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = self.arity as i64;
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    pub fn is_write(&self) -> bool {
        matches!(self.handler, Handler::Write(_))
    }

    /// One of Redis's flags (`readonly`, `write`, `noscript`, `blocking`, ...).
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// The ACL categories COMMAND INFO reports, derived as Redis derives them from its
    /// flags and group (`@read`/`@write`, the data type, `@fast`/`@slow`, `@blocking`,
    /// `@admin @dangerous`); raftlock's own commands are in `@raftlock`.
    pub fn acl_categories(&self) -> Vec<&'static str> {
        let mut categories = Vec::with_capacity(5);
        if self.has_flag("write") {
            categories.push("@write");
        } else if self.has_flag("readonly") {
            categories.push("@read");
        }
        let group = match self.group {
            "generic" => Some("@keyspace"),
            "string" => Some("@string"),
            "hash" => Some("@hash"),
            "list" => Some("@list"),
            "sorted-set" => Some("@sortedset"),
            "connection" => Some("@connection"),
            "transactions" => Some("@transaction"),
            "scripting" => Some("@scripting"),
            "pubsub" => Some("@pubsub"),
            "raftlock" => Some("@raftlock"),
            _ => None,
        };
        categories.extend(group);
        categories.push(if self.has_flag("fast") {
            "@fast"
        } else {
            "@slow"
        });
        if self.has_flag("blocking") {
            categories.push("@blocking");
        }
        if self.has_flag("admin") {
            categories.extend(["@admin", "@dangerous"]);
        }
        categories
    }

    /// The keys this invocation names, by the table's key positions or its numkeys
    /// argument (an invalid count names no keys: the command itself refuses it).
    pub fn keys<'a>(&self, argv: &'a [Bytes]) -> impl Iterator<Item = &'a Bytes> {
        if self.numkeys_index > 0 {
            let first = self.numkeys_index + 1;
            let count = argv
                .get(self.numkeys_index)
                .and_then(|n| args::parse_i64(n))
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= argv.len().saturating_sub(first))
                .unwrap_or(0);
            return argv[first.min(argv.len())..][..count].iter().step_by(1);
        }
        let first = self.first_key.max(0) as usize;
        let last = if self.last_key < 0 {
            argv.len() as i64 + self.last_key as i64
        } else {
            self.last_key as i64
        };
        let step = self.step.max(1) as usize;
        let range = if first == 0 || last < first as i64 {
            0..0
        } else {
            first..(last as usize + 1).min(argv.len())
        };
        argv[range].iter().step_by(step)
    }
}

/// The command table hashes names with FNV-1a: its keys are raftlock's own command names
/// and a client's name is only looked up, never inserted, so a hasher that resists chosen
/// keys (std's SipHash) buys nothing here, and it cost about as much as the rest of the
/// lookup.
type ByName = HashMap<&'static str, &'static CommandSpec, BuildHasherDefault<Fnv1a>>;

static BY_NAME: LazyLock<ByName> =
    LazyLock::new(|| COMMANDS.iter().map(|spec| (spec.name, spec)).collect());

/// Looks a command up by name, ignoring ASCII case.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    BY_NAME.get(std::str::from_utf8(lower).ok()?).copied()
}

/// The spec that runs `argv`: the command, or for a container (SCRIPT) the subcommand
/// `argv[1]` names. Errors are Redis's replies: unknown command, the container's arity
/// error when the subcommand is missing, unknown subcommand.
pub fn resolve(argv: &[Bytes]) -> Result<&'static CommandSpec, Reply> {
    let Some(spec) = argv.first().and_then(|name| lookup(name)) else {
        return Err(unknown_command(argv));
    };
    if spec.subcommands.is_empty() {
        return Ok(spec);
    }
    let Some(sub) = argv.get(1) else {
        return Err(Reply::wrong_arity(spec.name));
    };
    let full = format!(
        "{}|{}",
        spec.name,
        String::from_utf8_lossy(sub).to_ascii_lowercase()
    );
    spec.subcommands
        .iter()
        .find(|s| s.name == full)
        .ok_or_else(|| {
            Reply::Error(format!(
                "ERR unknown subcommand '{}'. Try {} HELP.",
                String::from_utf8_lossy(sub),
                spec.name.to_ascii_uppercase()
            ))
        })
}

/// Redis's reply to a command it does not know, quoting the first arguments.
pub fn unknown_command(argv: &[Bytes]) -> Reply {
    let name = argv
        .first()
        .map(|n| String::from_utf8_lossy(n))
        .unwrap_or_default();
    let args: String = argv
        .iter()
        .skip(1)
        .take(8)
        .map(|a| format!("'{}' ", String::from_utf8_lossy(a)))
        .collect();
    Reply::Error(format!(
        "ERR unknown command '{name}', with args beginning with: {args}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(lookup(b"GeT").map(|c| c.name), Some("get"));
        assert!(lookup(b"nosuchcommand").is_none());
        assert!(lookup(&[b'x'; 100]).is_none());
    }

    #[test]
    fn names_are_unique_and_lowercase() {
        assert_eq!(BY_NAME.len(), COMMANDS.len());
        for spec in COMMANDS {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
        }
    }

    /// Every command and subcommand.
    fn every_spec() -> impl Iterator<Item = &'static CommandSpec> {
        COMMANDS
            .iter()
            .flat_map(|spec| std::iter::once(spec).chain(spec.subcommands))
    }

    #[test]
    fn kinds_agree_with_handlers_and_flags() {
        for spec in every_spec() {
            let handler_fits = match spec.kind {
                Kind::StateRead => matches!(spec.handler, Handler::Read(_)),
                Kind::StateWrite
                | Kind::SessionWrite
                | Kind::Publish { .. }
                | Kind::BlockingWrite(_) => matches!(spec.handler, Handler::Write(_)),
                Kind::Transaction(_) | Kind::Connection(_) | Kind::Node(_) | Kind::Container => {
                    matches!(spec.handler, Handler::Server)
                }
            };
            assert!(handler_fits, "{}: kind and handler disagree", spec.name);
            assert_eq!(
                matches!(spec.kind, Kind::BlockingWrite(_)),
                spec.has_flag("blocking"),
                "{}: a blocking write, and only one, carries `blocking`",
                spec.name
            );
            assert_eq!(
                matches!(spec.kind, Kind::Container),
                !spec.subcommands.is_empty(),
                "{}",
                spec.name
            );
            if spec.marks.contains(Marks::NO_MULTI) {
                assert!(!spec.marks.contains(Marks::NOT_QUEUED), "{}", spec.name);
            }
        }
    }

    #[test]
    fn acl_categories_follow_redis() {
        let categories = |name: &str| lookup(name.as_bytes()).unwrap().acl_categories();
        assert_eq!(categories("get"), ["@read", "@string", "@fast"]);
        assert_eq!(categories("set"), ["@write", "@string", "@slow"]);
        assert_eq!(
            categories("blpop"),
            ["@write", "@list", "@slow", "@blocking"]
        );
        assert_eq!(categories("del"), ["@write", "@keyspace", "@slow"]);
        assert_eq!(categories("multi"), ["@transaction", "@fast"]);
        assert_eq!(categories("config"), ["@slow", "@admin", "@dangerous"]);
        assert_eq!(
            categories("lock"),
            ["@write", "@raftlock", "@slow", "@blocking"]
        );
    }

    #[test]
    fn key_positions_pick_keys() {
        let argv: Vec<Bytes> = ["mset", "a", "1", "b", "2"].map(Bytes::from).to_vec();
        let keys: Vec<_> = lookup(b"mset").unwrap().keys(&argv).collect();
        assert_eq!(keys, vec!["a", "b"]);
    }

    #[test]
    fn eval_keys_follow_numkeys() {
        let argv: Vec<Bytes> = ["eval", "return 1", "2", "a", "b", "x"]
            .map(Bytes::from)
            .to_vec();
        let keys: Vec<_> = lookup(b"eval").unwrap().keys(&argv).collect();
        assert_eq!(keys, vec!["a", "b"]);
        for bad in ["3", "-1", "x"] {
            let argv: Vec<Bytes> = ["eval", "s", bad, "a"].map(Bytes::from).to_vec();
            assert_eq!(lookup(b"eval").unwrap().keys(&argv).count(), 0);
        }
    }

    #[test]
    fn resolve_finds_subcommands() {
        let argv = |line: &str| -> Vec<Bytes> {
            line.split(' ')
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect()
        };
        assert_eq!(resolve(&argv("SCRIPT load x")).unwrap().name, "script|load");
        assert_eq!(resolve(&argv("get k")).unwrap().name, "get");
        assert_eq!(
            resolve(&argv("script nope")).err(),
            Some(Reply::error(
                "ERR unknown subcommand 'nope'. Try SCRIPT HELP."
            ))
        );
        assert_eq!(
            resolve(&argv("script")).err(),
            Some(Reply::error(
                "ERR wrong number of arguments for 'script' command"
            ))
        );
    }

    #[test]
    fn compat_doc_lists_every_command() {
        let doc = include_str!("../../redis-compat.md");
        for spec in COMMANDS {
            let row = format!("| {} |", spec.name.to_ascii_uppercase());
            assert!(
                doc.contains(&row),
                "redis-compat.md has no row for {}",
                spec.name
            );
        }
    }

    #[test]
    fn unknown_command_quotes_args() {
        let argv: Vec<Bytes> = ["foo", "a", "b"].map(Bytes::from).to_vec();
        assert_eq!(
            unknown_command(&argv),
            Reply::error("ERR unknown command 'foo', with args beginning with: 'a' 'b' ")
        );
    }
}
