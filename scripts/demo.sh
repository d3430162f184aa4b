#!/usr/bin/env bash
# `make demo`: installs what is missing, builds, starts a gate on its embedded SQLite with the
# German-credit demo (policy, users, model outputs), enrolls the demo reviewer rita.reviewer and
# opens Countersign Desk on it. Ctrl-C stops the app and the gate.
#
# Demo state lives in .data/demo (gitignored) and starts fresh on every run.
# Environment: DEMO_PORT (default 8470), DEMO_OUTPUTS (default 200).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1mdemo:\033[0m %s\n' "$*"; }

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  cat >&2 <<'EOF'
demo: there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set), so the desktop app cannot
open a window. Run `make demo` from a desktop session (or over `ssh -X`). To see the app work
without a screen, run the end-to-end tests instead: `bash scripts/e2e.sh` (it uses Xvfb and saves
screenshots to target/e2e-screenshots/).
EOF
  exit 1
fi

# The device key goes to the Secret Service. A desktop session has one; without a session bus
# (e.g. a bare X server) the demo runs inside a private one with a throwaway gnome-keyring.
if [ -z "${COUNTERSIGN_DEMO_SESSION:-}" ] && [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
  bash scripts/setup.sh
  keyrings=$(mktemp -d /tmp/countersign-demo-keyrings.XXXXXX)
  trap 'rm -rf "$keyrings"' EXIT
  say "no D-Bus session: using a private one with a throwaway keyring"
  export COUNTERSIGN_DEMO_SESSION=1 XDG_DATA_HOME="$keyrings"
  dbus-run-session -- bash -c '
    printf "countersign-demo" | gnome-keyring-daemon --components=secrets --daemonize --unlock >/dev/null
    exec bash scripts/demo.sh'
  exit $?
fi
[ -n "${COUNTERSIGN_DEMO_SESSION:-}" ] || bash scripts/setup.sh

say "building the UI and the app (the first build takes several minutes)"
(cd ui && npm run build --silent >/dev/null)
cargo build --locked --quiet -p countersign-gate -p countersign-desk --bins
cargo build --locked --quiet -p countersign-desk-app --features custom-protocol

bin=target/debug
data=.data/demo
port=${DEMO_PORT:-8470}
url="http://127.0.0.1:$port"
rm -rf "$data"
mkdir -p "$data"

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "demo: port $port is in use; set DEMO_PORT to another port" >&2
  exit 1
fi

say "seeding the gate with the German-credit demo"
"$bin/countersign-gate" --data-dir "$data/gate" demo --outputs "${DEMO_OUTPUTS:-200}" \
  --credentials "$data/credentials.json" >/dev/null

gate_pid="" app_pid=""
stop() {
  trap - INT TERM EXIT
  [ -z "$app_pid" ] || kill "$app_pid" 2>/dev/null || true
  [ -z "$gate_pid" ] || kill "$gate_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  say "stopped the app and the gate (demo data stays in $data until the next run)"
  [ -z "${keyrings:-}" ] || rm -rf "$keyrings"
}
trap stop INT TERM EXIT

"$bin/countersign-gate" --data-dir "$data/gate" serve --listen "127.0.0.1:$port" >"$data/gate.log" 2>&1 &
gate_pid=$!
for _ in $(seq 100); do
  curl -fsS "$url/readyz" >/dev/null 2>&1 && break
  kill -0 "$gate_pid" 2>/dev/null || { echo "demo: the gate did not start, see $data/gate.log" >&2; exit 1; }
  sleep 0.1
done
say "gate on $url (log: $data/gate.log)"

code=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).users["rita.reviewer"].enrollment_code)' "$data/credentials.json")
"$bin/countersign-desk" --data-dir "$data/desk" enroll --gate "$url" --code "$code" --device-name "demo laptop" >/dev/null
say "enrolled rita.reviewer (reviewer, authority 15 000); other users' codes: $data/credentials.json"
"$bin/countersign-desk" --data-dir "$data/desk" claim --limit 50 >/dev/null
say "claimed 50 items for rita; press O in the app to claim more"

say "opening Countersign Desk; press Ctrl-C here to stop the app and the gate"
COUNTERSIGN_DESK_DIR="$data/desk" "$bin/countersign-desk-app" &
app_pid=$!
# Ends when the window is closed or on Ctrl-C; either way `stop` runs.
wait "$app_pid" || true
