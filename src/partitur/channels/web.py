"""Web and in-app messages: stored for the person until the site fetches them.

Sending stores the rendered ``{title, body, url}`` under the delivery key (so sending twice
stores it once); the site polls ``GET /v1/messages`` with its write key and the visitor's
``anonymousId`` or ``userId`` and gets the person's undelivered messages, which are then
marked delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgspec

from partitur.channels.base import Envelope, Receipt
from partitur.clock import iso
from partitur.store.db import Database, Tx

_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder()


def store_message(tx: Tx, key: str, profile_id: str, content: dict[str, Any], now_us: int) -> None:
    tx.execute(
        "INSERT INTO web_messages (key, profile_id, content, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (key) DO NOTHING",
        (key, profile_id, _ENC.encode(content).decode(), now_us),
    )


def fetch_messages(
    tx: Tx, profile_ids: list[str], now_us: int, limit: int = 20
) -> list[dict[str, Any]]:
    """The undelivered messages of these profiles (oldest first), now marked delivered."""
    if not profile_ids:
        return []
    marks = ",".join("?" * len(profile_ids))
    rows = tx.execute(
        f"SELECT key, content, created_at FROM web_messages WHERE profile_id IN ({marks}) "
        "AND delivered_at IS NULL ORDER BY created_at, key LIMIT ?",
        (*profile_ids, limit),
    )
    if not rows:
        return []
    keys = [r[0] for r in rows]
    key_marks = ",".join("?" * len(keys))
    tx.execute(
        f"UPDATE web_messages SET delivered_at = ? WHERE key IN ({key_marks})", (now_us, *keys)
    )
    out = []
    for key, content, created_at in rows:
        message = {"id": key, **_DEC.decode(content), "created_at": iso(created_at)}
        out.append(message)
    return out


class WebTransport:
    """Stores messages; the sends of one moment share one transaction."""

    def __init__(self, db: Database, now_us: Callable[[], int]) -> None:
        self.db = db
        self.now_us = now_us
        self._pending: list[tuple[Envelope, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def _store(self, messages: list[Envelope]) -> None:
        with self.db.transaction() as tx:
            now = self.now_us()
            for message in messages:
                content: dict[str, Any] = {
                    k: message.content[k] for k in ("title", "body", "url") if k in message.content
                }
                store_message(tx, message.key, message.profile_id, content, now)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the other sends of this moment join
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self._store, [m for m, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def send(self, message: Envelope) -> Receipt:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((message, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future
        return Receipt(provider_id=message.key)

    async def aclose(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
