"""Channels: the outbox, the dispatcher, the transports and the send-time policies.

The journey engine hands messages over with :func:`enqueue` (inside its own transaction) and
shows their fate with :func:`delivery_status`; :class:`Dispatcher` does the rest.
"""

from partitur.channels.base import DeliveryError, Envelope, Receipt, Transport
from partitur.channels.dispatcher import Dispatcher
from partitur.channels.outbox import (
    CATEGORIES,
    STATUSES,
    OutboundMessage,
    delivery_status,
    enqueue,
    notify,
)

__all__ = [
    "CATEGORIES",
    "STATUSES",
    "DeliveryError",
    "Dispatcher",
    "Envelope",
    "OutboundMessage",
    "Receipt",
    "Transport",
    "delivery_status",
    "enqueue",
    "notify",
]
