#!/usr/bin/env bash
# The local Kafka-compatible broker (Tansu, pinned).
#   scripts/broker.sh install            build it into ~/.cargo/bin when absent
#   scripts/broker.sh start DIR [PORT]   start it with its SQLite storage in DIR
#   scripts/broker.sh stop DIR
set -euo pipefail

TANSU_VERSION=0.6.0

install() {
  if command -v tansu >/dev/null 2>&1 && tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    return 0
  fi
  echo "== installing tansu $TANSU_VERSION (first build takes about 25 minutes on 2 cores)"
  # libsql gives sqlite:// storage, which survives a broker restart.
  cargo install tansu --version "$TANSU_VERSION" --locked --no-default-features --features libsql
}

start() {
  local dir=$1 port=${2:-9092}
  install
  mkdir -p "$dir"
  if [ -f "$dir/tansu.pid" ] && kill -0 "$(cat "$dir/tansu.pid")" 2>/dev/null; then
    echo "tansu already running (pid $(cat "$dir/tansu.pid"))"
    return 0
  fi
  # The sqlite path is relative to the working directory; advertise
  # 127.0.0.1, not localhost.
  (cd "$dir" || exit 1
   nohup tansu broker \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine sqlite://tansu.db >tansu.log 2>&1 &
   echo $! >tansu.pid)
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "tansu listening on 127.0.0.1:$port (data in $dir)"
      return 0
    fi
    sleep 0.1
  done
  echo "tansu did not start; see $dir/tansu.log" >&2
  return 1
}

stop() {
  local dir=$1
  if [ -f "$dir/tansu.pid" ]; then
    kill "$(cat "$dir/tansu.pid")" 2>/dev/null || true
    rm -f "$dir/tansu.pid"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?DIR}" "${3:-9092}" ;;
  stop) stop "${2:?DIR}" ;;
  *) echo "usage: $0 install | start DIR [PORT] | stop DIR" >&2; exit 2 ;;
esac
