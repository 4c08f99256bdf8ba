//! ACL's subcommands the node answers itself: WHOAMI, GETUSER, LIST, USERS, CAT, LOG,
//! GENPASS, DRYRUN and SAVE, from the users this node has applied (as a Redis replica
//! answers from its own copy). SETUSER, DELUSER and LOAD are ops of the log
//! (`state::acl_commands`).

use std::sync::Arc;

use bytes::Bytes;

use super::super::acl::{generate_password, save as save_file};
use super::super::{Node, Session, Step};
use super::reply;
use crate::acl::{self, categories};
use crate::command::args::parse_i64;
use crate::command::resolve;
use crate::reply::Reply;

fn text(arg: &Bytes) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

pub fn whoami(_: &Arc<Node>, session: &mut Session, _: &[Bytes]) -> Step {
    reply(Reply::bulk(session.user.clone()))
}

pub fn getuser(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    let Some(user) = node.user(&text(&argv[2])) else {
        return reply(Reply::Nil);
    };
    let mut flags = vec![Reply::bulk(if user.enabled { "on" } else { "off" })];
    if user.nopass {
        flags.push(Reply::bulk("nopass"));
    }
    reply(Reply::Map(vec![
        (Reply::bulk("flags"), Reply::Array(flags)),
        (
            Reply::bulk("passwords"),
            Reply::Array(
                user.passwords
                    .iter()
                    .map(|p| Reply::bulk(p.clone()))
                    .collect(),
            ),
        ),
        (
            Reply::bulk("commands"),
            Reply::bulk(user.describe_commands()),
        ),
        (Reply::bulk("keys"), Reply::bulk(user.describe_keys())),
        (
            Reply::bulk("channels"),
            Reply::bulk(user.channel_patterns()),
        ),
        (Reply::bulk("selectors"), Reply::Array(vec![])),
    ]))
}

pub fn list(node: &Arc<Node>, _: &mut Session, _: &[Bytes]) -> Step {
    reply(Reply::Array(
        node.all_users()
            .iter()
            .map(|user| Reply::bulk(acl::file::line(user)))
            .collect(),
    ))
}

pub fn users(node: &Arc<Node>, _: &mut Session, _: &[Bytes]) -> Step {
    reply(Reply::Array(
        node.all_users()
            .iter()
            .map(|user| Reply::bulk(user.name().to_owned()))
            .collect(),
    ))
}

pub fn save(node: &Arc<Node>, _: &mut Session, _: &[Bytes]) -> Step {
    reply(match save_file(node) {
        Ok(()) => Reply::Ok,
        Err(e) => Reply::Error(format!("ERR {e}")),
    })
}

pub fn cat(_: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    reply(match argv {
        [_, _] => Reply::Array(categories::ALL.iter().map(|c| Reply::bulk(*c)).collect()),
        [_, _, category] => match categories::named(&text(category)) {
            Some(category) => Reply::Array(
                categories::commands_in(category)
                    .into_iter()
                    .map(Reply::bulk)
                    .collect(),
            ),
            None => Reply::Error(format!("ERR Unknown category '{}'", text(category))),
        },
        _ => Reply::wrong_arity("acl|cat"),
    })
}

pub fn log(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    reply(match argv {
        [_, _] => node.acl.log.reply(10),
        [_, _, arg] if arg.eq_ignore_ascii_case(b"reset") => {
            node.acl.log.reset();
            Reply::Ok
        }
        [_, _, arg] => match parse_i64(arg) {
            Some(n) if n >= 0 => node.acl.log.reply(n as usize),
            _ => Reply::error("ERR value is out of range, must be positive"),
        },
        _ => Reply::wrong_arity("acl|log"),
    })
}

pub fn genpass(_: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    let bits = match argv.get(2) {
        None => Some(256),
        Some(arg) => parse_i64(arg).filter(|n| (1..=4096).contains(n)),
    };
    reply(match bits {
        Some(bits) => match generate_password(bits as usize) {
            Ok(password) => Reply::bulk(password),
            Err(reply) => reply,
        },
        None => Reply::error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"),
    })
}

pub fn dryrun(node: &Arc<Node>, _: &mut Session, argv: &[Bytes]) -> Step {
    let name = text(&argv[2]);
    let Some(user) = node.user(&name) else {
        return reply(Reply::Error(format!("ERR User '{name}' not found")));
    };
    let command = &argv[3..];
    let spec = match resolve(command) {
        Ok(spec) => spec,
        Err(_) => {
            return reply(Reply::Error(format!(
                "ERR Command '{}' not found",
                text(&command[0])
            )))
        }
    };
    if !spec.arity_ok(command.len()) {
        return reply(Reply::wrong_arity(spec.name));
    }
    reply(match acl::check(&user, spec, command) {
        Ok(()) => Reply::Ok,
        Err(denied) => Reply::bulk(denied.message(&name, true)),
    })
}
