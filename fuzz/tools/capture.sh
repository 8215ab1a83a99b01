#!/usr/bin/env bash
# Regenerates the seed corpora of fuzz/ from real runs of Corral (not run by CI; the
# corpora it wrote are committed under fuzz/corpus/<target>/).
#
#   fuzz/tools/capture.sh            # needs root (tcpdump on lo), tcpdump, a Corral binary
#
#   client_frames   the bytes kazoo, the Java zkCli, the C cli_mt and `corral cli` send to a
#                   standalone Corral (captured with tcpdump, one file per connection), and
#                   one hand-made connection per op code none of them sent (client_seeds.py)
#   quorum_wire     the bytes 3 + 1 Corral servers send each other (election and ZAB
#                   ports, both directions), while kazoo writes and the leader is restarted
#   log_recovery    the log segments of those runs (trailing preallocated zeros cut), and
#                   two segments back to back (a leading mode byte, see fuzz/src/lib.rs)
#   snapshot_load   their snapshot files
#   zoo_cfg         scripts/conf/*.cfg, tuning/ profiles and the configs of these runs
#   zkcli_command   the command lines of the CLI suites (tests/zkcli.rs, tests/compat/golden)
#
# Environment: CORRAL_BIN (default target/release/corral), PYTHON (a python with kazoo,
# default .venv/bin/python). Every server started here is stopped by PID on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CORRAL_BIN=${CORRAL_BIN:-$ROOT/target/release/corral}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
CORPUS=$ROOT/fuzz/corpus
TOOLS=$ROOT/fuzz/tools
WORK=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  local deadline=$((SECONDS + 30))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    ((SECONDS < deadline)) || { echo "port $1 did not open" >&2; return 1; }
    sleep 0.2
  done
}
mkdir -p "$CORPUS"/{client_frames,quorum_wire,log_recovery,snapshot_load,zoo_cfg,zkcli_command}

# ------------------------------------------------------------ standalone: client traffic
PORT=$(free_port)
mkdir -p "$WORK/sa/data"
printf '%s\n' tickTime=2000 "dataDir=$WORK/sa/data" "clientPort=$PORT" clientPortAddress=127.0.0.1 \
  snapCount=40 extendedTypesEnabled=true 4lw.commands.whitelist=* admin.enableServer=false >"$WORK/sa/zoo.cfg"
"$CORRAL_BIN" server "$WORK/sa/zoo.cfg" >"$WORK/sa/server.log" 2>&1 &
pids+=($!)
wait_port "$PORT"
tcpdump -i lo -s 0 -U -w "$WORK/client.pcap" "tcp port $PORT" 2>/dev/null &
dump=$!
sleep 1
HOSTS=127.0.0.1:$PORT "$PYTHON" "$TOOLS/client_workload.py"
zk=(/usr/share/zookeeper/bin/zkCli.sh -server "127.0.0.1:$PORT")
if [[ -x ${zk[0]} ]]; then
  for cmd in "create /java j" "create -s -e /java/e x" "create -c /java/c" "create -t 5000 /java/t" "set /java v2" "get -s /java" \
             "ls -R /" "setAcl /java digest:u:cGFzcw==:cdrwa,world:anyone:r" "getAcl /java" \
             "addauth digest u:pass" "setquota -n 10 /java" "listquota /java" "stat -w /java" \
             "addWatch -m PERSISTENT /java" "getEphemerals /" "getAllChildrenNumber /" \
             "removewatches /java" "deleteall /java" "config" "whoami"; do
    # shellcheck disable=SC2086
    timeout 30 "${zk[@]}" $cmd >/dev/null 2>&1 || true
  done
fi
if [[ -x /usr/lib/zookeeper/bin/cli_mt ]]; then
  printf '%s\n' "create /c data" "get /c" "ls /" "set /c more" "delete /c" "quit" |
    timeout 30 /usr/lib/zookeeper/bin/cli_mt "127.0.0.1:$PORT" >/dev/null 2>&1 || true
fi
for cmd in "create /rs rust" "get /rs" "ls -s /" "delete /rs" "sync /"; do
  # shellcheck disable=SC2086
  timeout 30 "$CORRAL_BIN" cli -server "127.0.0.1:$PORT" $cmd >/dev/null 2>&1 || true
done
printf 'ruok' | timeout 5 "$PYTHON" -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",'"$PORT"')); s.sendall(sys.stdin.buffer.read()); s.recv(100)' || true
sleep 1
kill "$dump"; wait "$dump" 2>/dev/null || true
"$PYTHON" "$TOOLS/pcap_streams.py" "$WORK/client.pcap" "$CORPUS/client_frames" --ports "$PORT" \
  --direction to --prefix real --max-bytes 8192
"$PYTHON" "$TOOLS/client_seeds.py" "$CORPUS/client_frames"
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
# The configs without this run's temporary paths (dataDir relative, as the target writes it).
sed "s|$WORK/sa/data|data|" "$WORK/sa/zoo.cfg" >"$CORPUS/zoo_cfg/real-standalone.cfg"

# ------------------------------------------------------------ 3 + 1 cluster: quorum traffic
ports=()
for _ in $(seq 1 12); do ports+=("$(free_port)"); done
servers=""
for n in 1 2 3 4; do
  q=${ports[$((4 + n - 1))]} e=${ports[$((8 + n - 1))]}
  servers+="server.$n=127.0.0.1:$q:$e"
  [[ $n -eq 4 ]] && servers+=":observer"
  servers+=$'\n'
done
for n in 1 2 3 4; do
  d=$WORK/c$n
  mkdir -p "$d/data"
  echo "$n" >"$d/data/myid"
  {
    printf '%s\n' tickTime=500 initLimit=10 syncLimit=5 "dataDir=$d/data" "clientPort=${ports[$((n - 1))]}" \
      clientPortAddress=127.0.0.1 snapCount=60 admin.enableServer=false
    [[ $n -eq 4 ]] && echo peerType=observer
    printf '%s' "$servers"
  } >"$d/zoo.cfg"
done
qports=$(IFS=,; echo "${ports[*]:4:8}")
tcpdump -i lo -s 0 -U -w "$WORK/quorum.pcap" "$(sed 's/,/ or tcp port /g; s/^/tcp port /' <<<"$qports")" 2>/dev/null &
dump=$!
sleep 1
cpids=()
for n in 1 2 3 4; do
  "$CORRAL_BIN" server "$WORK/c$n/zoo.cfg" >"$WORK/c$n/server.log" 2>&1 &
  cpids+=($!)
  pids+=($!)
done
for n in 1 2 3 4; do wait_port "${ports[$((n - 1))]}"; done
hosts=$(printf '127.0.0.1:%s,' "${ports[@]:0:4}")
HOSTS=${hosts%,} "$PYTHON" "$TOOLS/client_workload.py"
# A restart of server 1 (follower or leader): election traffic, then a DIFF/SNAP sync.
kill "${cpids[0]}"; wait "${cpids[0]}" 2>/dev/null || true
HOSTS=$(printf '127.0.0.1:%s,' "${ports[@]:1:3}" | sed 's/,$//') "$PYTHON" "$TOOLS/client_workload.py"
"$CORRAL_BIN" server "$WORK/c1/zoo.cfg" >>"$WORK/c1/server.log" 2>&1 &
pids+=($!)
wait_port "${ports[0]}"
HOSTS=${hosts%,} "$PYTHON" "$TOOLS/client_workload.py"
sleep 2
kill "$dump"; wait "$dump" 2>/dev/null || true
"$PYTHON" "$TOOLS/pcap_streams.py" "$WORK/quorum.pcap" "$CORPUS/quorum_wire" --ports "$qports" \
  --direction both --prefix real --max-bytes 6144
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
pids=()
sed "s|$WORK/c1/data|data|" "$WORK/c1/zoo.cfg" >"$CORPUS/zoo_cfg/real-cluster-participant.cfg"
sed "s|$WORK/c4/data|data|" "$WORK/c4/zoo.cfg" >"$CORPUS/zoo_cfg/real-cluster-observer.cfg"
# The same with a profile, a dynamic file and a myid (the parts after NUL bytes).
{ cat "$CORPUS/zoo_cfg/real-cluster-participant.cfg"; printf 'corral.profile=profile.cfg\n\0corral.commit.maxBatch=64\n\0'
  grep '^server\.' "$CORPUS/zoo_cfg/real-cluster-participant.cfg"; printf '\0001\n'; } \
  >"$CORPUS/zoo_cfg/real-cluster-with-profile-dynamic-myid"

# ------------------------------------------------------------ storage files
"$PYTHON" "$TOOLS/storage_seeds.py" "$CORPUS" "$WORK/sa/data/version-2" "$WORK/c1/data/version-2" \
  "$WORK/c4/data/version-2"

# ------------------------------------------------------------ configs and CLI lines
for f in "$ROOT"/scripts/conf/*.cfg "$ROOT"/tuning/*.cfg; do
  [[ -f $f ]] && cp "$f" "$CORPUS/zoo_cfg/repo-$(basename "$f")"
done
"$PYTHON" "$TOOLS/cli_lines.py" "$ROOT" "$CORPUS/zkcli_command"
du -sh "$CORPUS"/*
