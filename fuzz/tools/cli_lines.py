#!/usr/bin/env python3
"""Writes the zkCli command lines the test suites use as seed files (one line a file).

cli_lines.py REPO OUT_DIR
"""
import hashlib
import os
import re
import sys

root, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
lines = set()
sources = [os.path.join(root, "tests", "zkcli.rs"), os.path.join(root, "tests", "compat", "zkcli_golden.py")]
golden = os.path.join(root, "tests", "compat", "golden")
for dirpath, _, files in os.walk(golden):
    sources += [os.path.join(dirpath, f) for f in files]
commands = ("addWatch addauth close config connect create delete deleteall delquota get getAcl "
            "getAllChildrenNumber getEphemerals history listquota ls printwatches quit reconfig "
            "redo removewatches set setAcl setquota stat sync version whoami").split()
pattern = re.compile(r'"((?:%s)(?: [^"\\]*)?)"' % "|".join(commands))
for src in sources:
    try:
        text = open(src, encoding="utf-8", errors="replace").read()
    except OSError:
        continue
    for m in pattern.finditer(text):
        lines.add(m.group(1))
    for line in text.splitlines():
        if line.split(" ", 1)[0] in commands:
            lines.add(line.strip())
lines.update(["-server 127.0.0.1:2181/chroot -timeout 0x10 -r ls -s /",
              "create -s -e -t 100 /a 'quoted data' digest:u:p:cdrwa,ip:10.0.0.0/8:r",
              "setquota -n 10 -B 2048 /q", "reconfig -members server.1=h:1:2;3 -v 0x10",
              "  \"unclosed", "ls / watch"])
for line in sorted(lines)[:400]:
    data = line.encode()
    with open(os.path.join(out, "line-" + hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)
print(f"{min(len(lines), 400)} lines written to {out}")
