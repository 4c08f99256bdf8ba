//! Commands the node serves itself: connection state, server information, COMMAND.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::conn::{Session, Step};
use super::{cluster, info, sentinel, Node};
use crate::command::{self, args::parse_i64, CommandSpec, COMMANDS};
use crate::reply::Reply;
use crate::resp::Protocol;

/// The Redis version raftlock reports, for clients that pick features by version.
pub use crate::command::REDIS_COMPAT_VERSION;

pub(super) fn run(
    node: &Arc<Node>,
    session: &mut Session,
    spec: &CommandSpec,
    argv: &[Bytes],
) -> Step {
    let reply = match spec.name {
        // RESP2 subscribe mode answers PING as a message-shaped array.
        "ping" if session.protocol == Protocol::Resp2 && session.subs.active() => {
            Reply::Array(vec![
                Reply::bulk("pong"),
                argv.get(1)
                    .map_or(Reply::bulk(""), |m| Reply::Bulk(m.clone())),
            ])
        }
        "ping" => ping(argv),
        "echo" => Reply::Bulk(argv[1].clone()),
        "hello" => hello(node, session, argv),
        "auth" => auth(node, session, &argv[1..]),
        "select" => match parse_i64(&argv[1]) {
            Some(0) => Reply::Ok,
            Some(_) => Reply::error("ERR DB index is out of range"),
            None => Reply::not_integer(),
        },
        "quit" => return Step::ReplyAndClose(Reply::Ok),
        "reset" => {
            session.multi = None;
            session.watches.clear();
            super::subscribe::leave_all(node, session.id, &mut session.subs);
            session.protocol = Protocol::Resp2;
            session.authenticated = node.config.requirepass.is_none();
            let mut info = session.client.lock().expect("client lock");
            info.name.clear();
            info.protocol = Protocol::Resp2;
            Reply::status("RESET")
        }
        "client" => client(node, session, argv),
        "command" => command_cmd(argv),
        "info" => info::info(node, argv),
        "time" => {
            let micros = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or(0);
            Reply::Array(vec![
                Reply::bulk((micros / 1_000_000).to_string()),
                Reply::bulk((micros % 1_000_000).to_string()),
            ])
        }
        "config" => config(node, argv),
        "role" => info::role(node),
        "unwatch" => {
            session.watches.clear();
            Reply::Ok
        }
        "pubsub" => super::subscribe::pubsub(node, argv),
        "wait" => wait(node, &argv[1..]),
        "waitaof" => waitaof(node, &argv[1..]),
        "sentinel" => {
            return later(sentinel::sentinel_once_leader_known(
                node.clone(),
                argv.to_vec(),
            ))
        }
        "raft.info" => cluster::raft_info(node),
        "raft.node" => return later(cluster::raft_node(node.clone(), argv.to_vec())),
        "raft.transfer-leader" if argv.len() <= 2 => {
            return later(cluster::transfer_leader(node.clone(), argv.to_vec()))
        }
        "raft.transfer-leader" => Reply::wrong_arity("raft.transfer-leader"),
        "raft.elect" => return later(cluster::elect(node.clone())),
        "raft.hold-elections" => cluster::hold_elections(node, &argv[1]),
        _ => command::unknown_command(argv),
    };
    Step::Reply(reply)
}

/// Voters other than one: a write acknowledged to the client is committed on a majority
/// and fsynced there, so these are the replicas WAIT and WAITAOF report.
fn other_voters(node: &Node) -> i64 {
    let metrics = node.group.raft.metrics();
    let voters = metrics
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .count();
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
fn wait(node: &Node, args: &[Bytes]) -> Reply {
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
fn waitaof(node: &Node, args: &[Bytes]) -> Reply {
    if parse_i64(&args[0]).is_none() || parse_i64(&args[1]).is_none() {
        return Reply::not_integer();
    }
    match probe_timeout(&args[2]) {
        Ok(()) => Reply::Array(vec![Reply::Int(1), Reply::Int(other_voters(node))]),
        Err(reply) => reply,
    }
}

/// Runs an async command (a membership change) in its own task; the connection awaits its
/// reply in order. The change completes even if the client leaves meanwhile.
fn later(work: impl std::future::Future<Output = Reply> + Send + 'static) -> Step {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = tx.send(work.await);
    });
    Step::Later(rx)
}

fn ping(argv: &[Bytes]) -> Reply {
    match argv.len() {
        1 => Reply::status("PONG"),
        2 => Reply::Bulk(argv[1].clone()),
        _ => Reply::wrong_arity("ping"),
    }
}

fn hello(node: &Arc<Node>, session: &mut Session, argv: &[Bytes]) -> Reply {
    let mut protocol = session.protocol;
    let mut rest = &argv[1..];
    if let Some(version) = rest.first() {
        protocol = match parse_i64(version) {
            Some(2) => Protocol::Resp2,
            Some(3) => Protocol::Resp3,
            Some(_) => return Reply::error("NOPROTO unsupported protocol version"),
            None => return Reply::error("ERR Protocol version is not an integer or out of range"),
        };
        rest = &rest[1..];
    }
    let mut name = None;
    let mut authenticated = session.authenticated;
    while let Some(option) = rest.first() {
        if option.eq_ignore_ascii_case(b"AUTH") && rest.len() >= 3 {
            match check_password(node, &rest[1], &rest[2]) {
                Ok(()) => authenticated = true,
                Err(reply) => return reply,
            }
            rest = &rest[3..];
        } else if option.eq_ignore_ascii_case(b"SETNAME") && rest.len() >= 2 {
            if let Err(reply) = valid_client_name(&rest[1]) {
                return reply;
            }
            name = Some(String::from_utf8_lossy(&rest[1]).into_owned());
            rest = &rest[2..];
        } else {
            return Reply::Error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(option)
            ));
        }
    }
    if !authenticated {
        return Reply::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        );
    }
    session.authenticated = true;
    session.protocol = protocol;
    {
        let mut info = session.client.lock().expect("client lock");
        info.protocol = protocol;
        if let Some(name) = name {
            info.name = name;
        }
    }
    let leader = node.group.raft.metrics().borrow().current_leader == Some(node.config.id);
    Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (Reply::bulk("version"), Reply::bulk(REDIS_COMPAT_VERSION)),
        (
            Reply::bulk("proto"),
            Reply::Int(if protocol == Protocol::Resp3 { 3 } else { 2 }),
        ),
        (Reply::bulk("id"), Reply::Int(session.id as i64)),
        (Reply::bulk("mode"), Reply::bulk("standalone")),
        (
            Reply::bulk("role"),
            Reply::bulk(if leader { "master" } else { "replica" }),
        ),
        (Reply::bulk("modules"), Reply::Array(vec![])),
    ])
}

/// Checks a user and password as Redis 7's default user does: with `--requirepass` only
/// `default` with that password; without it the default user has no password (any
/// password is accepted) and no other user exists.
fn check_password(node: &Node, user: &[u8], password: &[u8]) -> Result<(), Reply> {
    let accepted = user == b"default"
        && node
            .config
            .requirepass
            .as_ref()
            .is_none_or(|expected| password == expected.as_bytes());
    if accepted {
        Ok(())
    } else {
        Err(Reply::error(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ))
    }
}

fn auth(node: &Node, session: &mut Session, args: &[Bytes]) -> Reply {
    let result = match args {
        [password] => {
            if node.config.requirepass.is_none() {
                Err(Reply::error(
                    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                ))
            } else {
                check_password(node, b"default", password)
            }
        }
        [user, password] => check_password(node, user, password),
        _ => Err(Reply::syntax_error()),
    };
    match result {
        Ok(()) => {
            session.authenticated = true;
            Reply::Ok
        }
        Err(reply) => reply,
    }
}

fn valid_client_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().all(|&b| (b'!'..=b'~').contains(&b)) {
        Ok(())
    } else {
        Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ))
    }
}

fn subcommand_arity_error(command: &str, sub: &[u8]) -> Reply {
    Reply::Error(format!(
        "ERR wrong number of arguments for '{}|{}' command",
        command,
        String::from_utf8_lossy(sub).to_ascii_lowercase()
    ))
}

fn unknown_subcommand(command: &str, sub: &[u8]) -> Reply {
    Reply::Error(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        command.to_ascii_uppercase()
    ))
}

fn client(node: &Arc<Node>, session: &mut Session, argv: &[Bytes]) -> Reply {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_uppercase();
    let args = &argv[2..];
    let arity_ok = match sub.as_str() {
        "ID" | "GETNAME" | "INFO" => args.is_empty(),
        "SETNAME" | "NO-EVICT" | "NO-TOUCH" => args.len() == 1,
        "SETINFO" => args.len() == 2,
        _ => true,
    };
    if !arity_ok {
        return subcommand_arity_error("client", &argv[1]);
    }
    match sub.as_str() {
        "ID" => Reply::Int(session.id as i64),
        "GETNAME" => {
            let info = session.client.lock().expect("client lock");
            if info.name.is_empty() {
                Reply::Nil
            } else {
                Reply::bulk(info.name.clone())
            }
        }
        "SETNAME" => match valid_client_name(&args[0]) {
            Ok(()) => {
                session.client.lock().expect("client lock").name =
                    String::from_utf8_lossy(&args[0]).into_owned();
                Reply::Ok
            }
            Err(reply) => reply,
        },
        "SETINFO" => {
            let value = String::from_utf8_lossy(&args[1]).into_owned();
            if value.bytes().any(|b| !(b'!'..=b'~').contains(&b)) {
                return Reply::Error(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
                ));
            }
            let mut info = session.client.lock().expect("client lock");
            match String::from_utf8_lossy(&args[0])
                .to_ascii_uppercase()
                .as_str()
            {
                "LIB-NAME" => info.lib_name = value,
                "LIB-VER" => info.lib_ver = value,
                _ => {
                    return Reply::Error(format!(
                        "ERR Unrecognized option '{}'",
                        String::from_utf8_lossy(&args[0])
                    ))
                }
            }
            Reply::Ok
        }
        "INFO" => Reply::Verbatim(
            "txt".into(),
            Bytes::from(session.client.lock().expect("client lock").describe() + "\n"),
        ),
        "LIST" => client_list(node, args),
        "NO-EVICT" | "NO-TOUCH" => {
            if args[0].eq_ignore_ascii_case(b"on") || args[0].eq_ignore_ascii_case(b"off") {
                Reply::Ok
            } else {
                Reply::syntax_error()
            }
        }
        _ => unknown_subcommand("client", &argv[1]),
    }
}

fn client_list(node: &Arc<Node>, args: &[Bytes]) -> Reply {
    let mut ids = None;
    let mut rest = args;
    while let Some(option) = rest.first() {
        if option.eq_ignore_ascii_case(b"TYPE") && rest.len() >= 2 {
            let kind = String::from_utf8_lossy(&rest[1]).to_ascii_lowercase();
            if !matches!(kind.as_str(), "normal" | "master" | "replica" | "pubsub") {
                return Reply::Error(format!("ERR Unknown client type '{kind}'"));
            }
            if kind != "normal" {
                return Reply::Verbatim("txt".into(), Bytes::new());
            }
            rest = &rest[2..];
        } else if option.eq_ignore_ascii_case(b"ID") && rest.len() >= 2 {
            let mut list = Vec::new();
            for id in &rest[1..] {
                match parse_i64(id).filter(|id| *id > 0) {
                    Some(id) => list.push(id as u64),
                    None => return Reply::error("ERR Invalid client ID"),
                }
            }
            ids = Some(list);
            rest = &[];
        } else {
            return Reply::syntax_error();
        }
    }
    Reply::Verbatim("txt".into(), Bytes::from(node.clients.list(ids.as_deref())))
}

fn command_cmd(argv: &[Bytes]) -> Reply {
    let Some(sub) = argv.get(1) else {
        return Reply::Array(COMMANDS.iter().map(command_info).collect());
    };
    let args = &argv[2..];
    match String::from_utf8_lossy(sub).to_ascii_uppercase().as_str() {
        "COUNT" if args.is_empty() => Reply::Int(COMMANDS.len() as i64),
        "LIST" => Reply::Array(COMMANDS.iter().map(|c| Reply::bulk(c.name)).collect()),
        "INFO" if args.is_empty() => Reply::Array(COMMANDS.iter().map(command_info).collect()),
        "INFO" => Reply::Array(
            args.iter()
                .map(|name| command::lookup(name).map_or(Reply::NilArray, command_info))
                .collect(),
        ),
        "DOCS" => {
            let specs: Vec<&CommandSpec> = if args.is_empty() {
                COMMANDS.iter().collect()
            } else {
                args.iter()
                    .filter_map(|name| command::lookup(name))
                    .collect()
            };
            Reply::Map(
                specs
                    .into_iter()
                    .map(|c| (Reply::bulk(c.name), command_docs(c)))
                    .collect(),
            )
        }
        "COUNT" => subcommand_arity_error("command", sub),
        _ => unknown_subcommand("command", sub),
    }
}

/// One command as COMMAND INFO describes it (Redis 7's ten fields).
fn command_info(spec: &CommandSpec) -> Reply {
    Reply::Array(vec![
        Reply::bulk(spec.name),
        Reply::Int(spec.arity as i64),
        Reply::Set(spec.flags.iter().map(|f| Reply::status(*f)).collect()),
        Reply::Int(spec.first_key as i64),
        Reply::Int(spec.last_key as i64),
        Reply::Int(spec.step as i64),
        Reply::Set(vec![Reply::status(format!("@{}", spec.group))]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

fn command_docs(spec: &CommandSpec) -> Reply {
    Reply::Map(vec![
        (Reply::bulk("summary"), Reply::bulk(spec.summary)),
        (Reply::bulk("since"), Reply::bulk("1.0.0")),
        (Reply::bulk("group"), Reply::bulk(spec.group)),
    ])
}

/// Parameters CONFIG GET answers. CONFIG SET is refused: raftlock is configured on the
/// command line, and a setting that differed between nodes would break determinism.
fn config_params(node: &Node) -> Vec<(&'static str, String)> {
    let c = &node.config;
    vec![
        ("bind", c.listen.ip().to_string()),
        ("port", c.listen.port().to_string()),
        ("maxclients", c.max_clients.to_string()),
        ("requirepass", c.requirepass.clone().unwrap_or_default()),
        ("databases", "1".into()),
        ("appendonly", "yes".into()),
        ("appendfsync", "always".into()),
        ("save", String::new()),
        ("dir", c.data_dir.display().to_string()),
        ("maxmemory", "0".into()),
        ("maxmemory-policy", "noeviction".into()),
        ("timeout", "0".into()),
        ("proto-max-bulk-len", c.resp.max_bulk_bytes.to_string()),
        ("cluster-enabled", "no".into()),
        ("notify-keyspace-events", String::new()),
        ("lua-time-limit", "5000".into()),
        ("busy-reply-threshold", "5000".into()),
    ]
}

fn config(node: &Node, argv: &[Bytes]) -> Reply {
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
        "SET" if argv.len() >= 4 && argv.len().is_multiple_of(2) => {
            // In Redis's words: a parameter it does not know, or one that cannot change
            // while the node runs (raftlock's come from its flags, the same on every node).
            let name = String::from_utf8_lossy(&argv[2]).to_ascii_lowercase();
            if config_params(node).iter().any(|(known, _)| *known == name) {
                Reply::Error(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - can't set immutable config"
                ))
            } else {
                Reply::Error(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                ))
            }
        }
        "RESETSTAT" if argv.len() == 2 => {
            node.stats.commands_processed.store(0, Ordering::Relaxed);
            node.stats.connections_received.store(0, Ordering::Relaxed);
            node.stats.rejected_connections.store(0, Ordering::Relaxed);
            node.stats.protocol_errors.store(0, Ordering::Relaxed);
            Reply::Ok
        }
        "GET" | "SET" | "RESETSTAT" => subcommand_arity_error("config", &argv[1]),
        _ => unknown_subcommand("config", &argv[1]),
    }
}
