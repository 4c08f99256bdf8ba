//! Where a data command runs: on this node when it leads, otherwise on the leader,
//! through this client's own relay (`forward::Upstream`).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::acl;
use super::forward::Upstream;
use super::{Node, Route, Session};
use crate::reply::Reply;

/// Proposes a write that never blocks here, or relays it to the leader.
pub(super) async fn data_reply(
    node: &Arc<Node>,
    session: &mut Session,
    argv: Vec<Bytes>,
) -> Result<oneshot::Receiver<Reply>, Reply> {
    data_reply_as(node, session, argv, None).await
}

/// `data_reply`, run with the permissions of `caller` (a restricted user) when proposed
/// here; the leader a relay reaches does the same for the relay's user.
pub(super) async fn data_reply_as(
    node: &Arc<Node>,
    session: &mut Session,
    argv: Vec<Bytes>,
    caller: Option<&str>,
) -> Result<oneshot::Receiver<Reply>, Reply> {
    match node.route().await? {
        Route::Local => {
            let op = match caller {
                Some(user) => acl::as_user(user, argv),
                None => argv,
            };
            Ok(node.proposer.propose(op).await)
        }
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
    let stale = session.upstream.as_ref().is_none_or(|up| {
        up.leader != leader
            || up.is_closed()
            || (up.acl_changes != crate::acl::changes()
                && up.credentials != node.relay_credentials(&session.user))
    });
    if stale {
        let credentials = node.relay_credentials(&session.user);
        let metrics = Some(node.group.watch_leader());
        let keepalive = Some(node.config.keepalive());
        let tls = node.relay_tls();
        match Upstream::connect(leader, credentials, metrics, keepalive, tls).await {
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
