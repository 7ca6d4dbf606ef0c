"""Keep erased people out at the door: drop, in the group commit's transaction, events that
carry a suppressed identifier, before they reach the event log or the rejected store.

The worker already deletes such events before they touch a profile, so for the event log this
is a saving (they are never written); for the rejected store, which the worker does not read,
it is the only guard. The check costs one indexed query per commit while nobody has been
erased; after that, a hash per distinct ``userId``/``anonymousId`` of the commit (cached) and
one lookup per 500 of them. Events with neither column matching are left to the worker, which
also checks their emails, phones and other identifiers.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from partitur.identity.extract import IdentityRules, identifier_hash
from partitur.privacy.find import carried_keys
from partitur.store.db import Tx

_DEC = msgspec.json.Decoder()
_USER_ID, _ANONYMOUS_ID, _TYPE, _BODY = 4, 5, 2, 9  # in an event log row (ingest.rows.Row)
_REJECTED_BODY = 8  # in a rejected store row (plan.enforce.Record[0])


class Batch(Protocol):
    """One request's share of a group commit."""

    rows: Sequence[Sequence[Any]]
    rejected: Sequence[tuple[Any, ...]]


_hash = functools.lru_cache(maxsize=65_536)(identifier_hash)


class SuppressionCheck:
    """``check(tx, batches)`` removes rows and rejected records that carry a suppressed
    identifier from each batch, in place; returns how many it removed."""

    def __init__(self, rules: IdentityRules) -> None:
        self.rules = rules

    def _row_keys(self, row: Sequence[Any]) -> set[str]:
        keys = set()
        for kind, at in (("user_id", _USER_ID), ("anonymous_id", _ANONYMOUS_ID)):
            if row[at] is not None:
                value = self.rules.normalise(kind, row[at])
                if value is not None:
                    keys.add(f"{kind}:{value}")
        if row[_TYPE] == "alias":  # previousId is only in the body
            keys |= self._body_keys(row[_BODY], contact=False)
        return keys

    def _body_keys(self, body: str | bytes, *, contact: bool) -> set[str]:
        try:
            message = _DEC.decode(body)
        except msgspec.DecodeError:
            return set()
        return carried_keys(message, self.rules, contact=contact) if isinstance(
            message, dict) else set()

    def __call__(self, tx: Tx, batches: Sequence[Batch]) -> int:
        if tx.one("SELECT 1 FROM suppressions LIMIT 1") is None:
            return 0
        row_keys = [[self._row_keys(row) for row in b.rows] for b in batches]
        record_keys = [
            [self._body_keys(r[0][_REJECTED_BODY], contact=True) for r in b.rejected]
            for b in batches
        ]
        every = {k for group in (*row_keys, *record_keys) for keys in group for k in keys}
        suppressed = self.suppressed(tx, every)
        if not suppressed:
            return 0
        dropped = 0
        for batch, rows_k, records_k in zip(batches, row_keys, record_keys, strict=True):
            rows = [r for r, k in zip(batch.rows, rows_k, strict=True) if not k & suppressed]
            records = [r for r, k in zip(batch.rejected, records_k, strict=True)
                       if not k & suppressed]
            dropped += len(batch.rows) - len(rows) + len(batch.rejected) - len(records)
            batch.rows, batch.rejected = rows, records
        return dropped

    def suppressed(self, tx: Tx, keys: set[str]) -> set[str]:
        """The keys among ``keys`` whose identifier was erased."""
        by_hash = {_hash(*key.split(":", 1)): key for key in keys}
        hashes = sorted(by_hash)
        found: set[str] = set()
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(by_hash[r[0]] for r in tx.execute(
                f"SELECT hash FROM suppressions WHERE hash IN ({marks})", chunk))
        return found
