"""How stored bodies are narrowed before they are decoded and compared precisely."""

from __future__ import annotations

import json
import sqlite3

from partitur.identity.extract import Identifier
from partitur.privacy.find import like_filter


def matches(idents: list[Identifier], bodies: list[object], *, exact: bool) -> list[bool]:
    narrow = like_filter(idents, "body", exact=exact)
    assert narrow is not None
    where, params = narrow
    conn = sqlite3.connect(":memory:")
    conn.execute("PRAGMA case_sensitive_like = ON")  # as PostgreSQL compares
    conn.execute("CREATE TABLE t (n INTEGER, body TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)",
                     [(n, json.dumps(b, separators=(",", ":"))) for n, b in enumerate(bodies)])
    hits = {r[0] for r in conn.execute(f"SELECT n FROM t WHERE {where}", params)}
    return [n in hits for n in range(len(bodies))]


def test_exact_patterns_take_whole_values_only() -> None:
    ids = [Identifier.of("user_id", "42"), Identifier.of("email", "kim@example.com")]
    bodies = [
        {"userId": "42"}, {"userId": "420"}, {"context": {"device": {"id": 42}}},
        {"traits": {"email": "Kim@Example.COM"}}, {"traits": {"email": "tkim@example.com"}},
        {"properties": {"n": 1420}},
    ]
    assert matches(ids, bodies, exact=True) == [True, False, True, True, False, False]
    assert matches(ids, bodies, exact=False) == [True, True, True, True, True, True]


def test_phones_match_by_field_and_unsafe_values_turn_narrowing_off() -> None:
    phone = [Identifier.of("phone", "+4915112345678")]
    assert matches(phone, [{"traits": {"phone": "0151 12345678"}}, {"userId": "x"}],
                   exact=True) == [True, False]
    for value in ("zoë", 'say "hi"', "1e+20", "tab\there"):
        assert like_filter([Identifier.of("user_id", value)], "body") is None
    assert like_filter([], "body") == ("1 = 0", [])
