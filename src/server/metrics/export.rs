//! `/metrics`: the node's metrics in the text format Prometheus scrapes (OpenMetrics, by
//! prometheus-client's encoder). Counters and histograms come from `crate::metrics`;
//! gauges are read from the node when scraped. docs/OPERATIONS.md lists every one.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::super::Node;
use crate::config::metrics_limits::PAGE_SCAN_LOCKS;
use crate::metrics::{Histogram, METRICS};
use crate::raft::Role;

/// The content type of the text format.
pub(super) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A registry whose one collector reads `node` at every scrape.
pub(super) fn registry(node: Arc<Node>) -> Registry {
    let mut registry = Registry::with_prefix("raftlock");
    registry.register_collector(Box::new(NodeCollector(node)));
    registry
}

/// The text of one scrape.
pub(super) fn scrape(registry: &Registry) -> Result<String, fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

struct NodeCollector(Arc<Node>);

impl fmt::Debug for NodeCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeCollector")
    }
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&value)
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, value: &AtomicU64) -> fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&value.load(Ordering::Relaxed), None)
}

fn histogram(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    h: &Histogram,
) -> fmt::Result {
    let s = h.snapshot();
    enc.encode_descriptor(name, help, unit, MetricType::Histogram)?
        .encode_histogram::<NoLabelSet>(s.sum, s.count, &s.buckets, None)
}

/// A counter with one label, one sample per value of it.
fn labelled(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    samples: impl Iterator<Item = (&'static str, u64)>,
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in samples {
        family
            .encode_family(&[(label, value)].as_slice())?
            .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
    }
    Ok(())
}

impl Collector for NodeCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let node = &self.0;
        let m = &*METRICS;
        let status = node.group.status();
        let seconds = Unit::Seconds;
        let bytes = Unit::Bytes;

        let mut roles = enc.encode_descriptor(
            "raft_role",
            "This node's Raft role: 1 for the role it has, 0 for the others",
            None,
            MetricType::Gauge,
        )?;
        for role in [Role::Leader, Role::Follower, Role::Candidate, Role::Learner] {
            roles
                .encode_family(&[("role", role.name())].as_slice())?
                .encode_gauge(&i64::from(status.role == role))?;
        }
        let index = |i: u64| i64::try_from(i).unwrap_or(i64::MAX);
        gauge(
            &mut enc,
            "raft_term",
            "The current Raft term",
            index(status.term),
        )?;
        gauge(
            &mut enc,
            "raft_leader_id",
            "The id of the leader this node knows of (0: none)",
            index(status.leader.unwrap_or(0)),
        )?;
        gauge(
            &mut enc,
            "raft_commit_index",
            "The last log index this node knows committed",
            index(m.commit_index.load(Ordering::Relaxed)),
        )?;
        gauge(
            &mut enc,
            "raft_applied_index",
            "The last log index applied to this node's state machine",
            index(status.applied_index),
        )?;
        gauge(
            &mut enc,
            "raft_last_log_index",
            "The last index in this node's Raft log",
            index(status.last_log_index.unwrap_or(0)),
        )?;
        counter(
            &mut enc,
            "raft_leader_changes",
            "Times this node came to know a leader other than the last one it knew (the first one included)",
            &m.leader_changes,
        )?;
        histogram(
            &mut enc,
            "raft_entry_size",
            "Size of each Raft entry appended to this node's log, as encoded",
            Some(&bytes),
            &m.entry_bytes,
        )?;
        histogram(
            &mut enc,
            "raft_entries_per_fsync",
            "Raft entries made durable by one fsync of this node's log (group commit)",
            None,
            &m.entries_per_fsync,
        )?;
        histogram(
            &mut enc,
            "raft_commands_per_fsync",
            "Commands (client writes and internal ops) made durable by one fsync of this node's log",
            None,
            &m.commands_per_fsync,
        )?;
        histogram(
            &mut enc,
            "raft_fsync_duration",
            "Time of each fsync of this node's Raft log (appends and votes)",
            Some(&seconds),
            &m.fsync,
        )?;
        histogram(
            &mut enc,
            "raft_commit_duration",
            "On the leader, time from proposing an entry to its replies: replicated, fsynced on a majority, committed and applied",
            Some(&seconds),
            &m.commit,
        )?;
        histogram(
            &mut enc,
            "raft_apply_duration",
            "Time of each apply on this node (one or more committed entries)",
            Some(&seconds),
            &m.apply,
        )?;
        gauge(
            &mut enc,
            "proposals_queued",
            "Client writes waiting for the proposer to gather them into the next entry",
            index(node.proposer.queued() as u64),
        )?;

        counter(
            &mut enc,
            "lock_grants",
            "Lock holds granted (new, reentrant, upgraded, or from the queue), counted by this node's applies: every node counts every grant",
            &m.lock_grants,
        )?;
        counter(
            &mut enc,
            "lock_waits",
            "Lock requests that joined a queue to wait, counted by this node's applies",
            &m.lock_waits,
        )?;
        counter(
            &mut enc,
            "lock_lease_expiries",
            "Holders that lost their lease (it ran out before UNLOCK or RENEW), counted by this node's applies",
            &m.lease_expiries,
        )?;
        counter(
            &mut enc,
            "lock_wait_timeouts",
            "Queued lock requests that left ungranted (their WAIT ran out, or their session's reclaim deadline passed), counted by this node's applies",
            &m.wait_timeouts,
        )?;
        histogram(
            &mut enc,
            "lock_wait_duration",
            "Time a LOCK ... WAIT request of this node's clients waited in the queue before its grant",
            Some(&seconds),
            &m.lock_wait,
        )?;
        histogram(
            &mut enc,
            "lock_hold_duration",
            "Time from a hold's grant to its end (UNLOCK, lease expiry, DEL), in cluster time, for holds granted since this node started, counted by this node's applies",
            Some(&seconds),
            &m.lock_hold,
        )?;
        let (overview, sessions) = {
            let ks = node.group.state();
            let now = node.read_time_ms(&ks);
            (
                ks.lock_overview(now, PAGE_SCAN_LOCKS, 0, 0),
                ks.open_session_count(),
            )
        };
        gauge(
            &mut enc,
            "lock_waiters",
            "Lock requests queued now, over every lock (at most the first 10000 locks with waiters are looked at)",
            overview.waiters as i64,
        )?;
        gauge(
            &mut enc,
            "lock_queue_length_max",
            "The longest queue of one lock now",
            overview.longest_queue as i64,
        )?;
        gauge(
            &mut enc,
            "lock_sessions",
            "Client sessions open now (connections that hold or wait for a lock in this term)",
            sessions as i64,
        )?;

        gauge(
            &mut enc,
            "connections",
            "Client connections open now",
            node.clients.count() as i64,
        )?;
        counter(
            &mut enc,
            "connections_received",
            "Client connections accepted since the node started",
            &node.stats.connections_received,
        )?;
        counter(
            &mut enc,
            "connections_rejected",
            "Client connections refused: maxclients reached",
            &node.stats.rejected_connections,
        )?;
        counter(
            &mut enc,
            "protocol_errors",
            "Connections closed for a malformed or oversized request",
            &node.stats.protocol_errors,
        )?;
        labelled(
            &mut enc,
            "commands",
            "Commands this node's clients sent, by command (subcommands as container|sub)",
            "cmd",
            m.commands_run(),
        )?;
        labelled(
            &mut enc,
            "errors",
            "Error replies sent to this node's clients, by error code (other: a code not listed)",
            "code",
            m.errors_sent(),
        )?;
        Ok(())
    }
}
