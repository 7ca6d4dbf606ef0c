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
        168, description="How long a `messageId` is remembered for de-duplication (>= 24)."
    )
    commit_max_events: int = Field(
        20_000, description="Most events written in one group commit."
    )
    sqlite_synchronous: str = Field(
        "FULL",
        description="SQLite `synchronous` pragma: FULL survives power loss, NORMAL only "
        "process crashes.",
    )
    worker_batch: int = Field(2000, description="Most events the profile worker takes per batch.")
    worker_enabled: bool = Field(
        True, description="Run the identity and profile worker inside `partitur serve`."
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

    @property
    def is_postgres(self) -> bool:
        return bool(self.database_url)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "partitur.db"


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
