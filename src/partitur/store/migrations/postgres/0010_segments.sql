-- Segments: definitions, members, the entry/exit history, and the due index (when a
-- person's membership could next change by time passing).
CREATE TABLE segments (
    key                  TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL DEFAULT '',
    kind                 TEXT NOT NULL CHECK (kind IN ('dynamic', 'static')),
    document             TEXT NOT NULL,
    version              BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    backfill_status      TEXT NOT NULL DEFAULT 'done',
    backfill_cursor      TEXT,
    backfill_done        BIGINT NOT NULL DEFAULT 0,
    backfill_total       BIGINT NOT NULL DEFAULT 0,
    backfill_started_at  BIGINT,
    backfill_finished_at BIGINT,
    backfill_error       TEXT
);
-- One row, bumped by every change to a definition, so that workers reload cheaply.
CREATE TABLE segment_revision (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    revision  BIGINT NOT NULL
);
INSERT INTO segment_revision (id, revision) VALUES (1, 0);
CREATE TABLE segment_members (
    segment     TEXT NOT NULL,
    profile_id  TEXT NOT NULL,
    since       BIGINT NOT NULL,
    PRIMARY KEY (segment, profile_id)
);
CREATE INDEX segment_members_profile ON segment_members (profile_id);
CREATE TABLE segment_history (
    id          BIGSERIAL PRIMARY KEY,
    profile_id  TEXT NOT NULL,
    segment     TEXT NOT NULL,
    entered     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    cause       TEXT NOT NULL,
    seen        TEXT
);
CREATE INDEX segment_history_profile ON segment_history (profile_id, id);
CREATE INDEX segment_history_segment ON segment_history (segment, at);
CREATE TABLE segment_due (
    profile_id  TEXT NOT NULL,
    segment     TEXT NOT NULL,
    due_at      BIGINT NOT NULL,
    PRIMARY KEY (profile_id, segment)
);
CREATE INDEX segment_due_at ON segment_due (due_at);
