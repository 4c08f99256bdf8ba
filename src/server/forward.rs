//! Followers relay their clients' data commands to the leader: each client connection of
//! a follower gets its own connection to the leader's client port, so requests keep their
//! order, blocking commands block there, and a client that leaves closes it (the leader
//! then sees the disconnect, as if the client were its own).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use openraft::metrics::RaftServerMetrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

use crate::raft::{NodeAddr, NodeId};
use crate::reply::Reply;
use crate::resp::{encode_request, parse_reply};

/// Requests relayed to the leader and not yet answered, per client connection.
const MAX_RELAYED_IN_FLIGHT: usize = 4096;
/// How long requests in flight on a relay may still be answered once this node names
/// another leader, or none: a leader that stepped down answers at once; one cut off by a
/// partition never does.
const ANSWER_GRACE_AFTER_LEADER_CHANGE: Duration = Duration::from_secs(1);
/// How long connecting to the leader may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

type Relayed = (Vec<Bytes>, oneshot::Sender<Reply>);

/// This node's view of its Raft group's leader and members (openraft's server metrics,
/// which change with the role, the vote and the membership, not with every entry).
pub type Metrics = watch::Receiver<RaftServerMetrics<NodeId, NodeAddr>>;

/// The client address of the leader `metrics` name, if any.
fn leader_client_addr(metrics: &RaftServerMetrics<NodeId, NodeAddr>) -> Option<SocketAddr> {
    let leader = metrics.current_leader?;
    metrics
        .membership_config
        .membership()
        .get_node(&leader)
        .and_then(|n| n.client_addr.parse().ok())
}

/// One client's relay to the leader.
pub struct Upstream {
    pub leader: SocketAddr,
    requests: mpsc::Sender<Relayed>,
}

fn relay_error(detail: &str) -> Reply {
    Reply::Error(format!(
        "TRYAGAIN the leader could not be reached ({detail}); retry"
    ))
}

impl Upstream {
    /// Connects to the leader's client port, speaking RESP3 (so replies keep their types
    /// whatever protocol the client speaks) and authenticating with the node's password.
    /// With `metrics`, the relay closes once they stop naming `leader` as the leader;
    /// without, it lasts until either side closes it (for a node that is not the leader).
    pub async fn connect(
        leader: SocketAddr,
        password: Option<&str>,
        metrics: Option<Metrics>,
    ) -> Result<Upstream, Reply> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(leader))
            .await
            .map_err(|_| relay_error("connect timed out"))?
            .map_err(|e| relay_error(&e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (requests, rx) = mpsc::channel(MAX_RELAYED_IN_FLIGHT);
        tokio::spawn(relay(stream, rx, leader, metrics));
        let upstream = Upstream { leader, requests };
        let mut hello: Vec<Bytes> = vec![Bytes::from_static(b"HELLO"), Bytes::from_static(b"3")];
        if let Some(password) = password {
            hello.extend([
                Bytes::from_static(b"AUTH"),
                Bytes::from_static(b"default"),
                Bytes::copy_from_slice(password.as_bytes()),
            ]);
        }
        match upstream.send(hello).await.await {
            // The relay's own TRYAGAIN (it broke before HELLO was answered) says it all.
            Ok(Reply::Error(e)) if e.starts_with("TRYAGAIN") => Err(Reply::Error(e)),
            Ok(Reply::Error(e)) => Err(relay_error(&e)),
            Ok(_) => Ok(upstream),
            Err(_) => Err(relay_error("connection closed")),
        }
    }

    /// Queues a request; the receiver gets the leader's reply (or TRYAGAIN if the relay
    /// broke).
    pub async fn send(&self, argv: Vec<Bytes>) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError((_, tx))) = self.requests.send((argv, tx)).await {
            let _ = tx.send(relay_error("connection closed"));
        }
        rx
    }

    pub fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }
}

/// Waits until `at`; never, without it.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next change of `metrics`; never, without them.
async fn leader_watch(metrics: &mut Option<Metrics>) -> Result<(), watch::error::RecvError> {
    match metrics {
        Some(metrics) => metrics.changed().await,
        None => std::future::pending().await,
    }
}

/// Writes queued requests and matches replies to them in order, until either side ends
/// or `metrics` (if given) stop naming `leader` as the leader.
async fn relay(
    stream: TcpStream,
    mut requests: mpsc::Receiver<Relayed>,
    leader: SocketAddr,
    mut metrics: Option<Metrics>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let mut waiting: VecDeque<oneshot::Sender<Reply>> = VecDeque::new();
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut output = BytesMut::new();
    // Once this node names another leader (or none): until when replies may still come.
    let mut answer_by: Option<tokio::time::Instant> = None;
    let broken = loop {
        if let (None, Some(metrics)) = (answer_by, &mut metrics) {
            if leader_client_addr(&metrics.borrow_and_update()) != Some(leader) {
                answer_by = Some(tokio::time::Instant::now() + ANSWER_GRACE_AFTER_LEADER_CHANGE);
            }
        }
        if answer_by.is_some() && waiting.is_empty() {
            break "the leader changed";
        }
        tokio::select! {
            changed = leader_watch(&mut metrics), if answer_by.is_none() => {
                if changed.is_err() {
                    break "this node is shutting down";
                }
            }
            () = sleep_until_some(answer_by), if answer_by.is_some() => {
                break "the leader changed and did not answer";
            }
            request = requests.recv() => {
                let Some((argv, tx)) = request else { break "client gone" };
                encode_request(&argv, &mut output);
                waiting.push_back(tx);
                while let Ok((argv, tx)) = requests.try_recv() {
                    encode_request(&argv, &mut output);
                    waiting.push_back(tx);
                }
                if writer.write_all(&output).await.is_err() {
                    break "write failed";
                }
                output.clear();
            }
            read = reader.read_buf(&mut input) => {
                if matches!(read, Ok(0) | Err(_)) {
                    break "leader closed the connection";
                }
                let mut malformed = false;
                loop {
                    match parse_reply(&mut input) {
                        Ok(Some(Reply::Push(_))) => {}
                        Ok(Some(reply)) => match waiting.pop_front() {
                            Some(tx) => { let _ = tx.send(reply); }
                            None => break,
                        },
                        Ok(None) => break,
                        Err(_) => {
                            malformed = true;
                            break;
                        }
                    }
                }
                if malformed {
                    break "malformed reply from the leader";
                }
            }
        }
    };
    requests.close();
    while let Ok((_, tx)) = requests.try_recv() {
        waiting.push_back(tx);
    }
    for tx in waiting {
        let _ = tx.send(relay_error(broken));
    }
}
