"""What the demo prints about the API's answers: plain functions from JSON to lines."""

from __future__ import annotations

from typing import Any


def _pct(rate: float | None) -> str:
    return "     -" if rate is None else f"{rate * 100:5.1f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"


def describe_funnel(answer: dict[str, Any]) -> list[str]:
    """The steps with counts and conversion, then the breakdown as first → last step."""
    steps = answer["steps"]
    width = max(len(s["name"]) for s in steps)
    lines = []
    for step in steps:
        line = f"{step['name']:<{width}}  {step['count']:>8,}  {_pct(step['conversion_rate'])}"
        if step["index"]:
            line += f"  ({_pct(step['conversion_from_previous']).strip()} of the step before"
            median = _duration(step.get("median_time_to_convert_s"))
            line += f", median {median} later)" if median else ")"
        lines.append(line)
    groups = answer.get("breakdown") or []
    if groups:
        lines.append(f"by first-touch campaign source ({steps[0]['name']} → {steps[-1]['name']}):")
        for group in groups:
            first, last = group["steps"][0], group["steps"][-1]
            value = group["value"] if group["value"] is not None else "(direct)"
            lines.append(f"  {value!s:<14} {first['count']:>7,} → {last['count']:>6,}  "
                         f"{_pct(last['conversion_rate'])}")
    return lines


def describe_journeys(stats: dict[str, dict[str, Any]]) -> list[str]:
    """A line per journey: who entered, is in it, converted; where people wait; split arms."""
    width = max(len(k) for k in stats)
    lines = []
    for key, s in stats.items():
        line = (f"{key:<{width}}  {s['entered']:>5,} entered, {s['active']:>5,} in it, "
                f"{s['converted']:>4,} converted")
        waiting = [f"{st['step']} {st['waiting']:,}" for st in s["steps"] if st["waiting"]]
        if waiting:
            line += "; waiting: " + ", ".join(waiting)
        lines.append(line)
        sends = [st for st in s["steps"] if st.get("arms")]
        for st in sends:
            arms = ", ".join(f"{arm} {a['entered']:,} ({a['converted']:,} converted)"
                             for arm, a in st["arms"].items())
            lines.append(f"{'':<{width}}  split '{st['step']}': {arms}")
    return lines


def describe_person(profile: dict[str, Any], base_url: str) -> list[str]:
    """Who they are, which of their identifiers were linked, and where to look."""
    traits = profile.get("traits", {})
    name = " ".join(str(traits[k]) for k in ("first_name", "last_name") if k in traits)
    ids = profile.get("identifiers", [])
    by_type: dict[str, int] = {}
    for identifier in ids:
        by_type[identifier["type"]] = by_type.get(identifier["type"], 0) + 1
    kinds = ", ".join(f"{n} {t.replace('_', ' ')}{'s' if n > 1 else ''}"
                      for t, n in sorted(by_type.items()))
    merged = len(profile.get("merged_from", []))
    pid = profile["id"]
    return [
        f"{name or pid} ({traits.get('email', '')}): {profile.get('event_count', 0):,} events, "
        f"{kinds}; {merged} anonymous profile{'s' if merged != 1 else ''} merged in",
        f"timeline: {base_url}/api/v1/profiles/{pid}/events   "
        f"why linked: {base_url}/api/v1/profiles/{pid}/identity",
    ]
