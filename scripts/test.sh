#!/usr/bin/env bash
# Runs every test of the workspace (unit, integration on SQLite and PostgreSQL, mocks) and ends
# with one summary line over all test binaries.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
read -r passed failed < <(grep -E '^test result:' "$log" | awk '{p += $4; f += $6} END {print p+0, f+0}')
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
