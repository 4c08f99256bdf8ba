//! Graceful shutdown, on SIGTERM, SIGINT or the SHUTDOWN command: the node stops
//! accepting clients, hands leadership to a caught-up voter if it leads (the same
//! transfer as RAFT.TRANSFER-LEADER, so the cluster waits for no election timeout), lets
//! the writes in flight commit and their replies go out, stops Raft and flushes the
//! database, all within `Config::shutdown_timeout_ms`. A second signal ends the process
//! at once (exit 1); every acknowledged write is on a majority's disks either way.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::signal::unix::{signal, SignalKind};

use super::{cluster, Node};
use crate::config::shutdown::REPLY_DRAIN;
use crate::reply::Reply;

/// What asked the node to stop, for its log.
pub(super) type Reason = &'static str;

/// Waits for SIGTERM, SIGINT or a SHUTDOWN command; then arms a second signal to end the
/// process at once.
pub(super) async fn requested(node: &Node) -> anyhow::Result<Reason> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let reason = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        () = node.shutdown_requested.notified() => "SHUTDOWN",
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::warn!("second signal: exiting without finishing the shutdown");
        std::process::exit(1);
    });
    Ok(reason)
}

/// Stops the node (the client listener is closed already): leadership handed over, the
/// writes in flight committed and answered, Raft stopped, `db` flushed. Bounded by
/// `shutdown_timeout_ms`; what did not finish by then is logged.
pub(super) async fn stop(node: Arc<Node>, db: fjall::Database, reason: Reason) {
    let timeout = Duration::from_millis(node.config.shutdown_timeout_ms);
    let deadline = tokio::time::Instant::now() + timeout;
    tracing::info!(
        reason,
        timeout_ms = timeout.as_millis() as u64,
        "shutting down"
    );
    let status = node.group.status();
    if status.leads() && status.voters.iter().any(|id| *id != node.config.id) {
        let transfer = cluster::transfer_leader(
            node.clone(),
            vec![Bytes::from_static(b"RAFT.TRANSFER-LEADER")],
        );
        match tokio::time::timeout_at(deadline, transfer).await {
            // The target's own answer to RAFT.ELECT, relayed: a status.
            Ok(Reply::Ok) | Ok(Reply::Status(_)) => {
                tracing::info!(leader = ?node.group.leader(), "leadership handed over")
            }
            Ok(other) => tracing::warn!(reply = ?other, "leadership transfer failed; stopping"),
            Err(_) => tracing::warn!("leadership transfer timed out; stopping"),
        }
    }
    // Every entry in flight commits (or times out) before the permits come back; none is
    // proposed after. The permits are kept until the process ends.
    let paused = tokio::time::timeout_at(deadline, node.proposer.pause()).await;
    if paused.is_err() {
        tracing::warn!("writes in flight did not commit before the shutdown timeout");
    }
    let drain = REPLY_DRAIN.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
    tokio::time::sleep(drain).await;
    if tokio::time::timeout_at(deadline, node.group.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Raft did not stop before the shutdown timeout");
    }
    match tokio::task::spawn_blocking(move || db.persist(fjall::PersistMode::SyncAll)).await {
        Ok(Ok(())) => tracing::info!("stopped"),
        Ok(Err(err)) => tracing::error!(%err, "flushing the database at shutdown failed"),
        Err(err) => tracing::error!(%err, "flushing the database at shutdown failed"),
    }
    drop(paused);
}
