//! COMMAND, COUNT, LIST, INFO and DOCS: the command table as Redis describes its own.

use bytes::Bytes;

use super::{subcommand_arity_error, unknown_subcommand};
use crate::command::{self, CommandSpec, COMMANDS};
use crate::reply::Reply;

pub(super) fn command(argv: &[Bytes]) -> Reply {
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
        "GETKEYS" if args.len() >= 2 => getkeys(args),
        "COUNT" | "GETKEYS" => subcommand_arity_error("command", sub),
        _ => unknown_subcommand("command", sub),
    }
}

/// COMMAND GETKEYS command [arg ...]: the keys of that invocation, by the table's key
/// positions, in Redis's words when there are none or the arguments do not fit.
fn getkeys(argv: &[Bytes]) -> Reply {
    let spec = match command::resolve(argv) {
        Ok(spec) => spec,
        Err(_) => return Reply::error("ERR Invalid command specified"),
    };
    if spec.first_key == 0 && spec.numkeys_index == 0 {
        return Reply::error("ERR The command has no key arguments");
    }
    if !spec.arity_ok(argv.len()) {
        return Reply::error("ERR Invalid number of arguments specified for command");
    }
    // A numkeys that names more keys than there are arguments names none, as for Redis's
    // EVAL.
    Reply::Array(spec.keys(argv).cloned().map(Reply::Bulk).collect())
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
        Reply::Set(
            spec.acl_categories()
                .into_iter()
                .map(Reply::status)
                .collect(),
        ),
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
