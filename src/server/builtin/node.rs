//! Commands the node answers from what it knows itself: INFO, COMMAND, CONFIG, TIME,
//! ROLE, WAIT, WAITAOF, PUBSUB, SENTINEL and the RAFT.* administration.

use crate::state::notify;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::super::{
    backup, cluster, info, sentinel, slowlog, subscribe_commands, Node, Session, Step,
};
use super::{introspection, later, reply, subcommand_arity_error, unknown_subcommand};
use crate::command::args::parse_i64;
use crate::reply::Reply;

pub fn info(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    reply(info::info(node, argv))
}

pub fn command(_: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    reply(introspection::command(argv))
}

pub fn config(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    reply(config_reply(node, argv))
}

pub fn time(_: &Arc<Node>, _: &mut Session, _: &[Bytes]) -> Step {
    let micros = crate::server::clock::wall_clock_us();
    reply(Reply::Array(vec![
        Reply::bulk((micros / 1_000_000).to_string()),
        Reply::bulk((micros % 1_000_000).to_string()),
    ]))
}

pub fn role(node: &Arc<Node>, _: &mut Session, _: &[Bytes]) -> Step {
    reply(info::role(node))
}

pub fn pubsub(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    reply(subscribe_commands::pubsub(node, argv))
}

pub fn wait(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    reply(wait_reply(node, &argv[1..]))
}

pub fn waitaof(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    reply(waitaof_reply(node, &argv[1..]))
}

pub fn sentinel(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    later(sentinel::sentinel_once_leader_known(
        node.clone(),
        argv.to_vec(),
    ))
}

pub fn raft_info(node: &Arc<Node>, _: &mut Session, _: &[Bytes]) -> Step {
    reply(cluster::raft_info(node))
}

pub fn raft_node(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    later(cluster::raft_node(node.clone(), argv.to_vec()))
}

pub fn raft_transfer_leader(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    if argv.len() > 2 {
        return reply(Reply::wrong_arity("raft.transfer-leader"));
    }
    later(cluster::transfer_leader(node.clone(), argv.to_vec()))
}

pub fn slowlog(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    reply(slowlog::slowlog_command(&node.slowlog, argv))
}

pub fn raft_backup(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    later(backup::raft_backup(node.clone(), argv.to_vec()))
}

pub fn raft_elect(node: &Arc<Node>, _: &mut Session, _: &[Bytes]) -> Step {
    later(cluster::elect(node.clone()))
}

pub fn raft_hold_elections(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    reply(cluster::hold_elections(node, &argv[1]))
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: the node stops as on SIGTERM
/// (`server::shutdown`), and, as Redis does, closes the connection without a reply. Every
/// write is on disk already, so SAVE and NOSAVE change nothing; NOW and FORCE neither (the
/// shutdown is bounded by `--shutdown-timeout-ms`). A shutdown cannot be aborted once
/// begun, so ABORT always finds none to abort.
pub fn shutdown(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    let (mut save, mut nosave, mut abort, mut others) = (false, false, false, false);
    for arg in &argv[1..] {
        match arg.to_ascii_uppercase().as_slice() {
            b"SAVE" => save = true,
            b"NOSAVE" => nosave = true,
            b"ABORT" => abort = true,
            b"NOW" | b"FORCE" => others = true,
            _ => return reply(Reply::error("ERR syntax error")),
        }
    }
    if (save && nosave) || (abort && (save || nosave || others)) {
        return reply(Reply::error("ERR syntax error"));
    }
    if abort {
        return reply(Reply::error("ERR No shutdown in progress."));
    }
    tracing::warn!("SHUTDOWN asked by a client");
    node.shutdown_requested.notify_one();
    // Never answered: the connection closes as the process ends.
    later(std::future::pending())
}

/// Voters other than one: a write acknowledged to the client is committed on a majority
/// and fsynced there, so these are the replicas WAIT and WAITAOF report.
fn other_voters(node: &Node) -> i64 {
    let voters = node.group.status().voters.len();
    voters.saturating_sub(1) as i64
}

/// A probe's timeout: an integer, not negative. raftlock never waits on it.
fn probe_timeout(timeout: &[u8]) -> Result<(), Reply> {
    match parse_i64(timeout) {
        Some(ms) if ms < 0 => Err(Reply::error("ERR timeout is negative")),
        Some(_) => Ok(()),
        None => Err(Reply::error(
            "ERR timeout is not an integer or out of range",
        )),
    }
}

/// WAIT numreplicas timeout: answered at once with the other voters, since every
/// acknowledged write is already on a majority.
fn wait_reply(node: &Node, args: &[Bytes]) -> Reply {
    if parse_i64(&args[0]).is_none() {
        return Reply::not_integer();
    }
    match probe_timeout(&args[1]) {
        Ok(()) => Reply::Int(other_voters(node)),
        Err(reply) => reply,
    }
}

/// WAITAOF numlocal numreplicas timeout: `[1, other voters]`, the write being fsynced
/// here and on a majority before it was acknowledged.
fn waitaof_reply(node: &Node, args: &[Bytes]) -> Reply {
    if parse_i64(&args[0]).is_none() || parse_i64(&args[1]).is_none() {
        return Reply::not_integer();
    }
    match probe_timeout(&args[2]) {
        Ok(()) => Reply::Array(vec![Reply::Int(1), Reply::Int(other_voters(node))]),
        Err(reply) => reply,
    }
}

/// Parameters CONFIG GET answers. CONFIG SET changes only `RUNTIME_PARAMS`: the rest come
/// from the command line, and most must be the same on every node.
fn config_params(node: &Node) -> Vec<(&'static str, String)> {
    let c = &node.config;
    vec![
        ("bind", c.listen.ip().to_string()),
        (
            "port",
            if c.plain_port { c.listen.port() } else { 0 }.to_string(),
        ),
        ("tls-port", c.tls.port.unwrap_or(0).to_string()),
        ("maxclients", c.max_clients.to_string()),
        ("requirepass", c.requirepass.clone().unwrap_or_default()),
        ("databases", "1".into()),
        ("appendonly", "yes".into()),
        ("appendfsync", "always".into()),
        ("save", String::new()),
        ("dir", c.data_dir.display().to_string()),
        ("maxmemory", node.memory.max_bytes().to_string()),
        ("maxmemory-policy", "noeviction".into()),
        ("timeout", "0".into()),
        ("proto-max-bulk-len", c.resp.max_bulk_bytes.to_string()),
        ("cluster-enabled", "no".into()),
        (
            "notify-keyspace-events",
            notify::render_classes(node.pubsub.notify().get()),
        ),
        ("lua-time-limit", "5000".into()),
        ("busy-reply-threshold", "5000".into()),
        (
            "slowlog-log-slower-than",
            node.slowlog.log_slower_than_us().to_string(),
        ),
        ("slowlog-max-len", node.slowlog.max_len().to_string()),
        (
            "protected-mode",
            if node.protected.on() { "yes" } else { "no" }.into(),
        ),
    ]
}

/// CONFIG SET name value [name value ...]: all or nothing, as Redis 7. Only the node's
/// runtime settings change (`notify-keyspace-events`, `slowlog-log-slower-than`,
/// `slowlog-max-len`); the others are refused in
/// Redis's words: unknown, or immutable (they come from flags).
fn config_set(node: &Node, pairs: &[Bytes]) -> Reply {
    let mut notify = None;
    let mut log_slower_than = None;
    let mut max_len = None;
    let mut protected = None;
    let mut maxmemory = None;
    for pair in pairs.chunks_exact(2) {
        let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let failed = |why: &str| {
            Reply::Error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
            ))
        };
        match name.as_str() {
            "notify-keyspace-events" => match notify::parse_classes(&pair[1]) {
                Some(flags) => notify = Some(flags),
                None => return failed("Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
            },
            "maxmemory" => match std::str::from_utf8(&pair[1])
                .ok()
                .and_then(crate::config::parse_memory)
            {
                Some(bytes) => maxmemory = Some(bytes),
                None => return failed("argument must be a memory value"),
            },
            "maxmemory-policy" if pair[1].eq_ignore_ascii_case(b"noeviction") => {}
            "maxmemory-policy" => {
                return failed("raftlock evicts nothing: only 'noeviction' is supported")
            }
            "protected-mode" => match pair[1].to_ascii_lowercase().as_slice() {
                b"yes" => protected = Some(true),
                b"no" => protected = Some(false),
                _ => return failed("argument must be 'yes' or 'no'"),
            },
            "slowlog-log-slower-than" => match parse_i64(&pair[1]) {
                Some(us) if us >= -1 => log_slower_than = Some(us),
                Some(_) => {
                    return failed("argument must be between -1 and 9223372036854775807 inclusive")
                }
                None => return failed("argument couldn't be parsed into an integer"),
            },
            "slowlog-max-len" => match parse_i64(&pair[1]) {
                Some(len) if (0..=crate::config::MAX_SLOWLOG_LEN as i64).contains(&len) => {
                    max_len = Some(len as usize)
                }
                Some(_) => return failed("argument must be between 0 and 1000000 inclusive"),
                None => return failed("argument couldn't be parsed into an integer"),
            },
            _ if config_params(node).iter().any(|(known, _)| *known == name) => {
                return failed("can't set immutable config")
            }
            _ => {
                return Reply::Error(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                ))
            }
        }
    }
    if let Some(flags) = notify {
        node.pubsub.notify().set(flags);
    }
    if let Some(us) = log_slower_than {
        node.slowlog.set_log_slower_than_us(us);
    }
    if let Some(len) = max_len {
        node.slowlog.set_max_len(len);
    }
    if let Some(on) = protected {
        node.protected.set(on);
    }
    if let Some(bytes) = maxmemory {
        node.memory.set_max_bytes(bytes);
    }
    Reply::Ok
}

/// The settings CONFIG SET changes, as CONFIG REWRITE writes them.
const REWRITTEN: &[&str] = &[
    "notify-keyspace-events",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "protected-mode",
    "maxmemory",
];

/// CONFIG REWRITE: the settings CONFIG SET changes, written into the `--config` file.
fn config_rewrite(node: &Node) -> Reply {
    let Some(path) = &node.config.config_file else {
        return Reply::error("ERR The server is running without a config file");
    };
    let params = config_params(node);
    let settings: Vec<(&str, String)> = params
        .into_iter()
        .filter(|(name, _)| REWRITTEN.contains(name))
        .collect();
    match crate::config_file::rewrite(path, &settings) {
        Ok(()) => Reply::Ok,
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), "CONFIG REWRITE failed");
            Reply::Error(format!("ERR Rewriting config file: {err:#}"))
        }
    }
}

fn config_reply(node: &Node, argv: &[Bytes]) -> Reply {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_uppercase();
    match sub.as_str() {
        "GET" if argv.len() >= 3 => {
            let params = config_params(node);
            let mut out = Vec::new();
            for (name, value) in &params {
                if argv[2..]
                    .iter()
                    .any(|p| crate::state::glob::matches(&p.to_ascii_lowercase(), name.as_bytes()))
                    && !out
                        .iter()
                        .any(|(n, _): &(Reply, Reply)| n == &Reply::bulk(*name))
                {
                    out.push((Reply::bulk(*name), Reply::bulk(value.clone())));
                }
            }
            Reply::Map(out)
        }
        "SET" if argv.len() >= 4 && argv.len().is_multiple_of(2) => config_set(node, &argv[2..]),
        "REWRITE" if argv.len() == 2 => config_rewrite(node),
        "RESETSTAT" if argv.len() == 2 => {
            node.stats.commands_processed.store(0, Ordering::Relaxed);
            node.stats.connections_received.store(0, Ordering::Relaxed);
            node.stats.rejected_connections.store(0, Ordering::Relaxed);
            node.stats.protocol_errors.store(0, Ordering::Relaxed);
            Reply::Ok
        }
        "GET" | "SET" | "RESETSTAT" | "REWRITE" => subcommand_arity_error("config", &argv[1]),
        _ => unknown_subcommand("config", &argv[1]),
    }
}
