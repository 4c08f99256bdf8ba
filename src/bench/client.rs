//! A small pipelining RESP client over one TCP connection.

use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::resp::{encode_command, parse_reply, Reply};

pub struct Client {
    stream: TcpStream,
    /// Requests queued since the last `flush`.
    out: Vec<u8>,
    queued: usize,
    inbuf: BytesMut,
    /// How long to wait for a reply before the benchmark gives up on the server.
    reply_timeout: Duration,
}

impl Client {
    /// Connects and, given a password, authenticates (`AUTH password`).
    pub async fn connect(
        host: &str,
        port: u16,
        password: Option<&str>,
        reply_timeout: Duration,
    ) -> anyhow::Result<Client> {
        let stream = tokio::time::timeout(reply_timeout, TcpStream::connect((host, port)))
            .await
            .with_context(|| format!("connecting to {host}:{port} timed out"))?
            .with_context(|| format!("cannot connect to {host}:{port}"))?;
        stream.set_nodelay(true)?;
        let mut client = Client {
            stream,
            out: Vec::with_capacity(4096),
            queued: 0,
            inbuf: BytesMut::with_capacity(16 * 1024),
            reply_timeout,
        };
        if let Some(password) = password {
            if let Reply::Error(err) = client.call(&[b"AUTH", password.as_bytes()]).await? {
                bail!("AUTH failed: {err}");
            }
        }
        Ok(client)
    }

    /// Adds a request to the next `flush`.
    pub fn queue(&mut self, args: &[&[u8]]) {
        encode_command(&mut self.out, args);
        self.queued += 1;
    }

    /// Sends every queued request in one write and reads their replies, in order.
    pub async fn flush(&mut self) -> anyhow::Result<Vec<Reply>> {
        let count = std::mem::take(&mut self.queued);
        self.stream.write_all(&self.out).await?;
        self.out.clear();
        let mut replies = Vec::with_capacity(count);
        for _ in 0..count {
            replies.push(self.read_reply().await?);
        }
        Ok(replies)
    }

    /// One request, one reply.
    pub async fn call(&mut self, args: &[&[u8]]) -> anyhow::Result<Reply> {
        self.queue(args);
        let mut replies = self.flush().await?;
        Ok(replies.pop().expect("one reply per request"))
    }

    async fn read_reply(&mut self) -> anyhow::Result<Reply> {
        loop {
            if let Some((reply, used)) = parse_reply(&self.inbuf)? {
                self.inbuf.advance(used);
                return Ok(reply);
            }
            let read =
                tokio::time::timeout(self.reply_timeout, self.stream.read_buf(&mut self.inbuf))
                    .await
                    .with_context(|| {
                        format!("no reply from the server within {:?}", self.reply_timeout)
                    })??;
            if read == 0 {
                bail!("the server closed the connection");
            }
        }
    }
}
