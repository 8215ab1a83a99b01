#!/usr/bin/env python3
"""Writes one client_frames seed per op code the captured clients do not send.

client_seeds.py OUT_DIR

Each file is a connection as a client would open it: the ConnectRequest, then the request
(jute encoding of zookeeper.jute), then a ping. Captured traffic covers the other ops.
"""
import os
import struct
import sys


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def buf(b):
    return i32(-1) if b is None else i32(len(b)) + b


def s(text):
    return buf(None if text is None else text.encode())


def strs(items):
    return i32(len(items)) + b"".join(s(x) for x in items)


def frame(body):
    return i32(len(body)) + body


def request(xid, op, body=b""):
    return frame(i32(xid) + i32(op) + body)


OPEN_ACL = i32(1) + i32(31) + s("world") + s("anyone")
connect = frame(i32(0) + i64(0) + i32(30000) + i64(0) + buf(b"\0" * 16) + b"\0")
ping = request(-2, 11)
bodies = {
    "check": (13, s("/") + i32(-1)),
    "create2": (15, s("/c2") + buf(b"data") + OPEN_ACL + i32(0)),
    "reconfig": (16, s("server.5=127.0.0.1:2888:3888") + s(None) + s(None) + i64(-1)),
    "checkWatches": (17, s("/") + i32(1)),
    "removeWatches": (18, s("/") + i32(3)),
    "deleteContainer": (20, s("/c")),
    "multiRead": (22, i32(8) + b"\0" + i32(-1) + s("/")
                  + i32(4) + b"\0" + i32(-1) + s("/zookeeper")
                  + i32(-1) + b"\1" + i32(-1)),
    "setWatches": (101, i64(0) + strs(["/a"]) + strs(["/b"]) + strs(["/"])),
    "sasl": (102, buf(b"token")),
    "getEphemerals": (103, s("/")),
    "getAllChildrenNumber": (104, s("/")),
    "setWatches2": (105, i64(0) + strs(["/a"]) + strs([]) + strs(["/"]) + strs(["/p"]) + strs(["/r"])),
    "multi-check-create2": (14, i32(13) + b"\0" + i32(-1) + s("/") + i32(-1)
                            + i32(15) + b"\0" + i32(-1) + s("/m") + buf(None) + OPEN_ACL + i32(2)
                            + i32(-1) + b"\1" + i32(-1)),
}
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, (op, body) in bodies.items():
    with open(os.path.join(out, "synthetic-" + name), "wb") as f:
        f.write(connect + request(1, op, body) + ping)
print(f"{len(bodies)} synthetic seeds written to {out}")
