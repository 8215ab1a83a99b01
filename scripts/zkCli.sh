#!/usr/bin/env bash
# Corral's zkCli.sh: the same arguments and output as Apache ZooKeeper 3.8's bin/zkCli.sh,
# served by `corral cli` (no Java). Usage:
#   scripts/zkCli.sh [-server host:port[,host:port...][/chroot]] [-timeout ms] [-r] [cmd args...]
# Without a command it is interactive (line editing, history); with one it runs it and
# exits with zkCli's exit code.
set -u
CORRAL_BIN="${CORRAL_BIN:-}"
# shellcheck source=zkEnv.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/zkEnv.sh"
if [ -z "$CORRAL" ]; then
    echo "zkCli.sh: no corral binary: build it (cargo build --release) or set CORRAL_BIN" >&2
    exit 1
fi
exec "$CORRAL" cli "$@"
