-- Tracking plan versions and the store of rejected or violating events.
CREATE TABLE tracking_plans (
    version     INTEGER PRIMARY KEY,
    doc         TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE rejected_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    source_id   TEXT NOT NULL,
    type        TEXT NOT NULL,
    event       TEXT,
    message_id  TEXT,
    action      TEXT NOT NULL,
    violations  TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX rejected_events_received ON rejected_events (received_at);
CREATE INDEX rejected_events_event ON rejected_events (event);
