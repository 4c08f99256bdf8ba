//! Raft: openraft type config, fjall log and state stores, network, snapshots.
//!
//! One fjall `Database` per process holds every Raft group, and one TCP connection per
//! peer node carries every group's RPCs; the group id is in each storage key and in each
//! RPC frame. Only group 0 runs for now.

pub(crate) mod cluster_id;
pub(crate) mod format;
mod group;
pub(crate) mod handshake;
mod keys;
mod listener;
mod log_store;
mod network;
pub(crate) mod restore;
mod state_store;
pub(crate) mod wire;

#[cfg(test)]
mod tests;

use crate::state::notify::NotifyFlags;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use openraft::error::{InitializeError, RaftError};
use openraft::SnapshotPolicy;
use serde::{Deserialize, Serialize};

pub use group::{
    BarrierError, CommitError, GroupStatus, KnownLeader, LeaderWatch, MembershipError, RaftGroup,
    Role,
};
pub use handshake::{ClusterIdentity, RaftTls};
pub use listener::start_raft_listener;
pub use log_store::LogStore;
pub use network::RaftTransport;
pub use state_store::{EventSink, StateMachineStore};

use crate::config::{snapshot_pace, storage_memory, Config, Member};
use crate::reply::Reply;
use crate::state::Batch;

openraft::declare_raft_types!(
    /// openraft's types for raftlock: an entry carries a `Batch` of client commands and
    /// applying it yields one `Reply` per command.
    pub TypeConfig:
        D = Batch,
        R = Vec<Reply>,
        NodeId = u64,
        Node = NodeAddr,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
/// Identifies one Raft group (a shard) of the process.
pub type GroupId = u64;

/// Where a member serves clients and Raft RPCs; stored in the membership entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddr {
    pub client_addr: String,
    pub raft_addr: String,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.client_addr, self.raft_addr)
    }
}

impl From<&Member> for NodeAddr {
    fn from(member: &Member) -> NodeAddr {
        NodeAddr {
            client_addr: member.client_addr.to_string(),
            raft_addr: member.raft_addr.to_string(),
        }
    }
}

/// Opens (or creates) the process's one fjall database, in `data_dir/db`.
pub fn open_database(data_dir: &Path) -> anyhow::Result<fjall::Database> {
    let path = data_dir.join("db");
    std::fs::create_dir_all(&path)
        .with_context(|| format!("creating data directory {}", path.display()))?;
    let db = fjall::Database::builder(&path)
        .cache_size(storage_memory::CACHE_BYTES)
        .open()
        .with_context(|| format!("opening the database in {}", path.display()))?;
    format::check_data_format(&db).with_context(|| format!("in {}", data_dir.display()))?;
    Ok(db)
}

/// How the state keyspace is created: memtables bounded by `storage_memory::MEMTABLE_BYTES`.
fn keyspace_options() -> fjall::KeyspaceCreateOptions {
    fjall::KeyspaceCreateOptions::default().max_memtable_size(storage_memory::MEMTABLE_BYTES)
}

/// How the Raft log's keyspace is created: memtables bounded by
/// `storage_memory::LOG_MEMTABLE_BYTES`.
fn log_keyspace_options() -> fjall::KeyspaceCreateOptions {
    fjall::KeyspaceCreateOptions::default().max_memtable_size(storage_memory::LOG_MEMTABLE_BYTES)
}

/// Starts group `group` of this node from its storage in `db`, registers it with the
/// transport so peers' RPCs reach it, and bootstraps the cluster from
/// `config.bootstrap_members()` if this node has never voted nor logged in this group.
/// On a restart it recovers from `db` and does not bootstrap again. A node started with
/// `--join` bootstraps nothing: it waits for a leader to add it.
pub async fn start_group(
    config: &Config,
    db: &fjall::Database,
    group: GroupId,
    transport: &RaftTransport,
    on_events: EventSink,
    notify: NotifyFlags,
) -> anyhow::Result<RaftGroup> {
    let raft_config = Arc::new(raft_config(config, group)?);
    let mut log_store = LogStore::open(db, group)?;
    restore::seed_snapshot(config, group, &mut log_store).await?;
    let fsync_on_thread = log_store.fsync_on_thread();
    let pace = log_store.pace();
    let state_machine = StateMachineStore::open(db, &config.data_dir, group)?
        .with_event_sink(on_events)
        .with_pace(pace.clone())
        .with_replay_window_ms(config.redlock_replay_window_ms)
        .with_notify(notify);
    let state = state_machine.keyspace();
    let applied = state_machine.subscribe_applied();
    // A node restored from a backup has a state and its members already.
    let fresh = log_store.is_fresh().await? && !state_machine.has_state();

    let raft = openraft::Raft::new(
        config.id,
        raft_config,
        transport.for_group(group),
        log_store,
        state_machine,
    )
    .await?;
    transport.groups().insert(group, raft.clone());
    tokio::spawn(switch_fsync_mode(raft.server_metrics(), fsync_on_thread));
    tokio::spawn(stop_when_raft_fails(raft.metrics()));
    tokio::spawn(snapshot_by_log_growth(raft.clone(), pace));

    if let Some(members) = config.bootstrap_members().filter(|_| fresh) {
        let members: BTreeMap<NodeId, NodeAddr> = members
            .iter()
            .map(|(id, member)| (*id, NodeAddr::from(member)))
            .collect();
        match raft.initialize(members).await {
            Ok(()) => {}
            // A peer's leader reached this node first: it is a member already.
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
            Err(e) => return Err(e).context("bootstrapping the cluster"),
        }
    }
    Ok(RaftGroup {
        id: group,
        raft,
        state,
        applied,
        transport: transport.clone(),
    })
}

/// Keeps the log store's fsync on its flusher thread exactly while this node leads other
/// members (`log_store` says why). Server metrics change only with the vote, the role or
/// the membership, not with every entry.
async fn switch_fsync_mode(
    mut metrics: tokio::sync::watch::Receiver<
        openraft::metrics::RaftServerMetrics<NodeId, NodeAddr>,
    >,
    fsync_on_thread: Arc<std::sync::atomic::AtomicBool>,
) {
    loop {
        let leads_peers = {
            let m = metrics.borrow_and_update();
            m.state == openraft::ServerState::Leader
                && m.membership_config.membership().nodes().count() > 1
        };
        fsync_on_thread.store(leads_peers, std::sync::atomic::Ordering::Relaxed);
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// Ends the process when openraft's core stops on an error (a snapshot that could not be
/// written to a full disk, say): a node whose Raft has quit would otherwise keep its
/// client port open and refuse everything forever. Stopped, it is restarted by its
/// supervisor and recovers from what its disk holds, like after any storage failure.
async fn stop_when_raft_fails(
    mut metrics: tokio::sync::watch::Receiver<openraft::RaftMetrics<NodeId, NodeAddr>>,
) {
    loop {
        if let Err(fatal) = &metrics.borrow_and_update().running_state {
            match fatal {
                openraft::error::Fatal::Stopped => return,
                fatal => log_store::stop_on_storage_failure("Raft", fatal),
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

/// The log's growth and the last snapshot's size, as the log and state stores see them.
#[derive(Debug, Default)]
pub struct LogPace {
    /// Bytes of entries appended since the node started (as encoded in the log).
    appended_bytes: std::sync::atomic::AtomicU64,
    /// The size of the last snapshot built, installed or restored, in bytes.
    snapshot_bytes: std::sync::atomic::AtomicU64,
}

impl LogPace {
    pub fn appended(&self, bytes: usize) {
        self.appended_bytes
            .fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn snapshot_built(&self, bytes: usize) {
        self.snapshot_bytes
            .store(bytes as u64, std::sync::atomic::Ordering::Relaxed);
    }

    fn appended_bytes(&self) -> u64 {
        self.appended_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn snapshot_bytes(&self) -> usize {
        self.snapshot_bytes
            .load(std::sync::atomic::Ordering::Relaxed) as usize
    }

    /// How many bytes the log grows by between two snapshots, or `None` when the state is
    /// too large to be paced (`config::snapshot_pace`).
    fn threshold(&self) -> Option<u64> {
        let snapshot = self.snapshot_bytes() as u64;
        let threshold = snapshot_pace::LOG_BYTES
            .max(snapshot.saturating_mul(snapshot_pace::SNAPSHOT_SIZE_FACTOR));
        (threshold <= snapshot_pace::MAX_PACED_LOG_BYTES).then_some(threshold)
    }
}

/// Asks openraft for a snapshot whenever the log has grown by `LogPace::threshold` since
/// the last one (openraft's own policy counts entries, whatever their size). Ends with the
/// group.
async fn snapshot_by_log_growth(raft: openraft::Raft<TypeConfig>, pace: Arc<LogPace>) {
    let metrics = raft.metrics();
    let mut seen = metrics.borrow().snapshot;
    let mut since = pace.appended_bytes();
    // A snapshot this task asked for and has not seen stored yet.
    let mut asked = false;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(
        snapshot_pace::CHECK_INTERVAL_MS,
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // The group shut down: its metrics' sender is gone.
        if metrics.has_changed().is_err() {
            return;
        }
        let snapshot = metrics.borrow().snapshot;
        if snapshot != seen {
            seen = snapshot;
            // One built by openraft's own policy, or installed: count from it. The one
            // asked for was counted from when it was asked for.
            if !asked {
                since = pace.appended_bytes();
            }
            asked = false;
        }
        let grown = pace.appended_bytes().saturating_sub(since);
        if pace.threshold().is_none_or(|threshold| grown < threshold) {
            continue;
        }
        // A snapshot already being built makes this a no-op; it is counted as asked for.
        if raft.trigger().snapshot().await.is_err() {
            return;
        }
        since = pace.appended_bytes();
        asked = true;
    }
}

fn raft_config(config: &Config, group: GroupId) -> anyhow::Result<openraft::Config> {
    openraft::Config {
        cluster_name: format!("raftlock-group-{group}"),
        heartbeat_interval: config.heartbeat_interval_ms,
        commit_notify_delay: config.commit_notify_delay_ms,
        election_timeout_min: config.election_timeout_min_ms,
        election_timeout_max: config.election_timeout_max_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every_entries),
        max_in_snapshot_log_to_keep: config.log_entries_kept_after_snapshot,
        ..openraft::Config::default()
    }
    .validate()
    .context("invalid Raft configuration")
}

#[cfg(test)]
mod pace_tests {
    use super::*;

    #[test]
    fn the_pace_is_the_floor_or_a_multiple_of_a_small_snapshot_and_off_for_a_large_one() {
        let pace = LogPace::default();
        assert_eq!(pace.threshold(), Some(snapshot_pace::LOG_BYTES));
        pace.snapshot_built(1024);
        assert_eq!(pace.threshold(), Some(snapshot_pace::LOG_BYTES));
        let paced =
            (snapshot_pace::MAX_PACED_LOG_BYTES / snapshot_pace::SNAPSHOT_SIZE_FACTOR) as usize;
        pace.snapshot_built(paced);
        assert_eq!(pace.threshold(), Some(snapshot_pace::MAX_PACED_LOG_BYTES));
        pace.snapshot_built(paced + 1);
        assert_eq!(pace.threshold(), None);
        pace.appended(5);
        pace.appended(7);
        assert_eq!(pace.appended_bytes(), 12);
    }
}
