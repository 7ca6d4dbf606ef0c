"""Settings: one table, three sources.

Precedence, lowest to highest: defaults, ``partitur.toml`` in the data directory,
``PARTITUR_<NAME>`` environment variables, command-line options. ``docs/settings.md`` is
generated from this model (``partitur settings --markdown``) and a test keeps it in step.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from partitur.errors import InvalidInput

ENV_PREFIX = "PARTITUR_"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Field(
        Path("partitur-data"),
        description="Data directory: the SQLite database and `partitur.toml` live here.",
    )
    database_url: str | None = Field(
        None,
        description="PostgreSQL URL (`postgresql://user@host:5432/db`). Unset: embedded SQLite "
        "in the data directory.",
    )
    host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    port: int = Field(8910, description="Port the HTTP server listens on.")
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")

    max_event_bytes: int = Field(32 * 1024, description="Largest accepted event, in bytes.")
    max_request_bytes: int = Field(
        500 * 1024, description="Largest accepted request body (after gzip decoding), in bytes."
    )
    max_batch_events: int = Field(2500, description="Most events accepted in one batch call.")
    max_future_seconds: int = Field(
        86_400,
        description="An event timestamp further than this in the future is clamped to "
        "`receivedAt` and flagged `timestamp_clamped`.",
    )
    unknown_fields: Literal["reject", "ignore"] = Field(
        "reject",
        description="Top-level event keys outside the Segment Spec (and the extras official "
        "clients send): `reject` (400 naming the key) or `ignore` (dropped, not stored).",
    )
    rate_limit: float = Field(
        0,
        description="Default events per second per source (0: unlimited). A source's own "
        "limit, set with `partitur sources set`, wins.",
    )
    dedup_hours: int = Field(
        24,
        description="How long a `messageId` is remembered for de-duplication (>= 24). "
        "The embedded store keeps the window's ids in memory, 16 bytes each (about 140 MB "
        "for 100 events/s around the clock with 24 h); PostgreSQL keeps them in a table.",
    )
    commit_max_events: int = Field(
        20_000, description="Most events written in one group commit."
    )
    sqlite_synchronous: str = Field(
        "FULL",
        description="SQLite `synchronous` pragma: FULL survives power loss, NORMAL only "
        "process crashes.",
    )
    worker_batch: int = Field(
        5000,
        description="Most events the profile worker takes per batch (larger batches catch up "
        "with a backlog faster; each is one transaction).",
    )
    worker_failed_attempts: int = Field(
        3, ge=1,
        description="Failures of one event on its own (not of the store) before the worker "
        "sets it aside in the failed events (`GET /api/v1/events/failed`) and goes on.",
    )
    worker_enabled: bool = Field(
        True, description="Run the identity and profile worker inside `partitur serve`."
    )
    segment_events: bool = Field(
        True, description="Write each segment entry and exit to the event log as a `Segment "
        "Entered` / `Segment Exited` track call from the `partitur-segments` source.",
    )
    worker_processes: int | None = Field(
        None, ge=0, le=64,
        description="How many `partitur worker` processes `partitur serve` starts for profiles, "
        "segments, journeys and deliveries (more than 1 needs PostgreSQL; each takes a range "
        "of the partitions), keeping only the API and the ingest path in its own process, so "
        "that more than one core works. Unset: 1 with the system clock, 0 with a manual one. "
        "0: all of it as threads of the server.",
    )
    partitions: int = Field(
        256, description="Fixed number of logical partitions profiles hash into."
    )
    identity_blocked_values: list[str] = Field(
        ["null", "undefined", "0", "-1", "anonymous", "nil", "none", "n/a", ""],
        description="Identifier values never linked (compared case-insensitively).",
    )
    identity_limits: dict[str, int] = Field(
        {"user_id": 1},
        description="Most identifiers of a type one profile may hold; a second `user_id` "
        "starts a new profile instead of merging two customers.",
    )
    identity_max_identifiers: int = Field(
        100, description="Cap on identifiers per profile; merges that exceed it are refused."
    )
    identity_custom_types: dict[str, str] = Field(
        {},
        description="Custom identifier types: type name → trait or context path, e.g. "
        '`{crm_id = "traits.crm_id"}`.',
    )
    identity_priority: list[str] = Field(
        ["user_id", "email", "phone", "device_id", "anonymous_id"],
        description="Order in which identifiers decide which profile an event belongs to.",
    )
    trait_survivorship: dict[str, str] = Field(
        {},
        description="Per-trait rule: `latest` (default), `first` (earliest timestamp wins) or "
        "`never_overwrite` (first value stored is kept).",
    )
    default_phone_region: str = Field(
        "US", description="Region assumed for phone numbers written without a country code."
    )
    clock: str = Field("system", description="`system`, or `manual` for tests and demos.")

    # -- channels ---------------------------------------------------------------------------
    public_url: str | None = Field(
        None,
        description="Base URL people reach this server at, for links in messages (unsubscribe). "
        "Unset: `http://<host>:<port>`.",
    )
    smtp_url: str | None = Field(
        None,
        description="SMTP server for email: `smtp://user:pass@host:587` (STARTTLS when "
        "offered; `?starttls=always|never`), `smtps://…:465` (TLS), `?cafile=`, "
        "`?verify=false`. Unset: email deliveries fail with that reason.",
    )
    smtp_from: str | None = Field(
        None, description='Sender of email, e.g. `"Acme <news@acme.example>"`.'
    )
    smtp_timeout: float = Field(30.0, description="Seconds an SMTP exchange may take.")
    smtp_connections: int = Field(
        4, description="SMTP connections kept open and used at once (each message takes four "
        "round trips: more connections, more messages a second; see docs/benchmarks.md)."
    )
    sms_url: str | None = Field(
        None,
        description="Base URL of a Twilio-shaped SMS API (`https://api.twilio.com`). Unset: "
        "SMS deliveries fail with that reason.",
    )
    sms_account_sid: str | None = Field(None, description="SMS API account SID (Basic user).")
    sms_auth_token: str | None = Field(None, description="SMS API auth token (Basic password).")
    sms_from: str | None = Field(
        None, description="Sender number (E.164) or messaging service SID (`MG…`) for SMS."
    )
    webhook_secret: str | None = Field(
        None,
        description="Key of the `X-Partitur-Signature` HMAC-SHA256 on webhook requests. "
        "Unset: webhooks are sent unsigned.",
    )
    webhook_timeout: float = Field(10.0, description="Seconds a webhook or SMS request may take.")
    http_concurrency: int = Field(
        16, description="Most webhook requests, and most SMS requests, in flight at once."
    )
    delivery_max_attempts: int = Field(
        8,
        description="Attempts per message before a retryable failure becomes `dead` "
        "(dead-letter list).",
    )
    delivery_retry_base: float = Field(
        5.0, description="Seconds before the first retry; doubles each attempt, with jitter."
    )
    delivery_retry_max: float = Field(3600.0, description="Longest wait between two attempts.")
    delivery_lease_seconds: float = Field(
        60.0,
        description="How long a message may stay `sending` before another dispatcher takes "
        "it over and sends it again with the same idempotency key.",
    )
    dispatcher_enabled: bool = Field(
        True, description="Run the outbox dispatcher inside `partitur serve` and `worker`."
    )
    dispatcher_batch: int = Field(200, description="Most messages claimed at once.")
    dispatcher_concurrency: int = Field(32, description="Most messages in flight at once.")
    frequency_caps: dict[str, str] = Field(
        {},
        description='Per channel, most marketing messages per person per window, e.g. '
        '`{email = "1/1d", sms = "2/7d"}`; over the cap: suppressed.',
    )
    quiet_hours: str | None = Field(
        None,
        description="Local time range with no marketing messages, e.g. `21:00-08:00`, in the "
        "person's time zone (trait `timezone`, else the event's `context.timezone`).",
    )
    quiet_hours_policy: Literal["defer", "skip"] = Field(
        "defer",
        description="In quiet hours: `defer` to their end, or `skip` (suppressed).",
    )
    default_timezone: str = Field(
        "UTC", description="Time zone for people whose own is unknown (IANA name)."
    )
    channel_rate_limits: dict[str, float] = Field(
        {}, description='Per channel, most messages sent per second, e.g. `{sms = 10}`.'
    )
    consent_purposes: dict[str, str] = Field(
        {"email": "marketing_email", "sms": "sms"},
        description="Per channel, the consent purpose a marketing message needs (granted "
        "explicitly); channels not listed need none.",
    )
    unsubscribe_secret: str | None = Field(
        None,
        description="Key that signs unsubscribe links. Unset: one is generated and kept in "
        "the store.",
    )
    segments_tick_seconds: float = Field(
        1.0,
        description="How often the segment runner looks for memberships due to change by time "
        "passing (and for backfill work), in seconds.",
    )
    segments_batch: int = Field(
        500,
        description="People evaluated per transaction by segment backfills and due changes.",
    )

    journeys_tick_seconds: float = Field(
        0.5,
        description="How often the journey timer runner reads the due index (it also sleeps "
        "until the earliest wake time it knows of), in seconds.",
    )
    journeys_lookahead_seconds: float = Field(
        300.0,
        description="How far ahead the timer runner keeps wake times in memory, in seconds.",
    )
    journeys_batch: int = Field(
        500, description="Due journey instances claimed per transaction by the timer runner."
    )
    journeys_schedule_max: int = Field(
        100_000,
        description="Most segment members a scheduled journey enters at one firing.",
    )
    journeys_test_address: str | None = Field(
        None,
        description="Default address (email) or number (SMS) that journey test runs send to "
        "when the request names none.",
    )

    analytics_dir: Path | None = Field(
        None,
        description="Directory of the analytics Parquet files (`manifest.json`, `events/`). "
        "Unset: `analytics` in the data directory.",
    )
    analytics_enabled: bool = Field(
        True,
        description="Run the analytics projector (event log to Parquet) inside `partitur serve` "
        "and `partitur worker`.",
    )
    analytics_process: bool = Field(
        True,
        description="`partitur serve` with the system clock runs the analytics projector in a "
        "`partitur worker --role analytics` process of its own — always when it starts "
        "worker processes, and with `worker_processes = 0` while this is on — so that "
        "writing Parquet does not take the interpreter from ingestion and the profile "
        "worker. Off with `worker_processes = 0`, or with a manual clock: a thread of the "
        "server.",
    )
    analytics_flush_seconds: float = Field(
        1.0, description="How often the projector writes newly processed events to Parquet."
    )
    analytics_batch: int = Field(
        50_000, description="Most events the projector writes to one new Parquet file."
    )
    analytics_alias_seconds: float = Field(
        5.0, description="At most how often the projector rewrites the alias table while "
        "merges keep coming (a merge counts retroactively in analytics within this time).",
    )
    analytics_compact_seconds: float = Field(
        60.0,
        description="How often small Parquet files are merged into larger ones (also when 32 "
        "small files wait).",
    )
    analytics_file_rows: int = Field(
        1_000_000, description="Rows a compacted Parquet file grows to."
    )
    analytics_query_timeout: float = Field(
        30.0, description="Seconds an analytics query may run before it is cancelled."
    )
    analytics_threads: int = Field(
        2, description="DuckDB threads per analytics query."
    )
    analytics_concurrency: int = Field(
        2, description="Analytics queries run at once (more wait their turn)."
    )
    analytics_memory_limit: str = Field(
        "2GB", description="DuckDB memory limit for analytics queries (spills to disk beyond)."
    )
    analytics_projector_memory_limit: str = Field(
        "256MB", description="DuckDB memory limit of the projector's compactions and rewrites "
        "(spills to disk beyond)."
    )

    @property
    def is_postgres(self) -> bool:
        return bool(self.database_url)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "partitur.db"

    @property
    def analytics_path(self) -> Path:
        return self.analytics_dir or self.data_dir / "analytics"


def _coerce_env(name: str, raw: str) -> Any:
    field = Settings.model_fields[name]
    annotation = str(field.annotation)
    if "dict" in annotation or "list" in annotation:
        import json

        try:
            return json.loads(raw)
        except ValueError as exc:
            raise InvalidInput(f"{ENV_PREFIX}{name.upper()} must be JSON: {exc}") from exc
    return raw


def load_settings(
    data_dir: Path | str | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Defaults < partitur.toml < PARTITUR_* < explicit overrides (None values ignored)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    chosen_dir = data_dir or env.get(f"{ENV_PREFIX}DATA_DIR") or "partitur-data"
    toml_path = Path(chosen_dir) / "partitur.toml"
    if toml_path.exists():
        try:
            values.update(tomllib.loads(toml_path.read_text()))
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"{toml_path}: {exc}") from exc
    for name in Settings.model_fields:
        key = f"{ENV_PREFIX}{name.upper()}"
        if key in env:
            values[name] = _coerce_env(name, env[key])
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["data_dir"] = Path(values.get("data_dir") or chosen_dir)
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(f"invalid settings: {problems}") from exc


def settings_markdown() -> str:
    """The settings table for docs/settings.md."""
    lines = [
        "| setting | environment variable | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = f"`{default}`" if default not in (None, "") else "—"
        desc = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{name}` | `{ENV_PREFIX}{name.upper()}` | {shown} | {desc} |")
    return "\n".join(lines) + "\n"
