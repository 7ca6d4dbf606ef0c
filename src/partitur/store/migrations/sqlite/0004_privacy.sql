-- Erasure suppressions (hashed identifiers) and the audit log (no personal data).
-- ``id`` only grows (erasures take the identity lock), so a server can load what is new.
CREATE TABLE suppressions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    hash        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    action      TEXT NOT NULL,
    actor       TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);
