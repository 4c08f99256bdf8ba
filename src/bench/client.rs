//! A small pipelining RESP client over one TCP connection, or TLS over it.

use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::resp::{encode_command, parse_reply, Reply};

/// A connection's stream: plain TCP or TLS.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// How to reach the server beyond its address: TLS, and the credentials to AUTH with.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    pub tls: Option<tokio_rustls::TlsConnector>,
    /// `AUTH [user] password`.
    pub user: Option<String>,
    pub password: Option<String>,
}

pub struct Client {
    stream: Box<dyn Stream>,
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
        let options = ConnectOptions {
            password: password.map(str::to_string),
            ..ConnectOptions::default()
        };
        Client::connect_with(host, port, &options, reply_timeout).await
    }

    /// Connects, over TLS if `options` say so, and authenticates (`AUTH [user] password`).
    pub async fn connect_with(
        host: &str,
        port: u16,
        options: &ConnectOptions,
        reply_timeout: Duration,
    ) -> anyhow::Result<Client> {
        let tcp = tokio::time::timeout(reply_timeout, TcpStream::connect((host, port)))
            .await
            .with_context(|| format!("connecting to {host}:{port} timed out"))?
            .with_context(|| format!("cannot connect to {host}:{port}"))?;
        tcp.set_nodelay(true)?;
        let stream: Box<dyn Stream> = match &options.tls {
            None => Box::new(tcp),
            Some(connector) => {
                let name = match host.parse::<std::net::IpAddr>() {
                    Ok(ip) => rustls_pki_types::ServerName::IpAddress(ip.into()),
                    Err(_) => rustls_pki_types::ServerName::try_from(host.to_string())
                        .with_context(|| format!("'{host}' is not a host name"))?,
                };
                let tls = tokio::time::timeout(reply_timeout, connector.connect(name, tcp))
                    .await
                    .with_context(|| format!("TLS with {host}:{port} timed out"))?
                    .with_context(|| format!("TLS with {host}:{port}"))?;
                Box::new(tls)
            }
        };
        let mut client = Client {
            stream,
            out: Vec::with_capacity(4096),
            queued: 0,
            inbuf: BytesMut::with_capacity(16 * 1024),
            reply_timeout,
        };
        if let Some(password) = &options.password {
            let mut auth: Vec<&[u8]> = vec![b"AUTH"];
            auth.extend(options.user.as_deref().map(str::as_bytes));
            auth.push(password.as_bytes());
            if let Reply::Error(err) = client.call(&auth).await? {
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
