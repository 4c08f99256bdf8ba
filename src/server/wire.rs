//! The socket: reading requests' bytes, writing replies in batches, and waiting on
//! something else while still noticing a client that leaves.

use std::future::Future;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::subscribe_commands::Subscriptions;
use crate::resp::{encode, Protocol};

/// Replies are flushed to the socket whenever this much output has gathered.
pub(super) const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;
/// Bytes read from the socket per call when no large bulk is on its way.
pub(super) const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Either half of a plain or a TLS connection: everything above the socket is the same
/// for both.
type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// The socket's two halves and the bytes read but not yet parsed.
pub(super) struct Wire {
    reader: ReadHalf,
    writer: WriteHalf,
    pub input: BytesMut,
    pub output: BytesMut,
}

/// The client went away (or its socket failed): stop serving it.
pub(super) struct Disconnected;

impl Wire {
    pub fn new(stream: TcpStream) -> Wire {
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.into_split();
        Wire::from_halves(Box::new(reader), Box::new(writer))
    }

    /// A TLS connection (its TCP stream set up as `new` does, before the handshake).
    pub fn tls<S: AsyncRead + AsyncWrite + Send + 'static>(stream: S) -> Wire {
        let (reader, writer) = tokio::io::split(stream);
        Wire::from_halves(Box::new(reader), Box::new(writer))
    }

    fn from_halves(reader: ReadHalf, writer: WriteHalf) -> Wire {
        Wire {
            reader,
            writer,
            input: BytesMut::with_capacity(READ_CHUNK_BYTES),
            output: BytesMut::with_capacity(READ_CHUNK_BYTES),
        }
    }

    pub async fn shutdown(&mut self) {
        let _ = self.writer.shutdown().await;
    }
}

/// Waits for the client's next bytes; meanwhile a subscriber's messages are sent as they
/// come. A subscriber that fell past its output limit is disconnected (an error result).
pub(super) async fn read_or_deliver(
    wire: &mut Wire,
    subs: &mut Subscriptions,
    proto: Protocol,
) -> std::io::Result<usize> {
    let Some(inbox) = subs.inbox.as_mut() else {
        return wire.reader.read_buf(&mut wire.input).await;
    };
    let gone = || std::io::Error::from(std::io::ErrorKind::ConnectionAborted);
    let overflowed = inbox.overflowed.clone();
    loop {
        tokio::select! {
            read = wire.reader.read_buf(&mut wire.input) => return read,
            message = inbox.recv() => {
                let Some(message) = message else { return Err(gone()) };
                // Pushes are arrays in RESP2 and push frames in RESP3.
                encode(&message, proto, &mut wire.output);
                while wire.output.len() < OUTPUT_FLUSH_BYTES {
                    let Some(message) = inbox.try_recv() else { break };
                    encode(&message, proto, &mut wire.output);
                }
                flush(wire).await.map_err(|_| gone())?;
            }
            () = overflowed.notified() => return Err(gone()),
        }
    }
}

/// Reads what the socket already holds, without waiting: how many bytes came.
pub(super) async fn read_now(wire: &mut Wire) -> usize {
    if wire.input.capacity() - wire.input.len() < READ_CHUNK_BYTES / 4 {
        wire.input.reserve(READ_CHUNK_BYTES);
    }
    // A zero timeout polls the read once: ready data is taken, nothing is waited for.
    let read = tokio::time::timeout(
        std::time::Duration::ZERO,
        wire.reader.read_buf(&mut wire.input),
    );
    match read.await {
        Ok(Ok(n)) => n,
        _ => 0,
    }
}

pub(super) async fn flush(wire: &mut Wire) -> Result<(), Disconnected> {
    if !wire.output.is_empty() {
        wire.writer
            .write_all(&wire.output)
            .await
            .map_err(|_| Disconnected)?;
        // TLS keeps records it could not send yet; a plain socket has nothing to flush.
        wire.writer.flush().await.map_err(|_| Disconnected)?;
        wire.output.clear();
    }
    Ok(())
}

/// Waits for `done` while watching the socket, so that a client that leaves while its
/// request is blocked is noticed.
pub(super) async fn wait_watching_socket<T>(
    wire: &mut Wire,
    done: impl Future<Output = T>,
) -> Result<T, Disconnected> {
    // Requests pipelined behind the blocked one are read but not yet parsed; past this
    // much the socket is left unread until the wait ends.
    let limit = READ_CHUNK_BYTES * 64;
    tokio::pin!(done);
    loop {
        let room = wire.input.len() < limit;
        tokio::select! {
            output = &mut done => return Ok(output),
            read = wire.reader.read_buf(&mut wire.input), if room => {
                if matches!(read, Ok(0) | Err(_)) {
                    return Err(Disconnected);
                }
            }
        }
    }
}
