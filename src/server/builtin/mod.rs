//! Commands the node serves itself, each a `ServeFn` that its command-table row names:
//! `connection` for the connection's own state (handshake, authentication, MULTI,
//! subscriptions), `node` for what the node knows (INFO, COMMAND, CONFIG, ROLE, RAFT.*,
//! SENTINEL), `introspection` for COMMAND's replies.

pub mod acl;
pub mod connection;
mod introspection;
pub mod node;

use super::Step;
use crate::reply::Reply;

/// Runs an async command (a membership change) in its own task; the connection awaits its
/// reply in order. The change completes even if the client leaves meanwhile.
fn later(work: impl std::future::Future<Output = Reply> + Send + 'static) -> Step {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = tx.send(work.await);
    });
    Step::Later(rx)
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

/// Client names and CLIENT SETINFO values: printable ASCII without spaces, as Redis.
fn printable(value: &[u8]) -> bool {
    value.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

fn reply(reply: Reply) -> Step {
    Step::Reply(reply)
}
