//! TCP keepalive on client connections and on the relays followers open to the leader,
//! so that a peer that vanished without closing (a dead host, a partition) is noticed:
//! the kernel closes the connection within about `session_timeout_ms`, and the usual
//! disconnect path runs (a waiter's LOCKCANCEL, its session's detach). A peer that is
//! only slow, or a process that is stopped, still answers: its kernel acknowledges the
//! probes.

use tokio::net::TcpStream;

use crate::config::Keepalive;

/// Turns keepalive on for `stream`; a failure is logged, and the connection served
/// without it.
pub fn keep_alive(stream: &TcpStream, keepalive: Keepalive) {
    let socket = socket2::SockRef::from(stream);
    let params = socket2::TcpKeepalive::new()
        .with_time(keepalive.idle)
        .with_interval(keepalive.interval)
        .with_retries(keepalive.retries);
    if let Err(err) = socket.set_tcp_keepalive(&params) {
        tracing::warn!(%err, "cannot turn TCP keepalive on");
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(err) = socket.set_tcp_user_timeout(Some(keepalive.user_timeout)) {
        tracing::warn!(%err, "cannot set TCP_USER_TIMEOUT");
    }
}
