//! Where a data command runs: on this node when it leads, otherwise on the leader,
//! through this client's own relay (`forward::Upstream`).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::forward::Upstream;
use super::{Node, Route, Session};
use crate::reply::Reply;

/// Proposes a write that never blocks here, or relays it to the leader.
pub(super) async fn data_reply(
    node: &Arc<Node>,
    session: &mut Session,
    argv: Vec<Bytes>,
) -> Result<oneshot::Receiver<Reply>, Reply> {
    match node.route().await? {
        Route::Local => Ok(node.proposer.propose(argv).await),
        Route::Leader(leader) => relay_rx(node, session, leader, argv).await,
    }
}

/// Queues a request on this client's relay to the leader, connecting it first.
pub(super) async fn relay_rx(
    node: &Arc<Node>,
    session: &mut Session,
    leader: SocketAddr,
    argv: Vec<Bytes>,
) -> Result<oneshot::Receiver<Reply>, Reply> {
    let stale = session
        .upstream
        .as_ref()
        .is_none_or(|up| up.leader != leader || up.is_closed());
    if stale {
        let metrics = Some(node.group.watch_leader());
        let keepalive = Some(node.config.keepalive());
        let password = node.config.requirepass.as_deref();
        let tls = node.relay_tls();
        match Upstream::connect(leader, password, metrics, keepalive, tls).await {
            Ok(up) => session.upstream = Some(up),
            Err(reply) => {
                session.upstream = None;
                return Err(reply);
            }
        }
    }
    let upstream = session.upstream.as_ref().expect("connected above");
    Ok(upstream.send(argv).await)
}
