#!/usr/bin/env bash
# Runs every test of the workspace against real parts (a throwaway PostgreSQL server included)
# and ends with one summary line that counts them.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_dir=$(mktemp -d /tmp/countersign-pg.XXXXXX)
pg_port=$((20000 + RANDOM % 20000))
log=$(mktemp)
cleanup() { scripts/postgres.sh stop "$pg_dir"; rm -f "$log"; }
trap cleanup EXIT
COUNTERSIGN_TEST_POSTGRES=$(scripts/postgres.sh start "$pg_dir" "$pg_port")
export COUNTERSIGN_TEST_POSTGRES
echo "PostgreSQL for the tests: $COUNTERSIGN_TEST_POSTGRES"

set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The conformance suites report how many vectors they ran.
cargo test --locked -p countersign-core --test jcs_vectors --test rfc6962_vectors -- --nocapture 2>&1 \
  | grep -Eo '(JCS vectors|RFC 6962 vectors): .*' | sort -u
set -e
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
echo "tests: $passed passed, $failed failed"
exit "$status"
