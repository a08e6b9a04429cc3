-- The partition of both Kafka topics a pair listed in distributed mode
-- runs on (NULL for a listing of the embedded exchange). Unique: two
-- gateways listing at once cannot give two pairs one partition; the
-- second's insert does nothing and it takes the next spare one.
ALTER TABLE listed_pairs ADD COLUMN kafka_partition INTEGER;
CREATE UNIQUE INDEX listed_pairs_partition ON listed_pairs (kafka_partition);
