#!/usr/bin/env bash
# Checks scripts/corral@.service, the systemd unit docs/operations.md installs:
#   1. `systemd-analyze verify` finds nothing to say about it (unknown keys, bad values,
#      commands that are not executable), with the binary path pointed at the build;
#   2. its ExecStartPre and ExecStart command lines, as written (the instance name put in
#      for %i, the binary and /etc/corral put where this test has them), do what the unit
#      needs: the check runs and does not fail the start, the server answers `ruok`, and
#      SIGTERM (the unit's KillSignal) stops it within TimeoutStopSec.
#
#   CORRAL_BIN=target/release/corral tests/scripts/systemd_unit.sh
#
# Without systemd-analyze, check 1 prints `skip`. Bounded: each wait has a deadline.

set -u

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${CORRAL_BIN:-$REPO/target/release/corral}"
UNIT="$REPO/scripts/corral@.service"
# shellcheck source=tests/scripts/report.sh
. "$REPO/tests/scripts/report.sh"

SCRATCH="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The unit with the binary and config directory moved to where this test keeps them.
localize() { # FILE
    sed -e "s#/usr/local/bin/corral#$BIN#g" -e "s#/etc/corral/#$SCRATCH/etc/#g" "$1"
}

mkdir -p "$SCRATCH/etc" "$SCRATCH/data" "$SCRATCH/units"

# 1. systemd's own reading of the unit.
if command -v systemd-analyze >/dev/null; then
    localize "$UNIT" >"$SCRATCH/units/corral@.service"
    out="$(cd "$SCRATCH/units" && timeout 60 systemd-analyze verify "$SCRATCH/units/corral@zoo.service" 2>&1)"
    rc=$?
    # Users that do not exist on this machine are not the unit's fault.
    out="$(printf '%s\n' "$out" | grep -v -e "Failed to resolve user" -e "^$" || true)"
    if [ "$rc" = 0 ] && [ -z "$out" ]; then
        pass "systemd-analyze verify corral@zoo.service: nothing to report"
    else
        fail "systemd-analyze verify corral@zoo.service (exit $rc)" "$out"
    fi
else
    echo "skip - systemd-analyze verify: systemd-analyze not installed"
fi

# 2. The command lines as the unit runs them, for instance `zoo`.
port="$(free_port)"
printf 'tickTime=2000\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=ruok\n' \
    "$SCRATCH/data" "$port" >"$SCRATCH/etc/zoo.cfg"
command_of() { # KEY: the unit's command line for KEY, %i = zoo, without a leading "-"
    localize "$UNIT" | sed -n "s/^$1=//p" | head -n 1 | sed -e 's/%i/zoo/g' -e 's/^-//'
}
pre="$(command_of ExecStartPre)"
start="$(command_of ExecStart)"
read -r -a pre_argv <<<"$pre"
read -r -a start_argv <<<"$start"

timeout 60 "${pre_argv[@]}" >"$SCRATCH/pre.out" 2>&1
rc=$?
# The unit ignores its exit code ("-"), but a crash or an unparsed config would show here.
if [ "$rc" -le 1 ]; then
    pass "ExecStartPre ($pre) runs: exit $rc"
else
    fail "ExecStartPre ($pre): exit $rc" "$(cat "$SCRATCH/pre.out")"
fi

"${start_argv[@]}" >"$SCRATCH/server.log" 2>&1 &
SERVER_PID=$!
deadline=$((SECONDS + 30))
answer=""
while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$SERVER_PID" 2>/dev/null; do
    answer="$("$BIN" 4lw "127.0.0.1:$port" ruok 2>/dev/null)"
    [ "$answer" = imok ] && break
    sleep 0.1
done
if [ "$answer" = imok ]; then
    pass "ExecStart ($start) serves: ruok -> imok"
else
    fail "ExecStart ($start) did not answer ruok within 30 s" "$(tail -n 20 "$SCRATCH/server.log")"
fi

stop_s="$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$UNIT")"
kill -TERM "$SERVER_PID" 2>/dev/null
deadline=$((SECONDS + ${stop_s:-15}))
while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$SERVER_PID" 2>/dev/null; do
    sleep 0.1
done
if kill -0 "$SERVER_PID" 2>/dev/null; then
    fail "SIGTERM did not stop the server within TimeoutStopSec=${stop_s:-15}s"
else
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
    pass "SIGTERM stops the server within TimeoutStopSec=${stop_s:-?}s"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
