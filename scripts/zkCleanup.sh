#!/usr/bin/env bash
# Corral's zkCleanup.sh: like Apache ZooKeeper 3.8's bin/zkCleanup.sh, keeps the newest
# snapshots (at least 3) and the transaction logs they need, and deletes the rest.
#   scripts/zkCleanup.sh [-n count]        dataDir/dataLogDir from $ZOOCFGDIR/$ZOOCFG
# Unlike ZooKeeper's it also accepts the config file as a last argument.
set -u
CORRAL_BIN="${CORRAL_BIN:-}"
# shellcheck source=zkEnv.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/zkEnv.sh"
count=3
cfg="$ZOOCFGDIR/$ZOOCFG"
while [ $# -gt 0 ]; do
    case "$1" in
        -n) [ $# -ge 2 ] || { echo "Usage: zkCleanup.sh [-n count] [CFG]" >&2; exit 1; }; count="$2"; shift 2 ;;
        *) cfg="$1"; shift ;;
    esac
done
if [ -z "$CORRAL" ]; then
    echo "zkCleanup.sh: no corral binary: build it (cargo build --release) or set CORRAL_BIN" >&2
    exit 1
fi
data_dir="$(zk_cfg_get "$cfg" dataDir)"
data_log_dir="$(zk_cfg_get "$cfg" dataLogDir)"
if [ -z "$data_dir" ]; then
    echo "zkCleanup.sh: dataDir is not set in $cfg" >&2
    exit 1
fi
exec "$CORRAL" purge -n "$count" "${data_log_dir:-$data_dir}" "$data_dir"
