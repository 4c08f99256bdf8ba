//! Commands on the connection's own state: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET,
//! CLIENT, MULTI, DISCARD, UNWATCH and the (un)subscribe commands.

use std::sync::Arc;

use bytes::Bytes;

use super::super::acl::{self, refuse_auth};
use super::super::session::Multi;
use super::super::subscribe_commands;
use super::super::subscribers::Kind;
use super::super::{Node, Session, Step};
use super::{printable, reply, subcommand_arity_error, unknown_subcommand};
use crate::command::args::parse_i64;
use crate::command::REDIS_COMPAT_VERSION;
use crate::reply::Reply;
use crate::resp::Protocol;

pub fn ping(_: &Arc<Node>, session: &mut Session, argv: &[Bytes]) -> Step {
    // RESP2 subscribe mode answers PING as a message-shaped array.
    if session.protocol == Protocol::Resp2 && session.subs.active() {
        return reply(Reply::Array(vec![
            Reply::bulk("pong"),
            argv.get(1)
                .map_or(Reply::bulk(""), |m| Reply::Bulk(m.clone())),
        ]));
    }
    reply(match argv.len() {
        1 => Reply::status("PONG"),
        2 => Reply::Bulk(argv[1].clone()),
        _ => Reply::wrong_arity("ping"),
    })
}

pub fn echo(_: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    reply(Reply::Bulk(argv[1].clone()))
}

pub fn hello(node: &Arc<Node>, session: &mut Session, argv: &[Bytes]) -> Step {
    match hello_reply(node, session, argv) {
        Ok(reply) => Step::Reply(reply),
        Err(WrongPass(user)) => refuse_auth(node, session, &user, wrongpass()),
    }
}

pub fn auth(node: &Arc<Node>, session: &mut Session, argv: &[Bytes]) -> Step {
    match auth_reply(node, session, &argv[1..]) {
        Ok(reply) => Step::Reply(reply),
        Err(WrongPass(user)) => refuse_auth(node, session, &user, wrongpass()),
    }
}

/// A user and password that did not match: answered later (`acl::refuse_auth`).
struct WrongPass(Bytes);

fn wrongpass() -> Reply {
    Reply::error("WRONGPASS invalid username-password pair or user is disabled.")
}

pub fn select(_: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    reply(match parse_i64(&argv[1]) {
        Some(0) => Reply::Ok,
        Some(_) => Reply::error("ERR DB index is out of range"),
        None => Reply::not_integer(),
    })
}

pub fn quit(_: &Arc<Node>, _: &mut Session, _: &[Bytes]) -> Step {
    Step::ReplyAndClose(Reply::Ok)
}

pub fn reset(node: &Arc<Node>, session: &mut Session, _: &[Bytes]) -> Step {
    session.multi = None;
    session.watches.clear();
    subscribe_commands::leave_all(node, session.id, &mut session.subs);
    session.protocol = Protocol::Resp2;
    // As Redis: back to `default`, authenticated if it needs no password.
    let default_is_open = node.user("default").is_some_and(|u| u.accepts(b""));
    session.become_user("default".to_owned());
    session.authenticated = default_is_open;
    let mut info = session.client.lock().expect("client lock");
    info.name.clear();
    info.protocol = Protocol::Resp2;
    reply(Reply::status("RESET"))
}

pub fn client(node: &Arc<Node>, session: &mut Session, argv: &[Bytes]) -> Step {
    reply(client_reply(node, session, argv))
}

pub fn multi(_: &Arc<Node>, session: &mut Session, _: &[Bytes]) -> Step {
    reply(if session.multi.is_some() {
        Reply::error("ERR MULTI calls can not be nested")
    } else {
        session.multi = Some(Multi::default());
        Reply::Ok
    })
}

pub fn discard(_: &Arc<Node>, session: &mut Session, _: &[Bytes]) -> Step {
    reply(if session.multi.take().is_some() {
        session.watches.clear();
        Reply::Ok
    } else {
        Reply::error("ERR DISCARD without MULTI")
    })
}

pub fn unwatch(_: &Arc<Node>, session: &mut Session, _: &[Bytes]) -> Step {
    session.watches.clear();
    reply(Reply::Ok)
}

pub fn subscribe(node: &Arc<Node>, session: &mut Session, argv: &[Bytes]) -> Step {
    subscribing(node, session, Kind::Channel, "subscribe", argv)
}

pub fn psubscribe(node: &Arc<Node>, session: &mut Session, argv: &[Bytes]) -> Step {
    subscribing(node, session, Kind::Pattern, "psubscribe", argv)
}

pub fn ssubscribe(node: &Arc<Node>, session: &mut Session, argv: &[Bytes]) -> Step {
    subscribing(node, session, Kind::Shard, "ssubscribe", argv)
}

pub fn unsubscribe(node: &Arc<Node>, session: &mut Session, argv: &[Bytes]) -> Step {
    unsubscribing(node, session, Kind::Channel, "unsubscribe", argv)
}

pub fn punsubscribe(node: &Arc<Node>, session: &mut Session, argv: &[Bytes]) -> Step {
    unsubscribing(node, session, Kind::Pattern, "punsubscribe", argv)
}

pub fn sunsubscribe(node: &Arc<Node>, session: &mut Session, argv: &[Bytes]) -> Step {
    unsubscribing(node, session, Kind::Shard, "sunsubscribe", argv)
}

fn subscribing(node: &Node, session: &mut Session, kind: Kind, word: &str, argv: &[Bytes]) -> Step {
    let replies =
        subscribe_commands::subscribe(node, session.id, &mut session.subs, kind, word, &argv[1..]);
    Step::Many(replies)
}

fn unsubscribing(
    node: &Node,
    session: &mut Session,
    kind: Kind,
    word: &str,
    argv: &[Bytes],
) -> Step {
    let replies = subscribe_commands::unsubscribe(
        node,
        session.id,
        &mut session.subs,
        kind,
        word,
        &argv[1..],
    );
    Step::Many(replies)
}

fn hello_reply(
    node: &Arc<Node>,
    session: &mut Session,
    argv: &[Bytes],
) -> Result<Reply, WrongPass> {
    let mut protocol = session.protocol;
    let mut rest = &argv[1..];
    if let Some(version) = rest.first() {
        protocol = match parse_i64(version) {
            Some(2) => Protocol::Resp2,
            Some(3) => Protocol::Resp3,
            Some(_) => return Ok(Reply::error("NOPROTO unsupported protocol version")),
            None => {
                return Ok(Reply::error(
                    "ERR Protocol version is not an integer or out of range",
                ))
            }
        };
        rest = &rest[1..];
    }
    let mut name = None;
    let mut auth = None;
    while let Some(option) = rest.first() {
        if option.eq_ignore_ascii_case(b"AUTH") && rest.len() >= 3 {
            auth = Some((&rest[1], &rest[2]));
            rest = &rest[3..];
        } else if option.eq_ignore_ascii_case(b"SETNAME") && rest.len() >= 2 {
            if let Err(reply) = valid_client_name(&rest[1]) {
                return Ok(reply);
            }
            name = Some(String::from_utf8_lossy(&rest[1]).into_owned());
            rest = &rest[2..];
        } else {
            return Ok(Reply::Error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(option)
            )));
        }
    }
    match auth {
        Some((user, password)) => match acl::authenticate(node, user, password) {
            Some(name) => session.become_user(name),
            None => return Err(WrongPass(user.clone())),
        },
        None if !session.authenticated => {
            return Ok(Reply::error(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
            ))
        }
        None => {}
    }
    session.protocol = protocol;
    {
        let mut info = session.client.lock().expect("client lock");
        info.protocol = protocol;
        if let Some(name) = name {
            info.name = name;
        }
    }
    let leader = node.group.leads();
    Ok(Reply::Map(vec![
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
    ]))
}

/// AUTH [user] password, as Redis 7: a password alone is the `default` user's, and an
/// error when `default` needs none.
fn auth_reply(node: &Node, session: &mut Session, args: &[Bytes]) -> Result<Reply, WrongPass> {
    let (user, password) = match args {
        [password] => {
            if node.user("default").is_some_and(|u| u.nopass) {
                return Ok(Reply::error(
                    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
                ));
            }
            (Bytes::from_static(b"default"), password)
        }
        [user, password] => (user.clone(), password),
        _ => return Ok(Reply::syntax_error()),
    };
    match acl::authenticate(node, &user, password) {
        Some(name) => {
            session.become_user(name);
            Ok(Reply::Ok)
        }
        None => Err(WrongPass(user)),
    }
}

fn valid_client_name(name: &[u8]) -> Result<(), Reply> {
    if printable(name) {
        Ok(())
    } else {
        Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ))
    }
}

fn client_reply(node: &Arc<Node>, session: &mut Session, argv: &[Bytes]) -> Reply {
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
            if !printable(value.as_bytes()) {
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
