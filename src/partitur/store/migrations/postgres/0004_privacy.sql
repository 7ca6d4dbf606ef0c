-- Erasure suppressions (hashed identifiers) and the audit log (no personal data).
-- ``id`` only grows (erasures take the identity lock), so a server can load what is new.
CREATE TABLE suppressions (
    id          BIGSERIAL PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    action      TEXT NOT NULL,
    actor       TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);
