"""Schemathesis hooks for the exchange: every request to an operation whose
description asks for a signature is signed as Binance's rules say, the way a
client would sign it.

The key goes in the header the operation's security scheme names
(`X-MBX-APIKEY`, or `X-ADMIN-KEY` for the operators' API); a fresh
`timestamp` is appended to the query string; `signature` is the hex
HMAC-SHA256, keyed by the secret, of the query string followed by the body,
exactly as they go on the wire, and is appended to the query string last.
Signing happens on the prepared request, after Schemathesis has encoded the
query and the body, so the signature covers the bytes the server reads.

Keys come from the environment: API_KEY and API_SECRET for trading,
ADMIN_KEY and ADMIN_SECRET for the operators' API.
"""

import hashlib
import hmac
import os
import time

import requests
import schemathesis
from hypothesis.internal import lambda_sources

# CPython before 3.11.8 and 3.12.2 can fail to parse a module's source when
# Hypothesis names a lambda for a strategy's repr (gh-106905, "AST
# constructor recursion depth mismatch"); the name is only for display, so
# a failure there must not end an operation's tests.
_describe_lambda = lambda_sources.lambda_description


def _lambda_description(f):
    try:
        return _describe_lambda(f)
    except SystemError:
        return "lambda"


lambda_sources.lambda_description = _lambda_description

KEYS = {
    "ApiKey": ("X-MBX-APIKEY", os.environ["API_KEY"], os.environ["API_SECRET"]),
    "AdminKey": ("X-ADMIN-KEY", os.environ["ADMIN_KEY"], os.environ["ADMIN_SECRET"]),
}


class Signed(requests.auth.AuthBase):
    """Signs a prepared request with one key."""

    def __init__(self, header, key, secret):
        self.header = header
        self.key = key
        self.secret = secret.encode()

    def __call__(self, request):
        base, _, query = request.url.partition("?")
        stamp = f"timestamp={int(time.time() * 1000)}"
        query = f"{query}&{stamp}" if query else stamp
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        signature = hmac.new(self.secret, query.encode() + body, hashlib.sha256).hexdigest()
        request.url = f"{base}?{query}&signature={signature}"
        request.headers[self.header] = self.key
        return request


def scheme_of(operation):
    """The key scheme an operation's description requires, if any."""
    for requirement in operation.definition.raw.get("security") or []:
        for name in requirement:
            if name in KEYS:
                return name
    return None


@schemathesis.hook
def before_call(context, case, kwargs):
    scheme = scheme_of(case.operation)
    if scheme is not None:
        kwargs["auth"] = Signed(*KEYS[scheme])
