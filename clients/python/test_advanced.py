"""The advanced order types through python-binance and ccxt, with values
checked: python-binance's create_order with stop-limit and iceberg orders,
its OCO call (the above/below form of orderList/oco) and the order-list
queries and cancel; ccxt's create_order with stopPrice and triggerPrice.

Same environment as the other files (EXCHANGE_URL, API_KEY/API_SECRET for
the trader, API_KEY_2/API_SECRET_2 for the one who provides liquidity);
scripts/clients.sh gives this file its own two users. It trades ETHBTC far
above test_streams.py's prices (around 0.2 BTC against its 0.05), leaves
BTCEUR and ETHEUR alone (the other files check their average prices), and
cancels whatever it left at the end.

The tests run in order and share `S`.
"""

import uuid

import pytest
from binance.exceptions import BinanceAPIException

from helpers import D, env, eventually
from test_ccxt import make_exchange
from test_python_binance import make_client

SYMBOL, CCXT_SYMBOL = "ETHBTC", "ETH/BTC"
LAST = "0.20000"  # the last trade price the steps start from
QTY = "0.01"

S = {}


def need(key):
    if key not in S:
        pytest.fail(f"needs {key!r} from an earlier step, which failed")
    return S[key]


@pytest.fixture(scope="module")
def taker():
    return make_client(env("API_KEY"), env("API_SECRET"))


@pytest.fixture(scope="module")
def maker():
    return make_client(env("API_KEY_2"), env("API_SECRET_2"))


@pytest.fixture(scope="module")
def ccxt_taker():
    ex = make_exchange(env("API_KEY"), env("API_SECRET"))
    ex.load_markets()
    return ex


@pytest.fixture(scope="module", autouse=True)
def _cancel_leftovers_at_end(taker, maker):
    yield
    for client in (taker, maker):
        try:
            client.cancel_all_open_orders(symbol=SYMBOL)
        except BinanceAPIException:  # none open: -2011
            pass


def cid(tag):
    return f"adv-{tag}-{uuid.uuid4().hex[:12]}"


def api_error(call, **params):
    with pytest.raises(BinanceAPIException) as info:
        call(**params)
    return info.value


def order_of(client, order_id, status):
    """The order once the store shows it in `status`."""
    return eventually(
        f"order {order_id} {status}",
        lambda: client.get_order(symbol=SYMBOL, orderId=order_id),
        lambda o: o["status"] == status,
    )


def test_step00_the_pair_takes_the_advanced_types_and_trades_at_0_2(taker, maker):
    info = taker.get_symbol_info(SYMBOL)
    assert {"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"} <= set(info["orderTypes"])
    assert (info["icebergAllowed"], info["ocoAllowed"], info["otoAllowed"], info["allowTrailingStop"]) == (True,) * 4
    filters = {f["filterType"]: f for f in info["filters"]}
    assert filters["ICEBERG_PARTS"]["limit"] >= 10
    assert filters["TRAILING_DELTA"]["minTrailingBelowDelta"] == 10
    # The demo credit arrives with a user's first signed request.
    for client in (taker, maker):
        eventually("demo funding", client.get_account, lambda a: any(b["asset"] == "BTC" and D(b["free"]) >= 1 for b in a["balances"]))
    maker.create_order(symbol=SYMBOL, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.001", price=LAST)
    r = taker.create_order(symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="IOC", quantity="0.001", price=LAST)
    assert r["status"] == "FILLED", r
    S["traded"] = True


def test_step01_a_stop_limit_order_waits(taker):
    need("traded")
    r = taker.create_order(
        symbol=SYMBOL, side="SELL", type="STOP_LOSS_LIMIT", timeInForce="GTC",
        quantity=QTY, price="0.19600", stopPrice="0.19700", newClientOrderId=cid("stop"),
    )
    assert set(r) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}, "ACK by default"
    o = order_of(taker, r["orderId"], "NEW")
    assert (o["type"], D(o["stopPrice"]), D(o["price"])) == ("STOP_LOSS_LIMIT", D("0.197"), D("0.196"))
    assert (o["isWorking"], o["workingTime"]) == (False, -1), o
    assert any(x["orderId"] == r["orderId"] for x in taker.get_open_orders(symbol=SYMBOL))
    S["stop"] = r["orderId"]


def test_step02_a_stop_the_last_price_already_met_is_2010(taker):
    need("traded")
    e = api_error(
        taker.create_order, symbol=SYMBOL, side="SELL", type="STOP_LOSS",
        quantity=QTY, stopPrice="0.21000",
    )
    assert (e.code, e.message) == (-2010, "Order would trigger immediately.")
    e = api_error(taker.create_order, symbol=SYMBOL, side="SELL", type="STOP_LOSS", quantity=QTY)
    assert e.code == -1102, e.message


def test_step03_an_iceberg_shows_its_slice(taker):
    need("traded")
    r = taker.create_order(
        symbol=SYMBOL, side="SELL", type="LIMIT", timeInForce="GTC",
        quantity="0.05", price="0.21000", icebergQty="0.01",
    )
    assert (r["status"], D(r["icebergQty"])) == ("NEW", D("0.01")), r
    book = taker.get_order_book(symbol=SYMBOL)
    assert [D(q) for p, q in book["asks"] if D(p) == D("0.21")] == [D("0.01")]
    o = order_of(taker, r["orderId"], "NEW")
    assert D(o["icebergQty"]) == D("0.01")
    e = api_error(
        taker.create_order, symbol=SYMBOL, side="SELL", type="LIMIT", timeInForce="GTC",
        quantity="0.01", price="0.21000", icebergQty="0.01",
    )
    assert (e.code, e.message) == (-2010, "IcebergQty exceeds QTY.")
    taker.cancel_order(symbol=SYMBOL, orderId=r["orderId"])


def test_step04_an_oco_is_placed_queried_and_canceled(taker):
    need("traded")
    list_id = cid("oco")
    r = taker.order_oco_sell(
        symbol=SYMBOL, quantity=QTY, listClientOrderId=list_id,
        aboveType="LIMIT_MAKER", abovePrice="0.22000",
        belowType="STOP_LOSS_LIMIT", belowStopPrice="0.18000", belowPrice="0.17900",
        belowTimeInForce="GTC",
    )
    assert (r["contingencyType"], r["listStatusType"], r["listOrderStatus"]) == ("OCO", "EXEC_STARTED", "EXECUTING")
    assert r["listClientOrderId"] == list_id
    below, above = r["orderReports"]
    assert (below["type"], D(below["stopPrice"]), below["workingTime"]) == ("STOP_LOSS_LIMIT", D("0.18"), -1)
    assert (above["type"], above["orderListId"]) == ("LIMIT_MAKER", r["orderListId"])
    open_lists = eventually("the OCO is open", taker.get_open_oco_orders, lambda ls: any(x["orderListId"] == r["orderListId"] for x in ls))
    assert all(x["contingencyType"] == "OCO" for x in open_lists)
    got = taker.v3_get_order_list(orderListId=r["orderListId"])
    assert [o["orderId"] for o in got["orders"]] == [below["orderId"], above["orderId"]]
    canceled = taker.v3_delete_order_list(symbol=SYMBOL, orderListId=r["orderListId"])
    assert canceled["listOrderStatus"] == "ALL_DONE"
    assert [x["status"] for x in canceled["orderReports"]] == ["CANCELED", "CANCELED"]
    everything = taker.v3_get_all_order_list()
    assert any(x["orderListId"] == r["orderListId"] and x["listOrderStatus"] == "ALL_DONE" for x in everything)
    e = api_error(taker.v3_delete_order_list, symbol=SYMBOL, orderListId=r["orderListId"])
    assert e.code == -2011, e.message
    e = api_error(
        taker.order_oco_sell, symbol=SYMBOL, quantity=QTY,
        aboveType="STOP_LOSS", aboveStopPrice="0.19500", belowType="STOP_LOSS", belowStopPrice="0.18000",
    )
    assert e.code == -1197, e.message


def test_step05_the_stop_fires_on_a_trade_at_its_price(taker, maker):
    stop = need("stop")
    maker.create_order(symbol=SYMBOL, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.02", price="0.19650")
    # A trade at 0.1965, below the stop (0.197): the stop fires and sells at
    # its limit (0.196) or better, to the rest of that bid.
    r = maker.create_order(symbol=SYMBOL, side="SELL", type="LIMIT", timeInForce="IOC", quantity="0.001", price="0.19650")
    assert r["status"] == "FILLED", r
    o = order_of(taker, stop, "FILLED")
    assert D(o["executedQty"]) == D(QTY)
    assert o["workingTime"] > 0 and o["isWorking"] is False, o


def test_step06_ccxt_places_stops_by_stop_price_and_trigger_price(ccxt_taker):
    need("traded")
    ex = ccxt_taker
    stop_limit = ex.create_order(CCXT_SYMBOL, "limit", "sell", 0.01, 0.189, {"stopPrice": 0.19})
    got = ex.fetch_order(stop_limit["id"], CCXT_SYMBOL)
    assert got["info"]["type"] == "STOP_LOSS_LIMIT", got["info"]
    assert (got["triggerPrice"], got["price"], got["status"]) == (0.19, 0.189, "open"), got
    stop_buy = ex.create_order(CCXT_SYMBOL, "market", "buy", 0.01, None, {"triggerPrice": 0.25})
    got = ex.fetch_order(stop_buy["id"], CCXT_SYMBOL)
    assert (got["info"]["type"], got["triggerPrice"]) == ("STOP_LOSS", 0.25), got["info"]
    take_profit = ex.create_order(CCXT_SYMBOL, "limit", "sell", 0.01, 0.23, {"takeProfitPrice": 0.23})
    got = ex.fetch_order(take_profit["id"], CCXT_SYMBOL)
    assert got["info"]["type"] == "TAKE_PROFIT_LIMIT", got["info"]
    open_ids = {o["id"] for o in ex.fetch_open_orders(CCXT_SYMBOL)}
    assert {stop_limit["id"], stop_buy["id"], take_profit["id"]} <= open_ids
    for o in (stop_limit, stop_buy, take_profit):
        canceled = ex.cancel_order(o["id"], CCXT_SYMBOL)
        assert canceled["status"] == "canceled", canceled
