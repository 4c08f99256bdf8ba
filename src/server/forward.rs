//! Followers relay their clients' data commands to the leader: each client connection of
//! a follower gets its own connection to the leader's client port, so requests keep their
//! order, blocking commands block there, and a client that leaves closes it (the leader
//! then sees the disconnect, as if the client were its own).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsConnector;

use crate::config::Keepalive;
use crate::raft::LeaderWatch;
use crate::reply::Reply;
use crate::resp::{encode_request, parse_reply};

/// Requests relayed to the leader and not yet answered, per client connection.
const MAX_RELAYED_IN_FLIGHT: usize = 4096;
/// How long requests in flight on a relay may still be answered once this node names
/// another leader, or none, or its client moved on to a relay to another leader: a leader
/// that stepped down answers at once; one cut off by a partition never does.
const ANSWER_GRACE_AFTER_LEADER_CHANGE: Duration = Duration::from_secs(1);
/// How long connecting to the leader may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Encoded requests not yet written to the leader past which the relay takes no more from
/// its client (a request is always taken whole, so one may exceed it).
const MAX_UNWRITTEN_BYTES: usize = 64 * 1024;
/// Bytes read from the leader per call when no large reply is on its way.
const READ_CHUNK_BYTES: usize = 16 * 1024;

type Relayed = (Vec<Bytes>, oneshot::Sender<Reply>);
/// The halves of a plain or TLS connection to the leader.
type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// One client's relay to the leader.
pub struct Upstream {
    pub leader: SocketAddr,
    requests: mpsc::Sender<Relayed>,
    /// The user and password it authenticated with.
    pub credentials: Option<(String, String)>,
    /// `acl::changes()` when it connected: the credentials are looked at again only
    /// after the users changed.
    pub acl_changes: u64,
}

fn relay_error(detail: &str) -> Reply {
    Reply::Error(format!(
        "TRYAGAIN the leader could not be reached ({detail}); retry"
    ))
}

impl Upstream {
    /// Connects to the leader's client port, speaking RESP3 (so replies keep their types
    /// whatever protocol the client speaks) and authenticating with `credentials`
    /// (`Node::relay_credentials`).
    /// With `metrics`, the relay closes once they stop naming `leader` as the leader;
    /// without, it lasts until either side closes it (for a node that is not the leader).
    /// With `keepalive`, a leader that stops answering (its host died, a partition) closes
    /// it too, by TCP keepalive. With `tls`, the relay speaks TLS, and checks the leader's
    /// certificate against its IP address.
    pub async fn connect(
        leader: SocketAddr,
        credentials: Option<(String, String)>,
        metrics: Option<LeaderWatch>,
        keepalive: Option<Keepalive>,
        tls: Option<TlsConnector>,
    ) -> Result<Upstream, Reply> {
        let connected = async {
            let stream = TcpStream::connect(leader)
                .await
                .map_err(|e| relay_error(&e.to_string()))?;
            let _ = stream.set_nodelay(true);
            if let Some(keepalive) = keepalive {
                super::keepalive::keep_alive(&stream, keepalive);
            }
            let Some(tls) = tls else {
                let (reader, writer) = stream.into_split();
                return Ok::<_, Reply>((Box::new(reader) as Reader, Box::new(writer) as Writer));
            };
            let name = rustls_pki_types::ServerName::IpAddress(leader.ip().into());
            let stream = tls
                .connect(name, stream)
                .await
                .map_err(|e| relay_error(&format!("TLS: {e}")))?;
            let (reader, writer) = tokio::io::split(stream);
            Ok((Box::new(reader) as Reader, Box::new(writer) as Writer))
        };
        let (reader, writer) = tokio::time::timeout(CONNECT_TIMEOUT, connected)
            .await
            .map_err(|_| relay_error("connect timed out"))??;
        let (requests, rx) = mpsc::channel(MAX_RELAYED_IN_FLIGHT);
        tokio::spawn(relay(reader, writer, rx, leader, metrics));
        let mut hello: Vec<Bytes> = vec![Bytes::from_static(b"HELLO"), Bytes::from_static(b"3")];
        if let Some((user, password)) = &credentials {
            hello.extend([
                Bytes::from_static(b"AUTH"),
                Bytes::copy_from_slice(user.as_bytes()),
                Bytes::copy_from_slice(password.as_bytes()),
            ]);
        }
        let upstream = Upstream {
            leader,
            requests,
            credentials,
            acl_changes: crate::acl::changes(),
        };
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
async fn leader_watch(metrics: &mut Option<LeaderWatch>) -> Result<(), ()> {
    match metrics {
        Some(metrics) => metrics.changed().await,
        None => std::future::pending().await,
    }
}

/// Writes queued requests and matches replies to them in order, until either side ends
/// or `metrics` (if given) stop naming `leader` as the leader. Writing never holds up
/// reading: a leader stops reading a client whose replies pile up, so a relay that waited
/// for its requests to go out before reading the replies could wait for ever.
async fn relay(
    mut reader: Reader,
    mut writer: Writer,
    mut requests: mpsc::Receiver<Relayed>,
    leader: SocketAddr,
    mut metrics: Option<LeaderWatch>,
) {
    // Written and not yet flushed: TLS keeps records it could not send at once.
    let mut unflushed = false;
    // One sender per request written or being written, in request order.
    let mut waiting: VecDeque<oneshot::Sender<Reply>> = VecDeque::new();
    let mut input = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut output = BytesMut::new();
    // Once this node names another leader (or none), or the client dropped this relay:
    // until when replies may still come.
    let mut answer_by: Option<tokio::time::Instant> = None;
    // The client sends nothing more: it left, or moved to a relay to a new leader.
    let mut client_done = false;
    let broken = loop {
        if let (None, Some(metrics)) = (answer_by, &mut metrics) {
            if metrics.leader_client_addr() != Some(leader) {
                answer_by = Some(tokio::time::Instant::now() + ANSWER_GRACE_AFTER_LEADER_CHANGE);
            }
        }
        // A client that left awaits nothing; one that moved on still awaits these.
        if client_done && waiting.iter().all(oneshot::Sender::is_closed) {
            break "client gone";
        }
        if answer_by.is_some() && waiting.is_empty() {
            break "the leader changed";
        }
        if input.capacity() - input.len() < READ_CHUNK_BYTES / 4 {
            input.reserve(READ_CHUNK_BYTES);
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
            request = requests.recv(), if !client_done && output.len() < MAX_UNWRITTEN_BYTES => {
                let Some((argv, tx)) = request else {
                    client_done = true;
                    answer_by.get_or_insert_with(|| {
                        tokio::time::Instant::now() + ANSWER_GRACE_AFTER_LEADER_CHANGE
                    });
                    continue;
                };
                // Queued before it is written: its reply cannot come earlier.
                waiting.push_back(tx);
                encode_request(&argv, &mut output);
                while output.len() < MAX_UNWRITTEN_BYTES {
                    let Ok((argv, tx)) = requests.try_recv() else { break };
                    waiting.push_back(tx);
                    encode_request(&argv, &mut output);
                }
            }
            // Cancel-safe: if another branch wins, nothing was written.
            written = write_or_flush(&mut writer, &output), if !output.is_empty() || unflushed => {
                match written {
                    Ok(Some(0)) | Err(_) => break "write failed",
                    Ok(Some(n)) => {
                        output.advance(n);
                        unflushed = true;
                    }
                    Ok(None) => unflushed = false,
                }
            }
            read = reader.read_buf(&mut input) => {
                if matches!(read, Ok(0) | Err(_)) {
                    break "leader closed the connection";
                }
                if let Err(broken) = answer_in_order(&mut input, &mut waiting) {
                    break broken;
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

/// Writes some of `output`, or flushes once it is all written: the bytes written, or None
/// for a flush. Cancel-safe: if it does not finish, nothing was written.
async fn write_or_flush(writer: &mut Writer, output: &[u8]) -> std::io::Result<Option<usize>> {
    if output.is_empty() {
        writer.flush().await?;
        return Ok(None);
    }
    writer.write(output).await.map(Some)
}

/// Hands every whole reply in `input` to the oldest request waiting for one. A reply that
/// no request awaits means the two sides disagree on which reply is whose: the relay is
/// unusable.
fn answer_in_order(
    input: &mut BytesMut,
    waiting: &mut VecDeque<oneshot::Sender<Reply>>,
) -> Result<(), &'static str> {
    loop {
        match parse_reply(input) {
            // This connection subscribes to nothing; a push answers no request.
            Ok(Some(Reply::Push(_))) => {}
            Ok(Some(reply)) => match waiting.pop_front() {
                Some(tx) => {
                    let _ = tx.send(reply);
                }
                None => return Err("a reply from the leader that no request awaits"),
            },
            Ok(None) => return Ok(()),
            Err(_) => return Err("malformed reply from the leader"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use tokio::net::TcpListener;

    use super::*;

    /// The bytes of the HELLO a relay opens with (no password).
    fn hello_bytes() -> usize {
        let mut hello = BytesMut::new();
        encode_request(&[&b"HELLO"[..], b"3"], &mut hello);
        hello.len()
    }

    /// A leader on a loopback port that answers the relay's HELLO, then runs `then`.
    async fn leader<F, Fut>(then: F) -> SocketAddr
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut hello = vec![0; hello_bytes()];
            stream.read_exact(&mut hello).await.expect("HELLO");
            stream.write_all(b"+OK\r\n").await.expect("answer HELLO");
            then(stream).await;
        });
        addr
    }

    #[tokio::test]
    async fn replies_are_read_while_requests_are_still_being_written() {
        const REQUESTS: usize = 256;
        let value = Bytes::from(vec![b'v'; 64 * 1024]);
        let argv = vec![
            Bytes::from_static(b"SET"),
            Bytes::from_static(b"k"),
            value.clone(),
        ];
        let request_bytes = {
            let mut request = BytesMut::new();
            encode_request(&argv, &mut request);
            request.len()
        };
        let reply = {
            let mut reply = format!("${}\r\n", value.len()).into_bytes();
            reply.extend_from_slice(&value);
            reply.extend_from_slice(b"\r\n");
            reply
        };
        // Like raftlock's own connections: it answers what it has read before it reads
        // more, so it stops reading while its replies wait to be read.
        let leader = leader(move |mut stream| async move {
            let mut buf = vec![0u8; 64 * 1024];
            let (mut received, mut answered) = (0, 0);
            while answered < REQUESTS {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => received += n,
                }
                while answered < received / request_bytes {
                    stream.write_all(&reply).await.expect("reply");
                    answered += 1;
                }
            }
            let _ = stream.read_to_end(&mut Vec::new()).await;
        })
        .await;
        let upstream = Upstream::connect(leader, None, None, None, None)
            .await
            .expect("connect");
        let mut replies = Vec::new();
        for _ in 0..REQUESTS {
            replies.push(upstream.send(argv.clone()).await);
        }
        let answered = async {
            for (i, reply) in replies.into_iter().enumerate() {
                match reply.await.expect("a reply") {
                    Reply::Bulk(got) if got == value => {}
                    other => panic!("reply {i}: {:.200}", format!("{other:?}")),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), answered)
            .await
            .expect("every reply within 10 s");
    }

    #[tokio::test]
    async fn a_reply_no_request_awaits_breaks_the_relay() {
        let leader = leader(|mut stream| async move {
            stream.write_all(b":1\r\n").await.expect("stray reply");
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
        })
        .await;
        let upstream = Upstream::connect(leader, None, None, None, None)
            .await
            .expect("connect");
        let reply = tokio::time::timeout(Duration::from_secs(10), async {
            upstream.send(vec![Bytes::from_static(b"PING")]).await.await
        })
        .await
        .expect("an answer within 10 s");
        match reply {
            Ok(Reply::Error(e)) if e.starts_with("TRYAGAIN") => {}
            other => panic!("expected TRYAGAIN, got {other:?}"),
        }
        assert!(upstream.is_closed());
    }
}
