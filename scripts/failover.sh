#!/usr/bin/env bash
# How long a pair is unavailable when the engine that owns it dies.
# Against a running cluster (CLUSTER_CONFIG=loadtest/cluster.toml
# scripts/cluster.sh up): runs loadtest/scenarios/failover.toml (RESULT
# orders for BTC-EUR at 200/s for 30 s), kills -9 the engine that owns
# BTC-EUR 10 s in, and restarts it afterwards. The scenario's maximum
# latency is the pair's unavailability: the orders planned at the kill wait
# until the surviving engine has seen the dead one's heartbeat stand still
# for a lease period, taken the lease, restored the snapshot and replayed
# the log after it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${CLUSTER_DIR:-$ROOT/target/cluster}
LOADTEST=$ROOT/target/release/loadtest
BIN=$ROOT/target/release/exchange
OUT=${OUT:-$ROOT/target/loadtest-results/failover-$(date +%s)}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/exchange_cluster}
export EXCHANGE_CONFIG=$DIR/cluster.toml

owner() {
  for n in 1 2; do
    if curl -fs "http://127.0.0.1:$((9101 + n))/metrics" 2>/dev/null |
        grep -q '^matching_pair_owned{pair="BTC-EUR"} 1'; then
      echo "$n"
      return 0
    fi
  done
  return 1
}

# The engine owning BTC-EUR, waiting up to $1 seconds for one. Right after
# an engine (re)joins, the plan moves pairs between the members, and a pair
# in hand-over has no owner for a moment.
await_owner() {
  for _ in $(seq 1 $(($1 * 10))); do
    owner && return 0
    sleep 0.1
  done
  return 1
}

[ -x "$LOADTEST" ] || (cd "$ROOT" && cargo build --release --locked -p loadtest)
cd "$ROOT"
await_owner 30 >/dev/null || { echo "no engine reports owning BTC-EUR" >&2; exit 1; }
"$LOADTEST" run loadtest/scenarios/failover.toml --out "$OUT" --quiet &
LT=$!
sleep 10
n=$(await_owner 5) || { echo "no engine reports owning BTC-EUR" >&2; kill "$LT"; exit 1; }
echo "$(date +%T.%N | cut -c1-12) kill -9 engine-$n (pid $(cat "$DIR/engine-$n.pid"))"
kill -9 "$(cat "$DIR/engine-$n.pid")"
for _ in $(seq 1 300); do
  m=$(owner) && [ "$m" != "$n" ] && break
  sleep 0.1
done
echo "$(date +%T.%N | cut -c1-12) engine-$(owner || echo '?') owns BTC-EUR (as reported once a second)"
wait "$LT"
# The dead engine comes back as a new member; the survivor hands one pair
# back to it (the plan keeps loads even).
EXCHANGE_LISTEN=127.0.0.1:$((9101 + n)) nohup "$BIN" engine >>"$DIR/engine-$n.log" 2>&1 &
echo $! >"$DIR/engine-$n.pid"
python3 - "$OUT/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_us"]["answered"]
t = r["requests"]["outcomes"]
print(f"answered p50 {lat['p50']/1000:.1f} ms, p99 {lat['p99']/1000:.1f} ms, "
      f"max {lat['max']/1000:.0f} ms (the pair's unavailability); outcomes {t}")
if t.get("timeout"):
    print(f"{t['timeout']} requests timed out (the gateway's RESULT timeout is 504 after "
          "5 s): the pair was unavailable for longer than that")
PY
