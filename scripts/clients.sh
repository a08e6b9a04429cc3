#!/usr/bin/env bash
# Real Binance client libraries against the exchange: python-binance and
# ccxt (versions pinned in clients/python/requirements.txt) run
# clients/python/test_*.py against a fresh embedded exchange.
#   scripts/clients.sh                 (builds target/debug/exchange if needed)
#   EXCHANGE_BIN=target/release/exchange scripts/clients.sh
# Steps: a venv cached in ~/.cache/exchange-clients-venv/<hash of the
# requirements and the Python version> (made once, from the package index
# alone, and reused by every run); the exchange on a free loopback port with
# its store in a temporary directory and the built-in demo config (three
# pairs, every new user credited 100,000 EUR, 10 BTC, 100 ETH); two users'
# keys per test file; each file under a time bound; the exchange stopped on
# every way out (success, failure, a signal). Exits non-zero when anything
# failed. Reads no standard input. Environment: EXCHANGE_BIN, PYTHON
# (default python3), CLIENTS_VENV (a venv directory to use instead of the
# cached one), CLIENTS_TEST_TIMEOUT (seconds per test file, default 180),
# CARGO_TARGET_DIR.
set -euo pipefail
exec </dev/null
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REQ=$ROOT/clients/python/requirements.txt
PY=${PYTHON:-python3}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $TARGET = /* ]] || TARGET=$ROOT/$TARGET
TEST_TIMEOUT=${CLIENTS_TEST_TIMEOUT:-180}

step() { echo "== clients: $* (${SECONDS}s)"; }

# --- the venv, cached by what it holds -------------------------------------------
# Only exact pins of named packages: no URLs, VCS links or local paths, so
# that everything comes from the package index.
if bad=$(grep -vE '^[[:space:]]*(#.*)?$' "$REQ" | grep -vE '^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+[[:space:]]*$'); then
  echo "$REQ: every requirement must be name==version; not: $bad" >&2
  exit 2
fi
pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$(sha256sum <"$REQ" | cut -c1-16)
VENV=${CLIENTS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/exchange-clients-venv/py$pyver-$key}
# Made completely, and its interpreter still runs and finds the clients.
venv_ok() {
  [[ -f $VENV/.complete ]] && "$VENV/bin/python" -c '
import importlib.util, sys
sys.exit(any(importlib.util.find_spec(m) is None for m in ("binance", "ccxt", "pytest")))' >/dev/null 2>&1
}
mkdir -p "$(dirname "$VENV")"
# One run at a time makes the venv; the others wait for it and reuse it.
exec 9>"$VENV.lock"
timeout 1200 flock 9 || { echo "waited 20 min for $VENV.lock" >&2; exit 1; }
if ! venv_ok; then
  step "creating the venv $VENV"
  rm -rf "$VENV"
  timeout -k 10 120 "$PY" -m venv "$VENV"
  # The index alone: no local wheel directories or extra indexes from the
  # environment, no prompts.
  PIP_FIND_LINKS= PIP_EXTRA_INDEX_URL= PIP_NO_INPUT=1 \
    timeout -k 10 900 "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
      --progress-bar off -q -r "$REQ"
  touch "$VENV/.complete"
  venv_ok || { echo "the venv $VENV does not import binance, ccxt and pytest" >&2; exit 1; }
else
  step "reusing the venv $VENV"
fi
flock -u 9
exec 9>&-

# --- the exchange ------------------------------------------------------------------
if [[ -n ${EXCHANGE_BIN:-} ]]; then
  BIN=$EXCHANGE_BIN
else
  # A no-op after `cargo test`, which builds the same binary.
  step "cargo build -p exchange"
  (cd "$ROOT" && timeout -k 10 2400 cargo build -q -p exchange --locked)
  BIN=$TARGET/debug/exchange
fi
[[ -x $BIN ]] || { echo "no exchange binary at $BIN" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/exchange-clients.XXXXXX")
PID=
stop_exchange() {
  [[ -n $PID ]] || return 0
  kill -TERM "$PID" 2>/dev/null || true
  for _ in $(seq 1 300); do
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$PID" 2>/dev/null; then
    echo "the exchange did not stop within 30 s of SIGTERM; killing it" >&2
    kill -KILL "$PID" 2>/dev/null || true
  fi
  wait "$PID" 2>/dev/null || true
  PID=
}
TEST_PID=
cleanup() {
  # timeout passes the signal on to pytest.
  [[ -z $TEST_PID ]] || kill -TERM "$TEST_PID" 2>/dev/null || true
  stop_exchange
  rm -rf "$WORK"
}
# Bash runs the EXIT trap on every way out: the end, an error under set -e,
# and a fatal signal (SIGTERM or SIGINT from CI or a person).
trap cleanup EXIT

# The built-in demo config: no config file, the store in $WORK.
unset EXCHANGE_CONFIG EXCHANGE_CONFIG_TOML DATABASE_URL DATABASE_PASSWORD KAFKA_BROKERS
PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export EXCHANGE_LISTEN=127.0.0.1:$PORT EXCHANGE_DATA_DIR=$WORK/data
URL=http://$EXCHANGE_LISTEN
step "starting $BIN on $URL"
"$BIN" run </dev/null >"$WORK/exchange.log" 2>&1 &
PID=$!
ready=
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
  if curl -fs --max-time 2 "$URL/readyz" >/dev/null 2>&1; then
    ready=1
    break
  fi
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $ready ]]; then
  echo "the exchange is not ready on $URL after 60 s; its log:" >&2
  tail -n 50 "$WORK/exchange.log" >&2
  exit 1
fi

# Prints "KEY SECRET" for a new key of user $1.
new_key() {
  timeout -k 5 60 "$BIN" keys create --user "$1" | awk '/^api key:/ {k = $3} /^secret:/ {s = $2} END {print k, s}'
}

# --- the tests -------------------------------------------------------------------
failed=()
run_file() {
  local file=$1 prefix=$2 tk ts mk ms
  read -r tk ts <<<"$(new_key "$prefix-taker")"
  read -r mk ms <<<"$(new_key "$prefix-maker")"
  [[ -n $tk && -n $ts && -n $mk && -n $ms ]] || { echo "could not create keys for $file" >&2; failed+=("$file"); return; }
  step "pytest $file"
  # In the background and waited for, so that a signal to this script is
  # handled at once and the EXIT trap can stop the tests too.
  (cd "$ROOT/clients/python" &&
    EXCHANGE_URL=$URL API_KEY=$tk API_SECRET=$ts API_KEY_2=$mk API_SECRET_2=$ms PYTHONDONTWRITEBYTECODE=1 \
      exec timeout -k 10 "$TEST_TIMEOUT" "$VENV/bin/python" -m pytest "$file") &
  TEST_PID=$!
  local rc=0
  wait "$TEST_PID" || rc=$?
  TEST_PID=
  if ((rc != 0)); then
    ((rc == 124)) && echo "$file did not finish within $TEST_TIMEOUT s" >&2
    failed+=("$file")
  fi
}
# Every test file, each with its own two users (pb and ccxt as before).
for file in "$ROOT"/clients/python/test_*.py; do
  file=${file##*/}
  case $file in
    test_python_binance.py) prefix=pb ;;
    test_ccxt.py) prefix=ccxt ;;
    *) prefix=${file#test_} prefix=${prefix%.py} ;;
  esac
  run_file "$file" "${prefix//_/-}"
done

if ! kill -0 "$PID" 2>/dev/null; then
  echo "the exchange died during the tests" >&2
  failed+=("exchange")
fi
stop_exchange
if ((${#failed[@]})); then
  echo "== clients: FAILED: ${failed[*]}; the exchange's log ends with:" >&2
  tail -n 80 "$WORK/exchange.log" >&2
  exit 1
fi
step "ok: every file passed"
