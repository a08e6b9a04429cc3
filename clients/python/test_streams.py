"""python-binance's WebSocket market streams against the exchange's /ws and
/stream: a DepthCacheManager kept in sync with no gap while orders are
placed, a kline socket that shows a trade made here, and trade ids on a
raw and a multiplexed socket that equal REST's.

Needs a running exchange and two users' keys (scripts/clients.sh provides
them). This file trades ETHBTC alone (test_python_binance.py trades
BTCEUR, test_ccxt.py ETHEUR). The socket manager is moved off Binance the
documented way: its STREAM_URL, set after construction.
"""

import asyncio
import json
from decimal import ROUND_CEILING

from binance import AsyncClient, BinanceSocketManager, DepthCacheManager

from helpers import D, env, filters, local_async_client, ws_base

SYMBOL = "ETHBTC"
STREAM = SYMBOL.lower()


LocalAsyncClient = local_async_client()


def stream_url():
    return ws_base() + "/"


async def clients():
    taker = await LocalAsyncClient.create(env("API_KEY"), env("API_SECRET"))
    maker = await LocalAsyncClient.create(env("API_KEY_2"), env("API_SECRET_2"))
    return taker, maker


def socket_manager(client):
    bm = BinanceSocketManager(client)
    bm.STREAM_URL = stream_url()
    return bm


class Rules:
    """ETHBTC's tick, lot and minimum value, and a price and quantity that
    pass them."""

    def __init__(self, info):
        f = filters(info)
        self.tick = D(f["PRICE_FILTER"]["tickSize"])
        self.step = D(f["LOT_SIZE"]["stepSize"])
        self.min_qty = D(f["LOT_SIZE"]["minQty"])
        self.min_notional = D(f["NOTIONAL"]["minNotional"])
        # 0.05 BTC for ETHBTC's 0.00001 tick: far from any other test's.
        self.price = self.tick * 5_000

    def qty_for(self, price, lots=1):
        """The smallest lot count worth the minimum value at `price`, times `lots`."""
        need = (self.min_notional / price / self.step).to_integral_value(rounding=ROUND_CEILING)
        return max(self.min_qty, need * self.step) * lots

    def text(self, v, unit):
        return str(v.quantize(unit))


async def rules(client):
    return Rules(await client.get_symbol_info(SYMBOL))


async def limit(client, side, qty, price, r):
    return await client.create_order(
        symbol=SYMBOL,
        side=side,
        type="LIMIT",
        timeInForce="GTC",
        quantity=r.text(qty, r.step),
        price=r.text(price, r.tick),
    )


async def cancel_all(*clients_):
    for c in clients_:
        for o in await c.get_open_orders(symbol=SYMBOL):
            await c.cancel_order(symbol=SYMBOL, orderId=o["orderId"])


async def recv_until(socket, ok, timeout=15.0):
    """Messages of `socket` until one satisfies ok(msg); fails after `timeout`."""

    async def loop():
        seen = []
        while True:
            msg = await socket.recv()
            seen.append(msg)
            if ok(msg):
                return msg, seen

    return await asyncio.wait_for(loop(), timeout)


def test_depth_cache_manager_stays_in_sync_with_no_gap():
    asyncio.run(_depth_cache())


async def _depth_cache():
    taker, maker = await clients()
    try:
        r = await rules(taker)
        bm = socket_manager(taker)
        dcm = DepthCacheManager(taker, SYMBOL, bm=bm, limit=1000, ws_interval=100, conv_type=D)
        inits = []
        original = dcm._init_cache

        async def counted_init():
            inits.append(1)
            await original()

        dcm._init_cache = counted_init
        async with dcm as socket:
            # Levels change while the cache follows: rests on both sides,
            # a crossing order, and cancels.
            placed = []
            for i in range(8):
                ask, bid = r.price * 2 + r.tick * i, r.price - r.tick * i
                placed.append(await limit(maker, "SELL", r.qty_for(ask, 2), ask, r))
                placed.append(await limit(maker, "BUY", r.qty_for(bid, 2), bid, r))
            await limit(taker, "BUY", r.qty_for(r.price * 2), r.price * 2 + r.tick * 3, r)
            for o in placed[:4]:
                await maker.cancel_order(symbol=SYMBOL, orderId=o["orderId"])
            # The cache has applied every diff up to the REST book's id.
            snap = await taker.get_order_book(symbol=SYMBOL, limit=1000)
            cache = None
            while dcm._last_update_id is None or dcm._last_update_id < snap["lastUpdateId"]:
                cache = await asyncio.wait_for(socket.recv(), 15)
            cache = cache or dcm.get_depth_cache()
            book = (cache.get_bids(), cache.get_asks())
        want = ([[D(p), D(q)] for p, q in snap["bids"]], [[D(p), D(q)] for p, q in snap["asks"]])
        assert dcm._last_update_id == snap["lastUpdateId"]
        assert book == want
        assert len(inits) == 1, "the cache was rebuilt: a gap in the diffs"
    finally:
        await cancel_all(taker, maker)
        await taker.close_connection()
        await maker.close_connection()


def test_kline_socket_shows_a_trade_made_here():
    asyncio.run(_kline())


async def _kline():
    taker, maker = await clients()
    try:
        r = await rules(taker)
        bm = socket_manager(taker)
        price = r.price + r.tick * 7
        async with bm.kline_socket(SYMBOL, interval=AsyncClient.KLINE_INTERVAL_1MINUTE) as socket:
            # The socket is live once its first candle came (the pair has
            # traded before) or after a moment.
            try:
                await asyncio.wait_for(socket.recv(), 3)
            except asyncio.TimeoutError:
                pass
            await limit(maker, "SELL", r.qty_for(price), price, r)
            await limit(taker, "BUY", r.qty_for(price), price, r)
            msg, _ = await recv_until(socket, lambda m: m["k"]["c"] == r.text(price, r.tick) or D(m["k"]["c"]) == price)
        k = msg["k"]
        assert msg["e"] == "kline" and msg["s"] == SYMBOL
        assert k["i"] == "1m" and k["s"] == SYMBOL
        assert k["n"] >= 1 and D(k["v"]) >= r.qty_for(price)
        rows = await taker.get_klines(symbol=SYMBOL, interval="1m", startTime=k["t"], limit=1)
        row = rows[0]
        assert row[0] == k["t"] and row[6] == k["T"]
        # The candle may have grown since the message; what it had is in.
        assert row[8] >= k["n"] and D(row[5]) >= D(k["v"])
    finally:
        await cancel_all(taker, maker)
        await taker.close_connection()
        await maker.close_connection()


def test_trade_and_multiplex_sockets_carry_rests_trade_ids():
    asyncio.run(_trades())


async def _trades():
    taker, maker = await clients()
    try:
        r = await rules(taker)
        bm = socket_manager(taker)
        price = r.price + r.tick * 11
        trade_socket = bm.trade_socket(SYMBOL)
        multiplex = bm.multiplex_socket([f"{STREAM}@trade", f"{STREAM}@aggTrade"])
        async with trade_socket as raw, multiplex as combined:
            await asyncio.sleep(0.5)
            await limit(maker, "SELL", r.qty_for(price), price, r)
            await limit(maker, "SELL", r.qty_for(price), price, r)
            await limit(taker, "BUY", r.qty_for(price, 2), price, r)
            first, _ = await recv_until(raw, lambda m: m.get("e") == "trade")
            second, _ = await recv_until(raw, lambda m: m.get("e") == "trade")
            agg, seen = await recv_until(combined, lambda m: m["stream"] == f"{STREAM}@aggTrade")
        # REST reads the store, which trails the engine a little.
        for _ in range(100):
            recent = await taker.get_recent_trades(symbol=SYMBOL, limit=2)
            if [t["id"] for t in recent] == [first["t"], second["t"]]:
                break
            await asyncio.sleep(0.05)
        assert [first["t"], second["t"]] == [t["id"] for t in recent]
        assert all(D(t["price"]) == price for t in recent)
        # Both fills of one taker at one price and time: one aggregate.
        data = agg["data"]
        aggs = await taker.get_aggregate_trades(symbol=SYMBOL, fromId=data["a"])
        assert aggs[0]["a"] == data["a"] and (aggs[0]["f"], aggs[0]["l"]) == (data["f"], data["l"])
        assert (data["f"], data["l"]) == (first["t"], second["t"])
        assert D(data["q"]) == r.qty_for(price, 2)
        trades_wrapped = [m for m in seen if m["stream"] == f"{STREAM}@trade"]
        assert [m["data"]["t"] for m in trades_wrapped] == [first["t"], second["t"]]
        assert json.dumps(trades_wrapped[0]["data"], sort_keys=True) == json.dumps(first, sort_keys=True)
    finally:
        await cancel_all(taker, maker)
        await taker.close_connection()
        await maker.close_connection()

