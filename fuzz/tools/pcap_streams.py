#!/usr/bin/env python3
"""Writes the TCP byte streams of a loopback capture as fuzz corpus files.

usage: pcap_streams.py CAPTURE.pcap OUT_DIR --ports P[,P...] [--direction to|from|both]
                       [--max-bytes N] [--prefix NAME]

One file per TCP connection and direction: the payload bytes in sequence order
(retransmissions dropped), cut at --max-bytes. `to` keeps the bytes sent to one of
--ports (what a server reads from its clients or peers), `from` the bytes sent from
them, `both` each direction as its own file. Reads classic pcap files as tcpdump
writes them (Ethernet or Linux cooked link type, IPv4 and IPv6); nothing else needed.
"""
import argparse
import hashlib
import os
import struct
import sys


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        sys.exit(f"{path}: not a classic pcap file")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    at = 24
    while at + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[at:at + 16])
        at += 16
        yield linktype, data[at:at + incl]
        at += incl


def tcp_segment(linktype, frame):
    """(src, sport, dst, dport, seq, payload, syn) or None."""
    if linktype == 1:  # Ethernet
        ethertype = struct.unpack(">H", frame[12:14])[0]
        ip = frame[14:]
    elif linktype == 113:  # Linux cooked v1
        ethertype = struct.unpack(">H", frame[14:16])[0]
        ip = frame[16:]
    elif linktype == 276:  # Linux cooked v2
        ethertype = struct.unpack(">H", frame[0:2])[0]
        ip = frame[20:]
    else:
        return None
    if ethertype == 0x0800:
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6:
            return None
        total = struct.unpack(">H", ip[2:4])[0]
        src, dst = ip[12:16], ip[16:20]
        tcp = ip[ihl:total]
    elif ethertype == 0x86DD:
        if ip[6] != 6:
            return None
        plen = struct.unpack(">H", ip[4:6])[0]
        src, dst = ip[8:24], ip[24:40]
        tcp = ip[40:40 + plen]
    else:
        return None
    sport, dport, seq = struct.unpack(">HHI", tcp[0:8])
    offset = (tcp[12] >> 4) * 4
    syn = bool(tcp[13] & 0x02)
    return src, sport, dst, dport, seq, tcp[offset:], syn


def streams(path):
    flows = {}
    for linktype, frame in packets(path):
        seg = tcp_segment(linktype, frame)
        if seg is None:
            continue
        src, sport, dst, dport, seq, payload, syn = seg
        key = (src, sport, dst, dport)
        flow = flows.setdefault(key, {"isn": None, "chunks": {}})
        if syn:
            flow["isn"] = (seq + 1) & 0xFFFFFFFF
        if payload:
            flow["chunks"].setdefault(seq, payload)
    for key, flow in flows.items():
        if not flow["chunks"]:
            continue
        base = flow["isn"] if flow["isn"] is not None else min(flow["chunks"])
        out = bytearray()
        for seq in sorted(flow["chunks"], key=lambda s: (s - base) & 0xFFFFFFFF):
            rel = (seq - base) & 0xFFFFFFFF
            payload = flow["chunks"][seq]
            if rel + len(payload) <= len(out):
                continue  # retransmitted
            out += payload[len(out) - rel:] if rel < len(out) else payload
        yield key, bytes(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("out_dir")
    ap.add_argument("--ports", required=True)
    ap.add_argument("--direction", choices=["to", "from", "both"], default="to")
    ap.add_argument("--max-bytes", type=int, default=16384)
    ap.add_argument("--prefix", default="stream")
    args = ap.parse_args()
    ports = {int(p) for p in args.ports.split(",")}
    os.makedirs(args.out_dir, exist_ok=True)
    written = 0
    for (src, sport, dst, dport), data in streams(args.capture):
        to = dport in ports
        frm = sport in ports
        if not ((args.direction in ("to", "both") and to) or (args.direction in ("from", "both") and frm)):
            continue
        data = data[: args.max_bytes]
        # Content-addressed names: the same stream captured twice is one file.
        name = f"{args.prefix}-{'to' if to else 'from'}-{hashlib.sha1(data).hexdigest()[:16]}"
        with open(os.path.join(args.out_dir, name), "wb") as f:
            f.write(data)
        written += 1
    print(f"{written} streams written to {args.out_dir}")


if __name__ == "__main__":
    main()
