//! What one client connection carries from request to request: its protocol, whether it
//! authenticated, its MULTI queue and WATCHes, its subscriptions, its relay to the leader
//! and its lock session; and `Step`, what a command the node serves asks of the
//! connection.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::clients::ClientHandle;
use super::forward::Upstream;
use super::subscribe_commands::Subscriptions;
use super::Node;
use crate::acl::{self, User};
use crate::command::check::Caller;
use crate::config::state_limits::MAX_QUEUED_COMMANDS;
use crate::reply::Reply;
use crate::resp::Protocol;
use crate::state::session as sessions;
use crate::state::txn::Watch;

/// What a command the node serves itself asks the connection to do.
pub enum Step {
    Reply(Reply),
    /// Several replies to one request (SUBSCRIBE a b: one per channel).
    Many(Vec<Reply>),
    /// Reply, then close the connection (QUIT).
    ReplyAndClose(Reply),
    /// Answered later by a task (a membership change); awaited in order like a relay.
    Later(oneshot::Receiver<Reply>),
}

/// A transaction being queued.
#[derive(Default)]
pub(super) struct Multi {
    pub commands: Vec<Vec<Bytes>>,
    /// A queued command was refused: EXEC answers EXECABORT.
    pub failed: bool,
}

impl Multi {
    /// Queues a command after MULTI (the pre-check chain said so): QUEUED, or an error
    /// that dooms the EXEC.
    pub fn queue(&mut self, argv: Vec<Bytes>) -> Reply {
        if self.commands.len() >= MAX_QUEUED_COMMANDS {
            self.failed = true;
            return Reply::Error(format!(
                "ERR too many commands queued in MULTI (max {MAX_QUEUED_COMMANDS})"
            ));
        }
        self.commands.push(argv);
        Reply::status("QUEUED")
    }
}

/// Per-connection state that commands such as HELLO, AUTH and RESET change.
pub struct Session {
    pub id: u64,
    pub protocol: Protocol,
    pub authenticated: bool,
    /// The ACL user the connection runs as (`default` until AUTH names another).
    pub user: String,
    /// Failed AUTH attempts on this connection: each is answered later than the last.
    pub(super) failed_auths: u32,
    /// The user's permissions as last looked up, and the `acl::changes()` count then;
    /// `None` inside: unrestricted.
    pub(super) permissions: Option<(u64, Option<Arc<User>>)>,
    pub client: ClientHandle,
    /// This client's relay to the leader, when this node does not lead.
    pub(super) upstream: Option<Upstream>,
    /// Commands queued since MULTI.
    pub(super) multi: Option<Multi>,
    /// Keys WATCHed since the last EXEC, DISCARD or UNWATCH.
    pub(super) watches: Vec<Watch>,
    pub(super) subs: Subscriptions,
    /// The session this node last named for this connection's lock commands, while it
    /// led (`state::session`): closed in the state when the connection ends.
    pub(super) lock_session: Option<sessions::SessionId>,
}

impl Session {
    pub(super) fn new(id: u64, authenticated: bool, client: ClientHandle) -> Session {
        Session {
            id,
            protocol: Protocol::Resp2,
            authenticated,
            user: "default".to_owned(),
            failed_auths: 0,
            permissions: None,
            client,
            upstream: None,
            multi: None,
            watches: Vec::new(),
            subs: Subscriptions::default(),
            lock_session: None,
        }
    }

    /// Authenticated as `user`: its permissions are looked up at its next command.
    pub(super) fn become_user(&mut self, user: String) {
        self.authenticated = true;
        if self.user != user {
            // The relay runs as the connection's user: a new user, a new relay.
            self.upstream = None;
        }
        user.clone_into(&mut self.client.lock().expect("client lock").user);
        self.user = user;
        self.permissions = None;
    }

    /// The user's permissions if it is restricted (`None`: it may run anything),
    /// looked up again after any change of the users. A user removed since AUTH may
    /// run nothing.
    pub(super) fn restrictions(&mut self, node: &Node) -> Option<Arc<User>> {
        if self.user == super::acl::NODE_USER {
            return None;
        }
        let changes = acl::changes();
        if let Some((seen, user)) = &self.permissions {
            if *seen == changes {
                return user.clone();
            }
        }
        let user = node
            .user(&self.user)
            .unwrap_or_else(|| Arc::new(User::new(&self.user)));
        let restricted = (!user.unrestricted()).then_some(user);
        self.permissions = Some((changes, restricted.clone()));
        restricted
    }

    /// What the pre-check chain needs to know about this connection.
    pub(super) fn caller<'a>(&self, user: Option<&'a User>) -> Caller<'a> {
        Caller {
            user,
            authenticated: self.authenticated,
            subscribe_mode: self.protocol == Protocol::Resp2 && self.subs.active(),
            in_multi: self.multi.is_some(),
        }
    }

    /// A refused command after MULTI dooms the EXEC (EXECABORT), as in Redis.
    pub(super) fn doom_transaction(&mut self) {
        if let Some(multi) = self.multi.as_mut() {
            multi.failed = true;
        }
    }
}
