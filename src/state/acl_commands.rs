//! ACL changes as ops of the log: ACL SETUSER, ACL DELUSER, and the internal ops a node
//! proposes around them (`raftlock.acl`: the relay secret and `requirepass`'s hash the
//! proposing node offers; `raftlock.aclload`: the users of an ACL file) and around a
//! restricted user's scripts and transactions (`raftlock.user`: whose permissions they
//! run with). Every node applies them alike; the users are in snapshots.

use std::sync::Arc;

use bytes::Bytes;

use super::{session, Keyspace};
use crate::acl::{self, file, User};
use crate::reply::Reply;

/// `raftlock.acl NONCE PASSHASH command...`: an ACL change; NONCE becomes the relay
/// secret if there is none, PASSHASH (or `-`) is the proposing node's `requirepass`,
/// which the `default` user starts from until an ACL change replaces it.
pub const ACL_OP: &str = "raftlock.acl";
/// `raftlock.aclload SEED_ONLY TEXT`: the users become the ACL file TEXT's; with
/// SEED_ONLY `1`, only if no file or ACL LOAD set them before (a node's `--aclfile`).
pub const LOAD_OP: &str = "raftlock.aclload";
/// `raftlock.user NAME command...`: a script or transaction of a restricted user; its
/// `redis.call`s and queued commands are checked against NAME's permissions at apply.
pub const USER_OP: &str = "raftlock.user";

fn text(arg: &Bytes) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

impl Keyspace {
    /// The users, as this node has applied them.
    pub fn users(&self) -> &acl::Users {
        &self.replicated.acl
    }

    /// The user whose permissions the op being applied runs with, if restricted.
    pub(crate) fn caller(&self) -> Option<&User> {
        self.runtime.caller.as_deref()
    }

    pub(super) fn apply_acl_op(&mut self, now_ms: u64, argv: &[Bytes]) -> Reply {
        let [_, nonce, pass, command @ ..] = argv else {
            return Reply::wrong_arity(ACL_OP);
        };
        if command.is_empty() {
            return Reply::wrong_arity(ACL_OP);
        }
        self.replicated.acl.offer_relay_secret(&text(nonce));
        let pass = text(pass);
        self.runtime.acl_default_pass = (pass != "-").then_some(pass);
        let reply = if session::is_op(command, LOAD_OP) {
            self.load_users(command)
        } else {
            self.apply_op(now_ms, command)
        };
        self.runtime.acl_default_pass = None;
        acl::note_change();
        reply
    }

    fn load_users(&mut self, argv: &[Bytes]) -> Reply {
        let [_, seed_only, text_arg] = argv else {
            return Reply::wrong_arity(LOAD_OP);
        };
        if seed_only.as_ref() == b"1" && self.replicated.acl.seeded() {
            return Reply::Int(0);
        }
        match file::parse(&text(text_arg)) {
            Ok(users) => {
                self.replicated.acl.replace(users);
                Reply::Ok
            }
            Err(e) => Reply::Error(format!("ERR {e}")),
        }
    }

    /// Runs `raftlock.user NAME command...` with NAME's permissions (none if NAME was
    /// removed meanwhile: every command is refused).
    pub(super) fn apply_as_user(&mut self, now_ms: u64, argv: &[Bytes]) -> Reply {
        let [_, name, command @ ..] = argv else {
            return Reply::wrong_arity(USER_OP);
        };
        if command.is_empty() || session::is_op(command, USER_OP) {
            return Reply::wrong_arity(USER_OP);
        }
        let name = text(name);
        let user = self
            .replicated
            .acl
            .get(&name, None)
            .unwrap_or_else(|| Arc::new(User::new(&name)));
        self.runtime.caller = Some(user);
        let reply = self.apply_op(now_ms, command);
        self.runtime.caller = None;
        reply
    }
}

/// ACL SETUSER name rule...
pub fn setuser(ks: &mut Keyspace, _now_ms: u64, argv: &[Bytes]) -> Reply {
    let Some(name) = argv.get(2).map(text) else {
        return Reply::wrong_arity("acl|setuser");
    };
    let rules: Vec<String> = argv[3..].iter().map(text).collect();
    let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
    let pass = ks.runtime.acl_default_pass.clone();
    match ks.replicated.acl.set_user(&name, &rules, pass.as_deref()) {
        Ok(()) => {
            acl::note_change();
            Reply::Ok
        }
        Err(reply) => reply,
    }
}

/// ACL DELUSER name...
pub fn deluser(ks: &mut Keyspace, _now_ms: u64, argv: &[Bytes]) -> Reply {
    if argv.len() < 3 {
        return Reply::wrong_arity("acl|deluser");
    }
    let names: Vec<String> = argv[2..].iter().map(text).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    match ks.replicated.acl.delete(&names) {
        Ok(n) => {
            acl::note_change();
            Reply::Int(n as i64)
        }
        Err(reply) => reply,
    }
}

/// ACL LOAD reaches apply only inside `raftlock.acl`, as the users of the leader's ACL
/// file (`raftlock.aclload`).
pub fn load_outside_acl_op(_: &mut Keyspace, _: u64, _: &[Bytes]) -> Reply {
    Reply::error("ERR ACL LOAD is proposed with the leader's ACL file")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn acl_ops_change_the_users_and_survive_a_snapshot() {
        let mut ks = Keyspace::new();
        let hash = acl::password_hash(b"req");
        let reply = ks.apply_op(
            1,
            &argv(&[
                ACL_OP, "nonce1", &hash, "ACL", "SETUSER", "alice", "on", ">pw", "~lock:*", "+lock",
            ]),
        );
        assert_eq!(reply, Reply::Ok);
        // The default user keeps requirepass's password when it is first changed.
        let reply = ks.apply_op(
            1,
            &argv(&[
                ACL_OP,
                "nonce2",
                &hash,
                "ACL",
                "SETUSER",
                "default",
                "-@dangerous",
            ]),
        );
        assert_eq!(reply, Reply::Ok);
        let restored = Keyspace::from_snapshot(&ks.to_snapshot()).unwrap();
        let users = restored.users();
        assert_eq!(users.relay_secret(), Some("nonce1"));
        assert!(users.get("alice", None).unwrap().accepts(b"pw"));
        assert!(users.get("default", None).unwrap().accepts(b"req"));
        let reply = ks.apply_op(
            1,
            &argv(&[ACL_OP, "n", "-", "ACL", "DELUSER", "alice", "bob"]),
        );
        assert_eq!(reply, Reply::Int(1));
    }

    #[test]
    fn a_seed_loads_once_and_acl_load_replaces() {
        let mut ks = Keyspace::new();
        let load = |seed: &str, text: &str| argv(&[ACL_OP, "n", "-", LOAD_OP, seed, text]);
        assert_eq!(
            ks.apply_op(1, &load("1", "user a on nopass +@all")),
            Reply::Ok
        );
        assert_eq!(
            ks.apply_op(1, &load("1", "user b on nopass")),
            Reply::Int(0)
        );
        assert!(ks.users().get("b", None).is_none());
        assert_eq!(ks.apply_op(1, &load("0", "user b on nopass")), Reply::Ok);
        assert!(ks.users().get("a", None).is_none());
        let Reply::Error(e) = ks.apply_op(1, &load("0", "bogus")) else {
            panic!("an error")
        };
        assert_eq!(e, "ERR line 1: should start with user keyword");
    }
}
