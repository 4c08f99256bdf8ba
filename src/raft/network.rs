//! Raft RPC over TCP. A process keeps one connection per peer node, shared by all its
//! groups; requests on it are matched to responses by request id, so many RPCs (of many
//! groups) are in flight at once. The server side (`listener.rs`) hands each frame to the
//! Raft handle of its group.
//!
//! A partition that drops packets closes no connection. So a connection that has heard
//! nothing for `LINK_STALL` when a call on it times out is dropped and made anew by the
//! next call (one made while the partition lasts just times out), and the kernel drops
//! one whose data stays unacknowledged (`TCP_USER_TIMEOUT`, with keepalive probes on idle
//! ones). Each peer's connection also records since when a request to it has gone
//! unanswered, which tells a node whether it is cut off from a majority.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{RPCTypes, Raft};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

use super::handshake::{self, ClusterIdentity, HandshakeError};
use super::wire::{self, FrameError, RaftReply, RaftRequest, RequestFrame, ResponseFrame};
use super::{GroupId, NodeAddr, NodeId, TypeConfig};
use crate::config::raft_transport::{
    HANDSHAKE_TIMEOUT, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, LINK_STALL, TCP_USER_TIMEOUT,
};

/// Frames queued for one connection's writer before senders wait.
pub(super) const SEND_QUEUE_FRAMES: usize = 1024;

/// The Raft handles of the groups this node runs, by group id, for the RPC server.
#[derive(Clone, Default)]
pub struct GroupRegistry {
    groups: Arc<RwLock<HashMap<GroupId, Raft<TypeConfig>>>>,
}

impl GroupRegistry {
    pub fn insert(&self, group: GroupId, raft: Raft<TypeConfig>) {
        self.write().insert(group, raft);
    }

    pub fn get(&self, group: GroupId) -> Option<Raft<TypeConfig>> {
        // A map of handles stays valid even if a holder panicked.
        let groups = self.groups.read().unwrap_or_else(|p| p.into_inner());
        groups.get(&group).cloned()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<GroupId, Raft<TypeConfig>>> {
        self.groups.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// This process's Raft network: its connections to peer nodes and the registry of its
/// groups. Clone it freely; clones share everything.
#[derive(Clone)]
pub struct RaftTransport {
    inner: Arc<TransportInner>,
}

struct TransportInner {
    node_id: NodeId,
    peers: Mutex<HashMap<NodeId, Arc<PeerConnection>>>,
    groups: GroupRegistry,
    /// What every connection's handshake shows and checks, both directions.
    identity: Arc<ClusterIdentity>,
}

impl RaftTransport {
    pub fn new(identity: Arc<ClusterIdentity>) -> RaftTransport {
        RaftTransport {
            inner: Arc::new(TransportInner {
                node_id: identity.node_id(),
                peers: Mutex::new(HashMap::new()),
                groups: GroupRegistry::default(),
                identity,
            }),
        }
    }

    /// This node's handshake identity, which the Raft port's listener checks peers with.
    pub fn identity(&self) -> Arc<ClusterIdentity> {
        self.inner.identity.clone()
    }

    /// The groups that `serve_raft` dispatches to; `start_group` registers each group.
    pub fn groups(&self) -> GroupRegistry {
        self.inner.groups.clone()
    }

    /// The network factory openraft uses for one group.
    pub fn for_group(&self, group: GroupId) -> GroupNetwork {
        GroupNetwork {
            group,
            transport: self.clone(),
        }
    }

    /// How long a request to `peer` has gone unanswered: since the oldest request sent
    /// after its last answer (zero if none is waiting, or it was never asked anything).
    pub fn unanswered_for(&self, peer: NodeId) -> Duration {
        let peers = self.inner.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers
            .get(&peer)
            .map_or(Duration::ZERO, |p| p.contact.unanswered_for(Instant::now()))
    }

    /// The connection to `target`, shared by all groups; a new one if its address changed.
    fn peer(&self, target: NodeId, addr: &str) -> Arc<PeerConnection> {
        let mut peers = self.inner.peers.lock().unwrap_or_else(|p| p.into_inner());
        match peers.get(&target) {
            Some(peer) if peer.addr == addr => peer.clone(),
            _ => {
                let peer = Arc::new(PeerConnection::new(
                    addr.to_string(),
                    target,
                    self.inner.identity.clone(),
                ));
                peers.insert(target, peer.clone());
                peer
            }
        }
    }
}

/// openraft's network factory for one group: clients for it share the transport's
/// connections.
pub struct GroupNetwork {
    group: GroupId,
    transport: RaftTransport,
}

impl RaftNetworkFactory<TypeConfig> for GroupNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> PeerClient {
        PeerClient {
            group: self.group,
            from: self.transport.inner.node_id,
            target,
            connection: self.transport.peer(target, &node.raft_addr),
        }
    }
}

/// Sends one group's RPCs to one peer.
pub struct PeerClient {
    group: GroupId,
    from: NodeId,
    target: NodeId,
    connection: Arc<PeerConnection>,
}

/// Why an RPC got no reply.
enum CallError {
    /// No connection could be made: the peer is down or partitioned.
    Unreachable(io::Error),
    /// The connection broke, or the request could not be encoded.
    Network(io::Error),
    TooLarge,
    Timeout,
}

impl PeerClient {
    async fn call(
        &self,
        rpc: RaftRequest,
        action: RPCTypes,
        option: &RPCOption,
    ) -> Result<RaftReply, CallError> {
        let reply = self
            .connection
            .call(self.group, rpc, option.hard_ttl())
            .await?;
        match reply {
            RaftReply::UnknownGroup => Err(CallError::Unreachable(io::Error::other(format!(
                "node {} does not run group {} ({action})",
                self.target, self.group
            )))),
            reply => Ok(reply),
        }
    }

    fn error<E: std::error::Error>(
        &self,
        err: CallError,
        action: RPCTypes,
        option: &RPCOption,
    ) -> RPCError<NodeId, NodeAddr, E> {
        match err {
            CallError::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::Network(e) => RPCError::Network(NetworkError::new(&e)),
            // The request fits once split; a single entry too large cannot be sent at all.
            CallError::TooLarge => {
                RPCError::Network(NetworkError::new(&io::Error::other(format!(
                    "{action} request exceeds {} bytes",
                    wire::MAX_RAFT_FRAME_BYTES
                ))))
            }
            CallError::Timeout => RPCError::Timeout(Timeout {
                action,
                id: self.from,
                target: self.target,
                timeout: option.hard_ttl(),
            }),
        }
    }

    fn remote<E: std::error::Error>(
        &self,
        e: RaftError<NodeId, E>,
    ) -> RPCError<NodeId, NodeAddr, RaftError<NodeId, E>> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

fn mismatched_reply(action: RPCTypes) -> CallError {
    CallError::Network(io::Error::other(format!(
        "the peer answered {action} with another kind of reply"
    )))
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        let action = RPCTypes::AppendEntries;
        let entries = rpc.entries.len() as u64;
        match self
            .call(RaftRequest::AppendEntries(rpc), action, &option)
            .await
        {
            Ok(RaftReply::AppendEntries(Ok(response))) => Ok(response),
            Ok(RaftReply::AppendEntries(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(self.error(mismatched_reply(action), action, &option)),
            Err(CallError::TooLarge) if entries > 1 => Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(entries / 2),
            )),
            Err(e) => Err(self.error(e, action, &option)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeAddr, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let action = RPCTypes::InstallSnapshot;
        match self
            .call(RaftRequest::InstallSnapshot(rpc), action, &option)
            .await
        {
            Ok(RaftReply::InstallSnapshot(Ok(response))) => Ok(response),
            Ok(RaftReply::InstallSnapshot(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(self.error(mismatched_reply(action), action, &option)),
            Err(e) => Err(self.error(e, action, &option)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        let action = RPCTypes::Vote;
        match self.call(RaftRequest::Vote(rpc), action, &option).await {
            Ok(RaftReply::Vote(Ok(response))) => Ok(response),
            Ok(RaftReply::Vote(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(self.error(mismatched_reply(action), action, &option)),
            Err(e) => Err(self.error(e, action, &option)),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        let action = RPCTypes::Vote;
        match self.call(RaftRequest::PreVote(rpc), action, &option).await {
            Ok(RaftReply::PreVote(Ok(response))) => Ok(response),
            Ok(RaftReply::PreVote(Err(e))) => Err(self.remote(e)),
            Ok(_) => Err(self.error(mismatched_reply(action), action, &option)),
            Err(e) => Err(self.error(e, action, &option)),
        }
    }
}

/// The connection to one peer node, made on first use and remade after it breaks.
struct PeerConnection {
    addr: String,
    /// The node expected at `addr`: the handshake refuses another.
    target: NodeId,
    identity: Arc<ClusterIdentity>,
    next_request_id: AtomicU64,
    link: tokio::sync::Mutex<Option<Link>>,
    contact: Arc<Contact>,
}

/// Whether a peer answers: since when a request to it has waited for an answer, if one
/// does. Any frame from the peer counts as an answer, even one its caller gave up on.
#[derive(Default)]
struct Contact {
    unanswered_since: Mutex<Option<Instant>>,
}

impl Contact {
    fn asked(&self, now: Instant) {
        let mut since = self
            .unanswered_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        since.get_or_insert(now);
    }

    fn answered(&self) {
        *self
            .unanswered_since
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn unanswered_for(&self, now: Instant) -> Duration {
        let since = self
            .unanswered_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        since.map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }
}

/// One live TCP connection: a writer task fed by a queue, and a reader task that hands
/// each response to the caller waiting for its request id. Dropping the link stops both.
#[derive(Clone)]
struct Link {
    frames: mpsc::Sender<Vec<u8>>,
    shared: Arc<LinkShared>,
    _tasks: Arc<LinkTasks>,
}

struct LinkShared {
    pending: Mutex<HashMap<u64, oneshot::Sender<RaftReply>>>,
    closed: AtomicBool,
    /// When the link last received a frame, or was opened if it has received none.
    heard_at: Mutex<Instant>,
    contact: Arc<Contact>,
}

struct LinkTasks([AbortHandle; 2]);

impl Drop for LinkTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl LinkShared {
    /// Waits for the reply to `request_id`, unless the link is already closed.
    fn register(&self, request_id: u64) -> Option<oneshot::Receiver<RaftReply>> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        pending.insert(request_id, tx);
        Some(rx)
    }

    fn forget(&self, request_id: u64) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.remove(&request_id);
    }

    fn resolve(&self, frame: ResponseFrame) {
        *self.heard_at.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.contact.answered();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(waiter) = pending.remove(&frame.request_id) {
            // The caller may have timed out and gone; its reply is then dropped.
            let _ = waiter.send(frame.reply);
        }
    }

    /// Marks the link broken and fails every call waiting on it.
    fn close(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::Release);
        pending.clear();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// How long the link has received nothing.
    fn silent_for(&self, now: Instant) -> Duration {
        let heard_at = *self.heard_at.lock().unwrap_or_else(|p| p.into_inner());
        now.saturating_duration_since(heard_at)
    }
}

/// Removes a call's waiter if the call is dropped (timed out) before its reply came.
struct PendingGuard<'a> {
    shared: &'a LinkShared,
    request_id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.forget(self.request_id);
    }
}

impl PeerConnection {
    fn new(addr: String, target: NodeId, identity: Arc<ClusterIdentity>) -> PeerConnection {
        PeerConnection {
            addr,
            target,
            identity,
            next_request_id: AtomicU64::new(1),
            link: tokio::sync::Mutex::new(None),
            contact: Arc::default(),
        }
    }

    /// Sends `rpc` and waits up to `ttl` for its reply, connecting first if need be.
    async fn call(
        &self,
        group: GroupId,
        rpc: RaftRequest,
        ttl: Duration,
    ) -> Result<RaftReply, CallError> {
        let deadline = tokio::time::Instant::now() + ttl;
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let frame = wire::encode(&RequestFrame {
            request_id,
            group,
            rpc,
        })
        .map_err(|e| match e {
            FrameError::TooLarge { .. } => CallError::TooLarge,
            e => CallError::Network(io::Error::other(e)),
        })?;
        self.contact.asked(Instant::now());
        // A connect to a partitioned peer hangs (its SYNs are dropped): it ends with the
        // call, and the next call tries again.
        let link = tokio::time::timeout_at(deadline, self.link())
            .await
            .map_err(|_| CallError::Timeout)??;
        let closed = || CallError::Network(io::Error::other("connection to peer closed"));
        let reply = link.shared.register(request_id).ok_or_else(closed)?;
        let _guard = PendingGuard {
            shared: &link.shared,
            request_id,
        };
        let exchange = async {
            link.frames.send(frame).await.map_err(|_| closed())?;
            reply.await.map_err(|_| closed())
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Ok(reply) => reply,
            Err(_) => {
                let silent = link.shared.silent_for(Instant::now());
                if silent >= LINK_STALL && !link.shared.is_closed() {
                    tracing::info!(
                        peer = %self.addr,
                        "raft connection silent for {} ms; reconnecting",
                        silent.as_millis()
                    );
                    link.shared.close();
                }
                Err(CallError::Timeout)
            }
        }
    }

    /// The live link, connecting first if there is none or it broke.
    async fn link(&self) -> Result<Link, CallError> {
        let mut slot = self.link.lock().await;
        if let Some(link) = slot.as_ref().filter(|l| !l.shared.is_closed()) {
            return Ok(link.clone());
        }
        *slot = None;
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(CallError::Unreachable)?;
        configure(&stream).map_err(CallError::Unreachable)?;
        let opened = tokio::time::timeout(HANDSHAKE_TIMEOUT, self.open(stream))
            .await
            .unwrap_or_else(|_| Err(HandshakeError::Io(io::Error::other("handshake timed out"))));
        let stream = match opened {
            Ok(stream) => stream,
            Err(e) => {
                match &e {
                    HandshakeError::Io(_) => tracing::debug!("{e}"),
                    _ => self.identity.log_refusal(&e),
                }
                return Err(CallError::Unreachable(io::Error::other(e.to_string())));
            }
        };
        let (reader, writer) = stream.into_halves();
        let link = Link::start(reader, writer, self.contact.clone());
        *slot = Some(link.clone());
        Ok(link)
    }
}

impl PeerConnection {
    /// TLS first with `--tls-cluster` (the peer's certificate checked against its IP
    /// address), then the handshake.
    async fn open(&self, stream: TcpStream) -> Result<RaftStream, HandshakeError> {
        let mut stream =
            match self.identity.tls().and_then(|tls| tls.connector()) {
                None => RaftStream::Plain(stream),
                Some(connector) => {
                    let ip = self
                        .addr
                        .parse::<std::net::SocketAddr>()
                        .map_err(|e| io::Error::other(format!("{}: {e}", self.addr)))?
                        .ip();
                    let name = rustls_pki_types::ServerName::IpAddress(ip.into());
                    let tls = connector.connect(name, stream).await.map_err(|e| {
                        HandshakeError::Refused {
                            peer: self.addr.clone(),
                            reason: format!("TLS: {e}"),
                        }
                    })?;
                    RaftStream::Tls(Box::new(tokio_rustls::TlsStream::Client(tls)))
                }
            };
        match &mut stream {
            RaftStream::Plain(s) => {
                handshake::dial(s, &self.identity, self.target, &self.addr).await?
            }
            RaftStream::Tls(s) => {
                handshake::dial(s, &self.identity, self.target, &self.addr).await?
            }
        }
        Ok(stream)
    }
}

/// One end of a Raft connection: plain TCP, or TLS over it (`--tls-cluster`).
pub(super) enum RaftStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

pub(super) type RaftRead = Box<dyn AsyncRead + Send + Unpin>;
pub(super) type RaftWrite = Box<dyn AsyncWrite + Send + Unpin>;

impl RaftStream {
    pub(super) fn into_halves(self) -> (RaftRead, RaftWrite) {
        match self {
            RaftStream::Plain(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w))
            }
            RaftStream::Tls(s) => {
                let (r, w) = tokio::io::split(s);
                (Box::new(r), Box::new(w))
            }
        }
    }
}

impl Link {
    fn start(mut reader: RaftRead, writer: RaftWrite, contact: Arc<Contact>) -> Link {
        let (frames, queue) = mpsc::channel(SEND_QUEUE_FRAMES);
        let shared = Arc::new(LinkShared {
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            heard_at: Mutex::new(Instant::now()),
            contact,
        });
        let writer_task = {
            let shared = shared.clone();
            tokio::spawn(async move {
                if let Err(e) = write_frames(writer, queue).await {
                    tracing::debug!("raft connection write failed: {e}");
                }
                shared.close();
            })
        };
        let reader_task = {
            let shared = shared.clone();
            tokio::spawn(async move {
                loop {
                    match wire::read_frame::<ResponseFrame, _>(&mut reader).await {
                        Ok(Some(frame)) => shared.resolve(frame),
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!("raft connection read failed: {e}");
                            break;
                        }
                    }
                }
                shared.close();
            })
        };
        Link {
            frames,
            shared,
            _tasks: Arc::new(LinkTasks([
                writer_task.abort_handle(),
                reader_task.abort_handle(),
            ])),
        }
    }
}

/// Sets a Raft connection's options, either end: no Nagle (small frames such as votes and
/// heartbeats must not wait), and keepalive probes and a user timeout, so that the kernel
/// drops a connection that a partition has stalled.
pub(super) fn configure(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let socket = socket2::SockRef::from(stream);
    socket.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL),
    )?;
    socket.set_tcp_user_timeout(Some(TCP_USER_TIMEOUT))
}

/// Writes queued frames in order; flushes whenever the queue is empty (TLS keeps records
/// it could not send at once; a plain socket has nothing to flush).
pub(super) async fn write_frames(
    mut writer: RaftWrite,
    mut queue: mpsc::Receiver<Vec<u8>>,
) -> io::Result<()> {
    while let Some(frame) = queue.recv().await {
        writer.write_all(&frame).await?;
        if queue.is_empty() {
            writer.flush().await?;
        }
    }
    writer.shutdown().await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio::net::TcpListener;

    use super::super::listener::serve_connection;

    use openraft::raft::VoteRequest;
    use openraft::Vote;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_rpcs_of_many_groups_share_one_connection_and_get_their_own_replies() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let server = {
            let accepted = accepted.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve_connection(
                        stream,
                        GroupRegistry::default(),
                        Arc::new(ClusterIdentity::new(2, None, Some("test".into()), None)),
                    ));
                }
            })
        };
        let transport = RaftTransport::new(Arc::new(ClusterIdentity::new(
            1,
            None,
            Some("test".into()),
            None,
        )));
        let node = NodeAddr {
            client_addr: String::new(),
            raft_addr: addr,
        };
        let mut calls = Vec::new();
        for group in 0..16 {
            let mut client = transport.for_group(group).new_client(2, &node).await;
            calls.push(tokio::spawn(async move {
                let rpc = VoteRequest::new(Vote::new(1, 1), None);
                let option = RPCOption::new(Duration::from_secs(5));
                (group, client.vote(rpc, option).await.unwrap_err())
            }));
        }
        for call in calls {
            let (group, err) = call.await.unwrap();
            assert!(matches!(err, RPCError::Unreachable(_)), "{err:?}");
            assert!(
                err.to_string()
                    .contains(&format!("does not run group {group} ")),
                "group {group}: {err}"
            );
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one connection per peer"
        );
        assert_eq!(transport.unanswered_for(2), Duration::ZERO);
        server.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_that_answers_nothing_is_dropped_and_made_anew() {
        // A peer that takes connections and never answers: a partition that drops packets.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let server = {
            let accepted = accepted.clone();
            tokio::spawn(async move {
                let mut held = Vec::new();
                while let Ok((stream, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    held.push(stream);
                }
            })
        };
        let transport = RaftTransport::new(Arc::new(ClusterIdentity::new(
            1,
            None,
            Some("test".into()),
            None,
        )));
        let node = NodeAddr {
            client_addr: String::new(),
            raft_addr: addr,
        };
        let mut client = transport.for_group(0).new_client(2, &node).await;
        let option = RPCOption::new(Duration::from_millis(100));
        let started = Instant::now();
        while started.elapsed() < LINK_STALL + Duration::from_millis(300) {
            let rpc = VoteRequest::new(Vote::new(1, 1), None);
            let err = client.vote(rpc, option.clone()).await.unwrap_err();
            assert!(matches!(err, RPCError::Timeout(_)), "{err:?}");
        }
        assert!(
            accepted.load(Ordering::SeqCst) >= 2,
            "the silent connection was dropped and made anew"
        );
        assert!(transport.unanswered_for(2) >= LINK_STALL);
        assert_eq!(transport.unanswered_for(3), Duration::ZERO, "never asked");
        server.abort();
    }
}
