-- Sources, keys, the event log (partitioned by time), de-duplication and the processing queue.
CREATE TABLE sources (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    rate_limit  DOUBLE PRECISION,
    plan_policy TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE api_keys (
    hash        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('write', 'admin')),
    source_id   TEXT REFERENCES sources(id),
    prefix      TEXT NOT NULL,
    label       TEXT,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE SEQUENCE events_seq;
-- received_at is microseconds since the epoch; one partition per month, created ahead of time
-- by partitur (see PostgresEventLog.ensure_partitions), and a default partition as a safety net.
CREATE TABLE events (
    seq          BIGINT NOT NULL DEFAULT nextval('events_seq'),
    message_id   TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    type         TEXT NOT NULL,
    event        TEXT,
    user_id      TEXT,
    anonymous_id TEXT,
    ts           BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    part         INTEGER NOT NULL,
    body         TEXT NOT NULL,
    PRIMARY KEY (received_at, seq)
) PARTITION BY RANGE (received_at);
CREATE INDEX events_seq_idx ON events (seq);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE TABLE message_ids (
    message_id  TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);
CREATE INDEX message_ids_received ON message_ids (received_at);
CREATE TABLE event_queue (
    seq          BIGINT PRIMARY KEY,
    part         INTEGER NOT NULL,
    received_at  BIGINT NOT NULL
);
CREATE INDEX event_queue_part ON event_queue (part, seq);
