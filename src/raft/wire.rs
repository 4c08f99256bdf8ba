//! The Raft RPC wire format: each frame is a u32 big-endian length and that many bytes
//! of bincode. Requests carry a request id, matched by the response, so one connection
//! carries many RPCs at once, for every group.

use std::io;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::{GroupId, NodeId, TypeConfig};

/// Largest frame either side sends or accepts, length prefix excluded. It bounds what one
/// AppendEntries may carry (a larger one is split by openraft on `PayloadTooLarge`) and
/// must exceed openraft's snapshot chunk size (3 MiB by default).
pub const MAX_RAFT_FRAME_BYTES: usize = 64 * 1024 * 1024;

const LENGTH_PREFIX_BYTES: usize = 4;

#[derive(Serialize, Deserialize)]
pub(crate) struct RequestFrame {
    pub request_id: u64,
    pub group: GroupId,
    pub rpc: RaftRequest,
}

#[derive(Serialize, Deserialize)]
pub(crate) enum RaftRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// Would the peer grant this vote? (`Raft::pre_vote`; it changes nothing there.)
    PreVote(VoteRequest<NodeId>),
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ResponseFrame {
    pub request_id: u64,
    pub reply: RaftReply,
}

#[derive(Serialize, Deserialize)]
pub(crate) enum RaftReply {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// The receiving node does not run the request's group.
    UnknownGroup,
    PreVote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("frame of {bytes} bytes exceeds the limit of {MAX_RAFT_FRAME_BYTES} bytes")]
    TooLarge { bytes: usize },
    #[error("bad frame: {0}")]
    Codec(#[from] bincode::Error),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Encodes `message` as one frame, length prefix included.
pub(crate) fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let bytes = bincode::serialized_size(message)? as usize;
    if bytes > MAX_RAFT_FRAME_BYTES {
        return Err(FrameError::TooLarge { bytes });
    }
    let mut frame = Vec::with_capacity(LENGTH_PREFIX_BYTES + bytes);
    frame.extend_from_slice(&(bytes as u32).to_be_bytes());
    bincode::serialize_into(&mut frame, message)?;
    Ok(frame)
}

/// Reads one frame; `None` when the peer closed the connection between frames.
pub(crate) async fn read_frame<T, R>(reader: &mut R) -> Result<Option<T>, FrameError>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin,
{
    let mut prefix = [0; LENGTH_PREFIX_BYTES];
    match reader.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let bytes = u32::from_be_bytes(prefix) as usize;
    if bytes > MAX_RAFT_FRAME_BYTES {
        return Err(FrameError::TooLarge { bytes });
    }
    let mut body = vec![0; bytes];
    reader.read_exact(&mut body).await?;
    Ok(Some(bincode::deserialize(&body)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::Vote;

    #[tokio::test]
    async fn frames_round_trip_and_end_cleanly() {
        let request = RequestFrame {
            request_id: 7,
            group: 3,
            rpc: RaftRequest::Vote(VoteRequest::new(Vote::new(2, 1), None)),
        };
        let mut stream = encode(&request).unwrap();
        stream.extend(encode(&request).unwrap());
        let mut reader = stream.as_slice();
        for _ in 0..2 {
            let frame: RequestFrame = read_frame(&mut reader).await.unwrap().unwrap();
            assert_eq!((frame.request_id, frame.group), (7, 3));
            assert!(matches!(frame.rpc, RaftRequest::Vote(v) if v.vote == Vote::new(2, 1)));
        }
        assert!(read_frame::<RequestFrame, _>(&mut reader)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn oversized_length_prefix_is_rejected_before_allocating() {
        let prefix = ((MAX_RAFT_FRAME_BYTES + 1) as u32).to_be_bytes();
        let err = read_frame::<RequestFrame, _>(&mut prefix.as_slice())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, FrameError::TooLarge { .. }));
    }
}
