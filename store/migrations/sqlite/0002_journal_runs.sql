-- The command log holds one row per pair per group commit: the commands at
-- positions first_position..=last_position, encoded back to back. One row
-- per command cost a B-tree insert each and capped the journal's rate.
CREATE TABLE journal (
    pair           TEXT   NOT NULL,
    first_position BIGINT NOT NULL,
    last_position  BIGINT NOT NULL,
    body           BLOB   NOT NULL,
    PRIMARY KEY (pair, first_position)
);

-- A single encoded command is a run of one.
INSERT INTO journal (pair, first_position, last_position, body)
    SELECT pair, position, position, body FROM commands;
DROP TABLE commands;
