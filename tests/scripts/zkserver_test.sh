#!/usr/bin/env bash
# Tests for scripts/zkServer.sh, in plain bash (no bats).
#
#   tests/scripts/zkserver_test.sh            config resolution, port discovery, messages
#                                              when not running, and start/status/stop
#                                              against a fake `corral` (needs python3)
#   ZKSERVER_TEST_REAL=1 CORRAL_BIN=target/release/corral tests/scripts/zkserver_test.sh
#                                              adds the same flows against the real binary,
#                                              then the operator's walkthrough: four servers
#                                              (three participants, one observer), their
#                                              modes, /zookeeper/config through zkCli.sh (and
#                                              Java zkCli.sh, kazoo when present), the leader
#                                              killed and restarted; ZKSERVER_TEST_WALKTHROUGH=0
#                                              leaves the walkthrough out. PYTHON: a python
#                                              with kazoo (default .venv/bin/python);
#                                              ZKCLI_JAVA: ZooKeeper's zkCli.sh (default
#                                              Debian's /usr/share/zookeeper/bin/zkCli.sh)
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
# shellcheck source=tests/scripts/report.sh
. "$REPO/tests/scripts/report.sh"
STARTED_PIDS=() # pid:start-time of every server started

# The start time of process PID (clock ticks since boot), empty if there is none: a pid and
# its start time name one process, where a pid alone may meanwhile name another one.
proc_start() {
    sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d ' ' -f 20
}

# track PID: remembers a server just started, for cleanup.
track() {
    STARTED_PIDS+=("$1:$(proc_start "$1")")
}

# still_running PID:START: that very process still runs (and is not a zombie).
still_running() {
    local pid="${1%%:*}" start="${1#*:}"
    [ -n "$start" ] && [ "$(proc_start "$pid")" = "$start" ] && alive "$pid"
}

cleanup() {
    local entry pidfile pid
    for entry in "${STARTED_PIDS[@]}"; do
        still_running "$entry" && kill -9 "${entry%%:*}" 2>/dev/null
    done
    # A server whose start was under way when a signal came is in no list yet: its pid file
    # names it, and its command line (a config under $SCRATCH) tells it from a process that
    # has taken the pid of a stale file.
    while IFS= read -r pidfile; do
        pid="$(cat "$pidfile" 2>/dev/null)"
        case "$pid" in '' | *[!0-9]*) continue ;; esac
        tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$SCRATCH/" && kill -9 "$pid" 2>/dev/null
    done < <(find "$SCRATCH" -name zookeeper_server.pid 2>/dev/null)
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
# A signal ends the script through `exit`, so that the EXIT trap stops every server started.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM



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
    exec python3 - "$(get clientPort)" "$(get fakeIgnoreTerm)" "$cfg" <<'PY'
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
    [ -n "$PID_A" ] && track "$PID_A"
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
    [ -n "$NEW_PID_A" ] && track "$NEW_PID_A"
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
    [ -n "$PID_T" ] && track "$PID_T"
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
    [ -n "$PID_W" ] && track "$PID_W"
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
    track "$PID_F"
    for _ in $(seq 50); do
        reply="$( (exec 3<>"/dev/tcp/127.0.0.1/$PORT_F" && printf srvr >&3 && cat <&3) 2>/dev/null)"
        [ -n "$reply" ] && break
        sleep 0.1
    done
    if printf '%s\n' "$reply" | grep -qx "Mode: standalone"; then pass "start-foreground serves"; else fail "start-foreground serves" "$reply"; fi
    kill "$PID_F" 2>/dev/null
    wait "$PID_F" 2>/dev/null
fi

# ------------------------------------------------------------------ the walkthrough (real binary)
#
# The classic operator's walkthrough of a ZooKeeper pseudo-cluster, step by step, through
# scripts/zkServer.sh and scripts/zkCli.sh: four servers on one host from zoo1.cfg ..
# zoo4.cfg (three participants and an observer), their modes, the membership in
# /zookeeper/config as three clients see it, then the leader killed with SIGKILL, a new one
# elected, a write, and the old leader back as a follower that has the write.

# Prints a base B for the walkthrough's ports, laid out as in its zoo.cfg (client B+1..B+4
# as 2181.., quorum B+8..B+11 as 2188.., election B+1008..B+1011 as 3188..), all free and
# all below the kernel's ephemeral range (32768 up): a killed server must get its ports back
# when it restarts, and a port in that range can meanwhile become the source port of some
# outgoing connection.
walk_port_base() {
    python3 - <<'PY' 2>/dev/null && return
import random, socket
offsets = [1, 2, 3, 4, 8, 9, 10, 11, 1008, 1009, 1010, 1011]
rng = random.SystemRandom()
for _ in range(500):
    base = rng.randrange(10000, 32768 - 1011)
    free = True
    for off in offsets:
        s = socket.socket()
        try:
            s.bind(("", base + off))  # the wildcard address: taken on any address fails
        except OSError:
            free = False
        finally:
            s.close()
        if not free:
            break
    if free:
        print(base)
        break
else:
    raise SystemExit(1)
PY
    echo $((10000 + RANDOM % 21000))
}

# capture INPUT CMD...: runs CMD in $RUN_DIR with stdin from the file INPUT; sets OUT, ERR, RC.
capture() {
    local input="$1"
    shift
    (cd "$RUN_DIR" && "$@" >"$SCRATCH/.out" 2>"$SCRATCH/.err" <"$input")
    RC=$?
    OUT="$(cat "$SCRATCH/.out")"
    ERR="$(cat "$SCRATCH/.err")"
}

# has_block TEXT BLOCK: the lines of BLOCK occur in TEXT as consecutive whole lines.
has_block() {
    local -a text_lines block_lines
    local i j
    mapfile -t text_lines <<<"$1"
    mapfile -t block_lines <<<"$2"
    for ((i = 0; i + ${#block_lines[@]} <= ${#text_lines[@]}; i++)); do
        for ((j = 0; j < ${#block_lines[@]}; j++)); do
            [ "${text_lines[i + j]}" = "${block_lines[j]}" ] || break
        done
        [ "$j" = "${#block_lines[@]}" ] && return 0
    done
    return 1
}

now_ms() {
    date +%s%3N
}

# walk_status N...: `zkServer.sh status zooN.cfg` for each N; sets W_OUT[N], W_RC[N] and
# W_MODE[N] (empty while the server is not serving, e.g. during an election).
walk_status() {
    local n
    for n in "$@"; do
        run "${REAL[@]}" -- status "zoo$n.cfg"
        W_OUT[n]="$OUT"
        W_RC[n]="$RC"
        W_MODE[n]="$(printf '%s\n' "$OUT" | sed -n 's/^Mode: //p')"
    done
}

# walk_modes N...: "N:mode" for each N, for failure messages.
walk_modes() {
    local n s=""
    for n in "$@"; do s="$s $n:${W_MODE[n]:-none}"; done
    echo "${s# }"
}

# walk_logs N...: the last lines of each server's output, for failure messages.
walk_logs() {
    local n
    for n in "$@"; do
        echo "server $n log:"
        tail -n 5 "$WALK"/data/zk"$n"/logs/*.out 2>/dev/null | sed 's/^/  /'
    done
}

# expect_status N MODE: the exact two lines of `status` for a server in mode MODE.
expect_status() {
    local n="$1" mode="$2"
    local want="Client port found: ${WC[n]}. Client address: localhost. Client SSL: false.
Mode: $mode"
    if [ "${W_OUT[n]}" = "$want" ] && [ "${W_RC[n]}" = 0 ]; then
        pass "walkthrough: status zoo$n.cfg, Mode: $mode"
    else
        fail "walkthrough: status zoo$n.cfg, Mode: $mode" "want rc=0 stdout:" "$want" "got rc=${W_RC[n]} stdout:" "${W_OUT[n]}"
    fi
}

walkthrough() {
    local base n pid t0 t deadline hosts config sorted leader old new_leader killed
    local observer_seen pyclient zkcli_java left
    local -a pids=() walk_pids=() other=() WQ=() WE=()
    # Seen by the helpers above: the ports, the latest status of each server, the client.
    local WALK="$SCRATCH/real-walk"
    local -a WC=() W_OUT=() W_RC=() W_MODE=() ZKCLI=()
    t0="$(now_ms)"
    base="$(walk_port_base)"
    for n in 1 2 3 4; do
        WC[n]=$((base + n))
        WQ[n]=$((base + 7 + n))
        WE[n]=$((base + 1007 + n))
    done
    hosts="127.0.0.1:${WC[1]},127.0.0.1:${WC[2]},127.0.0.1:${WC[3]},127.0.0.1:${WC[4]}"
    ZKCLI=(env CORRAL_BIN="$REAL_BIN" timeout 30 bash "$REPO/scripts/zkCli.sh")

    # 1. zoo1.cfg .. zoo4.cfg as the walkthrough writes them (Corral's defaults on a small
    #    host: client sessions on the ZAB executor, a small io_uring buffer), then no admin
    #    server and every four-letter word; `myid` in each dataDir.
    for n in 1 2 3 4; do
        mkdir -p "$WALK/data/zk$n"
        echo "$n" >"$WALK/data/zk$n/myid"
        cat >"$WALK/zoo$n.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$WALK/data/zk$n
clientPort=${WC[n]}
server.1=127.0.0.1:${WQ[1]}:${WE[1]}
server.2=127.0.0.1:${WQ[2]}:${WE[2]}
server.3=127.0.0.1:${WQ[3]}:${WE[3]}
server.4=127.0.0.1:${WQ[4]}:${WE[4]}:observer
admin.enableServer=false
4lw.commands.whitelist=*
CFG
    done
    RUN_DIR="$WALK"

    # 2. Start each.
    for n in 1 2 3 4; do
        run "${REAL[@]}" -- start "zoo$n.cfg"
        expect "walkthrough: start zoo$n.cfg" "Starting zookeeper ... STARTED" 0
        pid="$(cat "$WALK/data/zk$n/zookeeper_server.pid" 2>/dev/null)"
        pids[n]="$pid"
        [ -n "$pid" ] && track "$pid" && walk_pids+=("${STARTED_PIDS[-1]}")
    done

    # 3. Status of each: one leader, two followers, one observer (server 4).
    t="$(now_ms)"
    deadline=$((SECONDS + 30))
    while :; do
        walk_status 1 2 3 4
        sorted="$(printf '%s\n' "${W_MODE[1]}" "${W_MODE[2]}" "${W_MODE[3]}" "${W_MODE[4]}" | sort | tr '\n' ' ')"
        [ "$sorted" = "follower follower leader observer " ] && break
        [ "$SECONDS" -ge "$deadline" ] && break
        sleep 0.2
    done
    if [ "$sorted" = "follower follower leader observer " ]; then
        pass "walkthrough: one leader, two followers, one observer ($(($(now_ms) - t)) ms)"
    else
        fail "walkthrough: one leader, two followers, one observer" "modes after 30 s: $(walk_modes 1 2 3 4)" "$(walk_logs 1 2 3 4)"
    fi
    leader=""
    for n in 1 2 3 4; do
        expect_status "$n" "${W_MODE[n]:-<leader|follower|observer>}"
        [ "${W_MODE[n]}" = leader ] && leader="$n"
    done
    if [ "${W_MODE[4]}" = observer ]; then
        pass "walkthrough: server 4 is the observer"
    else
        fail "walkthrough: server 4 is the observer" "modes: $(walk_modes 1 2 3 4)"
    fi

    # 4. A client connected to all four reads the membership: Corral's zkCli.sh, Apache
    #    ZooKeeper's Java zkCli.sh, kazoo.
    config="server.1=127.0.0.1:${WQ[1]}:${WE[1]}:participant
server.2=127.0.0.1:${WQ[2]}:${WE[2]}:participant
server.3=127.0.0.1:${WQ[3]}:${WE[3]}:participant
server.4=127.0.0.1:${WQ[4]}:${WE[4]}:observer
version=0"
    capture /dev/null "${ZKCLI[@]}" -server "$hosts" get /zookeeper/config
    if [ "$RC" = 0 ] && has_block "$OUT" "$config"; then
        pass "walkthrough: zkCli.sh -server <all four> get /zookeeper/config"
    else
        fail "walkthrough: zkCli.sh -server <all four> get /zookeeper/config" "want rc=0 and the lines:" "$config" "got rc=$RC stdout:" "$OUT" "stderr:" "$ERR"
    fi
    zkcli_java="${ZKCLI_JAVA:-/usr/share/zookeeper/bin/zkCli.sh}"
    if [ ! -x "$zkcli_java" ] || ! command -v java >/dev/null 2>&1; then
        echo "skip - walkthrough: Apache ZooKeeper's zkCli.sh ($zkcli_java) or java not found"
    else
        capture /dev/null timeout 30 "$zkcli_java" -server "$hosts" get /zookeeper/config
        if [ "$RC" = 0 ] && has_block "$OUT" "$config"; then
            pass "walkthrough: Java zkCli.sh -server <all four> get /zookeeper/config"
        else
            fail "walkthrough: Java zkCli.sh -server <all four> get /zookeeper/config" "want rc=0 and the lines:" "$config" "got rc=$RC stdout:" "$OUT" "stderr:" "$ERR"
        fi
    fi
    pyclient="${PYTHON:-$REPO/.venv/bin/python}"
    if [ ! -x "$pyclient" ] || ! "$pyclient" -c 'import kazoo' >/dev/null 2>&1; then
        echo "skip - walkthrough: no python with kazoo (set PYTHON, or make .venv)"
    else
        cat >"$SCRATCH/kazoo_config.py" <<'PY'
import sys
from kazoo.client import KazooClient

zk = KazooClient(hosts=sys.argv[1], timeout=10.0)
zk.start(timeout=20)
try:
    data, _ = zk.get("/zookeeper/config")
    print(data.decode())
finally:
    zk.stop()
    zk.close()
PY
        capture /dev/null timeout 30 "$pyclient" "$SCRATCH/kazoo_config.py" "$hosts"
        if [ "$RC" = 0 ] && has_block "$OUT" "$config"; then
            pass "walkthrough: kazoo get('/zookeeper/config') over all four"
        else
            fail "walkthrough: kazoo get('/zookeeper/config') over all four" "want rc=0 and the lines:" "$config" "got rc=$RC stdout:" "$OUT" "stderr:" "$ERR"
        fi
    fi

    if [ -z "$leader" ] || [ "$leader" = 4 ]; then
        fail "walkthrough: kill the leader, restart it" "no leader among the participants: $(walk_modes 1 2 3 4)"
    else
        # 5. kill -9 the leader; the two other participants elect one of them, never the
        #    observer; a write through all four succeeds.
        old="$leader"
        pid="$(cat "$WALK/data/zk$old/zookeeper_server.pid" 2>/dev/null)"
        killed=""
        if [ -n "$pid" ] && [ "$pid" = "${pids[old]:-}" ] && alive "$pid"; then
            kill -9 "$pid" && killed=1
            deadline=$((SECONDS + 10))
            while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
        fi
        if [ -n "$killed" ] && ! alive "$pid"; then
            pass "walkthrough: kill -9 the leader (server $old, pid $pid from its pid file)"
        else
            fail "walkthrough: kill -9 the leader (server $old, pid $pid from its pid file)" "started as pid ${pids[old]:-?}"
        fi
        for n in 1 2 3; do [ "$n" != "$old" ] && other+=("$n"); done
        t="$(now_ms)"
        deadline=$((SECONDS + 30))
        observer_seen=""
        new_leader=""
        while :; do
            walk_status "${other[@]}" 4
            case "${W_MODE[4]}" in "" | observer) ;; *) observer_seen="${W_MODE[4]}" ;; esac
            if [ "${W_MODE[4]}" = observer ]; then
                if [ "${W_MODE[${other[0]}]} ${W_MODE[${other[1]}]}" = "leader follower" ]; then
                    new_leader="${other[0]}"
                elif [ "${W_MODE[${other[0]}]} ${W_MODE[${other[1]}]}" = "follower leader" ]; then
                    new_leader="${other[1]}"
                fi
            fi
            [ -n "$new_leader" ] && break
            [ "$SECONDS" -ge "$deadline" ] && break
            sleep 0.2
        done
        if [ -n "$new_leader" ]; then
            pass "walkthrough: new leader, server $new_leader, the other a follower ($(($(now_ms) - t)) ms)"
        else
            fail "walkthrough: new leader among the remaining participants" "modes after 30 s: $(walk_modes "${other[@]}" 4)" "$(walk_logs "${other[@]}" 4)"
        fi
        if [ -z "$observer_seen" ]; then
            pass "walkthrough: the observer stayed an observer"
        else
            fail "walkthrough: the observer stayed an observer" "server 4 reported Mode: $observer_seen"
        fi
        # A one-shot zkCli sends its command without waiting for a session, so when the
        # host it tries first is the killed one the command fails with ConnectionLoss (the
        # Java zkCli does the same); -waitforconnection waits for a session on a live one.
        capture /dev/null "${ZKCLI[@]}" -waitforconnection -server "$hosts" create /walkthrough-after-kill after-kill
        if [ "$RC" = 0 ] && printf '%s\n' "$ERR" | grep -qxF "Created /walkthrough-after-kill"; then
            pass "walkthrough: zkCli.sh -waitforconnection -server <all four> create /walkthrough-after-kill"
        else
            fail "walkthrough: zkCli.sh -waitforconnection -server <all four> create /walkthrough-after-kill" "got rc=$RC stdout:" "$OUT" "stderr:" "$ERR"
        fi

        # 6. The old leader comes back as a follower and has the write.
        run "${REAL[@]}" -- start "zoo$old.cfg"
        expect "walkthrough: start zoo$old.cfg again" "Starting zookeeper ... STARTED" 0
        pid="$(cat "$WALK/data/zk$old/zookeeper_server.pid" 2>/dev/null)"
        [ -n "$pid" ] && track "$pid" && walk_pids+=("${STARTED_PIDS[-1]}")
        t="$(now_ms)"
        deadline=$((SECONDS + 30))
        while :; do
            walk_status "$old"
            [ "${W_MODE[old]}" = follower ] && break
            [ "$SECONDS" -ge "$deadline" ] && break
            sleep 0.2
        done
        expect_status "$old" follower
        [ "${W_MODE[old]}" = follower ] && echo "     (back as a follower after $(($(now_ms) - t)) ms)"
        walk_status 1 2 3 4
        sorted="$(printf '%s\n' "${W_MODE[1]}" "${W_MODE[2]}" "${W_MODE[3]}" "${W_MODE[4]}" | sort | tr '\n' ' ')"
        if [ "$sorted" = "follower follower leader observer " ] && [ "${W_MODE[new_leader]:-}" = leader ]; then
            pass "walkthrough: again one leader (server $new_leader), two followers, one observer"
        else
            fail "walkthrough: again one leader, two followers, one observer" "modes: $(walk_modes 1 2 3 4)"
        fi
        printf 'sync /walkthrough-after-kill\nget /walkthrough-after-kill\n' >"$SCRATCH/sync_get.txt"
        capture "$SCRATCH/sync_get.txt" "${ZKCLI[@]}" -server "127.0.0.1:${WC[old]}"
        if [ "$RC" = 0 ] && has_block "$OUT" "Sync is OK" && has_block "$OUT" "after-kill"; then
            pass "walkthrough: zkCli.sh -server <server $old only>: sync, get /walkthrough-after-kill"
        else
            fail "walkthrough: zkCli.sh -server <server $old only>: sync, get /walkthrough-after-kill" "want rc=0 and the lines 'Sync is OK', 'after-kill'" "got rc=$RC stdout:" "$OUT" "stderr:" "$ERR"
        fi
    fi

    # 7. Stop all four.
    for n in 1 2 3 4; do
        run "${REAL[@]}" -- stop "zoo$n.cfg"
        expect "walkthrough: stop zoo$n.cfg" "Stopping zookeeper ... STOPPED" 0
    done
    left=""
    for pid in "${walk_pids[@]}"; do still_running "$pid" && left="$left ${pid%%:*}"; done
    if [ -z "$left" ]; then pass "walkthrough: no server left running"; else fail "walkthrough: no server left running" "alive:$left"; fi
    RUN_DIR="$SCRATCH"
    echo "     (walkthrough: $(($(now_ms) - t0)) ms)"
}

# ------------------------------------------------------------------ the real binary (opt-in)

if [ "${ZKSERVER_TEST_REAL:-}" = 1 ]; then
    if [ -z "$REAL_BIN" ] || [ ! -x "$REAL_BIN" ]; then
        fail "real binary" "set CORRAL_BIN to the built corral (got '$REAL_BIN')"
    else
        REAL=(CORRAL_BIN="$REAL_BIN")
        run "${REAL[@]}" -- --config "$CONF" start a.cfg
        expect "real: start" "Starting zookeeper ... STARTED" 0
        PID_R="$(cat "$SCRATCH/a/zookeeper_server.pid" 2>/dev/null)"
        [ -n "$PID_R" ] && track "$PID_R"
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

        # The walkthrough (ZKSERVER_TEST_WALKTHROUGH=0 leaves it out).
        if [ "${ZKSERVER_TEST_WALKTHROUGH:-1}" = 0 ]; then
            echo "skip - walkthrough: ZKSERVER_TEST_WALKTHROUGH=0"
        else
            walkthrough
        fi
        RUN_DIR="$SCRATCH"
    fi
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
