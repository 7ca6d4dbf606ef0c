"""Profile state folding: survivorship, consent and merging, with no store."""

from __future__ import annotations

from partitur.profiles.state import ProfileState, apply_event, merge_into, public_consent


def fold(state: ProfileState, event: dict[str, object], ts: int, seq: int,
         rules: dict[str, str] | None = None) -> None:
    apply_event(state, event, ts=ts, seq=seq, source_id="src", rules=rules or {})


def test_rules_latest_first_never_overwrite() -> None:
    s = ProfileState(id="p", part=0, created_at=0)
    rules = {"first_touch": "first", "locked": "never_overwrite"}
    fold(s, {"type": "identify", "traits": {"plan": "pro", "first_touch": "ad", "locked": 1}},
         ts=200, seq=2, rules=rules)
    fold(s, {"type": "identify", "traits": {"plan": "free", "first_touch": "seo", "locked": 2}},
         ts=100, seq=3, rules=rules)
    assert s.traits == {"plan": "pro", "first_touch": "seo", "locked": 1}
    assert (s.first_seen, s.last_seen, s.event_count) == (100, 200, 2)


def test_track_does_not_set_traits_but_context_traits_do() -> None:
    s = ProfileState(id="p", part=0, created_at=0)
    fold(s, {"type": "track", "event": "E", "properties": {"plan": "x"},
             "context": {"traits": {"name": "Kari"}}}, ts=1, seq=1)
    assert s.traits == {"name": "Kari"}


def test_consent_time_is_when_the_answer_was_given() -> None:
    s = ProfileState(id="p", part=0, created_at=0)
    prefs = lambda v: {"type": "track", "context": {  # noqa: E731
        "consent": {"categoryPreferences": {"sms": v}}}}
    fold(s, prefs(True), ts=10, seq=1)
    fold(s, prefs(True), ts=20, seq=2)
    assert public_consent(s.consent)["sms"]["at"].startswith("1970-01-01T00:00:00.000")
    assert s.consent["sms"]["since"] == 10
    fold(s, prefs(False), ts=15, seq=3)  # older than the newest statement: ignored
    assert s.consent["sms"]["granted"] is True
    fold(s, prefs(False), ts=30, seq=4)
    assert s.consent["sms"]["granted"] is False and s.consent["sms"]["since"] == 30


def test_merge_applies_the_same_rules() -> None:
    a = ProfileState(id="a", part=0, created_at=0)
    b = ProfileState(id="b", part=0, created_at=1)
    fold(a, {"type": "identify", "traits": {"plan": "free", "city": "Oslo"}}, ts=10, seq=1)
    fold(b, {"type": "identify", "traits": {"plan": "pro"},
             "context": {"consent": {"categoryPreferences": {"analytics": True}}}},
         ts=20, seq=2)
    merge_into(a, b, {})
    assert a.traits == {"plan": "pro", "city": "Oslo"}
    assert a.event_count == 2 and (a.first_seen, a.last_seen) == (10, 20)
    assert a.consent["analytics"]["granted"] is True
    assert b.merged_into == "a"
