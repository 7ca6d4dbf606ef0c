"""Collection: the Segment-compatible tracking API, from request bytes to the event log.

- :mod:`~partitur.ingest.routes`: the HTTP endpoints (``/v1/track`` ... ``/v1/batch``).
- :mod:`~partitur.ingest.decode`: bytes to validated messages (size limits, gzip, JSON errors).
- :mod:`~partitur.ingest.rows`: messages to rows for the log (Spec rules, clock skew, size).
- :mod:`~partitur.ingest.message`: the Segment Spec message, as msgspec types.
- :mod:`~partitur.ingest.ratelimit`: per-source token buckets.
- :mod:`~partitur.ingest.commit`: many requests' rows in one transaction (group commit).
"""

from partitur.ingest.decode import Decoded, Limits, decode
from partitur.ingest.message import Message
from partitur.ingest.rows import to_rows

__all__ = ["Decoded", "Limits", "Message", "decode", "to_rows"]
