//! Users and permissions as Redis 6+/7 has them (ACL). The users are replicated state:
//! each change is an op of a Raft entry (`state::acl_commands`), so every node holds the
//! same users, kept in snapshots. This module is the pure part: a user and its rules
//! (`user`), the categories (`categories`), the check of one command against a user
//! (`check`), ACL files (`file`) and the node's ACL LOG (`log`).

pub(crate) mod categories;
pub(crate) mod file;
pub(crate) mod log;
pub(crate) mod user;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::command::CommandSpec;
use crate::reply::Reply;
pub use user::{password_hash, User};

/// Bumped whenever any keyspace of this process changes its users (an ACL op applied,
/// a snapshot installed): connections then look their user up again. A hint only; a
/// spurious bump costs one lookup.
static CHANGES: AtomicU64 = AtomicU64::new(0);

pub(crate) fn changes() -> u64 {
    CHANGES.load(Ordering::Acquire)
}

pub(crate) fn note_change() {
    CHANGES.fetch_add(1, Ordering::AcqRel);
}

/// The users of one shard, as every node holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Users {
    /// By name. `default` is here once an ACL op changed it; before that it is Redis's
    /// default user with the node's `requirepass` (`Users::get`).
    users: BTreeMap<String, Arc<User>>,
    /// The credential followers' relays authenticate with (`server::routing`): chosen by
    /// the node that proposed the first ACL change, never shown to clients.
    relay_secret: Option<String>,
    /// An ACL file or ACL LOAD set the users: a node's `--aclfile` no longer seeds them.
    seeded: bool,
}

impl Users {
    /// The user `name`; `default` as `requirepass` makes it until an ACL op changes it.
    pub fn get(&self, name: &str, requirepass_hash: Option<&str>) -> Option<Arc<User>> {
        match self.users.get(name) {
            Some(user) => Some(user.clone()),
            None if name == "default" => Some(Arc::new(User::default_user(requirepass_hash))),
            None => None,
        }
    }

    /// Every user, `default` included, by name.
    pub fn all(&self, requirepass_hash: Option<&str>) -> Vec<Arc<User>> {
        let mut all: Vec<Arc<User>> = self.users.values().cloned().collect();
        if !self.users.contains_key("default") {
            all.push(Arc::new(User::default_user(requirepass_hash)));
            all.sort_by(|a, b| a.name.cmp(&b.name));
        }
        all
    }

    pub fn relay_secret(&self) -> Option<&str> {
        self.relay_secret.as_deref()
    }

    pub(crate) fn seeded(&self) -> bool {
        self.seeded
    }

    /// Takes `secret` as the relay secret if there is none yet.
    pub(crate) fn offer_relay_secret(&mut self, secret: &str) {
        if self.relay_secret.is_none() && !secret.is_empty() && secret != "-" {
            self.relay_secret = Some(secret.to_owned());
        }
    }

    /// ACL SETUSER: creates the user if needed and applies the rules, all or none.
    pub(crate) fn set_user(
        &mut self,
        name: &str,
        rules: &[&str],
        requirepass_hash: Option<&str>,
    ) -> Result<(), Reply> {
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('\0') {
            return Err(Reply::error(
                "ERR Usernames can't contain spaces or null characters",
            ));
        }
        if reserved_name(name) {
            return Err(Reply::Error(format!(
                "ERR The user name '{name}' is reserved: names starting with 'raftlock.' are raftlock's own"
            )));
        }
        let mut user = match self.get(name, requirepass_hash) {
            Some(user) => (*user).clone(),
            None => User::new(name),
        };
        user.apply_all(rules.iter().copied()).map_err(|(rule, e)| {
            Reply::Error(format!(
                "ERR Error in ACL SETUSER modifier '{rule}': {}",
                e.text()
            ))
        })?;
        self.users.insert(name.to_owned(), Arc::new(user));
        Ok(())
    }

    /// ACL DELUSER: how many of the names were users. `default` cannot be removed.
    pub(crate) fn delete(&mut self, names: &[&str]) -> Result<usize, Reply> {
        if names.contains(&"default") {
            return Err(Reply::error("ERR The 'default' user cannot be removed"));
        }
        Ok(names
            .iter()
            .filter(|name| self.users.remove(**name).is_some())
            .count())
    }

    /// ACL LOAD, or a node's `--aclfile` the first time: the users become exactly
    /// those of the file (and `default` as Redis's if the file does not name it).
    pub(crate) fn replace(&mut self, users: Vec<User>) {
        self.users = users
            .into_iter()
            .map(|user| (user.name.clone(), Arc::new(user)))
            .collect();
        self.seeded = true;
    }

    /// The users as ACL file lines, in name order: what snapshots keep.
    pub(crate) fn to_image(&self) -> UsersImage {
        UsersImage {
            lines: self.users.values().map(|user| file::line(user)).collect(),
            relay_secret: self.relay_secret.clone(),
            seeded: self.seeded,
        }
    }

    pub(crate) fn from_image(image: UsersImage) -> Result<Users, String> {
        let users = file::parse(&image.lines.join("\n"))?;
        let mut loaded = Users {
            users: BTreeMap::new(),
            relay_secret: image.relay_secret,
            seeded: image.seeded,
        };
        for user in users {
            loaded.users.insert(user.name.clone(), Arc::new(user));
        }
        Ok(loaded)
    }
}

/// Names starting with `raftlock.` are the nodes' own (the relay's identities).
pub(crate) fn reserved_name(name: &str) -> bool {
    name.starts_with("raftlock.")
}

/// The users in a snapshot: each as its ACL file line, which stays readable whatever
/// changes in `User`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct UsersImage {
    lines: Vec<String>,
    relay_secret: Option<String>,
    seeded: bool,
}

/// Why a command was refused, with what ACL LOG records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The command (`name`, `container|sub` for a subcommand).
    Command(String),
    /// A key the command names.
    Key(Bytes),
    /// A channel the command names.
    Channel(Bytes),
}

/// Commands Redis declares as containers of subcommands: a refusal names the subcommand
/// (`config|set`) as Redis's does.
const REDIS_CONTAINERS: &[&str] = &["config", "client", "pubsub", "command", "acl"];

impl Denied {
    /// ACL LOG's `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::Command(_) => "command",
            Denied::Key(_) => "key",
            Denied::Channel(_) => "channel",
        }
    }

    /// ACL LOG's `object`.
    pub fn object(&self) -> String {
        match self {
            Denied::Command(name) => name.clone(),
            Denied::Key(b) | Denied::Channel(b) => String::from_utf8_lossy(b).into_owned(),
        }
    }

    /// The text after `NOPERM ` (Redis 7.2's words); `verbose` as ACL DRYRUN says it.
    pub fn message(&self, user: &str, verbose: bool) -> String {
        match (self, verbose) {
            (Denied::Command(name), _) => {
                format!("User {user} has no permissions to run the '{name}' command")
            }
            (Denied::Key(key), true) => format!(
                "User {user} has no permissions to access the '{}' key",
                String::from_utf8_lossy(key)
            ),
            (Denied::Key(_), false) => "No permissions to access a key".into(),
            (Denied::Channel(channel), true) => format!(
                "User {user} has no permissions to access the '{}' channel",
                String::from_utf8_lossy(channel)
            ),
            (Denied::Channel(_), false) => "No permissions to access a channel".into(),
        }
    }

    /// Why EXEC refuses a queued command whose permission went away meanwhile.
    pub fn exec_reason(&self) -> &'static str {
        match self {
            Denied::Command(_) => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        }
    }

    /// The reply of a command a client sent.
    pub fn reply(&self, user: &str) -> Reply {
        Reply::Error(format!("NOPERM {}", self.message(user, false)))
    }
}

/// Whether `user` may run `argv` (resolved to `spec`): the command, then its keys (by
/// the table's key positions), then its channels.
pub fn check(user: &User, spec: &CommandSpec, argv: &[Bytes]) -> Result<(), Denied> {
    if user.unrestricted() {
        return Ok(());
    }
    let sub = argv.get(1).map(|b| b.as_ref());
    if !user.may_run(spec, sub) {
        let name = match sub {
            Some(sub) if REDIS_CONTAINERS.contains(&spec.name) => {
                format!(
                    "{}|{}",
                    spec.name,
                    String::from_utf8_lossy(sub).to_lowercase()
                )
            }
            _ => spec.name.to_owned(),
        };
        return Err(Denied::Command(name));
    }
    // A lock is written by LOCK and read by LOCKINFO as any key is.
    let write = spec.has_flag("write");
    if let Some(key) = spec
        .keys(argv)
        .find(|key| !user.may_read_or_write(key, write))
    {
        return Err(Denied::Key(key.clone()));
    }
    if spec.has_flag("pubsub") {
        let literal = spec.name == "psubscribe";
        let channels: &[Bytes] = match spec.name {
            "publish" | "spublish" => &argv[1..2.min(argv.len())],
            "subscribe" | "ssubscribe" | "psubscribe" => &argv[1..],
            _ => &[],
        };
        if let Some(channel) = channels.iter().find(|c| !user.may_use_channel(c, literal)) {
            return Err(Denied::Channel(channel.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
