-- Journeys: definitions (a draft and immutable published versions), one row per person in
-- a journey with its due time, the path log that explains each person's way, and counters.
CREATE TABLE journeys (
    key           TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    draft         TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('draft', 'live', 'paused', 'archived')),
    live_version  INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
-- One row, bumped by every publish/pause/resume/archive, so workers reload cheaply.
CREATE TABLE journey_revision (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    revision  INTEGER NOT NULL
);
INSERT INTO journey_revision (id, revision) VALUES (1, 0);
CREATE TABLE journey_versions (
    journey       TEXT NOT NULL,
    version       INTEGER NOT NULL,
    document      TEXT NOT NULL,
    published_at  INTEGER NOT NULL,
    PRIMARY KEY (journey, version)
);
CREATE TABLE journey_instances (
    id             TEXT PRIMARY KEY,
    journey        TEXT NOT NULL,
    version        INTEGER NOT NULL,
    profile_id     TEXT NOT NULL,
    entry          INTEGER NOT NULL,
    status         TEXT NOT NULL,
    step           TEXT,
    wake_at        INTEGER,
    waiting_for    TEXT,
    state_version  INTEGER NOT NULL,
    entered_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    goal_until     INTEGER,
    converted_at   INTEGER,
    ended_at       INTEGER,
    exit_reason    TEXT,
    context        TEXT NOT NULL
);
CREATE INDEX journey_instances_due ON journey_instances (wake_at) WHERE wake_at IS NOT NULL;
CREATE INDEX journey_instances_profile ON journey_instances (profile_id, journey);
CREATE INDEX journey_instances_step ON journey_instances (journey, status, step);
CREATE TABLE journey_path (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id  TEXT NOT NULL,
    journey      TEXT NOT NULL,
    version      INTEGER NOT NULL,
    profile_id   TEXT NOT NULL,
    step         TEXT,
    kind         TEXT NOT NULL,
    at           INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    message_key  TEXT
);
CREATE INDEX journey_path_profile ON journey_path (profile_id, id);
CREATE INDEX journey_path_instance ON journey_path (instance_id, id);
CREATE TABLE journey_stats (
    journey  TEXT NOT NULL,
    step     TEXT NOT NULL,
    metric   TEXT NOT NULL,
    value    INTEGER NOT NULL,
    PRIMARY KEY (journey, step, metric)
) WITHOUT ROWID;
-- Scheduled journeys: when each live one next enters its segment's members.
CREATE TABLE journey_schedules (
    journey   TEXT PRIMARY KEY,
    next_at   INTEGER NOT NULL
);
