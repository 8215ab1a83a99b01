#!/usr/bin/env bash
# zkServer.sh for Corral: start, stop and check a Corral server the way Apache ZooKeeper
# 3.8's bin/zkServer.sh does, with the same arguments, output lines, streams and exit codes,
# so runbooks and the classic walkthrough work unchanged.
#
#   zkServer.sh [--config DIR] {start|start-foreground|stop|restart|status|version|print-cmd} [CFG]
#
# The server is `corral server CFG` (foreground; a bad config makes it exit non-zero with a
# one-line reason on stderr). Four-letter words go through `corral 4lw HOST:PORT CMD`.
#
# Where this script differs from ZooKeeper's, on purpose:
# - No JMX line. ZooKeeper prints "ZooKeeper JMX enabled by default" on stderr before
#   "Using config: ..."; Corral has no JMX, so that line would be false. The stderr stream
#   keeps its shape otherwise: "Using config: <path>" comes first, as in ZooKeeper.
# - A bare CFG name missing from the config dir but present in the working directory is used
#   from there (ZooKeeper would look only in the config dir), so `zkServer.sh start zoo1.cfg`
#   works from the directory holding zoo1.cfg.
# - `start` waits (up to ZOO_START_TIMEOUT_S, default 10 s) until the server answers `srvr`
#   on its client port, instead of sleeping 1 s; if the server exits first it prints
#   "FAILED TO START" and the server's own one-line reason on stderr, removes the pid file and
#   exits 1. A server still alive but silent at the deadline is reported STARTED, with a note.
# - `stop` waits (up to ZOO_STOP_TIMEOUT_S, default 10 s) for the process to exit, then
#   kills it with SIGKILL, instead of sleeping 1 s; `restart` therefore needs no extra sleep.
# - ZOO_LOG_DIR defaults to <dataDir>/logs (ZooKeeper: <install dir>/logs), so that the
#   instances of a pseudo-cluster do not share one zookeeper-$USER-server-$HOSTNAME.out.
# - A usage error exits 1 (ZooKeeper exits 0).
# - A missing config file is reported once (ZooKeeper prints a grep error per key it reads).

set -o pipefail

usage() {
    echo "Usage: $0 [--config <conf-dir>] {start|start-foreground|stop|version|restart|status|print-cmd}" >&2
}

# --config DIR must come first, as in ZooKeeper.
if [ "$1" = "--config" ]; then
    if [ $# -lt 2 ]; then
        usage
        exit 1
    fi
    ZOOCFGDIR="$2"
    CONFIG_ARGS=(--config "$2")
    shift 2
else
    CONFIG_ARGS=()
fi

ZOOBINDIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/zkEnv.sh
. "$ZOOBINDIR/zkEnv.sh"

COMMAND="$1"
CFG_ARG="$2"

# Config resolution: a name with a slash is a path; a bare name is looked up in ZOOCFGDIR,
# then in the working directory; no name means $ZOOCFGDIR/$ZOOCFG.
if [ -z "$CFG_ARG" ]; then
    ZOOCFG="$ZOOCFGDIR/$ZOOCFG"
elif [ "${CFG_ARG#*/}" != "$CFG_ARG" ]; then
    ZOOCFG="$CFG_ARG"
elif [ ! -e "$ZOOCFGDIR/$CFG_ARG" ] && [ -e "$CFG_ARG" ]; then
    ZOOCFG="$PWD/$CFG_ARG"
else
    ZOOCFG="$ZOOCFGDIR/$CFG_ARG"
fi

echo "Using config: $ZOOCFG" >&2

require_config() {
    if [ ! -r "$ZOOCFG" ]; then
        echo "Config file not found or not readable: $ZOOCFG" >&2
        exit 1
    fi
}

require_corral() {
    if [ -n "$CORRAL" ] && { [ -x "$CORRAL" ] || command -v "$CORRAL" >/dev/null 2>&1; }; then
        return 0
    fi
    echo "corral binary not found: set CORRAL_BIN, build it with 'cargo build --release', or put corral on PATH" >&2
    return 1
}

# Paths derived from the config: data dir, pid file, daemon output.
setup_paths() {
    ZOO_DATADIR="$(zk_cfg_get "$ZOOCFG" dataDir)"
    ZOO_DATALOGDIR="$(zk_cfg_get "$ZOOCFG" dataLogDir)"
    if [ -n "$ZOO_DATADIR_AUTOCREATE_DISABLE" ]; then
        if [ ! -d "$ZOO_DATADIR/version-2" ]; then
            echo "ZooKeeper data directory is missing at $ZOO_DATADIR fix the path or run initialize"
            exit 1
        fi
        if [ -n "$ZOO_DATALOGDIR" ] && [ ! -d "$ZOO_DATALOGDIR/version-2" ]; then
            echo "ZooKeeper txnlog directory is missing at $ZOO_DATALOGDIR fix the path or run initialize"
            exit 1
        fi
    fi
    if [ -z "$ZOOPIDFILE" ]; then
        if [ -z "$ZOO_DATADIR" ]; then
            echo "dataDir is not set in $ZOOCFG, so there is no place for the pid file (or set ZOOPIDFILE)" >&2
            exit 1
        fi
        ZOOPIDFILE="$ZOO_DATADIR/zookeeper_server.pid"
    fi
    ZOO_LOG_DIR="${ZOO_LOG_DIR:-${ZOO_DATADIR:-$(dirname "$ZOOPIDFILE")}/logs}"
    ZOO_USER="${USER:-$(id -un 2>/dev/null)}"
    ZOO_DAEMON_OUT="$ZOO_LOG_DIR/zookeeper-$ZOO_USER-server-$HOSTNAME.out"
}

is_number() {
    [[ "$1" =~ ^[0-9]+$ ]]
}

# Finds the client port the way ZooKeeper's status does: clientPort/clientPortAddress, else
# the `;[host:]port` part of server.<myid> (static config, then dynamic file), else
# secureClientPort. Sets CLIENT_PORT, CLIENT_ADDRESS, CLIENT_SSL. With "verbose" it prints
# ZooKeeper's messages on stdout; returns 1 when no port is found.
discover_client_port() {
    local verbose="$1" say=: data_dir myid client_part dynamic_file
    [ "$verbose" = verbose ] && say="echo"
    CLIENT_SSL=false
    CLIENT_ADDRESS="$(zk_cfg_get "$ZOOCFG" clientPortAddress)"
    [ -n "$CLIENT_ADDRESS" ] || CLIENT_ADDRESS=localhost
    CLIENT_PORT="$(zk_cfg_get "$ZOOCFG" clientPort)"
    if ! is_number "$CLIENT_PORT" || [ "$CLIENT_PORT" = 0 ]; then
        CLIENT_PORT=""
        data_dir="$(zk_cfg_get "$ZOOCFG" dataDir)"
        myid="$(head -n 1 "$data_dir/myid" 2>/dev/null | tr -d '[:space:]')"
        if ! is_number "$myid"; then
            $say "myid could not be determined, will not able to locate clientPort in the server configs."
        else
            client_part="$(zk_cfg_get "$ZOOCFG" "server.$myid")"
            case "$client_part" in *";"*) client_part="${client_part##*;}" ;; *) client_part="" ;; esac
            if [ -z "$client_part" ]; then
                $say "Client port not found in static config file. Looking in dynamic config file."
                dynamic_file="$(zk_cfg_get "$ZOOCFG" dynamicConfigFile)"
                if [ -n "$dynamic_file" ]; then
                    client_part="$(zk_cfg_get "$dynamic_file" "server.$myid")"
                    case "$client_part" in *";"*) client_part="${client_part##*;}" ;; *) client_part="" ;; esac
                fi
            fi
            if [ -z "$client_part" ]; then
                $say "Client port not found in the server configs"
            else
                if [[ "$client_part" =~ ^\[(.*)\]:([0-9]+)$ ]]; then
                    CLIENT_ADDRESS="${BASH_REMATCH[1]}"
                    CLIENT_PORT="${BASH_REMATCH[2]}"
                elif [[ "$client_part" =~ ^(.*):([0-9]+)$ ]]; then
                    CLIENT_ADDRESS="${BASH_REMATCH[1]}"
                    CLIENT_PORT="${BASH_REMATCH[2]}"
                else
                    CLIENT_PORT="$client_part"
                fi
            fi
        fi
    fi
    if [ -z "$CLIENT_PORT" ]; then
        $say "Client port not found. Looking for secureClientPort in the static config."
        CLIENT_PORT="$(zk_cfg_get "$ZOOCFG" secureClientPort)"
        if [ -n "$CLIENT_PORT" ]; then
            CLIENT_SSL=true
            CLIENT_ADDRESS="$(zk_cfg_get "$ZOOCFG" secureClientPortAddress)"
            [ -n "$CLIENT_ADDRESS" ] || CLIENT_ADDRESS=localhost
        else
            $say "Unable to find either secure or unsecure client port in any configs. Terminating."
            return 1
        fi
    fi
    return 0
}

# A process that exists and is not a zombie (a killed daemon lingers as one until init reaps
# it, which can take a while in containers).
pid_alive() {
    [ -n "$1" ] && kill -0 "$1" >/dev/null 2>&1 || return 1
    local state
    state="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d ' ' -f 1)"
    [ "$state" != Z ]
}

read_pid() {
    [ -f "$ZOOPIDFILE" ] && tr -d '[:space:]' <"$ZOOPIDFILE"
}

# Last non-empty line of the daemon output: the server's reason for exiting.
exit_reason() {
    awk 'NF { last = $0 } END { print last }' "$ZOO_DAEMON_OUT" 2>/dev/null
}

do_start() {
    require_config
    setup_paths
    echo -n "Starting zookeeper ... "
    local pid
    pid="$(read_pid)"
    if pid_alive "$pid"; then
        echo "already running as process $pid."
        exit 1
    fi
    if ! require_corral; then
        echo "SERVER DID NOT START"
        exit 1
    fi
    mkdir -p "$(dirname "$ZOOPIDFILE")" "$ZOO_LOG_DIR" || {
        echo "SERVER DID NOT START"
        exit 1
    }
    nohup "$CORRAL" server "$ZOOCFG" >"$ZOO_DAEMON_OUT" 2>&1 </dev/null &
    pid=$!
    if ! echo -n "$pid" >"$ZOOPIDFILE"; then
        echo "FAILED TO WRITE PID"
        exit 1
    fi

    local can_probe=false polls=0 deadline_s now_s reply reason
    discover_client_port quiet && [ "$CLIENT_SSL" = false ] && can_probe=true
    deadline_s=$(($(date +%s) + ${ZOO_START_TIMEOUT_S:-10}))
    while :; do
        if ! pid_alive "$pid"; then
            wait "$pid" 2>/dev/null
            rm -f "$ZOOPIDFILE"
            echo "FAILED TO START"
            reason="$(exit_reason)"
            echo "${reason:-the server exited without a message; see $ZOO_DAEMON_OUT}" >&2
            exit 1
        fi
        if [ "$can_probe" = true ]; then
            reply="$(ZOO_4LW_TIMEOUT_S=1 zk_four_letter "$CLIENT_ADDRESS" "$CLIENT_PORT" srvr 2>/dev/null)"
            if [ -n "$reply" ]; then
                echo STARTED
                exit 0
            fi
        fi
        now_s=$(date +%s)
        if [ "$can_probe" = false ] && [ "$polls" -ge 5 ]; then
            # No plain client port to ask: alive after a second is all we can tell.
            echo STARTED
            exit 0
        fi
        if [ "$now_s" -ge "$deadline_s" ]; then
            echo STARTED
            echo "Note: process $pid is running but did not answer on $(zk_host_port "$CLIENT_ADDRESS" "$CLIENT_PORT") within ${ZOO_START_TIMEOUT_S:-10} s; see $ZOO_DAEMON_OUT" >&2
            exit 0
        fi
        polls=$((polls + 1))
        sleep 0.2
    done
}

do_stop() {
    require_config
    setup_paths
    echo -n "Stopping zookeeper ... "
    if [ ! -f "$ZOOPIDFILE" ]; then
        echo "no zookeeper to stop (could not find file $ZOOPIDFILE)"
        exit 0
    fi
    local pid deadline_s
    pid="$(read_pid)"
    if pid_alive "$pid"; then
        kill "$pid" 2>/dev/null
        deadline_s=$(($(date +%s) + ${ZOO_STOP_TIMEOUT_S:-10}))
        while pid_alive "$pid" && [ "$(date +%s)" -lt "$deadline_s" ]; do
            sleep 0.1
        done
        if pid_alive "$pid"; then
            kill -9 "$pid" 2>/dev/null
            echo "process $pid did not exit within ${ZOO_STOP_TIMEOUT_S:-10} s; sent SIGKILL" >&2
            for _ in 1 2 3 4 5 6 7 8 9 10; do
                pid_alive "$pid" || break
                sleep 0.1
            done
        fi
    fi
    rm -f "$ZOOPIDFILE"
    echo STOPPED
    exit 0
}

do_status() {
    require_config
    discover_client_port verbose || exit 1
    echo "Client port found: $CLIENT_PORT. Client address: $CLIENT_ADDRESS. Client SSL: $CLIENT_SSL."
    local mode
    mode="$(zk_four_letter "$CLIENT_ADDRESS" "$CLIENT_PORT" srvr 2>/dev/null | grep Mode)"
    if [ -z "$mode" ]; then
        if [ "$CLIENT_SSL" = true ]; then
            echo " "
            echo "Note: only secureClientPort ($CLIENT_PORT) was found, and this status check does not speak TLS."
            echo "  Set a plain clientPort (it may listen on 127.0.0.1 only) to use zkServer.sh status."
            echo " "
        fi
        echo "Error contacting service. It is probably not running."
        exit 1
    fi
    echo "$mode"
    exit 0
}

case "$COMMAND" in
    start)
        do_start
        ;;
    start-foreground)
        require_config
        require_corral || exit 1
        if [ -n "$ZOO_NOEXEC" ]; then
            "$CORRAL" server "$ZOOCFG"
        else
            exec "$CORRAL" server "$ZOOCFG"
        fi
        ;;
    print-cmd)
        require_config
        setup_paths
        echo "\"${CORRAL:-corral}\" server \"$ZOOCFG\" > \"$ZOO_DAEMON_OUT\" 2>&1 < /dev/null"
        ;;
    stop)
        do_stop
        ;;
    restart)
        "$0" "${CONFIG_ARGS[@]}" stop "$CFG_ARG"
        "$0" "${CONFIG_ARGS[@]}" start "$CFG_ARG"
        ;;
    status)
        do_status
        ;;
    version)
        require_corral || exit 1
        "$CORRAL" version
        ;;
    *)
        usage
        exit 1
        ;;
esac
