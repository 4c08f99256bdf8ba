//! A test-only TCP proxy on loopback, for network partitions: it forwards every
//! connection to one target until it is cut. Cutting closes the connections it carries
//! and black-holes new ones (accepted, never forwarded, never answered), as a dropped
//! link looks to the peer; healing closes the black-holed ones and forwards again.
//!
//! Plain threads: one accepting, two per forwarded connection. Every thread ends when
//! its connection closes or the proxy is dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How often blocked threads look at the cut and stop flags.
const POLL: Duration = Duration::from_millis(50);

struct Shared {
    target: SocketAddr,
    cut: AtomicBool,
    stop: AtomicBool,
    /// Both ends of every connection accepted and not yet closed by a cut or a heal.
    conns: Mutex<Vec<TcpStream>>,
}

impl Shared {
    fn close_all(&self) {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        for conn in conns.drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    fn remember(&self, stream: &TcpStream) {
        if let Ok(clone) = stream.try_clone() {
            self.conns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(clone);
        }
    }
}

pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// A proxy on a fresh loopback port that forwards to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking proxy listener");
        let shared = Arc::new(Shared {
            target,
            cut: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = shared.clone();
            thread::spawn(move || accept_loop(listener, shared))
        };
        Proxy {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Drops the link: closes what it carries, black-holes new connections.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        self.shared.close_all();
    }

    /// Forwards again; the black-holed connections are closed, so peers reconnect.
    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
        self.shared.close_all();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.close_all();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                let _ = client.set_nonblocking(false);
                let _ = client.set_nodelay(true);
                if shared.cut.load(Ordering::SeqCst) {
                    // Black hole: held open, never read, closed by heal() or drop.
                    shared.remember(&client);
                    continue;
                }
                let Ok(upstream) =
                    TcpStream::connect_timeout(&shared.target, Duration::from_secs(1))
                else {
                    continue;
                };
                let _ = upstream.set_nodelay(true);
                shared.remember(&client);
                shared.remember(&upstream);
                for (from, to) in [(&client, &upstream), (&upstream, &client)] {
                    let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
                        let _ = client.shutdown(Shutdown::Both);
                        let _ = upstream.shutdown(Shutdown::Both);
                        break;
                    };
                    let shared = shared.clone();
                    thread::spawn(move || pump(from, to, &shared));
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(POLL / 5),
            Err(_) => thread::sleep(POLL),
        }
    }
}

/// Copies `from` to `to` until either closes, the link is cut, or the proxy stops; then
/// closes both.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared) {
    let _ = from.set_read_timeout(Some(POLL));
    let mut buf = [0u8; 64 * 1024];
    loop {
        if shared.stop.load(Ordering::SeqCst) || shared.cut.load(Ordering::SeqCst) {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // Bytes read as the link was cut are dropped with it.
                if shared.cut.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
