"""SQL for tracking plans: versions, the rejected store and its violations.

Every function takes an open transaction; :class:`partitur.plan.service.PlanService` opens them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from partitur.clock import iso
from partitur.errors import Conflict, InvalidInput
from partitur.store.db import Tx


@dataclass(frozen=True)
class Applied:
    version: int
    changed: bool


@dataclass(frozen=True)
class StoredPlan:
    version: int
    created_at: int
    doc: dict[str, Any]


def latest_version(tx: Tx) -> int:
    row = tx.one("SELECT MAX(version) FROM tracking_plans")
    return int(row[0]) if row and row[0] is not None else 0


def load(tx: Tx, version: int | None = None) -> StoredPlan | None:
    if version is None:
        row = tx.one("SELECT version, created_at, doc FROM tracking_plans "
                     "ORDER BY version DESC LIMIT 1")
    else:
        row = tx.one("SELECT version, created_at, doc FROM tracking_plans WHERE version = ?",
                     (version,))
    return None if row is None else StoredPlan(int(row[0]), int(row[1]), json.loads(row[2]))


def store(tx: Tx, doc: dict[str, Any], now_us: int, expected: int | None) -> Applied:
    """A new version holding ``doc``, unless it is the current one already.

    ``expected``: the version the caller based its change on (0: no plan yet); another version
    being current is a :class:`Conflict`, so that two editors do not overwrite each other.
    """
    current = load(tx)
    version = current.version if current else 0
    if expected is not None and expected != version:
        raise Conflict(
            f"the tracking plan is at version {version}, not {expected}: another change was "
            "applied meanwhile; load the current plan and apply your change to it",
            details=[{"current_version": version, "expected_version": expected}],
        )
    if current is not None and current.doc == doc:
        return Applied(version, False)
    added = tx.execute(
        "INSERT INTO tracking_plans (version, doc, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (version) DO NOTHING RETURNING version",
        (version + 1, json.dumps(doc, ensure_ascii=False), now_us),
    )
    if not added:
        raise Conflict("another tracking plan was applied at the same moment; try again")
    return Applied(version + 1, True)


def versions(tx: Tx, limit: int) -> list[dict[str, Any]]:
    rows = tx.execute(
        "SELECT version, created_at, doc FROM tracking_plans ORDER BY version DESC LIMIT ?",
        (limit,),
    )
    out = []
    for version, created, doc in rows:
        data = json.loads(doc)
        out.append({"version": version, "created_at": iso(created), "name": data.get("name"),
                    "events": len(data.get("events") or {})})
    return out


def write_rejected(tx: Tx, records: Sequence[tuple[Any, ...]]) -> None:
    """Records from :func:`partitur.plan.enforce.inspect`; a retried event is stored once."""
    tx.executemany(
        "INSERT INTO rejected_events (received_at, source_id, type, event, message_id, "
        "plan_version, action, violations, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        [record[0] for record in records],
    )
    tx.executemany(
        "INSERT INTO plan_violations (message_id, n, received_at, source_id, type, event, rule, "
        "path, action) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [row for record in records for row in record[1]],
    )


def _filters(since_us: int | None, source_id: str | None) -> tuple[str, list[Any]]:
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if since_us is not None:
        where.append("v.received_at >= ?")
        params.append(since_us)
    if source_id is not None:
        where.append("v.source_id = ?")
        params.append(source_id)
    return " AND ".join(where), params


_FROM = "FROM plan_violations v JOIN rejected_events r ON r.message_id = v.message_id"


def summary(
    tx: Tx, since_us: int | None, source_id: str | None, limit: int = 500
) -> list[dict[str, Any]]:
    """Violations by call type, event and rule: events affected (and what was done to them),
    violations, the properties involved, when last seen and the latest message."""
    where, params = _filters(since_us, source_id)
    groups = tx.execute(
        "SELECT v.type, v.event, v.rule, COUNT(DISTINCT v.message_id), "
        "COUNT(DISTINCT CASE WHEN v.action = 'blocked' THEN v.message_id END), "
        "COUNT(DISTINCT CASE WHEN v.action = 'flagged' THEN v.message_id END), "
        "COUNT(DISTINCT CASE WHEN v.action = 'omitted' THEN v.message_id END), "
        f"COUNT(*), MAX(v.received_at) {_FROM} WHERE {where} "
        "GROUP BY v.type, v.event, v.rule ORDER BY COUNT(DISTINCT v.message_id) DESC, "
        "v.event, v.rule LIMIT ?",
        [*params, limit],
    )
    paths: dict[tuple[str, str, str], dict[str, int]] = {}
    for kind, event, rule, path, count in tx.execute(
        f"SELECT v.type, v.event, v.rule, v.path, COUNT(*) {_FROM} WHERE {where} "
        "GROUP BY v.type, v.event, v.rule, v.path ORDER BY COUNT(*) DESC, v.path",
        params,
    ):
        top = paths.setdefault((kind, event, rule), {})
        if len(top) < 10:
            top[path] = count
    out = []
    for kind, event, rule, events, blocked, flagged, omitted, count, last in groups:
        out.append({
            "type": kind, "event": event or None, "rule": rule, "count": events,
            "blocked": blocked, "flagged": flagged, "omitted": omitted, "violations": count,
            "last_seen": iso(last), "paths": paths.get((kind, event, rule), {}),
            "sample": _sample(tx, kind, event, rule, where, params),
        })
    return out


def _sample(tx: Tx, kind: str, event: str, rule: str, where: str, params: list[Any]) -> str:
    row = tx.one(
        f"SELECT r.violations, v.n {_FROM} WHERE v.type = ? AND v.event = ? AND v.rule = ? "
        f"AND {where} ORDER BY v.received_at DESC, v.message_id DESC LIMIT 1",
        [kind, event, rule, *params],
    )
    if row is None:
        return ""
    found = json.loads(row[0])
    n = int(row[1])
    return str(found[n]["message"]) if n < len(found) else ""


@dataclass(frozen=True)
class RejectedQuery:
    event: str | None = None
    rule: str | None = None
    source_id: str | None = None
    action: str | None = None
    since_us: int | None = None
    cursor: str | None = None
    limit: int = 50


def rejected(tx: Tx, q: RejectedQuery) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; returns the page and the cursor of the next one (None at the end)."""
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    for column, value in (("r.event", q.event), ("r.source_id", q.source_id),
                          ("r.action", q.action)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if q.rule is not None:
        where.append("EXISTS (SELECT 1 FROM plan_violations v "
                     "WHERE v.message_id = r.message_id AND v.rule = ?)")
        params.append(q.rule)
    if q.since_us is not None:
        where.append("r.received_at >= ?")
        params.append(q.since_us)
    if q.cursor is not None:
        if not q.cursor.isdigit():
            raise InvalidInput("'cursor' is not one that this API returned")
        where.append("r.id < ?")
        params.append(int(q.cursor))
    rows = tx.execute(
        "SELECT r.id, r.received_at, r.source_id, r.type, r.event, r.message_id, "
        "r.plan_version, r.action, r.violations, r.body FROM rejected_events r "
        f"WHERE {' AND '.join(where)} ORDER BY r.id DESC LIMIT ?",
        [*params, q.limit + 1],
    )
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    page = [
        {"id": r[0], "received_at": iso(r[1]), "source": r[2], "type": r[3], "event": r[4],
         "message_id": r[5], "plan_version": r[6], "action": r[7],
         "violations": json.loads(r[8]), "body": json.loads(r[9])}
        for r in rows
    ]
    return page, (str(rows[-1][0]) if more and rows else None)
