//! A cluster of real `raftlock` processes, each in a network namespace of its own, joined
//! by one bridge, so that a test can cut real links: iptables rules in a node's namespace
//! drop its packets to and from chosen peers, silently, as a partition does (connections
//! stall; nothing closes them). The test process reaches every node through the bridge,
//! whatever is cut between the nodes.
//!
//! It needs root, `ip` (iproute2) and `iptables`, and fails with a clear message without
//! them. Everything it makes is named after the test process (`rlq<pid>...`) and removed
//! when the cluster is dropped: the nodes (killed by PID), each rule it added, the
//! namespaces and the bridge (which take the veths with them). Clusters of all processes
//! run one at a time (a lock file), as their timings are what the tests measure.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cluster::parse_info;
use super::value_text;

/// Every node listens on these ports of its own address.
const CLIENT_PORT: u16 = 7000;
const RAFT_PORT: u16 = 8000;
/// How much of each node's log a failing test shows.
const LOG_TAIL_LINES: usize = 150;
/// Held while a cluster runs, so that clusters of parallel test processes do not share
/// the two cores and turn the timings measured into noise.
const LOCK_FILE: &str = "/tmp/raftlock-netns-cluster.lock";

pub struct NetNode {
    pub id: u64,
    /// The node's address in its namespace, on the bridge.
    pub ip: String,
    namespace: String,
    data_dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl NetNode {
    pub fn client_addr(&self) -> String {
        format!("{}:{CLIENT_PORT}", self.ip)
    }

    fn raft_addr(&self) -> String {
        format!("{}:{RAFT_PORT}", self.ip)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    /// Runs `program args...` inside the node's namespace (as one of the cluster's own
    /// hosts); its standard output.
    pub fn run_inside(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.namespace, program])
            .args(args)
            .output()
            .expect("run a program in the node's namespace");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A connection whose replies may take up to `timeout`.
    pub fn connect_waiting(&self, timeout: Duration) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(format!("redis://{}/", self.client_addr()))?;
        let con = client.get_connection_with_timeout(Duration::from_secs(2))?;
        con.set_read_timeout(Some(timeout))?;
        con.set_write_timeout(Some(timeout))?;
        Ok(con)
    }

    pub fn connect(&self) -> redis::Connection {
        self.connect_waiting(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("connect to node {}: {e}", self.id))
    }

    /// `RAFT.INFO` as field -> value.
    pub fn raft_info(&self) -> BTreeMap<String, String> {
        let mut con = self.connect();
        let text: String = redis::cmd("RAFT.INFO")
            .query(&mut con)
            .unwrap_or_else(|e| panic!("RAFT.INFO on node {}: {e}", self.id));
        parse_info(&text)
    }

    /// The first element of `ROLE`: `master` or `slave`.
    pub fn role(&self) -> String {
        let mut con = self.connect();
        let role: redis::Value = redis::cmd("ROLE")
            .query(&mut con)
            .unwrap_or_else(|e| panic!("ROLE on node {}: {e}", self.id));
        match role {
            redis::Value::Array(items) => value_text(&items[0]),
            other => panic!("ROLE on node {}: {other:?}", self.id),
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .expect("open node log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.namespace])
            .arg(env!("CARGO_BIN_EXE_raftlock"))
            .arg("serve")
            .args(["--id", &self.id.to_string()])
            .args(["--listen", &self.client_addr()])
            .args(["--raft-listen", &self.raft_addr()])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start raftlock in its namespace");
        self.child = Some(child);
    }
}

/// One iptables rule added in a node's namespace: its chain and its match.
struct Rule {
    namespace: String,
    chain: &'static str,
    spec: Vec<String>,
}

impl Rule {
    /// The command that deletes this rule.
    fn delete_command(&self) -> Vec<&str> {
        let mut args = vec![
            "ip",
            "netns",
            "exec",
            &self.namespace,
            "iptables",
            "-D",
            self.chain,
        ];
        args.extend(self.spec.iter().map(String::as_str));
        args
    }
}

pub struct NetCluster {
    pub nodes: Vec<NetNode>,
    tag: String,
    rules: Vec<Rule>,
    _dir: tempfile::TempDir,
    _lock: File,
}

/// Runs a setup command that must succeed.
fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "`{}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Panics, clearly, unless this runs as root and the tools the cluster needs are here.
fn require_tools() {
    let uid = Command::new("id").arg("-u").output().expect("run id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "partition tests need root, to put nodes in network namespaces and cut links"
    );
    for (tool, package) in [("ip", "iproute2"), ("iptables", "iptables")] {
        let works = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            works,
            "partition tests need `{tool}` (apt-get install {package}; scripts/test.sh \
             installs it) and root, to put nodes in network namespaces and cut links"
        );
    }
}

/// A /24 of 10.0.0.0/8 that no route of this machine uses, chosen after this process's
/// id so that parallel test processes take different ones.
fn free_subnet() -> String {
    let pid = std::process::id();
    for attempt in 0..64u32 {
        let n = pid.wrapping_add(attempt * 7919);
        let subnet = format!("10.{}.{}", 100 + (n >> 8) % 100, n & 0xff);
        let out = Command::new("ip")
            .args(["-4", "route", "show", &format!("{subnet}.0/24")])
            .output()
            .expect("ip route show");
        if out.stdout.is_empty() {
            return subnet;
        }
    }
    panic!("no free 10.x.y.0/24 subnet for the test bridge");
}

impl NetCluster {
    /// `n` nodes, node `i` at `10.x.y.i` in namespace `rlq<pid>n<i>`, bootstrapped with
    /// `--initial-cluster` and `extra_args`; returns once a leader serves writes.
    pub fn start(n: u64, extra_args: &[&str]) -> NetCluster {
        require_tools();
        let lock = File::create(LOCK_FILE).expect("create the cluster lock file");
        lock.lock().expect("take the cluster lock");
        let tag = format!("rlq{}", std::process::id());
        let subnet = free_subnet();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cluster = NetCluster {
            nodes: Vec::new(),
            tag: tag.clone(),
            rules: Vec::new(),
            _dir: dir,
            _lock: lock,
        };
        // From here on, dropping `cluster` removes whatever was made.
        let bridge = format!("{tag}b");
        sh(&["ip", "link", "add", &bridge, "type", "bridge"]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{subnet}.254/24"),
            "dev",
            &bridge,
        ]);
        sh(&["ip", "link", "set", &bridge, "up"]);
        for id in 1..=n {
            let namespace = format!("{tag}n{id}");
            let veth = format!("{tag}v{id}");
            let ip = format!("{subnet}.{id}");
            sh(&["ip", "netns", "add", &namespace]);
            cluster.nodes.push(NetNode {
                id,
                ip: ip.clone(),
                namespace: namespace.clone(),
                data_dir: cluster._dir.path().join(format!("n{id}")),
                args: Vec::new(),
                child: None,
            });
            sh(&[
                "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
                &namespace,
            ]);
            sh(&["ip", "link", "set", &veth, "master", &bridge, "up"]);
            sh(&[
                "ip",
                "-n",
                &namespace,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ]);
            sh(&["ip", "-n", &namespace, "link", "set", "eth0", "up"]);
            sh(&["ip", "-n", &namespace, "link", "set", "lo", "up"]);
        }
        let members: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("{}={}/{}", n.id, n.client_addr(), n.raft_addr()))
            .collect();
        let members = members.join(",");
        for node in &mut cluster.nodes {
            node.args = vec!["--initial-cluster".into(), members.clone()];
            // The test process reaches the nodes from the host, over the bridge: another
            // host to them, which protected mode refuses while there is no password.
            if !extra_args.contains(&"--protected-mode") {
                node.args.extend(["--protected-mode".into(), "no".into()]);
            }
            node.args.extend(extra_args.iter().map(|a| a.to_string()));
            node.spawn();
        }
        cluster.all_listening(Duration::from_secs(30));
        cluster.wait_leader(Duration::from_secs(30));
        cluster
    }

    fn all_listening(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for node in &mut self.nodes {
            loop {
                if let Some(status) = node.child.as_mut().and_then(|c| c.try_wait().ok()?) {
                    panic!("node {} exited ({status}): {}", node.id, node.log());
                }
                let listening = [node.client_addr(), node.raft_addr()].iter().all(|addr| {
                    let addr: SocketAddr = addr.parse().expect("node address");
                    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
                });
                if listening {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} is not listening: {}",
                    node.id,
                    node.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn node(&self, id: u64) -> &NetNode {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Some node other than those in `but`.
    pub fn other_than(&self, but: &[u64]) -> u64 {
        self.nodes
            .iter()
            .map(|n| n.id)
            .find(|id| !but.contains(id))
            .expect("another node")
    }

    /// The nodes that answer ROLE with `master`.
    pub fn masters(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|node| {
                let Ok(mut con) = node.connect_waiting(Duration::from_secs(2)) else {
                    return false;
                };
                let role: redis::RedisResult<redis::Value> = redis::cmd("ROLE").query(&mut con);
                matches!(role, Ok(redis::Value::Array(items)) if value_text(&items[0]) == "master")
            })
            .map(|node| node.id)
            .collect()
    }

    /// Waits until one node says it leads and a write through it commits; its id.
    pub fn wait_leader(&self, timeout: Duration) -> u64 {
        super::wait_until_a_leader_writes(
            timeout,
            || {
                let [id] = self.masters()[..] else {
                    return None;
                };
                let con = self.node(id).connect_waiting(Duration::from_secs(5)).ok()?;
                Some((id, con))
            },
            || self.logs(),
        )
    }

    /// Drops, silently, every packet between nodes `a` and `b`: each one's INPUT drops what
    /// comes from the other, so a sender sees its packets leave and never arrive, as when
    /// the network loses them. Connections between them stall; new ones are never
    /// answered. (A rule in the sender's OUTPUT would fail its sends locally, which TCP
    /// handles otherwise.)
    pub fn cut(&mut self, a: u64, b: u64) {
        for (to, from) in [(a, b), (b, a)] {
            let namespace = self.node(to).namespace.clone();
            let chain = "INPUT";
            let spec = vec![
                "-s".into(),
                self.node(from).ip.clone(),
                "-j".into(),
                "DROP".into(),
            ];
            let mut args = vec!["ip", "netns", "exec", &namespace, "iptables", "-A", chain];
            args.extend(spec.iter().map(String::as_str));
            sh(&args);
            self.rules.push(Rule {
                namespace,
                chain,
                spec,
            });
        }
    }

    /// Cuts `id` off from every other node (test clients still reach it).
    pub fn isolate(&mut self, id: u64) {
        let others: Vec<u64> = self
            .nodes
            .iter()
            .map(|n| n.id)
            .filter(|o| *o != id)
            .collect();
        for other in others {
            self.cut(id, other);
        }
    }

    /// Removes every rule `cut` and `isolate` added.
    pub fn heal(&mut self) {
        for rule in self.rules.drain(..) {
            sh(&rule.delete_command());
        }
    }

    /// The last lines of every node's log.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let log = n.log();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
                format!("--- node {} ---\n{}\n", n.id, tail.join("\n"))
            })
            .collect()
    }
}

impl Drop for NetCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Best effort from here: a failed test must still clean up what it can.
        let quiet = |args: &[&str]| {
            let _ = Command::new(args[0])
                .args(&args[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        for rule in self.rules.drain(..) {
            quiet(&rule.delete_command());
        }
        for node in &self.nodes {
            quiet(&["ip", "netns", "del", &node.namespace]);
        }
        quiet(&["ip", "link", "del", &format!("{}b", self.tag)]);
    }
}
