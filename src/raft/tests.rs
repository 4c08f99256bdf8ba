//! Tests of the stores and of whole groups: openraft's storage suite, restart, snapshots,
//! and a three-node cluster over loopback TCP.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use openraft::network::{RaftNetwork, RaftNetworkFactory};
use openraft::storage::{RaftLogReader, RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, LogState, Membership, ServerState, StorageError,
};
use tempfile::TempDir;
use tokio::net::TcpListener;

use super::keys::{record_key, SNAPSHOT, STATE_KEYSPACE};
use super::listener::serve_raft;
use super::*;
use crate::config::Member;
use crate::reply::Reply;

const WAIT: Duration = Duration::from_secs(20);

struct FjallStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for FjallStoreBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = open_database(dir.path()).expect("database");
        // A group other than 0, so that a key missing its group prefix shows.
        let log = LogStore::open(&db, 7).expect("log store");
        let sm = StateMachineStore::open(&db, dir.path(), 7).expect("state machine store");
        Ok((dir, log, sm))
    }
}

#[test]
fn stores_pass_openraft_storage_suite() {
    Suite::test_all(FjallStoreBuilder).expect("storage suite");
}

fn batch(ops: &[&[&str]]) -> Batch {
    Batch {
        now_ms: 1_000,
        ops: ops
            .iter()
            .map(|op| {
                op.iter()
                    .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                    .collect()
            })
            .collect(),
    }
}

fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn node_config(data_dir: &Path, id: NodeId, raft_listen: SocketAddr) -> Config {
    Config {
        id,
        listen: "127.0.0.1:1".parse().expect("literal address"),
        raft_listen,
        data_dir: data_dir.to_path_buf(),
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        ..Config::default()
    }
}

/// Opens the database again once every handle of its previous opening is gone (the
/// Raft tasks and the fsync thread let go of theirs shortly after shutdown).
async fn reopen_database(data_dir: &Path) -> fjall::Database {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match open_database(data_dir) {
            Ok(db) => return db,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!("database still open: {e:#}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot reopen the database: {e:#}"),
        }
    }
}

/// The committed mark the log store keeps for re-applying entries at start-up.
async fn log_committed(db: &fjall::Database) -> Option<LogId<NodeId>> {
    let mut log = LogStore::open(db, 0).unwrap();
    log.read_committed().await.unwrap()
}

async fn wait_leader(group: &RaftGroup) {
    group
        .raft
        .wait(Some(WAIT))
        .state(ServerState::Leader, "single node becomes leader")
        .await
        .expect("leader");
}

async fn wait_applied(group: &mut RaftGroup, index: u64) {
    tokio::time::timeout(WAIT, group.applied.wait_for(|applied| *applied >= index))
        .await
        .expect("applied in time")
        .expect("state machine alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_recovers_applied_state_membership_and_log_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = node_config(dir.path(), 1, "127.0.0.1:9".parse().unwrap());
    let written = batch(&[&["set", "k", "v"]]);

    let db = open_database(dir.path()).unwrap();
    let (mut group, transport) = test_group(&config, &db).await;
    wait_leader(&group).await;
    let response = group.raft.client_write(written.clone()).await.unwrap();
    assert_eq!(response.data.len(), 1, "one reply per op");
    let index = response.log_id.index;
    wait_applied(&mut group, index).await;
    assert_eq!(*group.applied.borrow(), index);

    group.raft.shutdown().await.unwrap();
    drop((group, transport, db));

    let db = reopen_database(dir.path()).await;
    {
        // No snapshot was taken: the state machine opens empty, and the log holds
        // everything it must re-apply.
        let mut sm = StateMachineStore::open(&db, dir.path(), 0).unwrap();
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied, None);
        assert_eq!(*sm.subscribe_applied().borrow(), 0);
        assert!(log_committed(&db).await >= Some(response.log_id));

        let mut log = LogStore::open(&db, 0).unwrap();
        assert!(!log.is_fresh().await.unwrap());
        assert_eq!(
            log.get_log_state().await.unwrap().last_log_id,
            Some(response.log_id)
        );
        let entries = log.try_get_log_entries(..).await.unwrap();
        assert_eq!(entries.last().unwrap().log_id, response.log_id);
        assert!(matches!(&entries.last().unwrap().payload,
            EntryPayload::Normal(b) if *b == written));
        let memberships = entries
            .iter()
            .filter(|e| matches!(e.payload, EntryPayload::Membership(_)))
            .count();
        assert_eq!(memberships, 1, "bootstrapped once");
    }

    let (mut group, _transport) = test_group(&config, &db).await;
    assert!(
        *group.applied.borrow() >= index,
        "the committed log is re-applied before the group starts"
    );
    wait_leader(&group).await;
    let again = group
        .raft
        .client_write(batch(&[&["set", "k", "w", "get"]]))
        .await
        .unwrap();
    assert!(again.log_id.index > index);
    assert_eq!(again.data, vec![Reply::Bulk(Bytes::from("v"))]);
    wait_applied(&mut group, again.log_id.index).await;
    let metrics = group.raft.metrics().borrow().clone();
    let voters: Vec<NodeId> = metrics.membership_config.membership().voter_ids().collect();
    assert_eq!(voters, vec![1]);
    group.raft.shutdown().await.unwrap();

    let mut log = LogStore::open(&db, 0).unwrap();
    let memberships = log
        .try_get_log_entries(..)
        .await
        .unwrap()
        .iter()
        .filter(|e| matches!(e.payload, EntryPayload::Membership(_)))
        .count();
    assert_eq!(memberships, 1, "a restart does not bootstrap again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_installed_into_a_fresh_store_reproduces_the_state_and_survives_restart() {
    let leader_dir = tempfile::tempdir().unwrap();
    let leader_db = open_database(leader_dir.path()).unwrap();
    let mut leader = StateMachineStore::open(&leader_db, leader_dir.path(), 0).unwrap();
    let membership = Membership::new(vec![[1, 2, 3].into()], ());
    let mut entries = vec![Entry::<TypeConfig> {
        log_id: log_id(1, 1),
        payload: EntryPayload::Membership(membership.clone()),
    }];
    for index in 2..=4 {
        entries.push(Entry {
            log_id: log_id(1, index),
            payload: EntryPayload::Normal(batch(&[&["set", "k", "v"], &["get", "k"]])),
        });
    }
    let replies = leader.apply(entries).await.unwrap();
    assert_eq!(
        replies.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![0, 2, 2, 2]
    );

    let built = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(built.meta.last_log_id, Some(log_id(1, 4)));
    let current = leader.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, built.meta);

    let follower_dir = tempfile::tempdir().unwrap();
    let follower_db = open_database(follower_dir.path()).unwrap();
    let mut follower = StateMachineStore::open(&follower_db, follower_dir.path(), 0).unwrap();
    let mut received = follower.begin_receiving_snapshot().await.unwrap();
    *received = *current.snapshot;
    follower
        .install_snapshot(&current.meta, received)
        .await
        .unwrap();

    let expected_state = leader.applied_state().await.unwrap();
    let expected_bytes = leader.keyspace().read().unwrap().to_snapshot();
    assert_eq!(follower.applied_state().await.unwrap(), expected_state);
    assert_eq!(
        follower.keyspace().read().unwrap().to_snapshot(),
        expected_bytes
    );
    assert_eq!(*follower.subscribe_applied().borrow(), 4);

    drop((follower, follower_db));
    let follower_db = reopen_database(follower_dir.path()).await;
    let mut follower = StateMachineStore::open(&follower_db, follower_dir.path(), 0).unwrap();
    assert_eq!(follower.applied_state().await.unwrap(), expected_state);
    assert_eq!(
        follower.keyspace().read().unwrap().to_snapshot(),
        expected_bytes
    );
    let kept = follower.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(kept.meta, built.meta);
}

fn set_entry(index: u64, key: &str) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(batch(&[&["set", key, "v"]])),
    }
}

/// Applies `entry`, then builds a snapshot.
async fn apply_and_snapshot(
    sm: &mut StateMachineStore,
    entry: Entry<TypeConfig>,
) -> openraft::Snapshot<TypeConfig> {
    sm.apply(vec![entry]).await.unwrap();
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap()
}

/// A data dir from before snapshot files keeps its snapshot as a record in the state
/// keyspace: a store opens from it, and the first snapshot file replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_record_from_before_snapshot_files_is_read_then_replaced_by_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_database(dir.path()).unwrap();
    let mut sm = StateMachineStore::open(&db, dir.path(), 0).unwrap();
    let built = apply_and_snapshot(&mut sm, set_entry(1, "k")).await;
    let expected = sm.keyspace().read().unwrap().to_snapshot();
    drop(sm);
    // Where an older version kept the same bytes.
    let file = dir.path().join("snapshots").join("group-0.snapshot");
    let stored = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let state = db.keyspace(STATE_KEYSPACE, keyspace_options).unwrap();
    state.insert(record_key(0, SNAPSHOT), stored).unwrap();

    let mut sm = StateMachineStore::open(&db, dir.path(), 0).unwrap();
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 1)));
    assert_eq!(sm.keyspace().read().unwrap().to_snapshot(), expected);
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, built.meta);

    let next = apply_and_snapshot(&mut sm, set_entry(2, "k2")).await;
    assert!(file.exists());
    assert!(!state.contains_key(record_key(0, SNAPSHOT)).unwrap());
    drop(sm);
    let mut sm = StateMachineStore::open(&db, dir.path(), 0).unwrap();
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 2)));
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta, next.meta);
}

/// A single-node group on a fresh data dir, leading, with the given snapshot settings.
async fn single_node_group(
    snapshot_every_entries: u64,
    kept: u64,
) -> (TempDir, fjall::Database, RaftGroup) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        snapshot_every_entries,
        log_entries_kept_after_snapshot: kept,
        ..node_config(dir.path(), 1, "127.0.0.1:9".parse().unwrap())
    };
    let db = open_database(dir.path()).unwrap();
    let (group, _transport) = test_group(&config, &db).await;
    wait_leader(&group).await;
    (dir, db, group)
}

/// The stored log's state and the indexes of the entries it holds.
async fn stored_log(db: &fjall::Database) -> (LogState<TypeConfig>, Vec<u64>) {
    let mut log = LogStore::open(db, 0).unwrap();
    let state = log.get_log_state().await.unwrap();
    let indexes = log
        .try_get_log_entries(..)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    (state, indexes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggered_snapshot_purges_the_log_except_the_kept_entries() {
    const KEPT: u64 = 3;
    let (dir, db, mut group) = single_node_group(10_000, KEPT).await;
    let mut last = None;
    for i in 0..10 {
        let key = format!("k{i}");
        let response = group
            .raft
            .client_write(batch(&[&["set", &key, "v"]]))
            .await
            .unwrap();
        last = Some(response.log_id);
    }
    let last = last.unwrap();
    wait_applied(&mut group, last.index).await;

    group.raft.trigger().snapshot().await.unwrap();
    group
        .raft
        .wait(Some(WAIT))
        .metrics(
            |m| m.snapshot == Some(last) && m.purged.map(|p| p.index) == Some(last.index - KEPT),
            "snapshot built and log purged",
        )
        .await
        .expect("purged");
    group.raft.shutdown().await.unwrap();

    let (state, indexes) = stored_log(&db).await;
    assert_eq!(
        state.last_purged_log_id.map(|p| p.index),
        Some(last.index - KEPT)
    );
    assert_eq!(state.last_log_id, Some(last));
    assert_eq!(
        indexes,
        ((last.index - KEPT + 1)..=last.index).collect::<Vec<_>>()
    );
    let mut sm = StateMachineStore::open(&db, dir.path(), 0).unwrap();
    let snapshot = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(snapshot.meta.last_log_id, Some(last));
}

/// With openraft's entry count far off, the log's growth in bytes alone builds snapshots
/// (`config::snapshot_pace`), and each purge removes what the last one left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_grown_by_its_byte_pace_is_snapshotted_and_purged_again_and_again() {
    const KEPT: u64 = 2;
    let (_dir, db, mut group) = single_node_group(1_000_000, KEPT).await;
    // One key overwritten: the state (and so the snapshot) stays at one value, so the
    // pace is `LOG_BYTES` and each round of writes passes it.
    let value = "v".repeat(1024 * 1024);
    let per_round = 2 * crate::config::snapshot_pace::LOG_BYTES / (1024 * 1024) + 2;
    let mut purged = Vec::new();
    for _ in 0..2 {
        let mut last = None;
        for _ in 0..per_round {
            let response = group
                .raft
                .client_write(batch(&[&["set", "k", &value]]))
                .await
                .unwrap();
            last = Some(response.log_id);
        }
        let last = last.unwrap();
        wait_applied(&mut group, last.index).await;
        let before = purged.last().copied();
        let metrics = group
            .raft
            .wait(Some(WAIT))
            .metrics(
                |m| m.purged.map(|p| p.index) > before,
                "a snapshot by log growth, and the log purged behind it",
            )
            .await
            .expect("snapshotted by log growth");
        let now = metrics.purged.unwrap().index;
        assert!(now < last.index, "entries are kept behind the snapshot");
        purged.push(now);
    }
    group.raft.shutdown().await.unwrap();

    let (state, indexes) = stored_log(&db).await;
    assert_eq!(state.last_purged_log_id.map(|p| p.index), Some(purged[1]));
    let last = state.last_log_id.unwrap().index;
    assert_eq!(indexes, ((purged[1] + 1)..=last).collect::<Vec<_>>());
}

struct TestNode {
    _dir: TempDir,
    group: RaftGroup,
    server: tokio::task::JoinHandle<()>,
}

/// Binds a Raft listener for each of `ids` and names them all in one initial cluster.
async fn bind_cluster(ids: &[NodeId]) -> (Vec<TcpListener>, BTreeMap<NodeId, Member>) {
    let mut listeners = Vec::new();
    let mut cluster = BTreeMap::new();
    for id in ids {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let member = Member {
            client_addr: "127.0.0.1:1".parse().unwrap(),
            raft_addr: listener.local_addr().unwrap(),
        };
        cluster.insert(*id, member);
        listeners.push(listener);
    }
    (listeners, cluster)
}

/// Starts node `id` of `cluster` in a new data dir, serving Raft RPCs on `listener`.
async fn start_node(
    id: NodeId,
    listener: TcpListener,
    cluster: &BTreeMap<NodeId, Member>,
    tune: impl FnOnce(Config) -> Config,
) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let config = tune(Config {
        initial_cluster: cluster.clone(),
        ..node_config(dir.path(), id, cluster[&id].raft_addr)
    });
    let db = open_database(dir.path()).unwrap();
    let transport = RaftTransport::new(Arc::new(ClusterIdentity::new(
        id,
        None,
        Some("test".into()),
        None,
    )));
    let server = tokio::spawn(serve_raft(
        listener,
        transport.groups(),
        transport.identity(),
    ));
    let group = start_group(
        &config,
        &db,
        0,
        &transport,
        std::sync::Arc::new(|_| {}),
        Default::default(),
    )
    .await
    .unwrap();
    TestNode {
        _dir: dir,
        group,
        server,
    }
}

async fn shut_down(nodes: Vec<TestNode>) {
    for node in nodes {
        node.group.raft.shutdown().await.unwrap();
        node.server.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_over_tcp_elect_a_leader_and_replicate_a_write_to_all() {
    let (listeners, cluster) = bind_cluster(&[1, 2, 3]).await;
    let mut nodes = Vec::new();
    for (id, listener) in (1..).zip(listeners) {
        nodes.push(start_node(id, listener, &cluster, |c| c).await);
    }

    let metrics = nodes[0]
        .group
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.current_leader.is_some(), "a leader is elected")
        .await
        .unwrap();
    let leader = metrics.current_leader.unwrap();
    let response = nodes[(leader - 1) as usize]
        .group
        .raft
        .client_write(batch(&[&["set", "k", "v"], &["get", "k"]]))
        .await
        .unwrap();
    assert_eq!(response.data.len(), 2);

    // The leader has applied the write when client_write returns; followers catch up.
    let expected = nodes[(leader - 1) as usize]
        .group
        .state
        .read()
        .unwrap()
        .to_snapshot();
    for node in &mut nodes {
        wait_applied(&mut node.group, response.log_id.index).await;
        node.group
            .raft
            .wait(Some(WAIT))
            .applied_index_at_least(Some(response.log_id.index), "write applied")
            .await
            .unwrap();
        let state = node.group.state.read().unwrap().to_snapshot();
        assert_eq!(state, expected);
    }
    shut_down(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_follower_catches_up_from_a_snapshot_sent_over_tcp() {
    let (mut listeners, cluster) = bind_cluster(&[1, 2, 3]).await;
    let late_listener = listeners.pop().unwrap();
    let keep_no_log = |c: Config| Config {
        log_entries_kept_after_snapshot: 0,
        ..c
    };
    let mut nodes = Vec::new();
    for (id, listener) in (1..).zip(listeners) {
        nodes.push(start_node(id, listener, &cluster, keep_no_log).await);
    }
    let metrics = nodes[0]
        .group
        .raft
        .wait(Some(WAIT))
        .metrics(
            |m| m.current_leader.is_some(),
            "two of three elect a leader",
        )
        .await
        .unwrap();
    let leader = &nodes[(metrics.current_leader.unwrap() - 1) as usize].group;
    let mut last = None;
    for i in 0..5 {
        let key = format!("k{i}");
        let response = leader
            .raft
            .client_write(batch(&[&["set", &key, "v"]]))
            .await
            .unwrap();
        last = Some(response.log_id);
    }
    let last = last.unwrap();
    leader.raft.trigger().snapshot().await.unwrap();
    leader
        .raft
        .wait(Some(WAIT))
        .metrics(|m| m.purged == Some(last), "the whole log is purged")
        .await
        .unwrap();

    let mut late = start_node(3, late_listener, &cluster, keep_no_log).await;
    wait_applied(&mut late.group, last.index).await;
    late.group
        .raft
        .wait(Some(WAIT))
        .metrics(
            |m| m.snapshot >= Some(last),
            "installed the leader's snapshot",
        )
        .await
        .unwrap();
    nodes.push(late);
    shut_down(nodes).await;
}

/// Group 0 of node 1 of a test cluster, on `db`, with its transport (kept alive beside it).
async fn test_group(config: &Config, db: &fjall::Database) -> (RaftGroup, RaftTransport) {
    let transport = RaftTransport::new(Arc::new(ClusterIdentity::new(
        1,
        None,
        Some("test".into()),
        None,
    )));
    let group = start_group(
        config,
        db,
        0,
        &transport,
        std::sync::Arc::new(|_| {}),
        Default::default(),
    )
    .await
    .unwrap();
    (group, transport)
}

#[tokio::test]
async fn rpc_to_a_closed_port_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut factory = RaftTransport::new(Arc::new(ClusterIdentity::new(
        1,
        None,
        Some("test".into()),
        None,
    )))
    .for_group(0);
    let mut client = factory
        .new_client(
            2,
            &NodeAddr {
                client_addr: String::new(),
                raft_addr: addr.to_string(),
            },
        )
        .await;
    let err = client
        .vote(
            openraft::raft::VoteRequest::new(openraft::Vote::new(1, 1), None),
            openraft::network::RPCOption::new(Duration::from_secs(5)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, openraft::error::RPCError::Unreachable(_)),
        "{err:?}"
    );
}

/// The journal files of the database in `data_dir`.
fn journal_files(data_dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![data_dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for dirent in std::fs::read_dir(&dir).unwrap() {
            let path = dirent.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "jnl") {
                found.push(path);
            }
        }
    }
    found
}

/// vendor/fjall/PATCHES.md, patch 1: the journal's blocks are written (with zeros) ahead of
/// its data, so an fdatasync need not allocate blocks nor write metadata; and what was
/// written is read back after the database is opened again.
#[test]
fn the_journal_is_written_ahead_of_its_data_and_recovers() {
    use std::os::unix::fs::MetadataExt;

    let dir = tempfile::tempdir().unwrap();
    let value = vec![7u8; 3000];
    {
        let db = open_database(dir.path()).unwrap();
        let ks = db
            .keyspace("t", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        for i in 0..10u32 {
            ks.insert(i.to_be_bytes(), value.clone()).unwrap();
        }
        db.persist(fjall::PersistMode::SyncData).unwrap();
        let journals = journal_files(dir.path());
        assert_eq!(journals.len(), 1, "one active journal: {journals:?}");
        let meta = std::fs::metadata(&journals[0]).unwrap();
        let allocated = meta.blocks() * 512;
        assert!(
            allocated >= 1024 * 1024,
            "a chunk written ahead of ~30 KB of data: {allocated} bytes allocated"
        );
        assert!(
            allocated < meta.len(),
            "not the whole file: {allocated} of {} bytes",
            meta.len()
        );
    }
    let db = open_database(dir.path()).unwrap();
    let ks = db
        .keyspace("t", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    for i in 0..10u32 {
        assert_eq!(
            ks.get(i.to_be_bytes()).unwrap().as_deref(),
            Some(&value[..])
        );
    }
    assert_eq!(ks.get(10u32.to_be_bytes()).unwrap(), None);
}
