//! INFO and ROLE: what the node tells about itself, in Redis's field names where Redis has
//! them (clients such as Sentinel-aware libraries read `role`, `connected_slaves`,
//! `aof_enabled`) and in a `# Raft` section for the rest.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::Node;
use crate::command::REDIS_COMPAT_VERSION;
use crate::metrics::METRICS;
use crate::reply::Reply;

/// The sections of a plain INFO, in Redis 7's order (with raftlock's `raft`).
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "errorstats",
    "raft",
    "keyspace",
];

pub(super) fn info(node: &Arc<Node>, argv: &[Bytes]) -> Reply {
    let wanted: Vec<String> = argv[1..]
        .iter()
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| matches!(w.as_str(), "all" | "everything" | "default"));
    let mut text = String::new();
    for section in DEFAULT_SECTIONS {
        if all || wanted.iter().any(|w| w == section) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            write_section(node, section, &mut text);
        }
    }
    Reply::Verbatim("txt".into(), Bytes::from(text))
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.2}G", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.2}M", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.2}K", n as f64 / 1024.0),
        n => format!("{n}B"),
    }
}

fn write_section(node: &Arc<Node>, section: &str, out: &mut String) {
    let status = node.group.status();
    let leading = status.leads();
    let applied = status.applied_index;
    let c = &node.config;
    // Writing to a String cannot fail.
    let _ = match section {
        "server" => {
            let uptime = node.started_at.elapsed().as_secs();
            write!(
                out,
                "# Server\r\nredis_version:{REDIS_COMPAT_VERSION}\r\nraftlock_version:{}\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nexecutable:raftlock\r\nconfig_file:{}\r\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                node.run_id,
                c.listen.port(),
                uptime / 86_400,
                c.config_file
                    .as_ref()
                    .map_or(String::new(), |path| path.display().to_string()),
            )
        }
        "clients" => write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\n",
            node.clients.count(),
            c.max_clients,
            node.lock_waiters.count() + node.list_waiters.count()
        ),
        "memory" => {
            let rss = crate::memory::resident_bytes();
            let max = node.memory.max_bytes();
            write!(
                out,
                "# Memory\r\nused_memory:{rss}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nmaxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:noeviction\r\n",
                human_bytes(rss),
                human_bytes(rss),
                human_bytes(max)
            )
        }
        "persistence" => write!(
            out,
            "# Persistence\r\nloading:0\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\naof_last_write_status:{}\r\nrdb_bgsave_in_progress:0\r\nrdb_changes_since_last_save:0\r\nraft_fsync:always\r\nraft_snapshot_index:{}\r\nraft_purged_index:{}\r\ndisk_free_bytes:{}\r\nmin_free_disk_bytes:{}\r\n",
            if node.disk.write_refusal().is_some() { "err" } else { "ok" },
            status.snapshot_index,
            status.purged_index,
            node.disk.free_bytes().map_or(-1, |free| free as i64),
            node.config.min_free_disk_bytes,
        ),
        "stats" => write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\ntotal_protocol_errors:{}\r\n",
            node.stats.connections_received.load(Ordering::Relaxed),
            node.stats.commands_processed.load(Ordering::Relaxed),
            node.stats.rejected_connections.load(Ordering::Relaxed),
            node.stats.protocol_errors.load(Ordering::Relaxed),
        ),
        "replication" => {
            let members = &status.voters;
            if leading {
                write!(
                    out,
                    "# Replication\r\nrole:master\r\nconnected_slaves:{}\r\nmaster_repl_offset:{applied}\r\n",
                    members.len().saturating_sub(1)
                )
            } else {
                let (host, port) = leader_client_addr(node).unwrap_or(("?".into(), 0));
                write!(
                    out,
                    "# Replication\r\nrole:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\nslave_repl_offset:{applied}\r\nconnected_slaves:0\r\nmaster_repl_offset:{applied}\r\n",
                    if status.leader.is_some() { "up" } else { "down" }
                )
            }
        }
        "raft" => {
            let members: Vec<String> = status
                .members
                .iter()
                .map(|(id, n)| format!("{id}={n}"))
                .collect();
            write!(
                out,
                "# Raft\r\nraft_node_id:{}\r\nraft_group:{}\r\nraft_role:{}\r\nraft_current_term:{}\r\nraft_leader_id:{}\r\nraft_last_log_index:{}\r\nraft_applied_index:{applied}\r\nraft_members:{}\r\n",
                c.id,
                node.group.id,
                status.role.name(),
                status.term,
                status.leader.map_or("none".into(), |l| l.to_string()),
                status.last_log_index.unwrap_or(0),
                members.join(","),
            )
        }
        "cpu" => {
            let (self_sys, self_user) = cpu_seconds(libc::RUSAGE_SELF);
            let (child_sys, child_user) = cpu_seconds(libc::RUSAGE_CHILDREN);
            write!(
                out,
                "# CPU\r\nused_cpu_sys:{self_sys:.6}\r\nused_cpu_user:{self_user:.6}\r\nused_cpu_sys_children:{child_sys:.6}\r\nused_cpu_user_children:{child_user:.6}\r\n"
            )
        }
        "errorstats" => {
            out.push_str("# Errorstats\r\n");
            for (code, count) in METRICS.errors_sent() {
                let _ = write!(out, "errorstat_{code}:count={count}\r\n");
            }
            Ok(())
        }
        "keyspace" => {
            let ks = node.group.state();
            let keys = ks.key_count(node.read_time_ms(&ks));
            out.push_str("# Keyspace\r\n");
            if keys > 0 {
                write!(out, "db0:keys={keys},expires={},avg_ttl=0\r\n", ks.expires_count())
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    };
}

/// The process's (or its children's) system and user CPU time, in seconds.
fn cpu_seconds(who: libc::c_int) -> (f64, f64) {
    // SAFETY: getrusage fills the struct it is given and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return (0.0, 0.0);
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (seconds(usage.ru_stime), seconds(usage.ru_utime))
}

/// The leader's client address as (host, port), if a leader is known.
fn leader_client_addr(node: &Node) -> Option<(String, u16)> {
    let status = node.group.status();
    let addr = status.client_addr(status.leader?)?;
    Some((addr.ip().to_string(), addr.port()))
}

/// ROLE as Redis answers it: the leader is a master with its followers as replicas.
pub(super) fn role(node: &Arc<Node>) -> Reply {
    let status = node.group.status();
    let applied = status.applied_index as i64;
    if status.leads() {
        let replicas = status
            .members
            .iter()
            .filter(|(id, _)| **id != node.config.id)
            .filter_map(|(_, n)| n.client_addr.parse::<std::net::SocketAddr>().ok())
            .map(|a| {
                Reply::Array(vec![
                    Reply::bulk(a.ip().to_string()),
                    Reply::bulk(a.port().to_string()),
                    Reply::bulk(applied.to_string()),
                ])
            })
            .collect();
        Reply::Array(vec![
            Reply::bulk("master"),
            Reply::Int(applied),
            Reply::Array(replicas),
        ])
    } else {
        let (host, port) = leader_client_addr(node).unwrap_or(("?".into(), 0));
        Reply::Array(vec![
            Reply::bulk("slave"),
            Reply::bulk(host),
            Reply::Int(port as i64),
            Reply::bulk(if status.leader.is_some() {
                "connected"
            } else {
                "connect"
            }),
            Reply::Int(applied),
        ])
    }
}
