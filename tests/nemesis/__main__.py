"""python3 -m tests.nemesis: run a cluster under faults, record a history, check it.

Exit status: 0 no violation, 1 violations found, 2 the harness could not run.
"""

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time

from . import checkers, faults, workloads
from .cluster import Cluster, check_prerequisites
from .history import Clock, History, load
from .resp import ConnectionLost, RespError


def log(msg):
    print(msg, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="scripts/nemesis.sh",
        description="Jepsen-style fault test of a raftlock cluster in network namespaces.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="faults:\n" + "\n".join(f"  {k:22} {v}" for k, v in faults.FAULTS.items())
        + "\ngroups:\n" + "\n".join(f"  {k:22} {', '.join(v)}"
                                    for k, v in faults.GROUPS.items()))
    p.add_argument("--nodes", type=int, choices=[3, 5], default=3)
    p.add_argument("--duration", type=float, default=60.0,
                   help="seconds of workload under faults (default 60)")
    p.add_argument("--faults", default="default",
                   help="comma-separated faults or groups (default: default; 'none' for none)")
    p.add_argument("--seed", type=int, default=None, help="seed of the fault schedule")
    p.add_argument("--out", default=None, help="directory for history, fault log, node logs")
    p.add_argument("--bin", default=os.environ.get("RAFTLOCK_BIN", "target/release/raftlock"))
    p.add_argument("--check", metavar="DIR", default=None,
                   help="only run the checkers on the history saved in DIR")
    return p.parse_args(argv)


def verify_clock(cluster):
    """Checks that a node's wall clock follows its libfaketime file and its monotonic
    clock does not. Returns (ok, text)."""
    def wall(i):
        s, us = cluster.control(i, "TIME", timeout=2.0)
        return int(s) + int(us) / 1e6 - time.time()

    def uptime(i):
        info = cluster.control(i, "INFO", "server", timeout=2.0)
        return int(next(line.split(":")[1] for line in info.splitlines()
                        if line.startswith("uptime_in_seconds")))
    i = 1
    try:
        before, up0 = wall(i), uptime(i)
        cluster.set_clock(i, "+3600")
        time.sleep(0.1)
        after, up1 = wall(i), uptime(i)
        cluster.set_clock(i, "-90")
        time.sleep(0.1)
        back = wall(i)
        cluster.set_clock(i, "+0")
        time.sleep(0.1)
        restored = wall(i)
    except (ConnectionLost, RespError) as e:
        cluster.set_clock(i, "+0")
        return False, f"clock check failed: {e}"
    ok = (abs(before) < 2 and abs(after - 3600) < 2 and abs(back + 90) < 2
          and abs(restored) < 2 and up1 - up0 < 60)
    text = (f"n{i} TIME - real time: {before:+.2f}s; file +3600 -> {after:+.2f}s; -90 -> "
            f"{back:+.2f}s; +0 -> {restored:+.2f}s. INFO uptime_in_seconds (a monotonic "
            f"Instant) moved {up1 - up0}s across the +3600 step: "
            + ("wall clock faked, monotonic clock real" if ok else "NOT AS EXPECTED"))
    return ok, text


def build_fsync_shim(out):
    src = os.path.join(os.path.dirname(__file__), "fsync_fail.c")
    lib = os.path.join(out, "fsync_fail.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", lib, src, "-ldl"], check=True)
    return lib


def report(ops, events, violations, notes, end_time, out, extra):
    """Prints the report (condensed when a long run had many faults or violations) and
    writes it in full to OUT/report.txt."""
    counts = checkers.summarize(ops)
    head = ["", "== ops per workload          ok     fail     info"]
    for w in ("locks", "redlock", "register", "set", "counter", "final"):
        if w in counts:
            c = counts[w]
            head.append(f"   {w:20} {c['ok']:8} {c['fail']:8} {c['info']:8}")
    rows = checkers.recovery(ops, events, end_time)
    spans = checkers.fault_spans(events)
    per_fault = []
    if rows:
        per_fault.append("")
        per_fault.append("== per fault: longest stretch without an acknowledged op, from the "
                         "fault to the next fault (s);")
        per_fault.append("   after heal: from the heal to the first acknowledged op (s)")
        for n, r in enumerate(rows, 1):
            gaps = " ".join(f"{w} {g:.1f}" for w, g in r["gaps"].items())
            after = " ".join(f"{w} {'-' if a is None else f'{a:.1f}'}"
                             for w, a in r["after_heal"].items())
            heal = "never" if r["heal"] == math.inf else f"{r['heal']:.1f}"
            per_fault.append(f"   {n:2}. {r['fault']:21} {r['start']:6.1f}-{heal:>6} "
                             f"{r['detail']}")
            per_fault.append(f"       gap:        {gaps}")
            per_fault.append(f"       after heal: {after}")
    kinds = []
    if rows:
        kinds.append("")
        kinds.append("== per fault kind: count; longest stretch without an acknowledged op of "
                     "any workload (median, max s);")
        kinds.append("   the same for the worst single workload (max s); violations while it "
                     "was active or after")
        kinds.append("   its heal until the next fault")
        kinds.append("   fault                  count   any: median    max   worst workload   "
                     "violations")
        blamed = {}
        for v in violations:
            name = checkers.fault_name_at(spans, v["time"])
            blamed[name] = blamed.get(name, 0) + 1
        by_name = {}
        for r in rows:
            worst = max((g for w, g in r["gaps"].items() if w != "any"), default=0.0)
            by_name.setdefault(r["fault"], []).append((r["gaps"].get("any", 0.0), worst))
        for name, gaps in sorted(by_name.items()):
            anys = sorted(g for g, _ in gaps)
            kinds.append(f"   {name:22} {len(gaps):5}   {anys[len(anys) // 2]:11.1f} "
                         f"{anys[-1]:6.1f}   {max(w for _, w in gaps):14.1f}   "
                         f"{blamed.pop(name, 0):10}")
        for name, n in blamed.items():
            kinds.append(f"   {name:22}     -             -      -                -   {n:10}")
    incidents = []
    for e in (e for e in events if e["kind"] in ("crash", "shutdown")):
        code = f" (code {e['code']})" if "code" in e else ""
        incidents.append(f"   ! t={e['time']:.1f} {e['name']}{code}: "
                         f"{' | '.join(e.get('log_tail', []))[:400]}")
    if incidents:
        incidents.insert(0, f"   {len(incidents)} time(s) a node crashed or shut its Raft core "
                            "down by itself (then restarted):")
    tail = [f"   note: {note}" for note in notes + extra]
    tail.append("")
    tail.append(f"VIOLATIONS: {len(violations)}")
    by_kind = {}
    for v in violations:
        by_kind[v["kind"]] = by_kind.get(v["kind"], 0) + 1
    if by_kind:
        tail.append("   " + ", ".join(f"{k}: {n}" for k, n in sorted(by_kind.items())))
    explained = []
    for n, v in enumerate(violations, 1):
        t = "end" if v["time"] == math.inf else f"{v['time']:.3f}"
        explained.append(f" {n}. [{v['kind']}] t={t} ({v['fault']})")
        explained.append(f"    {v['text']}")
    full = head + per_fault + kinds + incidents + tail + explained
    # On the terminal, a long run's report is cut down; report.txt keeps all of it.
    short = [head, per_fault if len(rows) <= 30 else [], kinds,
             incidents if len(incidents) <= 9 else
             incidents[:9] + [f"   ... {len(incidents) - 9} more in report.txt"],
             tail,
             explained if len(violations) <= 40 else
             explained[:80] + [f" ... {len(violations) - 40} more in report.txt"]]
    if out and sum(map(len, short)) < len(full):
        short.insert(3, [f"   (the full report, every fault and violation: {out}/report.txt)"])
    print("\n".join(line for part in short for line in part), flush=True)
    if out:
        with open(os.path.join(out, "report.txt"), "w") as f:
            f.write("\n".join(full) + "\n")
        with open(os.path.join(out, "violations.json"), "w") as f:
            json.dump(violations, f, indent=1, default=str)


def check_saved(directory):
    ops, events = load(os.path.join(directory, "history.jsonl"),
                       os.path.join(directory, "faults.jsonl"))
    violations, notes = checkers.check_all(ops, events)
    end = max((o.complete for o in ops if o.complete is not None), default=0.0)
    report(ops, events, violations, notes, end, directory, [])
    return 1 if violations else 0


def main(argv=None):
    args = parse_args(argv)
    if args.check:
        return check_saved(args.check)
    try:
        fault_names = faults.parse_faults(args.faults)
    except ValueError as e:
        print(f"nemesis: {e}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    out = os.path.abspath(args.out or os.path.join(
        "target", "nemesis", time.strftime("%Y%m%d-%H%M%S") + f"-n{args.nodes}-s{seed}"))
    os.makedirs(out, exist_ok=True)
    problem = check_prerequisites()
    if problem:
        print(f"nemesis: cannot run: {problem}", file=sys.stderr)
        return 2
    if not os.access(args.bin, os.X_OK):
        print(f"nemesis: no raftlock binary at {args.bin}", file=sys.stderr)
        return 2
    log(f"== raftlock nemesis: {args.nodes} nodes, {args.duration:.0f}s, seed {seed}, "
        f"faults {','.join(fault_names) or 'none'}")
    log(f"   binary {os.path.abspath(args.bin)}, output {out}")
    log(f"   reproduce: scripts/nemesis.sh --nodes {args.nodes} --duration {args.duration:g} "
        f"--faults {args.faults} --seed {seed}")

    # SIGTERM ends the run as Ctrl-C does: through the finally below.
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    shim = build_fsync_shim(out) if "disk-eio" in fault_names else None
    cluster = Cluster(args.nodes, args.bin, out, log=log,
                      disk="disk-full" in fault_names, fsync_shim=shim)
    clock = Clock()
    history = History(clock)
    stop = threading.Event()
    workers = []
    nemesis = None
    extra = []
    status = 2
    try:
        cluster.setup()
        cluster.start_all()
        took = cluster.wait_healthy(60)
        if took is None:
            log("nemesis: the cluster did not elect a leader and accept writes within 60 s")
            return 2
        log(f"   cluster up: leader n{cluster.leader()} ({took:.1f}s)")
        ok, text = verify_clock(cluster)
        log(f"   clock check: {text}")
        history.event("note", "clock-check", ok=ok, detail=text)
        if not ok and any(n.startswith("clock") for n in fault_names):
            log("nemesis: libfaketime does not move the server's wall clock: clock faults "
                "would test nothing")
            return 2
        workers = workloads.start_workers(cluster, history, seed, stop)
        nemesis = faults.Nemesis(cluster, history, fault_names, seed, log=log)
        nemesis.run(until=clock.now() + args.duration)
        nemesis.heal_all()
        history.event("note", "final-heal")
        healed_at = clock.now()
        took = cluster.wait_healthy(60)
        if took is None:
            health = cluster.health()
            extra.append("the cluster did not settle (one leader named by all, a write through "
                         f"every node) within 60 s of the final heal: {health}")
            log(f"nemesis: cluster NOT settled 60 s after the final heal: {health}")
        else:
            extra.append(f"settled {took:.1f}s after the final heal")
            log(f"   settled {took:.1f}s after the final heal (t={healed_at:.1f})")
        # A few seconds of workload on the healed cluster: recovery shows in the history.
        stop.wait(3.0)
        end_time = clock.now()
        stop.set()
        for w in workers:
            w.join(timeout=10)
        broken = [w for w in workers if w.error is not None]
        for w in broken:
            extra.append(f"worker {w.name} died: {w.error!r}")
        if not workloads.final_reads(cluster, history):
            log("nemesis: could not read every list and counter back within 30 s")
        ops = history.completed_ops()
        history.write(os.path.join(out, "history.jsonl"), os.path.join(out, "faults.jsonl"))
        log(f"   {len(ops)} ops, {nemesis.count} faults; checking")
        violations, notes = checkers.check_all(ops, history.events)
        report(ops, history.events, violations, notes, end_time, out, extra)
        status = 1 if violations or broken else 0
        return status
    except KeyboardInterrupt:
        log("nemesis: interrupted; cleaning up")
        status = 130
        return status
    finally:
        stop.set()
        if nemesis is not None:
            nemesis.stop.set()
        if status not in (0, 1) and history.ops:
            history.write(os.path.join(out, "history.jsonl"), os.path.join(out, "faults.jsonl"))
        cluster.teardown()


if __name__ == "__main__":
    sys.exit(main())
