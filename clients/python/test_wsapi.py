"""python-binance's WebSocket API client (AsyncClient.ws_*) and its user
data socket (BinanceSocketManager.user_socket, which subscribes over the
WebSocket API with userDataStream.subscribe.signature) against the
exchange's /ws-api/v3.

Needs a running exchange and a user's key (scripts/clients.sh provides
them): EXCHANGE_URL, API_KEY/API_SECRET. Orders rest far below the market
on BTCEUR and are canceled by the test that placed them.
"""

import asyncio
import uuid

import pytest
from binance import BinanceSocketManager
from binance.exceptions import BinanceAPIException

from helpers import env, local_async_client

SYMBOL = "BTCEUR"
FAR_BID = "10000"
QTY = "0.01"


async def make_client():
    return await local_async_client().create(env("API_KEY"), env("API_SECRET"))


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=60))


def cid(tag):
    return f"wsapi-{tag}-{uuid.uuid4().hex[:12]}"


async def _place_query_cancel():
    client = await make_client()
    try:
        assert await client.ws_ping() == {}
        assert abs((await client.ws_get_time())["serverTime"] - await _rest_time(client)) < 5_000
        client_id = cid("rest")
        placed = await client.ws_create_order(
            symbol=SYMBOL,
            side="BUY",
            type="LIMIT",
            timeInForce="GTC",
            quantity=QTY,
            price=FAR_BID,
            newClientOrderId=client_id,
        )
        assert placed["symbol"] == SYMBOL
        assert placed["clientOrderId"] == client_id
        order_id = placed["orderId"]
        got = await client.ws_get_order(symbol=SYMBOL, orderId=order_id)
        assert got["status"] == "NEW"
        assert got["price"].rstrip("0").rstrip(".") == FAR_BID
        open_ids = [o["orderId"] for o in await client.ws_get_open_orders(symbol=SYMBOL)]
        assert order_id in open_ids
        canceled = await client.ws_cancel_order(symbol=SYMBOL, orderId=order_id)
        assert canceled["status"] == "CANCELED"
        open_ids = [o["orderId"] for o in await client.ws_get_open_orders(symbol=SYMBOL)]
        assert order_id not in open_ids
        book = await client.ws_get_order_book(symbol=SYMBOL, limit=5)
        assert "lastUpdateId" in book
    finally:
        await client.close_connection()


async def _rest_time(client):
    return (await client.get_server_time())["serverTime"]


def test_orders_are_placed_queried_and_canceled_over_the_ws_api():
    run(_place_query_cancel())


async def _errors_raise():
    client = await make_client()
    try:
        with pytest.raises(BinanceAPIException) as info:
            await client.ws_create_order(
                symbol="NOPE", side="BUY", type="LIMIT", timeInForce="GTC", quantity=QTY, price=FAR_BID
            )
        assert info.value.code == -1121
        with pytest.raises(BinanceAPIException) as info:
            await client.ws_get_order(symbol=SYMBOL, orderId=987654321)
        assert info.value.code == -2013
    finally:
        await client.close_connection()


def test_errors_carry_binances_codes():
    run(_errors_raise())


async def _user_socket_reports():
    client = await make_client()
    try:
        bsm = BinanceSocketManager(client)
        async with bsm.user_socket() as socket:
            placed = await client.ws_create_order(
                symbol=SYMBOL,
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity=QTY,
                price=FAR_BID,
                newClientOrderId=cid("user"),
            )
            try:
                def reports():
                    return [
                        e for e in events
                        if e.get("e") == "executionReport" and e.get("i") == placed["orderId"]
                    ]

                def positions():
                    return [e for e in events if e.get("e") == "outboundAccountPosition"]

                # Both, in either order: the risk stage's balance change is
                # published as it happens, before the book's report.
                events = []
                while not (reports() and positions()):
                    events.append(await asyncio.wait_for(socket.recv(), timeout=10))
                event = reports()[0]
                assert event["s"] == SYMBOL
                assert (event["S"], event["o"], event["f"]) == ("BUY", "LIMIT", "GTC")
                assert (event["x"], event["X"]) == ("NEW", "NEW")
                assert event["c"] == placed["clientOrderId"]
                assert float(event["q"]) == float(QTY) and float(event["p"]) == float(FAR_BID)
                assert float(event["z"]) == 0 and event["w"] is True
                # The balance update that follows: the bid's EUR is locked.
                position = positions()[-1]
                eur = [b for b in position["B"] if b["a"] == "EUR"]
                assert eur and float(eur[0]["l"]) >= float(QTY) * float(FAR_BID), position
            finally:
                await client.ws_cancel_order(symbol=SYMBOL, orderId=placed["orderId"])
    finally:
        await client.close_connection()


def test_user_socket_receives_the_execution_report_and_the_balance_update():
    run(_user_socket_reports())
