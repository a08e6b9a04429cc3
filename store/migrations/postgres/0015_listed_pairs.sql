-- Pairs an operator listed on a running exchange, in the order listed.
-- `spec` is the pair's table as the config file would give it (JSON of
-- proto::PairSpec); every role reads these rows at start after the
-- configured pairs, so a listing survives restarts without a config edit.
CREATE TABLE listed_pairs (
    pair TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    listed_at BIGINT NOT NULL
);
