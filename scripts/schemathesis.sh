#!/usr/bin/env bash
# Schemathesis against the exchange's own OpenAPI document: every operation
# of `GET /api/openapi.json` called with generated requests, valid and
# invalid, signed where the document says so (scripts/schemathesis/hooks.py);
# no answer may be a 5xx, and every answer's status and body must be ones
# the document gives for that operation.
#   scripts/schemathesis.sh            (builds target/debug/exchange if needed)
#   EXCHANGE_BIN=target/release/exchange scripts/schemathesis.sh
# Steps: the venv of scripts/clients.sh (clients/python/requirements.txt
# pins Schemathesis with the client libraries; one venv, cached in
# ~/.cache/exchange-clients-venv/<Python version>-<hash of the requirements>,
# made by whichever script runs first); the exchange on a free loopback port
# with its store in a temporary directory, the built-in demo pairs and
# funding, and limits raised so that request weights and order counts do
# not get in the way; a trading key (for the user the document's examples
# name) and an admin key; the document checked against the OpenAPI 3.1
# meta-schema; Schemathesis for MAX_EXAMPLES (30) examples per operation
# under a time bound; the exchange stopped on every way out. Exits non-zero
# when anything failed. Reads no standard input. Environment: EXCHANGE_BIN,
# PYTHON (default python3), CLIENTS_VENV (a venv to use instead of the
# cached one), MAX_EXAMPLES, SEED (for a reproducible run), WORKERS
# (default 2), RUN_SECONDS (the bound on Schemathesis itself, default 480),
# REPORT_DIR (keeps the JUnit report and a HAR of every exchange there),
# CARGO_TARGET_DIR.
set -euo pipefail
exec </dev/null
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/scripts/schemathesis
REQ=$ROOT/clients/python/requirements.txt
PY=${PYTHON:-python3}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $TARGET = /* ]] || TARGET=$ROOT/$TARGET

step() { echo "== schemathesis: $* (${SECONDS}s)"; }

# --- the venv: scripts/clients.sh's, cached by what it holds ----------------------
if bad=$(grep -vE '^[[:space:]]*(#.*)?$' "$REQ" | grep -vE '^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+[[:space:]]*$'); then
  echo "$REQ: every requirement must be name==version; not: $bad" >&2
  exit 2
fi
grep -qE '^schemathesis==' "$REQ" || { echo "$REQ does not pin schemathesis" >&2; exit 2; }
pyver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
key=$(sha256sum <"$REQ" | cut -c1-16)
VENV=${CLIENTS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/exchange-clients-venv/py$pyver-$key}
venv_ok() {
  [[ -f $VENV/.complete ]] && "$VENV/bin/python" -c '
import importlib.util, sys
sys.exit(any(importlib.util.find_spec(m) is None for m in ("schemathesis", "binance", "ccxt", "pytest")))' >/dev/null 2>&1
}
mkdir -p "$(dirname "$VENV")"
# One run at a time makes the venv (scripts/clients.sh takes the same
# lock); the others wait for it and reuse it.
exec 9>"$VENV.lock"
timeout 1200 flock 9 || { echo "waited 20 min for $VENV.lock" >&2; exit 1; }
if ! venv_ok; then
  step "creating the venv $VENV"
  rm -rf "$VENV"
  timeout -k 10 120 "$PY" -m venv "$VENV"
  PIP_FIND_LINKS= PIP_EXTRA_INDEX_URL= PIP_NO_INPUT=1 \
    timeout -k 10 900 "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input \
      --progress-bar off -q -r "$REQ"
  touch "$VENV/.complete"
  venv_ok || { echo "the venv $VENV does not import schemathesis" >&2; exit 1; }
else
  step "reusing the venv $VENV"
fi
flock -u 9
exec 9>&-

# --- the exchange ------------------------------------------------------------------
WORK=
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
RUN_PID=
cleanup() {
  # timeout passes the signal on to Schemathesis.
  [[ -z $RUN_PID ]] || kill -TERM "$RUN_PID" 2>/dev/null || true
  stop_exchange
  [[ -z $WORK ]] || rm -rf "$WORK"
}
# Bash runs the EXIT trap on every way out: the end, an error under set -e,
# and a fatal signal.
trap cleanup EXIT
WORK=$(mktemp -d "${TMPDIR:-/tmp}/exchange-schemathesis.XXXXXX")
if [[ -n ${EXCHANGE_BIN:-} ]]; then
  BIN=$EXCHANGE_BIN
else
  # A no-op after `cargo test`, which builds the same binary.
  step "cargo build -p exchange"
  (cd "$ROOT" && timeout -k 10 2400 cargo build -q -p exchange --locked)
  # A copy: another build into a shared target directory cannot swap it.
  cp "$TARGET/debug/exchange" "$WORK/exchange"
  BIN=$WORK/exchange
fi
[[ -x $BIN ]] || { echo "no exchange binary at $BIN" >&2; exit 2; }

# The demo pairs (the defaults) and the demo funding, with limits no run of
# this size reaches: the limits have their own tests, and a 429 here would
# only keep the requests behind it from reaching the handlers.
cat >"$WORK/exchange.toml" <<'TOML'
[gateway]
rate_limit_per_sec = 1000000
rate_limit_burst = 1000000
request_weight_per_minute = 100000000
orders_per_10s = 10000000
orders_per_day = 100000000

[accounts]
demo_funding = { EUR = "100000", BTC = "10", ETH = "100" }
TOML
unset EXCHANGE_CONFIG_TOML DATABASE_URL DATABASE_PASSWORD KAFKA_BROKERS
PORT=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export EXCHANGE_CONFIG=$WORK/exchange.toml EXCHANGE_LISTEN=127.0.0.1:$PORT EXCHANGE_DATA_DIR=$WORK/data
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

# --- keys ----------------------------------------------------------------------------
# The trading key's user is the one the document's examples name.
read -r API_KEY API_SECRET <<<"$(timeout -k 5 60 "$BIN" keys create --user alice |
  awk '/^api key:/ {k = $3} /^secret:/ {s = $2} END {print k, s}')"
read -r ADMIN_KEY ADMIN_SECRET <<<"$(timeout -k 5 60 "$BIN" admin-keys create --name schemathesis |
  awk '/^admin key:/ {k = $3} /^secret:/ {s = $2} END {print k, s}')"
[[ -n $API_KEY && -n $API_SECRET && -n $ADMIN_KEY && -n $ADMIN_SECRET ]] ||
  { echo "could not create the keys" >&2; exit 1; }
export API_KEY API_SECRET ADMIN_KEY ADMIN_SECRET

# --- the document ---------------------------------------------------------------------
step "checking $URL/api/openapi.json against the OpenAPI 3.1 meta-schema"
curl -fsS --max-time 10 "$URL/api/openapi.json" -o "$WORK/openapi.json" ||
  { echo "$BIN serves no /api/openapi.json" >&2; exit 1; }
"$VENV/bin/python" - "$WORK/openapi.json" <<'PY'
import json, sys
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR
doc = json.load(open(sys.argv[1]))
errors = list(OPENAPI_31_VALIDATOR.iter_errors(doc))
for e in errors[:20]:
    print(f"  {e}", file=sys.stderr)
ops = sum(1 for item in doc["paths"].values() for m in item if m in ("get", "put", "post", "delete", "patch"))
print(f"   {len(doc['paths'])} paths, {ops} operations; {len(errors)} meta-schema errors")
sys.exit(1 if errors else 0)
PY

# --- the run ------------------------------------------------------------------------
args=(
  run "$URL/api/openapi.json"
  --checks not_a_server_error,status_code_conformance,response_schema_conformance
  --max-examples "${MAX_EXAMPLES:-30}"
  --workers "${WORKERS:-2}"
  --generation-with-security-parameters false
  --generation-database none
  --request-timeout 30
  --no-color
  --report "junit${REPORT_DIR:+,har}" --report-dir "${REPORT_DIR:-$WORK/report}"
)
[[ -z ${SEED:-} ]] || args+=(--seed "$SEED")
step "schemathesis ${args[*]:1}"
status=0
(cd "$WORK" && SCHEMATHESIS_HOOKS=$HERE/hooks.py exec timeout -k 10 "${RUN_SECONDS:-480}" "$VENV/bin/schemathesis" "${args[@]}") &
RUN_PID=$!
wait "$RUN_PID" || status=$?
RUN_PID=
if ((status == 124)); then
  echo "schemathesis did not finish within ${RUN_SECONDS:-480} s" >&2
fi

if ! kill -0 "$PID" 2>/dev/null; then
  echo "the exchange died during the run" >&2
  status=1
fi
stop_exchange
if ((status != 0)); then
  echo "== schemathesis: FAILED (exit $status) after ${SECONDS} s" >&2
  if grep -q 'panicked' "$WORK/exchange.log"; then
    echo "the exchange panicked (a request it dropped without an answer):" >&2
    grep -A1 'panicked' "$WORK/exchange.log" | head -n 20 >&2
  fi
  echo "the exchange's log ends with:" >&2
  grep -v 'audit passed' "$WORK/exchange.log" | tail -n 20 >&2
  exit 1
fi
step "ok"
