-- Per pair, the highest risk offset of each shard whose forwarded command
-- the engine applied, as of the pair's snapshot at `position` (written in
-- the same transaction). An engine drops a forwarded command at or below
-- its shard's fence: a second copy from a risk role that lost its lease.
CREATE TABLE forward_fences (
    pair     TEXT    PRIMARY KEY,
    position BIGINT  NOT NULL,
    fence    BLOB   NOT NULL
);
