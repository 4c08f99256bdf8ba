//! What the cargo-fuzz targets in `fuzz/` need from inside the crate: the keyspace's
//! invariant check, the switch that sends known release scripts through Lua, and the Raft
//! frame reader. Compiled only under `cfg(fuzzing)` (set by cargo-fuzz); not an API.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta, SnapshotSegmentId,
    StoredMembership, Vote,
};

use crate::raft::wire::{self, RaftReply, RaftRequest, RequestFrame, ResponseFrame};
use crate::raft::NodeAddr;
use crate::state::{Batch, Keyspace};

/// Panics unless the keyspace's indexes agree with its entries (expiry index, lock
/// timers, tokens and revisions under their counters, no empty list, no idle lock).
pub fn assert_consistent(keyspace: &Keyspace) {
    keyspace.assert_consistent();
}

/// Runs every script in Lua, the release scripts `lua::native` knows too, so a target can
/// compare a native run with Lua's.
pub fn set_lua_only(keyspace: &mut Keyspace, lua_only: bool) {
    keyspace.lua_only = lua_only;
}

/// Whether `source` is a release script that runs without Lua.
pub fn runs_natively(source: &[u8]) -> bool {
    crate::state::lua::native::recognize(source).is_some()
}

/// Which side of a Raft connection reads the frames.
#[derive(Clone, Copy, Debug)]
pub enum FrameKind {
    /// The server's side: `RequestFrame`s.
    Request,
    /// The client's side: `ResponseFrame`s.
    Response,
}

/// What reading a byte stream as a Raft connection does: each frame read, encoded again,
/// and the error that ended the stream, if one did.
pub struct FramesRead {
    pub reencoded: Vec<Vec<u8>>,
    pub error: Option<String>,
}

/// Reads `stream` frame by frame, as a Raft connection's reader does, until it ends or a
/// frame is refused.
pub fn read_raft_frames(kind: FrameKind, stream: &[u8]) -> FramesRead {
    let mut reader = stream;
    let mut reencoded = Vec::new();
    loop {
        let frame = match kind {
            FrameKind::Request => ready(wire::read_frame::<RequestFrame, _>(&mut reader))
                .map(|f| f.map(|f| wire::encode(&f))),
            FrameKind::Response => ready(wire::read_frame::<ResponseFrame, _>(&mut reader))
                .map(|f| f.map(|f| wire::encode(&f))),
        };
        match frame {
            Ok(None) => {
                return FramesRead {
                    reencoded,
                    error: None,
                }
            }
            Ok(Some(Ok(bytes))) => reencoded.push(bytes),
            Ok(Some(Err(e))) | Err(e) => {
                return FramesRead {
                    reencoded,
                    error: Some(e.to_string()),
                }
            }
        }
    }
}

/// Runs both ends of the Raft port's handshake (`raft::handshake`) against `peer_bytes`,
/// as if a peer had sent them: the listener's end (a node secret "s", cluster "c", node
/// 1) and the dialer's (meaning to reach node 2). Whether each end passed.
pub fn raft_handshake(peer_bytes: &[u8]) -> (bool, bool) {
    let identity = crate::raft::ClusterIdentity::new(1, Some("s"), Some("c".to_string()), None);
    let mut as_listener = tokio::io::join(peer_bytes, tokio::io::sink());
    let answered = ready(crate::raft::handshake::answer(
        &mut as_listener,
        &identity,
        "fuzz",
    ));
    let mut as_dialer = tokio::io::join(peer_bytes, tokio::io::sink());
    let dialed = ready(crate::raft::handshake::dial(
        &mut as_dialer,
        &identity,
        2,
        "fuzz",
    ));
    (answered.is_ok(), dialed.is_ok())
}

/// Polls a future that cannot wait (it reads a byte slice) to its end.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("reading a byte slice never waits"),
    }
}

/// One frame of each kind of Raft RPC and reply, as peers send them: the seed corpus of
/// the `raft_wire` target. `snapshot` is the data an InstallSnapshot chunk carries.
pub fn sample_raft_frames(snapshot: Vec<u8>) -> Vec<(&'static str, FrameKind, Vec<u8>)> {
    let log_id = |term, index| LogId::new(CommittedLeaderId::new(term, 1), index);
    let node = |n: u16| NodeAddr {
        client_addr: format!("127.0.0.1:{}", 7000 + n),
        raft_addr: format!("127.0.0.1:{}", 8000 + n),
    };
    let nodes: BTreeMap<u64, NodeAddr> = (1..=3).map(|id| (id, node(id as u16))).collect();
    let membership = Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes);
    let batch = Batch {
        now_ms: 1_000,
        ops: vec![
            ["set", "k", "v", "px", "5000"].map(Bytes::from).to_vec(),
            ["lock", "res", "owner", "30000"].map(Bytes::from).to_vec(),
        ],
    };
    let entries = vec![
        Entry {
            log_id: log_id(2, 7),
            payload: EntryPayload::Blank,
        },
        Entry {
            log_id: log_id(2, 8),
            payload: EntryPayload::Membership(membership.clone()),
        },
        Entry {
            log_id: log_id(2, 9),
            payload: EntryPayload::Normal(batch),
        },
    ];
    let request = |rpc| RequestFrame {
        request_id: 42,
        group: 0,
        rpc,
    };
    let response = |reply| ResponseFrame {
        request_id: 42,
        reply,
    };
    let vote = Vote::new_committed(2, 1);
    let snapshot_id = "2-1-9-1".to_string();
    let frames = [
        (
            "append_entries",
            FrameKind::Request,
            wire::encode(&request(RaftRequest::AppendEntries(AppendEntriesRequest {
                vote,
                prev_log_id: Some(log_id(1, 6)),
                entries,
                leader_commit: Some(log_id(2, 7)),
            }))),
        ),
        (
            "heartbeat",
            FrameKind::Request,
            wire::encode(&request(RaftRequest::AppendEntries(AppendEntriesRequest {
                vote,
                prev_log_id: Some(log_id(2, 9)),
                entries: Vec::new(),
                leader_commit: Some(log_id(2, 9)),
            }))),
        ),
        (
            "vote",
            FrameKind::Request,
            wire::encode(&request(RaftRequest::Vote(VoteRequest::new(
                Vote::new(3, 2),
                Some(log_id(2, 9)),
            )))),
        ),
        (
            "install_snapshot",
            FrameKind::Request,
            wire::encode(&request(RaftRequest::InstallSnapshot(
                InstallSnapshotRequest {
                    vote,
                    meta: SnapshotMeta {
                        last_log_id: Some(log_id(2, 9)),
                        last_membership: StoredMembership::new(Some(log_id(2, 8)), membership),
                        snapshot_id: snapshot_id.clone(),
                    },
                    offset: 0,
                    data: snapshot,
                    done: true,
                },
            ))),
        ),
        (
            "append_entries_conflict",
            FrameKind::Response,
            wire::encode(&response(RaftReply::AppendEntries(Ok(
                AppendEntriesResponse::Conflict,
            )))),
        ),
        (
            "append_entries_partial",
            FrameKind::Response,
            wire::encode(&response(RaftReply::AppendEntries(Ok(
                AppendEntriesResponse::PartialSuccess(Some(log_id(2, 8))),
            )))),
        ),
        (
            "vote_granted",
            FrameKind::Response,
            wire::encode(&response(RaftReply::Vote(Ok(VoteResponse::new(
                Vote::new(3, 2),
                Some(log_id(2, 9)),
                true,
            ))))),
        ),
        (
            "vote_stopped",
            FrameKind::Response,
            wire::encode(&response(RaftReply::Vote(Err(RaftError::Fatal(
                Fatal::Stopped,
            ))))),
        ),
        (
            "install_snapshot_mismatch",
            FrameKind::Response,
            wire::encode(&response(RaftReply::InstallSnapshot(Err(
                RaftError::APIError(InstallSnapshotError::SnapshotMismatch(SnapshotMismatch {
                    expect: SnapshotSegmentId {
                        id: snapshot_id.clone(),
                        offset: 0,
                    },
                    got: SnapshotSegmentId {
                        id: snapshot_id,
                        offset: 4096,
                    },
                })),
            )))),
        ),
        (
            "install_snapshot_done",
            FrameKind::Response,
            wire::encode(&response(RaftReply::InstallSnapshot(Ok(
                InstallSnapshotResponse { vote },
            )))),
        ),
        (
            "unknown_group",
            FrameKind::Response,
            wire::encode(&response(RaftReply::UnknownGroup)),
        ),
    ];
    frames
        .into_iter()
        .map(|(name, kind, frame)| (name, kind, frame.expect("a sample frame encodes")))
        .collect()
}
