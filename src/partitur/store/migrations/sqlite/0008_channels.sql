-- Channels: the outbox (one row per message, keyed by its idempotency key), stored templates
-- with their versions, web/in-app messages waiting for the site to fetch them, and the
-- channels' own secrets (the unsubscribe-link key when none is configured).
CREATE TABLE outbox (
    key          TEXT PRIMARY KEY,
    profile_id   TEXT NOT NULL,
    channel      TEXT NOT NULL,
    category     TEXT NOT NULL,
    template     TEXT,
    variables    TEXT NOT NULL DEFAULT '{}',
    webhook      TEXT,
    recipient    TEXT,
    journey      TEXT,
    version      INTEGER,
    instance_id  TEXT,
    step_id      TEXT,
    status       TEXT NOT NULL,
    due_at       INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    reason       TEXT,
    provider_id  TEXT,
    detail       TEXT NOT NULL DEFAULT '{}',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    sent_at      INTEGER
);
-- Due rows per channel: queued ones at their not-before or retry time, sending ones at the
-- end of their lease. Final rows have no due_at and leave the index.
CREATE INDEX outbox_due ON outbox (channel, due_at) WHERE due_at IS NOT NULL;
CREATE INDEX outbox_profile ON outbox (profile_id, channel, sent_at);
CREATE INDEX outbox_status ON outbox (status, created_at);
CREATE INDEX outbox_created ON outbox (created_at);
CREATE TABLE templates (
    key          TEXT PRIMARY KEY,
    channel      TEXT NOT NULL,
    version      INTEGER NOT NULL,
    body         TEXT NOT NULL,
    description  TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE TABLE template_versions (
    key          TEXT NOT NULL,
    version      INTEGER NOT NULL,
    channel      TEXT NOT NULL,
    body         TEXT NOT NULL,
    description  TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (key, version)
);
CREATE TABLE web_messages (
    key          TEXT PRIMARY KEY,
    profile_id   TEXT NOT NULL,
    content      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX web_messages_profile ON web_messages (profile_id, delivered_at, created_at);
CREATE TABLE channel_secrets (
    name         TEXT PRIMARY KEY,
    value        TEXT NOT NULL
);
