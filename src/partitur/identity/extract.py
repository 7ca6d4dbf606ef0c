"""Which identifiers an event carries, normalised, with blocked values removed. Pure."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers

BUILTIN_TYPES = ("user_id", "email", "phone", "device_id", "anonymous_id")


@dataclass(frozen=True, slots=True)
class Identifier:
    type: str
    value: str

    @property
    def key(self) -> str:
        return f"{self.type}:{self.value}"

    def as_json(self) -> dict[str, str]:
        return {"type": self.type, "value": self.value}


def identifier_hash(type_: str, value: str) -> str:
    """How erased identifiers are remembered: a hash, never the value."""
    return hashlib.sha256(f"{type_}:{value}".encode()).hexdigest()


def normalise_email(value: str) -> str | None:
    value = value.strip().lower()
    if value.startswith("mailto:"):
        value = value[7:]
    if "@" not in value or value.startswith("@") or value.endswith("@") or " " in value:
        return None
    return value


@functools.lru_cache(maxsize=65_536)
def normalise_phone(value: str, region: str = "US") -> str | None:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


@dataclass(frozen=True)
class IdentityRules:
    blocked: frozenset[str] = frozenset(
        {"null", "undefined", "0", "-1", "anonymous", "nil", "none", "n/a", ""}
    )
    limits: Mapping[str, int] | None = None
    max_identifiers: int = 100
    custom_types: Mapping[str, str] | None = None
    priority: tuple[str, ...] = BUILTIN_TYPES
    phone_region: str = "US"

    def limit(self, type_: str) -> int | None:
        return (self.limits or {}).get(type_)

    def rank(self, type_: str) -> int:
        try:
            return self.priority.index(type_)
        except ValueError:
            return len(self.priority)

    def normalise(self, type_: str, raw: Any) -> str | None:
        """The canonical value of an identifier, or None if it is blocked or invalid."""
        if raw is None or isinstance(raw, bool | dict | list):
            return None
        value = raw if isinstance(raw, str) else str(raw)
        value = value.strip()
        if value.lower() in self.blocked or len(value) > 512:
            return None
        if type_ == "email":
            return normalise_email(value)
        if type_ == "phone":
            return normalise_phone(value, self.phone_region)
        return value


def _path(doc: Mapping[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def extract(message: Mapping[str, Any], rules: IdentityRules) -> list[Identifier]:
    """Identifiers in priority order (highest first), de-duplicated.

    ``message`` is the stored event (Segment field names). ``alias`` carries ``previousId``:
    it is taken as an anonymous id unless it looks like an email.
    """
    found: list[tuple[str, Any]] = [
        ("user_id", message.get("userId")),
        ("anonymous_id", message.get("anonymousId")),
    ]
    traits = message.get("traits") if message.get("type") == "identify" else None
    context = message.get("context") or {}
    ctx_traits = context.get("traits") if isinstance(context, Mapping) else None
    for source in (traits, ctx_traits):
        if isinstance(source, Mapping):
            found.append(("email", source.get("email")))
            found.append(("phone", source.get("phone")))
    if isinstance(context, Mapping):
        device = context.get("device")
        if isinstance(device, Mapping):
            found.append(("device_id", device.get("id")))
        external = context.get("externalIds")
        if isinstance(external, list):
            for item in external:
                if isinstance(item, Mapping) and isinstance(item.get("type"), str):
                    kind = item["type"]
                    if kind in BUILTIN_TYPES or kind in (rules.custom_types or {}):
                        found.append((kind, item.get("id")))
    if message.get("type") == "alias":
        previous = message.get("previousId")
        found.append(("anonymous_id", previous))
    for kind, path in (rules.custom_types or {}).items():
        found.append((kind, _path(message, path)))
    return _unique(found, rules)


def _unique(found: Iterable[tuple[str, Any]], rules: IdentityRules) -> list[Identifier]:
    seen: set[str] = set()
    out: list[Identifier] = []
    for kind, raw in found:
        value = rules.normalise(kind, raw)
        if value is None:
            continue
        ident = Identifier(kind, value)
        if ident.key not in seen:
            seen.add(ident.key)
            out.append(ident)
    out.sort(key=lambda i: rules.rank(i.type))
    return out
