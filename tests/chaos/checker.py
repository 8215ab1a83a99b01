"""Checks a history recorded by tests/chaos/chaos.py (JSON lines, one operation a line).

Every line is one operation:

    {"proc": "reg-3", "kind": "register", "key": "r1", "f": "cas",
     "arg": {"value": "reg-3-17", "expect": 4}, "invoke": 12.01, "complete": 12.03,
     "type": "ok" | "fail" | "info", "out": {...}}

`type` is `ok` (acknowledged), `fail` (the server answered with an error: the operation did
not take effect) or `info` (no answer: a timeout or a lost connection; it may have taken
effect at any time after `invoke`, or never). Times are seconds on one monotonic clock.

What is checked, per kind:

registers  The operations on each register (znode) must be linearizable against a register
           holding (value, version), where setData with version -1 always applies and bumps
           the version, setData with an expected version applies only when it matches (else
           the server answers BadVersion, a `fail` that is still an observation: the version
           differed at that moment), and a read (sync + getData) returns (value, version).
           Search: Wing & Gong's algorithm with Lowe's memo of (linearized set, state); an
           `info` write may be linearized anywhere after its invoke, or not at all; an `info`
           read or a failed read observes nothing and is dropped.
queues     Sequential creates under one parent: every acknowledged create is present at the
           end with its data (`final` lines), no data (each create's is unique) appears under
           two paths, no two acknowledged creates got the same path, every child at the end
           was created by some operation of the history, and real-time order holds: if create
           A was acknowledged before create B was invoked, A's sequence number is smaller.
locks      An ephemeral znode as a lock: a client holds it from the acknowledgement of its
           create until it invokes the delete or its connection leaves CONNECTED, whichever
           comes first (`hold` lines carry both ends). No two holds may overlap in time.

`final` lines (kind "queue", f "final") give the children of a queue read at the end after
the cluster healed: {"out": {"children": {"item-0000000003": "data", ...}}}.
"""

import json
import sys
from collections import defaultdict

INF = float("inf")


# ------------------------------------------------------------------ registers

def register_step(state, op):
    """The state after `op` applied to `state`, or None if `op` cannot happen there."""
    value, version = state
    f, typ, arg, out = op["f"], op["type"], op.get("arg") or {}, op.get("out") or {}
    if f == "read":
        if (out.get("value"), out.get("version")) == (value, version):
            return state
        return None
    if f == "write":
        if typ == "ok" and out.get("version") != version + 1:
            return None
        return (arg["value"], version + 1)
    if f == "cas":
        if typ == "fail":
            return state if version != arg["expect"] else None
        if version != arg["expect"]:
            return None
        if typ == "ok" and out.get("version") not in (None, version + 1):
            return None
        return (arg["value"], version + 1)
    raise ValueError("unknown register operation %r" % f)


class _Entry:
    __slots__ = ("op", "bit", "unknown", "is_call", "match", "prev", "next")

    def __init__(self, op, bit, unknown, is_call):
        self.op, self.bit, self.unknown, self.is_call = op, bit, unknown, is_call
        self.match = None
        self.prev = self.next = None


def _cache_key(lin_f, lin_u, state):
    # The set of finite operations linearized, as (the lowest one not yet linearized, the
    # bits from there on): every finite operation below that one is linearized, so the pair
    # names the set exactly while staying as short as the window of concurrent operations
    # (a plain bitset would grow with the history, and the memo with its square).
    base = (~lin_f & (lin_f + 1)).bit_length() - 1
    return (base, lin_f >> base, lin_u, state)


def register_unknown_useful(ops):
    """A pruning rule for indeterminate register writes, sound for this model: versions go
    up by exactly one per applied write, so if an acknowledged write (or compare-and-set)
    answered version v+1, the version can become v+1 only through that very write; applying
    an indeterminate one at version v would make it impossible for ever. So indeterminate
    operations are tried only where the next version is claimed by no acknowledged one."""
    claimed = set()
    for op in ops:
        if op["type"] == "ok" and op["f"] in ("write", "cas"):
            v = (op.get("out") or {}).get("version")
            if v is None and op["f"] == "cas":
                v = op["arg"]["expect"] + 1
            if v is not None:
                claimed.add(v)
    return lambda state: state[1] + 1 not in claimed


def linearizable(ops, init, step=register_step, max_steps=5_000_000, unknown_useful=None):
    """(True, None) if `ops` (each with invoke, complete, type) can be linearized from `init`
    under `step`; (False, detail) otherwise; (None, detail) if the search gave up.
    `unknown_useful(state)`: False where no indeterminate operation can usefully apply
    (defaults to the register rule above when `step` is the register model)."""
    if unknown_useful is None:
        unknown_useful = (register_unknown_useful(ops) if step is register_step
                          else (lambda _state: True))
    kept = []
    for op in ops:
        if op["type"] == "info" and op["f"] == "read":
            continue
        if op["type"] == "fail" and op["f"] != "cas":
            continue
        kept.append(op)
    events = []
    n_f = n_u = 0
    for op in kept:
        if op["type"] == "info":
            # Indeterminate: a call with no return; it may be linearized or left out.
            events.append((op["invoke"], 0, _Entry(op, 1 << n_u, True, True)))
            n_u += 1
        else:
            call = _Entry(op, 1 << n_f, False, True)
            ret = _Entry(op, 1 << n_f, False, False)
            call.match = ret
            n_f += 1
            events.append((op["invoke"], 0, call))
            events.append((op["complete"], 1, ret))
    # Calls before returns at equal times: equal stamps count as concurrent.
    events.sort(key=lambda e: (e[0], e[1]))
    head = _Entry(None, 0, False, False)
    prev = head
    for _, _, e in events:
        prev.next = e
        e.prev = prev
        prev = e
    remaining = n_f

    def lift(e):
        e.prev.next = e.next
        if e.next:
            e.next.prev = e.prev
        if e.match:
            m = e.match
            m.prev.next = m.next
            if m.next:
                m.next.prev = m.prev

    def unlift(e):
        if e.match:
            m = e.match
            m.prev.next = m
            if m.next:
                m.next.prev = m
        e.prev.next = e
        if e.next:
            e.next.prev = e

    # The candidates at each point are the calls before the first pending return. They are
    # tried finite operations first (phase 0), then indeterminate ones (phase 1): an
    # indeterminate operation is rarely needed, and its call stays a candidate for the rest
    # of the history once passed over, so trying it first would explore it at every step.
    state = init
    lin_f = lin_u = 0
    cache = set()
    stack = []
    entry = head.next
    phase = 0
    steps = 0
    best = 0
    best_entry = None
    while remaining > 0:
        if entry is None or not entry.is_call:
            if phase == 0:
                phase = 1
                entry = head.next
                continue
            if entry is not None and (best_entry is None or len(stack) >= best):
                best_entry = entry.op
            if not stack:
                return False, {"stuck_at": best_entry, "linearized_max": best}
            steps += 1
            if steps > max_steps:
                return None, "search gave up after %d backtracks" % max_steps
            top, state = stack.pop()
            if top.unknown:
                lin_u &= ~top.bit
            else:
                lin_f &= ~top.bit
                remaining += 1
            unlift(top)
            entry = top.next
            phase = 1 if top.unknown else 0
            continue
        if entry.unknown != (phase == 1):
            entry = entry.next
            continue
        if phase == 1 and not unknown_useful(state):
            # No indeterminate call can apply here: straight to the next return.
            while entry is not None and entry.is_call:
                entry = entry.next
            continue
        new = step(state, entry.op)
        if new is not None:
            if entry.unknown:
                f2, u2 = lin_f, lin_u | entry.bit
            else:
                f2, u2 = lin_f | entry.bit, lin_u
            key = _cache_key(f2, u2, new)
            if key not in cache:
                cache.add(key)
                stack.append((entry, state))
                state = new
                lin_f, lin_u = f2, u2
                lift(entry)
                if not entry.unknown:
                    remaining -= 1
                if len(stack) > best:
                    best = len(stack)
                entry = head.next
                phase = 0
                continue
        entry = entry.next
    return True, None


def check_registers(history, initial_value):
    anomalies = []
    by_key = defaultdict(list)
    for op in history:
        if op.get("kind") == "register":
            by_key[op["key"]].append(op)
    counts = {}
    for key, ops in sorted(by_key.items()):
        ok, detail = linearizable(ops, (initial_value, 0))
        counts[key] = len(ops)
        if ok is not True:
            anomalies.append({"kind": "register", "key": key,
                              "what": "not linearizable" if ok is False else "undecided",
                              "detail": detail})
    return anomalies, counts


# ------------------------------------------------------------------ queues

def seq_of(path):
    return int(path.rsplit("-", 1)[1][-10:])


def check_queues(history):
    anomalies = []
    creates = defaultdict(list)
    finals = {}
    for op in history:
        if op.get("kind") != "queue":
            continue
        if op["f"] == "create":
            creates[op["key"]].append(op)
        elif op["f"] == "final":
            finals[op["key"]] = op["out"]["children"]
    for key, ops in sorted(creates.items()):
        if key not in finals:
            anomalies.append({"kind": "queue", "key": key, "what": "no final read"})
            continue
        children = finals[key]
        by_data = defaultdict(list)
        for name, data in children.items():
            by_data[data].append(name)
        known = {op["arg"]["value"] for op in ops}
        acked = [op for op in ops if op["type"] == "ok"]
        paths = defaultdict(list)
        for op in acked:
            name = op["out"]["path"].rsplit("/", 1)[1]
            paths[name].append(op["arg"]["value"])
            if children.get(name) != op["arg"]["value"]:
                anomalies.append({"kind": "queue", "key": key, "what": "acknowledged create lost",
                                  "op": op, "found": children.get(name)})
        for name, values in paths.items():
            if len(values) > 1:
                anomalies.append({"kind": "queue", "key": key,
                                  "what": "two acknowledged creates got one path",
                                  "path": name, "values": values})
        for data, names in by_data.items():
            if len(names) > 1:
                anomalies.append({"kind": "queue", "key": key, "what": "duplicate create",
                                  "value": data, "paths": sorted(names)})
            if data not in known:
                anomalies.append({"kind": "queue", "key": key,
                                  "what": "child created by no operation", "value": data,
                                  "paths": sorted(names)})
        # Real-time order of sequence numbers: sort by completion, sweep by invoke.
        by_complete = sorted(acked, key=lambda o: o["complete"])
        by_invoke = sorted(acked, key=lambda o: o["invoke"])
        best = None  # the acknowledged create with the highest sequence completed so far
        i = 0
        for op in by_invoke:
            while i < len(by_complete) and by_complete[i]["complete"] < op["invoke"]:
                c = by_complete[i]
                if best is None or seq_of(c["out"]["path"]) > seq_of(best["out"]["path"]):
                    best = c
                i += 1
            if best is not None and seq_of(op["out"]["path"]) <= seq_of(best["out"]["path"]):
                anomalies.append({"kind": "queue", "key": key,
                                  "what": "sequence number against real-time order",
                                  "earlier": best, "later": op})
    return anomalies, {k: len(v) for k, v in creates.items()}


# ------------------------------------------------------------------ locks

def check_locks(history):
    anomalies = []
    holds = defaultdict(list)
    for op in history:
        if op.get("kind") == "lock" and op["f"] == "hold":
            holds[op["key"]].append(op)
    for key, hs in sorted(holds.items()):
        hs.sort(key=lambda h: h["acquired"])
        latest = None  # the hold ending latest among those started so far
        for h in hs:
            if h["released"] < h["acquired"]:
                anomalies.append({"kind": "lock", "key": key, "what": "hold ends before it starts",
                                  "hold": h})
            if latest is not None and h["acquired"] < latest["released"]:
                anomalies.append({"kind": "lock", "key": key, "what": "two holders at once",
                                  "first": latest, "second": h})
            if latest is None or h["released"] > latest["released"]:
                latest = h
    return anomalies, {k: len(v) for k, v in holds.items()}


# ------------------------------------------------------------------ all

def check(history, initial_value="init"):
    """(anomalies, counts) for a whole history."""
    reg_anoms, reg_counts = check_registers(history, initial_value)
    q_anoms, q_counts = check_queues(history)
    l_anoms, l_counts = check_locks(history)
    return reg_anoms + q_anoms + l_anoms, {"register": reg_counts, "queue": q_counts,
                                           "lock": l_counts}


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv):
    if len(argv) != 2:
        print("usage: checker.py HISTORY.jsonl", file=sys.stderr)
        return 2
    history = load(argv[1])
    anomalies, counts = check(history)
    print(json.dumps(counts))
    for a in anomalies:
        print("ANOMALY", json.dumps(a))
    print("%d anomalies" % len(anomalies))
    return 1 if anomalies else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
