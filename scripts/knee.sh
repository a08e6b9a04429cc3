#!/usr/bin/env bash
# The knee of one exchange build, on a fresh store: for comparing builds,
# run it alternately for each (the machine's noise is in every figure).
#   scripts/knee.sh BIN TAG [START STEP]
# BIN is an `exchange` binary (a release build), TAG names the run; START
# and STEP are the knee scenario's rates (default 500 and 500). Needs
# target/release/loadtest. Writes target/knee-TAG/ (report, result.json)
# and prints the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$1 TAG=$2 START=${3:-500} STEP=${4:-500}
OUT=target/knee-$TAG
rm -rf "$OUT"
mkdir -p "$OUT"
sed "s|^data_dir = .*|data_dir = \"$PWD/$OUT/data\"|" loadtest/exchange.toml >"$OUT/exchange.toml"
sed "s/^start_rate = .*/start_rate = $START/; s/^step_rate = .*/step_rate = $STEP/" \
  loadtest/scenarios/knee.toml >"$OUT/knee.toml"
"$BIN" --config "$OUT/exchange.toml" >"$OUT/exchange.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break
  sleep 0.2
done
target/release/loadtest run "$OUT/knee.toml" --exchange-bin "$BIN" \
  --exchange-config "$OUT/exchange.toml" --pid "$PID" --out "$OUT/report" --quiet \
  | tail -n 20
kill "$PID"
wait "$PID" || true
rm -rf "$OUT/data"
