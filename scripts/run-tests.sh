#!/usr/bin/env bash
# Runs every test of the workspace and ends with one summary line that counts them.
set -euo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
echo
grep -E '^(JCS vectors|RFC 6962 vectors)' "$log" | sort -u || true
echo "tests: $passed passed, $failed failed"
exit "$status"
