-- The indexes of the history queries. By time: the ticker's partial edges,
-- the previous close, aggTrades and myTrades windows. By order: myTrades
-- of one order, on either side. A user's orders by id and by time:
-- allOrders.
CREATE INDEX fills_by_time ON fills (pair, ts, seq);
CREATE INDEX fills_by_maker_order ON fills (pair, maker_order_id, seq);
CREATE INDEX fills_by_taker_order ON fills (pair, taker_order_id, seq);
CREATE INDEX orders_by_user_pair ON orders (user_id, pair, order_id);
CREATE INDEX orders_by_user_time ON orders (user_id, pair, created_at, order_id);
