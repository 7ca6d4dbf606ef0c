-- Erasure suppressions (hashed identifiers) and the audit log (no personal data).
CREATE TABLE suppressions (
    hash        TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
);
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    action      TEXT NOT NULL,
    actor       TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);
