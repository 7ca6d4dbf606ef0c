"""Schema migrations: numbered SQL files per backend, applied in order, once."""

from __future__ import annotations

from importlib import resources

from partitur.clock import SystemClock
from partitur.errors import StorageError
from partitur.store.db import Database

_LOCK_ID = 0x5041_5254  # "PART": serialises migrations across processes on PostgreSQL


def available(dialect: str) -> list[tuple[int, str, str]]:
    folder = resources.files("partitur.store.migrations").joinpath(dialect)
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number = int(entry.name.split("_", 1)[0])
            out.append((number, entry.name, entry.read_text()))
    return sorted(out)


def migrate(db: Database) -> list[str]:
    """Apply pending migrations; returns the names applied."""
    applied: list[str] = []
    with db.transaction() as tx:
        if db.dialect == "postgres":
            tx.execute("SELECT pg_advisory_xact_lock(?)", (_LOCK_ID,))
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
        )
        done = {row[0] for row in tx.execute("SELECT version FROM schema_migrations")}
        for number, name, sql in available(db.dialect):
            if number in done:
                continue
            try:
                for statement in _split(sql):
                    tx.execute(statement)
            except Exception as exc:
                raise StorageError(f"migration {name} failed: {exc}") from exc
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (number, name, SystemClock().now_us()),
            )
            applied.append(name)
    return applied


def _split(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
