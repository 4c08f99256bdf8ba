"""The record of a run: every client operation and every fault, on one harness clock.

An operation is invoked and then completes as
  ok    the server answered and the answer is what the op did,
  fail  the op certainly had no effect (a read that errored, a definite refusal),
  info  unknown: a timeout, a lost connection, or an error reply (TRYAGAIN, NOLEADER)
        after which a write may or may not have been applied; its completion time is
        taken as infinity by the checkers.
"""

import json
import math
import threading
import time


class Clock:
    """Seconds since the run started, by time.monotonic(): the one clock of every record."""

    def __init__(self):
        self.t0 = time.monotonic()

    def now(self):
        return time.monotonic() - self.t0


class Op:
    __slots__ = ("id", "process", "workload", "f", "key", "args", "node", "invoke",
                 "complete", "type", "value", "error")

    def __init__(self, id, process, workload, f, key, args, node, invoke,
                 complete=None, type=None, value=None, error=None):
        self.id = id
        self.process = process
        self.workload = workload
        self.f = f
        self.key = key
        self.args = args
        self.node = node
        self.invoke = invoke
        self.complete = complete
        self.type = type
        self.value = value
        self.error = error

    @property
    def end(self):
        """When the op's effect is known to have happened by: infinity if indeterminate."""
        return math.inf if self.type == "info" else self.complete

    def to_json(self):
        return {s: getattr(self, s) for s in self.__slots__}

    @classmethod
    def from_json(cls, d):
        return cls(**d)

    def __repr__(self):
        args = " ".join(str(a) for a in self.args) if self.args else ""
        t_end = "?" if self.complete is None else f"{self.complete:.3f}"
        err = f" ({self.error})" if self.error else ""
        return (f"op#{self.id} p{self.process} n{self.node} {self.f} {self.key} {args} "
                f"[{self.invoke:.3f}..{t_end}] {self.type} {self.value!r}{err}")


class History:
    """Thread-safe collector of ops and fault events."""

    def __init__(self, clock):
        self.clock = clock
        self.lock = threading.Lock()
        self.ops = []
        self.events = []

    def invoke(self, process, workload, f, key, args, node):
        with self.lock:
            op = Op(len(self.ops), process, workload, f, key, list(args), node,
                    self.clock.now())
            self.ops.append(op)
        return op

    def complete(self, op, type, value=None, error=None):
        op.complete = self.clock.now()
        op.type = type
        op.value = value
        op.error = error
        return op

    def event(self, kind, name, time=None, **detail):
        """A fault or heal (or a note) on the harness clock (now, unless `time` is given)."""
        t = self.clock.now() if time is None else time
        e = {"time": round(t, 6), "kind": kind, "name": name, **detail}
        with self.lock:
            self.events.append(e)
        return e

    def completed_ops(self):
        """Ops that completed (ops still running at the end count as info)."""
        with self.lock:
            ops = list(self.ops)
        for op in ops:
            if op.type is None:
                op.type = "info"
                op.error = op.error or "still running at the end of the run"
        return ops

    def write(self, path_ops, path_events):
        with open(path_ops, "w") as f:
            for op in self.completed_ops():
                f.write(json.dumps(op.to_json()) + "\n")
        with open(path_events, "w") as f:
            for e in self.events:
                f.write(json.dumps(e) + "\n")


def load(path_ops, path_events=None):
    with open(path_ops) as f:
        ops = [Op.from_json(json.loads(line)) for line in f if line.strip()]
    events = []
    if path_events:
        with open(path_events) as f:
            events = [json.loads(line) for line in f if line.strip()]
    return ops, events
