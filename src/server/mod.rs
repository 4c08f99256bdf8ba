//! Wiring: the node's listeners, the proposer, the expiry tick, and dispatch of client
//! connections.

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
mod list_waiters;
mod multi;
mod pending;
mod proposer;
mod pubsub;
mod routing;
mod sentinel;
mod session;
mod subscribe;
mod waiters;
mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::raft::{self, RaftGroup};
use crate::reply::Reply;
use crate::state::Keyspace;

use clients::Clients;
pub use clock::wall_clock_ms;
use clock::ClusterClock;
use disk::DiskGuard;
use list_waiters::ListWaiters;
use proposer::{Proposer, ProposerLimits};
use pubsub::PubSub;
pub use session::{Session, Step};
use waiters::LockWaiters;

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
    /// Cluster time, stamped on entries by the proposer and read by reads (`clock`).
    clock: Arc<ClusterClock>,
    /// The data dir's free space (`disk`).
    disk: Arc<DiskGuard>,
    clients: Clients,
    lock_waiters: Arc<LockWaiters>,
    list_waiters: Arc<ListWaiters>,
    pubsub: Arc<PubSub>,
    pub stats: Stats,
    pub started_at: Instant,
    pub run_id: String,
    /// Counts RAFT.HOLD-ELECTIONS calls, so a hold's timer resumes elections only if no
    /// later call changed the hold.
    election_holds: std::sync::atomic::AtomicU64,
}

impl Node {
    /// Raft's read barrier: returns once this node is the leader, has applied
    /// everything committed before the call, and has applied its own term's expiry hold
    /// (so a read never shows expired what the next write would not).
    async fn read_barrier(&self) -> Result<(), Reply> {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.leader_wait_ms);
        loop {
            match self.group.raft.ensure_linearizable().await {
                Ok(_) if self.hold_applied() => return Ok(()),
                Ok(_) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(Reply::error(
                            "TRYAGAIN the new leader has not committed its first entry yet; try again",
                        ));
                    }
                    self.proposer.tick().await;
                    let mut applied = self.group.applied.clone();
                    let _ = tokio::time::timeout_at(deadline, applied.changed()).await;
                }
                Err(err) if err.forward_to_leader().is_some() => {
                    self.wait_for_leader(deadline).await?;
                }
                // No quorum confirmed this node still leads (it may be cut off): never
                // a stale read; the client retries.
                Err(_) => {
                    return Err(Reply::error(
                        "TRYAGAIN this node could not confirm it still leads (no quorum reachable); retry",
                    ))
                }
            }
        }
    }
}

impl Node {
    /// Whether the state holds the expiry hold of this leader's term (see `state::hold`).
    fn hold_applied(&self) -> bool {
        let term = self.group.raft.metrics().borrow().current_term;
        let ks = self.group.state.read().expect("state lock");
        ks.expiry_hold().term >= term
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
    /// Whether this node is cut off from a majority of the voters: requests to too many of
    /// them have gone unanswered for `election_timeout_min_ms` (as long as a vote may
    /// take). A peer this node has not asked anything counts as reachable: a follower
    /// asks its peers nothing while it hears from its leader.
    fn cut_off(&self) -> bool {
        let metrics = self.group.raft.metrics();
        let m = metrics.borrow();
        let voters: Vec<raft::NodeId> = m.membership_config.membership().voter_ids().collect();
        let patience = Duration::from_millis(self.config.election_timeout_min_ms);
        let reachable = voters
            .iter()
            .filter(|id| {
                **id == self.config.id || self.group.transport.unanswered_for(**id) < patience
            })
            .count();
        !voters.is_empty() && reachable * 2 <= voters.len()
    }

    /// Waits until a leader is known (and a moment more, for it to commit its first
    /// entry): NOLEADER at `deadline`, or at once when no leader is known and this node is
    /// cut off from a majority (it will see none before the partition heals).
    async fn wait_for_leader(&self, deadline: tokio::time::Instant) -> Result<(), Reply> {
        let known = || self.group.raft.metrics().borrow().current_leader.is_some();
        loop {
            if !known() && self.cut_off() {
                return Err(Reply::error(CUT_OFF));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(Reply::error(NO_LEADER));
            }
            wait_for_leader(&self.group.raft, (now + CUT_OFF_POLL).min(deadline)).await;
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
            let target = {
                let metrics = self.group.raft.metrics();
                let m = metrics.borrow();
                match m.current_leader {
                    Some(leader) if leader == self.config.id => Some(Route::Local),
                    Some(leader) => m
                        .membership_config
                        .membership()
                        .get_node(&leader)
                        .and_then(|n| n.client_addr.parse().ok())
                        .map(Route::Leader),
                    None => None,
                }
            };
            if let Some(route) = target {
                return Ok(route);
            }
            self.wait_for_leader(deadline).await?;
        }
    }
}

impl Node {
    /// This node's cluster clock now: the leader's clock, never behind the last applied
    /// entry (on a node that does not lead, that entry's time).
    fn clock_ms(&self, ks: &Keyspace) -> u64 {
        let term = self.group.raft.metrics().borrow().current_term;
        self.clock.read_ms(term, ks.last_now_ms())
    }

    /// The cluster time a read of `ks` runs at: the clock, but short of the next deadline
    /// no committed entry has passed yet. A key, lease or wait then ends for readers
    /// exactly when an entry ends it, so no read ever sees an end that a crash could undo
    /// (a restarted or new leader continues from the last entry's time): nothing read as
    /// gone comes back. The leader commits that entry as the deadline passes
    /// (`expiry_tick`), so reads see it at most a commit later.
    fn read_time_ms(&self, ks: &Keyspace) -> u64 {
        let now_ms = self.clock_ms(ks);
        match ks.next_deadline_ms() {
            Some(due) if due <= now_ms => due.saturating_sub(1).max(ks.last_now_ms()),
            _ => now_ms,
        }
    }
}

/// Waits until the Raft metrics name some leader, or until `deadline`.
async fn wait_for_leader(raft: &openraft::Raft<raft::TypeConfig>, deadline: tokio::time::Instant) {
    let mut metrics = raft.metrics();
    let _ = tokio::time::timeout_at(deadline, async {
        loop {
            if metrics.borrow_and_update().current_leader.is_some() {
                // A leader exists; give it a moment to commit its first entry.
                tokio::time::sleep(Duration::from_millis(5)).await;
                return;
            }
            if metrics.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
}

/// Runs a node until the process ends.
pub async fn run(config: Config) -> anyhow::Result<()> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let db = raft::open_database(&config.data_dir)?;
    let client_listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen for clients on {}", config.listen))?;
    let transport = raft::RaftTransport::new(config.id);
    raft::start_raft_listener(&config, transport.groups()).await?;
    let lock_waiters = Arc::new(LockWaiters::default());
    let list_waiters = Arc::new(ListWaiters::default());
    let pubsub = Arc::new(PubSub::new(config.pubsub_output_limit_bytes));
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
    )
    .await?;
    // Restoring the keyspace grew and dropped large buffers (the key table doubles as it
    // fills); give their pages back now rather than after the allocator's next purge.
    crate::memory::return_freed_memory();

    let clock = Arc::new(ClusterClock::default());
    let disk = DiskGuard::start(
        &config.data_dir,
        config.min_free_disk_bytes,
        Duration::from_millis(config.disk_check_interval_ms),
    );
    let proposer = Proposer::start(
        group.clone(),
        clock.clone(),
        disk.clone(),
        config.proposal_queue_len,
        ProposerLimits {
            max_ops_per_entry: config.max_ops_per_entry,
            max_inflight_entries: config.max_inflight_entries,
            linger_yields: config.proposal_linger_yields,
            leader_wait: Duration::from_millis(config.leader_wait_ms),
            commit_timeout: Duration::from_millis(config.commit_timeout_ms),
            epoch_grace_ms: config.election_timeout_max_ms,
            node_id: config.id,
            wall_offset_tolerance_ms: config.wall_offset_tolerance_ms,
        },
    );
    let node = Arc::new(Node {
        group,
        proposer,
        clock,
        disk,
        clients: Clients::default(),
        lock_waiters,
        list_waiters,
        pubsub,
        stats: Stats::default(),
        started_at: Instant::now(),
        election_holds: Default::default(),
        run_id: format!(
            "{:040x}",
            wall_clock_ms() as u128 * 1_000_003 + std::process::id() as u128
        ),
        config,
    });
    tokio::spawn(expiry_tick(node.clone()));
    tracing::info!(listen = %node.config.listen, raft = %node.config.raft_listen, "raftlock ready");
    accept_loop(node, client_listener).await
}

async fn accept_loop(node: Arc<Node>, listener: TcpListener) -> anyhow::Result<()> {
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
                tokio::spawn(conn::serve(node.clone(), stream, client));
            }
            None => {
                node.stats
                    .rejected_connections
                    .fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let _ = stream
                        .write_all(b"-ERR max number of clients reached\r\n")
                        .await;
                });
            }
        }
    }
}

/// On the leader, proposes an empty entry when a key's deadline has passed, so expiry is
/// a committed change even when nothing else is written, and when it has just been
/// elected. It wakes at the next deadline (or every `expiry_tick_ms` at the latest), so
/// an end is committed about one commit after it is due.
async fn expiry_tick(node: Arc<Node>) {
    let max_wait = Duration::from_millis(node.config.expiry_tick_ms);
    loop {
        let (due, wait) = {
            let ks = node.group.state.read().expect("state lock");
            let now_ms = node.clock_ms(&ks);
            // While anything has a deadline, the leader also stamps an entry at least
            // every `time_checkpoint_ms`: a new leader continues from the last entry's
            // time, so this bounds how much later than due a failover makes a lease end.
            let checkpoint =
                now_ms.saturating_sub(ks.last_now_ms()) >= node.config.time_checkpoint_ms;
            match ks.next_deadline_ms() {
                Some(deadline) if deadline <= now_ms || checkpoint => (true, max_wait),
                Some(deadline) => (
                    false,
                    max_wait.min(Duration::from_millis(deadline - now_ms)),
                ),
                None => (false, max_wait),
            }
        };
        let (leading, term) = {
            let metrics = node.group.raft.metrics();
            let m = metrics.borrow();
            (m.current_leader == Some(node.config.id), m.current_term)
        };
        // A new leader proposes its first entry (its expiry hold, the start of its clock)
        // without waiting for a client write.
        if leading && (due || !node.hold_applied() || !node.clock.anchored_in(term)) {
            // Until the entry is applied, the same deadline would ask for another.
            let mut applied = node.group.applied.clone();
            applied.borrow_and_update();
            node.proposer.tick().await;
            let _ = tokio::time::timeout(max_wait, applied.changed()).await;
        } else {
            tokio::time::sleep(wait).await;
        }
    }
}
