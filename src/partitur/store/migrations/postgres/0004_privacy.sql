-- Erasure suppressions (hashed identifiers) and the audit log (no personal data).
CREATE TABLE suppressions (
    hash        TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    action      TEXT NOT NULL,
    actor       TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);
