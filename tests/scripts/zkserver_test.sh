#!/usr/bin/env bash
# Tests for scripts/zkServer.sh, in plain bash (no bats).
#
#   tests/scripts/zkserver_test.sh            config resolution, port discovery, messages
#                                              when not running, and start/status/stop
#                                              against a fake `corral` (needs python3)
#   ZKSERVER_TEST_REAL=1 CORRAL_BIN=target/release/corral tests/scripts/zkserver_test.sh
#                                              adds the same flows against the real binary,
#                                              and, with ZKSERVER_TEST_WALKTHROUGH=1, the
#                                              four-server walkthrough (needs replication)
#
# Expected lines are the ones Apache ZooKeeper 3.8.0's zkServer.sh prints in the same
# situations. Everything runs under a scratch directory on free loopback ports; every server
# started is stopped by its pid.

set -u

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SCRIPT="$REPO/scripts/zkServer.sh"
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/zkserver-test.XXXXXX")"
REAL_BIN="${CORRAL_BIN:-}"
unset CORRAL_BIN ZOOCFGDIR ZOOCFG ZOOPIDFILE ZOO_LOG_DIR ZOO_4LW_CLIENT
PASSED=0
FAILED=0
STARTED_PIDS=()

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null
    done
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

pass() {
    PASSED=$((PASSED + 1))
    echo "ok   - $1"
}

fail() {
    FAILED=$((FAILED + 1))
    echo "FAIL - $1"
    shift
    local line
    for line in "$@"; do
        echo "       $line"
    done
}

# run [ENV=VALUE...] -- ARGS...: runs zkServer.sh in $RUN_DIR, sets OUT, ERR, RC.
RUN_DIR="$SCRATCH"
run() {
    local env_args=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        env_args+=("$1")
        shift
    done
    shift
    (cd "$RUN_DIR" && env "${env_args[@]}" bash "$SCRIPT" "$@" >"$SCRATCH/.out" 2>"$SCRATCH/.err" </dev/null)
    RC=$?
    OUT="$(cat "$SCRATCH/.out")"
    ERR="$(cat "$SCRATCH/.err")"
}

expect() {
    local name="$1" want_out="$2" want_rc="$3"
    if [ "$OUT" = "$want_out" ] && [ "$RC" = "$want_rc" ]; then
        pass "$name"
    else
        fail "$name" "want rc=$want_rc stdout:" "$want_out" "got rc=$RC stdout:" "$OUT" "stderr:" "$ERR"
    fi
}

expect_err_line() {
    local name="$1" want="$2"
    if printf '%s\n' "$ERR" | grep -qxF -- "$want"; then
        pass "$name"
    else
        fail "$name" "want a stderr line:" "$want" "got stderr:" "$ERR"
    fi
}

expect_first_err_line() {
    local name="$1" want="$2" first
    first="$(printf '%s\n' "$ERR" | head -n 1)"
    if [ "$first" = "$want" ]; then
        pass "$name"
    else
        fail "$name" "want first stderr line:" "$want" "got:" "$first"
    fi
}

# Exists and is not a zombie.
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    [ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d ' ' -f 1)" != Z ]
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $((20000 + RANDOM % 20000))
}

CONF="$SCRATCH/conf"
mkdir -p "$CONF"
NO_BIN=(CORRAL_BIN=/nonexistent/corral)

# ------------------------------------------------------------------ usage and config paths

run "${NO_BIN[@]}" -- bogus
expect "unknown command: usage on stderr, exit 1" "" 1
expect_err_line "usage line" "Usage: $SCRIPT [--config <conf-dir>] {start|start-foreground|stop|version|restart|status|print-cmd}"
expect_first_err_line "default config is <script dir>/conf/zoo.cfg" "Using config: $REPO/scripts/conf/zoo.cfg"

run "${NO_BIN[@]}" -- --config "$CONF" bogus
expect_first_err_line "--config DIR" "Using config: $CONF/zoo.cfg"

run "${NO_BIN[@]}" ZOOCFGDIR="$CONF" -- bogus
expect_first_err_line "ZOOCFGDIR from the environment" "Using config: $CONF/zoo.cfg"

echo "dataDir=$SCRATCH/in-conf" >"$CONF/both.cfg"
echo "dataDir=$SCRATCH/in-cwd" >"$SCRATCH/both.cfg"
echo "dataDir=$SCRATCH/cwd-only" >"$SCRATCH/cwdonly.cfg"
run "${NO_BIN[@]}" -- --config "$CONF" bogus both.cfg
expect_first_err_line "bare name found in the config dir wins" "Using config: $CONF/both.cfg"
run "${NO_BIN[@]}" -- --config "$CONF" bogus cwdonly.cfg
expect_first_err_line "bare name only in the working dir" "Using config: $SCRATCH/cwdonly.cfg"
run "${NO_BIN[@]}" -- --config "$CONF" bogus ./both.cfg
expect_first_err_line "a path is used as given" "Using config: ./both.cfg"
run "${NO_BIN[@]}" -- --config "$CONF" bogus nowhere.cfg
expect_first_err_line "bare name found nowhere points into the config dir" "Using config: $CONF/nowhere.cfg"

run "${NO_BIN[@]}" -- --config "$CONF" status nowhere.cfg
expect "missing config: one message, exit 1" "" 1
expect_err_line "missing config message" "Config file not found or not readable: $CONF/nowhere.cfg"

# ------------------------------------------------------------------ not running

PORT_A="$(free_port)"
mkdir -p "$SCRATCH/a"
printf 'tickTime=2000\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n' "$SCRATCH/a" "$PORT_A" >"$CONF/a.cfg"

run "${NO_BIN[@]}" -- --config "$CONF" status a.cfg
expect "status, not running" "Client port found: $PORT_A. Client address: 127.0.0.1. Client SSL: false.
Error contacting service. It is probably not running." 1

run "${NO_BIN[@]}" -- --config "$CONF" stop a.cfg
expect "stop, not running" "Stopping zookeeper ... no zookeeper to stop (could not find file $SCRATCH/a/zookeeper_server.pid)" 0

run "${NO_BIN[@]}" ZOOPIDFILE="$SCRATCH/elsewhere/zk.pid" -- --config "$CONF" stop a.cfg
expect "stop honours ZOOPIDFILE" "Stopping zookeeper ... no zookeeper to stop (could not find file $SCRATCH/elsewhere/zk.pid)" 0

run "${NO_BIN[@]}" -- --config "$CONF" start a.cfg
expect "start without a binary" "Starting zookeeper ... SERVER DID NOT START" 1

run "${NO_BIN[@]}" -- --config "$CONF" version
expect "version without a binary" "" 1

printf 'dataDir=%s\nclientPort=2181\n' "$SCRATCH/a" >"$CONF/nodatadir-ok.cfg"
printf 'clientPort=2181\n' >"$CONF/nodatadir.cfg"
run "${NO_BIN[@]}" -- --config "$CONF" stop nodatadir.cfg
expect "stop without dataDir" "" 1
expect_err_line "stop without dataDir says why" "dataDir is not set in $CONF/nodatadir.cfg, so there is no place for the pid file (or set ZOOPIDFILE)"

run "${NO_BIN[@]}" ZOO_DATADIR_AUTOCREATE_DISABLE=1 -- --config "$CONF" start a.cfg
expect "autocreate disabled, no version-2" "ZooKeeper data directory is missing at $SCRATCH/a fix the path or run initialize" 1

# ------------------------------------------------------------------ client port discovery (status)

PORT_Q="$(free_port)"
mkdir -p "$SCRATCH/q"
cat >"$CONF/q.cfg" <<EOF
tickTime=2000
initLimit=5
syncLimit=2
dataDir=$SCRATCH/q
server.1=127.0.0.1:2888:3888;127.0.0.2:$PORT_Q
server.2=127.0.0.1:2889:3889;$PORT_Q
server.4=[::1]:2890:3890;[::1]:$PORT_Q
EOF

run "${NO_BIN[@]}" -- --config "$CONF" status q.cfg
expect "no myid" "myid could not be determined, will not able to locate clientPort in the server configs.
Client port not found. Looking for secureClientPort in the static config.
Unable to find either secure or unsecure client port in any configs. Terminating." 1

echo 1 >"$SCRATCH/q/myid"
run "${NO_BIN[@]}" ZOO_4LW_CLIENT=bash -- --config "$CONF" status q.cfg
expect "server.<myid> client part with host" "Client port found: $PORT_Q. Client address: 127.0.0.2. Client SSL: false.
Error contacting service. It is probably not running." 1

echo 2 >"$SCRATCH/q/myid"
run "${NO_BIN[@]}" ZOO_4LW_CLIENT=bash -- --config "$CONF" status q.cfg
expect "server.<myid> client part, port only" "Client port found: $PORT_Q. Client address: localhost. Client SSL: false.
Error contacting service. It is probably not running." 1

echo 4 >"$SCRATCH/q/myid"
run "${NO_BIN[@]}" ZOO_4LW_CLIENT=bash -- --config "$CONF" status q.cfg
expect "server.<myid> client part, IPv6" "Client port found: $PORT_Q. Client address: ::1. Client SSL: false.
Error contacting service. It is probably not running." 1

echo 3 >"$SCRATCH/q/myid"
run "${NO_BIN[@]}" -- --config "$CONF" status q.cfg
expect "myid without a server line" "Client port not found in static config file. Looking in dynamic config file.
Client port not found in the server configs
Client port not found. Looking for secureClientPort in the static config.
Unable to find either secure or unsecure client port in any configs. Terminating." 1

mkdir -p "$SCRATCH/dyn"
echo 1 >"$SCRATCH/dyn/myid"
echo "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:$PORT_Q" >"$CONF/dyn.cfg.dynamic.100000000"
printf 'dataDir=%s\ndynamicConfigFile=%s\n' "$SCRATCH/dyn" "$CONF/dyn.cfg.dynamic.100000000" >"$CONF/dyn.cfg"
run "${NO_BIN[@]}" ZOO_4LW_CLIENT=bash -- --config "$CONF" status dyn.cfg
expect "client port from the dynamic file" "Client port not found in static config file. Looking in dynamic config file.
Client port found: $PORT_Q. Client address: 0.0.0.0. Client SSL: false.
Error contacting service. It is probably not running." 1

printf 'dataDir=%s\nsecureClientPort=%s\n' "$SCRATCH/s" "$PORT_Q" >"$CONF/s.cfg"
run "${NO_BIN[@]}" ZOO_4LW_CLIENT=bash -- --config "$CONF" status s.cfg
if [ "$RC" = 1 ] && printf '%s\n' "$OUT" | head -n 3 | cmp -s - <(printf '%s\n' \
    "myid could not be determined, will not able to locate clientPort in the server configs." \
    "Client port not found. Looking for secureClientPort in the static config." \
    "Client port found: $PORT_Q. Client address: localhost. Client SSL: true.") \
    && [ "$(printf '%s\n' "$OUT" | tail -n 1)" = "Error contacting service. It is probably not running." ]; then
    pass "secureClientPort only"
else
    fail "secureClientPort only" "got rc=$RC:" "$OUT"
fi

cat >"$CONF/spaced.cfg" <<EOF
# comment
  dataDir = $SCRATCH/a
clientPort : $PORT_A
clientPortAddress \\
    127.0.0.1
EOF
run "${NO_BIN[@]}" ZOO_4LW_CLIENT=bash -- --config "$CONF" status spaced.cfg
expect "properties separators and continuations" "Client port found: $PORT_A. Client address: 127.0.0.1. Client SSL: false.
Error contacting service. It is probably not running." 1

# ------------------------------------------------------------------ start/status/stop with a fake corral

if ! command -v python3 >/dev/null 2>&1; then
    echo "skip - python3 not found: no fake-server tests"
else
    FAKE="$SCRATCH/bin/corral"
    mkdir -p "$SCRATCH/bin"
    cat >"$FAKE" <<'FAKE_EOF'
#!/usr/bin/env bash
# A stand-in for corral: `server CFG` serves srvr on clientPort, `4lw`, `version`.
case "$1" in
server)
    cfg="$2"
    get() { awk -F= -v k="$1" '$1 == k { v = $2 } END { print v }' "$cfg"; }
    if [ -n "$(get fakeFailure)" ]; then
        echo "starting..."
        echo "$cfg:3: tickTime: expected a positive integer, got \"abc\"" >&2
        exit 2
    fi
    exec python3 - "$(get clientPort)" "$(get fakeIgnoreTerm)" <<'PY'
import signal, socket, sys
port, ignore_term = int(sys.argv[1]), sys.argv[2]
if ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(8)
while True:
    conn, _ = server.accept()
    word = conn.recv(4)
    if word == b"srvr":
        conn.sendall(b"Zookeeper version: fake\nMode: standalone\nNode count: 5\n")
    conn.close()
PY
    ;;
4lw)
    hostport="$2"
    host="${hostport%:*}"
    host="${host#[}"
    host="${host%]}"
    exec 3<>"/dev/tcp/$host/${hostport##*:}" || exit 1
    printf '%s' "$3" >&3
    cat <&3
    ;;
version)
    echo "Corral version 0.0.0-fake"
    ;;
*)
    exit 2
    ;;
esac
FAKE_EOF
    chmod +x "$FAKE"
    WITH_FAKE=(CORRAL_BIN="$FAKE")

    run "${WITH_FAKE[@]}" -- --config "$CONF" version
    expect "version" "Corral version 0.0.0-fake" 0

    run "${WITH_FAKE[@]}" -- --config "$CONF" start a.cfg
    expect "start" "Starting zookeeper ... STARTED" 0
    PID_A="$(cat "$SCRATCH/a/zookeeper_server.pid" 2>/dev/null)"
    [ -n "$PID_A" ] && STARTED_PIDS+=("$PID_A")
    if [ -n "$PID_A" ] && alive "$PID_A"; then pass "pid file names the running server"; else fail "pid file names the running server" "pid=$PID_A"; fi
    USER_NAME="${USER:-$(id -un)}"
    if [ -f "$SCRATCH/a/logs/zookeeper-$USER_NAME-server-$HOSTNAME.out" ]; then
        pass "daemon output under <dataDir>/logs"
    else
        fail "daemon output under <dataDir>/logs" "$(ls -R "$SCRATCH/a")"
    fi

    run "${WITH_FAKE[@]}" -- --config "$CONF" start a.cfg
    expect "start while running" "Starting zookeeper ... already running as process $PID_A." 1

    run "${WITH_FAKE[@]}" -- --config "$CONF" status a.cfg
    expect "status while running" "Client port found: $PORT_A. Client address: 127.0.0.1. Client SSL: false.
Mode: standalone" 0

    run "${WITH_FAKE[@]}" -- --config "$CONF" print-cmd a.cfg
    expect "print-cmd" "\"$FAKE\" server \"$CONF/a.cfg\" > \"$SCRATCH/a/logs/zookeeper-$USER_NAME-server-$HOSTNAME.out\" 2>&1 < /dev/null" 0

    run "${WITH_FAKE[@]}" -- --config "$CONF" restart a.cfg
    expect "restart" "Stopping zookeeper ... STOPPED
Starting zookeeper ... STARTED" 0
    NEW_PID_A="$(cat "$SCRATCH/a/zookeeper_server.pid" 2>/dev/null)"
    [ -n "$NEW_PID_A" ] && STARTED_PIDS+=("$NEW_PID_A")
    if ! alive "$PID_A" && [ "$NEW_PID_A" != "$PID_A" ]; then pass "restart replaced the process"; else fail "restart replaced the process" "old=$PID_A new=$NEW_PID_A"; fi

    run "${WITH_FAKE[@]}" -- --config "$CONF" stop a.cfg
    expect "stop" "Stopping zookeeper ... STOPPED" 0
    if ! alive "$NEW_PID_A" && [ ! -e "$SCRATCH/a/zookeeper_server.pid" ]; then
        pass "stop waited for the exit and removed the pid file"
    else
        fail "stop waited for the exit and removed the pid file"
    fi

    run "${WITH_FAKE[@]}" -- --config "$CONF" status a.cfg
    expect "status after stop" "Client port found: $PORT_A. Client address: 127.0.0.1. Client SSL: false.
Error contacting service. It is probably not running." 1

    mkdir -p "$SCRATCH/bad"
    printf 'dataDir=%s\nclientPort=%s\nfakeFailure=1\n' "$SCRATCH/bad" "$(free_port)" >"$CONF/bad.cfg"
    run "${WITH_FAKE[@]}" -- --config "$CONF" start bad.cfg
    expect "start with a bad config" "Starting zookeeper ... FAILED TO START" 1
    expect_err_line "the server's reason on stderr" "$CONF/bad.cfg:3: tickTime: expected a positive integer, got \"abc\""
    if [ ! -e "$SCRATCH/bad/zookeeper_server.pid" ]; then pass "no pid file left after a failed start"; else fail "no pid file left after a failed start"; fi

    PORT_T="$(free_port)"
    mkdir -p "$SCRATCH/t"
    printf 'dataDir=%s\nclientPort=%s\nfakeIgnoreTerm=1\n' "$SCRATCH/t" "$PORT_T" >"$CONF/t.cfg"
    run "${WITH_FAKE[@]}" -- --config "$CONF" start t.cfg
    PID_T="$(cat "$SCRATCH/t/zookeeper_server.pid" 2>/dev/null)"
    [ -n "$PID_T" ] && STARTED_PIDS+=("$PID_T")
    run "${WITH_FAKE[@]}" ZOO_STOP_TIMEOUT_S=1 -- --config "$CONF" stop t.cfg
    expect "stop of a server ignoring SIGTERM" "Stopping zookeeper ... STOPPED" 0
    expect_err_line "SIGKILL is reported" "process $PID_T did not exit within 1 s; sent SIGKILL"
    if ! alive "$PID_T"; then pass "SIGKILL ended it"; else fail "SIGKILL ended it"; fi

    # The walkthrough's shape: zoo1.cfg in the working directory, no clientPortAddress.
    PORT_W="$(free_port)"
    mkdir -p "$SCRATCH/walk/data/zk1"
    printf 'tickTime=2000\ndataDir=%s\nclientPort=%s\n' "$SCRATCH/walk/data/zk1" "$PORT_W" >"$SCRATCH/walk/zoo1.cfg"
    RUN_DIR="$SCRATCH/walk"
    run "${WITH_FAKE[@]}" -- start zoo1.cfg
    expect "start zoo1.cfg from its directory" "Starting zookeeper ... STARTED" 0
    expect_first_err_line "zoo1.cfg from the working directory" "Using config: $SCRATCH/walk/zoo1.cfg"
    PID_W="$(cat "$SCRATCH/walk/data/zk1/zookeeper_server.pid" 2>/dev/null)"
    [ -n "$PID_W" ] && STARTED_PIDS+=("$PID_W")
    run "${WITH_FAKE[@]}" -- status zoo1.cfg
    expect "status zoo1.cfg" "Client port found: $PORT_W. Client address: localhost. Client SSL: false.
Mode: standalone" 0
    run "${WITH_FAKE[@]}" -- stop zoo1.cfg
    expect "stop zoo1.cfg" "Stopping zookeeper ... STOPPED" 0
    RUN_DIR="$SCRATCH"

    # start-foreground runs the server in place of the script.
    PORT_F="$(free_port)"
    mkdir -p "$SCRATCH/f"
    printf 'dataDir=%s\nclientPort=%s\n' "$SCRATCH/f" "$PORT_F" >"$CONF/f.cfg"
    (cd "$SCRATCH" && CORRAL_BIN="$FAKE" exec bash "$SCRIPT" --config "$CONF" start-foreground f.cfg >/dev/null 2>&1) &
    PID_F=$!
    STARTED_PIDS+=("$PID_F")
    for _ in $(seq 50); do
        reply="$( (exec 3<>"/dev/tcp/127.0.0.1/$PORT_F" && printf srvr >&3 && cat <&3) 2>/dev/null)"
        [ -n "$reply" ] && break
        sleep 0.1
    done
    if printf '%s\n' "$reply" | grep -qx "Mode: standalone"; then pass "start-foreground serves"; else fail "start-foreground serves" "$reply"; fi
    kill "$PID_F" 2>/dev/null
    wait "$PID_F" 2>/dev/null
fi

# ------------------------------------------------------------------ the real binary (opt-in)

if [ "${ZKSERVER_TEST_REAL:-}" = 1 ]; then
    if [ -z "$REAL_BIN" ] || [ ! -x "$REAL_BIN" ]; then
        fail "real binary" "set CORRAL_BIN to the built corral (got '$REAL_BIN')"
    else
        REAL=(CORRAL_BIN="$REAL_BIN")
        run "${REAL[@]}" -- --config "$CONF" start a.cfg
        expect "real: start" "Starting zookeeper ... STARTED" 0
        PID_R="$(cat "$SCRATCH/a/zookeeper_server.pid" 2>/dev/null)"
        [ -n "$PID_R" ] && STARTED_PIDS+=("$PID_R")
        run "${REAL[@]}" -- --config "$CONF" status a.cfg
        expect "real: status" "Client port found: $PORT_A. Client address: 127.0.0.1. Client SSL: false.
Mode: standalone" 0
        run "${REAL[@]}" -- --config "$CONF" stop a.cfg
        expect "real: stop" "Stopping zookeeper ... STOPPED" 0

        mkdir -p "$SCRATCH/realbad"
        printf 'tickTime=abc\ndataDir=%s\nclientPort=%s\n' "$SCRATCH/realbad" "$(free_port)" >"$CONF/realbad.cfg"
        run "${REAL[@]}" -- --config "$CONF" start realbad.cfg
        expect "real: bad config" "Starting zookeeper ... FAILED TO START" 1
        expect_err_line "real: the reason" "$CONF/realbad.cfg:1: tickTime: expected a positive integer, got \"abc\""

        # The walkthrough needs replication (the replication issue); until it lands it
        # runs only when asked: ZKSERVER_TEST_WALKTHROUGH=1.
        if [ "${ZKSERVER_TEST_WALKTHROUGH:-}" = 1 ]; then
            # The walkthrough: three participants and an observer on loopback.
            WALK="$SCRATCH/real-walk"
            mkdir -p "$WALK"
            Q=() E=() C=()
            for n in 1 2 3 4; do Q[n]="$(free_port)"; E[n]="$(free_port)"; C[n]="$(free_port)"; done
            for n in 1 2 3 4; do
                mkdir -p "$WALK/data/zk$n"
                echo "$n" >"$WALK/data/zk$n/myid"
                {
                    printf 'tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%s\n' "$WALK/data/zk$n" "${C[n]}"
                    printf 'corral.shards=1\ncorral.ioMemoryKb=512\n'
                    printf 'server.1=127.0.0.1:%s:%s\nserver.2=127.0.0.1:%s:%s\n' "${Q[1]}" "${E[1]}" "${Q[2]}" "${E[2]}"
                    printf 'server.3=127.0.0.1:%s:%s\nserver.4=127.0.0.1:%s:%s:observer\n' "${Q[3]}" "${E[3]}" "${Q[4]}" "${E[4]}"
                } >"$WALK/zoo$n.cfg"
            done
            RUN_DIR="$WALK"
            for n in 1 2 3 4; do
                run "${REAL[@]}" -- start "zoo$n.cfg"
                expect "real walkthrough: start zoo$n.cfg" "Starting zookeeper ... STARTED" 0
                pid="$(cat "$WALK/data/zk$n/zookeeper_server.pid" 2>/dev/null)"
                [ -n "$pid" ] && STARTED_PIDS+=("$pid")
            done
            modes=""
            for _ in $(seq 30); do
                modes=""
                for n in 1 2 3 4; do
                    run "${REAL[@]}" -- status "zoo$n.cfg"
                    modes="$modes $(printf '%s\n' "$OUT" | sed -n 's/^Mode: //p')"
                done
                # shellcheck disable=SC2086 # split the modes into words
                sorted="$(printf '%s\n' $modes | sort | tr '\n' ' ')"
                [ "$sorted" = "follower follower leader observer " ] && break
                sleep 1
            done
            if [ "$sorted" = "follower follower leader observer " ]; then
                pass "real walkthrough: one leader, two followers, one observer"
            else
                fail "real walkthrough: one leader, two followers, one observer" "modes:$modes"
            fi
            for n in 1 2 3 4; do
                run "${REAL[@]}" -- stop "zoo$n.cfg"
                expect "real walkthrough: stop zoo$n.cfg" "Stopping zookeeper ... STOPPED" 0
            done
        fi
        RUN_DIR="$SCRATCH"
    fi
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
