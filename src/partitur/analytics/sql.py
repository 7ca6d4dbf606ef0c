"""Event matches and property paths as DuckDB SQL over the Parquet columns.

Values always travel as query parameters; only paths become SQL text, and only as JSON path
parameters or as the names of known columns.
"""

from __future__ import annotations

from typing import Any

from partitur.analytics.columns import FLAT, JSON_COLUMNS
from partitur.analytics.spec import Condition, Match
from partitur.clock import from_us


class Params:
    """Collects the parameters of one statement, in order."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return "?"


def json_path(parts: list[str]) -> str:
    return "$" + "".join('."' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in parts)


def path_sql(path: str, p: Params) -> str:
    """The text value at ``path``: a column, or a value inside ``properties``/``context``/
    ``traits`` (a bare name means ``properties.<name>``)."""
    column = FLAT.get(path)
    if column is not None:
        return column
    root, _, rest = path.partition(".")
    if root in JSON_COLUMNS and rest:
        return f"json_extract_string({root}, {p(json_path(rest.split('.')))})"
    return f"json_extract_string(properties, {p(json_path(path.split('.')))})"


def _num(expr: str) -> str:
    return f"TRY_CAST({expr} AS DOUBLE)"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def condition_sql(cond: Condition, p: Params) -> str:
    expr = path_sql(cond.path, p)
    op, value = cond.op, cond.value
    if op == "exists":
        return f"({expr} IS {'NOT ' if value else ''}NULL)"
    if op in ("gt", "gte", "lt", "lte"):
        sign = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        return f"({_num(expr)} {sign} {p(float(value))})"
    if op == "contains":
        return f"contains({expr}, {p(value)})"
    if op in ("eq", "neq"):
        if value is None:
            same = f"({expr} IS NULL)"
        elif isinstance(value, int | float) and not isinstance(value, bool):
            same = f"({_num(expr)} = {p(float(value))})"
        else:
            same = f"({expr} = {p(_text(value))})"
        if op == "eq":
            return same
        return f"(NOT coalesce({same}, false))"
    # in / not_in: strings compare as text, numbers as numbers
    parts = []
    texts = [_text(v) for v in value if not (isinstance(v, int | float) and
                                              not isinstance(v, bool))]
    numbers = [float(v) for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
    if texts:
        parts.append(f"{expr} IN ({', '.join(p(v) for v in texts)})")
    if numbers:
        parts.append(f"{_num(expr)} IN ({', '.join(p(v) for v in numbers)})")
    inside = "(" + " OR ".join(parts) + ")"
    return inside if op == "in" else f"(NOT coalesce({inside}, false))"


def match_sql(match: Match, p: Params) -> str:
    parts = []
    if match.event is not None:
        parts.append(f"event = {p(match.event)}")
    if match.type is not None:
        parts.append(f"type = {p(match.type)}")
    parts.extend(condition_sql(c, p) for c in match.where)
    return "(" + " AND ".join(parts) + ")"


def ts_literal(us: int) -> str:
    """A TIMESTAMPTZ literal for ``us`` (exact to the microsecond; lets DuckDB skip files and
    row groups by their statistics)."""
    when = from_us(us)
    return f"TIMESTAMPTZ '{when.strftime('%Y-%m-%d %H:%M:%S')}.{when.microsecond:06d}+00'"


def time_sql(lo_us: int | None, hi_us: int | None) -> str:
    parts = []
    if lo_us is not None:
        parts.append(f"ts >= {ts_literal(lo_us)}")
    if hi_us is not None:
        parts.append(f"ts < {ts_literal(hi_us)}")
    return " AND ".join(parts) or "true"
