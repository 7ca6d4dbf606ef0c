"""Stored templates, versioned: ``templates`` holds the current version of each key,
``template_versions`` every version ever saved (kept when a template is deleted, so a
delivery's record of "version 3" stays explainable, and numbering continues if the key is
used again)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from partitur.clock import iso
from partitur.errors import InvalidInput, NotFound
from partitur.store.db import Tx
from partitur.templates.document import CHANNELS, KEY_PATTERN, check_template

_ENC = msgspec.json.Encoder(order="sorted")
_DEC = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class Template:
    key: str
    channel: str
    version: int
    parts: dict[str, Any]
    description: str | None
    created_at: int
    updated_at: int

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "channel": self.channel,
            "version": self.version,
            "description": self.description,
            **self.parts,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


def parse_document(key: str, doc: Any) -> tuple[str, dict[str, Any], str | None]:
    """``(channel, parts, description)`` of a template document, or :class:`InvalidInput`
    with every problem in ``details``."""
    if not KEY_PATTERN.match(key):
        raise InvalidInput(
            f"'{key}' is not a template key (letters, digits, _ . -; 1-128 characters)",
            details=[{"field": "key", "message": "invalid key"}],
        )
    if not isinstance(doc, Mapping):
        raise InvalidInput("a template is a JSON object with 'channel' and its parts")
    channel = doc.get("channel")
    if channel not in CHANNELS:
        raise InvalidInput(
            f"template '{key}': 'channel' must be one of {', '.join(CHANNELS)}",
            details=[{"field": "channel", "message": "unknown channel"}],
        )
    description = doc.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidInput(f"template '{key}': 'description' must be a string")
    parts = {k: v for k, v in doc.items() if k not in ("channel", "description", "key")}
    problems = check_template(parts, str(channel))
    if problems:
        raise InvalidInput(
            f"template '{key}' is invalid: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            details=[{"field": "template", "message": p} for p in problems],
        )
    return str(channel), parts, description


def _row(row: Any) -> Template:
    return Template(row[0], row[1], int(row[2]), _DEC.decode(row[3]), row[4], row[5], row[6])


_COLS = "key, channel, version, body, description, created_at, updated_at"


def get(tx: Tx, key: str, version: int | None = None) -> Template:
    if version is None:
        row = tx.one(f"SELECT {_COLS} FROM templates WHERE key = ?", (key,))
    else:
        row = tx.one(
            "SELECT key, channel, version, body, description, created_at, created_at "
            "FROM template_versions WHERE key = ? AND version = ?",
            (key, version),
        )
    if row is None:
        suffix = "" if version is None else f" version {version}"
        raise NotFound(f"no template '{key}'{suffix}")
    return _row(row)


def find(tx: Tx, keys: list[str]) -> dict[str, Template]:
    """The current version of each key that exists."""
    out: dict[str, Template] = {}
    for key in sorted(set(keys)):
        row = tx.one(f"SELECT {_COLS} FROM templates WHERE key = ?", (key,))
        if row is not None:
            out[key] = _row(row)
    return out


def template_exists(tx: Tx, key: str) -> bool:
    return tx.one("SELECT 1 FROM templates WHERE key = ?", (key,)) is not None


def template_channel(tx: Tx, key: str) -> str | None:
    """The channel of stored template ``key`` (None if there is no such template)."""
    row = tx.one("SELECT channel FROM templates WHERE key = ?", (key,))
    return str(row[0]) if row else None


def put(tx: Tx, key: str, doc: Any, now_us: int) -> tuple[Template, bool]:
    """Save a new version if the document differs from the current one; ``(template,
    changed)``."""
    channel, parts, description = parse_document(key, doc)
    body = _ENC.encode(parts).decode()
    current = tx.one(
        "SELECT channel, body, description, version FROM templates WHERE key = ?", (key,)
    )
    if current is not None and (current[0], current[1], current[2]) == (channel, body, description):
        return get(tx, key), False
    top = tx.one("SELECT MAX(version) FROM template_versions WHERE key = ?", (key,))
    version = int(top[0]) + 1 if top and top[0] is not None else 1
    tx.execute(
        "INSERT INTO template_versions (key, version, channel, body, description, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (key, version, channel, body, description, now_us),
    )
    tx.execute(
        "INSERT INTO templates (key, channel, version, body, description, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
        "channel = excluded.channel, version = excluded.version, body = excluded.body, "
        "description = excluded.description, updated_at = excluded.updated_at",
        (key, channel, version, body, description, now_us, now_us),
    )
    return get(tx, key), True


def delete(tx: Tx, key: str) -> None:
    if not tx.execute("DELETE FROM templates WHERE key = ? RETURNING key", (key,)):
        raise NotFound(f"no template '{key}'")


def listing(
    tx: Tx, *, channel: str | None, limit: int, after: str | None
) -> tuple[list[Template], str | None]:
    where, params = [], []
    if channel:
        where.append("channel = ?")
        params.append(channel)
    if after:
        where.append("key > ?")
        params.append(after)
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    rows = tx.execute(
        f"SELECT {_COLS} FROM templates {clause}ORDER BY key LIMIT ?", (*params, limit + 1)
    )
    found = [_row(r) for r in rows[:limit]]
    return found, (found[-1].key if len(rows) > limit and found else None)


def versions(tx: Tx, key: str) -> list[dict[str, Any]]:
    rows = tx.execute(
        "SELECT version, created_at, description FROM template_versions WHERE key = ? "
        "ORDER BY version DESC",
        (key,),
    )
    if not rows:
        raise NotFound(f"no template '{key}'")
    return [{"version": int(r[0]), "created_at": iso(r[1]), "description": r[2]} for r in rows]
