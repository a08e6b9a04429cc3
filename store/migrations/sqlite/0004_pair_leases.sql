-- Distributed mode: which engine owns each pair. Liveness is a counter each
-- engine bumps every heartbeat; observers judge it by their own clock (no
-- clock is shared), and a lease changes hands only by a compare-and-set on
-- (epoch, beat).
CREATE TABLE engine_members (
    engine_id TEXT   PRIMARY KEY,
    beat      BIGINT NOT NULL
);

CREATE TABLE pair_leases (
    pair  TEXT   PRIMARY KEY,
    owner TEXT,
    epoch BIGINT NOT NULL,
    beat  BIGINT NOT NULL
);
