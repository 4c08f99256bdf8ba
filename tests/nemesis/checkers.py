"""Checkers: each reads a history (a list of history.Op) and returns violations.

They know nothing of the cluster or the faults beyond the recorded events, which are used
only to say which fault was active when a violation happened. Times are harness seconds.

A violation is a dict: kind, time (harness seconds), text (the explanation, ops included),
ops (op ids), and fault (what was active then), filled in by `attribute`.
"""

import math
from collections import defaultdict


def violation(kind, time, text, ops=()):
    return {"kind": kind, "time": time, "text": text, "ops": [o.id for o in ops],
            "fault": None}


# --------------------------------------------------------------------------------------
# Locks: raftlock's LOCK/RENEW/UNLOCK and the Redlock pattern (SET NX PX, FENCE, EVAL).
# --------------------------------------------------------------------------------------

class Grant:
    """One acknowledged grant of a lock to an owner, and the window in which its owner may
    rely on it: from the grant's reply until the earlier of its release request and the
    end of its lease (request sent + ttl, moved to renew-request sent + ttl by each
    acknowledged renew)."""

    def __init__(self, op, resource, owner, ttl_s, token):
        self.op = op
        self.resource = resource
        self.owner = owner
        self.token = token
        self.start = op.complete
        self.lease_end = op.invoke + ttl_s
        self.release = None           # the first release op (any outcome)
        self.renews = []              # acknowledged renews
        self.token_changed_at = math.inf  # a Redlock extend writes the key: new token

    @property
    def end(self):
        if self.release is not None:
            return min(self.lease_end, self.release.invoke)
        return self.lease_end

    def __repr__(self):
        return (f"grant of {self.resource} to {self.owner} token {self.token} by op#{self.op.id} "
                f"on n{self.op.node}, valid {self.start:.3f}..{self.end:.3f}")


def _grants(ops):
    """Builds grants from the `locks` and `redlock` workloads' ops. Returns (grants,
    early) where `early` are violations of 'a lease never ends early' seen by the owner
    itself (a RENEW or release that found the lock gone while its lease still ran)."""
    by_owner = defaultdict(list)
    for op in ops:
        if op.workload in ("locks", "redlock") and op.f != "checkfence":
            by_owner[(op.key, op.args[0])].append(op)
    grants = []
    early = []
    for (resource, owner), owner_ops in by_owner.items():
        owner_ops.sort(key=lambda o: o.invoke)
        grant = None
        for op in owner_ops:
            if op.f in ("lock", "acquire"):
                granted = op.type == "ok" and op.value is not None
                if granted:
                    token = op.value if op.f == "lock" else None
                    grant = Grant(op, resource, owner, op.args[1] / 1000.0, token)
                    grants.append(grant)
                continue
            if grant is None:
                continue
            if op.f == "fence":
                # EVAL returning [value, FENCE key]: the grant's token if still ours.
                if (op.type == "ok" and isinstance(op.value, list) and op.value[0] == owner
                        and grant.token is None and op.invoke < grant.token_changed_at):
                    grant.token = int(op.value[1])
            elif op.f in ("renew", "extend"):
                ttl_s = op.args[1] / 1000.0
                if op.type == "ok" and op.value == 1:
                    grant.renews.append(op)
                    grant.lease_end = max(grant.lease_end, op.invoke + ttl_s)
                    if op.f == "extend":
                        grant.token_changed_at = min(grant.token_changed_at, op.invoke)
                elif op.type == "ok" and op.value in (0, "NOTOWNER") and grant.release is None \
                        and op.complete < grant.lease_end:
                    early.append(violation(
                        "lease-ended-early", op.complete,
                        f"{op.f.upper()} answered {op.value} (not held) at {op.complete:.3f} although "
                        f"the lease runs to {grant.lease_end:.3f}: {grant}; {op}",
                        [grant.op, op]))
                elif op.type == "info" and op.f == "extend":
                    grant.token_changed_at = min(grant.token_changed_at, op.invoke)
            elif op.f in ("unlock", "release"):
                if grant.release is None:
                    grant.release = op
                    lost = (op.f == "unlock" and op.value == "NOTOWNER") or \
                           (op.f == "release" and op.value == 0)
                    if op.type == "ok" and lost and op.complete < grant.lease_end:
                        early.append(violation(
                            "lease-ended-early", op.complete,
                            f"{op.f.upper()} found the lock gone ({op.value}) at "
                            f"{op.complete:.3f} although the lease runs to "
                            f"{grant.lease_end:.3f}: {grant}; {op}", [grant.op, op]))
    return grants, early


def check_locks(ops):
    """No two owners' windows overlap; tokens strictly increase per resource in grant
    order and are never reused; CHECKFENCE never accepts a token older than an
    acknowledged newer grant, and always accepts the token of a grant whose window holds
    the whole probe."""
    grants, violations = _grants(ops)
    by_resource = defaultdict(list)
    for g in grants:
        by_resource[g.resource].append(g)

    for resource, gs in by_resource.items():
        # Two owners at once: sweep windows in start order.
        gs.sort(key=lambda g: g.start)
        active = []
        for g in gs:
            active = [a for a in active if a.end > g.start]
            for a in active:
                if a.owner != g.owner and g.start < g.end:
                    violations.append(violation(
                        "two-owners", g.start,
                        f"{resource} held by two owners from {g.start:.3f} to "
                        f"{min(a.end, g.end):.3f} ({min(a.end, g.end) - g.start:.3f}s): "
                        f"{a} (lease to {a.lease_end:.3f}) and {g} (lease to {g.lease_end:.3f})",
                        [a.op, g.op]))
            active.append(g)

        # Tokens go up in grant order: a grant acknowledged before another was requested
        # has the smaller token.
        tokened = [g for g in gs if g.token is not None]
        by_complete = sorted(tokened, key=lambda g: g.op.complete)
        i = 0
        best = None
        for g in sorted(tokened, key=lambda g: g.op.invoke):
            while i < len(by_complete) and by_complete[i].op.complete < g.op.invoke:
                if best is None or by_complete[i].token > best.token:
                    best = by_complete[i]
                i += 1
            if best is not None and best.token > g.token:
                violations.append(violation(
                    "token-backwards", g.op.complete,
                    f"{resource}: token {g.token} granted after token {best.token} was "
                    f"acknowledged: {best} then {g}", [best.op, g.op]))

    # A token is never given to two grants, on any resource.
    by_token = defaultdict(list)
    for g in grants:
        if g.token is not None:
            by_token[g.token].append(g)
    for token, gs in by_token.items():
        for g in gs[1:]:
            violations.append(violation(
                "token-reused", g.op.complete,
                f"token {token} given to two grants: {gs[0]} and {g}", [gs[0].op, g.op]))

    # CHECKFENCE probes.
    newer = {}  # resource -> grants sorted by completion, for the 'older token' rule
    for resource, gs in by_resource.items():
        newer[resource] = sorted((g for g in gs if g.token is not None),
                                 key=lambda g: g.op.complete)
    by_token_res = {(g.resource, g.token): g for g in grants if g.token is not None}
    for op in ops:
        if op.f != "checkfence" or op.type != "ok":
            continue
        resource, token = op.key, op.args[0]
        if op.value == 1:
            for g in newer.get(resource, []):
                if g.op.complete >= op.invoke:
                    break
                if g.token > token:
                    violations.append(violation(
                        "stale-checkfence", op.complete,
                        f"CHECKFENCE {resource} {token} answered 1 at {op.complete:.3f}, but a "
                        f"newer grant was acknowledged before it was asked: {g}; {op}",
                        [g.op, op]))
                    break
        elif op.value == 0:
            g = by_token_res.get((resource, token))
            if g is not None and g.start <= op.invoke and op.complete <= g.end \
                    and op.invoke < g.token_changed_at:
                violations.append(violation(
                    "lease-ended-early", op.complete,
                    f"CHECKFENCE {resource} {token} answered 0 at {op.complete:.3f} inside its "
                    f"owner's window: {g}; {op}", [g.op, op]))
    return violations


# --------------------------------------------------------------------------------------
# Registers: linearizability by the Wing & Gong / Lowe search with memoization (as
# Knossos and Porcupine do), one key at a time.
# --------------------------------------------------------------------------------------

def register_step(state, op):
    """The register model: the states `op` may lead to from `state` ([] if it cannot be
    linearized there). An indeterminate op is only ever linearized as having succeeded;
    not linearizing it at all stands for 'it never happened'."""
    f = op.f
    if f == "read":
        return [state] if op.value == state else []
    if f == "write":
        return [op.args[0]]
    if f == "cas":
        old, new = op.args
        if op.type == "info" or op.value == "OK":
            return [new] if state == old else []
        return [state] if state != old else []
    raise ValueError(f"unknown register op {f}")


class _Entry:
    __slots__ = ("op", "bit", "is_call", "match", "prev", "next", "time", "definite")

    def __init__(self, op, bit, is_call, time, definite):
        self.op = op
        self.bit = bit
        self.is_call = is_call
        self.time = time
        self.definite = definite
        self.match = self.prev = self.next = None


def linearizable(ops, step=register_step, init=None, max_steps=20_000_000):
    """Is this one key's history linearizable? Returns (True | False | None, detail);
    None when the search gave up after max_steps; detail explains a failure and names the
    op that no order explains. Failed ops and indeterminate reads are
    left out (they had no effect); indeterminate writes complete at infinity."""
    ops = [o for o in ops if o.type == "ok" or (o.type == "info" and o.f != "read")]
    events = []
    entries = []
    for i, op in enumerate(ops):
        definite = op.type == "ok"
        call = _Entry(op, 1 << i, True, op.invoke, definite)
        ret = _Entry(op, 1 << i, False, op.complete if definite else math.inf, definite)
        call.match = ret
        entries.append(call)
        # Calls sort before returns at the same instant: the more concurrency, the fewer
        # false alarms.
        events.append((call.time, 0, i, call))
        events.append((ret.time, 1, i, ret))
    events.sort(key=lambda e: e[:3])
    head = _Entry(None, 0, False, -math.inf, False)
    prev = head
    for _, _, _, e in events:
        prev.next = e
        e.prev = prev
        prev = e

    def lift(e):
        e.prev.next = e.next
        if e.next:
            e.next.prev = e.prev
        r = e.match
        r.prev.next = r.next
        if r.next:
            r.next.prev = r.prev

    def unlift(e):
        r = e.match
        r.prev.next = r
        if r.next:
            r.next.prev = r
        e.prev.next = e
        if e.next:
            e.next.prev = e

    remaining = sum(1 for o in ops if o.type == "ok")
    state = init
    linearized = 0
    cache = set()
    stack = []
    entry = head.next
    first_option = 0
    steps = 0
    deepest = (-1, None, None)  # (ops linearized, stuck op, state there)
    while remaining > 0:
        steps += 1
        if steps > max_steps:
            return None, f"gave up after {max_steps} steps ({len(ops)} ops)", None
        if entry.is_call:
            options = step(state, entry.op)
            moved = False
            for k in range(first_option, len(options)):
                new_state = options[k]
                new_lin = linearized | entry.bit
                if (new_lin, new_state) in cache:
                    continue
                cache.add((new_lin, new_state))
                stack.append((entry, state, k))
                state = new_state
                linearized = new_lin
                if entry.definite:
                    remaining -= 1
                lift(entry)
                entry = head.next
                moved = True
                break
            first_option = 0
            if not moved:
                entry = entry.next
        else:
            if len(stack) > deepest[0]:
                deepest = (len(stack), entry.op, state)
            if not stack:
                break
            entry, state, k = stack.pop()
            linearized &= ~entry.bit
            if entry.definite:
                remaining += 1
            unlift(entry)
            first_option = k + 1
    if remaining == 0:
        return True, "", None
    _, stuck, at_state = deepest
    concurrent = [o for o in ops if o is not stuck and o.invoke < stuck.complete
                  and (o.type == "info" or o.complete > stuck.invoke)]
    concurrent.sort(key=lambda o: o.invoke)
    lines = [f"no linearization explains {stuck}: the furthest order reached "
             f"({deepest[0]} ops) leaves the register at {at_state!r}"]
    lines += [f"    concurrent: {o}" for o in concurrent[:12]]
    if len(concurrent) > 12:
        lines.append(f"    ... and {len(concurrent) - 12} more")
    return False, "\n".join(lines), stuck


def check_registers(ops, max_steps=20_000_000):
    """Linearizability of every register key. Returns (violations, notes)."""
    by_key = defaultdict(list)
    for op in ops:
        if op.workload == "register":
            by_key[op.key].append(op)
    violations, notes = [], []
    for key in sorted(by_key):
        ok, text, stuck = linearizable(by_key[key], max_steps=max_steps)
        if ok is False:
            violations.append(violation("not-linearizable", stuck.complete,
                                        f"register {key}: {text}", [stuck]))
        elif ok is None:
            notes.append(f"register {key}: linearizability unknown, {text}")
    return violations, notes


# --------------------------------------------------------------------------------------
# No lost writes: RPUSH of unique elements, INCR counters, read back after healing.
# --------------------------------------------------------------------------------------

def check_lost_writes(ops):
    """Every acknowledged RPUSH element is in the final list exactly once, nothing is in it
    that nobody pushed (or that was pushed once but appears twice), and every counter lies
    between its acknowledged and its attempted increments."""
    violations = []
    adds = defaultdict(list)
    incrs = defaultdict(list)
    finals = {}
    for op in ops:
        if op.workload == "set" and op.f == "add":
            adds[op.key].append(op)
        elif op.workload == "counter" and op.f == "incr":
            incrs[op.key].append(op)
        elif op.workload == "final" and op.type == "ok":
            finals[op.key] = op
    for key, key_adds in sorted(adds.items()):
        final = finals.get(key)
        if final is None:
            violations.append(violation("final-read-failed", math.inf,
                                        f"list {key}: never read back after healing"))
            continue
        counts = defaultdict(int)
        for element in final.value:
            counts[element] += 1
        pushed = {op.args[0]: op for op in key_adds}
        for element, n in counts.items():
            op = pushed.get(element)
            if op is None:
                violations.append(violation(
                    "invented-element", final.complete,
                    f"list {key}: element {element!r} ({n}x) was never pushed", [final]))
            elif n > 1:
                violations.append(violation(
                    "duplicated-element", op.invoke,
                    f"list {key}: element {element!r} is there {n} times, pushed once by {op}",
                    [op, final]))
            elif op.type == "fail":
                violations.append(violation(
                    "failed-write-applied", op.invoke,
                    f"list {key}: element {element!r} is there but its push failed: {op}",
                    [op, final]))
        for op in key_adds:
            if op.type == "ok" and counts.get(op.args[0], 0) == 0:
                violations.append(violation(
                    "lost-element", op.complete,
                    f"list {key}: acknowledged element {op.args[0]!r} is missing from the "
                    f"final list ({len(final.value)} elements): {op}", [op, final]))
    for key, key_incrs in sorted(incrs.items()):
        final = finals.get(key)
        if final is None:
            violations.append(violation("final-read-failed", math.inf,
                                        f"counter {key}: never read back after healing"))
            continue
        value = int(final.value or 0)
        acked = sum(1 for op in key_incrs if op.type == "ok")
        attempted = sum(1 for op in key_incrs if op.type in ("ok", "info"))
        if not acked <= value <= attempted:
            violations.append(violation(
                "counter-out-of-range", final.complete,
                f"counter {key} = {value}, outside [{acked} acknowledged, {attempted} "
                f"attempted] increments", [final]))
        replies = defaultdict(list)
        for op in key_incrs:
            if op.type == "ok":
                replies[op.value].append(op)
        for v, same in replies.items():
            if len(same) > 1:
                violations.append(violation(
                    "counter-duplicate-reply", same[1].complete,
                    f"counter {key}: two acknowledged INCRs both answered {v}: "
                    f"{same[0]}; {same[1]}", same[:2]))
            if v > value:
                violations.append(violation(
                    "counter-went-back", final.complete,
                    f"counter {key}: an INCR answered {v} but the final value is {value}: "
                    f"{same[0]}", [same[0], final]))
    return violations


# --------------------------------------------------------------------------------------
# Faults: what was active when, and how long each workload went without a success.
# --------------------------------------------------------------------------------------

def fault_spans(events):
    """[(start, end, name, detail)] from fault/heal events (end: the matching heal)."""
    spans = []
    open_ = {}
    for e in events:
        if e["kind"] == "fault":
            open_[e["id"]] = e
        elif e["kind"] == "heal" and e.get("id") in open_:
            f = open_.pop(e["id"])
            spans.append((f["time"], e["time"], f["name"], f.get("detail", "")))
    for f in open_.values():
        spans.append((f["time"], math.inf, f["name"], f.get("detail", "")))
    spans.sort()
    return spans


def describe_time(spans, t):
    active = [f"{n} {d} ({s:.1f}-{e:.1f})" for s, e, n, d in spans if s <= t <= e]
    if active:
        return "during " + "; ".join(active)
    before = [(e, n, d) for s, e, n, d in spans if e < t]
    if before:
        e, n, d = max(before)
        return f"no fault active; last was {n} {d}, healed at {e:.1f} ({t - e:.1f}s earlier)"
    return "no fault yet"


def fault_name_at(spans, t):
    """The fault active at t, else the last one healed before t, else 'no fault'."""
    active = [n for s, e, n, _ in spans if s <= t <= e]
    if active:
        return active[-1]
    before = [(e, n) for s, e, n, _ in spans if e < t]
    return max(before)[1] if before else "no fault"


def attribute(violations, events):
    spans = fault_spans(events)
    for v in violations:
        v["fault"] = describe_time(spans, v["time"]) if v["time"] != math.inf else "-"
    return violations


def recovery(ops, events, end_time):
    """Per fault: for each workload (and for `any` of them), the longest stretch without an
    acknowledged op from the fault's start until the next fault starts, and the time from
    its heal to the first acknowledged op."""
    oks = defaultdict(list)
    for op in ops:
        if op.type == "ok" and op.workload != "final":
            oks[op.workload].append(op.complete)
            oks["any"].append(op.complete)
    for times in oks.values():
        times.sort()
    spans = fault_spans(events)
    rows = []
    for i, (start, heal, name, detail) in enumerate(spans):
        stop = spans[i + 1][0] if i + 1 < len(spans) else end_time
        stop = max(stop, min(heal, end_time))
        row = {"fault": name, "detail": detail, "start": start, "heal": heal, "gaps": {},
               "after_heal": {}}
        for w, times in sorted(oks.items()):
            inside = [t for t in times if start <= t <= stop]
            points = [start] + inside + ([stop] if not inside or inside[-1] < stop else [])
            row["gaps"][w] = max(b - a for a, b in zip(points, points[1:])) if len(points) > 1 \
                else 0.0
            after = next((t for t in times if t >= heal), None)
            row["after_heal"][w] = None if after is None or heal == math.inf else after - heal
        rows.append(row)
    return rows


def summarize(ops):
    """ok / fail / info counts per workload."""
    counts = defaultdict(lambda: {"ok": 0, "fail": 0, "info": 0})
    for op in ops:
        counts[op.workload][op.type or "info"] += 1
    return dict(counts)


def check_all(ops, events, max_steps=20_000_000):
    """Every checker on one history. Returns (violations, notes)."""
    violations = check_locks(ops)
    reg_violations, notes = check_registers(ops, max_steps=max_steps)
    violations += reg_violations
    violations += check_lost_writes(ops)
    attribute(violations, events)
    violations.sort(key=lambda v: v["time"])
    return violations, notes
