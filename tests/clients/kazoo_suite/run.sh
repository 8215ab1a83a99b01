#!/usr/bin/env bash
# kazoo's own test suite (kazoo/tests from its PyPI sdist) against the
# existing server at $ZK_HOSTS. See tests/clients/README.md for the contract.
#
# - kazoo's version is the one pinned in tests/compat/requirements.txt; its
#   sdist is cached under $PYTHON's venv (kazoo_suite-cache/) and unpacked
#   into $CLIENT_WORK.
# - requirements.txt here (what kazoo's tests import) is installed into
#   $PYTHON's venv once per content (a stamp file in the venv).
# - kazoo_existing_server.py (a pytest plugin) points kazoo's harness at
#   $ZK_HOSTS: no Java process, each test under its own chroot, removed after.
# - deselected.txt names the tests left out, with a reason each.
#
# Env: ZK_HOSTS, ZK_FLAVOR, PYTHON, CLIENT_WORK (see the README);
#      KAZOO_SUITE_TEST_TIMEOUT_S (per test, default 60),
#      KAZOO_SUITE_TIMEOUT_S (whole pytest run, default 420);
#      KAZOO_SUITE_WORKERS (pytest-xdist processes, default 4: most of the
#      suite's time is kazoo's own waits, 10 s at most per test, not CPU).
# Extra arguments go to pytest (e.g. -k test_lock).

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
NAME=kazoo_suite

fail() {
  echo "$NAME: $*"
  echo "$NAME: 0 passed, 1 failed"
  exit 1
}

[[ -n ${ZK_HOSTS:-} ]] || fail "ZK_HOSTS is not set"
PYTHON=${PYTHON:-python3}
if [[ -z ${CLIENT_WORK:-} ]]; then
  CLIENT_WORK=$(mktemp -d "${TMPDIR:-/tmp}/kazoo_suite.XXXXXX")
  trap 'rm -rf "$CLIENT_WORK"' EXIT
fi
mkdir -p "$CLIENT_WORK"

VERSION=$(sed -nE 's/^kazoo==([0-9][0-9A-Za-z.]*)[[:space:]]*$/\1/p' "$ROOT/tests/compat/requirements.txt")
[[ -n $VERSION ]] || fail "no kazoo==X pin in tests/compat/requirements.txt"

# Packages go into $PYTHON's own venv, never into a system Python.
VENV=$("$PYTHON" -c 'import sys; print(sys.prefix if sys.prefix != sys.base_prefix else "")') ||
  fail "$PYTHON does not run"
[[ -n $VENV ]] || fail "$PYTHON is not a venv's python (make one: scripts/test.sh creates .venv)"

installed=$("$PYTHON" -c 'import kazoo.version; print(kazoo.version.__version__)' 2>/dev/null)
[[ $installed == "$VERSION" ]] || fail "the venv has kazoo '$installed', tests/compat/requirements.txt pins $VERSION"

req_sum=$(sha256sum "$HERE/requirements.txt" | cut -c1-16)
stamp=$VENV/.kazoo_suite-requirements-$req_sum
if [[ ! -f $stamp ]]; then
  echo "$NAME: installing $HERE/requirements.txt into $VENV"
  timeout 300 "$PYTHON" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt" ||
    fail "pip install -r requirements.txt failed"
  rm -f "$VENV"/.kazoo_suite-requirements-*
  touch "$stamp"
fi

cache=$VENV/kazoo_suite-cache
sdist=$cache/kazoo-$VERSION.tar.gz
if [[ ! -f $sdist ]]; then
  mkdir -p "$cache"
  dl=$(mktemp -d "$cache/download.XXXXXX")
  echo "$NAME: downloading the kazoo $VERSION sdist"
  timeout 120 "$PYTHON" -m pip download -q --disable-pip-version-check \
    --no-binary :all: --no-deps -d "$dl" "kazoo==$VERSION" ||
    { rm -rf "$dl"; fail "pip download kazoo==$VERSION failed"; }
  # Renamed into place only when complete, so a cut download is never cached.
  mv "$dl/kazoo-$VERSION.tar.gz" "$sdist" || { rm -rf "$dl"; fail "no kazoo-$VERSION.tar.gz downloaded"; }
  rm -rf "$dl"
fi
tar -xzf "$sdist" -C "$CLIENT_WORK" || fail "cannot unpack $sdist"
SRC=$CLIENT_WORK/kazoo-$VERSION
[[ -d $SRC/kazoo/tests ]] || fail "$sdist has no kazoo/tests"

echo "$NAME: kazoo $VERSION tests against $ZK_FLAVOR at $ZK_HOSTS"
# kazoo's tests switch on CI / ZOOKEEPER_VERSION (kazoo's own CI matrix);
# without them they ask the server its version, locally and in CI alike.
# The sdist's pyproject sets verbose live logging: turned off here.
(cd "$SRC" && env -u CI -u ZOOKEEPER_VERSION PYTHONPATH="$HERE" \
  timeout "${KAZOO_SUITE_TIMEOUT_S:-420}" "$PYTHON" -m pytest \
  -p kazoo_existing_server -p no:cacheprovider \
  -o addopts= -o log_cli=false \
  --kazoo-deselect "$HERE/deselected.txt" \
  --timeout "${KAZOO_SUITE_TEST_TIMEOUT_S:-60}" \
  -n "${KAZOO_SUITE_WORKERS:-4}" \
  -q -rfEs --junitxml="$CLIENT_WORK/junit.xml" "$@" kazoo/tests)
rc=$?

counts=$("$PYTHON" - "$CLIENT_WORK/junit.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0 0"); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skip = sum(int(s.get("skipped", 0)) for s in suites)
print(t - bad - skip, bad, skip)
EOF
)
read -r passed failed skipped <<<"$counts"
# A selected test that skips itself did not run: every test is either run or
# deselected by name with a reason.
if ((skipped > 0)); then
  echo "$NAME: $skipped selected tests skipped themselves (counted as failed)"
  failed=$((failed + skipped))
fi
if [[ $rc -ne 0 && $failed -eq 0 ]]; then
  echo "$NAME: pytest exited $rc (timeout, usage error or crash)"
  failed=1
fi
echo "$NAME: $passed passed, $failed failed"
((failed == 0 && passed > 0))
