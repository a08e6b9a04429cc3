-- Candles: per pair, tier and bucket, the trades of the fills table folded
-- into open, high, low, close and sums, kept in the same transaction as the
-- fills they come from (only fills actually inserted are added, so a batch
-- written twice counts nothing twice). Klines and tickers read these
-- instead of every fill.
--
-- `tier` is the bucket's length in seconds: 1, 60, 900, 3600 or 86400, buckets
-- aligned to UTC. `open_time` is the bucket's start in ms. `open` is the
-- price of the lowest seq in the bucket, `close` of the highest.
--
-- A volume is `hi * 2^32 + lo`: each fill adds its value's high bits to
-- `hi` and its low 32 bits to `lo`, so sums of values up to 2^63 stay exact
-- in 64-bit columns (below 2^31 additions per bucket); readers add them up
-- in 128 bits. The volumes are base (`volume`), quote (`quote_volume`, as
-- fills.quote_qty), and the same two for fills whose taker bought.
CREATE TABLE candles (
    pair                      TEXT   NOT NULL,
    tier                      BIGINT NOT NULL,
    open_time                 BIGINT NOT NULL,
    open                      BIGINT NOT NULL,
    high                      BIGINT NOT NULL,
    low                       BIGINT NOT NULL,
    close                     BIGINT NOT NULL,
    first_seq                 BIGINT NOT NULL,
    last_seq                  BIGINT NOT NULL,
    trades                    BIGINT NOT NULL,
    volume_hi                 BIGINT NOT NULL,
    volume_lo                 BIGINT NOT NULL,
    quote_volume_hi           BIGINT NOT NULL,
    quote_volume_lo           BIGINT NOT NULL,
    taker_buy_volume_hi       BIGINT NOT NULL,
    taker_buy_volume_lo       BIGINT NOT NULL,
    taker_buy_quote_volume_hi BIGINT NOT NULL,
    taker_buy_quote_volume_lo BIGINT NOT NULL,
    PRIMARY KEY (pair, tier, open_time)
);

-- The candles of the fills stored before this migration.
INSERT INTO candles
SELECT g.pair, g.tier, g.open_time, o.price, g.high, g.low, c.price, g.first_seq, g.last_seq,
       g.trades, g.volume_hi, g.volume_lo, g.quote_volume_hi, g.quote_volume_lo,
       g.taker_buy_volume_hi, g.taker_buy_volume_lo, g.taker_buy_quote_volume_hi,
       g.taker_buy_quote_volume_lo
FROM (
    SELECT f.pair, t.tier, f.ts / (t.tier * 1000000000) * (t.tier * 1000) AS open_time,
           MIN(f.seq) AS first_seq, MAX(f.seq) AS last_seq,
           MAX(f.price) AS high, MIN(f.price) AS low, COUNT(*) AS trades,
           SUM(f.qty >> 32) AS volume_hi, SUM(f.qty & 4294967295) AS volume_lo,
           SUM(f.quote_qty >> 32) AS quote_volume_hi,
           SUM(f.quote_qty & 4294967295) AS quote_volume_lo,
           SUM(CASE WHEN f.taker_side = 'BUY' THEN f.qty >> 32 ELSE 0 END)
               AS taker_buy_volume_hi,
           SUM(CASE WHEN f.taker_side = 'BUY' THEN f.qty & 4294967295 ELSE 0 END)
               AS taker_buy_volume_lo,
           SUM(CASE WHEN f.taker_side = 'BUY' THEN f.quote_qty >> 32 ELSE 0 END)
               AS taker_buy_quote_volume_hi,
           SUM(CASE WHEN f.taker_side = 'BUY' THEN f.quote_qty & 4294967295 ELSE 0 END)
               AS taker_buy_quote_volume_lo
    FROM fills f
    CROSS JOIN (SELECT CAST(1 AS BIGINT) AS tier UNION ALL SELECT 60
                UNION ALL SELECT 900 UNION ALL SELECT 3600
                UNION ALL SELECT 86400) t
    GROUP BY f.pair, t.tier, f.ts / (t.tier * 1000000000)
) g
JOIN fills o ON o.pair = g.pair AND o.seq = g.first_seq
JOIN fills c ON c.pair = g.pair AND c.seq = g.last_seq;
