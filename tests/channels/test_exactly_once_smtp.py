"""Our own SMTP path after a crash between "sent" and "recorded": SMTP has no idempotency key,
so the message is sent again once the lease runs out, with the same Message-ID (derived from
the message's key, so a receiving system can recognise the copy), the late result of the dead
sender is ignored, and the delivery is recorded and logged once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from partitur.channels import OutboundMessage
from partitur.channels.email import message_id
from partitur.clock import ManualClock
from tests.channels.conftest import Env, email_settings
from tests.channels.sinks import SmtpSink

MAIL = {"subject": "Your receipt", "text": "Thanks, {{ profile.traits.name }}"}


def test_a_resent_email_keeps_its_message_id_and_is_recorded_once(
    env_factory: Any, smtp: SmtpSink, clock: ManualClock
) -> None:
    env: Env = env_factory(**email_settings(smtp), delivery_lease_seconds=30)
    who = env.person("r", email="r@example.com", name="Ruth")
    env.enqueue(OutboundMessage(key="receipt-1", profile_id=who, channel="email", template=MAIL,
                                category="transactional", journey="orders", step_id="mail"))
    crashed = env.dispatcher()
    jobs, _ = crashed.claim(10)
    assert [job.row.key for job in jobs] == ["receipt-1"]

    async def send_and_die() -> Any:
        crashed._ensure_transports()
        try:
            return await crashed._send(jobs[0])
        finally:
            await crashed._close_transports()

    late = asyncio.run(send_and_die())  # handed to the SMTP server; the process dies here
    assert len(smtp.wait(1)) == 1
    assert env.status("receipt-1")["receipt-1"]["status"] == "sending"

    survivor = env.dispatcher()
    assert survivor.drain() == 0  # the lease still holds
    clock.advance(timedelta(seconds=31))
    assert survivor.drain() == 1
    mails = smtp.wait(2)
    expected = message_id("receipt-1", "Acme <news@acme.example>")
    assert [m.message["Message-ID"] for m in mails] == [expected, expected]
    status = env.status("receipt-1")["receipt-1"]
    assert status["status"] == "sent" and status["attempts"] == 2
    assert status["provider_id"] == expected

    crashed.record([late])  # the dead sender's answer arrives late: ignored
    assert env.status("receipt-1")["receipt-1"]["attempts"] == 2
    assert len(env.logged("Email Sent")) == 1
