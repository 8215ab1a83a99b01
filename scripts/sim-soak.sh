#!/usr/bin/env bash
# A long soak of the deterministic replication simulator, within a time budget:
#
#   scripts/sim-soak.sh [--budget-s S] [--from F] [--chunk N] [--election]
#
# Runs `corral sim` over seeds F, F+1, ... in chunks of N seeds (default 100000), each
# chunk bounded by what is left of the budget (default 3600 s), until the budget is spent;
# each chunk's summary is printed as it ends.
# A failing seed stops the soak: its lines (seed, reason, the `corral sim --seed S --trace`
# command that replays it) are printed and the exit code is 1. Otherwise the last line
# says how many seeds passed, from which to which, and the exit code is 0.
#
# The binary is $CORRAL_BIN, or target/release/corral (build it with
# `cargo build --release`). Starting the next soak at the seed after the last one passed
# (--from) extends the coverage instead of repeating it.

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${CORRAL_BIN:-$ROOT/target/release/corral}

usage() { sed -n '4,5p' "$0" | sed 's/^# *//' >&2; exit 2; }

BUDGET_S=3600
FROM=1
CHUNK=100000
ELECTION=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --budget-s) [[ $# -ge 2 ]] || usage; BUDGET_S=$2; shift 2 ;;
    --from) [[ $# -ge 2 ]] || usage; FROM=$2; shift 2 ;;
    --chunk) [[ $# -ge 2 ]] || usage; CHUNK=$2; shift 2 ;;
    --election) ELECTION=(--election); shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) usage ;;
  esac
done
for v in "$BUDGET_S" "$FROM" "$CHUNK"; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "sim-soak: $v: not a whole number" >&2; exit 2; }
done
[[ $BUDGET_S -ge 1 && $CHUNK -ge 1 ]] || { echo "sim-soak: --budget-s and --chunk must be at least 1" >&2; exit 2; }
[[ -x $BIN ]] || { echo "sim-soak: no corral binary at $BIN (cargo build --release, or set CORRAL_BIN)" >&2; exit 2; }

start=$SECONDS
next=$FROM
passed=0
echo "sim-soak: ${ELECTION[*]:-cluster} simulation from seed $FROM, chunks of $CHUNK, budget ${BUDGET_S} s"
while :; do
  left=$((BUDGET_S - (SECONDS - start)))
  [[ $left -ge 1 ]] || break
  out=$("$BIN" sim "${ELECTION[@]}" --from "$next" --seeds "$CHUNK" --time-limit-s "$left")
  rc=$?
  echo "$out"
  if [[ $rc -ne 0 ]]; then
    echo "sim-soak: FAILED after $passed seeds passed (seeds $FROM..$((next - 1))), $((SECONDS - start)) s"
    exit 1
  fi
  # The chunk's "passed: K seeds (A..=B) in T s" line: K seeds passed.
  ran=$(sed -n 's/^passed: \([0-9]*\) seeds\{0,1\} .*/\1/p' <<<"$out")
  [[ -n $ran ]] || ran=0
  passed=$((passed + ran))
  next=$((next + ran))
  echo "sim-soak: $passed seeds passed so far (up to seed $((next - 1))), $((SECONDS - start)) s"
  # A chunk cut short by the time limit means the budget is spent.
  [[ $ran -eq $CHUNK ]] || break
done
echo "sim-soak: $passed seeds passed (seeds $FROM..$((next - 1))) in $((SECONDS - start)) s; next soak: --from $next"
exit 0
