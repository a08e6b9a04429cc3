-- Distributed mode. The next offset to read per log partition, written in
-- the same transaction as the rows that partition's records produced.
CREATE TABLE log_offsets (
    topic       TEXT   NOT NULL,
    partition   BIGINT NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (topic, partition)
);

-- Each gateway takes a number at start; order ids carry it in their low
-- bits, so gateways never hand out the same id.
CREATE TABLE instances (
    instance_id INTEGER PRIMARY KEY AUTOINCREMENT,
    role        TEXT   NOT NULL,
    started_at  BIGINT NOT NULL
);
