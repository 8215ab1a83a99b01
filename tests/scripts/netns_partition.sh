#!/usr/bin/env bash
# A multi-host test of Corral's replication, in plain bash: four network namespaces, one
# server each, joined by a bridge; the leader is cut off from the others and joined again.
#
#   CORRAL_BIN=target/release/corral tests/scripts/netns_partition.sh
#
# Needs root and `ip` with network namespace, veth and bridge support; without them it
# prints `skip: <why>` and exits 0. CORRAL_BIN defaults to target/release/corral.
#
# What it builds (every name carries this script's pid, and everything is removed on exit,
# on failure and on SIGINT/SIGTERM):
#   - a namespace holding only a bridge, and five namespaces each joined to it by a veth
#     pair: four server hosts 10.213.0.1 .. 10.213.0.4 and a client host 10.213.0.10
#     (10.213.0.0/24, reachable from nowhere else, not even from the root namespace);
#   - zoo1.cfg .. zoo4.cfg as the operator's walkthrough writes them, but as a real
#     multi-host cluster would: every server on its own address with the same ports
#     (clientPort 2181, server.N=10.213.0.N:2888:3888, server.4 an observer).
# What it checks:
#   1. one leader, two followers, one observer;
#   2. creates through a client connected to all four, each acknowledged one recorded,
#      while a second client keeps creating nodes across the partition below;
#   3. the leader's bridge port detached (a silent partition: nothing crosses in either
#      direction, no link goes down): a client pinned to the old leader cannot write, the
#      two other participants elect a new leader, creates through the majority side
#      succeed, and the old leader's `srvr` says it is not serving;
#   4. the port attached again: the old leader rejoins as a follower; after `sync` every
#      server holds every acknowledged node, all four hold the same nodes, and none holds
#      the writes tried on the isolated old leader.
# Everything is bounded: each wait has a deadline and the whole run stops after
# NETNS_TEST_LIMIT seconds (default 90). NETNS_TEST_KEEP=1 keeps the scratch directory
# (configs, data directories, server logs zkN.log, client outputs).

set -u

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${CORRAL_BIN:-$REPO/target/release/corral}"
LIMIT="${NETNS_TEST_LIMIT:-90}"
ID="$$"
PREFIX="corral$ID"
NS_BR="$PREFIX-br"
NS_C="$PREFIX-c"
NET="10.213.0"
CLIENT_ADDR="$NET.10"
# shellcheck source=tests/scripts/report.sh
. "$REPO/tests/scripts/report.sh"
SCRATCH=""
CREATED_NS=()   # namespaces created, removed on exit
STARTED=()      # pid:start-time of every process group started (its leader's pid)
FEEDER=""       # pid:start-time of the subshell feeding the background writer
declare -a NS=() ADDR=() MODE=() SRVR=() PID=()

now_ms() {
    date +%s%3N
}

# The start time of process PID (clock ticks since boot), empty if there is none: a pid and
# its start time name one process, where a pid alone may meanwhile name another one.
proc_start() {
    sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d ' ' -f 20
}

track() {
    STARTED+=("$1:$(proc_start "$1")")
}

# spawn CMD...: CMD in the background as the leader of a process group of its own (setsid
# execs it, so $! is CMD's pid), tracked and disowned: cleanup kills the whole group, which
# takes `timeout`, `ip netns exec` and what they run together.
spawn() {
    # `<&0`: without it a background command's stdin is /dev/null, not the caller's.
    setsid "$@" <&0 &
    SPAWNED=$!
    track "$SPAWNED"
    disown "$SPAWNED"
}

# still_running PID:START: that very process still runs.
still_running() {
    local pid="${1%%:*}" start="${1#*:}"
    [ -n "$start" ] && [ "$(proc_start "$pid")" = "$start" ]
}

cleanup() {
    local entry ns deadline
    trap - EXIT INT TERM HUP
    for entry in "${STARTED[@]}"; do
        still_running "$entry" && kill -KILL -- "-${entry%%:*}" 2>/dev/null
    done
    [ -n "$FEEDER" ] && still_running "$FEEDER" && kill "${FEEDER%%:*}" 2>/dev/null
    # A namespace outlives `ip netns delete` while a process still runs in it: wait
    # (bounded) for the killed ones to be gone first.
    deadline=$((SECONDS + 5))
    for entry in "${STARTED[@]}"; do
        while still_running "$entry" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    done
    # Deleting a namespace deletes the veth ends and the bridge inside it.
    for ns in "${CREATED_NS[@]}"; do
        ip netns delete "$ns" 2>/dev/null
    done
    [ -n "$SCRATCH" ] && [ -z "${NETNS_TEST_KEEP:-}" ] && rm -rf "$SCRATCH"
}
# A signal ends the script through `exit`, so that the EXIT trap removes everything.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

skip() {
    echo "skip: $1"
    exit 0
}



# cap N: N seconds, or fewer if the whole run's limit comes first (at least 1).
cap() {
    local left=$((END - SECONDS))
    [ "$left" -gt "$1" ] && left="$1"
    [ "$left" -lt 1 ] && left=1
    echo "$left"
}

# in_time STEP: ends the run (as a failure) when the whole run's limit has passed.
in_time() {
    if [ "$SECONDS" -ge "$END" ]; then
        fail "the whole run within $LIMIT s" "the limit came before: $1"
        echo "$PASSED passed, $FAILED failed"
        exit 1
    fi
}

# ------------------------------------------------------------------ prerequisites

[ "$(id -u)" = 0 ] || skip "not root (network namespaces need CAP_SYS_ADMIN)"
command -v ip >/dev/null 2>&1 || skip "no 'ip' command (iproute2)"
command -v timeout >/dev/null 2>&1 || skip "no 'timeout' command (coreutils)"
command -v setsid >/dev/null 2>&1 || skip "no 'setsid' command (util-linux)"
timeout 5 ip netns list >/dev/null 2>&1 || skip "'ip netns' does not work here"
if [ ! -x "$BIN" ]; then
    echo "FAIL - corral binary: '$BIN' is not executable (build it, or set CORRAL_BIN)"
    echo "0 passed, 1 failed"
    exit 1
fi
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
START_MS="$(now_ms)"
END=$((SECONDS + LIMIT))
trap cleanup EXIT

# ------------------------------------------------------------------ the network

# add_ns NAME: a namespace with its loopback up.
add_ns() {
    timeout 5 ip netns add "$1" || return 1
    CREATED_NS+=("$1")
    timeout 5 ip -n "$1" link set lo up
}

# add_host NAME ADDR PORT: namespace NAME with eth0 at ADDR/24, whose peer PORT is a port of
# the bridge.
add_host() {
    add_ns "$1" &&
        timeout 5 ip link add eth0 netns "$1" type veth peer name "$3" netns "$NS_BR" &&
        timeout 5 ip -n "$1" addr add "$2/24" dev eth0 &&
        timeout 5 ip -n "$1" link set eth0 up &&
        timeout 5 ip -n "$NS_BR" link set "$3" master br0 &&
        timeout 5 ip -n "$NS_BR" link set "$3" up
}

setup_network() {
    local n
    add_ns "$NS_BR" &&
        timeout 5 ip -n "$NS_BR" link add br0 type bridge &&
        timeout 5 ip -n "$NS_BR" link set br0 up || return 1
    for n in 1 2 3 4; do
        NS[n]="$PREFIX-$n"
        ADDR[n]="$NET.$n"
        add_host "${NS[n]}" "${ADDR[n]}" "port$n" || return 1
    done
    add_host "$NS_C" "$CLIENT_ADDR" portc
}

if ! setup_network 2>"${TMPDIR:-/tmp}/$PREFIX-setup.err"; then
    why="$(head -n 1 "${TMPDIR:-/tmp}/$PREFIX-setup.err")"
    rm -f "${TMPDIR:-/tmp}/$PREFIX-setup.err"
    cleanup
    skip "cannot build the namespaces, veth pairs and bridge (${why:-unknown error})"
fi
rm -f "${TMPDIR:-/tmp}/$PREFIX-setup.err"
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/netns-partition.XXXXXX")"
HOSTS="${ADDR[1]}:2181,${ADDR[2]}:2181,${ADDR[3]}:2181,${ADDR[4]}:2181"

# ------------------------------------------------------------------ the servers

for n in 1 2 3 4; do
    mkdir -p "$SCRATCH/data/zk$n"
    echo "$n" >"$SCRATCH/data/zk$n/myid"
    cat >"$SCRATCH/zoo$n.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$SCRATCH/data/zk$n
clientPort=2181
server.1=${ADDR[1]}:2888:3888
server.2=${ADDR[2]}:2888:3888
server.3=${ADDR[3]}:2888:3888
server.4=${ADDR[4]}:2888:3888:observer
corral.shards=1
corral.ioMemoryKb=512
admin.enableServer=false
4lw.commands.whitelist=*
CFG
done

for n in 1 2 3 4; do
    spawn ip netns exec "${NS[n]}" "$BIN" server "$SCRATCH/zoo$n.cfg" >"$SCRATCH/zk$n.log" 2>&1 </dev/null
    PID[n]="$SPAWNED"
done

# status N...: `srvr` of each server, asked from its own host; sets SRVR[N] and MODE[N]
# (`not serving` when it says so, empty when it does not answer).
status() {
    local n
    for n in "$@"; do
        SRVR[n]="$(timeout 3 ip netns exec "${NS[n]}" "$BIN" 4lw "${ADDR[n]}:2181" srvr 2>&1)"
        MODE[n]="$(printf '%s\n' "${SRVR[n]}" | sed -n 's/^Mode: //p')"
        if [ -z "${MODE[n]}" ] && printf '%s\n' "${SRVR[n]}" | grep -q "not currently serving requests"; then
            MODE[n]="not serving"
        fi
    done
}

modes() {
    local n s=""
    for n in "$@"; do s="$s $n:${MODE[n]:-no answer}"; done
    echo "${s# }"
}

sorted_modes() {
    printf '%s\n' "${MODE[1]}" "${MODE[2]}" "${MODE[3]}" "${MODE[4]}" | sort | tr '\n' ' '
}

# logs N...: the last lines of each server's log, for failure messages.
logs() {
    local n
    for n in "$@"; do
        echo "server $n log (last lines):"
        tail -n 8 "$SCRATCH/zk$n.log" 2>/dev/null | sed 's/^/  /'
    done
}

# 1. One leader, two followers, one observer.
t="$(now_ms)"
deadline=$((SECONDS + $(cap 30)))
while :; do
    status 1 2 3 4
    [ "$(sorted_modes)" = "follower follower leader observer " ] && break
    [ "$SECONDS" -ge "$deadline" ] && break
    sleep 0.2
done
LEADER=""
for n in 1 2 3; do [ "${MODE[n]}" = leader ] && LEADER="$n"; done
if [ "$(sorted_modes)" = "follower follower leader observer " ] && [ "${MODE[4]}" = observer ]; then
    pass "one leader (server $LEADER), two followers, one observer (server 4) ($(($(now_ms) - t)) ms)"
else
    fail "one leader, two followers, one observer (server 4)" "modes: $(modes 1 2 3 4)" "$(logs 1 2 3 4)"
    echo "$PASSED passed, $FAILED failed"
    exit 1
fi

# ------------------------------------------------------------------ writes

# cli NS SECONDS ARGS...: `corral cli ARGS` on host NS, stdin from the caller, bounded; sets
# OUT, ERR and RC.
cli() {
    local ns="$1" secs="$2"
    shift 2
    timeout -k 2 "$secs" ip netns exec "$ns" "$BIN" cli "$@" >"$SCRATCH/.out" 2>"$SCRATCH/.err"
    RC=$?
    OUT="$(cat "$SCRATCH/.out")"
    ERR="$(cat "$SCRATCH/.err")"
}

# acked FILE: the paths a cli's stderr FILE reports as created, one a line.
acked() {
    sed -n 's/^Created \(\/netns\/.*\)$/\1/p' "$1"
}

# 2. A batch of creates through a client connected to all four servers.
in_time "the first creates"
{
    echo "create /netns root"
    for k in $(seq 1 20); do echo "create /netns/a-$k a-$k"; done
} >"$SCRATCH/batch-a.txt"
t="$(now_ms)"
cli "$NS_C" "$(cap 20)" -timeout 8000 -waitforconnection -server "$HOSTS" <"$SCRATCH/batch-a.txt"
printf '%s\n' "$ERR" >"$SCRATCH/batch-a.err"
acked "$SCRATCH/batch-a.err" >"$SCRATCH/acked-a"
n_a="$(grep -c . "$SCRATCH/acked-a")"
if [ "$n_a" = 20 ]; then
    pass "20 creates through a client connected to all four, all acknowledged ($(($(now_ms) - t)) ms)"
else
    fail "20 creates through a client connected to all four" "acknowledged: $n_a" "rc=$RC stderr:" "$ERR"
fi

in_time "the writer across the partition"
# A second client connected to all four keeps creating /netns/c-K, one at a time, from
# before the partition until the majority side has been written to (at most 300 nodes).
STOP="$SCRATCH/stop-writer"
# The feeder starts first: `spawn`'s redirections are opened by this shell, and opening a
# FIFO for reading waits for a writer.
mkfifo "$SCRATCH/writer.in"
(
    for k in $(seq 1 300); do
        [ -e "$STOP" ] && break
        echo "create /netns/c-$k c-$k"
        sleep 0.05
    done
) >"$SCRATCH/writer.in" &
FEEDER="$!:$(proc_start $!)"
disown "${FEEDER%%:*}"
spawn timeout -k 2 "$(cap 70)" ip netns exec "$NS_C" "$BIN" cli -timeout 8000 -waitforconnection -server "$HOSTS" \
    <"$SCRATCH/writer.in" >"$SCRATCH/writer.out" 2>"$SCRATCH/writer.err"
WRITER="$SPAWNED"
# Let the writer get going before the partition (20 acknowledgements).
deadline=$((SECONDS + $(cap 10)))
until [ "$(acked "$SCRATCH/writer.err" | grep -c .)" -ge 20 ] || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.05; done

# ------------------------------------------------------------------ the partition

OLD="$LEADER"
OTHERS=()
for n in 1 2 3; do [ "$n" != "$OLD" ] && OTHERS+=("$n"); done

in_time "the partition"
# 3. Detach the old leader's bridge port: its frames reach no one, no one's reach it.
T_PART="$(now_ms)"
n_c_before="$(acked "$SCRATCH/writer.err" | grep -c .)"
if timeout 5 ip -n "$NS_BR" link set "port$OLD" nomaster; then
    pass "partition: server $OLD (the leader) cut off from the bridge"
else
    fail "partition: server $OLD cut off from the bridge" "ip -n $NS_BR link set port$OLD nomaster failed"
fi

# A client pinned to the old leader, on its own host, tries to create a node at once (the
# old leader may still believe it leads) and again once it says it is not serving.
# minority TAG: starts that attempt in the background, its pid in SPAWNED.
minority() {
    printf 'create /netns/minority-%s x\n' "$1" >"$SCRATCH/minority-$1.in"
    spawn timeout -k 2 "$(cap 25)" ip netns exec "${NS[OLD]}" "$BIN" cli -timeout 6000 -server "${ADDR[OLD]}:2181" \
        <"$SCRATCH/minority-$1.in" >"$SCRATCH/minority-$1.out" 2>"$SCRATCH/minority-$1.err"
}
# minority_wait TAG PID T0: waits (bounded) for that attempt; how long it took in a file.
minority_wait() {
    local deadline=$((SECONDS + $(cap 30)))
    while kill -0 "$2" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    echo $(($(now_ms) - $3)) >"$SCRATCH/minority-$1.ms"
}
T_EARLY="$(now_ms)"
minority early
MINORITY="$SPAWNED"

# The two other participants elect one of them; the observer stays an observer; the old
# leader stops serving. Polled together, each recorded the first time it is seen.
t_new="" t_stop="" NEW="" observer_seen=""
deadline=$((SECONDS + $(cap 40)))
while :; do
    [ -z "$t_new" ] && status "${OTHERS[@]}" 4
    [ -z "$t_stop" ] && status "$OLD"
    case "${MODE[4]}" in observer | "not serving" | "") ;; *) observer_seen="${MODE[4]}" ;; esac
    if [ -z "$t_new" ] && [ "${MODE[4]}" = observer ]; then
        case "${MODE[${OTHERS[0]}]} ${MODE[${OTHERS[1]}]}" in
        "leader follower") NEW="${OTHERS[0]}" ;;
        "follower leader") NEW="${OTHERS[1]}" ;;
        esac
        [ -n "$NEW" ] && t_new=$(($(now_ms) - T_PART))
    fi
    [ -z "$t_stop" ] && [ "${MODE[OLD]}" = "not serving" ] && t_stop=$(($(now_ms) - T_PART))
    [ -n "$t_new" ] && [ -n "$t_stop" ] && break
    [ "$SECONDS" -ge "$deadline" ] && break
    sleep 0.2
done
if [ -n "$t_new" ]; then
    pass "partition: new leader server $NEW, the other participant its follower, server 4 an observer ($t_new ms after the cut)"
else
    fail "partition: a new leader among servers ${OTHERS[*]}" "modes: $(modes "${OTHERS[@]}" 4)" "$(logs "${OTHERS[@]}" 4)"
fi
if [ -z "$observer_seen" ]; then
    pass "partition: the observer never reported another mode"
else
    fail "partition: the observer never reported another mode" "server 4 reported Mode: $observer_seen"
fi
if [ -n "$t_stop" ]; then
    pass "partition: the old leader's srvr says it is not serving ($t_stop ms after the cut)"
else
    fail "partition: the old leader's srvr says it is not serving" "srvr of server $OLD:" "${SRVR[OLD]}" "$(logs "$OLD")"
fi

# Creates through the majority side (the client host cannot reach the old leader).
in_time "the creates through the majority side"
for k in $(seq 1 10); do echo "create /netns/b-$k b-$k"; done >"$SCRATCH/batch-b.txt"
t="$(now_ms)"
cli "$NS_C" "$(cap 25)" -timeout 8000 -waitforconnection -server "$HOSTS" <"$SCRATCH/batch-b.txt"
printf '%s\n' "$ERR" >"$SCRATCH/batch-b.err"
acked "$SCRATCH/batch-b.err" >"$SCRATCH/acked-b"
n_b="$(grep -c . "$SCRATCH/acked-b")"
if [ "$n_b" = 10 ]; then
    pass "partition: 10 creates through the majority side, all acknowledged ($(($(now_ms) - t)) ms)"
else
    fail "partition: 10 creates through the majority side" "acknowledged: $n_b" "rc=$RC stderr:" "$ERR"
fi

# The pinned client's two attempts (one at the cut, one once the old leader said it is not
# serving): neither acknowledged. A timeout kills a client still waiting: not acknowledged
# either, but then the old leader held the request until then, which is reported.
minority_wait early "$MINORITY" "$T_EARLY"
T_LATE="$(now_ms)"
minority late
minority_wait late "$SPAWNED" "$T_LATE"
for tag in early late; do
    out="$(grep -v '^$' "$SCRATCH/minority-$tag.err" | tail -n 1)"
    if [ -z "$(acked "$SCRATCH/minority-$tag.err")" ] && [ -n "$out" ]; then
        pass "partition: a client pinned to the old leader cannot write ($tag attempt, after $(cat "$SCRATCH/minority-$tag.ms") ms: $out)"
    else
        fail "partition: a client pinned to the old leader cannot write ($tag attempt)" "after $(cat "$SCRATCH/minority-$tag.ms") ms (no error line: the old leader did not answer before the bound), stderr:" "$(cat "$SCRATCH/minority-$tag.err")"
    fi
done

# The background writer stops; what it got acknowledged across the partition is recorded.
touch "$STOP"
deadline=$((SECONDS + $(cap 20)))
while kill -0 "$WRITER" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
acked "$SCRATCH/writer.err" >"$SCRATCH/acked-c"
n_c="$(grep -c . "$SCRATCH/acked-c")"
if [ "$n_c" -gt "$n_c_before" ]; then
    pass "writer across the partition: $n_c creates acknowledged, $n_c_before before the cut ($(grep -vc '^Created \|^$' "$SCRATCH/writer.err") error lines)"
else
    fail "writer across the partition: creates acknowledged after the cut ($n_c_before before)" "stderr (last lines):" "$(tail -n 5 "$SCRATCH/writer.err")"
fi

# ------------------------------------------------------------------ heal

in_time "the heal"
# 4. Attach the port again: the old leader rejoins as a follower of the new one.
T_HEAL="$(now_ms)"
if timeout 5 ip -n "$NS_BR" link set "port$OLD" master br0; then
    pass "heal: server $OLD back on the bridge"
else
    fail "heal: server $OLD back on the bridge" "ip -n $NS_BR link set port$OLD master br0 failed"
fi
deadline=$((SECONDS + $(cap 30)))
while :; do
    status 1 2 3 4
    [ "${MODE[OLD]}" = follower ] && [ "$(sorted_modes)" = "follower follower leader observer " ] && break
    [ "$SECONDS" -ge "$deadline" ] && break
    sleep 0.2
done
if [ "${MODE[OLD]}" = follower ] && [ "$(sorted_modes)" = "follower follower leader observer " ] &&
    [ -n "$NEW" ] && [ "${MODE[NEW]}" = leader ]; then
    pass "heal: server $OLD rejoined as a follower of server $NEW ($(($(now_ms) - T_HEAL)) ms after the heal)"
else
    fail "heal: server $OLD rejoins as a follower, server ${NEW:-?} still leads" "modes: $(modes 1 2 3 4)" "$(logs 1 2 3 4)"
fi

# Every acknowledged create on every server (after sync), the same nodes on all four, and
# none of the creates tried on the isolated old leader.
cat "$SCRATCH/acked-a" "$SCRATCH/acked-b" "$SCRATCH/acked-c" | sort -u >"$SCRATCH/acked-all"
n_acked="$(grep -c . "$SCRATCH/acked-all")"
printf 'sync /netns\nls /netns\n' >"$SCRATCH/sync-ls.txt"
first_set=""
same=1
for n in 1 2 3 4; do
    in_time "reading server $n after the heal"
    cli "$NS_C" "$(cap 15)" -timeout 8000 -waitforconnection -server "${ADDR[n]}:2181" <"$SCRATCH/sync-ls.txt"
    # `ls` prints [a, b, ...]: one path a line.
    printf '%s\n' "$OUT" | grep '^\[' | tail -n 1 | tr -d '[]' | tr ',' '\n' | sed 's/^ *//; /^$/d; s/^/\/netns\//' |
        sort -u >"$SCRATCH/present-$n"
    missing="$(comm -23 "$SCRATCH/acked-all" "$SCRATCH/present-$n")"
    if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -qxF "Sync is OK" && [ -z "$missing" ]; then
        pass "heal: server $n holds all $n_acked acknowledged creates ($(grep -c . "$SCRATCH/present-$n") nodes under /netns)"
    else
        fail "heal: server $n holds all $n_acked acknowledged creates" "rc=$RC" "missing: $(tr '\n' ' ' <<<"$missing" | head -c 400)" "stdout: $(head -c 400 <<<"$OUT")" "stderr: $ERR"
    fi
    if [ -z "$first_set" ]; then
        first_set="$SCRATCH/present-$n"
    elif ! cmp -s "$first_set" "$SCRATCH/present-$n"; then
        same=""
        fail "heal: server $n holds the same nodes as server 1" "$(diff "$first_set" "$SCRATCH/present-$n" | head -n 10)"
    fi
    if grep -q '^/netns/minority-' "$SCRATCH/present-$n"; then
        fail "heal: server $n holds none of the creates tried on the isolated old leader" "$(grep '^/netns/minority-' "$SCRATCH/present-$n")"
    fi
done
[ -n "$same" ] && pass "heal: the four servers hold the same nodes under /netns"
if ! grep -q '^/netns/minority-' "$SCRATCH"/present-*; then
    pass "heal: no server holds a create tried on the isolated old leader"
fi

# Every server still runs.
exited=()
for n in 1 2 3 4; do kill -0 "${PID[n]}" 2>/dev/null || exited+=("$n"); done
if [ "${#exited[@]}" = 0 ]; then
    pass "all four servers still run"
else
    fail "all four servers still run" "exited: ${exited[*]}" "$(logs "${exited[@]}")"
fi

echo "     (netns partition test: $(($(now_ms) - START_MS)) ms)"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
