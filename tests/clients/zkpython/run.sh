#!/usr/bin/env bash
# The zkpython suite (see tests/clients/README.md): smoketest.py, a sanity and
# latency run with Apache ZooKeeper's Python binding (module `zookeeper`, the
# C client underneath), against $ZK_HOSTS. It is a system module: it runs
# with /usr/bin/python3, not the project venv.
#
# Skipped while the binding does not work: run.sh first probes it without a
# server (import, then create() on a handle that does not exist, which must
# fail on the handle and not on its arguments) and, if that fails, prints why
# and "zkpython: 0 passed, 0 failed", exit 0. Debian 12's python3-zookeeper
# (3.8.0-11+deb12u2) fails both ways with Python 3.11: the module refers to
# PyIOBase_Type, which libpython does not export ("undefined symbol"), and it
# parses "s#" arguments without PY_SSIZE_T_CLEAN, which Python >= 3.10
# refuses (SystemError in create, get, set, add_auth, acreate, ...).
# Nothing else works either: Debian 12 has no other CPython (python3.11 only;
# pypy3 cannot load a CPython extension module), and PyPI's zkpython 0.4.2 is
# the same binding in its Python 2 form (PyString_*, PyInt_*: it does not
# build for Python 3).
#
# Env: ZK_HOSTS, ZKPYTHON_PYTHON (/usr/bin/python3), ZNODE_COUNT (200),
#      SUITE_TIMEOUT_S (100).

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${ZK_HOSTS:?ZK_HOSTS is not set (expected 127.0.0.1:PORT[,...])}"
PY=${ZKPYTHON_PYTHON:-/usr/bin/python3}

probe='
import zookeeper
try:
    zookeeper.create(999999, "/probe", b"", [], 0)
except zookeeper.ZooKeeperException:
    pass  # the arguments parsed; the handle does not exist
'
if ! err=$(timeout 30 "$PY" -c "$probe" 2>&1); then
  echo "zkpython: skipped: Apache ZooKeeper's Python binding does not work with $PY: $(tail -n 1 <<<"$err")"
  echo "zkpython: 0 passed, 0 failed"
  exit 0
fi

"$PY" "$HERE/smoketest.py"
