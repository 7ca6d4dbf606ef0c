"""The channels' settings, checked once at start, and the transports they select."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from partitur.channels.base import DeliveryError, Envelope, Receipt, Transport
from partitur.channels.policy import Cap, QuietHours, parse_caps
from partitur.errors import InvalidInput
from partitur.settings import Settings
from partitur.templates.document import CHANNELS


@dataclass(frozen=True)
class ChannelConfig:
    caps: Mapping[str, Cap]
    quiet_hours: QuietHours | None
    quiet_policy: str
    default_zone: ZoneInfo
    purposes: Mapping[str, str]
    rate_limits: Mapping[str, float]
    max_attempts: int
    retry_base: float
    retry_max: float
    lease_us: int
    batch: int
    concurrency: int
    public_url: str
    phone_region: str = "US"

    @classmethod
    def from_settings(cls, settings: Settings) -> ChannelConfig:
        for name, mapping in (
            ("frequency_caps", settings.frequency_caps),
            ("channel_rate_limits", settings.channel_rate_limits),
            ("consent_purposes", settings.consent_purposes),
        ):
            unknown = sorted(set(mapping) - set(CHANNELS))
            if unknown:
                raise InvalidInput(
                    f"{name}: unknown channel '{unknown[0]}' (expected {', '.join(CHANNELS)})"
                )
        try:
            zone = ZoneInfo(settings.default_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(
                f"default_timezone '{settings.default_timezone}' is not an IANA time zone"
            ) from None
        if any(rate <= 0 for rate in settings.channel_rate_limits.values()):
            raise InvalidInput("channel_rate_limits must be above zero")
        if settings.delivery_max_attempts < 1:
            raise InvalidInput("delivery_max_attempts must be at least 1")
        public = settings.public_url or f"http://{settings.host}:{settings.port}"
        return cls(
            caps=parse_caps(settings.frequency_caps),
            quiet_hours=QuietHours.parse(settings.quiet_hours) if settings.quiet_hours else None,
            quiet_policy=settings.quiet_hours_policy,
            default_zone=zone,
            purposes=dict(settings.consent_purposes),
            rate_limits=dict(settings.channel_rate_limits),
            max_attempts=settings.delivery_max_attempts,
            retry_base=max(0.001, settings.delivery_retry_base),
            retry_max=max(0.001, settings.delivery_retry_max),
            lease_us=int(max(1.0, settings.delivery_lease_seconds) * 1_000_000),
            batch=max(1, settings.dispatcher_batch),
            concurrency=max(1, settings.dispatcher_concurrency),
            public_url=public.rstrip("/"),
            phone_region=settings.default_phone_region,
        )


class Unconfigured:
    """A channel without settings: every message fails, saying which settings are missing."""

    def __init__(self, channel: str, missing: str) -> None:
        self.reason = f"{channel} is not configured: set {missing}"

    async def send(self, message: Envelope) -> Receipt:
        raise DeliveryError(self.reason, retryable=False)

    async def aclose(self) -> None:
        return None


def build_transports(services: Any, now_s: Callable[[], float]) -> dict[str, Transport]:
    """One transport per channel from the settings (called inside the dispatcher's loop)."""
    from partitur.channels.email import SmtpConfig, SmtpTransport
    from partitur.channels.sms import SmsTransport
    from partitur.channels.web import WebTransport
    from partitur.channels.webhook import WebhookTransport

    s: Settings = services.settings
    out: dict[str, Transport] = {}
    if s.smtp_url and s.smtp_from:
        config = SmtpConfig.from_url(s.smtp_url, timeout=s.smtp_timeout)
        out["email"] = SmtpTransport(config, s.smtp_from, connections=s.smtp_connections)
    else:
        out["email"] = Unconfigured("email", "PARTITUR_SMTP_URL and PARTITUR_SMTP_FROM")
    if s.sms_url and s.sms_account_sid and s.sms_auth_token and s.sms_from:
        out["sms"] = SmsTransport(
            s.sms_url,
            s.sms_account_sid,
            s.sms_auth_token,
            s.sms_from,
            timeout=s.webhook_timeout,
            now_s=now_s,
            concurrency=s.http_concurrency,
        )
    else:
        out["sms"] = Unconfigured(
            "sms",
            "PARTITUR_SMS_URL, PARTITUR_SMS_ACCOUNT_SID, PARTITUR_SMS_AUTH_TOKEN and "
            "PARTITUR_SMS_FROM",
        )
    out["webhook"] = WebhookTransport(
        s.webhook_secret, timeout=s.webhook_timeout, now_s=now_s, concurrency=s.http_concurrency
    )
    out["web"] = WebTransport(services.db, services.clock.now_us)
    return out
