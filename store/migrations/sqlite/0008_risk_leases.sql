-- Distributed risk roles take their shards by lease like engines take their
-- pairs: a lease row names a pair (an engine's) or a risk shard (`risk/N`,
-- which no pair symbol can spell), and each role plans its own leases
-- among its own members, so engines and risk roles never count each other.
ALTER TABLE engine_members ADD COLUMN role TEXT NOT NULL DEFAULT 'engine';
ALTER TABLE pair_leases ADD COLUMN role TEXT NOT NULL DEFAULT 'engine';
