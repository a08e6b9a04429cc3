-- Pairs the persister stopped because their events could not be stored (a
-- value or constraint the database refuses, which retrying cannot fix). A
-- pair listed here starts halted; `exchange pairs resume` deletes its row.
CREATE TABLE halted_pairs (
    pair      TEXT   PRIMARY KEY,
    seq       BIGINT NOT NULL,
    reason    TEXT   NOT NULL,
    halted_at BIGINT NOT NULL
);
