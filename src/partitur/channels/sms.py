"""SMS through an HTTP provider shaped like Twilio's Messages API.

``POST {PARTITUR_SMS_URL}/2010-04-01/Accounts/{sid}/Messages.json`` with a form body ``To``,
``From`` (or ``MessagingServiceSid``), ``Body``; HTTP Basic auth ``sid:token``; the delivery
key in an ``Idempotency-Key`` header. The provider answers 201 with ``{"sid": "SM…",
"status": "queued"}``; a 4xx with ``{"code", "message"}`` is a final failure (an invalid
number, say), 429 and 5xx are retried. Point ``PARTITUR_SMS_URL`` at
``https://api.twilio.com`` or at any gateway that speaks the same shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from partitur.channels.base import DeliveryError, Envelope, Receipt
from partitur.channels.http import make_client, network_error, response_error

MAX_BODY = 1600  # Twilio's limit on one message's characters


class SmsTransport:
    def __init__(
        self,
        base_url: str,
        account_sid: str,
        auth_token: str,
        sender: str,
        *,
        timeout: float,
        now_s: Callable[[], float],
        concurrency: int = 16,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.sender = sender
        self.now_s = now_s
        self.client = make_client(
            timeout, max(1, concurrency), auth=httpx.BasicAuth(account_sid, auth_token)
        )
        self._slots = asyncio.Semaphore(max(1, concurrency))

    async def send(self, message: Envelope) -> Receipt:
        if not message.to:
            raise DeliveryError("no phone number to send to", retryable=False)
        text = str(message.content.get("text", ""))
        if len(text) > MAX_BODY:
            raise DeliveryError(
                f"the SMS is {len(text)} characters; at most {MAX_BODY} can be sent",
                retryable=False,
            )
        form = {"To": message.to, "Body": text}
        form["MessagingServiceSid" if self.sender.startswith("MG") else "From"] = self.sender
        try:
            async with self._slots:
                response = await self.client.post(
                    self.url, data=form, headers={"Idempotency-Key": message.key}
                )
        except httpx.HTTPError as exc:
            raise network_error(exc, "SMS provider") from None
        error = response_error(response, self.now_s(), "SMS provider")
        if error is not None:
            raise error
        sid = None
        try:
            reply = response.json()
            sid = reply.get("sid") if isinstance(reply, dict) else None
        except ValueError:
            pass
        return Receipt(provider_id=str(sid) if sid else None)

    async def aclose(self) -> None:
        await self.client.aclose()
