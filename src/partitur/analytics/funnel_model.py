"""A funnel request, parsed and checked (errors name the field and step)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from partitur.analytics.spec import Match, bad, check_path, duration_us, parse_match, time_range

ORDERS = ("ordered", "strict", "any")
ATTRIBUTIONS = ("first_touch", "last_touch", "all_events")
MAX_STEPS = 20
MAX_ANY_OVERLAP_STEPS = 12
DEFAULT_WINDOW = "14d"


@dataclass(frozen=True)
class Exclusion:
    match: Match
    from_step: int  # 0-based, like the steps' ``index``
    to_step: int


@dataclass(frozen=True)
class Breakdown:
    path: str
    attribution: str  # first_touch | last_touch | all_events | step
    step: int | None  # for attribution "step:N" (0-based)
    limit: int

    @property
    def name(self) -> str:
        return f"step:{self.step}" if self.attribution == "step" else self.attribution


@dataclass(frozen=True)
class FunnelQuery:
    steps: tuple[Match, ...]
    step_names: tuple[str, ...]
    window_us: int
    order: str
    from_us: int
    to_us: int
    exclusions: tuple[Exclusion, ...]
    breakdown: Breakdown | None
    people_limit: int

    def echo(self) -> dict[str, Any]:
        from partitur.clock import iso

        return {
            "from": iso(self.from_us), "to": iso(self.to_us),
            "window_s": self.window_us / 1e6, "order": self.order,
            "breakdown": None if self.breakdown is None else {
                "property": self.breakdown.path, "attribution": self.breakdown.name},
        }


FUNNEL_KEYS = {"steps", "window", "order", "from", "to", "exclusions", "breakdown",
               "people_limit", "format", "people", "from_step", "to_step", "bins"}


def parse_funnel(doc: Any, now_us: int) -> FunnelQuery:
    if not isinstance(doc, dict):
        raise bad("$", "expected a JSON object with 'steps'")
    unknown = set(doc) - FUNNEL_KEYS
    if unknown:
        raise bad(sorted(unknown)[0], "unknown key")
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise bad("steps", "expected a list of steps such as [{\"event\": \"Signed Up\"}, ...]")
    if len(raw_steps) > MAX_STEPS:
        raise bad("steps", f"at most {MAX_STEPS} steps")
    steps = tuple(parse_match(s, f"steps[{i}]") for i, s in enumerate(raw_steps))
    names = tuple(
        str(s.get("name")) if isinstance(s, dict) and s.get("name") else m.label
        for s, m in zip(raw_steps, steps, strict=True)
    )
    order = doc.get("order", "ordered")
    if order not in ORDERS:
        raise bad("order", f"expected one of {', '.join(ORDERS)}")
    window = duration_us(doc.get("window", DEFAULT_WINDOW), "window")
    lo, hi = time_range(doc, now_us)
    exclusions = tuple(
        _exclusion(e, f"exclusions[{i}]", len(steps), order)
        for i, e in enumerate(_list(doc.get("exclusions"), "exclusions"))
    )
    breakdown = _breakdown(doc.get("breakdown"), len(steps))
    people_limit = doc.get("people_limit", 10)
    if isinstance(people_limit, bool) or not isinstance(people_limit, int) or not (
            0 <= people_limit <= 1000):
        raise bad("people_limit", "expected an integer from 0 to 1000")
    return FunnelQuery(steps=steps, step_names=names, window_us=window, order=order,
                       from_us=lo, to_us=hi, exclusions=exclusions, breakdown=breakdown,
                       people_limit=people_limit)


def _list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad(field, "expected a list")
    return value


def _exclusion(doc: Any, field: str, n: int, order: str) -> Exclusion:
    if not isinstance(doc, dict):
        raise bad(field, "expected {\"event\": ..., \"from_step\": 0, \"to_step\": 1}")
    match = parse_match({k: v for k, v in doc.items() if k not in ("from_step", "to_step")},
                        field)
    lo = doc.get("from_step", 0)
    hi = doc.get("to_step", n - 1)
    for name, value in (("from_step", lo), ("to_step", hi)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
            raise bad(f"{field}.{name}", f"expected a step index from 0 to {n - 1}")
    if lo >= hi:
        raise bad(f"{field}.to_step", "must be after from_step")
    if order == "any" and (lo, hi) != (0, n - 1):
        raise bad(field, "in an 'any' order funnel an exclusion spans the whole funnel "
                  f"(from_step 0, to_step {n - 1})")
    return Exclusion(match=match, from_step=lo, to_step=hi)


def _breakdown(doc: Any, n: int) -> Breakdown | None:
    if doc is None:
        return None
    if isinstance(doc, str):
        doc = {"property": doc}
    if not isinstance(doc, dict):
        raise bad("breakdown", "expected {\"property\": ..., \"attribution\": ...}")
    unknown = set(doc) - {"property", "attribution", "limit"}
    if unknown:
        raise bad(f"breakdown.{sorted(unknown)[0]}", "unknown key")
    path = check_path(doc.get("property"), "breakdown.property")
    attribution = doc.get("attribution", "first_touch")
    step = None
    if isinstance(attribution, str) and attribution.startswith("step:"):
        number = attribution[5:]
        if not number.isdigit() or not 0 <= int(number) < n:
            raise bad("breakdown.attribution", f"'step:N' needs N from 0 to {n - 1}")
        step, attribution = int(number), "step"
    elif attribution not in ATTRIBUTIONS:
        raise bad("breakdown.attribution",
                  "expected first_touch, last_touch, all_events or step:N")
    limit = doc.get("limit", 25)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 500:
        raise bad("breakdown.limit", "expected an integer from 1 to 500")
    return Breakdown(path=path, attribution=attribution, step=step, limit=limit)
