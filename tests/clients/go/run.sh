#!/usr/bin/env bash
# The Go client suite (see tests/clients/README.md): builds main.go, checks.go
# and restart.go offline against Debian's github.com/samuel/go-zookeeper/zk
# (GOPATH mode, the Debian source tree on GOPATH, no proxy), then runs them
# against $ZK_HOSTS. The restart checks start their own server of flavor
# $ZK_FLAVOR: $CORRAL_BIN (default target/release/corral) or ZooKeeper's java
# command with $ZK_JAVA_CP.
#
# With ZK_KILL_DIR set (tests/compat/run.sh --cluster --kill-leader) the
# program runs only kill.go's lock contention across a leader kill.
#
# Prints "go: N passed, M failed" last; exits non-zero if anything failed.
# Env: ZK_HOSTS, ZK_FLAVOR, CLIENT_WORK (build output and the restart
#      server's dataDir), CORRAL_BIN, ZK_JAVA_CP, GOCODE (/usr/share/gocode),
#      SUITE_TIMEOUT_S (the program's own watchdog, 110).

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
: "${ZK_HOSTS:?ZK_HOSTS is not set (expected 127.0.0.1:PORT[,...])}"
export ZK_FLAVOR=${ZK_FLAVOR:-zookeeper}

give_up() {
  echo "go: $1"
  echo "go: 0 passed, 1 failed"
  exit 1
}

if [[ -z ${CLIENT_WORK:-} ]]; then
  CLIENT_WORK=$(mktemp -d "${TMPDIR:-/tmp}/corral-client-go.XXXXXX")
  trap 'rm -rf "$CLIENT_WORK"' EXIT
fi
export CLIENT_WORK

GOCODE=${GOCODE:-/usr/share/gocode}
command -v go >/dev/null || give_up "go not found (apt-get install golang-go)"
[[ -d $GOCODE/src/github.com/samuel/go-zookeeper/zk ]] ||
  give_up "$GOCODE/src/github.com/samuel/go-zookeeper/zk not found (apt-get install golang-github-samuel-go-zookeeper-dev)"

# Offline build: GOPATH mode, nothing fetched, caches under CLIENT_WORK, and
# no user go.env settings.
export GO111MODULE=off GOPROXY=off GOFLAGS='' GOENV=off
export GOPATH="$CLIENT_WORK/gopath:$GOCODE" GOCACHE="$CLIENT_WORK/gocache" GOTMPDIR="$CLIENT_WORK"
mkdir -p "$CLIENT_WORK/gopath"
(cd "$HERE" && nice go build -o "$CLIENT_WORK/gosuite" main.go checks.go restart.go kill.go) ||
  give_up "build failed"

case $ZK_FLAVOR in
  corral)
    # tests/compat/run.sh does not export its default: the same default here.
    # A relative CORRAL_BIN is relative to the current directory, as there.
    CORRAL_BIN=${CORRAL_BIN:-$ROOT/target/release/corral}
    [[ $CORRAL_BIN == /* ]] || CORRAL_BIN=$PWD/$CORRAL_BIN
    export CORRAL_BIN
    ;;
  zookeeper)
    if [[ -z ${ZK_JAVA_CP:-} ]]; then
      ZK_JAVA_CP=/etc/zookeeper/conf:/usr/share/java/zookeeper.jar
      for jar in /usr/share/java/slf4j-log4j12.jar /usr/share/java/log4j-1.2.jar; do
        [[ -f $jar ]] && ZK_JAVA_CP+=":$jar"
      done
    fi
    export ZK_JAVA_CP
    ;;
  *) give_up "unknown ZK_FLAVOR $ZK_FLAVOR" ;;
esac

"$CLIENT_WORK/gosuite"
