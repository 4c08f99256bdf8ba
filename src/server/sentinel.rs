//! A Sentinel-compatible view of the cluster, answered by every node: the Raft leader is
//! the master, the other members are its replicas, and every other node is a sentinel.
//! Unmodified Sentinel clients (redis-py's `Sentinel`, ioredis) therefore find the leader
//! and follow a failover by themselves. Field names and value types are Redis Sentinel's;
//! every value is a bulk string, as Sentinel sends them.

use std::sync::Arc;

use bytes::Bytes;

use super::cluster::split_addr;
use super::Node;
use crate::raft::{NodeAddr, NodeId};
use crate::reply::Reply;

/// SENTINEL subcommand [args], answered once a leader is known or `leader_wait_ms` has
/// passed (a node that just started, or a failover in progress); at once by a node cut off
/// from a majority, which names no master, so that the client asks another sentinel.
pub(super) async fn sentinel_once_leader_known(node: Arc<Node>, argv: Vec<Bytes>) -> Reply {
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_millis(node.config.leader_wait_ms);
    // Without a leader it answers what it knows.
    let _ = node.wait_for_leader(deadline).await;
    sentinel(&node, &argv)
}

/// SENTINEL subcommand [args], from what this node knows now.
fn sentinel(node: &Arc<Node>, argv: &[Bytes]) -> Reply {
    let sub = String::from_utf8_lossy(&argv[1]).to_ascii_lowercase();
    let args = &argv[2..];
    let view = View::of(node);
    match (sub.as_str(), args) {
        ("get-master-addr-by-name", [name]) => {
            if !view.is_master_name(name) {
                return Reply::NilArray;
            }
            match &view.leader {
                Some((_, addr)) => {
                    let (host, port) = split_addr(&addr.client_addr);
                    Reply::Array(vec![Reply::bulk(host), Reply::bulk(port.to_string())])
                }
                None => Reply::NilArray,
            }
        }
        ("masters", []) => Reply::Array(vec![view.master()]),
        ("master", [name]) => view.named(name).map_or_else(|e| e, |v| v.master()),
        ("replicas" | "slaves", [name]) => view.named(name).map_or_else(|e| e, |v| v.replicas()),
        ("sentinels", [name]) => view.named(name).map_or_else(|e| e, |v| v.sentinels()),
        ("myid", []) => Reply::bulk(run_id(node.config.id)),
        (
            "get-master-addr-by-name"
            | "masters"
            | "master"
            | "replicas"
            | "slaves"
            | "sentinels"
            | "myid",
            _,
        ) => Reply::Error(format!(
            "ERR wrong number of arguments for 'sentinel|{sub}' command"
        )),
        _ => Reply::Error(format!(
            "ERR unknown subcommand '{}'. Try SENTINEL HELP.",
            String::from_utf8_lossy(&argv[1])
        )),
    }
}

/// A stable Sentinel run id for a node: its Raft id as 40 hex digits.
fn run_id(id: NodeId) -> String {
    format!("{id:040x}")
}

/// What this node knows of the group, read once per command.
struct View<'a> {
    node: &'a Node,
    leader: Option<(NodeId, NodeAddr)>,
    members: Vec<(NodeId, NodeAddr)>,
    voters: usize,
    term: u64,
    matched: Option<std::collections::BTreeMap<NodeId, u64>>,
}

fn pair(field: &str, value: impl ToString) -> (Reply, Reply) {
    (
        Reply::bulk(field.to_string()),
        Reply::bulk(value.to_string()),
    )
}

impl<'a> View<'a> {
    fn of(node: &'a Node) -> View<'a> {
        let status = node.group.status();
        let members: Vec<(NodeId, NodeAddr)> = status
            .members
            .iter()
            .map(|(id, addr)| (*id, addr.clone()))
            .collect();
        let leader = status
            .leader
            .and_then(|id| Some((id, status.members.get(&id)?.clone())));
        let matched = status.replication.as_ref().map(|progress| {
            progress
                .iter()
                .map(|(id, index)| (*id, index.unwrap_or(0)))
                .collect()
        });
        View {
            node,
            leader,
            voters: status.voters.len(),
            members,
            term: status.term,
            matched,
        }
    }

    fn is_master_name(&self, name: &[u8]) -> bool {
        name == self.node.config.sentinel_master_name.as_bytes()
    }

    fn named(self, name: &[u8]) -> Result<View<'a>, Reply> {
        if self.is_master_name(name) {
            Ok(self)
        } else {
            Err(Reply::error("ERR No such master with that name"))
        }
    }

    fn replica_ids(&self) -> impl Iterator<Item = &(NodeId, NodeAddr)> {
        let leader = self.leader.as_ref().map(|(id, _)| *id);
        self.members
            .iter()
            .filter(move |(id, _)| Some(*id) != leader)
    }

    /// The master as SENTINEL MASTER(S) describes it; without a known leader it is
    /// reported down (`s_down,o_down`), so clients keep asking rather than connect.
    fn master(&self) -> Reply {
        let (id, host, port, flags) = match &self.leader {
            Some((id, addr)) => {
                let (host, port) = split_addr(&addr.client_addr);
                (*id, host, port, "master")
            }
            None => (0, String::new(), 0, "master,s_down,o_down,disconnected"),
        };
        let down_after = self.node.config.election_timeout_max_ms;
        Reply::Map(vec![
            pair("name", &self.node.config.sentinel_master_name),
            pair("ip", host),
            pair("port", port),
            pair("runid", if id == 0 { String::new() } else { run_id(id) }),
            pair("flags", flags),
            pair("link-pending-commands", 0),
            pair("link-refcount", 1),
            pair("last-ping-sent", 0),
            pair("last-ok-ping-reply", 0),
            pair("last-ping-reply", 0),
            pair("down-after-milliseconds", down_after),
            pair("info-refresh", 0),
            pair("role-reported", "master"),
            pair("role-reported-time", 0),
            pair("config-epoch", self.term),
            pair("num-slaves", self.replica_ids().count()),
            pair("num-other-sentinels", self.members.len().saturating_sub(1)),
            pair("quorum", self.voters / 2 + 1),
            pair("failover-timeout", down_after),
            pair("parallel-syncs", 1),
        ])
    }

    fn replicas(&self) -> Reply {
        let (master_host, master_port) = self
            .leader
            .as_ref()
            .map_or((String::new(), 0), |(_, addr)| {
                split_addr(&addr.client_addr)
            });
        let link = if self.leader.is_some() { "ok" } else { "err" };
        let replicas = self
            .replica_ids()
            .map(|(id, addr)| {
                let (host, port) = split_addr(&addr.client_addr);
                let offset = self
                    .matched
                    .as_ref()
                    .and_then(|m| m.get(id).copied())
                    .unwrap_or(0);
                Reply::Map(vec![
                    pair("name", &addr.client_addr),
                    pair("ip", host),
                    pair("port", port),
                    pair("runid", run_id(*id)),
                    pair("flags", "slave"),
                    pair("link-pending-commands", 0),
                    pair("link-refcount", 1),
                    pair("last-ping-sent", 0),
                    pair("last-ok-ping-reply", 0),
                    pair("last-ping-reply", 0),
                    pair(
                        "down-after-milliseconds",
                        self.node.config.election_timeout_max_ms,
                    ),
                    pair("info-refresh", 0),
                    pair("role-reported", "slave"),
                    pair("role-reported-time", 0),
                    pair("master-link-down-time", 0),
                    pair("master-link-status", link),
                    pair("master-host", &master_host),
                    pair("master-port", master_port),
                    pair("slave-priority", 100),
                    pair("slave-repl-offset", offset),
                    pair("replica-announced", 1),
                ])
            })
            .collect();
        Reply::Array(replicas)
    }

    /// Every other node, as the sentinels a client may ask next.
    fn sentinels(&self) -> Reply {
        let me = self.node.config.id;
        let sentinels = self
            .members
            .iter()
            .filter(|(id, _)| *id != me)
            .map(|(id, addr)| {
                let (host, port) = split_addr(&addr.client_addr);
                Reply::Map(vec![
                    pair("name", run_id(*id)),
                    pair("ip", host),
                    pair("port", port),
                    pair("runid", run_id(*id)),
                    pair("flags", "sentinel"),
                    pair("link-pending-commands", 0),
                    pair("link-refcount", 1),
                    pair("last-ping-sent", 0),
                    pair("last-ok-ping-reply", 0),
                    pair("last-ping-reply", 0),
                    pair(
                        "down-after-milliseconds",
                        self.node.config.election_timeout_max_ms,
                    ),
                    pair("last-hello-message", 0),
                    pair("voted-leader", "?"),
                    pair("voted-leader-epoch", 0),
                ])
            })
            .collect();
        Reply::Array(sentinels)
    }
}
