//! The node's side of ACL: who a connection is (AUTH, HELLO AUTH, the relay's node
//! credential), the permissions it runs with (the replicated users, looked up again
//! when they change), the ops a node proposes for ACL changes and restricted callers,
//! the brake on guessing passwords, the ACL LOG, and seeding the users from `--aclfile`.
//!
//! **The relay.** A follower checks a client's command against the replicated users
//! itself, then relays it to the leader on a connection of that client's own. That
//! connection authenticates as `raftlock.relay:<user>` with the relay secret, a random
//! value the node that proposed the first ACL change put in the replicated users (never
//! shown to clients): the leader then runs the relayed commands as `<user>`, with the
//! same checks, and scripts and transactions with that user's permissions. Before any
//! ACL change there is no secret, and the relay authenticates as `default` with
//! `requirepass`, as before ACL existed.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::clients::ClientHandle;
use super::{Node, Session, Step};
use crate::acl::{self, log::AclLog, password_hash, User};
use crate::config::acl_limits;
use crate::reply::Reply;
use crate::state::acl_commands::{ACL_OP, LOAD_OP, USER_OP};

/// What the relay's connection authenticates as: this prefix, then the client's user.
const RELAY_USER_PREFIX: &str = "raftlock.relay:";
/// The user a node's own requests to another node run as (RAFT.NODE relayed to the
/// leader, RAFT.ELECT during a transfer): unrestricted. No ACL user may be named
/// `raftlock.*`, so only the relay secret opens it.
pub(super) const NODE_USER: &str = "raftlock.node";

/// What every connection of the node shares about ACL.
pub struct NodeAcl {
    pub(super) log: AclLog,
    /// SHA-256 of `--requirepass`: the `default` user's password until an ACL change.
    pub(super) requirepass_hash: Option<String>,
}

impl NodeAcl {
    pub(super) fn new(requirepass: Option<&str>) -> NodeAcl {
        NodeAcl {
            log: AclLog::new(acl_limits::ACLLOG_MAX_LEN),
            requirepass_hash: requirepass.map(|p| password_hash(p.as_bytes())),
        }
    }
}

impl Node {
    /// The user `name` as this node has applied the users.
    pub(super) fn user(&self, name: &str) -> Option<Arc<User>> {
        self.group
            .state()
            .users()
            .get(name, self.acl.requirepass_hash.as_deref())
    }

    /// Every user, by name.
    pub(super) fn all_users(&self) -> Vec<Arc<User>> {
        self.group
            .state()
            .users()
            .all(self.acl.requirepass_hash.as_deref())
    }

    /// The user and password a relay (or another node-to-node client connection)
    /// carrying `user`'s commands authenticates with.
    pub(super) fn relay_credentials(&self, user: &str) -> Option<(String, String)> {
        let secret = self.group.state().users().relay_secret().map(str::to_owned);
        match secret {
            Some(secret) => Some((format!("{RELAY_USER_PREFIX}{user}"), secret)),
            None => self
                .config
                .requirepass
                .clone()
                .map(|pass| ("default".to_owned(), pass)),
        }
    }

    /// Records a refusal or failed authentication in the ACL LOG.
    pub(super) fn log_acl(
        &self,
        session: &Session,
        reason: &'static str,
        context: &'static str,
        object: &str,
        username: &str,
    ) {
        self.log_acl_for(&session.client, reason, context, object, username);
    }

    fn log_acl_for(
        &self,
        client: &ClientHandle,
        reason: &'static str,
        context: &'static str,
        object: &str,
        username: &str,
    ) {
        let client_info = client.lock().expect("client lock").describe();
        self.acl.log.add(acl::log::Event {
            reason,
            context,
            object,
            username,
            client_info,
        });
    }
}

/// Checks `user` and `password`. A user named `raftlock.relay:<name>` is another node's
/// relay for a client authenticated there as `<name>` (the password: the relay secret).
/// Returns the user the connection is then.
pub(super) fn authenticate(node: &Node, user: &[u8], password: &[u8]) -> Option<String> {
    let name = String::from_utf8_lossy(user).into_owned();
    if let Some(relayed) = name.strip_prefix(RELAY_USER_PREFIX) {
        let state = node.group.state();
        let secret = state.users().relay_secret()?;
        return equal_in_constant_time(secret.as_bytes(), password).then(|| relayed.to_owned());
    }
    node.user(&name)
        .filter(|u| u.accepts(password))
        .map(|_| name)
}

fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A failed AUTH: logged, counted on the connection, and answered after a delay that
/// doubles with each failure (`config::acl_limits`), so guessing is slow; other
/// connections are served meanwhile.
pub(super) fn refuse_auth(node: &Node, session: &mut Session, user: &[u8], reply: Reply) -> Step {
    session.failed_auths = session.failed_auths.saturating_add(1);
    let name = String::from_utf8_lossy(user).into_owned();
    node.log_acl(session, "auth", "toplevel", "AUTH", &name);
    let delay = acl_limits::auth_failure_delay_ms(session.failed_auths);
    tracing::warn!(user = %name, failures = session.failed_auths, delay_ms = delay, "AUTH failed");
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let _ = tx.send(reply);
    });
    Step::Later(rx)
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // Without the OS's randomness (never seen on Linux) the proposal carries no secret
    // and a later ACL change offers one again.
    match getrandom::fill(&mut bytes) {
        Ok(()) => acl::user::hex(&bytes),
        Err(_) => "-".into(),
    }
}

/// ACL GENPASS's password: `bits` random bits in hex (rounded up to 4).
pub(super) fn generate_password(bits: usize) -> Result<String, Reply> {
    let mut bytes = vec![0u8; bits.div_ceil(8)];
    getrandom::fill(&mut bytes).map_err(|e| Reply::Error(format!("ERR {e}")))?;
    let mut hex = acl::user::hex(&bytes);
    hex.truncate(bits.div_ceil(4));
    Ok(hex)
}

/// The op the leader proposes for an ACL change a client sent: `raftlock.acl` with a
/// relay secret candidate and `requirepass`'s hash; for ACL LOAD, the users of this
/// node's ACL file.
pub(super) fn acl_op(node: &Node, argv: Vec<Bytes>) -> Result<Vec<Bytes>, Reply> {
    let pass = node
        .acl
        .requirepass_hash
        .clone()
        .unwrap_or_else(|| "-".into());
    let mut op = vec![
        Bytes::from_static(ACL_OP.as_bytes()),
        Bytes::from(random_hex()),
        Bytes::from(pass),
    ];
    if argv[1].eq_ignore_ascii_case(b"load") {
        let text = read_aclfile(node)?;
        op.extend([
            Bytes::from_static(LOAD_OP.as_bytes()),
            Bytes::from_static(b"0"),
            Bytes::from(text),
        ]);
    } else {
        op.extend(argv);
    }
    Ok(op)
}

/// The reply of a restricted user's script, passed on once it comes; a refusal inside
/// the script (`ERR ACL failure in script: ...`, decided at apply) is logged in ACL LOG
/// with context `lua`, as Redis logs it. Redis names the key or channel refused; the
/// reply does not carry it, so the object is then empty.
pub(super) fn log_script_refusal(
    node: &Arc<Node>,
    session: &Session,
    reply: oneshot::Receiver<Reply>,
) -> oneshot::Receiver<Reply> {
    let (tx, rx) = oneshot::channel();
    let node = node.clone();
    let client = session.client.clone();
    let user = session.user.clone();
    tokio::spawn(async move {
        let Ok(reply) = reply.await else {
            return; // The proposal was dropped: the connection answers TRYAGAIN.
        };
        if let Reply::Error(text) = &reply {
            if let Some(why) = text.strip_prefix("ERR ACL failure in script: ") {
                let (reason, object) = script_refusal(why);
                node.log_acl_for(&client, reason, "lua", object, &user);
            }
        }
        let _ = tx.send(reply);
    });
    rx
}

/// ACL LOG's reason and object from the words of a refusal inside a script.
fn script_refusal(why: &str) -> (&'static str, &str) {
    if why.starts_with("No permissions to access a key") {
        ("key", "")
    } else if why.starts_with("No permissions to access a channel") {
        ("channel", "")
    } else {
        let command = why
            .split_once("run the '")
            .and_then(|(_, rest)| rest.split_once('\''))
            .map_or("", |(name, _)| name);
        ("command", command)
    }
}

/// A restricted user's script or transaction, run at apply with its permissions.
pub(super) fn as_user(user: &str, argv: Vec<Bytes>) -> Vec<Bytes> {
    let mut op = Vec::with_capacity(argv.len() + 2);
    op.push(Bytes::from_static(USER_OP.as_bytes()));
    op.push(Bytes::copy_from_slice(user.as_bytes()));
    op.extend(argv);
    op
}

/// The node's ACL file, checked: Redis's error when there is none or it is wrong.
fn read_aclfile(node: &Node) -> Result<String, Reply> {
    let Some(path) = node.config.aclfile.as_ref() else {
        return Err(Reply::error(
            "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.",
        ));
    };
    let text = read_limited(path).map_err(|e| Reply::Error(format!("ERR {e}")))?;
    acl::file::parse(&text).map_err(|e| Reply::Error(format!("ERR {}:{e}", path.display())))?;
    Ok(text)
}

fn read_limited(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| format!("Error loading ACLs, opening file '{}': {e}", path.display()))?;
    let mut text = String::new();
    file.take(acl_limits::MAX_ACLFILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("Error loading ACLs, reading '{}': {e}", path.display()))?;
    if text.len() as u64 > acl_limits::MAX_ACLFILE_BYTES {
        return Err(format!(
            "ACL file '{}' is larger than {} bytes",
            path.display(),
            acl_limits::MAX_ACLFILE_BYTES
        ));
    }
    Ok(text)
}

/// ACL SAVE: this node's users, written to its ACL file (a temporary file renamed over
/// it).
pub(super) fn save(node: &Node) -> Result<(), String> {
    let Some(path) = node.config.aclfile.as_ref() else {
        return Err("This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.".into());
    };
    let mut text: String = node
        .all_users()
        .iter()
        .map(|user| acl::file::line(user) + "\n")
        .collect();
    if text.is_empty() {
        text.push('\n');
    }
    let temp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    write().map_err(|e| format!("There was an error trying to save the ACLs. Please check the server logs for more information ({e})"))
}

/// The `--aclfile`, read and checked before the node starts: an error names the file
/// and the line.
pub(super) fn read_file_at_start(config: &crate::config::Config) -> anyhow::Result<Option<String>> {
    let Some(path) = config.aclfile.as_ref() else {
        return Ok(None);
    };
    let text = read_limited(path).map_err(anyhow::Error::msg)?;
    acl::file::parse(&text).map_err(|e| anyhow::anyhow!("the ACL file {}: {e}", path.display()))?;
    Ok(Some(text))
}

/// With `--aclfile` (its `text`): once this node leads and no file seeded the users yet,
/// proposes the file's users (once for the cluster: the op does nothing if another node
/// seeded first).
pub(super) async fn seed_from_file(node: Arc<Node>, text: String) {
    let path = node.config.aclfile.clone().unwrap_or_default();
    let pause = Duration::from_millis(acl_limits::SEED_POLL_MS);
    loop {
        if node.group.state().users().seeded() {
            return;
        }
        if node.group.leads() {
            let pass = node
                .acl
                .requirepass_hash
                .clone()
                .unwrap_or_else(|| "-".into());
            let op = vec![
                Bytes::from_static(ACL_OP.as_bytes()),
                Bytes::from(random_hex()),
                Bytes::from(pass),
                Bytes::from_static(LOAD_OP.as_bytes()),
                Bytes::from_static(b"1"),
                Bytes::from(text.clone()),
            ];
            match node.proposer.propose(op).await.await {
                Ok(Reply::Error(e)) => tracing::warn!(error = %e, "seeding the ACL users"),
                Ok(_) => tracing::info!(file = %path.display(), "ACL users seeded"),
                Err(_) => {}
            }
        }
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_s_refusal_names_its_reason_and_command() {
        assert_eq!(
            script_refusal("User alice has no permissions to run the 'del' command script: x"),
            ("command", "del")
        );
        assert_eq!(
            script_refusal("No permissions to access a key script: x"),
            ("key", "")
        );
        assert_eq!(
            script_refusal("No permissions to access a channel"),
            ("channel", "")
        );
    }

    #[test]
    fn the_constant_time_comparison_compares() {
        assert!(equal_in_constant_time(b"secret", b"secret"));
        assert!(!equal_in_constant_time(b"secret", b"secreT"));
        assert!(!equal_in_constant_time(b"secret", b"secret!"));
    }
}
