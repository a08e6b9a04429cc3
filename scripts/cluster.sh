#!/usr/bin/env bash
# A local distributed exchange in one command, against the local Postgres:
# the broker, the topics, a persister, two engines, two risk roles and a
# gateway.
#   scripts/cluster.sh up      (builds the release binary, starts everything)
#   scripts/cluster.sh down    (stops everything; data stays in target/cluster)
#   scripts/cluster.sh reset   (down, then deletes the data and the database)
# Environment: PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres),
# CLUSTER_DIR (default target/cluster), GATEWAY_LISTEN (default 127.0.0.1:8080),
# CLUSTER_CONFIG (a config file to use instead of the one written here, e.g.
# loadtest/cluster.toml; it must keep kafka.brokers = 127.0.0.1:9092).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${CLUSTER_DIR:-$ROOT/target/cluster}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB=exchange_cluster
GATEWAY_LISTEN=${GATEWAY_LISTEN:-127.0.0.1:8080}
BIN=$ROOT/target/release/exchange
export DATABASE_URL=${PG_ADMIN_URL%/*}/$DB
export EXCHANGE_CONFIG=$DIR/cluster.toml

write_config() {
  cat >"$EXCHANGE_CONFIG" <<TOML
# Written by scripts/cluster.sh. Each pair owns one partition of both topics.
[accounts]
# Two risk shards (users by id % 2), run by the risk roles by lease.
shards = 2

[kafka]
brokers = "127.0.0.1:9092"
# Tansu waits the whole fetch wait on every fetch and queries its storage
# each time: 10 ms (the default, right for Kafka) costs it a core while idle.
fetch_wait_ms = 25

[[pairs]]
symbol = "BTC-EUR"
partition = 0
price_scale = 2
qty_scale = 8
tick_size = "0.01"
lot_size = "0.00001"
min_qty = "0.00001"
max_qty = "1000"
min_notional = "1"

[[pairs]]
symbol = "ETH-EUR"
partition = 1
price_scale = 2
qty_scale = 8
tick_size = "0.01"
lot_size = "0.0001"
min_qty = "0.0001"
max_qty = "10000"
min_notional = "1"

[[pairs]]
symbol = "ETH-BTC"
partition = 2
price_scale = 5
qty_scale = 3
tick_size = "0.00001"
lot_size = "0.001"
min_qty = "0.001"
max_qty = "10000"
min_notional = "0.0001"
TOML
}

start_role() {
  local name=$1 listen=$2; shift 2
  EXCHANGE_LISTEN=$listen nohup "$BIN" "$@" >"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
  for _ in $(seq 1 300); do
    if curl -fs "http://$listen/readyz" >/dev/null 2>&1; then
      echo "$name ready on http://$listen"
      return 0
    fi
    if ! kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null; then
      echo "$name exited; see $DIR/$name.log" >&2
      tail -5 "$DIR/$name.log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "$name not ready after 60 s; see $DIR/$name.log" >&2
  return 1
}

up() {
  mkdir -p "$DIR"
  (cd "$ROOT" && cargo build --release --locked -p exchange)
  if [ -n "${CLUSTER_CONFIG:-}" ]; then
    cp "$CLUSTER_CONFIG" "$EXCHANGE_CONFIG"
  else
    write_config
  fi
  if ! psql "$PG_ADMIN_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $DB"
  fi
  "$ROOT/scripts/broker.sh" start "$DIR/broker"
  "$BIN" topics create
  start_role persister 127.0.0.1:9101 persister
  start_role engine-1 127.0.0.1:9102 engine
  start_role engine-2 127.0.0.1:9103 engine
  # Risk roles only with accounts on (`[accounts] enabled = false` turns
  # the risk stage off, and the role refuses to start).
  if "$BIN" check-config | grep -q '^accounts: on'; then
    start_role risk-1 127.0.0.1:9104 risk
    start_role risk-2 127.0.0.1:9105 risk
  fi
  start_role gateway "$GATEWAY_LISTEN" gateway
  echo
  echo "cluster up: gateway http://$GATEWAY_LISTEN, store $DATABASE_URL, logs in $DIR"
  echo "  create an API key: DATABASE_URL=$DATABASE_URL $BIN keys create --user alice"
  echo "  fund it: DATABASE_URL=$DATABASE_URL $BIN admin-keys create --name ops; then with"
  echo "    EXCHANGE_ADMIN_KEY and EXCHANGE_ADMIN_SECRET set to what it printed:"
  echo "    $BIN accounts deposit --url http://$GATEWAY_LISTEN --user alice --asset EUR --amount 1000 --ref d1"
}

down() {
  for name in gateway risk-2 risk-1 engine-2 engine-1 persister; do
    if [ -f "$DIR/$name.pid" ]; then
      kill -TERM "$(cat "$DIR/$name.pid")" 2>/dev/null || true
    fi
  done
  for name in gateway risk-2 risk-1 engine-2 engine-1 persister; do
    if [ -f "$DIR/$name.pid" ]; then
      local pid; pid=$(cat "$DIR/$name.pid")
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$DIR/$name.pid"
    fi
  done
  "$ROOT/scripts/broker.sh" stop "$DIR/broker"
  echo "cluster down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  reset)
    down
    rm -rf "$DIR"
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB"
    ;;
  *) echo "usage: $0 up | down | reset" >&2; exit 2 ;;
esac
