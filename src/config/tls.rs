//! TLS settings (Redis's `tls-*` names) and the parsing of the security flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};

/// TLS on the client port (`src/server/tls.rs`).
pub mod tls_limits {
    /// Longest a TLS handshake of a client may take before its connection is closed.
    pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
    /// How often, at most, a new connection makes the node look at the certificate
    /// files' modification times (a change reloads them, as SIGHUP does).
    pub const RELOAD_CHECK_INTERVAL_MS: u64 = 1_000;
}

/// Redis's `tls-auth-clients`: whether a TLS client must present a certificate signed by
/// `--tls-ca-cert-file`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsAuthClients {
    Yes,
    No,
    Optional,
}

/// TLS settings, with Redis's names (`tls-port`, `tls-cert-file`, ...).
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// The TLS client port, on `--listen`'s address; none: no TLS port.
    pub port: Option<u16>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// CA certificates that sign client certificates, and that relays to the leader trust.
    pub ca_cert_file: Option<PathBuf>,
    /// Redis's default `yes`: client certificates required once a CA is given.
    pub auth_clients: TlsAuthClients,
    /// Redis's `tls-replication`: relays to the leader's client address use TLS. On by
    /// default for a node without a plain port (its cluster's client addresses are TLS).
    pub replication: bool,
    /// Redis's `tls-cluster`: TLS on the Raft port, both ends presenting a certificate
    /// the CA signed.
    pub cluster: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            port: None,
            cert_file: None,
            key_file: None,
            ca_cert_file: None,
            auth_clients: TlsAuthClients::Yes,
            replication: false,
            cluster: false,
        }
    }
}

impl TlsSettings {
    /// Whether a certificate is configured (for the TLS port, or for relays).
    pub fn has_cert(&self) -> bool {
        self.cert_file.is_some() && self.key_file.is_some()
    }
}

impl super::Config {
    /// The address this node's clients (and its peers' relays) reach it at: `listen`, or
    /// the TLS port on its address when the plain port is closed.
    pub fn client_addr(&self) -> SocketAddr {
        match (self.plain_port, self.tls.port) {
            (false, Some(port)) => SocketAddr::new(self.listen.ip(), port),
            _ => self.listen,
        }
    }

    /// The TLS port's address, if there is one.
    pub fn tls_listen(&self) -> Option<SocketAddr> {
        self.tls
            .port
            .map(|port| SocketAddr::new(self.listen.ip(), port))
    }
}

impl TlsSettings {
    /// Checks the settings of a node whose plain client port is `plain_port`, open or
    /// closed (`plain_open`).
    pub(crate) fn validate(&self, plain_open: bool, plain_port: u16) -> anyhow::Result<()> {
        let tls = self;
        if tls.port == Some(0) {
            bail!("--tls-port must be a port number (leave it out for no TLS port)");
        }
        if !plain_open && tls.port.is_none() {
            bail!("--port 0 closes the plain port: give --tls-port, or clients cannot connect");
        }
        if tls.port.is_some_and(|p| p == plain_port && plain_open) {
            bail!("--tls-port must differ from the plain port");
        }
        if tls.cert_file.is_some() != tls.key_file.is_some() {
            bail!("--tls-cert-file and --tls-key-file go together");
        }
        if tls.port.is_some() && !tls.has_cert() {
            bail!("--tls-port needs --tls-cert-file and --tls-key-file");
        }
        if tls.cluster && (!tls.has_cert() || tls.ca_cert_file.is_none()) {
            bail!("--tls-cluster needs --tls-cert-file, --tls-key-file and --tls-ca-cert-file");
        }
        if tls.replication && tls.ca_cert_file.is_none() {
            bail!("--tls-replication needs --tls-ca-cert-file: the CA that signed the other nodes' certificates");
        }
        Ok(())
    }
}

/// Parses `--tls-auth-clients yes|no|optional`.
pub fn parse_tls_auth_clients(text: &str) -> anyhow::Result<TlsAuthClients> {
    match text.to_ascii_lowercase().as_str() {
        "yes" => Ok(TlsAuthClients::Yes),
        "no" => Ok(TlsAuthClients::No),
        "optional" => Ok(TlsAuthClients::Optional),
        other => bail!("--tls-auth-clients is yes, no or optional, not '{other}'"),
    }
}

/// The cluster secret in `path`: its first line, without the line end.
pub fn read_secret_file(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --cluster-secret-file {}", path.display()))?;
    let secret = text.lines().next().unwrap_or("").to_string();
    if secret.is_empty() {
        bail!("--cluster-secret-file {} is empty", path.display());
    }
    Ok(secret)
}

/// Parses `yes` or `no`, as redis.conf writes booleans.
pub fn parse_yes_no(flag: &str, text: &str) -> anyhow::Result<bool> {
    match text.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        other => bail!("--{flag} is yes or no, not '{other}'"),
    }
}
