"""The outbox: messages handed to the channels, one row each, keyed by an idempotency key.

Whoever decides to send (the journey runner) calls :func:`enqueue` inside its own
transaction, so the decision and the message commit or roll back together. The dispatcher
(:mod:`partitur.channels.dispatcher`) owns everything after that: it claims due rows, applies
the send-time policies, renders, sends and records the result on the row.

A row's life::

    queued ──claim──► sending ──► sent
      ▲  │               │  └───► failed      (permanent: bad template, bounce, 4xx)
      │  │               └──────► queued      (retryable error, due again after a backoff)
      │  │                        dead        (retryable error, attempts used up)
      │  └──policies──► suppressed (consent, frequency cap, quiet hours skip, erased)
      └─────replay───── failed | dead | suppressed

The row's ``due_at`` is when it may next be claimed: its not-before or retry time while
queued, the end of its lease while sending (a dispatcher that dies mid-send leaves a row that
another picks up when the lease ends, and sends again *with the same key*). Final rows have no
``due_at``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from partitur.clock import iso
from partitur.errors import InvalidInput
from partitur.store.db import Tx, chunks
from partitur.templates.document import CHANNELS

CATEGORIES = ("marketing", "transactional")
STATUSES = ("queued", "sending", "sent", "failed", "suppressed", "dead")
FINAL = frozenset({"sent", "failed", "suppressed", "dead"})
NOTIFY_CHANNEL = "partitur_outbox"  # PostgreSQL NOTIFY channel, sent when a row is enqueued

_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    key: str  # deterministic idempotency key, unique: "welcome:v3:<profile>:<entry>:<step>:<n>"
    profile_id: str
    channel: str  # "email" | "sms" | "webhook" | "web"
    # Key of a stored template, or inline parts: {"subject","text","html"} (email),
    # {"text"} (sms), {"title","body","url"} (web), {"url","method","headers","body"} (webhook).
    template: str | dict[str, Any] | None
    category: str = "marketing"  # marketing: consent, caps and quiet hours apply
    # {"event": {...trigger event...}, "journey": {"key","version","step","arm","decision"}}
    variables: dict[str, Any] = field(default_factory=dict)
    # For channel "webhook": {"url", "method", "headers", "body"} (strings may be templates).
    webhook: dict[str, Any] | None = None
    journey: str | None = None
    version: int | None = None
    instance_id: str | None = None
    step_id: str | None = None
    not_before_us: int | None = None
    # Send to this address/number instead of the profile's (test runs); web: ignored.
    to: str | None = None

    def __post_init__(self) -> None:
        if not self.key or len(self.key) > 512:
            raise InvalidInput("an outbound message needs a key of 1 to 512 characters")
        if self.channel not in CHANNELS:
            raise InvalidInput(
                f"message {self.key}: unknown channel '{self.channel}' "
                f"(expected {', '.join(CHANNELS)})"
            )
        if self.category not in CATEGORIES:
            raise InvalidInput(
                f"message {self.key}: category must be marketing or transactional, "
                f"not '{self.category}'"
            )
        if self.channel == "webhook" and self.webhook is None and self.template is None:
            raise InvalidInput(f"message {self.key}: a webhook needs 'webhook' or a template")
        if self.channel != "webhook" and self.template is None:
            raise InvalidInput(f"message {self.key}: a {self.channel} message needs a template")


# -- waking the dispatcher ------------------------------------------------------------------
_listeners: list[Callable[[], None]] = []
_listeners_lock = threading.Lock()


def add_listener(callback: Callable[[], None]) -> None:
    """Call ``callback`` (from any thread) whenever messages are enqueued in this process."""
    with _listeners_lock:
        _listeners.append(callback)


def remove_listener(callback: Callable[[], None]) -> None:
    with _listeners_lock:
        if callback in _listeners:
            _listeners.remove(callback)


def notify() -> None:
    """Wake every dispatcher of this process (also what the manual clock's advance calls)."""
    with _listeners_lock:
        callbacks = list(_listeners)
    for callback in callbacks:
        callback()


def wake_after_commit(tx: Tx) -> None:
    after = getattr(tx, "after_commit", None)
    if isinstance(after, list):  # SQLite: run once the transaction has committed
        if notify not in after:
            after.append(notify)
    elif getattr(tx, "raw", None) is not None:  # PostgreSQL: delivered at commit, to all
        tx.execute("SELECT pg_notify(?, '')", (NOTIFY_CHANNEL,))


# -- writing ----------------------------------------------------------------------------------
_INSERT = (
    "INSERT INTO outbox (key, profile_id, channel, category, template, variables, webhook, "
    "recipient, journey, version, instance_id, step_id, status, due_at, attempts, created_at, "
    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (key) DO NOTHING"
)


def _json(value: Any) -> str | None:
    return None if value is None else _ENC.encode(value).decode()


def enqueue(tx: Tx, messages: Sequence[OutboundMessage], now_us: int) -> int:
    """Insert into the outbox in the caller's transaction; idempotent on key (a second
    enqueue of the same key is ignored); returns how many were new."""
    fresh: dict[str, OutboundMessage] = {}
    for message in messages:
        fresh.setdefault(message.key, message)
    if not fresh:
        return 0
    for chunk in chunks(list(fresh)):
        marks = ",".join("?" * len(chunk))
        for (key,) in tx.execute(f"SELECT key FROM outbox WHERE key IN ({marks})", chunk):
            fresh.pop(key, None)
    if not fresh:
        return 0
    rows = []
    for m in fresh.values():
        try:
            variables = _ENC.encode(m.variables).decode()
        except (TypeError, msgspec.EncodeError) as exc:
            raise InvalidInput(f"message {m.key}: variables are not JSON: {exc}") from None
        due = max(now_us, m.not_before_us or 0)
        rows.append(
            (
                m.key,
                m.profile_id,
                m.channel,
                m.category,
                _json(m.template),
                variables,
                _json(m.webhook),
                m.to,
                m.journey,
                m.version,
                m.instance_id,
                m.step_id,
                "queued",
                due,
                0,
                now_us,
                now_us,
            )
        )
    tx.executemany(_INSERT, rows)
    wake_after_commit(tx)
    return len(rows)


# -- reading ----------------------------------------------------------------------------------
STATUS_COLUMNS = (
    "o.key, o.status, o.reason, o.attempts, o.sent_at, o.provider_id, o.channel, o.category, "
    "o.due_at, o.updated_at, o.created_at, o.detail, o.journey, o.version, o.step_id, "
    "o.profile_id, w.delivered_at"
)
STATUS_FROM = "outbox o LEFT JOIN web_messages w ON w.key = o.key"


def status_json(row: Sequence[Any]) -> dict[str, Any]:
    """A row of :data:`STATUS_COLUMNS` as the API and the journey path view show it."""
    detail = _DEC.decode(row[11]) if row[11] else {}
    out: dict[str, Any] = {
        "key": row[0],
        "status": row[1],
        "reason": row[2],
        "attempts": int(row[3]),
        "sent_at": iso(row[4]) if row[4] is not None else None,
        "provider_id": row[5],
        "channel": row[6],
        "category": row[7],
        "due_at": iso(row[8]) if row[8] is not None and row[1] == "queued" else None,
        "updated_at": iso(row[9]),
        "created_at": iso(row[10]),
        "journey": row[12],
        "version": row[13],
        "step": row[14],
        "profile_id": row[15],
    }
    if row[6] == "web":
        out["delivered_at"] = iso(row[16]) if row[16] is not None else None
    out.update(detail)
    return out


def delivery_status(tx: Tx, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """For the journey path view: per key {status: queued|sending|sent|failed|suppressed|
    dead, reason, attempts, sent_at, provider_id, ...}. Unknown keys are left out."""
    out: dict[str, dict[str, Any]] = {}
    for chunk in chunks(list(dict.fromkeys(keys))):
        marks = ",".join("?" * len(chunk))
        for row in tx.execute(
            f"SELECT {STATUS_COLUMNS} FROM {STATUS_FROM} WHERE o.key IN ({marks})", chunk
        ):
            out[row[0]] = status_json(row)
    return out
