#!/usr/bin/env bash
# Shared environment for Corral's ZooKeeper-style scripts (zkServer.sh, zkCli.sh).
# Sourced, not run. Written for Corral; it follows the behaviour of Apache ZooKeeper 3.8's
# bin/zkEnv.sh where operators rely on it, and says so where it differs.
#
# Sets (each can be preset in the environment):
#   ZOOBINDIR   directory of the calling script
#   ZOOCFGDIR   config directory (default: <script dir>/conf); `--config DIR` overrides it
#   ZOOCFG      config file name inside ZOOCFGDIR (default: zoo.cfg)
#   CORRAL      the corral binary: $CORRAL_BIN, else <script dir>/../target/release/corral,
#               else `corral` on PATH; empty if none is found
# and sources $ZOOCFGDIR/zookeeper-env.sh when present (as ZooKeeper does), which is the
# place for ZOO_LOG_DIR, ZOOPIDFILE, CORRAL_BIN and the timeouts below.
#
# Functions:
#   zk_cfg_get FILE KEY      print the value of KEY in a properties file (last one wins)
#   zk_four_letter H P CMD   send a four-letter word to H:P and print the raw reply

ZOOBINDIR="${ZOOBINDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
ZOOCFGDIR="${ZOOCFGDIR:-$ZOOBINDIR/conf}"
ZOOCFG="${ZOOCFG:-zoo.cfg}"

if [ -f "$ZOOCFGDIR/zookeeper-env.sh" ]; then
    # shellcheck source=/dev/null
    . "$ZOOCFGDIR/zookeeper-env.sh"
fi

zk_find_corral() {
    if [ -n "$CORRAL_BIN" ]; then
        printf '%s\n' "$CORRAL_BIN"
    elif [ -x "$ZOOBINDIR/../target/release/corral" ]; then
        printf '%s\n' "$ZOOBINDIR/../target/release/corral"
    else
        command -v corral 2>/dev/null
    fi
}
CORRAL="$(zk_find_corral)"

# Reads one key from a Java-properties file: comments, blank lines, `=`, `:` or blank as the
# separator, surrounding blanks and backslash-continued lines are handled; escapes are not
# (the server itself reads the full grammar; these scripts only need dataDir, ports, server.N).
zk_cfg_get() {
    local file="$1" key="$2"
    [ -r "$file" ] || return 1
    awk -v want="$key" '
        BEGIN { found = 0; cont = 0 }
        {
            line = $0
            sub(/\r$/, "", line)
            if (cont) {
                sub(/^[ \t\f]+/, "", line)
                logical = logical line
            } else {
                sub(/^[ \t\f]+/, "", line)
                if (line == "" || line ~ /^[#!]/) next
                logical = line
            }
            trailing = 0
            if (match(logical, /\\+$/)) trailing = RLENGTH
            if (trailing % 2 == 1) {
                logical = substr(logical, 1, length(logical) - 1)
                cont = 1
                next
            }
            cont = 0
            if (match(logical, /[=: \t\f]/)) {
                k = substr(logical, 1, RSTART - 1)
                rest = substr(logical, RSTART)
            } else {
                k = logical
                rest = ""
            }
            sub(/^[ \t\f]*/, "", rest)
            if (rest ~ /^[=:]/) rest = substr(rest, 2)
            sub(/^[ \t\f]*/, "", rest)
            sub(/[ \t\f]+$/, "", rest)
            if (k == want) { value = rest; found = 1 }
        }
        END { if (found) print value; exit(found ? 0 : 1) }
    ' "$file"
}

# `host:port`, with IPv6 hosts in brackets.
zk_host_port() {
    case "$1" in
        *:*) printf '[%s]:%s\n' "$1" "$2" ;;
        *) printf '%s:%s\n' "$1" "$2" ;;
    esac
}

# Sends a four-letter word and prints the reply. Uses `corral 4lw HOST:PORT CMD` when the
# binary is there, else bash's /dev/tcp (set ZOO_4LW_CLIENT=bash to force that). Bounded by
# ZOO_4LW_TIMEOUT_S (default 5) seconds.
zk_four_letter() {
    local host="$1" port="$2" cmd="$3" timeout_s="${ZOO_4LW_TIMEOUT_S:-5}"
    if [ -n "$CORRAL" ] && [ "${ZOO_4LW_CLIENT:-corral}" != bash ]; then
        timeout "$timeout_s" "$CORRAL" 4lw "$(zk_host_port "$host" "$port")" "$cmd"
        return
    fi
    # shellcheck disable=SC2016 # the inner script expands its own arguments
    timeout "$timeout_s" bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "%s" "$3" >&3
        cat <&3
    ' zk_four_letter "$host" "$port" "$cmd"
}
