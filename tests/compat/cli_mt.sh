#!/usr/bin/env bash
# Drives Apache ZooKeeper's C client shell (cli_mt, from Debian's
# zookeeper-bin) against $ZK_HOSTS and checks what it prints.
#
# cli_mt reads commands on stdin and prints results on stderr, asynchronously
# (each result arrives when the server answers). One long session runs as a
# coprocess: each step sends a command and waits, bounded, for the line that
# proves its result. A second part uses batch mode (-c: one command, one
# session, exit after the answer) to look at what the first session left.
#
# Usage: ZK_HOSTS=127.0.0.1:PORT tests/compat/cli_mt.sh
# Env:   CLI_MT (default /usr/lib/zookeeper/bin/cli_mt), STEP_TIMEOUT_S (10),
#        ZK_CLUSTER (1: ZK_HOSTS is run.sh's 3 + 1 ensemble, whose
#        /zookeeper/config is not empty)
# Prints "cli_mt: N passed, M failed"; exits non-zero if any check failed.

set -u

CLI_MT=${CLI_MT:-/usr/lib/zookeeper/bin/cli_mt}
STEP_TIMEOUT_S=${STEP_TIMEOUT_S:-10}
: "${ZK_HOSTS:?ZK_HOSTS is not set (expected 127.0.0.1:PORT[,...])}"

if [[ ! -x $CLI_MT ]]; then
  echo "cli_mt: $CLI_MT not found (apt-get install zookeeper-bin)"
  echo "cli_mt: 0 passed, 1 failed"
  exit 1
fi

P="/climt-$$-$RANDOM"
passed=0
failed=0
LOG=""  # lines read while waiting for the current step

ok()   { passed=$((passed + 1)); echo "ok   $1"; }
fail() {
  failed=$((failed + 1))
  echo "FAIL $1"
  [[ -n $LOG ]] && printf '%s\n' "$LOG" | sed 's/^/    | /'
}

coproc CLI { exec "$CLI_MT" -h "$ZK_HOSTS" 2>&1; }
CLI_IN=${CLI[1]}
CLI_OUT=${CLI[0]}
# bash forgets CLI_PID once the coprocess ends: keep our own copy.
CLI_PROC=$CLI_PID

send() { printf '%s\n' "$1" >&"$CLI_IN"; }

# expect NEEDLE: read lines until one contains NEEDLE (fixed string), for at
# most STEP_TIMEOUT_S seconds. The line after the match is left unread.
expect() {
  local needle=$1 deadline=$((SECONDS + STEP_TIMEOUT_S)) line left
  LOG=""
  while :; do
    left=$((deadline - SECONDS))
    ((left > 0)) || return 1
    IFS= read -r -t "$left" line <&"$CLI_OUT" || return 1
    LOG+="$line"$'\n'
    [[ $line == *"$needle"* ]] && return 0
  done
}

# step NAME COMMAND NEEDLE [NEEDLE...]: send COMMAND, expect each NEEDLE in order.
step() {
  local name=$1 cmd=$2 needle
  shift 2
  [[ -n $cmd ]] && send "$cmd"
  for needle in "$@"; do
    if ! expect "$needle"; then
      fail "$name (no line containing: $needle)"
      return 1
    fi
  done
  ok "$name"
}

# children NAME PATH WANT...: ls PATH and compare the sorted child names.
children() {
  local name=$1 path=$2 line got="" deadline
  shift 2
  send "ls $path"
  if ! expect "$path: rc = 0"; then
    fail "$name (no ls result)"
    return 1
  fi
  deadline=$((SECONDS + STEP_TIMEOUT_S))
  while IFS= read -r -t $((deadline - SECONDS > 0 ? deadline - SECONDS : 1)) line <&"$CLI_OUT"; do
    [[ $line == time* ]] && break
    LOG+="$line"$'\n'
    got+="${line#$'\t'} "
  done
  # shellcheck disable=SC2086  # split the names on purpose
  got=$(printf '%s\n' $got | sort | tr '\n' ' ')
  local want
  want=$(printf '%s\n' "$@" | sort | tr '\n' ' ')
  if [[ $got == "$want" ]]; then ok "$name"; else LOG+="want: $want"$'\n'"got:  $got"; fail "$name"; fi
}

# batch NAME COMMAND NEEDLE: run one command in batch mode (its own session).
batch() {
  local name=$1 cmd=$2 needle=$3 out
  shift 3
  out=$(timeout "$STEP_TIMEOUT_S" "$CLI_MT" -h "$ZK_HOSTS" "$@" -c "$cmd" 2>&1)
  LOG=$out
  if [[ $out == *"$needle"* ]]; then ok "$name"; else fail "$name (no line containing: $needle)"; fi
}

# ------------------------------------------------------------------ session A

if ! step connect "" "Got a new session id: 0x"; then
  kill "$CLI_PROC" 2>/dev/null
  echo "cli_mt: $passed passed, $failed failed"
  exit 1
fi
step create "create $P" "[$P]: rc = 0" $'\tname = '"$P"
step create-existing "create $P" "[$P]: rc = -110"
step create-child "create $P/a" "[$P/a]: rc = 0"
step set "set $P/a hello" "$P/a: rc = 0 Stat:" $'\tversion=1\taversion=0'
step get "get $P/a" "$P/a: rc = 0" " value_len = 5" "hello"
step create-sequential "create +s $P/s-" "[$P/s-]: rc = 0" $'\tname = '"$P/s-0000000001"
step create-sequential-again "create +s $P/s-" $'\tname = '"$P/s-0000000002"
step create2-returns-stat "create2 $P/b" "[$P/b]: rc = 0" $'\tczxid=' $'\tversion=0\taversion=0'
step create-container "create +c $P/c" "[$P/c]: rc = 0"
step create-ttl "create +t=60000 $P/t" "[$P/t]: rc = 0"
step create-ephemeral "create +e $P/e" "[$P/e]: rc = 0"
step create-under-ephemeral "create $P/e/x" "[$P/e/x]: rc = -108"
step create-no-parent "create $P/missing/x" "[$P/missing/x]: rc = -101"
children ls "$P" a b c e s-0000000001 s-0000000002 t
step ls2-has-stat "ls2 $P" "$P: rc = 0" $'\tczxid='
step get-missing "get $P/missing" "$P/missing: rc = -101"
step delete-not-empty "delete $P" "$P: rc = -111"
step delete-missing "delete $P/missing" "$P/missing: rc = -101"
step sync "sync $P" "[$P]: rc = 0"
if [[ ${ZK_CLUSTER:-0} == 1 ]]; then
  # The 3 + 1 ensemble of run.sh --cluster: its membership, the observer last.
  step config "config" "/zookeeper/config: rc = 0" "server.1=127.0.0.1:" ":participant" ":observer" "version=0"
else
  step config "config" "/zookeeper/config: rc = 0" " value_len = 0"
fi
step delete-special-node "delete /zookeeper" "/zookeeper: rc = -8"
step set-config-node-no-auth "set /zookeeper/config x" "/zookeeper/config: rc = -102"
step create-under-config-no-auth "create /zookeeper/config/x" "[/zookeeper/config/x]: rc = -102"
step exists-watch-on-missing "wexists $P/w" "Error -101 for $P/w"
step created-event "create $P/w" "Watcher CREATED_EVENT state = CONNECTED_STATE for path $P/w"
send "wexists $P/w"
step changed-event "set $P/w x" "Watcher CHANGED_EVENT state = CONNECTED_STATE for path $P/w"
send "exists $P/e"
step deleted-event "delete $P/e" "Watcher DELETED_EVENT state = CONNECTED_STATE for path $P/e" "$P/e: rc = 0"
step async-get "aget $P/a" "$P/a: rc = 0" " value_len = 5" "hello"
step create-ephemeral-before-quit "create +e $P/e2" "[$P/e2]: rc = 0"
step quit "quit" "Quitting..."

exec {CLI_IN}>&- 2>/dev/null
# Polling is the only way to see a process end here; bounded.
for _ in $(seq 1 $((STEP_TIMEOUT_S * 10))); do
  kill -0 "$CLI_PROC" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$CLI_PROC" 2>/dev/null; then
  LOG=""
  fail "cli_mt exits after quit"
  kill "$CLI_PROC" 2>/dev/null
else
  ok "cli_mt exits after quit"
fi

# ------------------------------------------------------------------ batch mode

batch batch-get "get $P/a" "hello"
batch batch-read-only-get "get $P/a" "hello" -r
out=$(timeout "$STEP_TIMEOUT_S" "$CLI_MT" -h "$ZK_HOSTS" -c "ls $P" 2>&1)
LOG=$out
if [[ $out == *$'\ts-0000000002'* && $out != *$'\te2'* ]]; then
  ok "closed-session-removed-ephemeral"
else
  fail "closed-session-removed-ephemeral"
fi

# Cleanup (not counted).
for child in a b c s-0000000001 s-0000000002 t w; do
  timeout "$STEP_TIMEOUT_S" "$CLI_MT" -h "$ZK_HOSTS" -c "delete $P/$child" >/dev/null 2>&1
done
timeout "$STEP_TIMEOUT_S" "$CLI_MT" -h "$ZK_HOSTS" -c "delete $P" >/dev/null 2>&1

echo "cli_mt: $passed passed, $failed failed"
((failed == 0 && passed > 0))
