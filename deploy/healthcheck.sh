#!/bin/bash
# Container health probe: GET /healthz on the port of EXCHANGE_LISTEN and
# succeed on HTTP 200. The runtime image has no HTTP client, so this speaks
# HTTP/1.0 over bash's /dev/tcp. /healthz is liveness only (the process
# serves); readiness (/readyz) is for humans and dashboards, because a
# halted pair or a replay must not get a container restarted.
set -euo pipefail

listen="${EXCHANGE_LISTEN:-127.0.0.1:8080}"
port="${listen##*:}"

exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
status=""
IFS= read -r -t 4 status <&3 || true
exec 3<&- 3>&-

case "$status" in
  "HTTP/1."?" 200"*) exit 0 ;;
  *) echo "healthz on port ${port}: ${status:-no answer}" >&2; exit 1 ;;
esac
