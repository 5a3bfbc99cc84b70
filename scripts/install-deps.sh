#!/usr/bin/env bash
# Installs what flashsale's scripts need when it is missing: redis-server and redis-cli (the
# embedded mode and the tests), curl, and python3 with venv (the load-test smoke's oversell server
# is a Python script; schemathesis and, where the system's Node is too old, Node.js come from PyPI
# into virtual environments), and procps (the tests signal processes with kill; a minimal Debian
# lacks it). apt-get on Debian/Ubuntu, brew on macOS. Does nothing when all are already there.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 \
  && command -v curl >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1 \
  && python3 -c 'import ensurepip, venv' >/dev/null 2>&1 \
  && { [ -x /bin/kill ] || [ -x /usr/bin/kill ]; }; then
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  sudo_cmd=(sudo)
fi

if command -v apt-get >/dev/null 2>&1; then
  echo "installing redis-server, redis-tools, curl, python3, python3-venv and procps with apt-get..." >&2
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server redis-tools curl python3 \
    python3-venv procps
elif command -v brew >/dev/null 2>&1; then
  echo "installing redis with brew..." >&2
  brew install redis curl python3
else
  echo "redis-server is missing and neither apt-get nor brew is available:" >&2
  echo "install Redis 7 yourself, or set REDIS_URL to a Redis you run." >&2
  exit 1
fi
