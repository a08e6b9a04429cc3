-- Advanced order types: conditional (stop) orders, icebergs, good-till-date
-- orders and order lists (OCO, OTO).
--
-- Per order: the stop price and trailing delta (basis points) of a
-- conditional order, the visible slice of an iceberg, the expiry of a GTD
-- order (ns), the order list it belongs to, and when it started working
-- (ns): at placement for an ordinary order, when its trigger fired for a
-- conditional one, when it was released for an OTO's pending one; NULL
-- while it waits (Binance's workingTime -1). Orders stored before this
-- migration were all ordinary: they worked from their creation.
ALTER TABLE orders ADD COLUMN stop_price BIGINT;
ALTER TABLE orders ADD COLUMN trailing_delta BIGINT;
ALTER TABLE orders ADD COLUMN iceberg_qty BIGINT;
ALTER TABLE orders ADD COLUMN good_till BIGINT;
ALTER TABLE orders ADD COLUMN order_list_id BIGINT;
ALTER TABLE orders ADD COLUMN working_time BIGINT;
UPDATE orders SET working_time = created_at;

-- Order lists, folded from ListAccepted and ListDone. Ids come from the
-- order ids' sequence, so a list id is unique across pairs; the queries
-- (Binance's orderList, allOrderList, openOrderList) name no pair.
-- status: EXECUTING until ListDone, then ALL_DONE.
CREATE TABLE order_lists (
    pair              TEXT   NOT NULL,
    list_id           BIGINT NOT NULL,
    client_list_id    TEXT,
    user_id           BIGINT NOT NULL,
    kind              TEXT   NOT NULL,
    status            TEXT   NOT NULL,
    order_id_0        BIGINT NOT NULL,
    client_order_id_0 TEXT,
    order_id_1        BIGINT NOT NULL,
    client_order_id_1 TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (pair, list_id)
);
CREATE INDEX order_lists_by_user ON order_lists (user_id, list_id);
CREATE INDEX order_lists_by_user_time ON order_lists (user_id, created_at, list_id);
CREATE INDEX order_lists_by_client_id ON order_lists (user_id, client_list_id);
CREATE INDEX order_lists_open ON order_lists (user_id, status, list_id);
