# shellcheck shell=bash
# Shared by the test scripts in this directory (sourced, not run): the `ok` / `FAIL` lines
# and their counts, which end in the "N passed, M failed" line scripts/test.sh adds up.

PASSED=0
FAILED=0

pass() {
    PASSED=$((PASSED + 1))
    echo "ok   - $1"
}

# fail NAME [DETAIL...]: each detail (multi-line ones too) indented under the FAIL line.
fail() {
    FAILED=$((FAILED + 1))
    echo "FAIL - $1"
    shift
    local line
    for line in "$@"; do
        printf '%s\n' "$line" | sed 's/^/       /'
    done
}
