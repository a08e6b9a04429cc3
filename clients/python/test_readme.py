"""The README's client snippets, run as a reader would paste them: each
fenced block after a `<!-- snippet: NAME -->` line in "Use your Binance
client" runs in its own Python process, with only the exchange's address
and the user's key and secret replaced. A snippet that fails, hangs or
prints nothing fails here.

Needs a running exchange and a user's key (scripts/clients.sh provides
them). Each test cancels what its snippet left open.
"""

import pathlib
import re
import subprocess
import sys

import pytest
from binance.client import Client

from helpers import base_url, env

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
SNIPPET = re.compile(r"<!-- snippet: ([a-z0-9-]+) -->\n```python\n(.*?)```", re.S)


def snippets():
    return dict(SNIPPET.findall(README.read_text()))


def localized(code):
    """The snippet with the README's address and placeholders replaced."""
    http = base_url()
    ws = http.replace("http://", "ws://", 1)
    return (
        code.replace("http://127.0.0.1:8080", http)
        .replace("ws://127.0.0.1:8080", ws)
        .replace('"API_KEY"', repr(env("API_KEY")))
        .replace('"SECRET"', repr(env("API_SECRET")))
    )


def cancel_everything():
    class Local(Client):
        API_URL = base_url() + "/api"

    c = Local(env("API_KEY"), env("API_SECRET"))
    for o in c.get_open_orders():
        c.cancel_order(symbol=o["symbol"], orderId=o["orderId"])


def test_the_readme_has_its_snippets():
    assert set(snippets()) == {
        "python-binance-rest",
        "ccxt-rest",
        "python-binance-streams",
        "ccxt-pro-streams",
    }


@pytest.mark.parametrize("name", sorted(snippets()))
def test_snippet_runs_as_written(name):
    code = localized(snippets()[name])
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        cancel_everything()
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip(), f"{name} printed nothing:\n{done.stderr}"
