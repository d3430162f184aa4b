#!/usr/bin/env bash
# Installs what the tests and the demo need on Debian/Ubuntu, only when something is missing:
# system packages (PostgreSQL for the gate tests, WebKitGTK and its WebDriver for the desktop app,
# gnome-keyring for the real Secret Service, Xvfb for a headless display), the UI's npm packages
# and tauri-driver.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  pkg-config build-essential curl wget file postgresql
  libwebkit2gtk-4.1-dev libxdo-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev
  webkit2gtk-driver xvfb xauth imagemagick
  gnome-keyring dbus-x11 libsecret-tools
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The UI's build (Vite 8) needs Node.js 20.19 or newer; Debian 12's own nodejs is 18, too old.
node_ok=$(node -e 'const [a,b]=process.versions.node.split(".").map(Number); console.log(a>20||(a==20&&b>=19)?"yes":"no")' 2>/dev/null || echo no)
if [ "$node_ok" != yes ]; then
  echo "setup: Node.js 20.19 or newer is needed for the desk's UI (found: $(node --version 2>/dev/null || echo none)); install it from https://nodejs.org or NodeSource and run again" >&2
  exit 1
fi

if ! command -v tauri-driver >/dev/null && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
  echo "setup: installing tauri-driver"
  cargo install tauri-driver --version '^2' --locked --quiet
fi

if [ -f ui/package-lock.json ] && { [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; }; then
  echo "setup: installing the UI's npm packages"
  (cd ui && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ -f e2e/package-lock.json ] && { [ ! -d e2e/node_modules ] || [ e2e/package-lock.json -nt e2e/node_modules/.package-lock.json ]; }; then
  echo "setup: installing the end-to-end tests' npm packages"
  (cd e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
