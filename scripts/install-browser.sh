#!/usr/bin/env bash
# Installs what the browser tests need when it is missing: Debian's chromium (the browser
# playwright-core drives; Playwright downloads nothing) and Node.js with npm. apt-get only.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ "${#missing[@]}" -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "the browser tests need ${missing[*]}; install them (chromium, Node.js 18+)" >&2
  exit 1
fi
sudo_cmd=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  sudo_cmd=(sudo)
fi
echo "installing ${missing[*]} with apt-get..." >&2
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
