#!/usr/bin/env bash
# TLS with real clients against a fresh server of one flavor:
#
#   tests/tls/run.sh corral      $CORRAL_BIN (default target/release/corral)
#   tests/tls/run.sh zookeeper   Apache ZooKeeper 3.8 from Debian's packages (Netty)
#
# Makes a CA, a server certificate for 127.0.0.1, a client certificate and an
# intruder's certificate from another CA with openssl (test-only keys in a
# temporary directory), starts the server with clientPort and secureClientPort
# on free loopback ports (ssl.clientAuth=need, PEM stores), then checks
#   1. kazoo (tests/tls/check_kazoo.py): a client certificate's x509 id opens
#      an x509-only node, the plain port gets NoAuth, clients without a trusted
#      certificate are refused;
#   2. the Java client (ClientCnxnSocketNetty, zookeeper.client.secure=true):
#      whoami lists the x509 id, get reads the node, another CA's certificate is
#      refused; X509AuthenticationProvider.superUser's certificate is also super
#      and reads the node too.
# Stops the server by its PID (also on failure or interrupt) and prints
# "N passed, M failed"; exits non-zero if anything failed.
set -u
flavor=${1:?usage: tests/tls/run.sh corral|zookeeper}
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CORRAL_BIN:-$root/target/release/corral}
[[ $bin == /* ]] || bin=$PWD/$bin
python=${PYTHON:-$root/.venv/bin/python}  # kazoo 2.11 (see tests/compat/requirements.txt)
[[ -x $python ]] || python=python3
work=$(mktemp -d "${TMPDIR:-/tmp}/corral-tls.XXXXXX")
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

# --- certificates ---------------------------------------------------------
cd "$work" || exit 1
ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$1.key" -out "$1.pem" -days 2 -subj "$2" 2>/dev/null; }
leaf() { # name ca subject san
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
    -out "$1.csr" -subj "$3" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial \
    -out "$1.crt" -days 2 -extfile "$1.ext" 2>/dev/null
  cat "$1.key" "$1.crt" > "$1.pem"
}
if ! { ca ca "/O=Corral Test/CN=Test CA" && ca other-ca "/CN=Other CA" &&
  leaf server ca /CN=server "IP:127.0.0.1,DNS:localhost" &&
  leaf client ca "/C=US/O=Corral/OU=ops/CN=client one" DNS:client &&
  leaf intruder other-ca /CN=intruder DNS:intruder &&
  leaf admin ca /O=Corral/CN=admin DNS:admin; }; then
  echo "openssl failed"; exit 1
fi
client_dn="CN=client one,OU=ops,O=Corral,C=US"

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
plain=$(free_port) secure=$(free_port)
cat > zoo.cfg <<CFG
tickTime=2000
dataDir=$work/data
clientPort=$plain
clientPortAddress=127.0.0.1
secureClientPort=$secure
secureClientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
ssl.keyStore.location=$work/server.pem
ssl.keyStore.type=PEM
ssl.trustStore.location=$work/ca.pem
ssl.trustStore.type=PEM
ssl.clientAuth=need
X509AuthenticationProvider.superUser=CN=admin,O=Corral
CFG

j=/usr/share/java
netty_cp="$j/netty-buffer.jar:$j/netty-codec.jar:$j/netty-common.jar:$j/netty-handler.jar:$j/netty-resolver.jar:$j/netty-transport.jar:$j/netty-transport-native-epoll.jar:$j/netty-transport-native-unix-common.jar"
case $flavor in
  corral)
    echo "corral.shards=1" >> zoo.cfg
    "$bin" server zoo.cfg > server.log 2>&1 &
    server_pid=$! ;;
  zookeeper)
    echo "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory" >> zoo.cfg
    java -Xmx256m -cp "/etc/zookeeper/conf:$j/zookeeper.jar:$j/zookeeper-jute.jar:$netty_cp:$j/slf4j-api.jar:$j/slf4j-log4j12.jar:$j/log4j-1.2.jar:$j/commons-cli.jar:$j/jackson-databind.jar:$j/jackson-core.jar:$j/jackson-annotations.jar" \
      -Dzookeeper.log.dir="$work" -Dzookeeper.root.logger=INFO,CONSOLE \
      org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg > server.log 2>&1 &
    server_pid=$! ;;
  *) echo "unknown flavor $flavor"; exit 2 ;;
esac

# Ready when the plain port answers ruok (bounded: 60 s).
ready=
for _ in $(seq 600); do
  if [[ $("$python" -c "
import socket,sys
try:
    s=socket.create_connection(('127.0.0.1',$plain),1); s.sendall(b'ruok'); print(s.recv(4).decode())
except OSError: pass" 2>/dev/null) == imok ]]; then ready=1; break; fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $ready ]]; then echo "server did not start:"; tail -20 server.log; exit 1; fi

# 1. kazoo
TLS_DIR=$work ZK_PLAIN=127.0.0.1:$plain ZK_SECURE=127.0.0.1:$secure CLIENT_DN=$client_dn \
  timeout 120 "$python" "$root/tests/tls/check_kazoo.py" > kazoo.out 2>&1
while read -r word name rest; do
  case $word in ok) ok "$name" ;; FAIL) fail "$name $rest" ;; esac
done < kazoo.out
grep -q "^ok kazoo_x509_acl_node" kazoo.out || { fail kazoo_ran; cat kazoo.out; }

# 2. the Java client
zkmain() {
  timeout 60 java -cp "$j/zookeeper.jar:$j/zookeeper-jute.jar:$netty_cp:$j/slf4j-api.jar:$j/slf4j-nop.jar" \
    -Dzookeeper.client.secure=true \
    -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty \
    -Dzookeeper.ssl.keyStore.location="$work/$1" -Dzookeeper.ssl.keyStore.type=PEM \
    -Dzookeeper.ssl.trustStore.location="$work/ca.pem" -Dzookeeper.ssl.trustStore.type=PEM \
    org.apache.zookeeper.ZooKeeperMain -server "127.0.0.1:$secure" "${@:2}" 2>&1
}
out=$(zkmain client.pem whoami)
if grep -qx "x509: $client_dn" <<<"$out" && grep -qx "ip: 127.0.0.1" <<<"$out"; then
  ok java_whoami_lists_x509
else
  fail "java_whoami_lists_x509: $out"
fi
# The x509-only node kazoo created (zkCli's ACL syntax cannot hold a DN's commas).
out=$(zkmain client.pem get /tls-kazoo)
if grep -qx hi <<<"$out"; then ok java_reads_x509_node; else fail "java_reads_x509_node: $out"; fi
out=$(zkmain intruder.pem get /tls-kazoo)
if grep -qx hi <<<"$out"; then fail "java_foreign_ca_refused: $out"; else ok java_foreign_ca_refused; fi

out=$(zkmain admin.pem whoami)
# ZooKeeper 3.8.0 lists x509, then super with an empty id, then ip.
if [[ $(grep -E '^(x509|super|ip):' <<<"$out") == $'x509: CN=admin,O=Corral\nsuper: \nip: 127.0.0.1' ]]; then
  ok java_x509_super_user
else
  fail "java_x509_super_user: $out"
fi
out=$(zkmain admin.pem get /tls-kazoo)
if grep -qx hi <<<"$out"; then ok java_super_reads_x509_node; else fail "java_super_reads_x509_node: $out"; fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
