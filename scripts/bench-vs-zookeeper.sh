#!/usr/bin/env bash
# Corral against Apache ZooKeeper 3.8 on this machine, same run, same disk.
#
#   scripts/bench-vs-zookeeper.sh [--out DIR] [--duration-s N] [--warmup-s N]
#                                 [--workloads get,set,create,mixed] [--curve]
#                                 [--rate OPS_PER_S] [--data-dir DIR] [--rounds N]
#                                 [--cluster [--failover]] [--memory]
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
# --rounds N: runs each workload N times (Corral then ZooKeeper each time, named WORKLOAD,
# WORKLOAD-r2, ...) and adds to the summary each workload's median, lowest and highest ops/s
# and p99 ratios over the rounds. With --cluster each round starts both clusters afresh,
# one after the other (the --curve runs and --failover go with the first and the last
# round). On a shared or virtual host whose speed moves from minute to minute, one pair of
# runs can land on either side of a target; the median of paired rounds is the figure to
# quote.
#
# --cluster: instead of one standalone server per flavor, a pseudo-cluster of 3
# participants + 1 observer per flavor (the mission's zoo1.cfg ... zoo4.cfg: tickTime=2000,
# initLimit=10, syncLimit=5, a dataDir and myid per node, server.1..3 and server.4
# observer, every port on 127.0.0.1 below 32768; plus the keys above, Corral with the
# profile tuning/pseudo-cluster.cfg (corral.shards=0, corral.ioMemoryKb=512; CORRAL_SHARDS
# overrides the shard count), each ZooKeeper JVM with -Xmx$ZK_HEAP). The two
# clusters run one after the other, never together: Corral's starts, runs every workload
# and stops, then ZooKeeper's. Each is up when `srvr` shows one leader, two followers and
# one observer (60 s at most). The load generator connects to all four client ports
# (sessions spread round-robin), `corral bench --json` runs against each cluster on its
# own, and the summary pairs the two runs of each workload. Default workloads: set,get.
# --failover (with --cluster): after the workloads, on each cluster, one write to check
# it, then kill -9 of the leader and at once, until each succeeds (30 s at most): on each
# surviving node, a raw-protocol writer (connect, session, create, no reconnect pause) in a
# tight loop, and one-shot `corral cli create` on all four client ports one after another
# (with that client's reconnect pauses). Reported: the time from the kill to the end of
# the first successful write, per node, on any node, and for the all-four client.
#
# --memory (standalone): resident memory of both servers (VmRSS) when idle after start,
# after the workloads (`--workloads none` runs none), and after MEMORY_ZNODES (1000000)
# nodes of MEMORY_VALUE_BYTES (64) each were created in each server (`corral bench --keys N
# --keep`, one server at a time, RSS read once it stops moving); bytes per znode = the RSS
# growth over the load / N. For
# ZooKeeper also its live heap (`jcmd GC.run`, then `GC.heap_info`'s used) before and after
# the load: the figure least unfavourable to ZooKeeper. Written to DIR/memory.json and
# appended to the summary.
#
# Writes DIR/<workload>.json and DIR/<workload>.html (the HTML report, both servers in
# each plot) per run, DIR/<workload>-hgrm/ (HdrHistogram .hgrm files), DIR/summary.md
# (tables, ratios, links to the reports) and prints the summary. In cluster mode the
# files are per flavor: DIR/<workload>-corral.json, DIR/<workload>-zookeeper.json (and
# .html, -hgrm/), DIR/failover-<flavor>.json and .log, DIR/load.tsv (the load average
# before and after each run) and DIR/logs/<flavor>-<n>.log (the servers' logs, of the
# last round). Every run is bounded (duration + warm-up + setup); the servers are stopped
# by PID on exit, and the temporary data removed.
#
# Env: CORRAL_BIN, ZK_JAVA_CP (default Debian's jars), SESSIONS (8), OUTSTANDING (16 per
# session), VALUE_BYTES (1024), KEYS (1000), CORRAL_SHARDS (cluster mode: the profile's 0;
# standalone: the server's default), WATCHERS (100, for
# watch-fanout), MEMORY_ZNODES, MEMORY_VALUE_BYTES (--memory), ZK_HEAP (256m, cluster mode), ZK_LOG_LEVEL (WARN; INFO in cluster mode,
# where Debian's slf4j-log4j12 and log4j-1.2 jars join the default class path).

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORRAL_BIN=${CORRAL_BIN:-$ROOT/target/release/corral}
OUT=""
DURATION_S=8
WARMUP_S=2
WORKLOADS=""
CURVE=0
CLUSTER=0
FAILOVER=0
MEMORY=0
DATA_PARENT=${TMPDIR:-/tmp}

RATE=""
ROUNDS=1

usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --duration-s) DURATION_S=$2; shift 2 ;;
    --warmup-s) WARMUP_S=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --curve) CURVE=1; shift ;;
    --rate) RATE=$2; shift 2 ;;
    --data-dir) DATA_PARENT=$2; shift 2 ;;
    --cluster) CLUSTER=1; shift ;;
    --failover) FAILOVER=1; shift ;;
    --memory) MEMORY=1; shift ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "bench-vs-zookeeper.sh: unknown argument $1" >&2; usage ;;
  esac
done
if ((MEMORY && CLUSTER)); then
  echo "bench-vs-zookeeper.sh: --memory measures the standalone servers; leave out --cluster" >&2; exit 2
fi
if ! [[ $ROUNDS =~ ^[1-9][0-9]*$ ]]; then
  echo "bench-vs-zookeeper.sh: --rounds takes a whole number of rounds, 1 or more (got $ROUNDS)" >&2; exit 2
fi
if ((FAILOVER && !CLUSTER)); then
  echo "bench-vs-zookeeper.sh: --failover needs --cluster" >&2; exit 2
fi
if [[ -z $WORKLOADS ]]; then
  if ((CLUSTER)); then WORKLOADS=set,get; else WORKLOADS=get,set,create,mixed; fi
fi
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
# The --rounds table, for both summaries: rows of (workload, ops/s ratio, p99 ratio).
cat >"$WORK/rounds_table.py" <<'EOF_PY'
import statistics

def print_rounds(ratios, p99_label):
    """ratios: (name, ops/s ratio, p99 ratio or None) per run; a round's name is
    WORKLOAD-rN. Prints the median and range per workload when any ran more than once."""
    rounds = {}
    for name, ops, p99 in ratios:
        base, _, n = name.rpartition("-r")
        if not (base and n.isdigit()):
            base = name
        if ops is not None and not name.startswith(("memory", "curve-")):
            rounds.setdefault(base, []).append((ops, p99))
    if not any(len(v) > 1 for v in rounds.values()):
        return
    span = lambda xs: f"{statistics.median(xs):.2f}x ({min(xs):.2f}-{max(xs):.2f})" if xs else "-"
    print()
    print(f"| workload | rounds | ops/s Corral/ZK median (lowest-highest) | {p99_label} median (lowest-highest) |")
    print("|---|---|---|---|")
    for base, v in sorted(rounds.items()):
        print(f"| {base} | {len(v)} | {span([x for x, _ in v])} | {span([y for _, y in v if y is not None])} |")
EOF_PY
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

free_ports() { # COUNT: that many distinct free loopback ports below 32768
  python3 - "$1" <<'EOF'
import random, socket, sys
want = int(sys.argv[1])
ports = list(range(23100, 23900))
random.shuffle(ports)
got = []
for p in ports:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    got.append(p)
    if len(got) == want:
        print(" ".join(map(str, got)))
        sys.exit(0)
sys.exit("not enough free ports")
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

ZK_CP_GIVEN=${ZK_JAVA_CP:+1}
ZK_JAVA_CP=${ZK_JAVA_CP:-/etc/zookeeper/conf:/usr/share/java/zookeeper.jar}
# The bench is bounded by its own duration; the timeout is a backstop.
bench_timeout_s=$((DURATION_S * 2 + WARMUP_S * 2 + 120))
IFS=, read -r -a workload_list <<<"$WORKLOADS"

if ((CLUSTER)); then
  ZK_HEAP=${ZK_HEAP:-256m}
  # Logs of both flavors at INFO (elections, syncs, failover) unless told otherwise: with
  # Debian's log4j binding on the class path when it is installed.
  ZK_LOG_LEVEL=${ZK_LOG_LEVEL:-INFO}
  if [[ -z $ZK_CP_GIVEN ]]; then
    for jar in /usr/share/java/slf4j-log4j12.jar /usr/share/java/log4j-1.2.jar; do
      [[ -f $jar ]] && ZK_JAVA_CP+=":$jar"
    done
  fi
  FAILOVER_MAX_S=30
  mkdir -p "$OUT/logs" || exit 1
  : >"$OUT/load.tsv"

  # Cluster state of the flavor being run: its nodes' PIDs, client ports and logs.
  NODE_PIDS=()
  NODE_PORTS=()
  NODE_LOGS=()
  CONNECT=""

  forget_pid() { # PID: no longer ours to stop
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
  }

  stop_cluster() { # FLAVOR: every node by PID (TERM, then KILL after 10 s), logs kept
    local pid i
    for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${NODE_PIDS[@]}"; do
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      forget_pid "$pid"
    done
    for i in "${!NODE_LOGS[@]}"; do cp "${NODE_LOGS[$i]}" "$OUT/logs/$1-$((i + 1)).log" 2>/dev/null; done
    NODE_PIDS=()
  }

  modes() { # prints each node's srvr Mode (or "-" when it has none), one line
    local port m line=()
    for port in "${NODE_PORTS[@]}"; do
      m=$(timeout 5 "$CORRAL_BIN" 4lw "127.0.0.1:$port" srvr 2>/dev/null | sed -n 's/^Mode: //p')
      line+=("${m:--}")
    done
    echo "${line[*]}"
  }

  start_cluster() { # FLAVOR (corral | zookeeper)
    local flavor=$1 ports i dir cfg started=$SECONDS deadline m
    read -r -a ports <<<"$(free_ports 12)" || exit 1
    [[ ${#ports[@]} -eq 12 ]] || { echo "bench-vs-zookeeper.sh: no free ports" >&2; exit 1; }
    NODE_PORTS=("${ports[@]:0:4}")
    NODE_PIDS=()
    NODE_LOGS=()
    local servers=""
    for i in 1 2 3 4; do
      servers+="server.$i=127.0.0.1:${ports[$((3 + i))]}:${ports[$((7 + i))]}$([[ $i -eq 4 ]] && echo :observer)"$'\n'
    done
    for i in 1 2 3 4; do
      dir="$WORK/$flavor/node$i"
      # Every round starts from an empty data directory.
      rm -rf "$dir"
      mkdir -p "$dir/data" || exit 1
      echo "$i" >"$dir/data/myid"
      cfg="$dir/zoo$i.cfg"
      {
        common_cfg "$dir/data" "${NODE_PORTS[$((i - 1))]}"
        printf '%s' "$servers"
        if [[ $flavor == corral ]]; then
          # As an operator sets up several nodes on one host; CORRAL_SHARDS overrides.
          echo "corral.profile=$ROOT/tuning/pseudo-cluster.cfg"
          if [[ -n ${CORRAL_SHARDS:-} ]]; then echo "corral.shards=$CORRAL_SHARDS"; fi
        fi
      } >"$cfg"
      if [[ $flavor == corral ]]; then
        "$CORRAL_BIN" server "$cfg" >"$dir/server.log" 2>&1 &
      else
        java "-Xmx$ZK_HEAP" -cp "$ZK_JAVA_CP" -Dzookeeper.log.dir="$dir" \
          -Dzookeeper.root.logger="${ZK_LOG_LEVEL:-WARN}",CONSOLE \
          org.apache.zookeeper.server.quorum.QuorumPeerMain "$cfg" >"$dir/server.log" 2>&1 &
      fi
      PIDS+=($!)
      NODE_PIDS+=($!)
      NODE_LOGS+=("$dir/server.log")
    done
    CONNECT=$(printf '127.0.0.1:%s,' "${NODE_PORTS[@]}")
    CONNECT=${CONNECT%,}
    deadline=$((SECONDS + 60))
    while :; do
      m=$(modes)
      [[ $(tr ' ' '\n' <<<"$m" | sort | tr '\n' ' ') == "follower follower leader observer " ]] && break
      for i in 0 1 2 3; do
        if ! kill -0 "${NODE_PIDS[$i]}" 2>/dev/null; then
          echo "bench-vs-zookeeper.sh: $flavor node $((i + 1)) exited during startup; its log:" >&2
          tail -n 30 "${NODE_LOGS[$i]}" >&2; exit 1
        fi
      done
      if ((SECONDS >= deadline)); then
        echo "bench-vs-zookeeper.sh: $flavor cluster not formed within 60 s (modes: $m); logs under $OUT/logs" >&2
        stop_cluster "$flavor"; exit 1
      fi
      sleep 0.2
    done
    echo "$flavor cluster up in $((SECONDS - started)) s: client ports ${NODE_PORTS[*]}, modes $m"
  }

  run_cluster_bench() { # FLAVOR NAME WORKLOAD SESSIONS OUTSTANDING
    echo "== $1 $2 ($3, $4 sessions x $5 outstanding${RATE:+, open loop $RATE/s})"
    local extra=() before
    [[ -n $RATE ]] && extra+=(--rate "$RATE")
    [[ $3 == watch-fanout ]] && extra+=(--watchers "$WATCHERS")
    before=$(cut -d' ' -f1-3 /proc/loadavg)
    timeout "$bench_timeout_s" "$CORRAL_BIN" bench --hosts "$CONNECT" \
      --workload "$3" --sessions "$4" --outstanding "$5" \
      --value-bytes "$VALUE_BYTES" --keys "$KEYS" --duration-s "$DURATION_S" \
      --warmup-s "$WARMUP_S" "${extra[@]}" --html "$OUT/$2-$1.html" --hgrm "$OUT/$2-$1-hgrm" \
      --json >"$OUT/$2-$1.json" || echo "   (bench exit code $?: see $OUT/$2-$1.json)"
    printf '%s\t%s\t%s\t%s\n' "$2" "$1" "$before" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/load.tsv"
  }

  now_us() { local t=${EPOCHREALTIME/./}; echo "$((10#$t))"; }

  # One client's attempts after the kill: one-shot `corral cli create` on CONNECT until one
  # succeeds or the deadline passes (each attempt bounded too). Writes
  # $WORK/failover-LABEL.ok ("ms-after-kill attempts last-attempt-ms") on success.
  failover_loop() { # LABEL CONNECT T0_US DEADLINE_US
    local label=$1 connect=$2 t0=$3 deadline=$4 n=0 t rc end out="$WORK/attempt-$1.out"
    while (($(now_us) < deadline)); do
      n=$((n + 1))
      t=$(now_us)
      timeout 15 "$CORRAL_BIN" cli -server "$connect" -timeout 5000 create "/corral-failover-$label-$n" >"$out" 2>&1
      rc=$?
      end=$(now_us)
      printf '%s attempt %d: %d..%d ms after the kill, exit %d: %s\n' "$label" "$n" $(((t - t0) / 1000)) \
        $(((end - t0) / 1000)) "$rc" "$(head -c 300 "$out" | tr '\n' ' ')" >>"$WORK/failover-$label.log"
      if ((rc == 0)); then
        echo "$(((end - t0) / 1000)) $n $(((end - t) / 1000))" >"$WORK/failover-$label.ok"
        return
      fi
      sleep 0.02
    done
  }

  # A raw ZooKeeper-protocol writer per node (Python, no client library): each attempt
  # connects, opens a session, creates /corral-failover-probe-NODE-N and closes; any
  # failure (refused, closed, session refused, error code) ends the attempt at once and the
  # next starts 10 ms later, so no client reconnect pause is counted.
  write_probe() {
    cat >"$WORK/probe.py" <<'EOF'
import json, os, socket, struct, sys, threading, time
# argv: LEADER_PID DEADLINE_S OUT_JSON T0_FILE node=port...
# Kills the leader itself once its threads are ready, so that its own start-up is not
# counted; writes the kill time (epoch µs) to T0_FILE for the other loop.
leader_pid = int(sys.argv[1])
limit_s = float(sys.argv[2])
out_path = sys.argv[3]
t0_path = sys.argv[4]
targets = [a.split("=") for a in sys.argv[5:]]
go = threading.Event()
t0 = deadline = 0.0
def frame(b):
    return struct.pack(">i", len(b)) + b
def s_str(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b
def read_frame(sock):
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("closed by the server")
            buf += chunk
        return buf
    (n,) = struct.unpack(">i", exact(4))
    if n < 0 or n > 1 << 20:
        raise ValueError(f"frame length {n}")
    return exact(n)
def attempt(port, path):
    # Returns None on success, else why not.
    with socket.create_connection(("127.0.0.1", int(port)), timeout=2) as sock:
        sock.settimeout(2)
        sock.sendall(frame(struct.pack(">iqiqi", 0, 0, 4000, 0, 16) + bytes(16) + b"\0"))
        resp = read_frame(sock)
        _, timeout_ms, session = struct.unpack(">iiq", resp[:16])
        if timeout_ms <= 0:
            return "session refused"
        acl = struct.pack(">ii", 1, 31) + s_str("world") + s_str("anyone")
        sock.sendall(frame(struct.pack(">ii", 1, 1) + s_str(path) + struct.pack(">i", -1) + acl + struct.pack(">i", 0)))
        sock.settimeout(10)
        while True:
            xid, _, err = struct.unpack(">iqi", read_frame(sock)[:16])
            if xid == 1:
                break
        try:
            sock.sendall(frame(struct.pack(">ii", 2, -11)))
        except OSError:
            pass
        return None if err == 0 else f"error code {err}"
results, log = {}, []
last_why, last_line, repeats = {}, {}, {}
lock = threading.Lock()
def repeats_last(node):
    return last_line.get(node, "")
def loop(node, port):
    go.wait()
    n = 0
    while time.time() < deadline:
        n += 1
        start = time.time()
        try:
            why = attempt(port, f"/corral-failover-probe-{node}-{n}")
        except (OSError, EOFError, ValueError, struct.error) as e:
            why = f"{type(e).__name__}: {e}"
        end = time.time()
        line = f"{int((start - t0) * 1000)}..{int((end - t0) * 1000)} ms after the kill: {why or 'ok'}"
        with lock:
            if why is not None and why == last_why.get(node):
                repeats[node] = (n, line)  # the same failure again: logged once, with the last
            else:
                if node in repeats:
                    log.append(f"probe {node} attempts up to {repeats.pop(node)[0]}: the same, the last {repeats_last(node)}")
                log.append(f"probe {node} attempt {n}: {line}")
            last_why[node] = why
            last_line[node] = line
        if why is None:
            results[node] = {"ms": int((end - t0) * 1000), "attempts": n, "last_attempt_ms": int((end - start) * 1000)}
            return
        time.sleep(0.01)
    results[node] = None
threads = [threading.Thread(target=loop, args=(node, port)) for node, port in targets]
for t in threads:
    t.start()
t0 = time.time()
deadline = t0 + limit_s
os.kill(leader_pid, 9)
with open(t0_path + ".tmp", "w") as f:
    f.write(str(int(t0 * 1e6)))
os.rename(t0_path + ".tmp", t0_path)
go.set()
for t in threads:
    t.join()
for node, (n, line) in repeats.items():
    log.append(f"probe {node} attempts up to {n}: the same, the last {line}")
with open(out_path, "w") as f:
    json.dump(results, f)
print("\n".join(log))
EOF
  }

  # Kill -9 the leader, then at once: the probe on every surviving node, and one-shot
  # `corral cli` writes on all four client ports (the mission's client, which pauses up to
  # 1 s between reconnects as ZooKeeper's Java client does).
  failover() { # FLAVOR
    local flavor=$1 m i leader=-1 t0 log probe_pid all_pid probe_args=() deadline
    log="$OUT/failover-$flavor.log"
    read -r -a m <<<"$(modes)"
    for i in 0 1 2 3; do [[ ${m[$i]} == leader ]] && leader=$i; done
    : >"$log"
    rm -f "$WORK"/failover-*.ok "$WORK"/failover-*.log "$WORK/probe.json" "$WORK/t0"
    if ((leader < 0)); then
      echo "no leader before the kill (modes ${m[*]})" | tee -a "$log"
      echo '{"error":"no leader before the kill"}' >"$OUT/failover-$flavor.json"; return
    fi
    if ! timeout 30 "$CORRAL_BIN" cli -server "$CONNECT" -timeout 5000 create /corral-failover-0 >>"$log" 2>&1; then
      echo "the write before the kill failed" | tee -a "$log"
      echo '{"error":"the write before the kill failed"}' >"$OUT/failover-$flavor.json"; return
    fi
    write_probe
    for i in 0 1 2 3; do
      ((i == leader)) || probe_args+=("$((i + 1))=${NODE_PORTS[$i]}")
    done
    echo "== $flavor failover: kill -9 of node $((leader + 1)) (the leader, PID ${NODE_PIDS[$leader]})"
    # The probe kills the leader once it is ready and writes the time of the kill.
    python3 "$WORK/probe.py" "${NODE_PIDS[$leader]}" "$FAILOVER_MAX_S" "$WORK/probe.json" "$WORK/t0" \
      "${probe_args[@]}" >>"$log" 2>&1 &
    probe_pid=$!
    PIDS+=("$probe_pid")
    deadline=$((SECONDS + 10))
    # (stderr to the log: bash's "Killed" notice for the leader comes out while this waits)
    until [[ -s $WORK/t0 ]] || ! kill -0 "$probe_pid" 2>/dev/null || ((SECONDS >= deadline)); do
      sleep 0.005
    done 2>>"$log"
    if [[ ! -s $WORK/t0 ]]; then
      echo "   the probe did not kill the leader (see $log); killing it here, no timing"
      kill -KILL "${NODE_PIDS[$leader]}" "$probe_pid" 2>/dev/null
      wait "${NODE_PIDS[$leader]}" "$probe_pid" 2>>"$log"
      forget_pid "$probe_pid"
      echo '{"error":"the probe did not start"}' >"$OUT/failover-$flavor.json"; return
    fi
    t0=$(<"$WORK/t0")
    failover_loop all "$CONNECT" "$t0" $((t0 + FAILOVER_MAX_S * 1000000)) 2>>"$log" &
    all_pid=$!
    PIDS+=("$all_pid")
    wait "${NODE_PIDS[$leader]}" 2>>"$log"
    for i in "$probe_pid" "$all_pid"; do
      wait "$i"
      forget_pid "$i"
    done
    cat "$WORK"/failover-*.log >>"$log" 2>/dev/null
    read -r -a m <<<"$(modes)"
    python3 - "$WORK" "$((leader + 1))" "$FAILOVER_MAX_S" "${m[*]}" >"$OUT/failover-$flavor.json" <<'EOF'
import json, os, sys
work, killed, limit_s, modes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
try:
    with open(os.path.join(work, "probe.json")) as f:
        nodes = json.load(f)
except (OSError, ValueError):
    nodes = {}
try:
    with open(os.path.join(work, "failover-all.ok")) as f:
        ms, attempts, last = map(int, f.read().split())
    all_four = {"ms": ms, "attempts": attempts, "last_attempt_ms": last}
except (OSError, ValueError):
    all_four = None
times = [r["ms"] for r in nodes.values() if r]
print(json.dumps({"killed_node": killed, "limit_s": limit_s,
                  "first_write_ms": min(times) if times else None,
                  "per_node": nodes, "all_four": all_four, "modes_after": modes}))
EOF
    python3 - "$OUT/failover-$flavor.json" <<'EOF'
import json, sys
f = json.load(open(sys.argv[1]))
per = ", ".join(f"node {n}: {r['ms'] if r else 'none'}" for n, r in sorted(f["per_node"].items()))
a = f["all_four"]
print(f"   first write {f['first_write_ms']} ms after the kill (per node, ms: {per}); "
      f"corral cli on all four: {a['ms'] if a else 'none'} ms; modes now {f['modes_after']}")
EOF
  }

  echo "Cluster mode: 3 participants + 1 observer per flavor, one flavor at a time; data under $WORK, results in $OUT"
  for round in $(seq 1 "$ROUNDS"); do
    for flavor in corral zookeeper; do
      start_cluster "$flavor"
      for w in "${workload_list[@]}"; do
        name=$w
        ((round > 1)) && name=$w-r$round
        if [[ $w == watch-fanout ]]; then
          run_cluster_bench "$flavor" "$name" "$w" 1 1
        else
          run_cluster_bench "$flavor" "$name" "$w" "$SESSIONS" "$OUTSTANDING"
        fi
      done
      if [[ $CURVE -eq 1 ]] && ((round == 1)); then
        for total in 1 2 4 8 16 32 64 128 256; do
          sessions=$((total < 8 ? total : 8))
          RATE="" run_cluster_bench "$flavor" "curve-set-$total" set "$sessions" $((total / sessions))
        done
      fi
      ((FAILOVER && round == ROUNDS)) && failover "$flavor"
      stop_cluster "$flavor"
    done
  done

  python3 - "$OUT" "$ZK_HEAP" "$WORK" <<'EOF' | tee "$OUT/summary.md"
import json, os, sys
out, zk_heap = sys.argv[1], sys.argv[2]
sys.path.insert(0, sys.argv[3])
from rounds_table import print_rounds
flavors = ("corral", "zookeeper")
def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
names = set()
for name in os.listdir(out):
    for fl in flavors:
        if name.endswith(f"-{fl}.json") and not name.startswith("failover-"):
            names.add(name[: -len(f"-{fl}.json")])
loads = {}
try:
    with open(os.path.join(out, "load.tsv")) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 4:
                loads[(parts[0], parts[1])] = (parts[2], parts[3])
except OSError:
    pass
def key(name):
    if name.startswith("curve-set-"):
        return (1, int(name.rsplit("-", 1)[1]), "")
    return (0, 0, name)
def result(r):
    res = (r or {}).get("results") or []
    return res[0] if len(res) == 1 else None
def fmt(x):
    return "-" if x is None else f"{x:.2f}x"
def div(a, b):
    return a / b if a is not None and b else None
print("Cluster mode: 3 participants + 1 observer per flavor (tickTime=2000, forceSync=yes),")
shards = os.environ.get('CORRAL_SHARDS')
print(f"Corral with tuning/pseudo-cluster.cfg{f' and corral.shards={shards}' if shards else ''}, ZooKeeper -Xmx{zk_heap} per JVM; one cluster at a time, clients on all four ports.")
print()
print("| run | outstanding | Corral ops/s | Corral p50 µs | Corral p99 µs | Corral p99.9 µs "
      "| ZooKeeper ops/s | ZooKeeper p50 µs | ZooKeeper p99 µs | ZooKeeper p99.9 µs "
      "| ops/s Corral/ZK | p50 ZK/Corral | p99 ZK/Corral | p99.9 ZK/Corral | reports |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
notes = []
round_ratios = []
for name in sorted(names, key=key):
    runs = {fl: load(os.path.join(out, f"{name}-{fl}.json")) for fl in flavors}
    c, z = result(runs["corral"]), result(runs["zookeeper"])
    any_run = runs["corral"] or runs["zookeeper"] or {}
    total = (any_run.get("sessions") or 0) * (any_run.get("outstanding") or 0)
    reports = " ".join(f"[{fl}]({name}-{fl}.html)" for fl in flavors
                       if os.path.exists(os.path.join(out, f"{name}-{fl}.html"))) or "-"
    def cols(r):
        if r is None:
            return ["(incomplete run)", "-", "-", "-"]
        l = r["latency_us"]
        return [f"{r['ops_per_s']:.0f}", str(l["p50"]), str(l["p99"]), str(l["p99.9"])]
    def lat(r, q):
        return None if r is None else r["latency_us"][q]
    ratios = [
        fmt(div(c and c["ops_per_s"], z and z["ops_per_s"])),
        fmt(div(lat(z, "p50"), lat(c, "p50"))),
        fmt(div(lat(z, "p99"), lat(c, "p99"))),
        fmt(div(lat(z, "p99.9"), lat(c, "p99.9"))),
    ]
    print("| " + " | ".join([name, str(total)] + cols(c) + cols(z) + ratios + [reports]) + " |")
    round_ratios.append((name, div(c and c["ops_per_s"], z and z["ops_per_s"]),
                         div(lat(z, "p99"), lat(c, "p99"))))
    for fl, r in (("corral", c), ("zookeeper", z)):
        if r is None:
            continue
        errs = r.get("errors") or {}
        if errs or r.get("failures"):
            notes.append(f"- {name} {fl}: errors {errs}, failures {r.get('failures')}")
        if (name, fl) in loads:
            b, a = loads[(name, fl)]
            notes.append(f"- {name} {fl}: load average {b} before, {a} after")
print_rounds(round_ratios, "p99 ZK/Corral")
fo = {fl: load(os.path.join(out, f"failover-{fl}.json")) for fl in flavors}
if any(fo.values()):
    print()
    print("| failover | killed leader | kill → first write on any node, ms | per node, ms (attempts) | corral cli on all four, ms (attempts) | modes after |")
    print("|---|---|---|---|---|---|")
    def cell(r):
        return "none" if r is None else f"{r['ms']} ({r['attempts']})"
    for fl in flavors:
        f = fo[fl]
        if f is None:
            continue
        if "error" in f:
            print(f"| {fl} | ({f['error']}) | - | - | - | - |")
            continue
        first = f.get("first_write_ms")
        first = f"none within {f.get('limit_s')} s" if first is None else str(first)
        per = ", ".join(f"{n}: {cell(r)}" for n, r in sorted((f.get("per_node") or {}).items()))
        print(f"| {fl} | node {f.get('killed_node')} | {first} | {per} | {cell(f.get('all_four'))} | {f.get('modes_after')} |")
    print()
    print("Times run from the kill -9 of the leader to the end of the first successful create. Per node:")
    print("a raw-protocol writer on each surviving node alone (connect, new session, create; a failed")
    print("attempt ends at once and the next starts 10 ms later), in parallel; the first of them is the")
    print("cluster's. All four: one-shot `corral cli create` with all four client ports, which pauses up")
    print("to 1 s between reconnects as ZooKeeper's Java client does. Modes after: `srvr` then (- : not serving).")
if notes:
    print()
    print("\n".join(notes))
EOF
  exit 0
fi

read -r ZK_PORT CORRAL_PORT <<<"$(free_ports 2)" || exit 1
[[ -n $CORRAL_PORT ]] || exit 1
mkdir -p "$WORK/zk/data" "$WORK/corral/data"
common_cfg "$WORK/zk/data" "$ZK_PORT" >"$WORK/zk/zoo.cfg"
{
  common_cfg "$WORK/corral/data" "$CORRAL_PORT"
  # Unset: the server's default (0, the sessions on the ZAB executor, with 2 cores or
  # fewer; else cores - 1).
  if [[ -n ${CORRAL_SHARDS:-} ]]; then echo "corral.shards=$CORRAL_SHARDS"; fi
} >"$WORK/corral/zoo.cfg"

java -cp "$ZK_JAVA_CP" -Dzookeeper.log.dir="$WORK/zk" -Dzookeeper.root.logger="${ZK_LOG_LEVEL:-WARN}",CONSOLE \
  org.apache.zookeeper.server.quorum.QuorumPeerMain "$WORK/zk/zoo.cfg" >"$WORK/zk/server.log" 2>&1 &
ZK_PID=$!
PIDS+=("$ZK_PID")
wait_imok "$ZK_PORT" "$ZK_PID" ZooKeeper "$WORK/zk/server.log"
"$CORRAL_BIN" server "$WORK/corral/zoo.cfg" >"$WORK/corral/server.log" 2>&1 &
CORRAL_PID=$!
PIDS+=("$CORRAL_PID")
wait_imok "$CORRAL_PORT" "$CORRAL_PID" Corral "$WORK/corral/server.log"

rss_kb() { # PID: its resident set, KiB
  sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/status" 2>/dev/null
}
settled_rss_kb() { # PID: its resident set once it stops moving (a snapshot of the new
  # nodes may still be in progress right after the load): two reads 2 s apart within 1 %,
  # 60 s at most
  local last now deadline=$((SECONDS + 60))
  last=$(rss_kb "$1")
  while ((SECONDS < deadline)); do
    sleep 2
    now=$(rss_kb "$1")
    [[ -n $now && -n $last ]] || break
    (((now > last ? now - last : last - now) * 100 <= last)) && break
    last=$now
  done
  rss_kb "$1"
}
zk_live_heap_kb() { # ZooKeeper's heap in use right after a full collection, KiB
  command -v jcmd >/dev/null || return 0
  timeout 60 jcmd "$ZK_PID" GC.run >/dev/null 2>&1
  timeout 60 jcmd "$ZK_PID" GC.heap_info 2>/dev/null | sed -n 's/.*heap.*total [0-9]*K, used \([0-9]*\)K.*/\1/p' | head -n 1
}
if ((MEMORY)); then
  # Idle: both started and answered ruok; give the JVM's start-up a moment to settle.
  sleep 2
  MEM_IDLE="$(rss_kb "$CORRAL_PID") $(rss_kb "$ZK_PID")"
fi
echo "ZooKeeper on 127.0.0.1:$ZK_PORT, Corral on 127.0.0.1:$CORRAL_PORT, data under $WORK, results in $OUT"

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

for round in $(seq 1 "$ROUNDS"); do
  for w in "${workload_list[@]}"; do
    [[ $w == none ]] && continue
    name=$w
    ((round > 1)) && name=$w-r$round
    if [[ $w == watch-fanout ]]; then
      # One writer, one write in flight: each write can reach every watcher.
      run_bench "$name" "$w" 1 1
    else
      run_bench "$name" "$w" "$SESSIONS" "$OUTSTANDING"
    fi
  done
done
if [[ $CURVE -eq 1 ]]; then
  for total in 1 2 4 8 16 32 64 128 256; do
    sessions=$((total < 8 ? total : 8))
    # The curve is about outstanding writes: always closed loop.
    RATE="" run_bench "curve-set-$total" set "$sessions" $((total / sessions))
  done
fi

if ((MEMORY)); then
  MEMORY_ZNODES=${MEMORY_ZNODES:-1000000}
  MEMORY_VALUE_BYTES=${MEMORY_VALUE_BYTES:-64}
  MEM_AFTER_RUNS="$(rss_kb "$CORRAL_PID") $(rss_kb "$ZK_PID")"
  zk_heap_before=$(zk_live_heap_kb)
  mem_load() { # NAME PORT PID: creates the nodes, prints "rss_before rss_after"
    local before after
    before=$(rss_kb "$3")
    echo "== memory: $MEMORY_ZNODES znodes of $MEMORY_VALUE_BYTES bytes into $1" >&2
    timeout $((MEMORY_ZNODES / 500 + 300)) "$CORRAL_BIN" bench --hosts "127.0.0.1:$2" --workload get \
      --sessions 1 --outstanding 1 --keys "$MEMORY_ZNODES" --value-bytes "$MEMORY_VALUE_BYTES" \
      --duration-s 1 --warmup-s 0 --keep --json >"$OUT/memory-load-$1.json" ||
      echo "   (bench exit code $?: see $OUT/memory-load-$1.json)" >&2
    after=$(settled_rss_kb "$3")
    echo "$before $after"
  }
  read -r c_before c_after <<<"$(mem_load corral "$CORRAL_PORT" "$CORRAL_PID")"
  read -r z_before z_after <<<"$(mem_load zookeeper "$ZK_PORT" "$ZK_PID")"
  zk_heap_after=$(zk_live_heap_kb)
  nodes_corral=$("$CORRAL_BIN" 4lw "127.0.0.1:$CORRAL_PORT" mntr 2>/dev/null | sed -n 's/^zk_znode_count[[:space:]]*//p')
  nodes_zk=$("$CORRAL_BIN" 4lw "127.0.0.1:$ZK_PORT" mntr 2>/dev/null | sed -n 's/^zk_znode_count[[:space:]]*//p')
  # shellcheck disable=SC2086 # MEM_IDLE and MEM_AFTER_RUNS are two numbers each
  python3 - "$OUT/memory.json" "$MEMORY_ZNODES" "$MEMORY_VALUE_BYTES" $MEM_IDLE $MEM_AFTER_RUNS \
    "$c_before" "$c_after" "$z_before" "$z_after" "${zk_heap_before:--1}" "${zk_heap_after:--1}" \
    "${nodes_corral:--1}" "${nodes_zk:--1}" <<'EOF'
import json, sys
a = sys.argv
n, value = int(a[2]), int(a[3])
k = [int(x) if x.lstrip("-").isdigit() else -1 for x in a[4:]]
(c_idle, z_idle, c_runs, z_runs, c_b, c_a, z_b, z_a, zh_b, zh_a, nodes_c, nodes_z) = k
per = lambda b, e: round((e - b) * 1024 / n) if b >= 0 and e >= 0 else None
doc = {
    "znodes_loaded": n, "value_bytes": value,
    "znode_count_after": {"corral": nodes_c, "zookeeper": nodes_z},
    "rss_kib": {
        "idle": {"corral": c_idle, "zookeeper": z_idle},
        "after_runs": {"corral": c_runs, "zookeeper": z_runs},
        "before_load": {"corral": c_b, "zookeeper": z_b},
        "after_load": {"corral": c_a, "zookeeper": z_a},
    },
    "zookeeper_live_heap_kib": {"before_load": zh_b, "after_load": zh_a},
    "bytes_per_znode": {
        "corral_rss": per(c_b, c_a),
        "zookeeper_rss": per(z_b, z_a),
        "zookeeper_live_heap": per(zh_b, zh_a) if zh_b > 0 else None,
    },
}
json.dump(doc, open(a[1], "w"), indent=1)
EOF
fi

python3 - "$OUT" "$WORK" <<'EOF' | tee "$OUT/summary.md"
import json, os, sys
out = sys.argv[1]
sys.path.insert(0, sys.argv[2])
from rounds_table import print_rounds
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
    if not name.startswith("memory"):
        print(row(name, r))
# --rounds: the paired ratios of each workload's rounds (WORKLOAD, WORKLOAD-r2, ...).
print_rounds([(name, (r.get("ratio") or {}).get("ops_per_s"), (r.get("ratio") or {}).get("p99"))
              for name, r in runs], "p99 Corral/ZK")
try:
    with open(os.path.join(out, "memory.json")) as f:
        m = json.load(f)
except (OSError, ValueError):
    m = None
if m:
    rss, per = m["rss_kib"], m["bytes_per_znode"]
    def ratio(c, z):
        return f"{z / c:.1f}x" if c and z and c > 0 and z > 0 else "-"
    mib = lambda kib: "-" if kib is None or kib < 0 else f"{kib / 1024:.1f}"
    print()
    print(f"Memory (VmRSS, MiB; {m['znodes_loaded']} znodes of {m['value_bytes']} bytes loaded into each server):")
    print()
    print("| when | Corral | ZooKeeper | ZooKeeper / Corral |")
    print("|---|---|---|---|")
    for when, label in (("idle", "idle after start"), ("after_runs", "after the workloads"), ("after_load", "with the znodes")):
        c, z = rss[when]["corral"], rss[when]["zookeeper"]
        print(f"| {label} | {mib(c)} | {mib(z)} | {ratio(c, z)} |")
    print()
    zk = [x for x in (per["zookeeper_rss"], per.get("zookeeper_live_heap")) if x]
    print(f"Bytes per znode (growth over the load / znodes): Corral RSS {per['corral_rss']}, "
          f"ZooKeeper RSS {per['zookeeper_rss']}, ZooKeeper live heap after a full GC "
          f"{per.get('zookeeper_live_heap') or '-'}; ZooKeeper's smaller figure / Corral's: "
          f"{ratio(per['corral_rss'], min(zk) if zk else None)}.")
EOF
