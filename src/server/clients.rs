//! The registry of connected clients, for CLIENT LIST/INFO, INFO clients and `max_clients`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::resp::Protocol;

/// What CLIENT LIST shows of one connection; updated by the connection as it runs.
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub name: String,
    pub lib_name: String,
    pub lib_ver: String,
    pub protocol: Protocol,
    pub connected_at: Instant,
    pub last_active: Instant,
    pub last_command: String,
    /// The ACL user the connection runs as.
    pub user: String,
}

impl ClientInfo {
    /// One line in Redis's CLIENT LIST format.
    pub fn describe(&self) -> String {
        let now = Instant::now();
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.name,
            now.duration_since(self.connected_at).as_secs(),
            now.duration_since(self.last_active).as_secs(),
            if self.last_command.is_empty() { "NULL" } else { &self.last_command },
            self.user,
            match self.protocol {
                Protocol::Resp2 => 2,
                Protocol::Resp3 => 3,
            },
            self.lib_name,
            self.lib_ver,
        )
    }
}

pub type ClientHandle = Arc<Mutex<ClientInfo>>;

#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    live: Mutex<BTreeMap<u64, ClientHandle>>,
}

impl Clients {
    /// Registers a connection unless `max_clients` are already connected.
    pub fn register(
        &self,
        addr: SocketAddr,
        laddr: SocketAddr,
        max_clients: usize,
    ) -> Option<ClientHandle> {
        let mut live = self.live.lock().expect("clients lock");
        if live.len() >= max_clients {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let info = Arc::new(Mutex::new(ClientInfo {
            id,
            addr,
            laddr,
            name: String::new(),
            lib_name: String::new(),
            lib_ver: String::new(),
            protocol: Protocol::Resp2,
            connected_at: now,
            last_active: now,
            last_command: String::new(),
            user: "default".into(),
        }));
        live.insert(id, info.clone());
        Some(info)
    }

    pub fn unregister(&self, id: u64) {
        self.live.lock().expect("clients lock").remove(&id);
    }

    pub fn count(&self) -> usize {
        self.live.lock().expect("clients lock").len()
    }

    /// CLIENT LIST lines, oldest connection first.
    pub fn list(&self, ids: Option<&[u64]>) -> String {
        let live = self.live.lock().expect("clients lock");
        live.values()
            .map(|c| c.lock().expect("client lock"))
            .filter(|c| ids.is_none_or(|ids| ids.contains(&c.id)))
            .map(|c| c.describe() + "\n")
            .collect()
    }
}
