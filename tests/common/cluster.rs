//! A cluster of real `raftlock` processes on loopback ports, each with its own data dir
//! in one temporary directory. Nodes are killed (SIGKILL), paused (SIGSTOP/SIGCONT),
//! restarted and added by the tests; every process ends when the `Cluster` is dropped.
//!
//! `Cluster::start_partitionable` puts a proxy on every directed link between nodes, for
//! network partitions: each node's `--initial-cluster` gives its own entry its real
//! addresses and every peer the addresses of the proxies from it to that peer (Raft port
//! and client port, which followers relay to). Every node bootstraps from its own view;
//! the views agree on ids and differ only in addresses, and the test changes no
//! membership afterwards, so each node keeps reaching its peers through its proxies.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::fake_clock::FakeClock;
use super::proxy::Proxy;
use super::{free_ports, retry_port_clash, CLIENT_TIMEOUT};

/// How much of each node's log a failing test shows.
const LOG_TAIL_LINES: usize = 200;

pub struct ClusterNode {
    pub id: u64,
    pub port: u16,
    pub raft_port: u16,
    pub data_dir: PathBuf,
    /// `--initial-cluster ...` or `--join`, then the cluster's extra flags.
    args: Vec<String>,
    /// The node's wall clock, when the cluster was started with fake clocks.
    pub clock: Option<FakeClock>,
    child: Option<Child>,
}

impl ClusterNode {
    pub fn client_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn raft_addr(&self) -> String {
        format!("127.0.0.1:{}", self.raft_port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// How the node's process ended, with its log, if it has.
    fn exited(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        Some(format!("node {} {status}: {}", self.id, self.log()))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .expect("open node log");
        let child = Command::new(env!("CARGO_BIN_EXE_raftlock"))
            .arg("serve")
            .arg("--id")
            .arg(self.id.to_string())
            .arg("--listen")
            .arg(self.client_addr())
            .arg("--raft-listen")
            .arg(self.raft_addr())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .envs(self.clock.iter().flat_map(FakeClock::env))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start raftlock");
        self.child = Some(child);
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("node running").id();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// A connection with timeouts, or an error if the node does not answer.
    pub fn try_connect(&self) -> redis::RedisResult<redis::Connection> {
        self.try_connect_waiting(CLIENT_TIMEOUT)
    }

    /// A connection whose replies may take up to `timeout` (short for probes: a paused
    /// node accepts connections but answers nothing).
    pub fn try_connect_waiting(&self, timeout: Duration) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(format!("redis://{}/", self.client_addr()))?;
        let con = client.get_connection_with_timeout(Duration::from_secs(2))?;
        con.set_read_timeout(Some(timeout))?;
        con.set_write_timeout(Some(timeout))?;
        Ok(con)
    }

    pub fn connect(&self) -> redis::Connection {
        self.try_connect()
            .unwrap_or_else(|e| panic!("connect to node {}: {e}", self.id))
    }

    /// `RAFT.INFO` of this node as field -> value (member lines included as `nodeI`).
    pub fn raft_info(&self) -> BTreeMap<String, String> {
        let mut con = self.connect();
        let text: String = redis::cmd("RAFT.INFO")
            .query(&mut con)
            .unwrap_or_else(|e| panic!("RAFT.INFO on node {}: {e}", self.id));
        parse_info(&text)
    }
}

/// `field:value` lines as a map.
pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim_end().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// How a cluster's nodes are connected and clocked.
#[derive(Clone, Default)]
struct Layout {
    /// Every link between nodes goes through a proxy (`Cluster::isolate`).
    proxied: bool,
    /// Every node's wall clock can be moved (`ClusterNode::clock`).
    fake_clocks: bool,
    /// Every node's data dir is made from this backup (`raftlock restore`) first.
    restore_from: Option<PathBuf>,
}

/// The proxies node `from` reaches node `to` through.
struct Link {
    from: u64,
    to: u64,
    raft: Proxy,
    client: Proxy,
}

pub struct Cluster {
    pub nodes: Vec<ClusterNode>,
    extra_args: Vec<String>,
    /// Empty unless started with `start_partitionable`.
    links: Vec<Link>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// `n` nodes bootstrapped with `--initial-cluster`, each started with `extra_args`;
    /// returns once a leader serves writes.
    pub fn start(n: u64, extra_args: &[&str]) -> Cluster {
        Cluster::start_with(n, extra_args, Layout::default())
    }

    /// As `start`, with every node's wall clock under the test's control
    /// (`ClusterNode::clock`).
    pub fn start_with_fake_clocks(n: u64, extra_args: &[&str]) -> Cluster {
        let layout = Layout {
            fake_clocks: true,
            ..Layout::default()
        };
        Cluster::start_with(n, extra_args, layout)
    }

    /// As `start`, with every node reaching every peer through a proxy of its own, so
    /// `isolate` can cut a node off and `heal` can connect it again.
    pub fn start_partitionable(n: u64, extra_args: &[&str]) -> Cluster {
        let layout = Layout {
            proxied: true,
            ..Layout::default()
        };
        Cluster::start_with(n, extra_args, layout)
    }

    /// As `start`, with every node's data dir made from the backup file `backup` first
    /// (`raftlock restore`).
    pub fn start_restored(n: u64, extra_args: &[&str], backup: &std::path::Path) -> Cluster {
        let layout = Layout {
            restore_from: Some(backup.to_path_buf()),
            ..Layout::default()
        };
        Cluster::start_with(n, extra_args, layout)
    }

    /// Starts the nodes and waits for a leader. A node that could not bind its ports
    /// (another process took one after `free_ports` chose it) would leave a cluster one
    /// member short, whose tests fail far from the cause: the whole cluster starts again
    /// on new ports instead.
    fn start_with(n: u64, extra_args: &[&str], layout: Layout) -> Cluster {
        let cluster = retry_port_clash("a cluster node did not start", || {
            // Each attempt takes new ports; dropping a failed cluster ends its nodes.
            let mut cluster = Cluster::spawn_all(n, extra_args, layout.clone());
            cluster.all_listening(Duration::from_secs(20))?;
            Ok(cluster)
        });
        cluster.wait_leader(Duration::from_secs(30));
        cluster
    }

    /// Waits until every node accepts connections on its client and Raft ports; the
    /// exit status and log of a node that ended first.
    fn all_listening(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        for node in &mut self.nodes {
            loop {
                if let Some(exit) = node.exited() {
                    return Err(exit);
                }
                let listening = [node.port, node.raft_port].iter().all(|&port| {
                    let addr = SocketAddr::from(([127, 0, 0, 1], port));
                    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
                });
                if listening {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!("node {} is not listening: {}", node.id, node.log()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // A port another server listens on answers too: its node has exited by now.
        match self.nodes.iter_mut().find_map(ClusterNode::exited) {
            Some(exit) => Err(exit),
            None => Ok(()),
        }
    }

    fn spawn_all(n: u64, extra_args: &[&str], layout: Layout) -> Cluster {
        let Layout {
            proxied,
            fake_clocks,
            restore_from,
        } = layout;
        let dir = tempfile::tempdir().expect("temp dir");
        let ports = free_ports(2 * n as usize);
        let mut nodes: Vec<ClusterNode> = (1..=n)
            .map(|id| ClusterNode {
                id,
                port: ports[2 * (id as usize - 1)],
                raft_port: ports[2 * (id as usize - 1) + 1],
                data_dir: dir.path().join(format!("n{id}")),
                args: Vec::new(),
                clock: fake_clocks
                    .then(|| FakeClock::new(dir.path().join(format!("n{id}.faketime")))),
                child: None,
            })
            .collect();
        let mut links = Vec::new();
        if proxied {
            for from in &nodes {
                for to in nodes.iter().filter(|to| to.id != from.id) {
                    let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
                    links.push(Link {
                        from: from.id,
                        to: to.id,
                        raft: Proxy::start(addr(to.raft_port)),
                        client: Proxy::start(addr(to.port)),
                    });
                }
            }
        }
        // Node `me`'s view of the members: its own real addresses, and its proxies to
        // each peer if there are any.
        let members = |me: u64| {
            nodes
                .iter()
                .map(|n| {
                    let via = links.iter().find(|l: &&Link| l.from == me && l.to == n.id);
                    match via {
                        Some(link) => {
                            format!("{}={}/{}", n.id, link.client.addr(), link.raft.addr())
                        }
                        None => format!("{}={}/{}", n.id, n.client_addr(), n.raft_addr()),
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let views: Vec<String> = nodes.iter().map(|n| members(n.id)).collect();
        let extra_args: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        for (node, view) in nodes.iter_mut().zip(views) {
            if let Some(backup) = &restore_from {
                super::restore(backup, &node.data_dir, &[]);
            }
            node.args = vec!["--initial-cluster".into(), view];
            // The views differ in the proxies' addresses, so the cluster ids derived from
            // them would too (src/raft/cluster_id.rs): name the cluster once for all.
            if proxied {
                node.args
                    .extend(["--cluster-id".into(), "proxied-test-cluster".into()]);
            }
            node.args.extend(extra_args.iter().cloned());
            node.spawn();
        }
        Cluster {
            nodes,
            extra_args,
            links,
            dir,
        }
    }

    /// Cuts every link to and from `id` (Raft and relayed client traffic between nodes;
    /// test clients still reach every node directly).
    pub fn isolate(&self, id: u64) {
        assert!(
            !self.links.is_empty(),
            "not started with start_partitionable"
        );
        for link in self.links.iter().filter(|l| l.from == id || l.to == id) {
            link.raft.cut();
            link.client.cut();
        }
    }

    /// Restores every link to and from `id`.
    pub fn heal(&self, id: u64) {
        for link in self.links.iter().filter(|l| l.from == id || l.to == id) {
            link.raft.heal();
            link.client.heal();
        }
    }

    pub fn node(&self, id: u64) -> &ClusterNode {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: u64) -> &mut ClusterNode {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    pub fn running(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.iter().filter(|n| n.is_running())
    }

    /// The node that says it leads, asked of running nodes (ROLE is served locally).
    pub fn leader(&self) -> Option<u64> {
        self.running().find_map(|node| {
            let mut con = node.try_connect_waiting(Duration::from_secs(1)).ok()?;
            let role: redis::Value = redis::cmd("ROLE").query(&mut con).ok()?;
            match role {
                redis::Value::Array(items) => {
                    (super::value_text(&items[0]) == "master").then_some(node.id)
                }
                _ => None,
            }
        })
    }

    /// Waits until some running node leads and a write through it commits; the id.
    pub fn wait_leader(&self, timeout: Duration) -> u64 {
        super::wait_until_a_leader_writes(
            timeout,
            || {
                let id = self.leader()?;
                let con = self
                    .node(id)
                    .try_connect_waiting(Duration::from_secs(5))
                    .ok()?;
                Some((id, con))
            },
            || self.logs(),
        )
    }

    /// Waits until every running node has applied everything the leader `leader` has; a
    /// node that joined late may be behind for a while, and a node behind cannot win a vote.
    pub fn wait_replicated(&self, leader: u64, timeout: Duration) {
        let applied = |id: u64| -> u64 {
            self.node(id).raft_info()["last_applied_index"]
                .parse()
                .unwrap()
        };
        let target = applied(leader);
        let deadline = Instant::now() + timeout;
        while self.running().any(|n| applied(n.id) < target) {
            assert!(
                Instant::now() < deadline,
                "not every node applied index {target} within {timeout:?}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until a leader other than `old` serves writes; its id.
    pub fn wait_new_leader(&self, old: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let id = self.wait_leader(left.max(Duration::from_millis(1)));
            if id != old {
                return id;
            }
            assert!(Instant::now() < deadline, "node {old} still leads");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Some running node other than `but`.
    pub fn other_than(&self, but: &[u64]) -> u64 {
        self.running()
            .map(|n| n.id)
            .find(|id| !but.contains(id))
            .expect("another running node")
    }

    /// The last `LOG_TAIL_LINES` lines of every node's log, leaving out the RPC timeouts
    /// that a node cut off or killed makes its peers log ten times a second.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let log = n.log();
                let timeouts = log.lines().filter(|l| l.contains("timeout after")).count();
                let tail: Vec<&str> = log
                    .lines()
                    .filter(|l| !l.contains("timeout after"))
                    .rev()
                    .take(LOG_TAIL_LINES)
                    .collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!(
                    "--- node {} ({timeouts} lines about RPC timeouts left out) ---\n{}\n",
                    n.id,
                    tail.join("\n")
                )
            })
            .collect()
    }

    /// SIGKILL.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.node_mut(id).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits up to `timeout` for the process to exit; its exit status
    /// (`None`: still running at the timeout, and then killed).
    pub fn terminate(&mut self, id: u64, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.stop_by_signal(id, "TERM", timeout)
    }

    /// Sends `signal` (`TERM`, `INT`), then waits as `terminate` does.
    pub fn stop_by_signal(
        &mut self,
        id: u64,
        signal: &str,
        timeout: Duration,
    ) -> Option<std::process::ExitStatus> {
        self.node(id).signal(signal);
        let node = self.node_mut(id);
        let deadline = Instant::now() + timeout;
        let mut child = node.child.take().expect("node running");
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGSTOP: the process stays, answers nothing.
    pub fn pause(&self, id: u64) {
        self.node(id).signal("STOP");
    }

    /// SIGCONT.
    pub fn resume(&self, id: u64) {
        self.node(id).signal("CONT");
    }

    /// Starts a killed node again on its ports and data dir.
    pub fn restart(&mut self, id: u64) {
        self.kill(id);
        self.node_mut(id).spawn();
    }

    /// Kills node `id` and starts it again with `flags` after its own.
    pub fn restart_with(&mut self, id: u64, flags: &[&str]) {
        self.kill(id);
        let node = self.node_mut(id);
        node.args.extend(flags.iter().map(|f| f.to_string()));
        node.spawn();
    }

    /// Starts a new node with `--join` (it waits to be added); its id.
    pub fn spawn_joining(&mut self) -> u64 {
        let id = self.nodes.iter().map(|n| n.id).max().unwrap_or(0) + 1;
        let mut args = vec!["--join".to_string()];
        args.extend(self.extra_args.iter().cloned());
        let ports = free_ports(2);
        let mut node = ClusterNode {
            id,
            port: ports[0],
            raft_port: ports[1],
            data_dir: self.dir.path().join(format!("n{id}")),
            args,
            clock: None,
            child: None,
        };
        node.spawn();
        let deadline = Instant::now() + Duration::from_secs(20);
        while node.try_connect().is_err() {
            assert!(
                Instant::now() < deadline,
                "node {id} did not start: {}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.nodes.push(node);
        id
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                // A paused process must run again to die of SIGKILL promptly everywhere.
                let _ = Command::new("kill")
                    .arg("-CONT")
                    .arg(child.id().to_string())
                    .status();
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A client that follows the cluster as a Sentinel client does: it asks any node for the
/// master (`SENTINEL get-master-addr-by-name raftlock`), talks to it, and asks again when
/// the connection fails.
pub struct FollowingClient {
    /// Client ports of the nodes to ask.
    pub seeds: Vec<u16>,
    con: Option<redis::Connection>,
}

impl FollowingClient {
    pub fn new(seeds: Vec<u16>) -> FollowingClient {
        FollowingClient { seeds, con: None }
    }

    fn master_port(&self) -> Option<u16> {
        for port in &self.seeds {
            let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
                continue;
            };
            let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
                continue;
            };
            let _ = con.set_read_timeout(Some(Duration::from_secs(2)));
            let addr: redis::RedisResult<Option<(String, u16)>> = redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg("raftlock")
                .query(&mut con);
            if let Ok(Some((_, port))) = addr {
                return Some(port);
            }
        }
        None
    }

    /// Runs `cmd`; on a connection failure or a cluster error (NOLEADER, TRYAGAIN) the
    /// connection is dropped, so the next call asks for the master again.
    pub fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T, String> {
        if self.con.is_none() {
            let port = self.master_port().ok_or("no master known")?;
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .map_err(|e| e.to_string())?;
            let con = client
                .get_connection_with_timeout(Duration::from_secs(1))
                .map_err(|e| e.to_string())?;
            con.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(|e| e.to_string())?;
            self.con = Some(con);
        }
        let con = self.con.as_mut().expect("connected above");
        match cmd.query(con) {
            Ok(value) => Ok(value),
            Err(err) => {
                if err.is_io_error()
                    || matches!(err.code(), Some("NOLEADER" | "TRYAGAIN"))
                    || err.is_connection_dropped()
                {
                    self.con = None;
                }
                Err(super::err_text(&err))
            }
        }
    }
}
