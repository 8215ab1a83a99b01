#!/usr/bin/env bash
# Runs the compat suites against a fresh server of one flavor.
#
#   tests/compat/run.sh zookeeper   Apache ZooKeeper 3.8 from Debian's packages
#   tests/compat/run.sh corral      $CORRAL_BIN (default target/release/corral)
#
# Starts the server on a free loopback port (22100-22199 unless ZK_PORT is
# set) with a temporary dataDir, waits (bounded) for `ruok` -> `imok`, runs
#   1. pytest tests/compat (test_kazoo.py, test_wire.py)
#   2. zkcli_golden.py check with Apache ZooKeeper's Java zkCli.sh
#   3. cli_mt.sh with Apache ZooKeeper's C client shell
#   4. every client suite tests/clients/<name>/run.sh (see tests/clients/README.md)
# stops the server by its PID and prints "N passed, M failed".
# Exits non-zero if anything failed or if no check ran.
#
# Options: --suite pytest|zkcli|cli_mt|corral_cli|<client suite> (repeatable;
#          default all of them);
#          anything after -- goes to pytest (e.g. -- -k watch).
# Env: PYTHON (default .venv/bin/python if present, else python3), CORRAL_BIN,
#      ZK_PORT, ZK_BIN_DIR (/usr/share/zookeeper/bin), ZK_JAVA_CP,
#      SERVER_JVMFLAGS / JVMFLAGS (added to the ZooKeeper JVM's flags).

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

usage() { echo "usage: $0 zookeeper|corral [--suite pytest|zkcli|cli_mt]... [-- pytest args]" >&2; exit 2; }

[[ $# -ge 1 ]] || usage
FLAVOR=$1
shift
case $FLAVOR in zookeeper|corral) ;; *) usage ;; esac

SUITES=()
PYTEST_ARGS=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --suite) [[ $# -ge 2 ]] || usage; SUITES+=("$2"); shift 2 ;;
    --) shift; PYTEST_ARGS=("$@"); break ;;
    *) usage ;;
  esac
done
if [[ ${#SUITES[@]} -eq 0 ]]; then
  SUITES=(pytest zkcli cli_mt)
  # Corral's own zkCli must print what the Java one prints: same golden files.
  [[ $FLAVOR == corral ]] && SUITES+=(corral_cli)
  # Client suites written against other clients: one directory each.
  for dir in "$ROOT"/tests/clients/*/; do
    [[ -x $dir/run.sh ]] && SUITES+=("$(basename "$dir")")
  done
fi

if [[ -z ${PYTHON:-} ]]; then
  if [[ -x $ROOT/.venv/bin/python ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
ZK_BIN_DIR=${ZK_BIN_DIR:-/usr/share/zookeeper/bin}
CORRAL_BIN=${CORRAL_BIN:-$ROOT/target/release/corral}
SERVER_START_TIMEOUT_S=${SERVER_START_TIMEOUT_S:-60}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/corral-compat-$FLAVOR.XXXXXX")
SERVER_PID=""

stop_server() {
  [[ -n $SERVER_PID ]] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null
  fi
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
}

cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free port: bind-test each candidate on 127.0.0.1.
pick_port() {
  "$PYTHON" - <<'EOF'
import random, socket, sys
ports = list(range(22100, 22200))
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
sys.exit("no free port in 22100-22199")
EOF
}

PORT=${ZK_PORT:-$(pick_port)} || { echo "run.sh: no free port"; exit 1; }
export ZK_HOSTS="127.0.0.1:$PORT"
export ZK_FLAVOR=$FLAVOR
mkdir -p "$WORK/data" "$WORK/log"

# One zoo.cfg for both flavors. Keys Java does not know become
# zookeeper.<key> system properties (enforceQuota, extendedTypesEnabled);
# the JVM-only switches are passed as -D flags below as well.
cat > "$WORK/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$WORK/data
clientPort=$PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=*
extendedTypesEnabled=true
enforceQuota=true
znode.container.checkIntervalMs=1000
EOF

SERVER_LOG=$WORK/log/server.log
case $FLAVOR in
  zookeeper)
    if [[ -z ${ZK_JAVA_CP:-} ]]; then
      ZK_JAVA_CP=/etc/zookeeper/conf:/usr/share/java/zookeeper.jar
      # A log4j binding, when installed, turns the server's log on.
      for jar in /usr/share/java/slf4j-log4j12.jar /usr/share/java/log4j-1.2.jar; do
        [[ -f $jar ]] && ZK_JAVA_CP+=":$jar"
      done
    fi
    SERVER_JVMFLAGS="-Dzookeeper.extendedTypesEnabled=true -Dznode.container.checkIntervalMs=1000 -Dzookeeper.enforceQuota=true ${SERVER_JVMFLAGS:-}"
    command -v java >/dev/null || { echo "run.sh: java not found (apt-get install zookeeper)"; exit 1; }
    # shellcheck disable=SC2086  # flag lists are meant to split
    java -cp "$ZK_JAVA_CP" -Dzookeeper.log.dir="$WORK/log" -Dzookeeper.root.logger=INFO,CONSOLE \
      $SERVER_JVMFLAGS ${JVMFLAGS:-} \
      org.apache.zookeeper.server.quorum.QuorumPeerMain "$WORK/zoo.cfg" >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    ;;
  corral)
    echo "corral.shards=2" >> "$WORK/zoo.cfg"
    # Corral also serves the admin server and the Prometheus endpoint (test_admin_metrics.py);
    # Debian's ZooKeeper has neither (no Jetty admin server, no Prometheus provider jar).
    ZK_ADMIN_PORT=$PORT; ZK_METRICS_PORT=$PORT
    while [[ $ZK_ADMIN_PORT == "$PORT" ]]; do ZK_ADMIN_PORT=$(pick_port) || exit 1; done
    while [[ $ZK_METRICS_PORT == "$PORT" || $ZK_METRICS_PORT == "$ZK_ADMIN_PORT" ]]; do ZK_METRICS_PORT=$(pick_port) || exit 1; done
    export ZK_ADMIN_PORT ZK_METRICS_PORT
    printf '%s\n' admin.enableServer=true admin.serverAddress=127.0.0.1 "admin.serverPort=$ZK_ADMIN_PORT" \
      metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider \
      metricsProvider.httpHost=127.0.0.1 "metricsProvider.httpPort=$ZK_METRICS_PORT" >> "$WORK/zoo.cfg"
    [[ -x $CORRAL_BIN ]] || { echo "run.sh: $CORRAL_BIN not found (cargo build --release)"; echo "$FLAVOR: 0 passed, 1 failed"; exit 1; }
    "$CORRAL_BIN" server "$WORK/zoo.cfg" >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    ;;
esac
echo "run.sh: $FLAVOR server pid $SERVER_PID on $ZK_HOSTS"

ruok() {
  "$PYTHON" - "$PORT" <<'EOF'
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
        s.sendall(b"ruok")
        s.settimeout(2)
        sys.exit(0 if s.recv(16) == b"imok" else 1)
except OSError:
    sys.exit(1)
EOF
}

deadline=$((SECONDS + SERVER_START_TIMEOUT_S))
until ruok; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "run.sh: the $FLAVOR server exited during startup; its log:"
    tail -n 40 "$SERVER_LOG"
    echo "$FLAVOR: 0 passed, 1 failed"
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "run.sh: no imok from the $FLAVOR server within ${SERVER_START_TIMEOUT_S}s; its log:"
    tail -n 40 "$SERVER_LOG"
    echo "$FLAVOR: 0 passed, 1 failed"
    exit 1
  fi
  sleep 0.2
done

total_passed=0
total_failed=0

# count_line LOGFILE PREFIX: add "PREFIX N passed, M failed" from the log.
count_line() {
  local line p f
  line=$(grep -E "^$2[0-9]+ passed, [0-9]+ failed$" "$1" | tail -n 1)
  if [[ -z $line ]]; then
    echo "run.sh: no summary line from $3; counted as one failure"
    total_failed=$((total_failed + 1))
    return
  fi
  p=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")
  f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
  total_passed=$((total_passed + p))
  total_failed=$((total_failed + f))
  echo "run.sh: $3: $p passed, $f failed"
}

for suite in "${SUITES[@]}"; do
  case $suite in
    pytest)
      echo "== pytest (kazoo + wire) against $FLAVOR"
      (cd "$HERE" && timeout 900 "$PYTHON" -m pytest -p no:cacheprovider -q \
        --junitxml="$WORK/pytest.xml" "${PYTEST_ARGS[@]}" .)
      rc=$?
      # junit counts are exact; exit code 5 (no tests collected) is a failure.
      counts=$("$PYTHON" - "$WORK/pytest.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0"); sys.exit()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skip = sum(int(s.get("skipped", 0)) for s in suites)
print(t - bad - skip, bad)
EOF
)
      p=${counts% *}
      f=${counts#* }
      if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; fi  # timeout, exit 5, crash
      echo "run.sh: pytest: $p passed, $f failed (exit $rc)"
      total_passed=$((total_passed + p))
      total_failed=$((total_failed + f))
      ;;
    zkcli)
      echo "== zkCli.sh golden outputs against $FLAVOR"
      timeout 900 "$PYTHON" "$HERE/zkcli_golden.py" check --cli "$ZK_BIN_DIR/zkCli.sh" | tee "$WORK/zkcli.log"
      count_line "$WORK/zkcli.log" "zkcli: " zkcli
      ;;
    corral_cli)
      echo "== corral cli against the zkCli.sh golden outputs, server $FLAVOR"
      timeout 900 "$PYTHON" "$HERE/zkcli_golden.py" check --cli "$CORRAL_BIN cli" | tee "$WORK/corral_cli.log"
      count_line "$WORK/corral_cli.log" "zkcli: " corral_cli
      ;;
    cli_mt)
      echo "== cli_mt against $FLAVOR"
      timeout 600 "$HERE/cli_mt.sh" | tee "$WORK/cli_mt.log"
      count_line "$WORK/cli_mt.log" "cli_mt: " cli_mt
      ;;
    *)
      client_dir=$ROOT/tests/clients/$suite
      if [[ ! -x $client_dir/run.sh ]]; then
        echo "run.sh: unknown suite $suite"
        total_failed=$((total_failed + 1))
        continue
      fi
      echo "== client suite $suite against $FLAVOR"
      mkdir -p "$WORK/clients/$suite"
      CLIENT_WORK="$WORK/clients/$suite" PYTHON="$PYTHON" \
        timeout "${CLIENT_SUITE_TIMEOUT_S:-900}" "$client_dir/run.sh" 2>&1 | tee "$WORK/$suite.log"
      count_line "$WORK/$suite.log" "$suite: " "$suite"
      ;;
  esac
done

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "run.sh: the $FLAVOR server died during the run; its log:"
  tail -n 40 "$SERVER_LOG"
  total_failed=$((total_failed + 1))
fi
stop_server

echo "$FLAVOR: $total_passed passed, $total_failed failed"
((total_failed == 0 && total_passed > 0))
