//! The Raft port: accepts peers' connections and runs each RPC they send on the group it
//! names (`GroupRegistry`), answering on the same connection, several RPCs in flight at
//! once. The client side, one connection per peer, is in `network.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use super::handshake::{self, ClusterIdentity, HandshakeError};
use super::network::{configure, write_frames, GroupRegistry, RaftStream, SEND_QUEUE_FRAMES};
use super::wire::{self, RaftReply, RaftRequest, RequestFrame, ResponseFrame};
use super::GroupId;
use crate::config::raft_transport::HANDSHAKE_TIMEOUT;
use crate::config::Config;

/// RPCs one inbound connection may have in flight before the server stops reading it.
const MAX_INFLIGHT_RPCS_PER_CONNECTION: usize = 1024;
/// Pause after a failed `accept` (out of file descriptors, say) before trying again.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// Serves Raft RPCs from peers on `listener` that pass the handshake with `identity`,
/// dispatching each to its group in `groups`. Never returns: a failed accept is logged
/// and retried; abort the task to stop.
pub async fn serve_raft(
    listener: TcpListener,
    groups: GroupRegistry,
    identity: Arc<ClusterIdentity>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if let Err(e) = configure(&stream) {
                    tracing::warn!("raft connection from {peer}: {e}");
                }
                tokio::spawn(serve_connection(stream, groups.clone(), identity.clone()));
            }
            Err(e) => {
                tracing::warn!("accepting a raft connection failed: {e}");
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
            }
        }
    }
}

/// Binds `config.raft_listen` and serves Raft RPCs on it in a new task. Returns the bound
/// address (the real port when it was 0) and the task.
pub async fn start_raft_listener(
    config: &Config,
    groups: GroupRegistry,
    identity: Arc<ClusterIdentity>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(config.raft_listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding --raft-listen {}: {e}", config.raft_listen))?;
    let addr = listener.local_addr()?;
    Ok((addr, tokio::spawn(serve_raft(listener, groups, identity))))
}

pub(super) async fn serve_connection(
    stream: TcpStream,
    groups: GroupRegistry,
    identity: Arc<ClusterIdentity>,
) {
    let peer = stream.peer_addr().ok();
    let peer_text = peer.map_or_else(|| "a peer".to_string(), |p| p.to_string());
    let opened = tokio::time::timeout(HANDSHAKE_TIMEOUT, open(stream, &identity, &peer_text))
        .await
        .unwrap_or_else(|_| {
            Err(HandshakeError::Io(std::io::Error::other(
                "handshake timed out",
            )))
        });
    let stream = match opened {
        Ok(stream) => stream,
        Err(e @ HandshakeError::Io(_)) => {
            tracing::debug!("raft connection from {peer_text}: {e}");
            return;
        }
        Err(e) => {
            identity.log_refusal(&e);
            return;
        }
    };
    let (mut reader, writer) = stream.into_halves();
    let (frames, queue) = mpsc::channel(SEND_QUEUE_FRAMES);
    let writer_task = tokio::spawn(write_frames(writer, queue));
    let inflight = Arc::new(Semaphore::new(MAX_INFLIGHT_RPCS_PER_CONNECTION));
    loop {
        let request = match wire::read_frame::<RequestFrame, _>(&mut reader).await {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("raft connection from {peer:?}: {e}; closing it");
                break;
            }
        };
        let Ok(permit) = inflight.clone().acquire_owned().await else {
            break;
        };
        let frames = frames.clone();
        let groups = groups.clone();
        tokio::spawn(async move {
            let reply = dispatch(&groups, request.group, request.rpc).await;
            let response = ResponseFrame {
                request_id: request.request_id,
                reply,
            };
            match wire::encode(&response) {
                // The connection may be gone; the peer then retries on a new one.
                Ok(frame) => drop(frames.send(frame).await),
                Err(e) => tracing::error!("cannot encode a raft response: {e}"),
            }
            drop(permit);
        });
    }
    drop(frames);
    // Replies still being computed finish (or not) without this connection.
    writer_task.abort();
}

/// TLS first with `--tls-cluster` (the peer must present a certificate the CA signed),
/// then the handshake.
async fn open(
    stream: TcpStream,
    identity: &ClusterIdentity,
    peer: &str,
) -> Result<RaftStream, HandshakeError> {
    let mut stream = match identity.tls().and_then(|tls| tls.acceptor()) {
        None => RaftStream::Plain(stream),
        Some(acceptor) => {
            let tls = acceptor
                .accept(stream)
                .await
                .map_err(|e| HandshakeError::Refused {
                    peer: peer.to_string(),
                    reason: format!("TLS: {e}"),
                })?;
            RaftStream::Tls(Box::new(tokio_rustls::TlsStream::Server(tls)))
        }
    };
    match &mut stream {
        RaftStream::Plain(s) => handshake::answer(s, identity, peer).await?,
        RaftStream::Tls(s) => handshake::answer(s, identity, peer).await?,
    };
    Ok(stream)
}

async fn dispatch(groups: &GroupRegistry, group: GroupId, rpc: RaftRequest) -> RaftReply {
    let Some(raft) = groups.get(group) else {
        return RaftReply::UnknownGroup;
    };
    match rpc {
        RaftRequest::AppendEntries(rpc) => RaftReply::AppendEntries(raft.append_entries(rpc).await),
        RaftRequest::Vote(rpc) => RaftReply::Vote(raft.vote(rpc).await),
        RaftRequest::PreVote(rpc) => RaftReply::PreVote(raft.pre_vote(rpc).await),
        RaftRequest::InstallSnapshot(rpc) => {
            RaftReply::InstallSnapshot(raft.install_snapshot(rpc).await)
        }
    }
}
