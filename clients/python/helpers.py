"""What both client test files share: the environment, exact decimals, a
record of every HTTP exchange (printed when a test fails, so a failure says
what was sent and what came back), and waiting for the store to catch up."""

import os
import time
from decimal import Decimal
from urllib.parse import urlsplit

import requests

# Notes on reads that were not consistent at once (the exchange's history
# and open-order queries read the store, which trails the engine a little);
# conftest.py prints them at the end of the run.
LAG_NOTES = []

# Every HTTP exchange of the running test, in order.
HTTP_LOG = []

# Requests sent in the whole run, by "METHOD /path" (printed at the end:
# they count against the exchange's request-weight limit).
REQUESTS_SENT = {}


def env(name):
    """A required environment variable, or a failure that names it."""
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(
            f"{name} is not set: run through scripts/clients.sh, or export "
            "EXCHANGE_URL, API_KEY, API_SECRET, API_KEY_2, API_SECRET_2"
        )
    return value


def base_url():
    return env("EXCHANGE_URL").rstrip("/")


def ws_base():
    """The exchange's WebSocket address: `ws://host:port`."""
    return base_url().replace("http://", "ws://", 1)


def local_async_client():
    """python-binance's AsyncClient on the exchange: its REST base and its
    WebSocket API URL are class attributes read in the constructor (before
    `create`'s ping), so a subclass sets them."""
    from binance import AsyncClient

    return type(
        "LocalAsyncClient",
        (AsyncClient,),
        {"API_URL": base_url() + "/api", "WS_API_URL": ws_base() + "/ws-api/v3"},
    )


def D(value):
    """An exact decimal from a string (or a number's shortest repr)."""
    return Decimal(str(value))


class OffMachineRequest(AssertionError):
    """A client tried to reach a host other than the exchange under test."""


class _ExchangeOnly(requests.adapters.HTTPAdapter):
    """Sends only to the exchange's host (EXCHANGE_URL); anything else fails
    the test before a connection is opened, so that a client default that
    still names Binance's hosts shows up instead of leaving the machine."""

    def send(self, request, *args, **kwargs):
        allowed = urlsplit(base_url()).hostname
        host = urlsplit(request.url).hostname
        if host != allowed:
            raise OffMachineRequest(f"refused {request.method} {request.url}: only {allowed} may be reached")
        return super().send(request, *args, **kwargs)


def exchange_only(session):
    """Routes every http:// and https:// request of a requests.Session
    through _ExchangeOnly."""
    adapter = _ExchangeOnly()
    session.mount("http://", adapter)
    session.mount("https://", adapter)


def record_http(session):
    """Adds a hook to a requests.Session that logs each exchange in HTTP_LOG."""

    def hook(response, *args, **kwargs):
        req = response.request
        route = f"{req.method} {req.path_url.split('?')[0]}"
        REQUESTS_SENT[route] = REQUESTS_SENT.get(route, 0) + 1
        body = req.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        HTTP_LOG.append(
            {
                "request": f"{req.method} {req.url}",
                "headers": {
                    k: v
                    for k, v in req.headers.items()
                    if k.lower() in ("content-type", "x-mbx-apikey")
                },
                "body": body,
                "status": response.status_code,
                "response": response.text[:3000],
            }
        )

    session.hooks["response"].append(hook)


def format_http_log():
    lines = []
    for i, e in enumerate(HTTP_LOG, 1):
        lines.append(f"[{i}] {e['request']}  headers={e['headers']}")
        if e["body"]:
            lines.append(f"    body: {e['body']}")
        lines.append(f"    -> {e['status']} {e['response']}")
    return "\n".join(lines)


def eventually(what, fetch, ok, timeout=5.0):
    """Calls fetch() until ok(answer), for at most `timeout` seconds; notes
    it when the first answer was not yet right (Binance answers these reads
    consistently at once), fails with the last answer otherwise. The pause
    doubles from 20 ms to 250 ms, so that waiting spends little of the
    request weight a minute allows (6,000 per IP on Binance; an account read
    weighs 20)."""
    start = time.monotonic()
    tries = 0
    interval = 0.02
    while True:
        answer = fetch()
        tries += 1
        if ok(answer):
            if tries > 1:
                ms = (time.monotonic() - start) * 1000
                LAG_NOTES.append(f"{what}: right only after {ms:.0f} ms ({tries} reads)")
            return answer
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: still not right after {timeout} s; last answer: {answer!r}")
        time.sleep(interval)
        interval = min(interval * 2, 0.25)


def balances(account):
    """{asset: (free, locked)} as exact decimals, from Binance's account answer."""
    return {b["asset"]: (D(b["free"]), D(b["locked"])) for b in account["balances"]}


def total(bals, asset):
    free, locked = bals.get(asset, (Decimal(0), Decimal(0)))
    return free + locked


def filters(symbol_info):
    return {f["filterType"]: f for f in symbol_info["filters"]}
