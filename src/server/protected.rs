//! Protected mode, as Redis has it: a node whose `default` user needs no password answers
//! a client from another host with Redis's `-DENIED` explanation and closes the
//! connection, unless `protected-mode no`. Clients on the loopback interface are always
//! served, and so are the cluster's own members (a follower relays its clients' commands
//! to the leader's client port): the addresses of the current membership are trusted, as
//! Redis trusts nothing but a password for its replicas.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Node;

/// Redis 7's reply, word for word.
pub(super) const DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// The node's `protected-mode` (CONFIG SET changes it).
#[derive(Debug)]
pub(super) struct ProtectedMode(AtomicBool);

impl ProtectedMode {
    pub(super) fn new(on: bool) -> ProtectedMode {
        ProtectedMode(AtomicBool::new(on))
    }

    pub(super) fn on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub(super) fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }
}

/// Whether `ip` is this host (127.0.0.0/8, ::1, or IPv4 mapped into IPv6).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

impl Node {
    /// Whether a client from `peer` is refused by protected mode.
    pub(super) fn protected_refuses(&self, peer: IpAddr) -> bool {
        if !self.protected.on() || is_loopback(peer) {
            return false;
        }
        let open = self
            .user("default")
            .is_some_and(|user| user.nopass && user.enabled);
        if !open {
            return false;
        }
        let status = self.group.status();
        let member = status.members.values().any(|m| {
            [&m.client_addr, &m.raft_addr]
                .iter()
                .filter_map(|addr| addr.parse::<std::net::SocketAddr>().ok())
                .any(|addr| addr.ip() == peer)
        });
        !member
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_every_address_of_this_host() {
        for ip in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(is_loopback(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.1", "192.168.1.2", "::ffff:10.0.0.1", "fe80::1"] {
            assert!(!is_loopback(ip.parse().unwrap()), "{ip}");
        }
    }
}
