"""The nemesis: a seeded schedule of faults, each followed by its heal and a quiet phase.

Every fault and heal is an event in the history (harness time, fault id, name, detail,
nodes), so the checkers can say what was going on when something broke.
"""

import random
import re
import threading
import time

# name -> what it does (the README and --help print this).
FAULTS = {
    "kill-leader": "kill -9 the leader, restart it on its data dir 2-5 s later",
    "kill-random": "kill -9 a random node, restart it 2-5 s later",
    "pause-leader": "SIGSTOP the leader for 1-3 s (election timeout: 600 ms max), then SIGCONT",
    "partition-leader": "cut the leader off from every other node for 3-8 s",
    "partition-half": "split the nodes into a random minority and majority for 3-8 s",
    "partition-bridge": "two halves that each see only a middle node (3 or 5 nodes) for 3-8 s",
    "partition-clients": "drop the clients' traffic to and from one node for 3-6 s",
    "clock-leader-forward": "step the leader's wall clock forward 2 s-5 min for 3-6 s",
    "clock-leader-back": "step the leader's wall clock back 2 s-5 min for 3-6 s",
    "clock-follower": "step a follower's wall clock forward or back 2 s-5 min for 3-6 s",
    "clock-skew": "every node's wall clock off by up to 2 min, one running 1.2x, for 4-8 s",
    "disk-full": "fill the filesystem under the leader's or a random node's data dir for 3-6 s",
    "disk-eio": "make fsync/fdatasync fail with EIO on the leader or a random node for 2-5 s",
}

GROUPS = {
    "kill": ["kill-leader", "kill-random"],
    "pause": ["pause-leader"],
    "partition": ["partition-leader", "partition-half", "partition-bridge", "partition-clients"],
    "clock": ["clock-leader-forward", "clock-leader-back", "clock-follower", "clock-skew"],
    "disk": ["disk-full", "disk-eio"],
}
GROUPS["default"] = GROUPS["kill"] + GROUPS["pause"] + GROUPS["partition"] + GROUPS["clock"]
GROUPS["all"] = GROUPS["default"] + GROUPS["disk"]


def parse_faults(text):
    """'kill,clock-skew,partition' -> the list of fault names (groups expanded)."""
    names = []
    for part in (p.strip() for p in text.split(",")):
        if not part or part == "none":
            continue
        if part in GROUPS:
            names += GROUPS[part]
        elif part in FAULTS:
            names.append(part)
        else:
            raise ValueError(f"unknown fault {part!r}: choose from "
                             f"{', '.join(list(GROUPS) + list(FAULTS))}")
    return list(dict.fromkeys(names))


class Nemesis:
    def __init__(self, cluster, history, faults, seed, log=print, quiet=(3.0, 5.0)):
        self.cluster = cluster
        self.history = history
        self.faults = faults
        self.rng = random.Random(seed)
        self.log = log
        self.quiet = quiet
        self.next_id = 0
        self.stop = threading.Event()
        self.count = 0
        # Nodes under a disk fault: one that exits is restarted only after the heal, as
        # an operator would (a restart on the failing disk would only fail again).
        self.disk_faulty = set()

    # ------------------------------------------------------------------ helpers

    def sleep(self, seconds):
        """Sleeps, but checks for crashed nodes every half second; returns early if
        stopped."""
        deadline = time.monotonic() + seconds
        while not self.stop.is_set():
            self.check_crashes()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.stop.wait(min(0.5, left))

    def check_crashes(self):
        """A node that exited by itself: log it and restart it (after its disk fault
        heals, if it has one)."""
        for node in self.cluster.crashed():
            rc = node.proc.returncode
            tail = log_tail(node.log_path, start=node.log_offset)
            self.history.event("crash", f"n{node.i} exited", node=node.i, code=rc,
                               log_tail=tail)
            held = node.i in self.disk_faulty
            self.log(f"nemesis: n{node.i} EXITED by itself (code {rc}); "
                     f"{'restarted when its disk heals' if held else 'restarting'}. "
                     f"Log tail: {' | '.join(tail)}")
            node.proc = None
            if not held:
                self.cluster.start(node.i)

    def restart_shut_down(self):
        """A node whose Raft core quit (a storage error) stays up answering TRYAGAIN: log
        it and restart it, as a supervisor or an operator would."""
        for i in self.cluster.raft_shut_down():
            node = self.cluster.nodes[i]
            tail = log_tail(node.log_path, "FATAL", start=node.log_offset)
            self.history.event("shutdown", f"n{i} Raft core shut down, process still up",
                               node=i, log_tail=tail)
            self.log(f"nemesis: n{i} Raft core SHUT DOWN while the process runs (raft_role:"
                     f"shutdown); restarting it. Log: {' | '.join(tail)}")
            self.cluster.kill(i)
            self.cluster.start(i)

    def leader_or_random(self, prefer_leader=True):
        leader = self.cluster.leader() if prefer_leader else None
        live = [i for i, nd in self.cluster.nodes.items() if nd.alive and not nd.paused]
        if leader is not None:
            return leader, "leader"
        return self.rng.choice(live or list(self.cluster.nodes)), "no leader found: random"

    def pick_target(self):
        """The leader half of the time, else a random node."""
        if self.rng.random() < 0.5:
            return self.leader_or_random()
        i = self.rng.choice(list(self.cluster.nodes))
        return i, "random, the leader" if i == self.cluster.leader() else "random, a follower"

    def offset(self):
        return self.rng.choice([2, 5, 10, 30, 60, 120, 300])

    # ------------------------------------------------------------------ faults

    def start(self, name):
        """Starts fault `name`; returns (detail, nodes, hold seconds, heal function)."""
        c = self.cluster
        rng = self.rng
        ids = list(c.nodes)
        if name in ("kill-leader", "kill-random"):
            if name == "kill-leader":
                i, why = self.leader_or_random()
            else:
                i = rng.choice(ids)
                why = "random, the leader" if i == c.leader() else "random, a follower"
            c.kill(i)
            return f"n{i} ({why})", [i], rng.uniform(2, 5), lambda: c.start(i)
        if name == "pause-leader":
            i, why = self.leader_or_random()
            c.pause(i)
            return f"n{i} ({why})", [i], rng.uniform(1, 3), lambda: c.resume(i)
        if name == "partition-leader":
            i, why = self.leader_or_random()
            rest = set(ids) - {i}
            c.partition([{i}, rest])
            return f"n{i} ({why}) | {fmt(rest)}", [i], rng.uniform(3, 8), c.heal_network
        if name == "partition-half":
            shuffled = ids[:]
            rng.shuffle(shuffled)
            minority = set(shuffled[:(len(ids) - 1) // 2])
            majority = set(ids) - minority
            c.partition([minority, majority])
            leader = c.leader()
            return (f"minority {fmt(minority)} | majority {fmt(majority)} (leader was n{leader})",
                    sorted(minority), rng.uniform(3, 8), c.heal_network)
        if name == "partition-bridge":
            shuffled = ids[:]
            rng.shuffle(shuffled)
            middle = shuffled[0]
            half = (len(ids) - 1) // 2
            a, b = set(shuffled[1:1 + half]), set(shuffled[1 + half:])
            c.partition([a | {middle}, b | {middle}])
            return (f"{fmt(a)} - n{middle} - {fmt(b)} (leader was n{c.leader()})", [middle],
                    rng.uniform(3, 8), c.heal_network)
        if name == "partition-clients":
            i, why = self.pick_target()
            c.cut_clients(i)
            return f"clients cut from n{i} ({why})", [i], rng.uniform(3, 6), c.heal_network
        if name in ("clock-leader-forward", "clock-leader-back", "clock-follower"):
            if name == "clock-follower":
                leader = c.leader()
                followers = [x for x in ids if x != leader]
                i, why = rng.choice(followers), "follower"
                sign = rng.choice("+-")
            else:
                i, why = self.leader_or_random()
                sign = "+" if name.endswith("forward") else "-"
            spec = f"{sign}{self.offset()}"
            c.set_clock(i, spec)
            return (f"n{i} ({why}) wall clock {spec}s", [i], rng.uniform(3, 6),
                    lambda: c.set_clock(i, "+0"))
        if name == "clock-skew":
            specs = {}
            fast = rng.choice(ids)
            for i in ids:
                spec = f"{rng.randint(-120, 120):+d}"
                if i == fast:
                    spec += " x1.2"
                specs[i] = spec
                c.set_clock(i, spec)

            def heal():
                for i in ids:
                    c.set_clock(i, "+0")
            leader = c.leader()
            return (", ".join(f"n{i} {s}" for i, s in specs.items()) + f" (leader n{leader})",
                    ids, rng.uniform(4, 8), heal)
        if name in ("disk-full", "disk-eio"):
            i, why = self.pick_target()
            self.disk_faulty.add(i)
            if name == "disk-full":
                detail = f"n{i} ({why}) filesystem full ({c.fill_disk(i) >> 20} MiB written)"
                undo = c.free_disk
            else:
                c.fail_fsync(i, True)
                detail = f"n{i} ({why}) fsync -> EIO"
                undo = lambda i: c.fail_fsync(i, False)  # noqa: E731

            def heal():
                undo(i)
                self.disk_faulty.discard(i)
                if not c.nodes[i].alive:
                    c.start(i)
            return detail, [i], rng.uniform(3, 6) if name == "disk-full" else \
                rng.uniform(2, 5), heal
        raise ValueError(name)

    def run_one(self, name):
        self.next_id += 1
        fid = self.next_id
        # A fault counts from the moment we begin to apply it, its heal from the moment
        # it is fully undone: what happens in between is blamed on it.
        started = self.history.clock.now()
        detail, nodes, hold, heal = self.start(name)
        self.history.event("fault", name, time=started, id=fid, detail=detail, nodes=nodes,
                           hold=round(hold, 3))
        self.log(f"nemesis: t={self.history.clock.now():7.2f} fault #{fid} {name}: {detail}, "
                 f"for {hold:.1f}s")
        self.sleep(hold)
        heal()
        self.history.event("heal", name, id=fid, detail=detail, nodes=nodes)
        self.log(f"nemesis: t={self.history.clock.now():7.2f} heal  #{fid} {name}")
        if name.startswith("disk"):
            self.restart_shut_down()
        self.count += 1

    def schedule(self):
        """Faults forever: the selected groups (kill, pause, partition, clock, disk) in a
        shuffled round, a random fault of each group, so that even a short run sees every
        kind."""
        groups = {}
        for name in self.faults:
            group = next((g for g in ("kill", "pause", "partition", "clock", "disk")
                          if name in GROUPS[g]), name)
            groups.setdefault(group, []).append(name)
        order = sorted(groups)
        while True:
            self.rng.shuffle(order)
            for g in order:
                yield self.rng.choice(groups[g])

    def run(self, until):
        """Faults until harness time `until` (each fault starts only if its hold and heal
        fit before it)."""
        self.sleep(self.rng.uniform(*self.quiet))
        names = self.schedule()
        while not self.stop.is_set() and self.faults:
            if self.history.clock.now() + 8.0 > until:
                break
            self.run_one(next(names))
            self.sleep(self.rng.uniform(*self.quiet))
        left = until - self.history.clock.now()
        if left > 0:
            self.sleep(left)

    def heal_all(self):
        """Undoes everything: network, clocks, disks, paused and dead nodes."""
        c = self.cluster
        c.heal_network()
        for i, node in c.nodes.items():
            if node.clock != "+0":
                c.set_clock(i, "+0")
            c.fail_fsync(i, False)
            c.free_disk(i)
            if node.paused:
                c.resume(i)
        self.check_crashes()
        for i, node in c.nodes.items():
            if not node.alive:
                c.start(i)
        self.restart_shut_down()


def log_tail(path, pattern=None, lines=3, start=0):
    """The last lines of a node's log from byte `start` on (the first ones containing
    `pattern`, if given and found), without colour codes."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            text = f.read(4_000_000).decode(errors="replace")
    except OSError:
        return []
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    all_lines = text.splitlines()
    found = [line for line in all_lines if pattern is not None and pattern in line]
    return [line[:300] for line in (found[:lines] if found else all_lines[-lines:])]


def fmt(nodes):
    return "{" + ",".join(f"n{i}" for i in sorted(nodes)) + "}"
