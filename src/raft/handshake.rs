//! The handshake that opens every Raft connection, before any Raft message: both ends
//! show the wire version and the cluster id (`cluster_id.rs`), and prove they know the
//! cluster secret without sending it, by HMAC-SHA256 over both ends' fresh nonces.
//!
//! ```text
//! dialer  ── Hello {version, cluster id, node id, secret?, nonce_d} ─────────────────▶ listener
//!         ◀─ Challenge {version, cluster id, node id, secret?, nonce_l, mac_l} | Refused
//!         ── Proof {mac_d} | Refused ────────────────────────────────────────────────▶
//!         ◀─ Welcome | Refused
//! mac_l = HMAC(secret, "listener" | Hello | Challenge without mac)
//! mac_d = HMAC(secret, "dialer"   | Hello | Challenge without mac)
//! ```
//!
//! Each end's MAC covers the other's nonce, so a recorded exchange proves nothing on a
//! new connection; the labels keep one end's MAC from being reflected as the other's.
//! Without a secret the MACs are keyed with nothing: the version and cluster id are still
//! checked (a misconfigured node is refused), but anyone can connect. Every message
//! starts with a magic and the version, and a refusal's form never changes, so two
//! versions can always tell each other why they part.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::NodeId;
use crate::config::raft_transport::{MAX_CLUSTER_ID_BYTES, REFUSAL_LOG_INTERVAL};

/// The Raft wire format's version (`wire.rs`, and this handshake): nodes of different
/// versions refuse each other.
pub(crate) const RAFT_WIRE_VERSION: u32 = 1;

const MAGIC: &[u8; 8] = b"RLKRAFT\0";
const NONCE_BYTES: usize = 32;
const MAC_BYTES: usize = 32;
/// Largest handshake message: a refusal's reason is cut to fit.
const MAX_MESSAGE_BYTES: usize = 1024;
/// Refusal reasons remembered for `REFUSAL_LOG_INTERVAL`, at most.
const MAX_REMEMBERED_REFUSALS: usize = 64;

const KIND_HELLO: u8 = 1;
const KIND_CHALLENGE: u8 = 2;
const KIND_PROOF: u8 = 3;
const KIND_WELCOME: u8 = 4;
const KIND_REFUSED: u8 = 5;

const DIALER_LABEL: &[u8] = b"raftlock raft dialer";
const LISTENER_LABEL: &[u8] = b"raftlock raft listener";

/// What this node shows and checks in handshakes: the cluster secret (as an HMAC key),
/// the cluster id (learned from the first peer when the node has none yet), its wire
/// version.
pub struct ClusterIdentity {
    node_id: NodeId,
    key: hmac::Key,
    has_secret: bool,
    version: u32,
    cluster_id: Mutex<Option<String>>,
    /// Where a learned cluster id is kept (None: not kept, in tests).
    data_dir: Option<PathBuf>,
    rng: SystemRandom,
    refusals: Mutex<HashMap<String, Instant>>,
    /// TLS on the Raft port (`--tls-cluster`), under the handshake.
    tls: Option<Arc<dyn RaftTls>>,
}

/// Where the Raft port's TLS configurations come from (the node's certificates, which
/// may be reloaded): an acceptor for peers' connections, a connector for this node's.
pub trait RaftTls: Send + Sync {
    fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor>;
    fn connector(&self) -> Option<tokio_rustls::TlsConnector>;
}

impl ClusterIdentity {
    pub fn new(
        node_id: NodeId,
        secret: Option<&str>,
        cluster_id: Option<String>,
        data_dir: Option<PathBuf>,
    ) -> ClusterIdentity {
        ClusterIdentity {
            node_id,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.unwrap_or("").as_bytes()),
            has_secret: secret.is_some(),
            version: RAFT_WIRE_VERSION,
            cluster_id: Mutex::new(cluster_id),
            data_dir,
            rng: SystemRandom::new(),
            refusals: Mutex::new(HashMap::new()),
            tls: None,
        }
    }

    /// The same, with TLS on the Raft port.
    pub fn with_tls(self, tls: Arc<dyn RaftTls>) -> ClusterIdentity {
        ClusterIdentity {
            tls: Some(tls),
            ..self
        }
    }

    pub(crate) fn tls(&self) -> Option<&dyn RaftTls> {
        self.tls.as_deref()
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn nonce(&self) -> io::Result<[u8; NONCE_BYTES]> {
        let mut nonce = [0u8; NONCE_BYTES];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| io::Error::other("no random numbers for a handshake nonce"))?;
        Ok(nonce)
    }

    fn hello(&self, nonce: [u8; NONCE_BYTES]) -> Hello {
        Hello {
            version: self.version,
            cluster_id: self.cluster_id().unwrap_or_default(),
            node_id: self.node_id,
            has_secret: self.has_secret,
            nonce,
        }
    }

    /// The listener's answer to `hello`: a challenge, or why the dialer is refused.
    fn challenge(&self, hello: &Hello, nonce: [u8; NONCE_BYTES]) -> Result<Challenge, String> {
        self.check_peer(
            "node",
            hello.node_id,
            hello.version,
            &hello.cluster_id,
            hello.has_secret,
        )?;
        let mut challenge = Challenge {
            version: self.version,
            cluster_id: self.cluster_id().unwrap_or_default(),
            node_id: self.node_id,
            has_secret: self.has_secret,
            nonce,
            mac: [0; MAC_BYTES],
        };
        challenge.mac = self.mac(LISTENER_LABEL, hello, &challenge);
        Ok(challenge)
    }

    /// The dialer's check of the listener's challenge (expected to come from `target`):
    /// its proof, or why the listener is refused.
    fn prove(
        &self,
        hello: &Hello,
        challenge: &Challenge,
        target: NodeId,
    ) -> Result<[u8; MAC_BYTES], String> {
        self.check_peer(
            "node",
            challenge.node_id,
            challenge.version,
            &challenge.cluster_id,
            challenge.has_secret,
        )?;
        if challenge.node_id != target {
            return Err(format!(
                "the peer is node {}, not node {target} as the membership says",
                challenge.node_id
            ));
        }
        if !self.verify(LISTENER_LABEL, hello, challenge, &challenge.mac) {
            return Err(format!(
                "node {} has another cluster secret than this node (--cluster-secret differs)",
                challenge.node_id
            ));
        }
        Ok(self.mac(DIALER_LABEL, hello, challenge))
    }

    /// The listener's check of the dialer's proof.
    fn accept(&self, hello: &Hello, challenge: &Challenge, proof: &[u8]) -> Result<(), String> {
        if !self.verify(DIALER_LABEL, hello, challenge, proof) {
            return Err(format!(
                "node {} has another cluster secret than this node (--cluster-secret differs)",
                hello.node_id
            ));
        }
        Ok(())
    }

    fn check_peer(
        &self,
        what: &str,
        peer: NodeId,
        version: u32,
        cluster_id: &str,
        has_secret: bool,
    ) -> Result<(), String> {
        if version != self.version {
            return Err(version_mismatch(self.version, version));
        }
        if let Some(mine) = self.cluster_id() {
            if !cluster_id.is_empty() && cluster_id != mine {
                return Err(format!(
                    "{what} {peer} is of cluster '{cluster_id}', this node of cluster '{mine}'"
                ));
            }
        }
        match (self.has_secret, has_secret) {
            (true, false) => Err(format!(
                "{what} {peer} has no cluster secret; this node has one (--cluster-secret)"
            )),
            (false, true) => Err(format!(
                "{what} {peer} has a cluster secret; this node has none (--cluster-secret)"
            )),
            _ => Ok(()),
        }
    }

    fn mac(&self, label: &[u8], hello: &Hello, challenge: &Challenge) -> [u8; MAC_BYTES] {
        let tag = hmac::sign(&self.key, &transcript(label, hello, challenge));
        let mut mac = [0u8; MAC_BYTES];
        mac.copy_from_slice(tag.as_ref());
        mac
    }

    /// Whether `mac` is this secret's MAC of the transcript (in constant time).
    fn verify(&self, label: &[u8], hello: &Hello, challenge: &Challenge, mac: &[u8]) -> bool {
        hmac::verify(&self.key, &transcript(label, hello, challenge), mac).is_ok()
    }

    /// Takes the peer's cluster id if this node has none yet, and keeps it.
    fn learn(&self, peer_cluster_id: &str) {
        if peer_cluster_id.is_empty() {
            return;
        }
        let mut id = self.cluster_id.lock().unwrap_or_else(|p| p.into_inner());
        if id.is_some() {
            return;
        }
        if let Some(dir) = &self.data_dir {
            if let Err(e) = super::cluster_id::store(dir, peer_cluster_id) {
                tracing::error!("cannot keep the cluster id '{peer_cluster_id}': {e:#}");
                return;
            }
        }
        tracing::info!("joined cluster '{peer_cluster_id}'");
        *id = Some(peer_cluster_id.to_string());
    }

    /// Logs a refusal, at most once per `REFUSAL_LOG_INTERVAL` for the same reason (which
    /// names the peer's node id; its address differs per connection it opens).
    pub(crate) fn log_refusal(&self, error: &HandshakeError) {
        let line = error.to_string();
        let key = match error {
            HandshakeError::Refused { reason, .. } => format!("refused {reason}"),
            HandshakeError::RefusedByPeer { reason, .. } => format!("refused by {reason}"),
            HandshakeError::Io(e) => e.to_string(),
        };
        let now = Instant::now();
        let mut seen = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        if seen
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < REFUSAL_LOG_INTERVAL)
        {
            return;
        }
        if seen.len() >= MAX_REMEMBERED_REFUSALS {
            seen.clear();
        }
        seen.insert(key, now);
        tracing::warn!("{line}");
    }
}

fn version_mismatch(mine: u32, theirs: u32) -> String {
    format!("raft wire version {theirs} of the peer differs from this node's {mine} (upgrade all nodes to one version)")
}

/// What each end's MAC covers: its label, the dialer's hello, the listener's challenge.
fn transcript(label: &[u8], hello: &Hello, challenge: &Challenge) -> Vec<u8> {
    let mut bytes = label.to_vec();
    bytes.extend_from_slice(&hello.encode());
    bytes.extend_from_slice(&challenge.encode_unsigned());
    bytes
}

/// Why a handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// This node refused the peer.
    Refused { peer: String, reason: String },
    /// The peer refused this node.
    RefusedByPeer { peer: String, reason: String },
    /// The connection failed, or the peer sent no handshake.
    Io(io::Error),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Refused { peer, reason } => {
                write!(f, "raft connection with {peer} refused: {reason}")
            }
            HandshakeError::RefusedByPeer { peer, reason } => {
                write!(f, "raft connection refused by {peer}: {reason}")
            }
            HandshakeError::Io(e) => write!(f, "raft handshake failed: {e}"),
        }
    }
}

impl From<io::Error> for HandshakeError {
    fn from(e: io::Error) -> Self {
        HandshakeError::Io(e)
    }
}

/// Dials: runs the dialer's side on a fresh connection to `target` (at `peer`).
pub(crate) async fn dial<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    identity: &ClusterIdentity,
    target: NodeId,
    peer: &str,
) -> Result<(), HandshakeError> {
    let hello = identity.hello(identity.nonce()?);
    send(stream, &hello.encode()).await?;
    let challenge = match Message::read(stream, identity.version).await? {
        Message::Challenge(c) => c,
        Message::Refused(reason) => return Err(refused_by(peer, reason)),
        Message::Version(theirs) => {
            let reason = version_mismatch(identity.version, theirs);
            return Err(refuse(stream, identity, peer, reason).await);
        }
        _ => return Err(unexpected()),
    };
    let proof = match identity.prove(&hello, &challenge, target) {
        Ok(proof) => proof,
        Err(reason) => return Err(refuse(stream, identity, peer, reason).await),
    };
    send(stream, &encode_proof(&proof)).await?;
    match Message::read(stream, identity.version).await? {
        Message::Welcome => {
            identity.learn(&challenge.cluster_id);
            Ok(())
        }
        Message::Refused(reason) => Err(refused_by(peer, reason)),
        _ => Err(unexpected()),
    }
}

/// Listens: runs the listener's side on a connection a peer (at `peer`) opened; the
/// peer's node id once it passed.
pub(crate) async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    identity: &ClusterIdentity,
    peer: &str,
) -> Result<NodeId, HandshakeError> {
    let hello = match Message::read(stream, identity.version).await? {
        Message::Hello(h) => h,
        Message::Version(theirs) => {
            let reason = version_mismatch(identity.version, theirs);
            return Err(refuse(stream, identity, peer, reason).await);
        }
        _ => return Err(unexpected()),
    };
    let challenge = match identity.challenge(&hello, identity.nonce()?) {
        Ok(c) => c,
        Err(reason) => return Err(refuse(stream, identity, peer, reason).await),
    };
    send(stream, &challenge.encode()).await?;
    let proof = match Message::read(stream, identity.version).await? {
        Message::Proof(p) => p,
        Message::Refused(reason) => return Err(refused_by(peer, reason)),
        _ => return Err(unexpected()),
    };
    if let Err(reason) = identity.accept(&hello, &challenge, &proof) {
        return Err(refuse(stream, identity, peer, reason).await);
    }
    send(stream, &header(identity.version, KIND_WELCOME)).await?;
    identity.learn(&hello.cluster_id);
    Ok(hello.node_id)
}

fn refused_by(peer: &str, reason: String) -> HandshakeError {
    HandshakeError::RefusedByPeer {
        peer: peer.to_string(),
        reason,
    }
}

fn unexpected() -> HandshakeError {
    HandshakeError::Io(io::Error::other("unexpected handshake message"))
}

/// Tells the peer why it is refused (best effort: it may be gone).
async fn refuse<S: AsyncWrite + Unpin>(
    stream: &mut S,
    identity: &ClusterIdentity,
    peer: &str,
    reason: String,
) -> HandshakeError {
    let mut message = header(identity.version, KIND_REFUSED);
    let room = MAX_MESSAGE_BYTES - message.len() - 2;
    let mut cut = reason.len().min(room);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    put_bytes(&mut message, &reason.as_bytes()[..cut]);
    let _ = send(stream, &message).await;
    HandshakeError::Refused {
        peer: peer.to_string(),
        reason,
    }
}

struct Hello {
    version: u32,
    cluster_id: String,
    node_id: NodeId,
    has_secret: bool,
    nonce: [u8; NONCE_BYTES],
}

impl Hello {
    fn encode(&self) -> Vec<u8> {
        let mut out = header(self.version, KIND_HELLO);
        put_bytes(&mut out, self.cluster_id.as_bytes());
        out.extend_from_slice(&self.node_id.to_be_bytes());
        out.push(u8::from(self.has_secret));
        out.extend_from_slice(&self.nonce);
        out
    }
}

struct Challenge {
    version: u32,
    cluster_id: String,
    node_id: NodeId,
    has_secret: bool,
    nonce: [u8; NONCE_BYTES],
    mac: [u8; MAC_BYTES],
}

impl Challenge {
    fn encode_unsigned(&self) -> Vec<u8> {
        let mut out = header(self.version, KIND_CHALLENGE);
        put_bytes(&mut out, self.cluster_id.as_bytes());
        out.extend_from_slice(&self.node_id.to_be_bytes());
        out.push(u8::from(self.has_secret));
        out.extend_from_slice(&self.nonce);
        out
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = self.encode_unsigned();
        out.extend_from_slice(&self.mac);
        out
    }
}

fn encode_proof(mac: &[u8; MAC_BYTES]) -> Vec<u8> {
    let mut out = header(RAFT_WIRE_VERSION, KIND_PROOF);
    out.extend_from_slice(mac);
    out
}

/// A message as read: of this version, a refusal (of any version), or the version of a
/// peer whose message this node cannot read.
enum Message {
    Hello(Hello),
    Challenge(Challenge),
    Proof(Vec<u8>),
    Welcome,
    Refused(String),
    Version(u32),
}

impl Message {
    /// Reads one message; `version` is this node's.
    async fn read<S: AsyncRead + Unpin>(stream: &mut S, version: u32) -> io::Result<Message> {
        let len = stream.read_u32().await? as usize;
        if len > MAX_MESSAGE_BYTES {
            return Err(io::Error::other(format!(
                "handshake message of {len} bytes (not a raftlock Raft port?)"
            )));
        }
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await?;
        Message::decode(&body, version)
    }

    fn decode(body: &[u8], mine: u32) -> io::Result<Message> {
        let bad = || io::Error::other("malformed handshake message (not a raftlock Raft port?)");
        let mut r = Reader(body);
        if r.take(MAGIC.len()).ok_or_else(bad)? != MAGIC {
            return Err(bad());
        }
        let version = u32::from_be_bytes(r.array().ok_or_else(bad)?);
        let kind = r.take(1).ok_or_else(bad)?[0];
        if kind == KIND_REFUSED {
            let reason = r.bytes().ok_or_else(bad)?;
            return Ok(Message::Refused(
                String::from_utf8_lossy(reason).into_owned(),
            ));
        }
        if version != mine {
            return Ok(Message::Version(version));
        }
        let message = match kind {
            KIND_HELLO => Message::Hello(Hello {
                version,
                cluster_id: r.cluster_id().ok_or_else(bad)?,
                node_id: u64::from_be_bytes(r.array().ok_or_else(bad)?),
                has_secret: r.take(1).ok_or_else(bad)?[0] != 0,
                nonce: r.array().ok_or_else(bad)?,
            }),
            KIND_CHALLENGE => Message::Challenge(Challenge {
                version,
                cluster_id: r.cluster_id().ok_or_else(bad)?,
                node_id: u64::from_be_bytes(r.array().ok_or_else(bad)?),
                has_secret: r.take(1).ok_or_else(bad)?[0] != 0,
                nonce: r.array().ok_or_else(bad)?,
                mac: r.array().ok_or_else(bad)?,
            }),
            KIND_PROOF => Message::Proof(r.take(MAC_BYTES).ok_or_else(bad)?.to_vec()),
            KIND_WELCOME => Message::Welcome,
            _ => return Err(bad()),
        };
        if !r.0.is_empty() {
            return Err(bad());
        }
        Ok(message)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = u16::from_be_bytes(self.array()?) as usize;
        self.take(len)
    }

    fn cluster_id(&mut self) -> Option<String> {
        let bytes = self.bytes()?;
        if bytes.len() > MAX_CLUSTER_ID_BYTES {
            return None;
        }
        String::from_utf8(bytes.to_vec()).ok()
    }
}

fn header(version: u32, kind: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_be_bytes());
    out.push(kind);
    out
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, message: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(4 + message.len());
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    stream.write_all(&frame).await?;
    stream.flush().await
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
