"""Self-tests of the checkers on made-up histories: each bug must be caught, and correct
histories (indeterminate ops included) must pass.

    python3 -m unittest tests.nemesis.test_checkers      (from the repository root)
"""

import unittest

from tests.nemesis import checkers
from tests.nemesis.history import Op


class H:
    """Builds a history: h.op(workload, f, key, args, invoke, complete, type, value)."""

    def __init__(self):
        self.ops = []

    def op(self, workload, f, key, args, invoke, complete, type="ok", value=None):
        op = Op(len(self.ops), len(self.ops), workload, f, key,
                list(args), 1, invoke, complete, type, value)
        self.ops.append(op)
        return op

    # raftlock locks
    def lock(self, res, owner, ttl_ms, t0, t1, token, type="ok"):
        return self.op("locks", "lock", res, [owner, ttl_ms], t0, t1, type, token)

    def unlock(self, res, owner, t0, t1, value=0, type="ok"):
        return self.op("locks", "unlock", res, [owner], t0, t1, type, value)

    def renew(self, res, owner, ttl_ms, t0, t1, value=1, type="ok"):
        return self.op("locks", "renew", res, [owner, ttl_ms], t0, t1, type, value)

    def checkfence(self, res, token, t0, t1, value):
        return self.op("locks", "checkfence", res, [token], t0, t1, "ok", value)

    # registers
    def read(self, key, t0, t1, value, type="ok"):
        return self.op("register", "read", key, [], t0, t1, type, value)

    def write(self, key, v, t0, t1, type="ok"):
        return self.op("register", "write", key, [v], t0, t1, type, "OK")

    def cas(self, key, old, new, t0, t1, value="OK", type="ok"):
        return self.op("register", "cas", key, [old, new], t0, t1, type, value)


def kinds(violations):
    return sorted({v["kind"] for v in violations})


class LockChecker(unittest.TestCase):
    def test_sequential_grants_pass(self):
        h = H()
        h.lock("r", "a", 1000, 0.0, 0.1, 5)
        h.checkfence("r", 5, 0.2, 0.3, 1)
        h.renew("r", "a", 1000, 0.5, 0.6)
        h.unlock("r", "a", 1.2, 1.3)
        h.lock("r", "b", 1000, 1.4, 1.5, 9)
        h.checkfence("r", 5, 1.6, 1.7, 0)
        h.unlock("r", "b", 1.8, 1.9)
        self.assertEqual(checkers.check_locks(h.ops), [])

    def test_grant_after_lease_ran_out_passes(self):
        h = H()
        h.lock("r", "a", 500, 0.0, 0.1, 5)
        # a never releases; b is granted after a's lease (sent at 0.0 + 0.5 s) ran out.
        h.lock("r", "b", 500, 0.45, 0.55, 6)
        h.unlock("r", "a", 0.9, 1.0, value="NOTOWNER")
        self.assertEqual(checkers.check_locks(h.ops), [])

    def test_indeterminate_ops_pass(self):
        h = H()
        h.lock("r", "a", 1000, 0.0, 0.1, 5)
        h.lock("r", "x", 1000, 0.2, 1.7, None, type="info")   # timed out: maybe granted
        h.unlock("r", "a", 0.5, 2.0, type="info")              # a stops relying at 0.5
        h.lock("r", "b", 1000, 0.6, 0.7, 8)
        h.renew("r", "b", 1000, 0.8, 2.3, type="info")
        h.unlock("r", "b", 1.0, 1.1)
        self.assertEqual(checkers.check_locks(h.ops), [])

    def test_overlapping_windows_are_caught(self):
        h = H()
        h.lock("r", "a", 1000, 0.0, 0.1, 5)
        h.lock("r", "b", 1000, 0.5, 0.6, 6)     # a's lease runs to 1.0, no release yet
        h.unlock("r", "a", 0.8, 0.9)
        self.assertEqual(kinds(checkers.check_locks(h.ops)), ["two-owners"])

    def test_renew_extends_the_window(self):
        h = H()
        h.lock("r", "a", 1000, 0.0, 0.1, 5)
        h.renew("r", "a", 1000, 0.7, 0.8)       # lease now to 1.7
        h.lock("r", "b", 1000, 1.2, 1.3, 6)     # granted while a's renewed lease runs
        self.assertEqual(kinds(checkers.check_locks(h.ops)), ["two-owners"])

    def test_reused_token_is_caught(self):
        h = H()
        h.lock("r", "a", 1000, 0.0, 0.1, 5)
        h.unlock("r", "a", 0.2, 0.3)
        h.lock("r", "b", 1000, 0.4, 0.5, 5)
        self.assertIn("token-reused", kinds(checkers.check_locks(h.ops)))

    def test_reused_token_on_another_resource_is_caught(self):
        h = H()
        h.lock("r", "a", 1000, 0.0, 0.1, 5)
        h.lock("s", "b", 1000, 0.0, 0.1, 5)
        self.assertEqual(kinds(checkers.check_locks(h.ops)), ["token-reused"])

    def test_token_going_backwards_is_caught(self):
        h = H()
        h.lock("r", "a", 1000, 0.0, 0.1, 7)
        h.unlock("r", "a", 0.2, 0.3)
        h.lock("r", "b", 1000, 0.4, 0.5, 6)
        self.assertEqual(kinds(checkers.check_locks(h.ops)), ["token-backwards"])

    def test_swapped_tokens_are_caught(self):
        """The planted bug of the task: two grants' tokens swapped in a correct history."""
        h = H()
        a = h.lock("r", "a", 1000, 0.0, 0.1, 5)
        h.unlock("r", "a", 0.2, 0.3)
        b = h.lock("r", "b", 1000, 0.4, 0.5, 6)
        h.unlock("r", "b", 0.6, 0.7)
        self.assertEqual(checkers.check_locks(h.ops), [])
        a.value, b.value = b.value, a.value
        self.assertEqual(kinds(checkers.check_locks(h.ops)), ["token-backwards"])

    def test_concurrent_grant_requests_may_get_either_token(self):
        h = H()
        h.lock("r", "a", 1000, 0.0, 0.5, 7)     # requests overlap in time: no order
        h.unlock("r", "a", 0.55, 0.6)
        h.lock("r", "b", 1000, 0.1, 0.9, 6)
        # b asked before a's grant was acknowledged: the two grants are not ordered in real
        # time, so either may hold the lower token (b's window starts after a released).
        self.assertEqual(checkers.check_locks(h.ops), [])

    def test_stale_checkfence_is_caught(self):
        h = H()
        h.lock("r", "a", 1000, 0.0, 0.1, 5)
        h.unlock("r", "a", 0.2, 0.3)
        h.lock("r", "b", 1000, 0.4, 0.5, 6)
        h.checkfence("r", 5, 0.6, 0.7, 1)
        self.assertEqual(kinds(checkers.check_locks(h.ops)), ["stale-checkfence"])

    def test_checkfence_concurrent_with_newer_grant_passes(self):
        h = H()
        h.lock("r", "a", 1000, 0.0, 0.1, 5)
        h.unlock("r", "a", 0.2, 0.3)
        h.lock("r", "b", 1000, 0.4, 0.7, 6)
        h.checkfence("r", 5, 0.25, 0.6, 1)       # asked before b's grant was acknowledged
        self.assertEqual(checkers.check_locks(h.ops), [])

    def test_lease_ending_early_is_caught(self):
        h = H()
        h.lock("r", "a", 2000, 0.0, 0.1, 5)
        h.checkfence("r", 5, 0.5, 0.6, 0)       # the lease runs to 2.0
        h.renew("r", "a", 2000, 0.8, 0.9, value=0)
        h.unlock("r", "a", 1.0, 1.1, value="NOTOWNER")
        self.assertEqual(kinds(checkers.check_locks(h.ops)), ["lease-ended-early"])
        self.assertEqual(len(checkers.check_locks(h.ops)), 3)

    def test_redlock_pattern(self):
        h = H()
        h.op("redlock", "acquire", "k", ["tok-a", 1000], 0.0, 0.1, "ok", "OK")
        h.op("redlock", "fence", "k", ["tok-a"], 0.1, 0.2, "ok", ["tok-a", 10])
        h.op("redlock", "release", "k", ["tok-a"], 0.3, 0.4, "ok", 1)
        h.op("redlock", "acquire", "k", ["tok-b", 1000], 0.5, 0.6, "ok", "OK")
        h.op("redlock", "fence", "k", ["tok-b"], 0.6, 0.7, "ok", ["tok-b", 12])
        h.op("redlock", "acquire", "k", ["tok-c", 1000], 0.65, 0.7, "ok", None)
        h.op("redlock", "release", "k", ["tok-b"], 0.8, 0.9, "ok", 1)
        h.op("locks", "checkfence", "k", [10], 0.75, 0.78, "ok", 0)
        self.assertEqual(checkers.check_locks(h.ops), [])
        h.op("redlock", "acquire", "k", ["tok-d", 1000], 0.2, 0.25, "ok", "OK")
        h.op("redlock", "fence", "k", ["tok-d"], 0.25, 0.28, "ok", ["tok-d", 11])
        self.assertEqual(kinds(checkers.check_locks(h.ops)), ["two-owners"])


class RegisterChecker(unittest.TestCase):
    def check(self, h):
        return checkers.check_registers(h.ops)[0]

    def test_sequential_history_passes(self):
        h = H()
        h.read("x", 0.0, 0.1, None)
        h.write("x", "1", 0.2, 0.3)
        h.read("x", 0.4, 0.5, "1")
        h.cas("x", "1", "2", 0.6, 0.7)
        h.cas("x", "1", "3", 0.8, 0.9, value=None)
        h.read("x", 1.0, 1.1, "2")
        self.assertEqual(self.check(h), [])

    def test_concurrent_history_passes(self):
        h = H()
        h.write("x", "1", 0.0, 1.0)
        h.write("x", "2", 0.1, 0.9)
        h.read("x", 0.2, 0.3, "2")
        h.read("x", 0.4, 0.5, "1")        # 2 then 1, both inside the writes
        h.read("x", 1.1, 1.2, "1")
        self.assertEqual(self.check(h), [])

    def test_stale_read_is_caught(self):
        h = H()
        h.write("x", "1", 0.0, 0.1)
        h.write("x", "2", 0.2, 0.3)
        h.read("x", 0.4, 0.5, "1")
        v = self.check(h)
        self.assertEqual(kinds(v), ["not-linearizable"])
        self.assertIn("op#2", v[0]["text"])

    def test_read_going_back_between_concurrent_writes_is_caught(self):
        h = H()
        h.write("x", "1", 0.0, 1.0)
        h.write("x", "2", 0.0, 1.0)
        h.read("x", 0.2, 0.3, "2")
        h.read("x", 0.4, 0.5, "1")
        h.read("x", 0.6, 0.7, "2")        # 2, 1, 2: no single order of two writes
        self.assertEqual(kinds(self.check(h)), ["not-linearizable"])

    def test_indeterminate_write_may_take_effect_late(self):
        h = H()
        h.write("x", "1", 0.0, 0.1)
        h.write("x", "2", 0.2, 0.5, type="info")   # timed out
        h.read("x", 0.6, 0.7, "1")
        h.read("x", 5.0, 5.1, "2")                  # applied long after the timeout
        h.read("x", 6.0, 6.1, "2")
        self.assertEqual(self.check(h), [])

    def test_indeterminate_write_may_never_happen(self):
        h = H()
        h.write("x", "1", 0.0, 0.1)
        h.cas("x", "1", "3", 0.2, 0.5, type="info")
        h.read("x", 0.6, 0.7, "1")
        h.read("x", 1.0, 1.1, "1")
        self.assertEqual(self.check(h), [])

    def test_indeterminate_write_cannot_take_effect_twice(self):
        h = H()
        h.write("x", "1", 0.0, 0.1)
        h.write("x", "2", 0.2, 0.5, type="info")
        h.read("x", 0.6, 0.7, "2")
        h.write("x", "3", 0.8, 0.9)
        h.read("x", 1.0, 1.1, "2")
        self.assertEqual(kinds(self.check(h)), ["not-linearizable"])

    def test_failed_cas_that_took_effect_is_caught(self):
        h = H()
        h.write("x", "1", 0.0, 0.1)
        h.cas("x", "1", "2", 0.2, 0.3, value=None)  # answered nil although x was 1
        self.assertEqual(kinds(self.check(h)), ["not-linearizable"])

    def test_failed_ops_are_ignored(self):
        h = H()
        h.write("x", "1", 0.0, 0.1)
        h.read("x", 0.2, 0.3, None, type="fail")
        h.read("x", 0.4, 0.5, "7", type="info")
        self.assertEqual(self.check(h), [])

    def test_many_concurrent_ops_finish(self):
        h = H()
        t = 0.0
        for i in range(60):
            h.write("x", str(i), t, t + 0.35)
            h.read("x", t + 0.05, t + 0.4, str(i))
            if i % 7 == 0:
                h.write("x", f"lost{i}", t, t + 0.3, type="info")
            t += 0.3
        self.assertEqual(self.check(h), [])


class LostWrites(unittest.TestCase):
    def history(self, final_list, counter, incr_types=("ok", "ok", "info")):
        h = H()
        h.op("set", "add", "L", ["a"], 0.0, 0.1, "ok", 1)
        h.op("set", "add", "L", ["b"], 0.2, 0.3, "ok", 2)
        h.op("set", "add", "L", ["c"], 0.4, 0.5, "info")
        for i, t in enumerate(incr_types):
            h.op("counter", "incr", "C", [], 0.1 * i, 0.1 * i + 0.05, t,
                 i + 1 if t == "ok" else None)
        h.op("final", "read", "L", [], 9.0, 9.1, "ok", final_list)
        h.op("final", "read", "C", [], 9.0, 9.1, "ok", str(counter))
        return h

    def test_complete_history_passes(self):
        self.assertEqual(checkers.check_lost_writes(self.history(["a", "b"], 2).ops), [])
        self.assertEqual(checkers.check_lost_writes(self.history(["a", "c", "b"], 3).ops), [])

    def test_lost_element_is_caught(self):
        v = checkers.check_lost_writes(self.history(["b", "c"], 2).ops)
        self.assertEqual(kinds(v), ["lost-element"])
        self.assertIn("'a'", v[0]["text"])

    def test_duplicated_element_is_caught(self):
        v = checkers.check_lost_writes(self.history(["a", "b", "b"], 2).ops)
        self.assertEqual(kinds(v), ["duplicated-element"])
        v = checkers.check_lost_writes(self.history(["a", "b", "c", "c"], 2).ops)
        self.assertEqual(kinds(v), ["duplicated-element"])

    def test_invented_element_is_caught(self):
        v = checkers.check_lost_writes(self.history(["a", "b", "z"], 2).ops)
        self.assertEqual(kinds(v), ["invented-element"])

    def test_counter_out_of_range_is_caught(self):
        self.assertEqual(kinds(checkers.check_lost_writes(self.history(["a", "b"], 1).ops)),
                         ["counter-out-of-range", "counter-went-back"])
        self.assertEqual(kinds(checkers.check_lost_writes(self.history(["a", "b"], 4).ops)),
                         ["counter-out-of-range"])

    def test_missing_final_read_is_reported(self):
        h = self.history(["a", "b"], 2)
        h.ops = [o for o in h.ops if not (o.workload == "final" and o.key == "L")]
        self.assertEqual(kinds(checkers.check_lost_writes(h.ops)), ["final-read-failed"])


class Recovery(unittest.TestCase):
    def test_longest_gap_and_time_after_heal(self):
        h = H()
        for t in (0.5, 1.0, 1.5, 4.0, 4.5, 9.0):
            h.op("locks", "lock", "r", ["o", 100], t - 0.1, t, "ok", None)
        events = [{"time": 1.2, "kind": "fault", "id": 1, "name": "kill", "detail": "n1"},
                  {"time": 3.0, "kind": "heal", "id": 1, "name": "kill", "detail": "n1"}]
        rows = checkers.recovery(h.ops, events, 10.0)
        self.assertEqual(len(rows), 1)
        self.assertAlmostEqual(rows[0]["gaps"]["locks"], 4.5)     # 4.5 .. 9.0
        self.assertAlmostEqual(rows[0]["after_heal"]["locks"], 1.0)

    def test_attribution_names_the_active_fault(self):
        events = [{"time": 1.0, "kind": "fault", "id": 1, "name": "pause", "detail": "n2"},
                  {"time": 2.0, "kind": "heal", "id": 1, "name": "pause", "detail": "n2"}]
        v = checkers.attribute([checkers.violation("x", 1.5, "t"),
                                checkers.violation("x", 2.5, "t")], events)
        self.assertIn("during pause n2", v[0]["fault"])
        self.assertIn("healed at 2.0", v[1]["fault"])
        spans = checkers.fault_spans(events)
        self.assertEqual(checkers.fault_name_at(spans, 0.5), "no fault")
        self.assertEqual(checkers.fault_name_at(spans, 1.5), "pause")
        self.assertEqual(checkers.fault_name_at(spans, 9.0), "pause")


if __name__ == "__main__":
    unittest.main()
