//! The live page (`/`, page.html, served from the binary) and its event stream
//! (`/events`, server-sent events): the node's view of the cluster and the busiest locks,
//! as JSON. One task builds the view every `PAGE_EVENTS_INTERVAL_MS` while anyone
//! watches and publishes it when it changed; every open stream sends what it publishes.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::channel::Channel;
use hyper::body::Frame;
use serde::Serialize;
use tokio::sync::watch;

use super::super::Node;
use crate::config::metrics_limits::{
    PAGE_EVENTS_INTERVAL_MS, PAGE_KEEPALIVE_MS, PAGE_LOCKS, PAGE_SCAN_LOCKS, PAGE_WAITERS_PER_LOCK,
};
use crate::state::locks::overview::LockOverview;

/// The page itself.
pub(super) const HTML: &str = include_str!("page.html");

/// Frames an event stream may have queued for a slow reader before the feed waits.
const STREAM_BUFFER_FRAMES: usize = 4;

/// What the page shows, as of one moment.
#[derive(Serialize, PartialEq)]
struct View {
    node_id: u64,
    role: &'static str,
    term: u64,
    leader: Option<u64>,
    applied_index: u64,
    last_log_index: u64,
    connections: usize,
    sessions: usize,
    members: Vec<MemberView>,
    locks: LockOverview,
}

#[derive(Serialize, PartialEq)]
struct MemberView {
    id: u64,
    client_addr: String,
    raft_addr: String,
    /// `leader`, `voter` or `learner`, as this node knows them.
    state: &'static str,
    /// On the leader, the last index the member has (`None`: not known here).
    matched: Option<u64>,
}

fn view(node: &Node) -> View {
    let status = node.group.status();
    let (locks, sessions) = {
        let ks = node.group.state();
        let now = node.read_time_ms(&ks);
        (
            ks.lock_overview(now, PAGE_SCAN_LOCKS, PAGE_LOCKS, PAGE_WAITERS_PER_LOCK),
            ks.open_session_count(),
        )
    };
    let members = status
        .members
        .iter()
        .map(|(id, addr)| MemberView {
            id: *id,
            client_addr: addr.client_addr.clone(),
            raft_addr: addr.raft_addr.clone(),
            state: if status.leader == Some(*id) {
                "leader"
            } else if status.voters.contains(id) {
                "voter"
            } else {
                "learner"
            },
            matched: if *id == status.id {
                status.last_log_index
            } else {
                status
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(id).copied().flatten())
            },
        })
        .collect();
    View {
        node_id: status.id,
        role: status.role.name(),
        term: status.term,
        leader: status.leader,
        applied_index: status.applied_index,
        last_log_index: status.last_log_index.unwrap_or(0),
        connections: node.clients.count(),
        sessions,
        members,
        locks,
    }
}

/// The latest view as JSON, for every event stream; empty while nobody watches (so a
/// new stream never starts with a stale view).
pub(super) struct Feed {
    latest: watch::Sender<Arc<str>>,
}

impl Feed {
    /// Starts the task that keeps the view while anyone watches.
    pub(super) fn start(node: Arc<Node>) -> Arc<Feed> {
        let feed = Arc::new(Feed {
            latest: watch::channel(Arc::from("")).0,
        });
        tokio::spawn(refresh(node, feed.clone()));
        feed
    }

    /// An event stream of the view: now, then on every change, with a comment now and
    /// then so proxies keep the connection open.
    pub(super) fn stream(&self) -> Channel<Bytes, Infallible> {
        let (mut tx, body) = Channel::new(STREAM_BUFFER_FRAMES);
        let mut latest = self.latest.subscribe();
        latest.mark_changed();
        tokio::spawn(async move {
            let keepalive = Duration::from_millis(PAGE_KEEPALIVE_MS);
            loop {
                let frame = match tokio::time::timeout(keepalive, latest.changed()).await {
                    Ok(Ok(())) => {
                        let json = latest.borrow_and_update().clone();
                        if json.is_empty() {
                            continue;
                        }
                        Bytes::from(format!("data: {json}\n\n"))
                    }
                    Ok(Err(_)) => return,
                    Err(_) => Bytes::from_static(b": keepalive\n\n"),
                };
                // The reader left.
                if tx.send(Frame::data(frame)).await.is_err() {
                    return;
                }
            }
        });
        body
    }
}

/// Rebuilds the view while a stream is open; publishes it when it changed.
async fn refresh(node: Arc<Node>, feed: Arc<Feed>) {
    let mut tick = tokio::time::interval(Duration::from_millis(PAGE_EVENTS_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<View> = None;
    loop {
        tick.tick().await;
        if feed.latest.receiver_count() == 0 {
            if last.take().is_some() {
                feed.latest.send_replace(Arc::from(""));
            }
            continue;
        }
        let now = view(&node);
        if last.as_ref() == Some(&now) {
            continue;
        }
        match serde_json::to_string(&now) {
            Ok(json) => {
                feed.latest.send_replace(Arc::from(json));
            }
            Err(err) => tracing::warn!(%err, "encoding the live page's view"),
        }
        last = Some(now);
    }
}
