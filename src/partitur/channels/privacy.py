"""What erasing a person means for the channels: their messages (the outbox rows, which hold
the triggering event and any address given for a test run) and their stored web messages go.

Erasure (``partitur.privacy.erase``) calls :func:`erase_deliveries` with every profile id of
the person, in its transaction. Nothing is sent to an erased person in any case: the
dispatcher suppresses messages whose profile no longer exists.
"""

from __future__ import annotations

from collections.abc import Sequence

from partitur.store.db import Tx, chunks


def erase_deliveries(tx: Tx, profile_ids: Sequence[str]) -> dict[str, int]:
    counts = {"deliveries_erased": 0, "web_messages_erased": 0}
    for chunk in chunks(list(profile_ids)):
        marks = ",".join("?" * len(chunk))
        counts["web_messages_erased"] += len(
            tx.execute(f"DELETE FROM web_messages WHERE profile_id IN ({marks}) RETURNING key",
                       chunk)
        )
        counts["deliveries_erased"] += len(
            tx.execute(f"DELETE FROM outbox WHERE profile_id IN ({marks}) RETURNING key", chunk)
        )
    return counts
