"""enqueue and delivery_status: the interface the journey engine uses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from partitur.channels import OutboundMessage, delivery_status, enqueue
from partitur.clock import ManualClock, iso
from partitur.errors import InvalidInput
from partitur.services import Services


def sms(key: str, **kw: Any) -> OutboundMessage:
    return OutboundMessage(key=key, profile_id="p1", channel="sms", template={"text": "hi"}, **kw)


def test_enqueue_is_idempotent_on_key(services: Services) -> None:
    now = services.clock.now_us()
    with services.db.transaction() as tx:
        assert enqueue(tx, [sms("a"), sms("b"), sms("a")], now) == 2
    with services.db.transaction() as tx:
        assert enqueue(tx, [sms("b"), sms("c")], now) == 1
        assert enqueue(tx, [], now) == 0
    with services.db.read() as tx:
        status = delivery_status(tx, ["a", "b", "c", "unknown"])
    assert sorted(status) == ["a", "b", "c"]
    assert status["a"]["status"] == "queued"
    assert status["a"]["attempts"] == 0 and status["a"]["sent_at"] is None
    assert status["a"]["due_at"] == iso(now)


def test_enqueue_rolls_back_with_the_callers_transaction(services: Services) -> None:
    with pytest.raises(RuntimeError), services.db.transaction() as tx:
        enqueue(tx, [sms("x")], services.clock.now_us())
        raise RuntimeError("the journey step failed")
    with services.db.read() as tx:
        assert delivery_status(tx, ["x"]) == {}


def test_not_before_and_journey_fields(services: Services, clock: ManualClock) -> None:
    later = clock.now() + timedelta(hours=2)
    message = sms("j", journey="welcome", version=3, step_id="discount",
                  instance_id="welcome:p1", not_before_us=int(later.timestamp() * 1e6),
                  category="transactional")
    with services.db.transaction() as tx:
        enqueue(tx, [message], services.clock.now_us())
    with services.db.read() as tx:
        status = delivery_status(tx, ["j"])["j"]
    assert status["due_at"] == iso(int(later.timestamp() * 1e6))
    assert (status["journey"], status["version"], status["step"]) == ("welcome", 3, "discount")
    assert status["category"] == "transactional" and status["channel"] == "sms"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channel": "fax"}, "unknown channel 'fax'"),
        ({"category": "promo"}, "category must be marketing or transactional"),
        ({"template": None}, "a sms message needs a template"),
        ({"channel": "webhook", "template": None}, "a webhook needs 'webhook' or a template"),
        ({"key": ""}, "needs a key"),
    ],
)
def test_bad_messages_are_refused(kwargs: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"key": "k", "profile_id": "p", "channel": "sms",
                            "template": {"text": "x"}}
    with pytest.raises(InvalidInput, match=message):
        OutboundMessage(**{**base, **kwargs})


def test_variables_must_be_json(services: Services) -> None:
    bad = sms("v", variables={"event": {"x": object()}})
    with pytest.raises(InvalidInput, match="variables are not JSON"), \
            services.db.transaction() as tx:
        enqueue(tx, [bad], services.clock.now_us())
