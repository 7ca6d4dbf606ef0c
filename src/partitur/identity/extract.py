"""Which identifiers an event carries, normalised, with blocked values removed. Pure."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import phonenumbers

BUILTIN_TYPES = ("user_id", "email", "phone", "device_id", "anonymous_id")


class Identifier(NamedTuple):
    type: str
    value: str
    key: str  # "type:value", the graph's primary key

    @classmethod
    def of(cls, type_: str, value: str) -> Identifier:
        return cls(type_, value, f"{type_}:{value}")

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

    _ranks: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._ranks.update({t: i for i, t in enumerate(self.priority)})

    def rank(self, type_: str) -> int:
        return self._ranks.get(type_, len(self.priority))

    def normalise(self, type_: str, raw: Any) -> str | None:
        """The canonical value of an identifier, or None if it is blocked or invalid."""
        if type(raw) is str:
            value = raw.strip()
        elif raw is None or isinstance(raw, bool | dict | list):
            return None
        else:
            value = str(raw).strip()
        if value.lower() in self.blocked or len(value) > 512 or "\x00" in value:
            return None
        if type_ == "email":
            return normalise_email(value)
        if type_ == "phone":
            return normalise_phone(value, self.phone_region)
        return value


def _path(doc: Mapping[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def extract(message: dict[str, Any], rules: IdentityRules) -> list[Identifier]:
    """Identifiers in priority order (highest first), de-duplicated.

    ``message`` is the stored event (Segment field names, decoded JSON). ``alias`` carries
    ``previousId``, taken as an anonymous id. Runs once per processed event, so it sticks to
    plain dict operations.
    """
    found: list[tuple[str, Any]] = []
    value = message.get("userId")
    if value is not None:
        found.append(("user_id", value))
    value = message.get("anonymousId")
    if value is not None:
        found.append(("anonymous_id", value))
    kind = message.get("type")
    context = message.get("context")
    if kind == "identify":
        traits = message.get("traits")
        if type(traits) is dict:
            _contact(traits, found)
    if type(context) is dict:
        ctx_traits = context.get("traits")
        if type(ctx_traits) is dict:
            _contact(ctx_traits, found)
        device = context.get("device")
        if type(device) is dict and device.get("id") is not None:
            found.append(("device_id", device["id"]))
        external = context.get("externalIds")
        if type(external) is list:
            custom = rules.custom_types or {}
            for item in external:
                if (
                    type(item) is dict
                    and isinstance(item.get("type"), str)
                    and (item["type"] in BUILTIN_TYPES or item["type"] in custom)
                ):
                    found.append((item["type"], item.get("id")))
    if kind == "alias":
        found.append(("anonymous_id", message.get("previousId")))
    if rules.custom_types:
        for custom_kind, path in rules.custom_types.items():
            found.append((custom_kind, _path(message, path)))
    return _unique(found, rules)


def _contact(traits: dict[str, Any], found: list[tuple[str, Any]]) -> None:
    email = traits.get("email")
    if email is not None:
        found.append(("email", email))
    phone = traits.get("phone")
    if phone is not None:
        found.append(("phone", phone))


def _unique(found: list[tuple[str, Any]], rules: IdentityRules) -> list[Identifier]:
    out: list[Identifier] = []
    seen: set[str] = set()
    for kind, raw in found:
        value = rules.normalise(kind, raw)
        if value is None:
            continue
        key = f"{kind}:{value}"
        if key not in seen:
            seen.add(key)
            out.append(Identifier(kind, value, key))
    if len(out) > 1:
        out.sort(key=lambda i: rules.rank(i.type))
    return out
