-- Embedded mode's store. Integers are 64-bit; prices and quantities are in
-- the pair's units (ticks and lots scaled by its price and quantity scales).

-- The command log: what the gateway acknowledged, in per-pair order.
-- Trimmed up to the position the latest snapshot covers.
CREATE TABLE commands (
    pair     TEXT    NOT NULL,
    position BIGINT  NOT NULL,
    body     BLOB    NOT NULL,
    PRIMARY KEY (pair, position)
);

-- The latest snapshot of each book and the log position it covers.
CREATE TABLE snapshots (
    pair       TEXT   PRIMARY KEY,
    position   BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    state_hash BIGINT NOT NULL,
    data       BLOB   NOT NULL,
    taken_at   BIGINT NOT NULL
);

-- The last event seq written per pair: events at or below it are duplicates.
CREATE TABLE progress (
    pair     TEXT   PRIMARY KEY,
    last_seq BIGINT NOT NULL
);

CREATE TABLE fills (
    pair           TEXT   NOT NULL,
    seq            BIGINT NOT NULL,
    price          BIGINT NOT NULL,
    qty            BIGINT NOT NULL,
    quote_qty      BIGINT NOT NULL,
    taker_side     TEXT   NOT NULL,
    maker_order_id BIGINT NOT NULL,
    maker_user     BIGINT NOT NULL,
    taker_order_id BIGINT NOT NULL,
    taker_user     BIGINT NOT NULL,
    ts             BIGINT NOT NULL,
    PRIMARY KEY (pair, seq)
);
CREATE INDEX fills_by_maker ON fills (maker_user, pair, seq);
CREATE INDEX fills_by_taker ON fills (taker_user, pair, seq);

CREATE TABLE orders (
    pair            TEXT   NOT NULL,
    order_id        BIGINT NOT NULL,
    client_order_id TEXT,
    user_id         BIGINT NOT NULL,
    side            TEXT   NOT NULL,
    order_type      TEXT   NOT NULL,
    time_in_force   TEXT   NOT NULL,
    post_only       BIGINT NOT NULL,
    price           BIGINT,
    orig_qty        BIGINT,
    orig_quote_qty  BIGINT,
    executed_qty    BIGINT NOT NULL,
    cum_quote_qty   BIGINT NOT NULL,
    status          TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (pair, order_id)
);
CREATE INDEX orders_by_user ON orders (user_id, status, pair);
CREATE INDEX orders_by_client_id ON orders (pair, user_id, client_order_id);

CREATE TABLE users (
    user_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    api_key    TEXT   PRIMARY KEY,
    secret     TEXT   NOT NULL,
    user_id    BIGINT NOT NULL REFERENCES users (user_id),
    created_at BIGINT NOT NULL
);
