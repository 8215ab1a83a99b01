#!/usr/bin/env bash
# Fuzzes Corral's decoders with cargo-fuzz (targets in fuzz/, docs/reliability.md "Fuzzing").
#
#   scripts/fuzz.sh --ci                 # every target 15 s (a quick check; the build ~4-6 min)
#   scripts/fuzz.sh                      # every target 1 h, one after the other
#   scripts/fuzz.sh --seconds 600 client_frames quorum_wire
#   scripts/fuzz.sh --jobs 2 ...         # two targets at a time (one core each)
#
# Targets: client_frames quorum_wire zoo_cfg log_recovery snapshot_load zkcli_command.
# Runs on the stable toolchain: no sanitizer (`--sanitizer none`; ASan needs nightly, and
# Corral's only unsafe code is checked by its tests), debug assertions on, so arithmetic
# overflow panics like any other bug. cargo-fuzz is installed once into
# $CORRAL_FUZZ_TOOLS (default target/fuzz-tools) from the crate registry.
#
# Each target starts from the committed seeds (fuzz/corpus/<target>, read only) and
# keeps what it finds in $CORRAL_FUZZ_WORK/<target> (default fuzz/target/corpus), so a
# later run goes on from there. A crash, panic, hang (-timeout) or memory blow-up
# (-rss_limit_mb) leaves its input in fuzz/artifacts/<target>/ and fails the target; the
# report says how to replay it. Every run stops by itself (-max_total_time, plus a
# `timeout` around it). Last line: "N passed, M failed" (one per target).

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT/fuzz" || exit 1

ALL_TARGETS=(client_frames quorum_wire zoo_cfg log_recovery snapshot_load zkcli_command)
CARGO_FUZZ_VERSION=0.13.2
seconds=3600
jobs=1
targets=()
usage() { sed -n '2,21p' "$0"; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --ci) seconds=15 ;;
    --seconds) seconds=${2:?}; shift ;;
    --jobs) jobs=${2:?}; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
[[ ${#targets[@]} -gt 0 ]] || targets=("${ALL_TARGETS[@]}")

TOOLS=${CORRAL_FUZZ_TOOLS:-$ROOT/target/fuzz-tools}
WORK=${CORRAL_FUZZ_WORK:-$ROOT/fuzz/target/corpus}
export PATH=$TOOLS/bin:$PATH
started=$SECONDS

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS"
  timeout 900 cargo install --locked --quiet --root "$TOOLS" --version "$CARGO_FUZZ_VERSION" cargo-fuzz ||
    { echo "cargo-fuzz install failed"; echo "0 passed, ${#targets[@]} failed"; exit 1; }
fi

FLAGS=(--sanitizer none --debug-assertions)
echo "building the fuzz targets (cargo fuzz build ${FLAGS[*]})"
build_log=$(mktemp)
if ! timeout 1800 nice -n 10 cargo fuzz build "${FLAGS[@]}" >"$build_log" 2>&1; then
  tail -n 30 "$build_log"; rm -f "$build_log"
  echo "build failed"; echo "0 passed, ${#targets[@]} failed"; exit 1
fi
rm -f "$build_log"
echo "built in $((SECONDS - started)) s"

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT

# Runs one target; its summary line goes to $LOGS/<target>.result.
run_target() {
  local t=$1 log=$LOGS/$1.log rc execs rate cov
  mkdir -p "$WORK/$t" "$ROOT/fuzz/artifacts/$t"
  # libFuzzer writes new inputs into the first directory and only reads the others.
  # The bound covers `cargo fuzz run`'s build check too, which can take minutes on a
  # loaded machine.
  timeout -k 10 $((seconds + 300)) nice -n 10 cargo fuzz run "${FLAGS[@]}" "$t" \
    "$WORK/$t" "$ROOT/fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 >"$log" 2>&1
  rc=$?
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | tail -n 1 | awk '{print $2}')
  rate=$(grep -E '^stat::average_exec_per_sec' "$log" | tail -n 1 | awk '{print $2}')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | awk '{print $2}')
  if [[ $rc -eq 0 ]]; then
    echo "$t: ok, ${execs:-?} execs, ${rate:-?} execs/s, coverage ${cov:-?} edges, ${seconds} s" >"$LOGS/$t.result"
  else
    {
      echo "$t: FAILED (exit $rc) after ${execs:-?} execs"
      grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written to|timeout' "$log" | head -n 8 | sed 's/^/  /'
      echo "  replay: (cd fuzz && cargo fuzz run ${FLAGS[*]} $t <artifact>)"
    } >"$LOGS/$t.result"
    tail -n 40 "$log" >"$LOGS/$t.tail"
  fi
}

running=0
for t in "${targets[@]}"; do
  if [[ ! -f $ROOT/fuzz/fuzz_targets/$t.rs ]]; then
    echo "$t: FAILED (no such target)" >"$LOGS/$t.result"
    continue
  fi
  echo "fuzzing $t for $seconds s"
  run_target "$t" &
  running=$((running + 1))
  if [[ $running -ge $jobs ]]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

passed=0
failed=0
for t in "${targets[@]}"; do
  cat "$LOGS/$t.result"
  if grep -q ': ok,' "$LOGS/$t.result"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    [[ -f $LOGS/$t.tail ]] && sed 's/^/  | /' "$LOGS/$t.tail"
  fi
done
echo "fuzzing took $((SECONDS - started)) s in all"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
