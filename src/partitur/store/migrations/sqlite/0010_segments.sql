-- Segments: definitions, members, the entry/exit history, and the due index (when a
-- person's membership could next change by time passing).
CREATE TABLE segments (
    key                  TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    kind                 TEXT NOT NULL CHECK (kind IN ('dynamic', 'static')),
    document             TEXT NOT NULL,
    version              INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    backfill_status      TEXT NOT NULL DEFAULT 'done',
    backfill_cursor      TEXT,
    backfill_done        INTEGER NOT NULL DEFAULT 0,
    backfill_total       INTEGER NOT NULL DEFAULT 0,
    backfill_started_at  INTEGER,
    backfill_finished_at INTEGER,
    backfill_error       TEXT
);
-- One row, bumped by every change to a definition, so that workers reload cheaply.
CREATE TABLE segment_revision (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    revision  INTEGER NOT NULL
);
INSERT INTO segment_revision (id, revision) VALUES (1, 0);
CREATE TABLE segment_members (
    segment     TEXT NOT NULL,
    profile_id  TEXT NOT NULL,
    since       INTEGER NOT NULL,
    PRIMARY KEY (segment, profile_id)
) WITHOUT ROWID;
CREATE INDEX segment_members_profile ON segment_members (profile_id);
CREATE TABLE segment_history (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    profile_id  TEXT NOT NULL,
    segment     TEXT NOT NULL,
    entered     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    cause       TEXT NOT NULL,
    seen        TEXT
);
CREATE INDEX segment_history_profile ON segment_history (profile_id, id);
CREATE INDEX segment_history_segment ON segment_history (segment, at);
CREATE TABLE segment_due (
    profile_id  TEXT NOT NULL,
    segment     TEXT NOT NULL,
    due_at      INTEGER NOT NULL,
    PRIMARY KEY (profile_id, segment)
) WITHOUT ROWID;
CREATE INDEX segment_due_at ON segment_due (due_at);
