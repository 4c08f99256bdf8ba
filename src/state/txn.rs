//! MULTI/EXEC as one Raft entry. The connection queues a client's commands; EXEC sends
//! them, with the revisions its WATCH saw, as one internal `TXN` op, and apply runs them
//! here back to back: nothing else runs between them, on any node.
//!
//! `TXN nwatch [key revision seen_at]... ncommands [argc arg...]...`
//!
//! `REVISIONS key...` is WATCH's read: the revision counter, then each key's revision.

use bytes::Bytes;

use super::locks::LockArgs;
use super::{run, wrong_arity, Keyspace};
use crate::args::{parse_i64, Args};
use crate::command::{self, Handler};
use crate::config::state_limits::MAX_QUEUED_COMMANDS;
use crate::reply::Reply;

/// A key as WATCH saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    pub key: Bytes,
    /// The key's revision; 0: the key did not exist.
    pub revision: u64,
    /// The revision counter when it was read: a removal after it is a change.
    pub seen_at: u64,
}

/// What EXEC proposes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub watches: Vec<Watch>,
    pub commands: Vec<Vec<Bytes>>,
}

fn number(n: usize) -> Bytes {
    Bytes::from(n.to_string())
}

fn next_u64(args: &mut Args) -> Result<u64, Reply> {
    let n = parse_i64(args.next_bytes()?).ok_or_else(Reply::syntax_error)?;
    u64::try_from(n).map_err(|_| Reply::syntax_error())
}

impl Transaction {
    /// The op's argv.
    pub fn encode(&self) -> Vec<Bytes> {
        let mut argv = vec![Bytes::from_static(b"txn"), number(self.watches.len())];
        for watch in &self.watches {
            argv.push(watch.key.clone());
            argv.push(Bytes::from(watch.revision.to_string()));
            argv.push(Bytes::from(watch.seen_at.to_string()));
        }
        argv.push(number(self.commands.len()));
        for command in &self.commands {
            argv.push(number(command.len()));
            argv.extend(command.iter().cloned());
        }
        argv
    }

    pub fn decode(argv: &[Bytes]) -> Result<Transaction, Reply> {
        let mut args = Args::new(argv);
        let nwatch = next_u64(&mut args)? as usize;
        if nwatch > args.remaining() / 3 {
            return Err(Reply::syntax_error());
        }
        let mut watches = Vec::with_capacity(nwatch);
        for _ in 0..nwatch {
            let key = args.next_bytes()?.clone();
            let revision = next_u64(&mut args)?;
            let seen_at = next_u64(&mut args)?;
            watches.push(Watch {
                key,
                revision,
                seen_at,
            });
        }
        let ncommands = next_u64(&mut args)? as usize;
        if ncommands > MAX_QUEUED_COMMANDS || ncommands > args.remaining() {
            return Err(Reply::syntax_error());
        }
        let mut commands = Vec::with_capacity(ncommands);
        for _ in 0..ncommands {
            let argc = next_u64(&mut args)? as usize;
            if argc == 0 || argc > args.remaining() {
                return Err(Reply::syntax_error());
            }
            commands.push(
                (0..argc)
                    .map(|_| args.next_bytes().cloned())
                    .collect::<Result<_, _>>()?,
            );
        }
        if !args.is_empty() {
            return Err(Reply::syntax_error());
        }
        Ok(Transaction { watches, commands })
    }
}

/// TXN: nil (a null array) if a watched key changed; otherwise every command's reply in
/// order. A command's error is its reply; the others still run, as in Redis.
pub fn txn(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let tx = Transaction::decode(argv)?;
        let unchanged = tx
            .watches
            .iter()
            .all(|w| ks.unchanged_since(&w.key, w.revision, w.seen_at));
        if !unchanged {
            return Ok(Reply::NilArray);
        }
        Ok(Reply::Array(
            tx.commands
                .iter()
                .map(|command| run_queued(ks, now_ms, command))
                .collect(),
        ))
    })
}

/// One queued command inside the entry. Reads see the transaction's earlier writes;
/// commands that may block run as their non-blocking forms, as in Redis: a LOCK's WAIT is
/// dropped (a try-lock), and blocking pops already answer nil inside apply.
fn run_queued(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    let Some(spec) = argv.first().and_then(|name| command::lookup(name)) else {
        return command::unknown_command(argv);
    };
    if !spec.arity_ok(argv.len()) {
        return Reply::wrong_arity(spec.name);
    }
    let reply = match spec.handler {
        Handler::Write(_) if spec.name == "txn" => {
            Reply::error("ERR MULTI calls can not be nested")
        }
        Handler::Write(handler) if matches!(spec.name, "lock" | "rlock") => {
            match without_wait(argv) {
                Ok(argv) => handler(ks, now_ms, &argv),
                Err(error) => error,
            }
        }
        Handler::Write(handler) => ks.noticing(spec, argv, |ks| handler(ks, now_ms, argv)),
        Handler::Read(handler) => handler(ks, now_ms, argv),
        Handler::Server => Reply::Error(format!(
            "ERR '{}' cannot run inside a transaction's entry",
            spec.name
        )),
    };
    debug_assert_ne!(reply, Reply::Blocked, "a transaction never blocks");
    if reply == Reply::Blocked {
        Reply::Nil
    } else {
        reply
    }
}

/// LOCK/RLOCK without its `WAIT t`: a try-lock. Invalid requests keep their error.
fn without_wait(argv: &[Bytes]) -> Result<Vec<Bytes>, Reply> {
    LockArgs::parse(argv)?;
    let mut out = argv[..4].to_vec();
    for option in argv[4..].chunks(2) {
        if !option[0].eq_ignore_ascii_case(b"WAIT") {
            out.extend_from_slice(option);
        }
    }
    Ok(out)
}

/// REVISIONS key...: the revision counter, then each key's revision (0: missing).
pub fn revisions(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    if argv.len() < 2 {
        return wrong_arity(argv);
    }
    let mut out = vec![Reply::Int(ks.revision_counter() as i64)];
    out.extend(
        argv[1..]
            .iter()
            .map(|key| Reply::Int(ks.revision(key, now_ms) as i64)),
    );
    Reply::Array(out)
}

#[cfg(test)]
#[path = "txn_tests.rs"]
mod tests;
