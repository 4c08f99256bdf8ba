"""A raftlock cluster of real processes, each node in its own Linux network namespace.

    root namespace: bridge <prefix>br with 10.77.S.1 (the harness's control connections)
                    and 10.77.S.2 (the workload clients), a veth <prefix>v<i> per node
    namespace <prefix>-n<i>: eth0 = 10.77.S.(10+i), clients on :7001, Raft on :8001,
                    iptables chain NEMESIS hooked into INPUT and OUTPUT (the partitions)

S is 0 unless another live run holds 10.77.0.0/24. The prefix is `nem` and the harness's
pid in hex, so two runs never collide; what a dead run left behind (namespaces, its
processes inside them, mounts, links) is removed at start. Every process is started by
us and ended by its pid.
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

from .resp import Conn, ConnectionLost, RespError

STATE_DIR = "/run/raftlock-nemesis"
CLIENT_PORT = 7001
RAFT_PORT = 8001
SUBNET_PREFIX = "10.77"


def sh(*cmd, check=True, input=None):
    """Runs a command; returns its stdout. Raises with the command's stderr on failure."""
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: exit {r.returncode}: "
                           f"{r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def is_harness(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"nemesis" in f.read()
    except OSError:
        return False


def find_libfaketime():
    for pattern in ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1",
                    "/usr/local/lib/faketime/libfaketime.so.1"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def check_prerequisites():
    """Why this machine cannot run the harness, or None."""
    if os.geteuid() != 0:
        return "must run as root (network namespaces, iptables, mounts)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing (Debian: apt-get install iproute2 iptables)"
    if find_libfaketime() is None:
        return "libfaketime.so.1 is missing (Debian: apt-get install faketime)"
    try:
        probe = f"nemprobe{os.getpid():x}"
        sh("ip", "netns", "add", probe)
        sh("ip", "netns", "del", probe)
    except RuntimeError as e:
        return f"cannot create a network namespace: {e}"
    return None


def cleanup_stale(log=print):
    """Removes what dead harness runs left: their nodes (the processes inside their
    namespaces, by pid), mounts, namespaces, links and state files."""
    os.makedirs(STATE_DIR, exist_ok=True)
    owners = {}
    for path in glob.glob(f"{STATE_DIR}/*.json"):
        try:
            with open(path) as f:
                owners[json.load(f)["prefix"]] = path
        except (OSError, ValueError, KeyError):
            os.unlink(path)
    for ns in sh("ip", "netns", "list").split():
        m = re.match(r"^(nem[0-9a-f]+)-n\d+$", ns)
        if m:
            owners.setdefault(m.group(1), None)
    for link in re.findall(r"^\d+: (nem[0-9a-f]+)(?:br|v\d+)[@:]", sh("ip", "-o", "link"), re.M):
        owners.setdefault(link, None)
    for prefix, path in owners.items():
        pid = int(prefix[3:], 16)
        if pid_alive(pid) and is_harness(pid) and pid != os.getpid():
            continue
        log(f"nemesis: removing leftovers of a dead run {prefix}")
        state = {}
        if path:
            try:
                with open(path) as f:
                    state = json.load(f)
            except (OSError, ValueError):
                state = {}
        teardown(prefix, state.get("mounts", []), log=log)
        if path and os.path.exists(path):
            os.unlink(path)


def teardown(prefix, mounts, log=print):
    namespaces = [ns for ns in sh("ip", "netns", "list").split()
                  if re.match(rf"^{prefix}-n\d+$", ns)]
    for ns in namespaces:
        for pid in sh("ip", "netns", "pids", ns, check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    for m in mounts:
        sh("umount", "-l", m, check=False)
    for ns in namespaces:
        sh("ip", "netns", "del", ns, check=False)
    for link in re.findall(rf"^\d+: ({prefix}(?:br|v\d+))[@:]", sh("ip", "-o", "link"), re.M):
        sh("ip", "link", "del", link, check=False)


class Node:
    def __init__(self, cluster, i):
        self.i = i
        self.cluster = cluster
        self.ns = f"{cluster.prefix}-n{i}"
        self.ip = f"{cluster.subnet}.{10 + i}"
        self.addr = f"{self.ip}:{CLIENT_PORT}"
        self.raft_addr = f"{self.ip}:{RAFT_PORT}"
        self.home = os.path.join(cluster.out, "nodes", f"n{i}")
        self.data_dir = os.path.join(self.home, "data")
        self.log_path = os.path.join(cluster.out, "nodes", f"n{i}.log")
        self.faketime_file = os.path.join(cluster.out, "nodes", f"n{i}.faketime")
        self.fsync_fail_file = os.path.join(cluster.out, "nodes", f"n{i}.fsync-fail")
        self.fill_file = os.path.join(self.home, "fill")
        self.proc = None
        self.paused = False
        self.clock = "+0"
        self.log_offset = 0  # where the current process's part of the log starts

    def __repr__(self):
        return f"n{self.i}"

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None


class Cluster:
    def __init__(self, n, binary, out, log=print, disk=False, fsync_shim=None,
                 extra_args=()):
        self.n = n
        self.binary = os.path.abspath(binary)
        self.out = os.path.abspath(out)
        self.log = log
        self.disk = disk
        self.fsync_shim = fsync_shim
        self.extra_args = list(extra_args)
        self.prefix = f"nem{os.getpid():x}"
        self.subnet = None
        self.bridge = f"{self.prefix}br"
        self.mounts = []
        self.nodes = {}
        self.libfaketime = find_libfaketime()
        self.state_path = os.path.join(STATE_DIR, f"{self.prefix}.json")
        self.control_ip = None
        self.client_ip = None
        self.lock = threading.RLock()

    # ---------------------------------------------------------------- set-up, tear-down

    def _pick_subnet(self):
        used = set(re.findall(rf"inet {re.escape(SUBNET_PREFIX)}\.(\d+)\.", sh("ip", "-o", "-4", "addr")))
        for s in range(0, 256):
            if str(s) not in used:
                return f"{SUBNET_PREFIX}.{s}"
        raise RuntimeError("no free 10.77.S.0/24 subnet")

    def _save_state(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        with open(self.state_path, "w") as f:
            json.dump({"prefix": self.prefix, "pid": os.getpid(), "mounts": self.mounts,
                       "nodes": {i: nd.pid for i, nd in self.nodes.items()}}, f)

    def setup(self):
        cleanup_stale(self.log)
        self.subnet = self._pick_subnet()
        self.control_ip = f"{self.subnet}.1"
        self.client_ip = f"{self.subnet}.2"
        self._save_state()
        # A fresh cluster: nothing of an earlier run in the same --out.
        shutil.rmtree(os.path.join(self.out, "nodes"), ignore_errors=True)
        os.makedirs(os.path.join(self.out, "nodes"), exist_ok=True)
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.control_ip}/24", "dev", self.bridge)
        sh("ip", "addr", "add", f"{self.client_ip}/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for i in range(1, self.n + 1):
            node = Node(self, i)
            self.nodes[i] = node
            veth, peer = f"{self.prefix}v{i}", f"{self.prefix}p{i}"
            sh("ip", "netns", "add", node.ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", peer, "netns", node.ns)
            sh("ip", "-n", node.ns, "link", "set", peer, "name", "eth0")
            sh("ip", "-n", node.ns, "addr", "add", f"{node.ip}/24", "dev", "eth0")
            sh("ip", "-n", node.ns, "link", "set", "eth0", "up")
            sh("ip", "-n", node.ns, "link", "set", "lo", "up")
            sh("ip", "link", "set", veth, "master", self.bridge, "up")
            self.ipt(node, "-N", "NEMESIS")
            self.ipt(node, "-I", "INPUT", "-j", "NEMESIS")
            self.ipt(node, "-I", "OUTPUT", "-j", "NEMESIS")
            os.makedirs(node.home, exist_ok=True)
            if self.disk:
                # A small filesystem of its own, so the disk-full fault fills only it.
                sh("mount", "-t", "tmpfs", "-o", "size=512m", f"{self.prefix}-n{i}", node.home)
                self.mounts.append(node.home)
                self._save_state()
            os.makedirs(node.data_dir, exist_ok=True)
            with open(node.faketime_file, "w") as f:
                f.write("+0 x1\n")
        self.log(f"nemesis: {self.n} namespaces {self.prefix}-n1..{self.n}, bridge {self.bridge}, "
                 f"nodes at {self.subnet}.11..{10 + self.n}")

    def teardown(self):
        with self.lock:
            for node in self.nodes.values():
                self._end(node)
            teardown(self.prefix, self.mounts, log=self.log)
            self.mounts = []
            if os.path.exists(self.state_path):
                os.unlink(self.state_path)

    def _end(self, node):
        if node.proc is None:
            return
        if node.proc.poll() is None:
            try:
                os.kill(node.proc.pid, signal.SIGCONT)
                os.kill(node.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                node.proc.wait(3)
            except subprocess.TimeoutExpired:
                os.kill(node.proc.pid, signal.SIGKILL)
                node.proc.wait()
        node.paused = False

    # ---------------------------------------------------------------- processes

    def members(self):
        return ",".join(f"{nd.i}={nd.addr}/{nd.raft_addr}" for nd in self.nodes.values())

    def env(self, node):
        preload = [self.libfaketime]
        env = {"FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1",
               "FAKETIME_TIMESTAMP_FILE": node.faketime_file}
        if self.fsync_shim:
            preload.append(self.fsync_shim)
            env["NEMESIS_FSYNC_FAIL_FILE"] = node.fsync_fail_file
        env["LD_PRELOAD"] = ":".join(preload)
        return env

    def start(self, i):
        with self.lock:
            node = self.nodes[i]
            if node.alive:
                return
            env = [f"{k}={v}" for k, v in self.env(node).items()]
            cmd = ["ip", "netns", "exec", node.ns, "env", *env, self.binary, "serve",
                   "--id", str(i), "--listen", node.addr, "--raft-listen", node.raft_addr,
                   "--data-dir", node.data_dir, "--initial-cluster", self.members(),
                   # The Redlock fan-out workload needs the replay rule (docs/LOCKS.md).
                   "--redlock-replay-window-ms", "5000",
                   # Clients reach the nodes from the host, another host to them: protected
                   # mode would refuse them without a password.
                   "--protected-mode", "no",
                   *self.extra_args]
            logf = open(node.log_path, "ab")
            node.log_offset = logf.tell()
            logf.write(f"==== nemesis: starting n{i}: {' '.join(cmd)}\n".encode())
            logf.flush()
            # `ip netns exec` and `env` exec the server: the pid is raftlock's own.
            node.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            logf.close()
            node.paused = False
            self._save_state()

    def start_all(self):
        for i in self.nodes:
            self.start(i)

    def kill(self, i):
        with self.lock:
            node = self.nodes[i]
            if node.alive:
                os.kill(node.proc.pid, signal.SIGKILL)
                node.proc.wait()
            node.paused = False

    def pause(self, i):
        with self.lock:
            node = self.nodes[i]
            if node.alive:
                os.kill(node.proc.pid, signal.SIGSTOP)
                node.paused = True

    def resume(self, i):
        with self.lock:
            node = self.nodes[i]
            if node.alive and node.paused:
                os.kill(node.proc.pid, signal.SIGCONT)
            node.paused = False

    def crashed(self):
        """Nodes whose process ended without our asking (a server crash)."""
        return [nd for nd in self.nodes.values()
                if nd.proc is not None and nd.proc.poll() is not None
                and nd.proc.returncode != -signal.SIGKILL]

    # ---------------------------------------------------------------- network

    def ipt(self, node, *args):
        sh("ip", "netns", "exec", node.ns, "iptables", "-w", *args)

    def partition(self, groups):
        """Cuts every node off from the nodes not in one of its groups. `groups` is a list
        of sets of node ids; a node may be in several (a bridge)."""
        with self.lock:
            for node in self.nodes.values():
                sees = set()
                for g in groups:
                    if node.i in g:
                        sees |= g
                self.ipt(node, "-F", "NEMESIS")
                for other in self.nodes.values():
                    if other.i != node.i and other.i not in sees:
                        self.ipt(node, "-A", "NEMESIS", "-s", other.ip, "-j", "DROP")
                        self.ipt(node, "-A", "NEMESIS", "-d", other.ip, "-j", "DROP")

    def cut_clients(self, i):
        """Drops the workload clients' traffic to and from node i (its peers and the
        harness's control address still reach it)."""
        node = self.nodes[i]
        self.ipt(node, "-A", "NEMESIS", "-s", self.client_ip, "-j", "DROP")
        self.ipt(node, "-A", "NEMESIS", "-d", self.client_ip, "-j", "DROP")

    def heal_network(self):
        with self.lock:
            for node in self.nodes.values():
                self.ipt(node, "-F", "NEMESIS")

    # ---------------------------------------------------------------- clocks and disks

    def set_clock(self, i, spec):
        """Sets node i's wall clock offset through its libfaketime file ("+0", "+120",
        "-90", "+0 x1.2"); the monotonic clock stays real. libfaketime 0.9.10 keeps the
        last rate it parsed when a spec names none, so every spec written names one."""
        node = self.nodes[i]
        tmp = node.faketime_file + ".tmp"
        with open(tmp, "w") as f:
            f.write((spec if " x" in spec else spec + " x1") + "\n")
        os.replace(tmp, node.faketime_file)
        node.clock = spec

    def fill_disk(self, i):
        """Fills the filesystem under node i's data dir. Returns the bytes written."""
        node = self.nodes[i]
        written = 0
        chunk = b"\0" * (1 << 20)
        try:
            with open(node.fill_file, "wb") as f:
                while True:
                    f.write(chunk)
                    written += len(chunk)
                    if written > (1 << 30):
                        break
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            pass
        # The last bytes the page-sized chunks left over.
        try:
            with open(node.fill_file + "2", "wb") as f:
                while True:
                    f.write(b"\0" * 4096)
                    written += 4096
        except OSError:
            pass
        return written

    def free_disk(self, i):
        node = self.nodes[i]
        for p in (node.fill_file, node.fill_file + "2"):
            if os.path.exists(p):
                os.unlink(p)

    def fail_fsync(self, i, on):
        node = self.nodes[i]
        if on:
            open(node.fsync_fail_file, "w").close()
        elif os.path.exists(node.fsync_fail_file):
            os.unlink(node.fsync_fail_file)

    # ---------------------------------------------------------------- queries

    def control(self, i, *args, timeout=0.5):
        """One command to node i from the harness's control address (not a client)."""
        node = self.nodes[i]
        c = Conn(node.ip, CLIENT_PORT, timeout=timeout, connect_timeout=timeout,
                 source=self.control_ip)
        try:
            return c.call(*args)
        finally:
            c.close()

    def roles(self):
        """{node id: (role, leader client address or None, term)} for nodes that answer."""
        result = {}

        def ask(i):
            try:
                role = self.control(i, "ROLE")
                info = self.control(i, "INFO", "raft")
            except (ConnectionLost, RespError, ValueError):
                return
            fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
            term = int(fields.get("raft_current_term", 0) or 0)
            if fields.get("raft_role") == "shutdown":
                result[i] = ("shutdown", None, term)
            elif role and role[0] == "master":
                result[i] = ("master", self.nodes[i].addr, term)
            elif role and role[0] == "slave" and role[1] != "?":
                result[i] = ("slave", f"{role[1]}:{role[2]}", term)
            else:
                result[i] = ("none", None, term)

        threads = [threading.Thread(target=ask, args=(i,)) for i, nd in self.nodes.items()
                   if nd.alive and not nd.paused]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return result

    def leader(self):
        """The node most likely to be leading: a master that the most followers name,
        then the highest term. None if no node says master."""
        roles = self.roles()
        masters = [i for i, (r, _, _) in roles.items() if r == "master"]
        if not masters:
            return None
        votes = {i: sum(1 for r, a, _ in roles.values() if a == self.nodes[i].addr)
                 for i in masters}
        return max(masters, key=lambda i: (votes[i], roles[i][2]))

    def wait_for_leader(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None:
                return leader
            time.sleep(0.2)
        return None

    def raft_shut_down(self):
        """Nodes whose process runs but whose Raft core has quit (INFO raft says
        raft_role:shutdown): they answer every command with TRYAGAIN until restarted."""
        return [i for i, (role, _, _) in self.roles().items() if role == "shutdown"]

    def health(self):
        """One line per node: what it answers now (for a report when it will not settle)."""
        roles = self.roles()
        parts = []
        for i, nd in self.nodes.items():
            if not nd.alive:
                parts.append(f"n{i} down")
                continue
            role = roles.get(i)
            try:
                self.control(i, "SET", "nemesis:health", str(i), timeout=2.0)
                write = "write ok"
            except (ConnectionLost, RespError) as e:
                write = f"write failed: {e}"
            parts.append(f"n{i} {role[0] + ' -> ' + str(role[1]) if role else 'no answer'}, "
                         f"{write}")
        return "; ".join(parts)

    def wait_healthy(self, timeout=30.0):
        """Waits until a leader is named by every live node and accepts a write through
        each of them. Returns the seconds it took, or None."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            roles = self.roles()
            live = [i for i, nd in self.nodes.items() if nd.alive]
            masters = [i for i, (r, _, _) in roles.items() if r == "master"]
            if len(masters) == 1 and len(roles) == len(live) and all(
                    a == self.nodes[masters[0]].addr for _, a, _ in roles.values()):
                try:
                    for i in live:
                        self.control(i, "SET", "nemesis:health", str(i), timeout=2.0)
                    return time.monotonic() - t0
                except (ConnectionLost, RespError):
                    pass
            time.sleep(0.2)
        return None
