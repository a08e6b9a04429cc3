-- Each operator's change of a pair (its `PairChanged` event) with the fee
-- rates after it, stored with the batch that holds the event, and the seq
-- of each order's `Accepted` (NULL for orders stored before): a side of a
-- fill reports the commission at the rates in force when its order was
-- accepted (the latest change at or below that seq; the pair's configured
-- rates before the first), as the risk stage charged it, so a later change
-- rewrites no past trade.
CREATE TABLE pair_fee_changes (
    pair          TEXT    NOT NULL,
    seq           BIGINT  NOT NULL,
    maker_fee_bps INTEGER NOT NULL,
    taker_fee_bps INTEGER NOT NULL,
    PRIMARY KEY (pair, seq)
);
ALTER TABLE orders ADD COLUMN accepted_seq BIGINT;
