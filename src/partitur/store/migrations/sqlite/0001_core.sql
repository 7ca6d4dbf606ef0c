-- Sources, keys, the event log, de-duplication and the processing queue.
CREATE TABLE sources (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    rate_limit  REAL,
    plan_policy TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE api_keys (
    hash        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('write', 'admin')),
    source_id   TEXT REFERENCES sources(id),
    prefix      TEXT NOT NULL,
    label       TEXT,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    type         TEXT NOT NULL,
    event        TEXT,
    user_id      TEXT,
    anonymous_id TEXT,
    ts           INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    part         INTEGER NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX events_received ON events (received_at);
CREATE TABLE message_ids (
    message_id  TEXT PRIMARY KEY,
    received_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX message_ids_received ON message_ids (received_at);
CREATE TABLE event_queue (
    seq   INTEGER PRIMARY KEY,
    part  INTEGER NOT NULL
);
CREATE INDEX event_queue_part ON event_queue (part, seq);
