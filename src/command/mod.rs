//! The command table: every command raftlock knows, declared once with Redis's metadata
//! (arity, flags, key positions). Dispatch, COMMAND replies, routing and the check of
//! redis-compat.md all read it.

pub(crate) use crate::args;
mod table;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::LazyLock;

use bytes::Bytes;

use crate::fnv::Fnv1a;
use crate::reply::Reply;
use crate::state::Keyspace;

pub use table::COMMANDS;

/// The Redis version raftlock answers as (HELLO, INFO, `redis.REDIS_VERSION` in scripts).
pub const REDIS_COMPAT_VERSION: &str = "7.2.4";

/// Runs a read against the state at the leader's time `now_ms`; `argv[0]` is the name.
pub type ReadFn = fn(&Keyspace, u64, &[Bytes]) -> Reply;
/// Runs a write inside apply, with the entry's time `now_ms`; `argv[0]` is the name.
pub type WriteFn = fn(&mut Keyspace, u64, &[Bytes]) -> Reply;

#[derive(Clone, Copy)]
pub enum Handler {
    /// Reads the state machine after a read barrier.
    Read(ReadFn),
    /// A Raft entry: proposed, committed, then applied on every node.
    Write(WriteFn),
    /// Served by the node itself (connection state, server information).
    Server,
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
