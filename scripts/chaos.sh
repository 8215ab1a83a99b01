#!/usr/bin/env bash
# A Corral cluster under injected faults, every client operation recorded and checked for
# linearizability (registers), lost or duplicated acknowledged creates (queues) and two
# holders at once (locks). See docs/reliability.md, "Faults on a real cluster".
#
#   scripts/chaos.sh --ci                      # bounded: about 2 minutes, for scripts/test.sh
#   scripts/chaos.sh [--duration-s 1800] [--seed N] [--nodes 5] [--keep]
#
# First the checker's own tests (hand-made histories it must reject or accept), then the run
# (tests/chaos/chaos.py). Faults that need what this host lacks (root, `ip netns`, a loop
# device, a blkio/io cgroup) are skipped with a printed reason. The last line is
# "N passed, M failed"; the exit code is non-zero on any failure or anomaly.
# CORRAL_BIN (default target/release/corral) is the server; PYTHON (default .venv/bin/python,
# then python3) must import kazoo.

set -u
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-}"
if [[ -z $PY ]]; then
  if [[ -x $REPO/.venv/bin/python ]]; then PY="$REPO/.venv/bin/python"; else PY=python3; fi
fi
export CORRAL_BIN="${CORRAL_BIN:-$REPO/target/release/corral}"

passed=0
failed=0
if ! "$PY" -c "import kazoo" 2>/dev/null; then
  echo "FAIL - kazoo: '$PY' cannot import it (pip install -r tests/compat/requirements.txt, or set PYTHON)"
  echo "0 passed, 1 failed"
  exit 1
fi

# 1. The checker on hand-made histories.
log=$(mktemp)
timeout 120 "$PY" -m unittest "$REPO/tests/chaos/test_checker.py" >"$log" 2>&1
rc=$?
ran=$(sed -n 's/^Ran \([0-9]*\) tests\? .*/\1/p' "$log")
bad=$(sed -n 's/^FAILED (\(.*\))$/\1/p' "$log" | grep -o '[0-9]\+' | awk '{ s += $1 } END { print s + 0 }')
ran=${ran:-0}
bad=${bad:-0}
if [[ $rc -eq 0 && $ran -gt 0 ]]; then
  echo "ok   - checker: $ran tests on hand-made histories"
  passed=$((passed + ran))
else
  echo "FAIL - checker: tests on hand-made histories (rc=$rc, $ran ran, $bad failed)"
  sed 's/^/       /' "$log"
  passed=$((passed + ran - bad))
  failed=$((failed + (bad > 0 ? bad : 1)))
fi
rm -f "$log"

# 2. The cluster under faults.
log=$(mktemp)
nice -n 5 "$PY" "$REPO/tests/chaos/chaos.py" "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
line=$(grep -E "^[0-9]+ passed, [0-9]+ failed$" "$log" | tail -n 1)
rm -f "$log"
if [[ -n $line ]]; then
  passed=$((passed + ${line%% *}))
  f=$(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$line")
  [[ $rc -ne 0 && $f -eq 0 ]] && f=1
  failed=$((failed + f))
else
  echo "FAIL - the chaos run printed no result line (exit $rc)"
  failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
