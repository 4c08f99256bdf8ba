//! Wiring: the node's listeners, the proposer, leadership (with the expiry tick), and
//! dispatch of client connections; the metrics and live-page listener (`metrics`).

mod acl;
mod backup;
mod blocking_lock;
mod blocking_pop;
pub(crate) mod builtin;
mod clients;
mod clock;
mod cluster;
mod conn;
mod disk;
mod dispatch;
mod forward;
mod info;
mod keepalive;
mod leadership;
mod list_waiters;
mod lock_waiters;
mod memory_guard;
mod metrics;
mod multi;
mod pending;
mod proposer;
mod protected;
mod routing;
mod sentinel;
mod session;
mod shutdown;
mod slowlog;
mod subscribe_commands;
mod subscribers;
pub(crate) mod tls;
mod wire;

use crate::state::notify::NotifyFlags;
use memory_guard::MemoryGuard;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::config::Config;
use crate::raft::{self, BarrierError, KnownLeader, RaftGroup};
use crate::reply::Reply;

use clients::Clients;
pub use clock::wall_clock_ms;
use clock::ClusterClock;
use disk::DiskGuard;
use leadership::{Leadership, LeadershipLimits};
use list_waiters::ListWaiters;
use lock_waiters::LockWaiters;
use proposer::{Proposer, ProposerLimits};
pub use session::{Session, Step};
use subscribers::PubSub;
use tls::TlsContext;

/// The only Raft group until sharding arrives.
const DEFAULT_GROUP: raft::GroupId = 0;

/// How often a command waiting for a leader looks whether this node is cut off.
const CUT_OFF_POLL: Duration = Duration::from_millis(50);

const NO_LEADER: &str = "NOLEADER no Raft leader is known for this shard; try again";
const CUT_OFF: &str =
    "NOLEADER this node cannot reach a majority of the cluster (partitioned?); try another node";

#[derive(Default)]
pub struct Stats {
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub commands_processed: AtomicU64,
    pub protocol_errors: AtomicU64,
}

/// What every connection of this node shares.
pub struct Node {
    pub config: Config,
    pub group: RaftGroup,
    proposer: Proposer,
    /// The new leader's start, the leader's wall clock, the expiry tick (`leadership`).
    leadership: Arc<Leadership>,
    /// Cluster time, stamped on entries by the proposer and read by reads (`clock`).
    clock: Arc<ClusterClock>,
    /// The data dir's free space (`disk`).
    disk: Arc<DiskGuard>,
    clients: Clients,
    lock_waiters: Arc<LockWaiters>,
    list_waiters: Arc<ListWaiters>,
    pubsub: Arc<PubSub>,
    pub stats: Stats,
    /// The ACL LOG and `requirepass`'s hash (`acl`).
    acl: acl::NodeAcl,
    pub started_at: Instant,
    pub run_id: String,
    /// The TLS port's certificates and the relays' trust, when TLS is configured.
    tls: Option<Arc<TlsContext>>,
    /// Counts RAFT.HOLD-ELECTIONS calls, so a hold's timer resumes elections only if no
    /// later call changed the hold.
    election_holds: std::sync::atomic::AtomicU64,
    /// Notified by SHUTDOWN: the node stops as on SIGTERM (`shutdown`).
    shutdown_requested: tokio::sync::Notify,
    /// Recent slow requests (SLOWLOG).
    slowlog: slowlog::SlowLog,
    /// `protected-mode` (`protected`).
    protected: protected::ProtectedMode,
    /// `maxmemory` (`memory_guard`).
    memory: Arc<MemoryGuard>,
}

impl Node {
    /// Raft's read barrier: returns once this node is the leader, has applied
    /// everything committed before the call, and has applied its own term's expiry hold
    /// (so a read never shows expired what the next write would not).
    async fn read_barrier(&self) -> Result<(), Reply> {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.leader_wait_ms);
        loop {
            match self.group.read_barrier().await {
                Ok(()) if self.leadership.hold_applied() => return Ok(()),
                Ok(()) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(Reply::error(
                            "TRYAGAIN the new leader has not committed its first entry yet; try again",
                        ));
                    }
                    self.proposer.tick().await;
                    let mut applied = self.group.applied();
                    let _ = tokio::time::timeout_at(deadline, applied.changed()).await;
                }
                Err(BarrierError::NotLeader) => {
                    self.wait_for_leader(deadline).await?;
                }
                // No quorum confirmed this node still leads (it may be cut off): never
                // a stale read; the client retries.
                Err(BarrierError::NoQuorum) => {
                    return Err(Reply::error(
                        "TRYAGAIN this node could not confirm it still leads (no quorum reachable); retry",
                    ))
                }
            }
        }
    }
}

/// Where a data command runs.
pub(super) enum Route {
    /// This node leads the group.
    Local,
    /// Another node leads: relay to its client address.
    Leader(std::net::SocketAddr),
}

impl Node {
    /// The TLS connector for relays to other nodes' client ports (`--tls-replication`);
    /// None: relays speak plain TCP.
    fn relay_tls(&self) -> Option<tokio_rustls::TlsConnector> {
        self.tls
            .as_ref()
            .filter(|_| self.config.tls.replication)
            .and_then(|tls| tls.connector())
    }

    /// Whether this node is cut off from a majority of the voters: requests to too many of
    /// them have gone unanswered for `election_timeout_min_ms` (as long as a vote may
    /// take). A peer this node has not asked anything counts as reachable: a follower
    /// asks its peers nothing while it hears from its leader.
    fn cut_off(&self) -> bool {
        let voters = self.group.status().voters;
        let patience = Duration::from_millis(self.config.election_timeout_min_ms);
        let reachable = voters
            .iter()
            .filter(|id| **id == self.config.id || self.group.unanswered_for(**id) < patience)
            .count();
        !voters.is_empty() && reachable * 2 <= voters.len()
    }

    /// Waits until a leader is known (and a moment more, for it to commit its first
    /// entry): NOLEADER at `deadline`, or at once when no leader is known and this node is
    /// cut off from a majority (it will see none before the partition heals).
    async fn wait_for_leader(&self, deadline: tokio::time::Instant) -> Result<(), Reply> {
        let known = || self.group.leader().is_some();
        loop {
            if !known() && self.cut_off() {
                return Err(Reply::error(CUT_OFF));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(Reply::error(NO_LEADER));
            }
            self.group
                .wait_for_leader((now + CUT_OFF_POLL).min(deadline))
                .await;
            if known() {
                return Ok(());
            }
        }
    }

    /// This node if it leads; the leader's client address if another node does; after
    /// waiting up to `leader_wait_ms` for an election, NOLEADER (at once if this node is
    /// cut off from a majority).
    async fn route(&self) -> Result<Route, Reply> {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.leader_wait_ms);
        loop {
            let target = match self.group.known_leader() {
                Some(KnownLeader::This) => Some(Route::Local),
                Some(KnownLeader::Other(addr)) => addr.map(Route::Leader),
                None => None,
            };
            if let Some(route) = target {
                return Ok(route);
            }
            self.wait_for_leader(deadline).await?;
        }
    }
}

/// Runs a node until it is asked to stop (SIGTERM, SIGINT, SHUTDOWN), then stops it
/// gracefully (`shutdown`).
pub async fn run(config: Config) -> anyhow::Result<()> {
    config.validate()?;
    // As Redis: an ACL file that cannot be read or parsed stops the start.
    let aclfile = acl::read_file_at_start(&config)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let cluster_id = raft::cluster_id::resolve(&config)?;
    let db = raft::open_database(&config.data_dir)?;
    let tls = TlsContext::start(&config.tls)?;
    if let Some(tls) = &tls {
        tls::reload_on_sighup(tls.clone())?;
    }
    let client_listener = match config.plain_port {
        true => Some(
            TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen for clients on {}", config.listen))?,
        ),
        false => None,
    };
    let tls_listener = match config.tls_listen() {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for TLS clients on {addr}"))?,
        ),
        None => None,
    };
    if config.cluster_secret.is_none() && !config.tls.cluster {
        tracing::warn!(
            raft = %config.raft_listen,
            "the Raft port is unauthenticated: anyone who reaches it can act as a member; give every node --cluster-secret (docs/OPERATIONS.md, Security)"
        );
    }
    let mut identity = raft::ClusterIdentity::new(
        config.id,
        config.cluster_secret.as_deref(),
        cluster_id,
        Some(config.data_dir.clone()),
    );
    if let Some(tls) = tls.as_ref().filter(|_| config.tls.cluster) {
        identity = identity.with_tls(tls.clone());
    }
    let identity = Arc::new(identity);
    let transport = raft::RaftTransport::new(identity);
    raft::start_raft_listener(&config, transport.groups(), transport.identity()).await?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(metrics::bind(addr).await?),
        None => None,
    };
    let lock_waiters = Arc::new(LockWaiters::default());
    let list_waiters = Arc::new(ListWaiters::default());
    let notify = NotifyFlags::default();
    notify.set(
        crate::state::notify::parse_classes(config.notify_keyspace_events.as_bytes()).unwrap_or(0),
    );
    let pubsub = Arc::new(PubSub::new(
        config.pubsub_output_limit_bytes,
        notify.clone(),
    ));
    let (lock_sink, list_sink, pubsub_sink) =
        (lock_waiters.clone(), list_waiters.clone(), pubsub.clone());
    let group = raft::start_group(
        &config,
        &db,
        DEFAULT_GROUP,
        &transport,
        Arc::new(move |events| {
            list_sink.deliver(&events);
            pubsub_sink.deliver(&events);
            lock_sink.deliver(events);
        }),
        notify,
    )
    .await?;
    // Restoring the keyspace grew and dropped large buffers (the key table doubles as it
    // fills); give their pages back now rather than after the allocator's next purge.
    crate::memory::return_freed_memory();

    let clock = Arc::new(ClusterClock::default());
    let leadership = Arc::new(Leadership::new(
        group.clone(),
        clock.clone(),
        LeadershipLimits {
            leader_wait: Duration::from_millis(config.leader_wait_ms),
            epoch_grace_ms: config.election_timeout_max_ms,
            node_id: config.id,
            wall_offset_tolerance_ms: config.wall_offset_tolerance_ms,
        },
    ));
    let disk = DiskGuard::start(
        &config.data_dir,
        config.min_free_disk_bytes,
        Duration::from_millis(config.disk_check_interval_ms),
    );
    let memory = MemoryGuard::start(config.maxmemory);
    let proposer = Proposer::start(
        group.clone(),
        leadership.clone(),
        disk.clone(),
        memory.clone(),
        config.proposal_queue_len,
        ProposerLimits {
            max_ops_per_entry: config.max_ops_per_entry,
            max_inflight_entries: config.max_inflight_entries,
            linger_yields: config.proposal_linger_yields,
            leader_wait: Duration::from_millis(config.leader_wait_ms),
            commit_timeout: Duration::from_millis(config.commit_timeout_ms),
        },
    );
    let node = Arc::new(Node {
        group,
        proposer,
        leadership,
        clock,
        disk,
        clients: Clients::default(),
        lock_waiters,
        list_waiters,
        pubsub,
        stats: Stats::default(),
        acl: acl::NodeAcl::new(config.requirepass.as_deref()),
        started_at: Instant::now(),
        election_holds: Default::default(),
        shutdown_requested: tokio::sync::Notify::new(),
        slowlog: slowlog::SlowLog::new(&config),
        protected: protected::ProtectedMode::new(config.protected_mode),
        memory,
        tls,
        run_id: format!(
            "{:040x}",
            wall_clock_ms() as u128 * 1_000_003 + std::process::id() as u128
        ),
        config,
    });
    tokio::spawn(leadership::expiry_tick(node.clone()));
    if let Some(listener) = metrics_listener {
        metrics::start(node.clone(), listener);
    }
    if let Some(text) = aclfile {
        tokio::spawn(acl::seed_from_file(node.clone(), text));
    }
    tracing::info!(
        listen = %node.config.listen,
        plain = node.config.plain_port,
        tls = ?node.config.tls_listen(),
        raft = %node.config.raft_listen,
        "raftlock ready"
    );
    let serve_port = |listener: Option<TcpListener>, port: ClientPort| {
        let node = node.clone();
        async move {
            match listener {
                Some(listener) => accept_loop(node, listener, port).await,
                None => std::future::pending().await,
            }
        }
    };
    // Leaving the select drops the accept loops, and with them the client listeners.
    let reason = tokio::select! {
        served = serve_port(client_listener, ClientPort::Plain) => return served,
        served = serve_port(tls_listener, ClientPort::Tls) => return served,
        reason = shutdown::requested(&node) => reason?,
    };
    shutdown::stop(node, db, reason).await;
    Ok(())
}

/// What a listener's connections speak.
#[derive(Clone, Copy)]
enum ClientPort {
    Plain,
    Tls,
}

/// Serves one accepted connection: the TLS handshake first on the TLS port.
async fn serve_connection(
    node: Arc<Node>,
    stream: TcpStream,
    client: clients::ClientHandle,
    port: ClientPort,
) {
    let wire = match port {
        ClientPort::Plain => wire::Wire::new(stream),
        ClientPort::Tls => {
            let addr = addr_text(stream.peer_addr().ok());
            match accept_tls(&node, stream).await {
                Ok(wire) => wire,
                Err(why) => {
                    // Redis's words for a failed TLS accept.
                    tracing::info!("Error accepting a client connection: {why} (addr={addr})");
                    node.clients
                        .unregister(client.lock().expect("client lock").id);
                    return;
                }
            }
        }
    };
    conn::serve(node, wire, client).await;
}

/// The TLS handshake of a client, within `tls_limits::HANDSHAKE_TIMEOUT_MS`.
async fn accept_tls(node: &Node, stream: TcpStream) -> Result<wire::Wire, String> {
    let _ = stream.set_nodelay(true);
    let acceptor = node
        .tls
        .as_ref()
        .and_then(|tls| tls.acceptor())
        .ok_or("no TLS certificate is configured")?;
    let timeout = Duration::from_millis(crate::config::tls_limits::HANDSHAKE_TIMEOUT_MS);
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Ok(wire::Wire::tls(stream)),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("TLS handshake timed out".to_string()),
    }
}

async fn accept_loop(
    node: Arc<Node>,
    listener: TcpListener,
    port: ClientPort,
) -> anyhow::Result<()> {
    loop {
        let (mut stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        node.stats
            .connections_received
            .fetch_add(1, Ordering::Relaxed);
        keepalive::keep_alive(&stream, node.config.keepalive());
        let laddr = stream.local_addr().unwrap_or(node.config.listen);
        match node.clients.register(addr, laddr, node.config.max_clients) {
            Some(client) => {
                tokio::spawn(serve_connection(node.clone(), stream, client, port));
            }
            None => {
                node.stats
                    .rejected_connections
                    .fetch_add(1, Ordering::Relaxed);
                // A TLS client could not read a plain error: it is just closed.
                if let ClientPort::Plain = port {
                    tokio::spawn(async move {
                        let _ = stream
                            .write_all(b"-ERR max number of clients reached\r\n")
                            .await;
                    });
                }
            }
        }
    }
}

fn addr_text(addr: Option<std::net::SocketAddr>) -> String {
    addr.map_or_else(|| "?".to_string(), |a| a.to_string())
}
