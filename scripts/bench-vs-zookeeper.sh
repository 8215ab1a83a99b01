#!/usr/bin/env bash
# Corral against Apache ZooKeeper 3.8 on this machine, same run, same disk.
#
#   scripts/bench-vs-zookeeper.sh [--out DIR] [--duration-s N] [--warmup-s N]
#                                 [--workloads get,set,create,mixed] [--curve]
#                                 [--rate OPS_PER_S] [--data-dir DIR]
#
# Starts one standalone Apache ZooKeeper (Debian package `zookeeper`) and one standalone
# Corral (target/release/corral, or $CORRAL_BIN) with equivalent configs: forceSync=yes,
# the same snapCount and preAllocSize, data on the same filesystem (--data-dir, default a
# temporary directory under $TMPDIR), loopback ports picked free. Then, for each workload,
# `corral bench --hosts CORRAL --compare ZOOKEEPER --json` (Corral first, then ZooKeeper,
# same parameters), and with --curve the group-commit curve: setData throughput and
# latency at 1, 2, 4, ..., 256 outstanding writes in total, on both servers.
# Workloads: any of `corral bench --workload` (get, set, create, mixed, exists, multi,
# ephemeral-churn, watch-fanout). --rate runs them open loop at that many ops/s (writes/s
# for watch-fanout) instead of closed loop.
#
# Writes DIR/<workload>.json and DIR/<workload>.html (the HTML report, both servers in
# each plot) per run, DIR/<workload>-hgrm/ (HdrHistogram .hgrm files), DIR/summary.md
# (tables, ratios, links to the reports) and prints the summary. Every run is bounded
# (duration + warm-up + setup); both servers are stopped by PID on exit, and the
# temporary data removed.
#
# Env: CORRAL_BIN, ZK_JAVA_CP (default Debian's jars), SESSIONS (8), OUTSTANDING (16 per
# session), VALUE_BYTES (1024), KEYS (1000), CORRAL_SHARDS (1), WATCHERS (100, for
# watch-fanout).

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORRAL_BIN=${CORRAL_BIN:-$ROOT/target/release/corral}
OUT=""
DURATION_S=8
WARMUP_S=2
WORKLOADS=get,set,create,mixed
CURVE=0
DATA_PARENT=${TMPDIR:-/tmp}

RATE=""

usage() { sed -n '2,28p' "$0" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --duration-s) DURATION_S=$2; shift 2 ;;
    --warmup-s) WARMUP_S=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --curve) CURVE=1; shift ;;
    --rate) RATE=$2; shift 2 ;;
    --data-dir) DATA_PARENT=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "bench-vs-zookeeper.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ -x $CORRAL_BIN ]] || { echo "bench-vs-zookeeper.sh: $CORRAL_BIN not found (cargo build --release)" >&2; exit 1; }
command -v java >/dev/null || { echo "bench-vs-zookeeper.sh: java not found (apt-get install zookeeper)" >&2; exit 1; }
[[ -f /usr/share/java/zookeeper.jar ]] || { echo "bench-vs-zookeeper.sh: /usr/share/java/zookeeper.jar not found (apt-get install zookeeper)" >&2; exit 1; }
OUT=${OUT:-$ROOT/target/bench-vs-zookeeper/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" || exit 1

SESSIONS=${SESSIONS:-8}
OUTSTANDING=${OUTSTANDING:-16}
VALUE_BYTES=${VALUE_BYTES:-1024}
KEYS=${KEYS:-1000}
WATCHERS=${WATCHERS:-100}

WORK=$(mktemp -d "$DATA_PARENT/corral-vs-zk.XXXXXX") || exit 1
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 - "$@" <<'EOF'
import random, socket, sys
taken = {int(p) for p in sys.argv[1:]}
ports = [p for p in range(23100, 23900) if p not in taken]
random.shuffle(ports)
for p in ports:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    sys.exit(0)
sys.exit("no free port")
EOF
}

wait_imok() { # PORT PID NAME LOG
  local deadline=$((SECONDS + 60))
  until [[ $("$CORRAL_BIN" 4lw "127.0.0.1:$1" ruok 2>/dev/null) == imok ]]; do
    if ! kill -0 "$2" 2>/dev/null; then
      echo "bench-vs-zookeeper.sh: $3 exited during startup; its log:" >&2; tail -n 30 "$4" >&2; exit 1
    fi
    if ((SECONDS >= deadline)); then
      echo "bench-vs-zookeeper.sh: $3 did not answer ruok within 60 s; its log:" >&2; tail -n 30 "$4" >&2; exit 1
    fi
    sleep 0.2
  done
}

common_cfg() { # DATADIR PORT
  cat <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$1
clientPort=$2
clientPortAddress=127.0.0.1
maxClientCnxns=0
forceSync=yes
snapCount=100000
preAllocSize=65536
admin.enableServer=false
4lw.commands.whitelist=*
EOF
}

ZK_PORT=$(free_port) || exit 1
CORRAL_PORT=$(free_port "$ZK_PORT") || exit 1
mkdir -p "$WORK/zk/data" "$WORK/corral/data"
common_cfg "$WORK/zk/data" "$ZK_PORT" >"$WORK/zk/zoo.cfg"
{ common_cfg "$WORK/corral/data" "$CORRAL_PORT"; echo "corral.shards=${CORRAL_SHARDS:-1}"; } >"$WORK/corral/zoo.cfg"

ZK_JAVA_CP=${ZK_JAVA_CP:-/etc/zookeeper/conf:/usr/share/java/zookeeper.jar}
java -cp "$ZK_JAVA_CP" -Dzookeeper.log.dir="$WORK/zk" -Dzookeeper.root.logger=WARN,CONSOLE \
  org.apache.zookeeper.server.quorum.QuorumPeerMain "$WORK/zk/zoo.cfg" >"$WORK/zk/server.log" 2>&1 &
PIDS+=($!)
wait_imok "$ZK_PORT" "${PIDS[-1]}" ZooKeeper "$WORK/zk/server.log"
"$CORRAL_BIN" server "$WORK/corral/zoo.cfg" >"$WORK/corral/server.log" 2>&1 &
PIDS+=($!)
wait_imok "$CORRAL_PORT" "${PIDS[-1]}" Corral "$WORK/corral/server.log"
echo "ZooKeeper on 127.0.0.1:$ZK_PORT, Corral on 127.0.0.1:$CORRAL_PORT, data under $WORK, results in $OUT"

# The bench is bounded by its own duration; the timeout is a backstop.
bench_timeout_s=$((DURATION_S * 2 + WARMUP_S * 2 + 120))
run_bench() { # NAME WORKLOAD SESSIONS OUTSTANDING
  echo "== $1 ($2, $3 sessions x $4 outstanding${RATE:+, open loop $RATE/s})"
  local extra=()
  [[ -n $RATE ]] && extra+=(--rate "$RATE")
  [[ $2 == watch-fanout ]] && extra+=(--watchers "$WATCHERS")
  timeout "$bench_timeout_s" "$CORRAL_BIN" bench --hosts "127.0.0.1:$CORRAL_PORT" \
    --compare "127.0.0.1:$ZK_PORT" --workload "$2" --sessions "$3" --outstanding "$4" \
    --value-bytes "$VALUE_BYTES" --keys "$KEYS" --duration-s "$DURATION_S" \
    --warmup-s "$WARMUP_S" "${extra[@]}" --html "$OUT/$1.html" --hgrm "$OUT/$1-hgrm" \
    --json >"$OUT/$1.json" || echo "   (bench exit code $?: see $OUT/$1.json)"
}

IFS=, read -r -a workload_list <<<"$WORKLOADS"
for w in "${workload_list[@]}"; do
  if [[ $w == watch-fanout ]]; then
    # One writer, one write in flight: each write can reach every watcher.
    run_bench "$w" "$w" 1 1
  else
    run_bench "$w" "$w" "$SESSIONS" "$OUTSTANDING"
  fi
done
if [[ $CURVE -eq 1 ]]; then
  for total in 1 2 4 8 16 32 64 128 256; do
    sessions=$((total < 8 ? total : 8))
    # The curve is about outstanding writes: always closed loop.
    RATE="" run_bench "curve-set-$total" set "$sessions" $((total / sessions))
  done
fi

python3 - "$OUT" <<'EOF' | tee "$OUT/summary.md"
import json, os, sys
out = sys.argv[1]
runs = []
for name in sorted(os.listdir(out)):
    if not name.endswith(".json"):
        continue
    try:
        with open(os.path.join(out, name)) as f:
            runs.append((name[:-5], json.load(f)))
    except (OSError, ValueError) as e:
        print(f"{name}: unreadable ({e})")
def row(name, r):
    res = r.get("results", [])
    if len(res) != 2:
        return f"| {name} | (incomplete run) |" + (f" [html]({name}.html) |" if os.path.exists(os.path.join(out, name + ".html")) else "")
    c, z = res
    ratio = r.get("ratio") or {}
    fmt = lambda x: "-" if x is None else f"{x:.2f}"
    total = r["sessions"] * r["outstanding"]
    report = f"[html]({name}.html)" if os.path.exists(os.path.join(out, name + ".html")) else "-"
    return (f"| {name} | {total} | {c['ops_per_s']:.0f} | {c['latency_us']['p50']} | {c['latency_us']['p99']} "
            f"| {z['ops_per_s']:.0f} | {z['latency_us']['p50']} | {z['latency_us']['p99']} "
            f"| {fmt(ratio.get('ops_per_s'))}x | {fmt(ratio.get('p99'))}x | {report} |")
def key(item):
    name = item[0]
    if name.startswith("curve-set-"):
        return (1, int(name.rsplit("-", 1)[1]))
    return (0, name)
print("| run | outstanding | Corral ops/s | Corral p50 µs | Corral p99 µs | ZooKeeper ops/s | ZooKeeper p50 µs | ZooKeeper p99 µs | ops/s ratio | p99 ratio | report |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for name, r in sorted(runs, key=key):
    print(row(name, r))
EOF
