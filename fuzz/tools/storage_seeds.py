#!/usr/bin/env python3
"""Turns the log segments and snapshots of real data directories into seed files.

storage_seeds.py CORPUS_DIR VERSION2_DIR...

log_recovery seeds are a mode byte (even: replay the log into the tree, odd: keep the
records for ZAB, as a replicated server does) then one or more segment files back to
back, each cut after its last non-zero byte (the rest is preallocation, which recovery
reads as the clean end). snapshot_load seeds are snapshot files as they are.
"""
import hashlib
import os
import sys

corpus = sys.argv[1]
logs, snaps = [], []
for d in sys.argv[2:]:
    if not os.path.isdir(d):
        continue
    for name in sorted(os.listdir(d)):
        data = open(os.path.join(d, name), "rb").read()
        if name.startswith("log.") and not name.endswith(".tmp"):
            logs.append(data.rstrip(b"\0"))
        elif name.startswith("snapshot.") and not name.endswith(".tmp"):
            snaps.append(data)


def write(target, data, limit):
    if len(data) > limit:
        return False
    out = os.path.join(corpus, target)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "real-" + hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)
    return True


n = 0
for i, seg in enumerate(logs):
    # The first segments whole (up to 8 KiB), the others' beginnings: enough of every
    # record type while the corpus stays small.
    n += write("log_recovery", bytes([i % 2]) + seg[: 8192 if i < 4 else 2048], 9000)
    if i + 1 < len(logs) and i < 4:
        n += write("log_recovery", bytes([0]) + seg[:2048] + logs[i + 1][:2048], 9000)
for snap in snaps:
    n += write("snapshot_load", snap, 16384)
print(f"{n} storage seeds written ({len(logs)} segments, {len(snaps)} snapshots read)")
