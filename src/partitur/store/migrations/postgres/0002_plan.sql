-- Tracking plan versions, and the store of blocked or violating events with their violations.
CREATE TABLE tracking_plans (
    version     INTEGER PRIMARY KEY,
    doc         TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
-- One row per event that broke the plan (flagged, omitted or blocked), as it was received.
CREATE TABLE rejected_events (
    id           BIGSERIAL PRIMARY KEY,
    received_at  BIGINT NOT NULL,
    source_id    TEXT NOT NULL,
    type         TEXT NOT NULL,
    event        TEXT,
    message_id   TEXT NOT NULL UNIQUE,
    plan_version INTEGER NOT NULL,
    action       TEXT NOT NULL,
    violations   TEXT NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX rejected_events_received ON rejected_events (received_at);
CREATE INDEX rejected_events_event ON rejected_events (event, id);
-- One row per violation, for summaries; the messages (which may quote values) stay in
-- rejected_events, so erasing an event there erases them.
CREATE TABLE plan_violations (
    message_id  TEXT NOT NULL,
    n           INTEGER NOT NULL,
    received_at BIGINT NOT NULL,
    source_id   TEXT NOT NULL,
    type        TEXT NOT NULL,
    event       TEXT NOT NULL,
    rule        TEXT NOT NULL,
    path        TEXT NOT NULL,
    action      TEXT NOT NULL,
    PRIMARY KEY (message_id, n)
);
CREATE INDEX plan_violations_received ON plan_violations (received_at);
CREATE INDEX plan_violations_group ON plan_violations (type, event, rule, received_at);
