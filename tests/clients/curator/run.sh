#!/usr/bin/env bash
# Curator 5.x recipes against $ZK_HOSTS: compiles CuratorSuite.java into
# $CLIENT_WORK against Debian's jars and runs it. Prints
# "curator: N passed, M failed" last; exits non-zero when anything failed.
#
# With ZK_KILL_DIR set (tests/compat/run.sh --cluster --kill-leader) it runs
# CuratorKill instead: the lock and election recipes while the leader server
# is killed (see CuratorKill.java).
#
# Env: ZK_HOSTS, CLIENT_WORK (see tests/clients/README.md), ZK_KILL_DIR,
#      JAVA_DIR (default /usr/share/java), CURATOR_LOG_LEVEL (default info;
#      the client log goes to $CLIENT_WORK/curator.log, its warnings are shown
#      when a check fails).

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JAVA_DIR=${JAVA_DIR:-/usr/share/java}
CLIENT_WORK=${CLIENT_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/curator-suite.XXXXXX")}
ZK_HOSTS=${ZK_HOSTS:-127.0.0.1:2181}
export ZK_HOSTS

fail_setup() {
  echo "curator: $1"
  echo "curator: 0 passed, 1 failed"
  exit 1
}

CP=""
for jar in curator-recipes curator-framework curator-client zookeeper zookeeper-jute guava slf4j-api slf4j-simple; do
  [[ -f $JAVA_DIR/$jar.jar ]] || fail_setup "$JAVA_DIR/$jar.jar missing (apt-get install $(grep -v '^#' "$HERE/debian-packages" | tr '\n' ' '))"
  CP+="$JAVA_DIR/$jar.jar:"
done
command -v javac >/dev/null || fail_setup "javac not found (apt-get install openjdk-17-jdk-headless)"

mkdir -p "$CLIENT_WORK/classes"
MAIN=CuratorSuite
[[ -n ${ZK_KILL_DIR:-} ]] && MAIN=CuratorKill
javac -nowarn -d "$CLIENT_WORK/classes" -cp "$CP" "$HERE/CuratorSuite.java" "$HERE/CuratorKill.java" ||
  fail_setup "CuratorSuite.java / CuratorKill.java do not compile"

LOG=$CLIENT_WORK/curator.log
# The program bounds every check itself; this timeout only catches a hung JVM.
timeout 300 java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
  -Dorg.slf4j.simpleLogger.defaultLogLevel="${CURATOR_LOG_LEVEL:-info}" \
  -Dorg.slf4j.simpleLogger.logFile="$LOG" \
  -Dorg.slf4j.simpleLogger.showDateTime=true \
  -Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS \
  -cp "$CLIENT_WORK/classes:$CP" "$MAIN"
rc=$?
if [[ $rc -ne 0 ]]; then
  if [[ -f $LOG ]]; then
    echo "curator: last warnings and errors of the client log:"
    grep -E ' (WARN|ERROR) ' "$LOG" | tail -n 30
  fi
  # A JVM killed by timeout printed no summary line.
  if [[ $rc -eq 124 ]]; then
    echo "curator: the test program timed out"
    echo "curator: 0 passed, 1 failed"
  fi
fi
exit $rc
