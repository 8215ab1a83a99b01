"""The checker on hand-made histories: each kind of anomaly it must find, and legal
histories it must accept. Run: python -m unittest tests/chaos/test_checker.py (or pytest)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402


def reg(f, invoke, complete, typ="ok", key="r", **kw):
    arg, out = {}, {}
    if f == "read":
        out = {"value": kw["value"], "version": kw["version"]}
    elif f == "write":
        arg = {"value": kw["value"]}
        if "version" in kw:
            out = {"version": kw["version"]}
    elif f == "cas":
        arg = {"value": kw["value"], "expect": kw["expect"]}
        if typ == "ok":
            out = {"version": kw["expect"] + 1}
    return {"kind": "register", "key": key, "f": f, "invoke": invoke, "complete": complete,
            "type": typ, "arg": arg, "out": out}


def regs_ok(ops):
    anomalies, _ = checker.check_registers(ops, "init")
    return not anomalies


class Registers(unittest.TestCase):
    def test_sequential_legal(self):
        self.assertTrue(regs_ok([
            reg("read", 0, 1, value="init", version=0),
            reg("write", 2, 3, value="a", version=1),
            reg("cas", 4, 5, value="b", expect=1),
            reg("read", 6, 7, value="b", version=2),
            reg("cas", 8, 9, "fail", value="c", expect=1),
            reg("read", 10, 11, value="b", version=2),
        ]))

    def test_stale_read_after_acknowledged_write(self):
        self.assertFalse(regs_ok([
            reg("write", 0, 1, value="a", version=1),
            reg("read", 2, 3, value="init", version=0),
        ]))

    def test_concurrent_read_may_see_either(self):
        for value, version in (("init", 0), ("a", 1)):
            self.assertTrue(regs_ok([
                reg("write", 0, 5, value="a", version=1),
                reg("read", 1, 2, value=value, version=version),
            ]))

    def test_two_cas_on_one_version_both_acknowledged(self):
        self.assertFalse(regs_ok([
            reg("cas", 0, 10, value="a", expect=0),
            reg("cas", 1, 11, value="b", expect=0),
        ]))

    def test_cas_refused_although_version_matched(self):
        self.assertFalse(regs_ok([
            reg("read", 0, 1, value="init", version=0),
            reg("cas", 2, 3, "fail", value="a", expect=0),
            reg("read", 4, 5, value="init", version=0),
        ]))

    def test_lost_write_version_skipped(self):
        # A read sees version 2 with only one write ever applied.
        self.assertFalse(regs_ok([
            reg("write", 0, 1, value="a", version=1),
            reg("read", 2, 3, value="a", version=2),
        ]))

    def test_indeterminate_write_may_apply_late(self):
        self.assertTrue(regs_ok([
            reg("write", 0, None, "info", value="a"),
            reg("read", 1, 2, value="init", version=0),
            reg("read", 10, 11, value="a", version=1),
        ]))

    def test_indeterminate_write_may_never_apply(self):
        self.assertTrue(regs_ok([
            reg("write", 0, None, "info", value="a"),
            reg("read", 10, 11, value="init", version=0),
        ]))

    def test_indeterminate_write_cannot_apply_before_invoke(self):
        self.assertFalse(regs_ok([
            reg("read", 0, 1, value="a", version=1),
            reg("write", 2, None, "info", value="a"),
        ]))

    def test_indeterminate_write_fills_a_version_gap(self):
        # Versions 1 and 3 acknowledged: version 2 can only be the unknown write, applied
        # between them (the pruning by claimed versions must still allow it there).
        self.assertTrue(regs_ok([
            reg("write", 0, 1, value="a", version=1),
            reg("write", 2, None, "info", value="u"),
            reg("read", 3, 4, value="u", version=2),
            reg("write", 5, 6, value="b", version=3),
        ]))

    def test_indeterminate_write_cannot_take_a_claimed_version(self):
        # The unknown write would have to be version 2, which an acknowledged write claims.
        self.assertFalse(regs_ok([
            reg("write", 0, 1, value="a", version=1),
            reg("write", 2, None, "info", value="u"),
            reg("read", 3, 4, value="u", version=2),
            reg("write", 5, 6, value="b", version=2),
        ]))

    def test_value_read_back_after_overwrite(self):
        # a then b acknowledged in order; a read after both sees a again.
        self.assertFalse(regs_ok([
            reg("write", 0, 1, value="a", version=1),
            reg("write", 2, 3, value="b", version=2),
            reg("read", 4, 5, value="a", version=1),
        ]))

    def test_read_order_inversion_between_clients(self):
        # Two reads of different clients, the second starting after the first ended, see
        # the new value then the old one.
        self.assertFalse(regs_ok([
            reg("write", 0, 10, value="a", version=1),
            reg("read", 1, 2, value="a", version=1),
            reg("read", 3, 4, value="init", version=0),
        ]))

    def test_registers_are_independent(self):
        self.assertTrue(regs_ok([
            reg("write", 0, 1, key="x", value="a", version=1),
            reg("read", 2, 3, key="y", value="init", version=0),
        ]))

    def test_many_concurrent_ops_decided(self):
        ops = []
        t = 0.0
        version = 0
        for i in range(300):
            ops.append(reg("write", t, t + 5.0, value="v%d" % i, version=version + 1))
            version += 1
            t += 0.01
        ok, detail = checker.linearizable(ops, ("init", 0))
        self.assertTrue(ok, detail)


def simulated(n_ops, procs, seed, unknown_every=0):
    """A linearizable history by construction: each operation takes effect at a point drawn
    inside its interval, in that order, against a true register."""
    import random
    rng = random.Random(seed)
    free_at = [0.0] * procs
    value, version = "init", 0
    ops = []
    t = 0.0
    for i in range(n_ops):
        p = min(range(procs), key=lambda q: free_at[q])
        t = max(t, free_at[p]) + rng.random() * 0.01
        invoke = t - rng.random() * 0.05
        invoke = max(invoke, free_at[p])
        complete = t + rng.random() * 0.05
        free_at[p] = complete
        r = rng.random()
        if r < 0.4:
            ops.append(reg("read", invoke, complete, value=value, version=version))
        elif r < 0.6:
            value, version = "v%d" % i, version + 1
            ops.append(reg("write", invoke, complete, value=value, version=version))
        else:
            expect = version if rng.random() < 0.5 else version - 1
            if expect == version:
                value, version = "v%d" % i, version + 1
                ops.append(reg("cas", invoke, complete, value=value, expect=expect))
            else:
                ops.append(reg("cas", invoke, complete, "fail", value="v%d" % i, expect=expect))
        if unknown_every and i % unknown_every == 0 and ops[-1]["f"] != "read" \
                and ops[-1]["type"] == "ok":
            ops[-1]["type"] = "info"
            ops[-1]["complete"] = None
            ops[-1]["out"] = {}
    return ops


class Simulated(unittest.TestCase):
    def test_long_linearizable_histories_pass(self):
        for seed in range(5):
            ops = simulated(20000, 6, seed, unknown_every=97)
            ok, detail = checker.linearizable(ops, ("init", 0))
            self.assertTrue(ok, (seed, detail))

    def test_one_changed_read_fails(self):
        import random
        for seed in range(5):
            ops = simulated(5000, 6, seed)
            rng = random.Random(seed)
            reads = [op for op in ops[2500:] if op["f"] == "read" and op["out"]["version"] > 3]
            victim = rng.choice(reads)
            # The read returns a value that was overwritten long before.
            victim["out"] = {"value": "init", "version": 0}
            ok, _ = checker.linearizable(ops, ("init", 0))
            self.assertFalse(ok, seed)

    def test_one_acknowledged_write_dropped_fails(self):
        for seed in range(5):
            ops = simulated(5000, 6, seed)
            writes = [i for i, op in enumerate(ops[2000:3000], 2000)
                      if op["f"] == "write" and op["type"] == "ok"]
            del ops[writes[len(writes) // 2]]
            ok, _ = checker.linearizable(ops, ("init", 0))
            self.assertFalse(ok, seed)


def qcreate(value, invoke, complete, typ="ok", seq=None, key="q"):
    out = {"path": "/q/item-%010d" % seq} if seq is not None else {}
    return {"kind": "queue", "key": key, "f": "create", "invoke": invoke, "complete": complete,
            "type": typ, "arg": {"value": value}, "out": out}


def qfinal(children, key="q"):
    return {"kind": "queue", "key": key, "f": "final", "invoke": 100, "complete": 101,
            "type": "ok", "out": {"children": {"item-%010d" % s: v for s, v in children.items()}}}


def queue_anomalies(history):
    return [a["what"] for a in checker.check_queues(history)[0]]


class Queues(unittest.TestCase):
    def test_legal(self):
        self.assertEqual(queue_anomalies([
            qcreate("a", 0, 1, seq=0), qcreate("b", 2, 3, seq=1),
            qcreate("c", 4, None, "info"), qcreate("d", 5, None, "info"),
            qfinal({0: "a", 1: "b", 2: "d"}),
        ]), [])

    def test_lost_acknowledged_create(self):
        self.assertEqual(queue_anomalies([
            qcreate("a", 0, 1, seq=0), qcreate("b", 2, 3, seq=1), qfinal({0: "a"}),
        ]), ["acknowledged create lost"])

    def test_duplicate(self):
        self.assertEqual(queue_anomalies([
            qcreate("a", 0, 1, seq=0), qcreate("b", 2, None, "info"),
            qfinal({0: "a", 1: "b", 2: "b"}),
        ]), ["duplicate create"])

    def test_unknown_child(self):
        self.assertEqual(queue_anomalies([
            qcreate("a", 0, 1, seq=0), qfinal({0: "a", 1: "zzz"}),
        ]), ["child created by no operation"])

    def test_sequence_against_real_time(self):
        self.assertEqual(queue_anomalies([
            qcreate("a", 0, 1, seq=5), qcreate("b", 2, 3, seq=4), qfinal({5: "a", 4: "b"}),
        ]), ["sequence number against real-time order"])

    def test_concurrent_creates_any_order(self):
        self.assertEqual(queue_anomalies([
            qcreate("a", 0, 3, seq=5), qcreate("b", 1, 2, seq=4), qfinal({5: "a", 4: "b"}),
        ]), [])

    def test_two_acks_one_path(self):
        self.assertIn("two acknowledged creates got one path", queue_anomalies([
            qcreate("a", 0, 1, seq=0), qcreate("b", 2, 3, seq=0), qfinal({0: "b"}),
        ]))


def hold(acquired, released, proc):
    return {"kind": "lock", "key": "l", "f": "hold", "proc": proc, "acquired": acquired,
            "released": released, "invoke": acquired, "complete": released, "type": "ok"}


class Locks(unittest.TestCase):
    def test_disjoint(self):
        self.assertEqual(checker.check_locks([hold(0, 1, "a"), hold(1.5, 2, "b"),
                                              hold(3, 4, "a")])[0], [])

    def test_overlap(self):
        anomalies = checker.check_locks([hold(0, 10, "a"), hold(2, 3, "b"), hold(11, 12, "b")])[0]
        self.assertEqual([a["what"] for a in anomalies], ["two holders at once"])

    def test_overlap_with_an_earlier_long_hold(self):
        anomalies = checker.check_locks([hold(0, 10, "a"), hold(1, 2, "b"), hold(5, 6, "c")])[0]
        self.assertEqual(len(anomalies), 2)


class Whole(unittest.TestCase):
    def test_check_sums_up(self):
        anomalies, counts = checker.check([
            reg("write", 0, 1, value="a", version=1),
            reg("read", 2, 3, value="init", version=0),
            qcreate("a", 0, 1, seq=0), qfinal({}),
            hold(0, 10, "a"), hold(2, 3, "b"),
        ])
        self.assertEqual(sorted(a["kind"] for a in anomalies), ["lock", "queue", "register"])
        self.assertEqual(counts["register"], {"r": 2})


if __name__ == "__main__":
    unittest.main()
