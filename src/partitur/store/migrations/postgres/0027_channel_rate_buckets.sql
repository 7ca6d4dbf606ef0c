-- Per-channel send rate limits shared by every dispatcher on this database: one token bucket
-- row per rate-limited channel (tokens left, and when they were counted, in seconds on the
-- dispatchers' wall clock). A claim locks the rows (FOR UPDATE, in channel order), takes the
-- tokens of the messages it claims and writes them back in the same transaction.
CREATE TABLE channel_rate_buckets (
    channel     TEXT PRIMARY KEY,
    tokens      DOUBLE PRECISION NOT NULL,
    at_s        DOUBLE PRECISION NOT NULL
);
