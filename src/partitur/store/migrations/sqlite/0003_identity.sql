-- Identity graph, its append-only log, profiles and the profile timeline.
CREATE TABLE identifiers (
    key         TEXT PRIMARY KEY,             -- "type:value"
    id_type     TEXT NOT NULL,
    id_value    TEXT NOT NULL,
    profile_id  TEXT NOT NULL,
    first_seen  INTEGER NOT NULL,
    event_seq   INTEGER
);
CREATE INDEX identifiers_profile ON identifiers (profile_id);
CREATE TABLE identity_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    kind          TEXT NOT NULL,              -- create | link | merge | refuse | unmerge
    profile_id    TEXT NOT NULL,
    other_profile TEXT,
    id_type       TEXT,
    id_value      TEXT,
    event_seq     INTEGER,
    message_id    TEXT,
    detail        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX identity_log_profile ON identity_log (profile_id, id);
CREATE INDEX identity_log_other ON identity_log (other_profile, id);
CREATE TABLE profiles (
    id           TEXT PRIMARY KEY,
    part         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    first_seen   INTEGER,
    last_seen    INTEGER,
    event_count  INTEGER NOT NULL DEFAULT 0,
    traits       TEXT NOT NULL DEFAULT '{}',
    trait_meta   TEXT NOT NULL DEFAULT '{}',
    consent      TEXT NOT NULL DEFAULT '{}',
    merged_into  TEXT
);
CREATE INDEX profiles_part ON profiles (part);
CREATE TABLE profile_events (
    profile_id  TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (profile_id, ts, seq)
) WITHOUT ROWID;
CREATE INDEX profile_events_seq ON profile_events (seq);
CREATE TABLE profile_traits (
    profile_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    value       TEXT,
    PRIMARY KEY (profile_id, name)
);
CREATE INDEX profile_traits_value ON profile_traits (name, value);
