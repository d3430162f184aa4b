#!/usr/bin/env bash
# End-to-end tests of the real Countersign Desk window: builds the UI and the app (frontend
# embedded, no dev server), then runs e2e/tests under Xvfb with tauri-driver + WebKitWebDriver
# against a real countersign-gate on loopback (demo data, its own SQLite directory) and the real
# Secret Service. Prints a cargo-style `test result:` line so scripts/run-tests.sh counts it.
#
# Standalone: `scripts/e2e.sh` (starts its own D-Bus session and gnome-keyring when none is given).
# `scripts/e2e.sh bench` (`make bench-app`) instead measures the release build with e2e/bench.mjs.
# `scripts/e2e.sh test tests/supervisor.test.mjs` runs only the files named (paths inside e2e/).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}
[ $# -gt 0 ] && shift
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/)

if [ -z "${COUNTERSIGN_TEST_SESSION:-}" ] && [ -z "${COUNTERSIGN_E2E_SESSION:-}" ]; then
  keyrings=$(mktemp -d /tmp/countersign-keyrings.XXXXXX)
  trap 'rm -rf "$keyrings"' EXIT
  export COUNTERSIGN_E2E_SESSION=1 XDG_DATA_HOME="$keyrings" NO_AT_BRIDGE=1
  # The password only protects this throwaway keyring.
  dbus-run-session -- bash -c '
    printf "countersign-test" | gnome-keyring-daemon --components=secrets --daemonize --unlock >/dev/null
    exec bash scripts/e2e.sh "$@"' bash "$mode" "${tests[@]}"
  exit $?
fi
export NO_AT_BRIDGE=1

fail() {
  echo "e2e: $*" >&2
  echo "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out"
  exit 1
}

for tool in node npm xvfb-run WebKitWebDriver; do
  command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/setup.sh"
done
TAURI_DRIVER=${TAURI_DRIVER:-$HOME/.cargo/bin/tauri-driver}
[ -x "$TAURI_DRIVER" ] || TAURI_DRIVER=$(command -v tauri-driver) \
  || fail "tauri-driver is missing: run scripts/setup.sh"
export TAURI_DRIVER

echo "e2e: building the UI and the app"
if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  (cd ui && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in ui failed"
fi
if [ ! -d e2e/node_modules ] || [ e2e/package-lock.json -nt e2e/node_modules/.package-lock.json ]; then
  (cd e2e && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in e2e failed"
fi
(cd ui && npm run build --silent >/dev/null) || fail "the UI does not build (cd ui && npm run build)"
cargo build --locked --quiet -p countersign-gate -p countersign-desk --bins \
  || fail "cargo build of the gate and desk binaries failed"
cargo build --locked --quiet -p countersign-demo-feed --example print_outputs \
  || fail "cargo build of the demo feed failed"
# custom-protocol embeds ui/dist in the binary, as a release does.
cargo build --locked --quiet -p countersign-desk-app --features custom-protocol \
  || fail "cargo build of the app failed"

if [ "$mode" = bench ]; then
  echo "e2e: building the release app for the measurements"
  cargo build --locked --release --quiet -p countersign-gate -p countersign-desk --bins
  cargo build --locked --release --quiet -p countersign-desk-app --features custom-protocol
  export COUNTERSIGN_BIN_DIR="$PWD/target/release"
  cd e2e && exec xvfb-run -a -s "-screen 0 1400x900x24" node bench.mjs
fi

echo "e2e: running the window tests under Xvfb"
log=$(mktemp)
set +e
(cd e2e && xvfb-run -a -s "-screen 0 1400x900x24" \
  node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$log" "${tests[@]}")
status=$?
set -e
passed=$(grep -Ec '^    ok [0-9]+ ' "$log" || true)
failed=$(grep -Ec '^    not ok [0-9]+ ' "$log" || true)
rm -f "$log"
if [ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; then
  echo "test result: ok. $passed passed; 0 failed; 0 ignored; 0 measured; 0 filtered out"
else
  [ "$failed" -gt 0 ] || failed=1
  echo "test result: FAILED. $passed passed; $failed failed; 0 ignored; 0 measured; 0 filtered out"
  exit 1
fi
