"""Client workloads: threads that each talk to one node (the followers relay to the leader)
and record every op in the history.

    locks     LOCK (try-lock and WAIT) / RENEW / CHECKFENCE / UNLOCK, one fresh owner per
              acquisition, holding for 20-80% of the lease; a prober asks CHECKFENCE of
              tokens seen before, older and newer
    redlock   SET key value NX PX ttl, EVAL [GET, FENCE] for the token, EVAL
              compare-and-PEXPIRE to extend, EVAL compare-and-delete to release; and
              the Redlock algorithm itself pointed at every node of the cluster: each
              request sent to all nodes with a random token, granted, extended or
              released when a majority says so (docs/LOCKS.md, "Redlock on the nodes of
              one cluster")
    register  GET / SET / SET key new IFEQ old on a few keys; each key takes a bounded
              number of ops, then the workers move to the key's next generation; two
              workers send them in pipelines of 2-5
    set       RPUSH of unique elements to a few lists
    counter   INCR of a few counters

Classification: an answer is ok; an error answer to a read is fail, and so is MISCONF (a
full disk refuses a write before proposing it); any other error answer to a write
(TRYAGAIN, NOLEADER: the write may have been committed) and any timeout or lost
connection is info. After an info the worker continues as a new process, as in Jepsen.
"""

import random
import threading
import time

from .resp import Conn, ConnectionLost, RespError

FENCE_SCRIPT = "return {redis.call('GET', KEYS[1]), redis.call('FENCE', KEYS[1])}"
EXTEND_SCRIPT = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                 "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end")
RELEASE_SCRIPT = ("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                  "return redis.call('DEL', KEYS[1]) else return 0 end")

OP_TIMEOUT = 1.5


class Shared:
    """What workers share: tokens seen per resource (for CHECKFENCE probes) and the
    register keys' generations."""

    def __init__(self, register_keys, ops_per_register_key):
        self.lock = threading.Lock()
        self.tokens = {}
        self.reg_gen = [0] * register_keys
        self.reg_ops = [0] * register_keys
        self.ops_per_register_key = ops_per_register_key

    def saw_token(self, resource, token):
        with self.lock:
            self.tokens.setdefault(resource, []).append(token)

    def some_token(self, rng):
        with self.lock:
            if not self.tokens:
                return None
            resource = rng.choice(sorted(self.tokens))
            seen = self.tokens[resource]
            # Mostly recent tokens (one may still be current), sometimes old ones.
            token = seen[-1 - min(len(seen) - 1, int(rng.expovariate(0.5)))]
            return resource, token

    def register_key(self, slot):
        with self.lock:
            self.reg_ops[slot] += 1
            if self.reg_ops[slot] > self.ops_per_register_key:
                self.reg_gen[slot] += 1
                self.reg_ops[slot] = 1
            return f"reg:{slot}:{self.reg_gen[slot]}"


class Worker(threading.Thread):
    workload = None

    def __init__(self, wid, cluster, history, shared, node, seed, stop):
        super().__init__(name=f"{self.workload}-{wid}", daemon=True)
        self.wid = wid
        self.cluster = cluster
        self.history = history
        self.shared = shared
        self.node = node
        self.rng = random.Random(seed)
        self.stop = stop
        self.process = wid * 1000
        self.seq = 0
        self.conn = Conn(cluster.nodes[node].ip, 7001, timeout=OP_TIMEOUT,
                         source=cluster.client_ip)
        self.error = None

    def run(self):
        try:
            while not self.stop.is_set():
                self.step()
        except Exception as e:  # a harness bug: report it, do not hide it
            self.error = e
            raise
        finally:
            self.conn.close()

    def pause(self, lo, hi):
        self.stop.wait(self.rng.uniform(lo, hi))

    def call(self, f, key, args, command, write, timeout=OP_TIMEOUT, workload=None):
        """Runs one op and records it. Returns (type, value)."""
        return self.call_many([(f, key, args, command, write)], timeout, workload)[0]

    def call_many(self, batch, timeout=OP_TIMEOUT, workload=None):
        """Runs ops pipelined on the connection (all sent at once, replies read in
        order) and records each. `batch` holds (f, key, args, command, write). Returns
        [(type, value)]."""
        ops = [self.history.invoke(self.process, workload or self.workload, f, key, args,
                                   self.node) for f, key, args, _, _ in batch]
        results = []
        lost = None
        try:
            self.conn.send(*(command for _, _, _, command, _ in batch), timeout=timeout)
        except ConnectionLost as e:
            lost = e
        for op, (_, _, _, _, write) in zip(ops, batch):
            if lost is None:
                try:
                    results.append(self.record(op, write, reply=self.conn.reply()))
                    continue
                except RespError as e:
                    results.append(self.record(op, write, error=e))
                    continue
                except ConnectionLost as e:
                    lost = e
            results.append(self.record(op, write, lost=lost))
        if any(t == "info" for t, _ in results):
            self.process += 1  # as in Jepsen: an op in doubt ends its process
        if lost is not None:
            self.pause(0.1, 0.3)
        elif any(t != "ok" for t, _ in results):
            self.pause(0.05, 0.15)
        return results

    def record(self, op, write, reply=None, error=None, lost=None):
        if lost is not None:
            self.history.complete(op, "info", error=str(lost))
            return "info", None
        if error is not None:
            msg = str(error)
            if msg.startswith("NOTOWNER"):
                self.history.complete(op, "ok", "NOTOWNER")
                return "ok", "NOTOWNER"
            # A write answered with an error (TRYAGAIN, NOLEADER) may still be committed;
            # MISCONF (disk full) refuses it before it is proposed.
            kind = "info" if write and not msg.startswith("MISCONF") else "fail"
            self.history.complete(op, kind, error=msg)
            return kind, None
        self.history.complete(op, "ok", reply)
        return "ok", reply


class LockWorker(Worker):
    workload = "locks"
    resources = 2

    def step(self):
        rng = self.rng
        self.seq += 1
        resource = f"lock:r{rng.randrange(self.resources)}"
        owner = f"w{self.wid}-{self.seq}"
        ttl = rng.choice([500, 1000, 2000])
        wait = rng.choice([None, None, 300, 1000])
        cmd = ["LOCK", resource, owner, ttl] + (["WAIT", wait] if wait else [])
        args = [owner, ttl] + ([wait] if wait else [])
        t_sent = time.monotonic()
        kind, token = self.call("lock", resource, args, cmd, write=True,
                                timeout=OP_TIMEOUT + (wait or 0) / 1000)
        if kind != "ok" or token is None:
            self.pause(0.02, 0.1)
            return
        self.shared.saw_token(resource, token)
        lease_end = t_sent + ttl / 1000
        # Hold for 20-80% of the lease, checking the fence and sometimes renewing.
        hold_until = time.monotonic() + rng.uniform(0.2, 0.8) * ttl / 1000
        while not self.stop.is_set() and time.monotonic() < hold_until:
            r = rng.random()
            if r < 0.4:
                self.call("checkfence", resource, [token], ["CHECKFENCE", resource, token],
                          write=False)
            elif r < 0.6 and time.monotonic() < lease_end - 0.3:
                t_renew = time.monotonic()
                kind, v = self.call("renew", resource, [owner, ttl],
                                    ["RENEW", resource, owner, ttl], write=True)
                if kind == "ok" and v == 1:
                    lease_end = t_renew + ttl / 1000
                    hold_until = max(hold_until, time.monotonic() + 0.2 * ttl / 1000)
                elif kind != "info":
                    break
            self.pause(0.05, 0.25)
        self.call("unlock", resource, [owner], ["UNLOCK", resource, owner], write=True)
        self.pause(0.01, 0.05)


class FenceProber(Worker):
    """CHECKFENCE of tokens seen earlier: a storage service fencing off old holders."""
    workload = "locks"

    def step(self):
        probe = self.shared.some_token(self.rng)
        if probe is not None:
            resource, token = probe
            workload = "redlock" if resource.startswith("redlock:") else "locks"
            self.call("checkfence", resource, [token], ["CHECKFENCE", resource, token],
                      write=False, workload=workload)
        self.pause(0.03, 0.08)


class RedlockWorker(Worker):
    workload = "redlock"
    keys = 2

    def step(self):
        rng = self.rng
        self.seq += 1
        key = f"redlock:k{rng.randrange(self.keys)}"
        value = f"rl{self.wid}-{self.seq}"
        ttl = rng.choice([500, 1000, 2000])
        t_sent = time.monotonic()
        kind, reply = self.call("acquire", key, [value, ttl],
                                ["SET", key, value, "NX", "PX", ttl], write=True)
        if kind != "ok" or reply != "OK":
            self.pause(0.05, 0.15)
            return
        lease_end = t_sent + ttl / 1000
        kind, reply = self.call("fence", key, [value], ["EVAL", FENCE_SCRIPT, 1, key],
                                write=False)
        if kind == "ok" and isinstance(reply, list) and reply[0] == value:
            self.shared.saw_token(key, int(reply[1]))
        hold_until = time.monotonic() + rng.uniform(0.2, 0.8) * ttl / 1000
        extended = False
        while not self.stop.is_set() and time.monotonic() < hold_until:
            if not extended and rng.random() < 0.3 and time.monotonic() < lease_end - 0.3:
                t_ext = time.monotonic()
                kind, v = self.call("extend", key, [value, ttl],
                                    ["EVAL", EXTEND_SCRIPT, 1, key, value, ttl], write=True)
                extended = True
                if kind == "ok" and v == 1:
                    lease_end = t_ext + ttl / 1000
                elif kind != "info":
                    break
            self.pause(0.05, 0.25)
        self.call("release", key, [value], ["EVAL", RELEASE_SCRIPT, 1, key, value], write=True)
        self.pause(0.02, 0.08)


class RedlockFanoutWorker(Worker):
    """A Redlock client with one connection per node, as a Redlock deployment has one per
    server: each request goes to every node in turn, and counts when a majority answers
    it so. Its ops are recorded as one op each (workload `redlock`, node 0), invoked
    before the first copy is sent: a grant's lease counts from there, as Redlock counts
    its validity."""

    workload = "redlock"
    keys = 2

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.conns = [Conn(self.cluster.nodes[n].ip, 7001, timeout=OP_TIMEOUT,
                           source=self.cluster.client_ip) for n in sorted(self.cluster.nodes)]

    def run(self):
        try:
            super().run()
        finally:
            for conn in self.conns:
                conn.close()

    def fanout(self, f, key, args, command, granted):
        """Sends `command` to every node; records one op: ok with `granted`'s value when a
        majority answered so, ok with the refusal when a majority answered otherwise,
        info when neither (an error answer, TRYAGAIN or NOLEADER, or no answer leaves a
        copy in doubt: it may still be applied)."""
        op = self.history.invoke(self.process, self.workload, f, key, args, 0)
        yes = no = 0
        for conn in self.conns:
            try:
                reply = conn.call(*command)
            except (RespError, ConnectionLost):
                continue
            if reply == granted:
                yes += 1
            else:
                no += 1
        majority = len(self.conns) // 2 + 1
        if yes >= majority:
            self.history.complete(op, "ok", granted)
            return True
        if no >= majority:
            self.history.complete(op, "ok", None if f == "acquire" else 0)
            return False
        self.history.complete(op, "info", error="no majority answered")
        self.process += 1
        return False

    def step(self):
        rng = self.rng
        key = f"redlock-fanout:k{rng.randrange(self.keys)}"
        token = "%032x" % rng.getrandbits(128)
        ttl = rng.choice([1000, 2000])
        t_sent = time.monotonic()
        if not self.fanout("acquire", key, [token, ttl],
                           ["SET", key, token, "NX", "PX", ttl], "OK"):
            # A minority may hold it: release what we got, as Redlock does.
            self.fanout("release", key, [token], ["EVAL", RELEASE_SCRIPT, 1, key, token], 1)
            self.pause(0.05, 0.15)
            return
        lease_end = t_sent + ttl / 1000
        hold_until = time.monotonic() + rng.uniform(0.2, 0.6) * ttl / 1000
        if rng.random() < 0.3 and time.monotonic() < lease_end - 0.5:
            t_ext = time.monotonic()
            if self.fanout("extend", key, [token, ttl],
                           ["EVAL", EXTEND_SCRIPT, 1, key, token, ttl], 1):
                lease_end = t_ext + ttl / 1000
        self.stop.wait(max(0.0, min(hold_until, lease_end) - time.monotonic()))
        self.fanout("release", key, [token], ["EVAL", RELEASE_SCRIPT, 1, key, token], 1)
        self.pause(0.02, 0.08)


class RegisterWorker(Worker):
    workload = "register"
    slots = 2

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.last = {}

    def step(self):
        rng = self.rng
        key = self.shared.register_key(rng.randrange(self.slots))
        r = rng.random()
        if r < 0.4:
            kind, v = self.call("read", key, [], ["GET", key], write=False)
            if kind == "ok":
                self.last[key] = v
        elif r < 0.7:
            self.seq += 1
            v = f"{self.wid}-{self.seq}"
            kind, _ = self.call("write", key, [v], ["SET", key, v], write=True)
            if kind == "ok":
                self.last[key] = v
        else:
            self.seq += 1
            new = f"{self.wid}-{self.seq}"
            old = self.last.get(key) or f"{self.wid}-{rng.randrange(1, self.seq + 1)}"
            kind, v = self.call("cas", key, [old, new], ["SET", key, new, "IFEQ", old],
                                write=True)
            if kind == "ok" and v == "OK":
                self.last[key] = new
        self.pause(0.01, 0.05)


class PipelinedRegisterWorker(RegisterWorker):
    """Register ops in pipelines of 2-5 (on one or several keys), so that a node relaying
    a pipeline to the leader must keep every reply with its command."""

    def step(self):
        rng = self.rng
        batch = []
        for _ in range(rng.randint(2, 5)):
            key = self.shared.register_key(rng.randrange(self.slots))
            r = rng.random()
            self.seq += 1
            if r < 0.5:
                batch.append(("read", key, [], ["GET", key], False))
            elif r < 0.8:
                v = f"{self.wid}-{self.seq}"
                batch.append(("write", key, [v], ["SET", key, v], True))
            else:
                new = f"{self.wid}-{self.seq}"
                old = self.last.get(key) or f"{self.wid}-{rng.randrange(1, self.seq + 1)}"
                batch.append(("cas", key, [old, new], ["SET", key, new, "IFEQ", old], True))
        results = self.call_many(batch)
        for (f, key, args, _, _), (kind, v) in zip(batch, results):
            if kind == "ok" and (f == "read" or v == "OK"):
                self.last[key] = v if f == "read" else args[-1]
        self.pause(0.01, 0.05)


class SetWorker(Worker):
    workload = "set"
    lists = 2

    def step(self):
        self.seq += 1
        key = f"set:l{self.rng.randrange(self.lists)}"
        element = f"e{self.wid}-{self.seq}"
        self.call("add", key, [element], ["RPUSH", key, element], write=True)
        self.pause(0.01, 0.05)


class CounterWorker(Worker):
    workload = "counter"
    counters = 2

    def step(self):
        key = f"counter:c{self.rng.randrange(self.counters)}"
        self.call("incr", key, [], ["INCR", key], write=True)
        self.pause(0.01, 0.05)


MIX = [(LockWorker, 5), (FenceProber, 1), (RedlockWorker, 3), (RedlockFanoutWorker, 2),
       (RegisterWorker, 3),
       (PipelinedRegisterWorker, 2), (SetWorker, 2), (CounterWorker, 2)]


def start_workers(cluster, history, seed, stop, ops_per_register_key=100):
    shared = Shared(RegisterWorker.slots, ops_per_register_key)
    workers = []
    nodes = sorted(cluster.nodes)
    wid = 0
    for cls, count in MIX:
        for _ in range(count):
            wid += 1
            node = nodes[wid % len(nodes)]
            w = cls(wid, cluster, history, shared, node, seed * 7919 + wid, stop)
            workers.append(w)
    for w in workers:
        w.start()
    return workers


def final_reads(cluster, history, timeout=30.0):
    """Reads every list and counter back through the leader after healing, retrying until
    each read succeeds or `timeout` passes. The reads are ops of workload `final`."""
    keys = [("lrange", f"set:l{i}") for i in range(SetWorker.lists)]
    keys += [("get", f"counter:c{i}") for i in range(CounterWorker.counters)]
    deadline = time.monotonic() + timeout
    done = set()
    while len(done) < len(keys) and time.monotonic() < deadline:
        leader = cluster.leader()
        if leader is None:
            time.sleep(0.3)
            continue
        conn = Conn(cluster.nodes[leader].ip, 7001, timeout=3.0, source=cluster.client_ip)
        for f, key in keys:
            if key in done:
                continue
            cmd = ["LRANGE", key, 0, -1] if f == "lrange" else ["GET", key]
            op = history.invoke(0, "final", "read", key, [], leader)
            try:
                history.complete(op, "ok", conn.call(*cmd))
                done.add(key)
            except (RespError, ConnectionLost) as e:
                history.complete(op, "fail", error=str(e))
                time.sleep(0.3)
                break
        conn.close()
    return len(done) == len(keys)
