#!/usr/bin/env bash
# The project's one test command: scripts/test.sh [--quick]
#
#   1. Apache ZooKeeper 3.8 from Debian (zookeeper, zookeeper-bin), installed
#      with apt-get when missing (needs root), for the reference runs and for
#      its Java zkCli.sh and C cli_mt clients, plus the Debian packages the
#      client suites list in tests/clients/*/debian-packages.
#   2. A Python venv in .venv with tests/compat/requirements.txt.
#   3. cargo test --release --locked --no-run (builds the tests and the corral
#      binary, target/release/corral, once: a separate `cargo build` would compile
#      the crate and much of its dependency tree a second time, with the features
#      the dev-dependencies do not switch on; without debug info unless
#      CARGO_PROFILE_RELEASE_DEBUG says otherwise); cargo check --bin corral (the
#      binary as `cargo build` makes it); then the tests (tests/fuzz_corpus.rs
#      replays every fuzz seed; scripts/fuzz.sh, the fuzzing itself, is not run);
#      tests/scripts/zkserver_test.sh (zkServer.sh and the 3 + 1 walkthrough) and
#      tests/scripts/netns_partition.sh (four hosts in network namespaces; skips
#      itself where namespaces cannot be made); tests/scripts/systemd_unit.sh (the
#      systemd unit in scripts/); scripts/chaos.sh --ci (a cluster under injected
#      faults, every client operation checked); tests/tls/run.sh (kazoo and the
#      Java client over TLS) against ZooKeeper (skipped with --quick), then Corral.
#   4. tests/compat/run.sh zookeeper: the compat suites against the real
#      ZooKeeper, proving that they describe it (skipped with --quick).
#   5. tests/compat/run.sh corral: the same suites against Corral.
#   6. The same two runs with --cluster: against the mission's 3 participants + 1
#      observer, clients connected to all four servers (against ZooKeeper without the
#      Java zkCli golden suite, 118 JVM starts: step 4 proves the golden files).
#   7. --cluster --kill-leader, ZooKeeper (skipped with --quick) then Corral: the lock
#      and election recipes of Curator, kazoo and the Go client while the leader is
#      killed; and tests/compat_rust.rs's cluster test against a ZooKeeper cluster
#      (skipped with --quick; cargo test runs it against Corral).
#
# Every step runs under `timeout`, and the whole script under TEST_TIMEOUT_S
# (default 4800 s; a run takes about 22 min on 2 cores). All steps run even when
# one fails; the last line is "N passed, M failed" (cargo tests + compat checks,
# a failed step counting as at least one failure) and the exit code is non-zero
# if anything failed. The summary above it lists each step's wall time.

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

QUICK=0
for arg in "$@"; do
  case $arg in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
    *) echo "usage: scripts/test.sh [--quick]" >&2; exit 2 ;;
  esac
done

if [[ -z ${CORRAL_TEST_BOUNDED:-} ]]; then
  export CORRAL_TEST_BOUNDED=1
  # timeout signals its whole process group, so servers started by run.sh
  # are stopped by their traps too.
  exec timeout -k 30 "${TEST_TIMEOUT_S:-4800}" "$0" "$@"
fi

passed=0
failed=0
failed_steps=()

step_failed() {
  failed_steps+=("$1")
}

# Each banner starts a step; the summary lists every step's wall time, so a slow
# step shows in the CI log without timestamps.
step_names=()
step_seconds=()
step_started_s=$SECONDS
step_name=""
end_step() {
  if [[ -n $step_name ]]; then
    step_names+=("$step_name")
    step_seconds+=($((SECONDS - step_started_s)))
  fi
}
banner() {
  end_step
  step_name="$*"
  step_started_s=$SECONDS
  printf '\n==== %s\n' "$*"
}

# ---------------------------------------------------------------- 1. ZooKeeper
banner "ZooKeeper 3.8 and the client suites' packages from Debian"
need=()
dpkg -s zookeeper zookeeper-bin >/dev/null 2>&1 && command -v java >/dev/null || need+=(zookeeper zookeeper-bin)
command -v python3 >/dev/null || need+=(python3 python3-venv)
# Each client suite lists the Debian packages it needs (tests/clients/*/debian-packages).
for list in "$ROOT"/tests/clients/*/debian-packages; do
  [[ -f $list ]] || continue
  while read -r pkg _; do
    [[ -z $pkg || $pkg == \#* ]] && continue
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done <"$list"
done
if [[ ${#need[@]} -eq 0 ]]; then
  echo "zookeeper, zookeeper-bin, python3 and the client suites' packages already installed"
elif [[ $(id -u) -ne 0 ]]; then
  echo "missing ${need[*]} and not root: run as root or install them"
  step_failed "install ${need[*]}"
else
  export DEBIAN_FRONTEND=noninteractive
  if ! { timeout 900 apt-get update -q && timeout 900 apt-get install -y -q "${need[@]}"; }; then
    step_failed "install ${need[*]}"
  fi
fi

# ---------------------------------------------------------------- 2. venv
banner "Python venv (.venv)"
VENV=$ROOT/.venv
REQ=$ROOT/tests/compat/requirements.txt
if [[ ! -x $VENV/bin/python ]]; then
  if ! timeout 300 python3 -m venv "$VENV"; then
    # Debian's python3 ships venv separately.
    rm -rf "$VENV"
    if [[ $(id -u) -eq 0 ]]; then
      DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -q python3-venv
    fi
    timeout 300 python3 -m venv "$VENV" || step_failed "create venv"
  fi
fi
if [[ -x $VENV/bin/python ]]; then
  stamp=$VENV/.requirements.sha256
  want=$(sha256sum "$REQ" | cut -d' ' -f1)
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "requirements already installed"
  elif timeout 600 "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"; then
    echo "$want" > "$stamp"
  else
    step_failed "pip install"
  fi
fi
export PYTHON=$VENV/bin/python

# ---------------------------------------------------------------- 3. cargo
banner "cargo test --release --locked --no-run (the build)"
# Without the release profile's debug info (kept there for profiling): the build takes
# about 40 % less time (540 s against 870 s on 2 cores), and no test reads it.
export CARGO_PROFILE_RELEASE_DEBUG=${CARGO_PROFILE_RELEASE_DEBUG:-0}
timeout 2400 cargo test --release --locked --no-run || step_failed "cargo build"

# The binary as `cargo build --release` (the README's first command) makes it, without the
# features the test dependencies switch on in shared crates: it must compile too.
banner "cargo check --release --locked --bin corral (without the test dependencies)"
timeout 900 cargo check --release --locked --bin corral || step_failed "cargo check --bin corral"

banner "cargo test --release --locked"
cargo_log=$(mktemp)
timeout 1800 cargo test --release --locked 2>&1 | tee "$cargo_log"
cargo_rc=${PIPESTATUS[0]}
# Sum "test result: ... N passed; M failed" over all test binaries.
read -r cp cf < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed/) p += $i
      if ($(i+1) ~ /^failed/) f += $i
    }
  } END { print p + 0, f + 0 }' "$cargo_log")
rm -f "$cargo_log"
if [[ $cargo_rc -ne 0 && $cf -eq 0 ]]; then cf=1; fi
passed=$((passed + cp))
failed=$((failed + cf))
[[ $cargo_rc -eq 0 ]] || step_failed "cargo test"

# ---------------------------------------------------------------- test scripts
# Runs a script whose last line is "N passed, M failed" and adds its counts.
# $1: the step's name; $2: 1 if a run without that line counts as a failure (0 for a
# script that may skip itself); the rest: the command.
run_script() {
  local name=$1 missing_fails=$2 log rc line
  shift 2
  log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  line=$(grep -E "^[0-9]+ passed, [0-9]+ failed$" "$log" | tail -n 1)
  rm -f "$log"
  if [[ -n $line ]]; then
    passed=$((passed + ${line%% *}))
    failed=$((failed + $(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$line")))
  elif [[ $missing_fails -eq 1 ]]; then
    failed=$((failed + 1))
  fi
  [[ $rc -eq 0 ]] || step_failed "$name"
}

banner "tests/scripts/zkserver_test.sh (scripts/zkServer.sh, real binary)"
run_script zkserver_test 1 env ZKSERVER_TEST_REAL=1 CORRAL_BIN="$ROOT/target/release/corral" \
  timeout 600 bash "$ROOT/tests/scripts/zkserver_test.sh"

# Four network namespaces, the leader partitioned away and healed; prints "skip: ..." and
# passes where namespaces cannot be made (not root, no `ip netns`).
banner "tests/scripts/netns_partition.sh (4 hosts in network namespaces)"
run_script netns_partition 0 env CORRAL_BIN="$ROOT/target/release/corral" \
  timeout 180 bash "$ROOT/tests/scripts/netns_partition.sh"

# The systemd unit docs/operations.md installs: systemd's verify, and its command lines run.
banner "tests/scripts/systemd_unit.sh (scripts/corral@.service)"
run_script systemd_unit 1 env CORRAL_BIN="$ROOT/target/release/corral" \
  timeout 120 bash "$ROOT/tests/scripts/systemd_unit.sh"

# A 3-server cluster under kill -9, SIGSTOP, partitions, disk full and slow fsync, every
# client operation checked (docs/reliability.md, "Faults on a real cluster"); fault kinds
# this host cannot inject are skipped with a printed reason.
banner "scripts/chaos.sh --ci (a cluster under injected faults, histories checked)"
run_script chaos 1 env CORRAL_BIN="$ROOT/target/release/corral" PYTHON="$PYTHON" \
  timeout 300 bash "$ROOT/scripts/chaos.sh" --ci

# TLS with real clients: the same checks against ZooKeeper (proving them) and Corral.
if [[ $QUICK -eq 0 ]]; then
  banner "tests/tls/run.sh zookeeper (kazoo and the Java client over TLS)"
  run_script tls_zookeeper 1 env PYTHON="$PYTHON" timeout 180 bash "$ROOT/tests/tls/run.sh" zookeeper
else
  banner "--quick: skipping tests/tls/run.sh zookeeper"
fi
banner "tests/tls/run.sh corral (kazoo and the Java client over TLS)"
run_script tls_corral 1 env CORRAL_BIN="$ROOT/target/release/corral" PYTHON="$PYTHON" \
  timeout 180 bash "$ROOT/tests/tls/run.sh" corral

# ---------------------------------------------------------------- 4-5. compat
run_compat() {
  local flavor=$1 log rc line p f
  shift
  banner "tests/compat/run.sh $flavor $*"
  log=$(mktemp)
  timeout 1800 "$ROOT/tests/compat/run.sh" "$flavor" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  line=$(grep -E "^$flavor: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -n 1)
  rm -f "$log"
  if [[ -n $line ]]; then
    p=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
  else
    p=0
    f=1
  fi
  if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; fi
  passed=$((passed + p))
  failed=$((failed + f))
  [[ $rc -eq 0 ]] || step_failed "compat $flavor $*"
}

if [[ $QUICK -eq 0 ]]; then
  run_compat zookeeper
else
  banner "--quick: skipping tests/compat/run.sh zookeeper"
fi
run_compat corral
# The same suites against the mission's 3 + 1 pseudo-cluster, clients on all four servers.
if [[ $QUICK -eq 0 ]]; then
  run_compat zookeeper --cluster --skip-suite zkcli
else
  banner "--quick: skipping tests/compat/run.sh zookeeper --cluster"
fi
run_compat corral --cluster
# The lock and election recipes while the leader server is killed (about 25 s each),
# and the zookeeper-client checks against a ZooKeeper 3 + 1 cluster (about 20 s).
if [[ $QUICK -eq 0 ]]; then
  run_compat zookeeper --cluster --kill-leader
else
  banner "--quick: skipping tests/compat/run.sh zookeeper --cluster --kill-leader"
fi
run_compat corral --cluster --kill-leader
if [[ $QUICK -eq 0 ]]; then
  banner "tests/compat_rust.rs against_the_3_plus_1_cluster, Apache ZooKeeper nodes"
  zk_rust_log=$(mktemp)
  CORRAL_CLUSTER_TEST_TARGET=zookeeper timeout 300 cargo test --release --locked --test compat_rust \
    against_the_3_plus_1_cluster 2>&1 | tee "$zk_rust_log"
  zk_rust_rc=${PIPESTATUS[0]}
  if [[ $zk_rust_rc -eq 0 ]] && grep -q '^test result: ok\. 1 passed' "$zk_rust_log"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    step_failed "compat_rust against ZooKeeper"
  fi
  rm -f "$zk_rust_log"
else
  banner "--quick: skipping tests/compat_rust.rs against a ZooKeeper cluster"
fi

# ---------------------------------------------------------------- summary
banner "summary"
for i in "${!step_names[@]}"; do
  printf '%5d s  %s\n' "${step_seconds[$i]}" "${step_names[$i]}"
done
printf '%5d s  in all\n' "$SECONDS"
if [[ ${#failed_steps[@]} -gt 0 ]]; then
  printf 'failed step: %s\n' "${failed_steps[@]}"
  # A step that failed without a counted test failure still fails the run.
  [[ $failed -gt 0 ]] || failed=1
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 && ${#failed_steps[@]} -eq 0 && $passed -gt 0 ]]
