//! A new cluster's data dirs made from a backup (`raftlock restore`).
//!
//! `raftlock restore FILE --data-dir D` checks the backup (header, checksum, a state that
//! decodes) and puts it in D as `restore.backup`, the seed. The node's first start then
//! makes the seed its group's snapshot, before Raft opens its storage: the state at log
//! index 1, with the members the node bootstraps (`--initial-cluster`, or the node
//! alone), and no log. Raft takes the snapshot as applied and committed, so the node
//! neither bootstraps nor replays anything, and the first leader's entries follow it.
//!
//! The snapshot's entry and the node's vote carry the old cluster's last term (the
//! state's epoch term), so the new cluster's first election is for a later term: client
//! sessions are named by terms (`state::session`), and a new leader in an earlier term
//! than the state's own would have its sessions taken for ones of a term long over (its
//! clients' holds detached) and its epoch op ignored.
//! Every node of the new cluster is restored from the same file and started with the same
//! `--initial-cluster`, so they all hold the same snapshot under the same log id.
//!
//! The state keeps its fencing counter (tokens go on from it) and its cluster time: a
//! lease or key TTL resumes with the time it had left at the backup, plus the new leader's
//! grace, as after any failover.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use openraft::storage::RaftLogStorage;
use openraft::{CommittedLeaderId, LogId, Membership, SnapshotMeta, StoredMembership, Vote};

use super::state_store::{snapshot_id, snapshot_path, SnapshotPayload, StoredSnapshot};
use super::{GroupId, LogStore, NodeAddr, NodeId};
use crate::backup_file;
use crate::config::Config;
use crate::state::Keyspace;

/// The group a backup restores: the only one until sharding arrives.
const RESTORED_GROUP: GroupId = 0;

/// What `prepare` put in the data dir.
pub struct Restored {
    /// Keys (locks included) not yet expired at the backup's cluster time.
    pub keys: usize,
    pub fence_counter: u64,
}

fn seed_path(data_dir: &Path) -> PathBuf {
    data_dir.join("restore.backup")
}

/// `raftlock restore`: checks `backup` (a backup file's bytes) and leaves it in
/// `data_dir` for the node's first start, its fencing counter raised to `fence_floor`.
/// Refuses a data dir that already holds a node's data.
pub fn prepare(
    data_dir: &Path,
    backup: &[u8],
    fence_floor: Option<u64>,
) -> anyhow::Result<Restored> {
    let body = backup_file::decode(backup)?;
    let mut keyspace =
        Keyspace::from_snapshot(body).context("the state in the backup cannot be read")?;
    for held in ["db", "snapshots", "restore.backup"] {
        let path = data_dir.join(held);
        if path.exists() {
            bail!(
                "{} already exists: restore into a new, empty data dir",
                path.display()
            );
        }
    }
    if let Some(floor) = fence_floor {
        keyspace.raise_fence_counter(floor);
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let seed = backup_file::encode(&keyspace.to_snapshot());
    let path = seed_path(data_dir);
    backup_file::write_atomically(&path, &seed)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Restored {
        keys: keyspace.key_count(0),
        fence_counter: keyspace.fence_counter(),
    })
}

/// At start-up, before the state machine store opens: a seed left by `prepare` becomes
/// the group's snapshot if the node has no log, vote nor snapshot yet, and is removed.
pub(super) async fn seed_snapshot(
    config: &Config,
    group: GroupId,
    log_store: &mut LogStore,
) -> anyhow::Result<()> {
    let seed = seed_path(&config.data_dir);
    if group != RESTORED_GROUP || !seed.exists() {
        return Ok(());
    }
    let snapshot = snapshot_path(&config.data_dir, group);
    if !snapshot.exists() {
        if log_store.get_log_state().await?.last_log_id.is_some() {
            bail!(
                "{} holds a backup to restore, but this node has a Raft log already; remove one of them",
                seed.display()
            );
        }
        let Some(members) = config.bootstrap_members() else {
            bail!("a restored data dir starts a new cluster: start it with --initial-cluster (the same on every node) or alone, not with --join");
        };
        let members: BTreeMap<NodeId, NodeAddr> = members
            .iter()
            .map(|(id, member)| (*id, NodeAddr::from(member)))
            .collect();
        let bytes = std::fs::read(&seed).with_context(|| format!("reading {}", seed.display()))?;
        let body =
            backup_file::decode(&bytes).with_context(|| format!("reading {}", seed.display()))?;
        let term = Keyspace::from_snapshot(body)
            .context("the state in the backup cannot be read")?
            .epoch_term();
        let stored = restored_snapshot(group, term, body, members)?;
        std::fs::create_dir_all(snapshot.parent().expect("a snapshot file has a directory"))?;
        // The vote first: a crash before the snapshot is written leaves the seed to be
        // used again (a vote without a log or snapshot only raises the next term).
        log_store
            .save_vote(&Vote::new(term, 0))
            .await
            .context("storing the restored term")?;
        backup_file::write_atomically(&snapshot, &bincode::serialize(&stored)?)
            .with_context(|| format!("writing {}", snapshot.display()))?;
        tracing::info!(members = ?stored.meta.last_membership.membership(), "restored the state from a backup");
    }
    std::fs::remove_file(&seed).with_context(|| format!("removing {}", seed.display()))?;
    Ok(())
}

/// The snapshot of a restored state: `body` at log index 1 of `term`, `members` voting.
fn restored_snapshot(
    group: GroupId,
    term: u64,
    body: &[u8],
    members: BTreeMap<NodeId, NodeAddr>,
) -> anyhow::Result<StoredSnapshot> {
    let log_id = LogId::new(CommittedLeaderId::new(term, 0), 1);
    let voters: BTreeSet<NodeId> = members.keys().copied().collect();
    let membership = StoredMembership::new(Some(log_id), Membership::new(vec![voters], members));
    let payload = SnapshotPayload {
        last_applied: Some(log_id),
        last_membership: membership.clone(),
        keyspace: body.to_vec(),
    };
    Ok(StoredSnapshot {
        meta: SnapshotMeta {
            last_log_id: Some(log_id),
            last_membership: membership,
            snapshot_id: snapshot_id(group, Some(log_id)),
        },
        data: bincode::serialize(&payload)?,
    })
}
