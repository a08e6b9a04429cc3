"""ccxt's binance class against the exchange's /api/v3, with values checked.

Same environment as test_python_binance.py (EXCHANGE_URL, API_KEY/API_SECRET
for the trader who takes, API_KEY_2/API_SECRET_2 for the one who provides
liquidity); scripts/clients.sh gives each file its own two users. This file
trades ETH/EUR alone, so the public endpoints show what it did, measured as
the difference from a reading taken before it traded.

The tests run in order and share `S`.
"""

import time
import uuid

import ccxt
import pytest

from helpers import HTTP_LOG, D, balances, base_url, env, eventually, exchange_only, record_http, total

SYMBOL, MARKET_ID = "ETH/EUR", "ETHEUR"
BASE, QUOTE = "ETH", "EUR"
ASK = D("1500")
ASK_QTY = D("0.1")
# A crossing limit buy, a market buy by amount, and one by cost (30 EUR at
# 1500 is 0.02 ETH).
LIMIT_QTY, MARKET_QTY, MARKET_COST = D("0.04"), D("0.03"), D("30")
QTYS = [LIMIT_QTY, MARKET_QTY, MARKET_COST / ASK]
BOUGHT = sum(QTYS)  # 0.09
SPENT = BOUGHT * ASK  # 135 EUR
BID = D("1400")
UNKNOWN_ORDER_ID = "987654321"

S = {}


def need(key):
    if key not in S:
        pytest.fail(f"needs {key!r} from an earlier step, which failed")
    return S[key]


def make_exchange(key, secret):
    """ccxt.binance on the exchange, spot only: every entry of urls.api
    points at it (public and private at /api/v3; the futures, options,
    margin and wallet ones at a path the exchange does not serve, so that a
    call ccxt makes there fails here), its session reaches no other host,
    and load_markets() asks only for exchangeInfo."""
    api = base_url() + "/api/v3"
    urls = {name: api if name in ("public", "private") else f"{base_url()}/not-spot/{name}" for name in ccxt.binance().urls["api"]}
    ex = ccxt.binance(
        {
            "apiKey": key,
            "secret": secret,
            "urls": {"api": urls},
            "timeout": 10000,
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
        }
    )
    # The constructor deep-merges urls: a base URL this ccxt version added
    # and the list above missed would still name Binance.
    off = {name: url for name, url in ex.urls["api"].items() if not (isinstance(url, str) and url.startswith(base_url() + "/"))}
    assert off == {}, f"urls.api entries not on the exchange: {off}"
    exchange_only(ex.session)
    record_http(ex.session)
    return ex


@pytest.fixture(scope="module")
def taker():
    ex = make_exchange(env("API_KEY"), env("API_SECRET"))
    ex.load_markets()
    return ex


@pytest.fixture(scope="module")
def maker():
    ex = make_exchange(env("API_KEY_2"), env("API_SECRET_2"))
    ex.load_markets()
    return ex


@pytest.fixture(scope="module", autouse=True)
def _cancel_leftovers_at_end(taker, maker):
    yield
    for ex in (taker, maker):
        try:
            for o in ex.fetch_open_orders(SYMBOL):
                ex.cancel_order(o["id"], SYMBOL)
        except Exception:  # noqa: BLE001 - best effort; the tests reported already
            pass


def cid(tag):
    return f"cx-{tag}-{uuid.uuid4().hex[:12]}"


def raw_balances(ex):
    """Exact balances from the account answer ccxt received."""
    return balances(ex.fetch_balance()["info"])


def same(value, expected):
    """ccxt gives floats: equal to the exact decimal as far as a float goes."""
    if value is None:
        return False
    expected = D(expected)
    return abs(D(value) - expected) <= D("1e-9") * max(1, abs(expected))


# --- markets and market data ---------------------------------------------------


def test_load_markets_asks_only_for_exchange_info():
    ex = make_exchange(env("API_KEY"), env("API_SECRET"))
    HTTP_LOG.clear()
    markets = ex.load_markets()
    assert [e["request"] for e in HTTP_LOG] == [f"GET {base_url()}/api/v3/exchangeInfo"]
    assert {"BTC/EUR", "ETH/EUR", "ETH/BTC"} <= set(markets)
    m = markets[SYMBOL]
    assert (m["id"], m["base"], m["quote"], m["type"], m["spot"], m["active"]) == (MARKET_ID, BASE, QUOTE, "spot", True, True)
    # The built-in demo pair ETH-EUR (exchange/src/config.rs).
    assert same(m["precision"]["price"], D("0.01")) and same(m["precision"]["amount"], D("0.0001"))
    assert same(m["limits"]["amount"]["min"], D("0.0001")) and same(m["limits"]["amount"]["max"], D("10000"))
    assert same(m["limits"]["price"]["max"], D("1000000"))
    assert same(m["limits"]["cost"]["min"], D("1"))


def test_fetch_time(taker):
    assert abs(taker.fetch_time() - int(time.time() * 1000)) < 2000


def test_unknown_symbol_is_bad_symbol(taker):
    with pytest.raises(ccxt.BadSymbol):
        taker.publicGetDepth({"symbol": "NOPEEUR"})  # -1121


def test_wrong_secret_is_authentication_error():
    ex = make_exchange(env("API_KEY"), env("API_SECRET") + "x")
    ex.load_markets()
    with pytest.raises(ccxt.AuthenticationError):
        ex.fetch_balance()  # -1022


# --- the trading flow --------------------------------------------------------------


def test_step00_start_clean_and_take_readings(taker, maker):
    for ex in (taker, maker):
        for o in ex.fetch_open_orders(SYMBOL):
            ex.cancel_order(o["id"], SYMBOL)
        eventually("open orders empty after cancelling", lambda e=ex: e.fetch_open_orders(SYMBOL), lambda r: r == [])
    book = taker.fetch_order_book(SYMBOL, 100)
    in_the_way = [a for a in book["asks"] if D(a[0]) <= ASK] + [b for b in book["bids"] if D(b[0]) >= D("1000")]
    assert in_the_way == [], f"{SYMBOL}'s book must be empty where this test trades; it has {in_the_way}"
    for name, ex in (("taker", taker), ("maker", maker)):
        bal = eventually(
            f"{name}'s demo funding",
            ex.fetch_balance,
            lambda b: total(balances(b["info"]), QUOTE) >= 1000 and total(balances(b["info"]), BASE) >= 1,
        )
        S[f"bal0_{name}"] = balances(bal["info"])
        S[f"{name}_rate"] = D(bal["info"][f"{name}Commission"]) / 10000
        assert same(bal[QUOTE]["total"], total(S[f"bal0_{name}"], QUOTE))
    now = taker.fetch_time()
    S["t0"] = now - now % 60000
    S["ohlcv0"] = taker.fetch_ohlcv(SYMBOL, "1m", since=S["t0"])
    S["ticker0"] = taker.fetch_ticker(SYMBOL)


def test_step01_maker_limit_sell_rests(maker):
    need("bal0_maker")
    client_id = cid("ask")
    o = maker.create_order(SYMBOL, "limit", "sell", float(ASK_QTY), float(ASK), {"clientOrderId": client_id})
    assert o["id"] and o["clientOrderId"] == client_id
    assert (o["symbol"], o["type"], o["side"], o["status"], o["timeInForce"]) == (SYMBOL, "limit", "sell", "open", "GTC")
    assert same(o["price"], ASK) and same(o["amount"], ASK_QTY) and same(o["filled"], 0) and same(o["remaining"], ASK_QTY)
    assert o["trades"] == [], "FULL answer of a resting order: no fills"
    S["ask"] = o


def test_step02_resting_order_is_visible(taker, maker):
    ask = need("ask")
    o = eventually("fetch_order of the resting ask", lambda: maker.fetch_order(ask["id"], SYMBOL), lambda o: o["status"] == "open")
    assert same(o["price"], ASK) and same(o["amount"], ASK_QTY) and same(o["filled"], 0)
    assert o["clientOrderId"] == ask["clientOrderId"]
    assert maker.fetch_order(None, SYMBOL, {"clientOrderId": ask["clientOrderId"]})["id"] == ask["id"]
    opens = eventually("the ask in fetch_open_orders", lambda: maker.fetch_open_orders(SYMBOL), lambda os: [o["id"] for o in os] == [ask["id"]])
    assert same(opens[0]["price"], ASK) and same(opens[0]["remaining"], ASK_QTY)
    assert taker.fetch_open_orders(SYMBOL) == []
    book = taker.fetch_order_book(SYMBOL, 5)
    assert [(D(p), D(q)) for p, q in book["asks"]] == [(ASK, ASK_QTY)]
    assert isinstance(book["nonce"], int)
    m0 = need("bal0_maker")
    eventually("maker's ETH locked by the ask", lambda: raw_balances(maker), lambda b: b[BASE][1] == m0[BASE][1] + ASK_QTY)


def check_taken(o, qty):
    quote = qty * ASK
    assert o["status"] == "closed" and same(o["filled"], qty) and same(o["cost"], quote) and same(o["average"], ASK)
    assert same(o["remaining"], 0)
    assert len(o["trades"]) == 1
    t = o["trades"][0]
    assert same(t["price"], ASK) and same(t["amount"], qty)
    assert t["fee"]["currency"] == QUOTE and same(t["fee"]["cost"], quote * need("taker_rate"))


def test_step03_limit_buy_crosses(taker):
    need("ask")
    o = taker.create_order(SYMBOL, "limit", "buy", float(LIMIT_QTY), float(ASK))
    assert (o["type"], o["side"]) == ("limit", "buy")
    assert o["clientOrderId"].startswith("x-TKT5PX2F"), "ccxt's generated newClientOrderId is kept"
    check_taken(o, LIMIT_QTY)
    S["buy_limit"] = o


def test_step04_market_buy_by_amount(taker):
    need("ask")
    o = taker.create_order(SYMBOL, "market", "buy", float(MARKET_QTY))
    assert (o["type"], o["side"]) == ("market", "buy")
    check_taken(o, MARKET_QTY)
    S["buy_market"] = o


def test_step05_market_buy_by_cost(taker):
    need("ask")
    o = taker.create_market_buy_order_with_cost(SYMBOL, float(MARKET_COST))
    assert o["info"]["type"] == "MARKET" and D(o["info"]["origQuoteOrderQty"]) == MARKET_COST
    check_taken(o, MARKET_COST / ASK)
    S["buy_cost"] = o


def taker_order_ids():
    return [need(k)["id"] for k in ("buy_limit", "buy_market", "buy_cost")]


def test_step06_maker_order_partially_filled(maker):
    ask = need("ask")
    o = eventually("the ask partly filled", lambda: maker.fetch_order(ask["id"], SYMBOL), lambda o: same(o["filled"], BOUGHT))
    assert o["status"] == "open" and o["info"]["status"] == "PARTIALLY_FILLED"
    assert same(o["remaining"], ASK_QTY - BOUGHT) and same(o["cost"], SPENT)


def test_step07_my_trades_show_both_sides(taker, maker):
    ids, ask = taker_order_ids(), need("ask")
    mine = eventually("taker's fetch_my_trades", lambda: [t for t in taker.fetch_my_trades(SYMBOL) if t["order"] in ids], lambda ts: len(ts) == 3)
    assert [t["order"] for t in mine] == ids
    for t, q in zip(mine, QTYS):
        assert (t["symbol"], t["side"], t["takerOrMaker"]) == (SYMBOL, "buy", "taker")
        assert same(t["price"], ASK) and same(t["amount"], q) and same(t["cost"], q * ASK)
        assert t["fee"]["currency"] == QUOTE and same(t["fee"]["cost"], q * ASK * need("taker_rate"))
    S["trade_ids"] = [t["id"] for t in mine]
    theirs = eventually("maker's fetch_my_trades", lambda: [t for t in maker.fetch_my_trades(SYMBOL) if t["order"] == ask["id"]], lambda ts: len(ts) == 3)
    assert [t["id"] for t in theirs] == S["trade_ids"]
    for t, q in zip(theirs, QTYS):
        assert (t["side"], t["takerOrMaker"]) == ("sell", "maker") and same(t["amount"], q)
        assert same(t["fee"]["cost"], q * ASK * need("maker_rate"))


def test_step08_balances_moved_by_exactly_the_trades(taker, maker):
    need("trade_ids")
    t0, m0 = need("bal0_taker"), need("bal0_maker")
    expect_taker = {QUOTE: total(t0, QUOTE) - SPENT * (1 + need("taker_rate")), BASE: total(t0, BASE) + BOUGHT}
    expect_maker = {QUOTE: total(m0, QUOTE) + SPENT * (1 - need("maker_rate")), BASE: total(m0, BASE) - BOUGHT}
    for name, ex, expect in (("taker", taker, expect_taker), ("maker", maker, expect_maker)):
        eventually(f"{name}'s balances after the trades", lambda e=ex: raw_balances(e), lambda b, x=expect: {a: total(b, a) for a in x} == x)
        unified = ex.fetch_balance()
        for asset, value in expect.items():
            assert same(unified[asset]["total"], value), (name, asset, unified[asset])
    assert raw_balances(maker)[BASE][1] == m0[BASE][1] + ASK_QTY - BOUGHT


def test_step09_public_trades(taker):
    ids = need("trade_ids")
    agg = taker.fetch_trades(SYMBOL, limit=3)  # ccxt reads /aggTrades
    assert [(D(t["price"]), D(t["amount"]), t["side"]) for t in agg] == [(ASK, q, "buy") for q in QTYS]
    assert [t["info"]["f"] for t in agg] == [int(i) for i in ids]
    plain = taker.fetch_trades(SYMBOL, limit=3, params={"fetchTradesMethod": "publicGetTrades"})
    assert [(t["id"], D(t["amount"]), t["side"]) for t in plain] == [(i, q, "buy") for i, q in zip(ids, QTYS)]


def test_step10_ohlcv_counts_exactly_the_trades(taker):
    need("trade_ids")
    t0 = need("t0")
    before = sum(D(c[5]) for c in need("ohlcv0"))
    candles = taker.fetch_ohlcv(SYMBOL, "1m", since=t0)
    assert candles and all(len(c) == 6 for c in candles) and candles[0][0] >= t0
    assert sum(D(c[5]) for c in candles) - before == BOUGHT
    assert D(candles[-1][4]) == ASK


def test_step11_ticker(taker):
    need("trade_ids")
    before = need("ticker0")
    t = taker.fetch_ticker(SYMBOL)
    assert t["symbol"] == SYMBOL and same(t["last"], ASK) and same(t["close"], ASK)
    assert same(D(t["baseVolume"]) - D(before["baseVolume"] or 0), BOUGHT)
    assert same(D(t["quoteVolume"]) - D(before["quoteVolume"] or 0), SPENT)
    assert same(t["ask"], ASK) and same(t["askVolume"], ASK_QTY - BOUGHT)
    assert t["high"] >= float(ASK) >= t["low"]


def test_step12_post_only_rests(taker):
    need("ask")
    o = taker.create_order(SYMBOL, "limit", "buy", 0.01, float(BID), {"postOnly": True})
    assert o["info"]["type"] == "LIMIT_MAKER" and o["postOnly"] is True and o["status"] == "open"
    assert same(o["price"], BID)
    opens = eventually("the post-only bid open", lambda: taker.fetch_open_orders(SYMBOL), lambda os: [x["id"] for x in os] == [o["id"]])
    assert opens[0]["postOnly"] is True
    S["bid"] = o


def test_step13_post_only_that_would_cross(taker, maker):
    ask = need("ask")
    with pytest.raises(ccxt.OrderImmediatelyFillable):  # -2010 "Order would immediately match and take."
        taker.create_order(SYMBOL, "limit", "buy", 0.01, float(ASK), {"postOnly": True})
    assert same(maker.fetch_order(ask["id"], SYMBOL)["filled"], BOUGHT)


def test_step14_insufficient_funds(taker):
    need("bal0_taker")
    with pytest.raises(ccxt.InsufficientFunds):  # -2010 "Account has insufficient balance for requested action."
        taker.create_order(SYMBOL, "limit", "buy", 1000, 1450)


def test_step15_test_order_places_nothing(taker):
    bid = need("bid")
    taker.create_order(SYMBOL, "limit", "buy", 0.01, 1450, {"test": True})
    assert HTTP_LOG[-1]["request"].startswith(f"POST {base_url()}/api/v3/order/test")
    time.sleep(0.2)
    assert [o["id"] for o in taker.fetch_open_orders(SYMBOL)] == [bid["id"]]


def test_step16_cancel_orders(taker, maker):
    ask, bid = need("ask"), need("bid")
    o = maker.cancel_order(ask["id"], SYMBOL)
    assert (o["id"], o["status"]) == (ask["id"], "canceled") and same(o["filled"], BOUGHT)
    o = taker.cancel_order(bid["id"], SYMBOL)
    assert (o["id"], o["status"]) == (bid["id"], "canceled")
    for ex in (taker, maker):
        eventually("no open orders after the cancels", lambda e=ex: e.fetch_open_orders(SYMBOL), lambda os: os == [])
    t0, m0 = need("bal0_taker"), need("bal0_maker")
    eventually("the maker's ETH lock released", lambda: raw_balances(maker), lambda b: b[BASE][1] == m0[BASE][1])
    eventually("the taker's EUR lock released", lambda: raw_balances(taker), lambda b: b[QUOTE][1] == t0[QUOTE][1])


def test_step17_unknown_orders(taker, maker):
    ask = need("ask")
    with pytest.raises(ccxt.OrderNotFound):  # -2011
        taker.cancel_order(UNKNOWN_ORDER_ID, SYMBOL)
    with pytest.raises(ccxt.OrderNotFound):  # -2011, already canceled
        maker.cancel_order(ask["id"], SYMBOL)
    with pytest.raises(ccxt.OrderNotFound):  # -2013
        taker.fetch_order(UNKNOWN_ORDER_ID, SYMBOL)


def test_step18_all_orders(taker, maker):
    ids, bid, ask = taker_order_ids(), need("bid"), need("ask")
    wanted = {i: "closed" for i in ids} | {bid["id"]: "canceled"}
    orders = eventually(
        "fetch_orders with every final status",
        lambda: taker.fetch_orders(SYMBOL),
        lambda os: {o["id"]: o["status"] for o in os if o["id"] in wanted} == wanted,
    )
    assert [int(o["id"]) for o in orders] == sorted(int(o["id"]) for o in orders)
    o = next(o for o in maker.fetch_orders(SYMBOL) if o["id"] == ask["id"])
    assert o["status"] == "canceled" and same(o["filled"], BOUGHT)


def test_cancel_all_orders(taker):
    placed = [taker.create_order(SYMBOL, "limit", "buy", 0.01, p)["id"] for p in (1000, 1001)]
    eventually("both bids open", lambda: taker.fetch_open_orders(SYMBOL), lambda os: sorted(o["id"] for o in os) == sorted(placed))
    canceled = taker.cancel_all_orders(SYMBOL)
    assert sorted(o["id"] for o in canceled) == sorted(placed) and all(o["status"] == "canceled" for o in canceled)
    eventually("no open orders after cancel-all", lambda: taker.fetch_open_orders(SYMBOL), lambda os: os == [])
