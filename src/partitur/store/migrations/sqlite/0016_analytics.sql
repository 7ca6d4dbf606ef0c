-- Analytics: what the projector still has to write to Parquet, profile aliases after merges,
-- erasures still to apply to the Parquet files, and the projector's counters.
-- Processed events waiting for the projector; the worker inserts them in the batch's
-- transaction. `file` is set when a projector claims the row for a Parquet file.
CREATE TABLE analytics_outbox (
    seq         INTEGER PRIMARY KEY,
    profile_id  TEXT NOT NULL,
    file        TEXT
);
CREATE INDEX analytics_outbox_file ON analytics_outbox (file) WHERE file IS NOT NULL;
-- Every profile id merged away, flattened to the profile it lives on now.
CREATE TABLE analytics_alias (
    merged      TEXT PRIMARY KEY,
    survivor    TEXT NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX analytics_alias_survivor ON analytics_alias (survivor);
-- People erased from the state store whose rows the Parquet files may still hold.
CREATE TABLE analytics_erasures (
    profile_id    TEXT PRIMARY KEY,
    requested_at  INTEGER NOT NULL
);
CREATE TABLE analytics_state (
    key    TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
INSERT INTO analytics_state (key, value) VALUES ('alias_version', 1);
INSERT INTO analytics_state (key, value)
    SELECT 'unmerge_cursor', COALESCE(MAX(id), 0) FROM identity_log;
-- Events processed before analytics existed are projected too.
INSERT INTO analytics_outbox (seq, profile_id) SELECT seq, profile_id FROM profile_events;
INSERT INTO analytics_alias (merged, survivor, at)
    SELECT id, merged_into, updated_at FROM profiles WHERE merged_into IS NOT NULL;
