-- The risk stage's shard snapshots: the whole shard state and the position
-- of its input stream (the journal's risk records) it covers. Only the latest
-- row per shard is kept; recovery restores it (checking the state hash) and
-- replays the risk stream after `position`.
CREATE TABLE risk_snapshots (
    shard      INTEGER PRIMARY KEY,
    position   BIGINT  NOT NULL,
    state_hash BIGINT  NOT NULL,
    taken_at   BIGINT  NOT NULL,
    bytes      BLOB    NOT NULL
);
