#!/usr/bin/env bash
# Runs one `corral bench` workload against a fresh standalone Corral started with each
# profile in turn, ROUNDS times (profiles interleaved, so drift on a shared machine hits
# them alike), and prints each run's summary line.
#
#   tuning/compare-profiles.sh [-r ROUNDS] PROFILE...      e.g. nvme hdd
#
# PROFILE is a name in tuning/ (nvme, hdd, ...) or a path to a profile file.
# Environment: CORRAL_BIN (default target/release/corral), BENCH_ARGS (default
# "--workload set --sessions 8 --outstanding 16 --duration-s 5 --warmup-s 1"),
# WORK_DIR (default a new temp dir, removed at the end).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
corral="${CORRAL_BIN:-target/release/corral}"
bench_args="${BENCH_ARGS:---workload set --sessions 8 --outstanding 16 --duration-s 5 --warmup-s 1}"
rounds=2
if [[ "${1:-}" == "-r" ]]; then
    rounds="$2"
    shift 2
fi
if [[ $# -lt 1 ]]; then
    echo "usage: $0 [-r ROUNDS] PROFILE..." >&2
    exit 2
fi
[[ -x "$corral" ]] || { echo "$0: $corral is not executable (set CORRAL_BIN)" >&2; exit 2; }

work="${WORK_DIR:-$(mktemp -d)}"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    [[ -n "${WORK_DIR:-}" ]] || rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

run_one() {
    local profile="$1" round="$2"
    local file="$profile"
    [[ -f "$file" ]] || file="$here/$profile.cfg"
    [[ -f "$file" ]] || { echo "$0: no profile $profile" >&2; exit 2; }
    file="$(cd "$(dirname "$file")" && pwd)/$(basename "$file")"
    local dir="$work/$(basename "$file" .cfg)-$round"
    rm -rf "$dir"
    mkdir -p "$dir/data"
    local port
    port="$(free_port)"
    cat >"$dir/zoo.cfg" <<EOF
tickTime=2000
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
4lw.commands.whitelist=ruok,srvr
corral.profile=$file
EOF
    "$corral" server "$dir/zoo.cfg" >"$dir/server.log" 2>&1 &
    server_pid=$!
    local deadline=$((SECONDS + 30))
    until [[ "$("$corral" 4lw "127.0.0.1:$port" ruok --timeout-ms 500 2>/dev/null)" == imok ]]; do
        if ((SECONDS > deadline)) || ! kill -0 "$server_pid" 2>/dev/null; then
            echo "$0: server with $profile did not come up; its log:" >&2
            cat "$dir/server.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "== profile $(basename "$file" .cfg), round $round: $(grep -E '^corral\.commit|^corral\.pinning|^corral\.shards' "$file" | tr '\n' ' ')"
    # shellcheck disable=SC2086
    "$corral" bench --hosts "127.0.0.1:$port" $bench_args
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

for round in $(seq 1 "$rounds"); do
    for profile in "$@"; do
        run_one "$profile" "$round"
    done
done
