"""python-binance against the exchange's /api/v3, with values checked.

Needs a running exchange and two users' keys (scripts/clients.sh provides
them): EXCHANGE_URL, API_KEY/API_SECRET (the trader, who takes) and
API_KEY_2/API_SECRET_2 (who provides the liquidity). This file trades
BTCEUR alone (test_ccxt.py trades ETHEUR), so what it reads back from the
public endpoints (trades, klines, tickers) is what it did, measured as the
difference from a reading taken before it traded.

The tests run in order and share `S`: a later step needs what an earlier
one placed, and says so when that step failed.
"""

import time
import uuid

import pytest
from binance.client import Client
from binance.exceptions import BinanceAPIException

from helpers import HTTP_LOG, D, balances, base_url, env, eventually, exchange_only, filters, record_http, total

SYMBOL = "BTCEUR"
BASE, QUOTE = "BTC", "EUR"
ASK = D("20000")  # the maker's resting sell, which every trade here fills at
ASK_QTY = D("0.01")
# The taker's three buys against it: a crossing limit, a market by quantity
# and a market by quote amount (40 EUR at 20000 is 0.002 BTC).
LIMIT_QTY, MARKET_QTY, MARKET_QUOTE = D("0.004"), D("0.003"), D("40")
BOUGHT = LIMIT_QTY + MARKET_QTY + MARKET_QUOTE / ASK  # 0.009
SPENT = BOUGHT * ASK  # 180 EUR
BID = D("19000")  # the taker's resting LIMIT_MAKER bid
FAR_BID = D("10000")  # far below anything, for orders that must rest

UNKNOWN_ORDER_ID = 987654321

S = {}  # what the ordered steps pass on


def need(key):
    if key not in S:
        pytest.fail(f"needs {key!r} from an earlier step, which failed")
    return S[key]


class GuardedClient(Client):
    """python-binance's Client whose session (made in the constructor,
    before its ping) reaches only the exchange and records every exchange."""

    def _init_session(self):
        session = super()._init_session()
        exchange_only(session)
        record_http(session)
        return session


def make_client(key, secret, **kwargs):
    """A python-binance Client on the exchange: the supported way to move it
    off Binance is its API_URL, formatted at construction, before the
    constructor's ping, so it is set on a subclass."""
    cls = type("LocalClient", (GuardedClient,), {"API_URL": base_url() + "/api"})
    return cls(key, secret, **kwargs)


@pytest.fixture(scope="module")
def taker():
    return make_client(env("API_KEY"), env("API_SECRET"))


@pytest.fixture(scope="module")
def maker():
    return make_client(env("API_KEY_2"), env("API_SECRET_2"))


@pytest.fixture(scope="module", autouse=True)
def _cancel_leftovers_at_end(taker, maker):
    yield
    for client in (taker, maker):
        try:
            for o in client.get_open_orders(symbol=SYMBOL):
                client.cancel_order(symbol=SYMBOL, orderId=o["orderId"])
        except Exception:  # noqa: BLE001 - best effort; the tests reported already
            pass


def cid(tag):
    return f"pb-{tag}-{uuid.uuid4().hex[:12]}"


def api_error(call, **params):
    """The BinanceAPIException a call must raise."""
    with pytest.raises(BinanceAPIException) as info:
        call(**params)
    return info.value


def server_ms(client):
    return client.get_server_time()["serverTime"]


def my_trades_of(client, order_ids):
    trades = client.get_my_trades(symbol=SYMBOL)
    return [t for t in trades if t["orderId"] in order_ids]


# --- general and market data ---------------------------------------------------


def test_constructor_pings_and_ping_answers_empty_object():
    HTTP_LOG.clear()
    client = make_client(env("API_KEY"), env("API_SECRET"))
    assert [e["request"] for e in HTTP_LOG] == [f"GET {base_url()}/api/v3/ping"], "the constructor pings"
    assert client.ping() == {}


def test_server_time_is_now(taker):
    before = int(time.time() * 1000)
    t = taker.get_server_time()
    after = int(time.time() * 1000)
    assert isinstance(t["serverTime"], int)
    assert before - 1000 <= t["serverTime"] <= after + 1000


def test_exchange_info_and_symbol_info(taker):
    info = taker.get_exchange_info()
    assert info["timezone"] == "UTC"
    assert abs(info["serverTime"] - int(time.time() * 1000)) < 5000
    assert isinstance(info["rateLimits"], list)
    names = {s["symbol"] for s in info["symbols"]}
    assert {"BTCEUR", "ETHEUR", "ETHBTC"} <= names

    s = taker.get_symbol_info("btceur")  # the helper upper-cases
    assert s is not None, "get_symbol_info matches exchangeInfo.symbols[].symbol"
    assert (s["symbol"], s["status"], s["baseAsset"], s["quoteAsset"]) == (SYMBOL, "TRADING", BASE, QUOTE)
    assert {"LIMIT", "LIMIT_MAKER", "MARKET"} <= set(s["orderTypes"])
    assert s["quoteOrderQtyMarketAllowed"] is True
    assert s["isSpotTradingAllowed"] is True
    f = filters(s)
    # The built-in demo pair BTC-EUR (exchange/src/config.rs).
    assert D(f["PRICE_FILTER"]["tickSize"]) == D("0.01")
    assert D(f["PRICE_FILTER"]["maxPrice"]) == D("10000000")
    assert D(f["LOT_SIZE"]["stepSize"]) == D("0.00001")
    assert D(f["LOT_SIZE"]["minQty"]) == D("0.00001")
    assert D(f["LOT_SIZE"]["maxQty"]) == D("1000")
    notional = f.get("NOTIONAL") or f.get("MIN_NOTIONAL")
    assert notional is not None, "a NOTIONAL (or MIN_NOTIONAL) filter"
    assert D(notional["minNotional"]) == D("1")

    assert taker.get_symbol_info("NOPEEUR") is None


def test_unknown_symbol_is_1121(taker):
    e = api_error(taker.get_order_book, symbol="NOPEEUR")
    assert (e.status_code, e.code) == (400, -1121), e.message


def test_wrong_secret_is_1022():
    client = make_client(env("API_KEY"), env("API_SECRET") + "x")
    e = api_error(client.get_account)
    assert e.code == -1022, e.message


def test_unknown_key_is_2015():
    client = make_client("NoSuchKey0123456789", env("API_SECRET"))
    e = api_error(client.get_account)
    assert e.code == -2015, e.message


# --- the trading flow ------------------------------------------------------------


def test_step00_start_clean_and_take_readings(taker, maker):
    for client in (taker, maker):
        for o in client.get_open_orders(symbol=SYMBOL):
            client.cancel_order(symbol=SYMBOL, orderId=o["orderId"])
    for client in (taker, maker):
        eventually("open orders empty after cancelling", lambda c=client: c.get_open_orders(symbol=SYMBOL), lambda r: r == [])
    book = taker.get_order_book(symbol=SYMBOL, limit=100)
    in_the_way = [a for a in book["asks"] if D(a[0]) <= ASK] + [b for b in book["bids"] if D(b[0]) >= FAR_BID]
    assert in_the_way == [], f"{SYMBOL}'s book must be empty where this test trades; it has {in_the_way}"

    # Balances (the demo credit arrives with a user's first signed request).
    for name, client in (("taker", taker), ("maker", maker)):
        account = eventually(
            f"{name}'s demo funding",
            client.get_account,
            lambda a: total(balances(a), QUOTE) >= 1000 and total(balances(a), BASE) >= 1,
        )
        S[f"bal0_{name}"] = balances(account)
        S[f"account_{name}"] = account
    acct = S["account_taker"]
    assert acct["accountType"] == "SPOT" and acct["canTrade"] is True
    for role in ("maker", "taker"):
        bps = acct[f"{role}Commission"]
        assert isinstance(bps, int)
        assert D(acct["commissionRates"][role]) == D(bps) / 10000
    S["taker_rate"] = D(acct["takerCommission"]) / 10000
    S["maker_rate"] = D(S["account_maker"]["makerCommission"]) / 10000

    # Public readings that the trades must move by exactly what they trade.
    now = server_ms(taker)
    S["t0"] = now - now % 60000
    S["klines0"] = taker.get_klines(symbol=SYMBOL, interval="1m", startTime=S["t0"])
    S["ticker0"] = taker.get_ticker(symbol=SYMBOL)
    S["window0"] = taker.get_symbol_ticker_window(symbol=SYMBOL, windowSize="1d")


def test_step01_maker_limit_sell_rests(maker):
    need("bal0_maker")
    client_id = cid("ask")
    r = maker.create_order(
        symbol=SYMBOL,
        side="SELL",
        type="LIMIT",
        timeInForce="GTC",
        quantity=str(ASK_QTY),
        price="20000.00",
        newClientOrderId=client_id,
        newOrderRespType="RESULT",
    )
    assert r["symbol"] == SYMBOL and isinstance(r["orderId"], int)
    assert r["clientOrderId"] == client_id and r["orderListId"] == -1
    assert abs(r["transactTime"] - int(time.time() * 1000)) < 5000
    assert (r["status"], r["type"], r["side"], r["timeInForce"]) == ("NEW", "LIMIT", "SELL", "GTC")
    assert D(r["price"]) == ASK and D(r["origQty"]) == ASK_QTY
    assert D(r["executedQty"]) == 0 and D(r["cummulativeQuoteQty"]) == 0
    assert "fills" not in r, "RESULT has no fills (FULL has)"
    S["ask"] = r


def test_step02_resting_order_is_visible(taker, maker):
    ask = need("ask")
    o = eventually("GET order of the resting ask", lambda: maker.get_order(symbol=SYMBOL, orderId=ask["orderId"]), lambda o: o["status"] == "NEW")
    assert D(o["price"]) == ASK and D(o["origQty"]) == ASK_QTY and D(o["executedQty"]) == 0
    assert o["clientOrderId"] == ask["clientOrderId"] and o["isWorking"] is True
    assert (o["type"], o["side"], o["timeInForce"]) == ("LIMIT", "SELL", "GTC")
    by_cid = maker.get_order(symbol=SYMBOL, origClientOrderId=ask["clientOrderId"])
    assert by_cid["orderId"] == ask["orderId"]

    opens = eventually("the ask in openOrders", lambda: maker.get_open_orders(symbol=SYMBOL), lambda os: any(o["orderId"] == ask["orderId"] for o in os))
    assert [(D(o["price"]), D(o["origQty"]), o["status"]) for o in opens] == [(ASK, ASK_QTY, "NEW")]
    assert taker.get_open_orders(symbol=SYMBOL) == [], "another user's order is not in my openOrders"

    book = taker.get_order_book(symbol=SYMBOL, limit=5)
    assert isinstance(book["lastUpdateId"], int)
    assert [(D(p), D(q)) for p, q in book["asks"]] == [(ASK, ASK_QTY)]
    bt = taker.get_orderbook_ticker(symbol=SYMBOL)
    assert bt["symbol"] == SYMBOL and (D(bt["askPrice"]), D(bt["askQty"])) == (ASK, ASK_QTY)

    bal0 = need("bal0_maker")
    bals = eventually("maker's BTC locked by the ask", lambda: balances(maker.get_account()), lambda b: b[BASE][1] == bal0[BASE][1] + ASK_QTY)
    assert bals[BASE][0] == bal0[BASE][0] - ASK_QTY


def check_fills(r, qty, quote):
    fee = quote * need("taker_rate")
    assert r["status"] == "FILLED", r
    assert D(r["executedQty"]) == qty and D(r["cummulativeQuoteQty"]) == quote
    assert [(D(f["price"]), D(f["qty"]), D(f["commission"]), f["commissionAsset"]) for f in r["fills"]] == [(ASK, qty, fee, QUOTE)]
    assert all(isinstance(f["tradeId"], int) for f in r["fills"])


def test_step03_taker_limit_buy_crosses(taker):
    need("ask")
    r = taker.order_limit_buy(symbol=SYMBOL, quantity=str(LIMIT_QTY), price="20000.00", newOrderRespType="FULL")
    assert (r["type"], r["side"], r["timeInForce"]) == ("LIMIT", "BUY", "GTC")
    assert D(r["price"]) == ASK and D(r["origQty"]) == LIMIT_QTY
    assert r["clientOrderId"].startswith("x-HNA2TXFJ"), "python-binance's generated newClientOrderId is kept"
    check_fills(r, LIMIT_QTY, LIMIT_QTY * ASK)
    S["buy_limit"] = r


def test_step04_market_buy_by_quantity(taker):
    need("ask")
    r = taker.order_market_buy(symbol=SYMBOL, quantity=str(MARKET_QTY))  # Binance's default for MARKET is FULL
    assert (r["type"], r["side"]) == ("MARKET", "BUY")
    assert "fills" in r, "MARKET orders answer FULL by default"
    check_fills(r, MARKET_QTY, MARKET_QTY * ASK)
    S["buy_market"] = r


def test_step05_market_buy_by_quote_amount(taker):
    need("ask")
    r = taker.order_market_buy(symbol=SYMBOL, quoteOrderQty="40.00", newOrderRespType="FULL")
    assert (r["type"], r["side"]) == ("MARKET", "BUY")
    assert D(r["origQuoteOrderQty"]) == MARKET_QUOTE
    check_fills(r, MARKET_QUOTE / ASK, MARKET_QUOTE)
    S["buy_quote"] = r


def taker_order_ids():
    return [need(k)["orderId"] for k in ("buy_limit", "buy_market", "buy_quote")]


def test_step06_maker_order_partially_filled(maker):
    ask = need("ask")
    o = eventually("the ask PARTIALLY_FILLED", lambda: maker.get_order(symbol=SYMBOL, orderId=ask["orderId"]), lambda o: D(o["executedQty"]) == BOUGHT)
    assert o["status"] == "PARTIALLY_FILLED" and D(o["cummulativeQuoteQty"]) == SPENT
    opens = maker.get_open_orders(symbol=SYMBOL)
    assert [(o["orderId"], D(o["executedQty"])) for o in opens] == [(ask["orderId"], BOUGHT)]


def test_step07_my_trades_show_both_sides(taker, maker):
    ids = taker_order_ids()
    ask = need("ask")
    mine = eventually("taker's myTrades", lambda: my_trades_of(taker, ids), lambda ts: len(ts) == 3)
    qtys = [LIMIT_QTY, MARKET_QTY, MARKET_QUOTE / ASK]
    rate = need("taker_rate")
    assert [(t["orderId"], D(t["price"]), D(t["qty"]), D(t["quoteQty"])) for t in mine] == [(i, ASK, q, q * ASK) for i, q in zip(ids, qtys)]
    for t in mine:
        assert t["symbol"] == SYMBOL and t["isBuyer"] is True and t["isMaker"] is False
        assert (D(t["commission"]), t["commissionAsset"]) == (D(t["quoteQty"]) * rate, QUOTE)
    assert [t["id"] for t in mine] == sorted(t["id"] for t in mine), "ascending by id"
    S["trade_ids"] = [t["id"] for t in mine]

    theirs = eventually("maker's myTrades for the ask", lambda: maker.get_my_trades(symbol=SYMBOL, orderId=ask["orderId"]), lambda ts: len(ts) == 3)
    assert [t["id"] for t in theirs] == S["trade_ids"], "one trade id for both sides"
    maker_rate = need("maker_rate")
    for t, q in zip(theirs, qtys):
        assert (t["orderId"], t["isBuyer"], t["isMaker"]) == (ask["orderId"], False, True)
        assert (D(t["qty"]), D(t["commission"]), t["commissionAsset"]) == (q, q * ASK * maker_rate, QUOTE)


def test_step08_balances_moved_by_exactly_the_trades(taker, maker):
    need("trade_ids")
    t0, m0 = need("bal0_taker"), need("bal0_maker")
    taker_fee, maker_fee = SPENT * need("taker_rate"), SPENT * need("maker_rate")
    expect_taker = {QUOTE: total(t0, QUOTE) - SPENT - taker_fee, BASE: total(t0, BASE) + BOUGHT}
    expect_maker = {QUOTE: total(m0, QUOTE) + SPENT - maker_fee, BASE: total(m0, BASE) - BOUGHT}
    tb = eventually("taker's balances after the trades", lambda: balances(taker.get_account()), lambda b: {a: total(b, a) for a in expect_taker} == expect_taker)
    mb = eventually("maker's balances after the trades", lambda: balances(maker.get_account()), lambda b: {a: total(b, a) for a in expect_maker} == expect_maker)
    assert tb[QUOTE][1] == t0[QUOTE][1] and tb[BASE][1] == t0[BASE][1], "the taker holds nothing back"
    assert mb[BASE][1] == m0[BASE][1] + ASK_QTY - BOUGHT, "the maker's lock is what the ask still offers"
    assert taker.get_asset_balance(asset="btc")["asset"] == BASE


def test_step09_public_trades(taker):
    ids = need("trade_ids")
    qtys = [LIMIT_QTY, MARKET_QTY, MARKET_QUOTE / ASK]
    recent = taker.get_recent_trades(symbol=SYMBOL, limit=3)
    assert [(t["id"], D(t["price"]), D(t["qty"]), D(t["quoteQty"]), t["isBuyerMaker"]) for t in recent] == [
        (i, ASK, q, q * ASK, False) for i, q in zip(ids, qtys)
    ]
    hist = taker.get_historical_trades(symbol=SYMBOL, fromId=ids[0], limit=3)
    assert [t["id"] for t in hist] == ids
    agg = taker.get_aggregate_trades(symbol=SYMBOL, limit=3)
    assert [(D(a["p"]), D(a["q"]), a["f"], a["l"], a["m"]) for a in agg] == [(ASK, q, i, i, False) for i, q in zip(ids, qtys)]
    assert [a["a"] for a in agg] == sorted({a["a"] for a in agg})


def kline_sums(klines):
    """Volume, quote volume, trade count, taker-buy volume and quote volume."""
    return (
        sum(D(k[5]) for k in klines),
        sum(D(k[7]) for k in klines),
        sum(k[8] for k in klines),
        sum(D(k[9]) for k in klines),
        sum(D(k[10]) for k in klines),
    )


def test_step10_klines_count_exactly_the_trades(taker):
    need("trade_ids")
    t0, before = need("t0"), kline_sums(need("klines0"))
    expected = (BOUGHT, SPENT, 3, BOUGHT, SPENT)  # every taker here bought
    klines = taker.get_klines(symbol=SYMBOL, interval="1m", startTime=t0)
    assert all(len(k) == 12 and k[6] == k[0] + 59999 for k in klines)
    assert [k[0] for k in klines] == sorted({k[0] for k in klines}) and klines[0][0] >= t0
    after = kline_sums(klines)
    assert tuple(a - b for a, b in zip(after, before)) == expected
    assert D(klines[-1][4]) == ASK, "the last close is the last trade's price"
    ui = taker.get_ui_klines(symbol=SYMBOL, interval="1m", startTime=t0)
    assert kline_sums(ui)[0] == after[0]
    # python-binance's helper first asks for the very first kline
    # (startTime=0, limit=1) and fails on an empty answer.
    hist = taker.get_historical_klines(SYMBOL, "1m", t0)
    assert kline_sums(hist)[0] == after[0]


def test_step11_tickers(taker):
    need("trade_ids")
    before, window0 = need("ticker0"), need("window0")
    t = taker.get_ticker(symbol=SYMBOL)
    assert t["symbol"] == SYMBOL
    assert D(t["volume"]) - D(before["volume"]) == BOUGHT
    assert D(t["quoteVolume"]) - D(before["quoteVolume"]) == SPENT
    assert t["count"] - before["count"] == 3
    assert D(t["lastPrice"]) == ASK and D(t["lastQty"]) == MARKET_QUOTE / ASK
    assert D(t["lowPrice"]) <= ASK <= D(t["highPrice"])
    assert (D(t["askPrice"]), D(t["askQty"])) == (ASK, ASK_QTY - BOUGHT)
    w = taker.get_symbol_ticker_window(symbol=SYMBOL, windowSize="1d")
    assert D(w["volume"]) - D(window0["volume"]) == BOUGHT and D(w["lastPrice"]) == ASK
    assert D(taker.get_symbol_ticker(symbol=SYMBOL)["price"]) == ASK
    everything = taker.get_all_tickers()  # must be a list of objects
    assert any(p["symbol"] == SYMBOL and D(p["price"]) == ASK for p in everything)
    bt = taker.get_orderbook_ticker(symbol=SYMBOL)
    assert (D(bt["askPrice"]), D(bt["askQty"])) == (ASK, ASK_QTY - BOUGHT)
    avg = taker.get_avg_price(symbol=SYMBOL)
    assert isinstance(avg["mins"], int)
    assert D(avg["price"]) == ASK, "every trade of the last minutes was at 20000"


def test_step12_limit_maker_rests(taker):
    need("ask")
    client_id = cid("bid")
    r = taker.create_order(
        symbol=SYMBOL, side="BUY", type="LIMIT_MAKER", quantity="0.001", price="19000.00", newClientOrderId=client_id, newOrderRespType="RESULT"
    )
    assert (r["status"], r["type"], r["clientOrderId"]) == ("NEW", "LIMIT_MAKER", client_id)
    assert D(r["price"]) == BID and D(r["executedQty"]) == 0
    opens = eventually("the LIMIT_MAKER bid in openOrders", lambda: taker.get_open_orders(symbol=SYMBOL), lambda os: any(o["orderId"] == r["orderId"] for o in os))
    assert [(o["type"], D(o["price"])) for o in opens] == [("LIMIT_MAKER", BID)]
    bt = taker.get_orderbook_ticker(symbol=SYMBOL)
    assert (D(bt["bidPrice"]), D(bt["bidQty"])) == (BID, D("0.001"))
    S["bid"] = r


def test_step13_limit_maker_that_would_cross_is_2010(taker, maker):
    ask = need("ask")
    e = api_error(taker.create_order, symbol=SYMBOL, side="BUY", type="LIMIT_MAKER", quantity="0.001", price="20000.00")
    assert (e.status_code, e.code, e.message) == (400, -2010, "Order would immediately match and take.")
    o = maker.get_order(symbol=SYMBOL, orderId=ask["orderId"])
    assert D(o["executedQty"]) == BOUGHT, "nothing traded"


def test_step14_insufficient_balance_is_2010(taker):
    need("bal0_taker")
    e = api_error(taker.order_limit_buy, symbol=SYMBOL, quantity="100", price="19500.00")  # 1.95M EUR
    assert (e.status_code, e.code, e.message) == (400, -2010, "Account has insufficient balance for requested action.")


def test_step15_order_test_validates_and_places_nothing(taker):
    need("bid")
    before = taker.get_open_orders(symbol=SYMBOL)
    r = taker.create_test_order(symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="19500.00")
    assert r == {}
    e = api_error(taker.create_test_order, symbol="NOPEEUR", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="19500.00")
    assert e.code == -1121, e.message
    # Above the pair's maxPrice (10,000,000): Binance's PRICE_FILTER failure.
    e = api_error(taker.create_test_order, symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="20000000.00")
    assert (e.code, e.message) == (-1013, "Filter failure: PRICE_FILTER")
    time.sleep(0.2)  # an order that was wrongly placed would show by now
    assert taker.get_open_orders(symbol=SYMBOL) == before


def test_step16_cancel_replace(taker):
    bid = need("bid")
    r = taker.cancel_replace_order(
        symbol=SYMBOL,
        side="BUY",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.001",
        price="18000.00",
        cancelReplaceMode="STOP_ON_FAILURE",
        cancelOrderId=bid["orderId"],
    )
    assert (r["cancelResult"], r["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert r["cancelResponse"]["orderId"] == bid["orderId"] and r["cancelResponse"]["status"] == "CANCELED"
    new = r["newOrderResponse"]
    assert new["status"] == "NEW" and D(new["price"]) == D("18000")
    opens = eventually("openOrders after cancelReplace", lambda: taker.get_open_orders(symbol=SYMBOL), lambda os: [o["orderId"] for o in os] == [new["orderId"]])
    assert D(opens[0]["price"]) == D("18000")
    S["bid2"] = new


def test_step17_cancel_orders(taker, maker):
    ask, bid2 = need("ask"), need("bid2")
    r = maker.cancel_order(symbol=SYMBOL, orderId=ask["orderId"])
    assert (r["orderId"], r["status"], r["origClientOrderId"]) == (ask["orderId"], "CANCELED", ask["clientOrderId"])
    assert D(r["executedQty"]) == BOUGHT and D(r["origQty"]) == ASK_QTY and D(r["cummulativeQuoteQty"]) == SPENT
    r = taker.cancel_order(symbol=SYMBOL, origClientOrderId=bid2["clientOrderId"])
    assert (r["orderId"], r["status"]) == (bid2["orderId"], "CANCELED")
    for client in (taker, maker):
        eventually("openOrders empty after the cancels", lambda c=client: c.get_open_orders(symbol=SYMBOL), lambda os: os == [])
    t0, m0 = need("bal0_taker"), need("bal0_maker")
    eventually("the maker's BTC lock released", lambda: balances(maker.get_account()), lambda b: b[BASE][1] == m0[BASE][1])
    eventually("the taker's EUR lock released", lambda: balances(taker.get_account()), lambda b: b[QUOTE][1] == t0[QUOTE][1])
    book = taker.get_order_book(symbol=SYMBOL)
    assert [a for a in book["asks"] if D(a[0]) == ASK] == []


def test_step18_unknown_orders(taker, maker):
    ask = need("ask")
    e = api_error(taker.cancel_order, symbol=SYMBOL, orderId=UNKNOWN_ORDER_ID)
    assert (e.status_code, e.code, e.message) == (400, -2011, "Unknown order sent.")
    e = api_error(maker.cancel_order, symbol=SYMBOL, orderId=ask["orderId"])  # already canceled
    assert e.code == -2011, e.message
    e = api_error(taker.cancel_order, symbol=SYMBOL, orderId=ask["orderId"])  # someone else's
    assert e.code == -2011, e.message
    e = api_error(taker.get_order, symbol=SYMBOL, orderId=UNKNOWN_ORDER_ID)
    assert (e.status_code, e.code, e.message) == (400, -2013, "Order does not exist.")


def test_step19_all_orders(taker, maker):
    ids = taker_order_ids()
    bid, bid2, ask = need("bid"), need("bid2"), need("ask")
    wanted = {i: "FILLED" for i in ids} | {bid["orderId"]: "CANCELED", bid2["orderId"]: "CANCELED"}
    orders = eventually(
        "allOrders with every final status",
        lambda: taker.get_all_orders(symbol=SYMBOL),
        lambda os: {o["orderId"]: o["status"] for o in os if o["orderId"] in wanted} == wanted,
    )
    assert [o["orderId"] for o in orders] == sorted(o["orderId"] for o in orders), "ascending by orderId"
    theirs = maker.get_all_orders(symbol=SYMBOL)
    o = next(o for o in theirs if o["orderId"] == ask["orderId"])
    assert o["status"] == "CANCELED" and D(o["executedQty"]) == BOUGHT
    assert all(o["orderId"] not in wanted for o in theirs)


# --- response types and cancel-all ------------------------------------------------


def test_response_types_ack_result_full_and_defaults(taker):
    common = dict(symbol=SYMBOL, side="BUY", quantity="0.001", price="10000.00")
    ack = taker.create_order(type="LIMIT", timeInForce="GTC", newOrderRespType="ACK", **common)
    assert {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"} <= set(ack)
    assert "status" not in ack and "fills" not in ack
    full = taker.create_order(type="LIMIT", timeInForce="GTC", **common)  # default for LIMIT: FULL
    assert full["status"] == "NEW" and full["fills"] == []
    maker_default = taker.create_order(type="LIMIT_MAKER", **common)  # default for other types: ACK
    assert "orderId" in maker_default and "status" not in maker_default
    for r in (ack, full, maker_default):
        assert taker.cancel_order(symbol=SYMBOL, orderId=r["orderId"])["status"] == "CANCELED"


def test_cancel_all_open_orders(taker):
    placed = [
        taker.order_limit_buy(symbol=SYMBOL, quantity="0.001", price=p, newOrderRespType="RESULT")["orderId"] for p in ("10000.00", "10001.00")
    ]
    eventually("both bids open", lambda: taker.get_open_orders(symbol=SYMBOL), lambda os: sorted(o["orderId"] for o in os) == sorted(placed))
    r = taker.cancel_all_open_orders(symbol=SYMBOL)
    assert sorted(o["orderId"] for o in r) == sorted(placed)
    assert all(o["status"] == "CANCELED" for o in r)
    eventually("no open orders after cancel-all", lambda: taker.get_open_orders(symbol=SYMBOL), lambda os: os == [])
    bids = taker.get_order_book(symbol=SYMBOL)["bids"]
    assert [b for b in bids if D(b[0]) in (D("10000"), D("10001"))] == []
