#!/usr/bin/env bash
# Runs the Artillery drop (flash-sale.yml) against TARGET and ends with a verdict: units sold,
# oversold or not, answers by code, latency (verdict.mjs). Installs Artillery 2.0.21 here on
# first use (npm ci; its install scripts, which fetch a browser for another engine, are skipped).
# Usage: loadtest/artillery/run.sh [TARGET] [drop|smoke]   (default http://127.0.0.1:8080 drop)
# Exit: 0 correct, 1 wrong, 2 inconclusive (see verdict.mjs).
set -euo pipefail
cd "$(dirname "$0")"
TARGET=${1:-http://127.0.0.1:8080}
PHASES=${2:-drop}
[ -x node_modules/.bin/artillery ] || npm ci --no-audit --no-fund --loglevel=error --ignore-scripts
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node verdict.mjs stock "$TARGET" >"$work/before.json"
# Artillery's own report goes to a file (shown if it fails); its exit status is not the verdict.
ARTILLERY_DISABLE_TELEMETRY=true node_modules/.bin/artillery run --quiet -t "$TARGET" \
  -e "$PHASES" --output "$work/report.json" flash-sale.yml >"$work/artillery.log" 2>&1 \
  || { cat "$work/artillery.log"; echo "artillery failed" >&2; exit 2; }
node verdict.mjs judge "$work/report.json" "$work/before.json" "$TARGET"
