#!/usr/bin/env bash
# Runs every test of the workspace against real parts: a throwaway PostgreSQL server, the real
# Secret Service (gnome-keyring in a private D-Bus session, unlocked, its keyrings in a temporary
# directory so a developer's own keyring is never touched), and the desktop app's end-to-end tests
# under Xvfb when scripts/e2e.sh is present. Ends with one summary line that counts the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${COUNTERSIGN_TEST_SESSION:-}" ]; then
  keyrings=$(mktemp -d /tmp/countersign-keyrings.XXXXXX)
  trap 'rm -rf "$keyrings"' EXIT
  export COUNTERSIGN_TEST_SESSION=1 XDG_DATA_HOME="$keyrings" NO_AT_BRIDGE=1
  # The keyring password only protects this throwaway keyring.
  dbus-run-session -- bash -c '
    printf "countersign-test" | gnome-keyring-daemon --components=secrets --daemonize --unlock >/dev/null
    exec bash scripts/run-tests.sh'
  exit $?
fi

pg_dir=$(mktemp -d /tmp/countersign-pg.XXXXXX)
pg_port=$((20000 + RANDOM % 20000))
log=$(mktemp)
cleanup() { scripts/postgres.sh stop "$pg_dir"; rm -f "$log"; }
trap cleanup EXIT
COUNTERSIGN_TEST_POSTGRES=$(scripts/postgres.sh start "$pg_dir" "$pg_port")
export COUNTERSIGN_TEST_POSTGRES
echo "PostgreSQL for the tests: $COUNTERSIGN_TEST_POSTGRES"
secret-tool store --label="countersign test probe" countersign probe <<<"ok" \
  && [ "$(secret-tool lookup countersign probe)" = "ok" ] \
  && secret-tool clear countersign probe \
  && echo "Secret Service for the tests: gnome-keyring, unlocked"

set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The conformance suites report how many vectors they ran.
cargo test --locked -p countersign-core --test jcs_vectors --test rfc6962_vectors -- --nocapture 2>&1 \
  | grep -Eo '(JCS vectors|RFC 6962 vectors): .*' | sort -u
if [ -n "${CI:-}" ]; then
  # The million-entry audit-bundle check is #[ignore]d because a debug build takes minutes; in
  # release it is under a minute, so CI builds it that way and runs it here.
  cargo test --release --locked -p countersign-core --test bundle -- --ignored 2>&1 | tee -a "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
if [ -f ui/package.json ]; then
  # The UI's unit tests (Vitest); their summary is turned into a cargo-style line to be counted.
  (cd ui && NO_COLOR=1 FORCE_COLOR=0 npm test --silent) >"$log.ui" 2>&1
  ui_status=$?
  cat "$log.ui"
  ui_summary=$(grep -E '^ *Tests ' "$log.ui" | tail -n 1)
  ui_passed=$(grep -Eo '[0-9]+ passed' <<<"$ui_summary" | grep -Eo '[0-9]+')
  ui_failed=$(grep -Eo '[0-9]+ failed' <<<"$ui_summary" | grep -Eo '[0-9]+')
  if [ "$ui_status" -eq 0 ]; then ui_result=ok; else ui_result=FAILED; status=$ui_status; fi
  echo "test result: $ui_result. ${ui_passed:-0} passed; ${ui_failed:-0} failed; (ui, Vitest)" | tee -a "$log"
  rm -f "$log.ui"
fi
if [ -x scripts/e2e.sh ]; then
  # The end-to-end suites print cargo-style `test result:` lines, so they are counted below.
  bash scripts/e2e.sh 2>&1 | tee -a "$log"
  e2e_status=${PIPESTATUS[0]}
  [ "$e2e_status" -eq 0 ] || status=$e2e_status
fi
set -e
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
echo "tests: $passed passed, $failed failed"
exit "$status"
