-- Identity graph, its append-only log, profiles and the profile timeline.
CREATE TABLE identifiers (
    key         TEXT PRIMARY KEY,             -- "type:value"
    id_type     TEXT NOT NULL,
    id_value    TEXT NOT NULL,
    profile_id  TEXT NOT NULL,
    first_seen  BIGINT NOT NULL,
    event_seq   BIGINT
);
CREATE INDEX identifiers_profile ON identifiers (profile_id);
CREATE TABLE identity_log (
    id            BIGSERIAL PRIMARY KEY,
    at            BIGINT NOT NULL,
    kind          TEXT NOT NULL,              -- create | link | merge | refuse | unmerge
    profile_id    TEXT NOT NULL,
    other_profile TEXT,
    id_type       TEXT,
    id_value      TEXT,
    event_seq     BIGINT,
    message_id    TEXT,
    detail        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX identity_log_profile ON identity_log (profile_id, id);
CREATE INDEX identity_log_other ON identity_log (other_profile, id);
CREATE TABLE profiles (
    id           TEXT PRIMARY KEY,
    part         INTEGER NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    first_seen   BIGINT,
    last_seen    BIGINT,
    event_count  BIGINT NOT NULL DEFAULT 0,
    traits       TEXT NOT NULL DEFAULT '{}',
    trait_meta   TEXT NOT NULL DEFAULT '{}',
    consent      TEXT NOT NULL DEFAULT '{}',
    merged_into  TEXT
);
CREATE INDEX profiles_part ON profiles (part);
CREATE TABLE profile_events (
    profile_id  TEXT NOT NULL,
    ts          BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (profile_id, ts, seq)
);
CREATE INDEX profile_events_seq ON profile_events (seq);
CREATE TABLE profile_traits (
    profile_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    value       TEXT,
    PRIMARY KEY (profile_id, name)
);
CREATE INDEX profile_traits_value ON profile_traits (name, value);
