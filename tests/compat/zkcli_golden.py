#!/usr/bin/env python3
"""Golden-output suite for zkCli-compatible command-line clients.

Drives a zkCli-style client (`CLI -server HOSTS cmd args`, one command per
process, or a few commands on standard input for the cases that need one
session, such as addauth) through a fixed list of cases covering every zkCli
command, normalises what varies from run to run, and compares stdout, stderr
and the exit code of each case with the files recorded from Apache ZooKeeper's
own Java zkCli.sh against Apache ZooKeeper 3.8 in golden/zkcli_java/.

  zkcli_golden.py check  --cli "zkCli.sh"          compare (default)
  zkcli_golden.py record --cli "zkCli.sh"          rewrite the golden files
  zkcli_golden.py check  --cli "corral cli"        the same files, Corral's CLI
  zkcli_golden.py check  --skip config ...         leave cases out (by name)

The server is taken from ZK_HOSTS. The cases work below /zkcli (and its quota
node), which they delete first, so a fresh server is not required; the
expected outputs assume /zkcli is not touched by anyone else meanwhile.

Normalisation (see normalise()):
  - logging noise is dropped: `SLF4J: ...` lines (no slf4j binding on the
    Debian classpath), `log4j:...` lines and timestamped log4j records;
  - the watcher output the Java CLI prints from its event thread is a race
    with the command output, and can even split one of its lines: every
    "WATCHER::" line and every "WatchedEvent state:SyncConnected type:None
    path:null" line (same for Closed/Disconnected/Expired) is dropped and the
    lines before and after it joined again (see drop_state_watcher_blocks);
    other events stay;
  - `JLine support is enabled|disabled` is dropped (depends on the classpath);
  - the -server string becomes <hosts>; the CLI version becomes <version>;
  - zxids in stat output become <zxid-1>, <zxid-2>, ... numbered by first
    appearance within one case, so equal zxids stay equal; dates other than
    the epoch become <date>; non-zero ephemeralOwner becomes <session>;
  - cases marked sorted sort the items of printed lists `[a, b]`, where the
    server's order is unspecified (getEphemerals).
"""

import argparse
import difflib
import os
import re
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN_DIR = os.path.join(HERE, "golden", "zkcli_java")
DEFAULT_JAVA_CLI = os.environ.get("ZKCLI_JAVA", "/usr/share/zookeeper/bin/zkCli.sh")
CASE_TIMEOUT_S = 60

# digest:u:p, i.e. "u:" + base64(sha1("u:p")).
DIGEST_UP = "u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ="


class Case:
    def __init__(self, name, args=None, script=None, sort_lists=False):
        assert (args is None) != (script is None)
        self.name = name
        self.args = args
        self.script = script
        self.sort_lists = sort_lists

    def describe(self):
        if self.args is not None:
            return "args: " + " ".join(shlex.quote(a) for a in self.args) + "\n"
        return "stdin:\n" + self.script


def one(name, line, **kw):
    return Case(name, args=shlex.split(line), **kw)


def script(name, lines, **kw):
    return Case(name, script="".join(l + "\n" for l in lines), **kw)


# The cases run in this order; later ones depend on the state left by earlier
# ones. Ephemerals made in one-shot mode outlive the CLI process until their
# session expires, so they live under /zkcli/eph, which no case lists.
CASES = [
    one("version", "version"),
    one("create-root", "create /zkcli"),
    one("create-with-data", "create /zkcli/a hello"),
    one("create-existing", "create /zkcli/a x"),
    one("create-no-parent", "create /zkcli/x/y"),
    one("create-relative-path", "create zkcli/a"),
    one("create-usage", "create"),
    one("get", "get /zkcli/a"),
    one("get-stat", "get -s /zkcli/a"),
    one("get-watch", "get -w /zkcli/a"),
    one("get-missing", "get /zkcli/missing"),
    one("get-usage", "get"),
    one("set", "set /zkcli/a world"),
    one("set-stat", "set -s /zkcli/a again"),
    one("set-bad-version", "set -v 0 /zkcli/a x"),
    one("set-good-version", "set -v 2 /zkcli/a v3"),
    one("set-missing", "set /zkcli/missing x"),
    one("set-usage", "set /zkcli/a"),
    one("stat", "stat /zkcli/a"),
    one("stat-watch", "stat -w /zkcli/a"),
    one("stat-missing", "stat /zkcli/missing"),
    one("create-tree", "create /zkcli/t"),
    one("create-sequential", "create -s /zkcli/t/seq- d"),
    one("create-sequential-again", "create -s /zkcli/t/seq-"),
    one("create-container", "create -c /zkcli/t/cont"),
    one("create-container-ephemeral", "create -c -e /zkcli/t/ce"),
    one("create-ttl", "create -t 600000 /zkcli/t/ttl"),
    one("create-ttl-sequential", "create -t 600000 -s /zkcli/t/ttls-"),
    one("create-ttl-zero", "create -t 0 /zkcli/t/t0"),
    one("create-ttl-ephemeral", "create -t 1000 -e /zkcli/t/te"),
    one("create-child", "create /zkcli/t/b"),
    one("create-grandchild", "create /zkcli/t/b/c data"),
    one("create-ephemeral-dir", "create /zkcli/eph"),
    one("create-ephemeral", "create -e /zkcli/eph/e"),
    one("create-ephemeral-sequential", "create -e -s /zkcli/eph/es-"),
    one("create-under-ephemeral", "create /zkcli/eph/e/child"),
    one("ls", "ls /zkcli/t"),
    one("ls-stat", "ls -s /zkcli/t"),
    one("ls-recursive", "ls -R /zkcli/t"),
    one("ls-watch", "ls -w /zkcli/t/b"),
    one("ls-missing", "ls /zkcli/missing"),
    one("ls-relative-path", "ls zkcli"),
    one("stat-container", "stat /zkcli/t/cont"),
    one("stat-ttl", "stat /zkcli/t/ttl"),
    one("get-all-children-number", "getAllChildrenNumber /zkcli/t"),
    one("get-all-children-number-missing", "getAllChildrenNumber /zkcli/missing"),
    one("delete-not-empty", "delete /zkcli/t/b"),
    one("delete-bad-version", "delete -v 5 /zkcli/a"),
    one("delete-missing", "delete /zkcli/missing"),
    one("delete-good-version", "delete -v 0 /zkcli/t/b/c"),
    one("deleteall", "deleteall /zkcli/t/b"),
    one("create-for-deleteall-batch", "create /zkcli/t/b2"),
    one("deleteall-batch", "deleteall /zkcli/t/b2 -b 2"),
    one("ls-after-deletes", "ls /zkcli/t"),
    one("delete-special-zookeeper", "delete /zookeeper"),
    one("delete-special-root", "delete /"),
    one("ls-zookeeper", "ls /zookeeper"),
    one("stat-zookeeper", "stat /zookeeper"),
    one("get-config-node", "get -s /zookeeper/config"),
    one("set-config-node", "set /zookeeper/config x"),
    one("create-under-config-node", "create /zookeeper/config/x"),
    one("getacl", "getAcl /zkcli/a"),
    one("getacl-config-node", "getAcl /zookeeper/config"),
    one("getacl-missing", "getAcl /zkcli/missing"),
    one("setacl-read-only", "setAcl /zkcli/a world:anyone:r"),
    one("getacl-stat", "getAcl -s /zkcli/a"),
    one("set-no-auth", "set /zkcli/a z"),
    one("setacl-no-auth", "setAcl /zkcli/a world:anyone:cdrwa"),
    one("create-acl-node", "create /zkcli/acl"),
    one("setacl-invalid", "setAcl /zkcli/acl foo:bar:cdrwa"),
    one("setacl-bad-version", "setAcl -v 5 /zkcli/acl world:anyone:cdrwa"),
    one("setacl-stat", "setAcl -s /zkcli/acl world:anyone:cdrw"),
    one("create-invalid-acl", "create /zkcli/bad x foo:bar:cdrwa"),
    one("create-digest-acl", "create /zkcli/d secret digest:%s:cdrwa" % DIGEST_UP),
    one("get-digest-no-auth", "get /zkcli/d"),
    script(
        "addauth-session",
        [
            "addauth digest u:p",
            "get /zkcli/d",
            "getAcl /zkcli/d",
            "whoami",
            "create /zkcli/au y auth::cdrwa",
            "getAcl /zkcli/au",
        ],
    ),
    one("create-ip-acl", "create /zkcli/ip x ip:127.0.0.1:cdrwa"),
    one("get-ip-acl", "get /zkcli/ip"),
    one("create-recursive-acl-tree", "create /zkcli/r"),
    one("create-recursive-acl-child", "create /zkcli/r/s"),
    one("setacl-recursive", "setAcl -R /zkcli/r world:anyone:cdr"),
    one("getacl-recursive-child", "getAcl -s /zkcli/r/s"),
    one("whoami", "whoami"),
    one("sync", "sync /zkcli"),
    one("sync-missing", "sync /zkcli/missing"),
    one("sync-relative-path", "sync zkcli"),
    one("config", "config"),
    one("config-connection-string", "config -c"),
    one("config-stat", "config -s"),
    one("reconfig-disabled", "reconfig -remove 3"),
    one("create-quota-node", "create /zkcli/q"),
    one("create-quota-child", "create /zkcli/q/sub"),
    one("setquota-count", "setquota -n 10 /zkcli/q"),
    one("listquota", "listquota /zkcli/q"),
    one("setquota-bytes", "setquota -b 100 /zkcli/q"),
    one("setquota-count-hard", "setquota -N 5 /zkcli/q"),
    one("setquota-bytes-hard", "setquota -B 1000 /zkcli/q"),
    one("listquota-all-set", "listquota /zkcli/q"),
    one("setquota-under-quota", "setquota -n 5 /zkcli/q/sub"),
    one("setquota-above-quota", "setquota -n 5 /zkcli"),
    one("setquota-missing", "setquota -n 5 /zkcli/missing"),
    one("delquota-count", "delquota -n /zkcli/q"),
    one("listquota-after-delquota-count", "listquota /zkcli/q"),
    one("delquota", "delquota /zkcli/q"),
    one("listquota-none", "listquota /zkcli/q"),
    one("delquota-none", "delquota /zkcli/q"),
    one("getephemerals-own-session", "getEphemerals /zkcli"),
    script(
        "getephemerals-session",
        [
            "create -e /zkcli/eph/s1",
            "create -e -s /zkcli/eph/s2-",
            "getEphemerals /zkcli/eph",
            "getEphemerals /zkcli/eph/s1",
            "getEphemerals",
            "quit",
        ],
        sort_lists=True,
    ),
    one("removewatches-none", "removewatches /zkcli/a"),
    one("addwatch", "addWatch /zkcli/a"),
    one("addwatch-persistent", "addWatch -m PERSISTENT /zkcli/a"),
    one("addwatch-bad-mode", "addWatch -m FOO /zkcli/a"),
    script("addwatch-then-remove", ["addWatch -m PERSISTENT /zkcli/a", "removewatches /zkcli/a"]),
    script("history", ["ls /zkcli/t", "history"]),
    script("redo", ["ls /zkcli/t", "redo 0"]),
    one("redo-out-of-range", "redo 0"),
    one("printwatches", "printwatches off"),
    script("close-then-command", ["close", "ls /zkcli/t", "connect %HOSTS%", "ls /zkcli/t", "quit"]),
    one("quit", "quit"),
    one("unknown-command", "foo"),
    one("deleteall-root", "deleteall /zkcli/t"),
    one("ls-deleted", "ls /zkcli/t"),
]


# ---------------------------------------------------------------------- normalisation

NOISE = [
    re.compile(r"^SLF4J: "),
    re.compile(r"^log4j:"),
    re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[,.]\d{3} "),
    re.compile(r"^JLine support is (enabled|disabled)$"),
]
STATE_EVENT = re.compile(r"^WatchedEvent state:(SyncConnected|Disconnected|Closed|Expired) type:None path:null$")
ZXID_LINE = re.compile(r"^(cZxid|mZxid|pZxid) = (0x[0-9a-f]+)$")
DATE = re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d\d \d\d:\d\d:\d\d \S+ \d{4}\b")
EPOCH = "Thu Jan 01 00:00:00 UTC 1970"
OWNER = re.compile(r"^ephemeralOwner = 0x([0-9a-f]+)$")
VERSION = re.compile(r"^ZooKeeper CLI version: .*$")
LIST = re.compile(r"^\[(.*)\]$")


def drop_state_watcher_blocks(lines):
    """The Java CLI's watcher prints "\nWATCHER::" and then "\nWatchedEvent
    ..." with two println calls from its event thread, so other output can
    land between the two, and each can land inside a line the command prints
    in pieces (`ls` prints "[a, b" and "]" apart). One println is atomic, so a
    dropped unit "\nWATCHER::\n" always sits at one point of the command's
    text: it splits the line around it into the line before and the line
    after. Drop every "WATCHER::" line and every connection-state event line
    and join the two lines around it again (an empty line before it is the
    unit's own start when it fell between lines); other events stay as
    ("", "WatchedEvent ...")."""
    out = []
    rejoin = False
    for line in lines:
        if rejoin:
            out[-1] += line
            rejoin = False
            continue
        if (line == "WATCHER::" or STATE_EVENT.match(line)) and out:
            rejoin = True
            continue
        out.append(line)
    return out


def normalise(textout, hosts, sort_lists=False):
    # Whole lines first (a watcher unit can split one), then the noise.
    lines = drop_state_watcher_blocks(textout.split("\n"))
    lines = [l for l in lines if not any(p.search(l) for p in NOISE)]
    zxids = {"0x0": "0x0"}
    out = []
    for line in lines:
        line = line.replace(hosts, "<hosts>")
        m = ZXID_LINE.match(line)
        if m:
            z = m.group(2)
            if z not in zxids:
                zxids[z] = "<zxid-%d>" % len(zxids)
            line = "%s = %s" % (m.group(1), zxids[z])
        if EPOCH not in line:
            line = DATE.sub("<date>", line)
        m = OWNER.match(line)
        if m and int(m.group(1), 16) != 0:
            line = "ephemeralOwner = <session>"
        if VERSION.match(line):
            line = "ZooKeeper CLI version: <version>"
        m = LIST.match(line)
        if m and sort_lists and m.group(1):
            line = "[%s]" % ", ".join(sorted(m.group(1).split(", ")))
        out.append(line)
    return "\n".join(out)


# ---------------------------------------------------------------------- running


def run_cli(cli, hosts, case):
    cmd = list(cli) + ["-server", hosts]
    if case.args is not None:
        cmd += case.args
        stdin_text = None
    else:
        stdin_text = case.script.replace("%HOSTS%", hosts)
    try:
        p = subprocess.run(
            cmd,
            input=stdin_text,
            stdin=subprocess.DEVNULL if stdin_text is None else None,
            capture_output=True,
            text=True,
            timeout=CASE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        return out, err + "\n<timed out after %ds>" % CASE_TIMEOUT_S, -1
    return p.stdout, p.stderr, p.returncode


def golden_paths(index, case):
    stem = os.path.join(GOLDEN_DIR, "%03d-%s" % (index, case.name))
    return {k: stem + "." + k for k in ("cmd", "stdout", "stderr", "exit")}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def write(path, content):
    with open(path, "w", encoding="utf-8") as f:
        f.write(content)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", nargs="?", choices=["check", "record"], default="check")
    ap.add_argument("--cli", default=DEFAULT_JAVA_CLI, help="the client command, split like a shell would")
    ap.add_argument("--hosts", default=os.environ.get("ZK_HOSTS"))
    ap.add_argument("-k", dest="only", help="run only cases whose name contains this")
    ap.add_argument("--skip", action="append", default=[], metavar="NAME",
                    help="check mode: leave out the case of this exact name (repeatable)")
    args = ap.parse_args()
    if not args.hosts:
        ap.error("ZK_HOSTS is not set and --hosts not given")
    unknown = sorted(set(args.skip) - {case.name for case in CASES})
    if unknown:
        ap.error("--skip: no such case: %s" % ", ".join(unknown))
    if args.skip and args.mode == "record":
        ap.error("--skip is for check mode only")
    cli = shlex.split(args.cli)

    # Start from a clean /zkcli; results not checked. Some cases leave nodes
    # readable only with digest u:p, so authenticate first.
    run_cli(cli, args.hosts, script("pre", ["addauth digest u:p", "deleteall /zkcli", "deleteall /zookeeper/quota/zkcli", "quit"]))

    if args.mode == "record":
        os.makedirs(GOLDEN_DIR, exist_ok=True)
        for f in os.listdir(GOLDEN_DIR):
            if re.match(r"^\d{3}-", f):
                os.unlink(os.path.join(GOLDEN_DIR, f))

    passed = failed = 0
    for index, case in enumerate(CASES, 1):
        if args.only and args.only not in case.name:
            continue
        if case.name in args.skip:
            print("skip %03d-%s" % (index, case.name))
            continue
        out, err, rc = run_cli(cli, args.hosts, case)
        got = {
            "stdout": normalise(out, args.hosts, case.sort_lists),
            "stderr": normalise(err, args.hosts, case.sort_lists),
            "exit": "%d\n" % rc,
        }
        paths = golden_paths(index, case)
        if args.mode == "record":
            write(paths["cmd"], case.describe())
            for k in ("stdout", "stderr", "exit"):
                write(paths[k], got[k])
            print("recorded %03d-%s (exit %d)" % (index, case.name, rc))
            passed += 1
            continue
        diffs = []
        for k in ("stdout", "stderr", "exit"):
            if not os.path.exists(paths[k]):
                diffs.append("missing golden file %s" % os.path.relpath(paths[k], HERE))
                continue
            want = read(paths[k])
            if want != got[k]:
                diffs.extend(
                    difflib.unified_diff(
                        want.split("\n"),
                        got[k].split("\n"),
                        "golden/%s" % k,
                        "got/%s" % k,
                        lineterm="",
                    )
                )
        if diffs:
            failed += 1
            print("FAIL %03d-%s" % (index, case.name))
            for d in diffs:
                print("    " + d)
        else:
            passed += 1
            print("ok   %03d-%s" % (index, case.name))
    print("zkcli: %d passed, %d failed" % (passed, failed))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
