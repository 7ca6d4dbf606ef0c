"""Recording what happened to a message: its row's new status and its delivery event.

A result is recorded only by the claim that sent it: the update checks that the row is still
``sending`` with the same ``attempts``. If the lease ran out and another dispatcher took the
row over (and sent it again with the same key), the late result is dropped; the newer claim
records its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from partitur.channels.base import DeliveryError, Receipt
from partitur.channels.config import ChannelConfig
from partitur.channels.events import event_message_id, event_name, person_ids, track_row
from partitur.channels.policy import backoff_seconds
from partitur.clock import iso
from partitur.profiles import store as profile_store
from partitur.store.db import Tx, chunks
from partitur.store.events import EventLog

if TYPE_CHECKING:
    from partitur.channels.claim import Job, Row

_ENC = msgspec.json.Encoder()
_MAX_REASON = 1000


class Finisher:
    def __init__(
        self,
        config: ChannelConfig,
        log: EventLog,
        *,
        source_id: Callable[[], str],
        partitions: int,
        secret: str,
        rng: random.Random,
        dialect: str = "sqlite",
    ) -> None:
        self.dialect = dialect
        self.config = config
        self.log = log
        self.source_id = source_id
        self.partitions = partitions
        self.secret = secret
        self.rng = rng
        self._events: list[tuple[str, str, dict[str, Any]]] = []
        self.counts: dict[str, int] = {}

    # -- the row --------------------------------------------------------------------------------
    def _set(
        self,
        tx: Tx,
        key: str,
        status: str,
        reason: str | None,
        now_us: int,
        *,
        due_at: int | None = None,
        attempts: int | None = None,
        detail: dict[str, Any] | None = None,
        provider_id: str | None = None,
    ) -> bool:
        sets = "status = ?, reason = ?, due_at = ?, updated_at = ?"
        params: list[Any] = [status, reason[:_MAX_REASON] if reason else None, due_at, now_us]
        if status == "sent":
            sets += ", sent_at = ?, provider_id = ?"
            params += [now_us, provider_id]
        if detail:
            sets += ", detail = ?"
            params.append(_ENC.encode(detail).decode())
        where = "key = ?"
        params.append(key)
        if attempts is not None:
            where += " AND status = 'sending' AND attempts = ?"
            params.append(attempts)
        done = bool(tx.execute(f"UPDATE outbox SET {sets} WHERE {where} RETURNING key", params))
        if done:
            self.counts[status] = self.counts.get(status, 0) + 1
        return done

    def _event(self, row: Row, outcome: str, extra: dict[str, Any]) -> None:
        name = "Message Suppressed" if outcome == "Suppressed" else event_name(row.channel, outcome)
        self._events.append((name, row.profile_id, {**row.properties(), **extra}))

    def suppress(self, tx: Tx, row: Row, reason: str, now_us: int) -> None:
        if self._set(tx, row.key, "suppressed", reason, now_us):
            self._event(row, "Suppressed", {"reason": reason})

    def defer(self, tx: Tx, row: Row, reason: str, until_us: int, now_us: int) -> None:
        self._set(tx, row.key, "queued", reason, now_us, due_at=until_us)

    def fail(
        self,
        tx: Tx,
        row: Row,
        reason: str,
        now_us: int,
        *,
        detail: dict[str, Any] | None = None,
        attempts: int | None = None,
        bounce: bool = False,
    ) -> None:
        if self._set(tx, row.key, "failed", reason, now_us, attempts=attempts, detail=detail):
            self._event(row, "Bounced" if bounce else "Failed", {"reason": reason})

    def dead(
        self,
        tx: Tx,
        row: Row,
        reason: str,
        now_us: int,
        *,
        attempts: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        if self._set(tx, row.key, "dead", reason, now_us, attempts=attempts, detail=detail):
            self._event(row, "Failed", {"reason": reason, "dead": True})

    def _decide(
        self, job: Job, result: Receipt | DeliveryError, now_us: int
    ) -> tuple[str, str | None, int | None, dict[str, Any], tuple[str, dict[str, Any]] | None]:
        """``(status, reason, due_at, detail, event)`` for a send's result."""
        detail = dict(job.detail)
        if isinstance(result, Receipt):
            detail.update(result.detail)
            extra = {"provider_id": result.provider_id} if result.provider_id else {}
            return "sent", None, None, detail, ("Sent", {**extra, "attempts": job.attempts})
        if result.code is not None:
            detail["code"] = result.code
        reason = f"attempt {job.attempts}: {result.message}"
        if not result.retryable:
            outcome = "Bounced" if result.bounce else "Failed"
            return "failed", reason, None, detail, (outcome, {"reason": reason})
        if job.attempts >= self.config.max_attempts:
            reason += " (no attempts left)"
            return "dead", reason, None, detail, ("Failed", {"reason": reason, "dead": True})
        wait = backoff_seconds(
            job.attempts,
            base=self.config.retry_base,
            cap=self.config.retry_max,
            rng=self.rng,
            retry_after=result.retry_after,
        )
        due = now_us + int(wait * 1_000_000)
        return "queued", f"{reason}; retrying at {iso(due)}", due, detail, None

    def outcomes(
        self, tx: Tx, results: Sequence[tuple[Job, Receipt | DeliveryError]], now_us: int
    ) -> int:
        """Record send results. Which rows each claim still owns is read once (and locked on
        PostgreSQL); the owned rows are updated with one ``executemany``. Returns how many
        were recorded."""
        keys = sorted({job.row.key for job, _ in results})
        lock = " FOR UPDATE" if self.dialect == "postgres" else ""
        owned: dict[str, int] = {}
        for chunk in chunks(keys):
            marks = ",".join("?" * len(chunk))
            for key, attempts in tx.execute(
                f"SELECT key, attempts FROM outbox WHERE key IN ({marks}) "
                f"AND status = 'sending'{lock}",
                chunk,
            ):
                owned[key] = int(attempts)
        updates: list[tuple[Any, ...]] = []
        for job, result in results:
            if owned.pop(job.row.key, None) != job.attempts:
                continue  # the lease ran out and another claim owns the row now
            status, reason, due, detail, event = self._decide(job, result, now_us)
            provider = result.provider_id if isinstance(result, Receipt) else None
            updates.append(
                (
                    status,
                    reason[:_MAX_REASON] if reason else None,
                    due,
                    now_us,
                    now_us if status == "sent" else None,
                    provider,
                    _ENC.encode(detail).decode(),
                    job.row.key,
                )
            )
            self.counts[status] = self.counts.get(status, 0) + 1
            if event is not None:
                self._event(job.row, event[0], event[1])
        tx.executemany(
            "UPDATE outbox SET status = ?, reason = ?, due_at = ?, updated_at = ?, "
            "sent_at = COALESCE(?, sent_at), provider_id = COALESCE(?, provider_id), "
            "detail = ? WHERE key = ?",
            updates,
        )
        return len(updates)

    def outcome(self, tx: Tx, job: Job, result: Receipt | DeliveryError, now_us: int) -> None:
        self.outcomes(tx, [(job, result)], now_us)

    # -- delivery events ------------------------------------------------------------------------
    def flush(self, tx: Tx, now_us: int) -> int:
        """Append the delivery events gathered so far to the event log, in ``tx``."""
        pending, self._events = self._events, []
        if not pending:
            return 0
        rows = []
        ids: dict[str, tuple[str | None, str | None]] = {}
        source = self.source_id()
        for name, profile_id, props in pending:
            if profile_id not in ids:
                live, _ = profile_store.resolve_id(tx, profile_id)
                ids[profile_id] = person_ids(tx, live) if live else (None, None)
            user_id, anonymous_id = ids[profile_id]
            if not (user_id or anonymous_id):
                continue  # an erased person: nothing to attribute the event to
            rows.append(
                track_row(
                    name=name,
                    message_id=event_message_id(props["key"], name),
                    user_id=user_id,
                    anonymous_id=anonymous_id,
                    properties=props,
                    now_us=now_us,
                    source_id=source,
                    partitions=self.partitions,
                )
            )
        return self.log.append(tx, rows) if rows else 0
