-- Where a distributed gateway starts reading the events topic: the offset
-- in the pair's events partition from which every event after the
-- snapshot's seq can be read (the record after the last one its engine had
-- sent when it took the snapshot). NULL where unknown (embedded mode, and
-- snapshots stored before this column): a gateway then reads the partition
-- from the beginning.
ALTER TABLE snapshots ADD COLUMN events_from BIGINT;

-- The same for a risk shard's decisions: the offset in the shard's
-- risk-events partition from which every decision after the snapshot's
-- position can be read.
ALTER TABLE risk_snapshots ADD COLUMN decisions_from BIGINT;
