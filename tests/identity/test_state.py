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


def _consent_changes(statements: list[tuple[int, bool]]) -> tuple[bool, int]:
    """The current answer and when its run began, worked out from the whole history."""
    answer, since = statements[0][1], statements[0][0]
    for ts, granted in sorted(statements)[1:]:
        if granted != answer:
            answer, since = granted, ts
    return answer, min(ts for ts, g in sorted(statements) if g == answer and ts >= since)


def test_consent_agrees_with_the_history_whatever_the_arrival_order() -> None:
    """Every answer pattern of up to five statements, arriving in every order: the profile's
    answer and ``since`` are what the event-time history says."""
    import itertools

    from partitur.privacy.consent import Statement, history

    for n in range(1, 6):
        for answers in itertools.product((True, False), repeat=n):
            statements = [(10 * (i + 1), a) for i, a in enumerate(answers)]
            want = _consent_changes(statements)
            log = history(Statement(ts, ts, "src", f"m{ts}", "track", None, {"sms": g})
                          for ts, g in statements)["sms"]
            assert (log[-1]["granted"], log[-1]["at"]) == (want[0], public_consent(
                {"sms": {"granted": want[0], "since": want[1], "source": "src"}})["sms"]["at"])
            for order in itertools.permutations(statements):
                s = ProfileState(id="p", part=0, created_at=0)
                for ts, granted in order:
                    fold(s, {"type": "track", "context": {
                        "consent": {"categoryPreferences": {"sms": granted}}}}, ts=ts, seq=ts)
                got = s.consent["sms"]
                assert (got["granted"], got["since"]) == want, (order, got)


def test_consent_merge_agrees_with_the_history() -> None:
    import itertools

    for answers in itertools.product((True, False), repeat=4):
        statements = [(10 * (i + 1), a) for i, a in enumerate(answers)]
        want = _consent_changes(statements)
        for split in itertools.product((0, 1), repeat=4):
            a = ProfileState(id="a", part=0, created_at=0)
            b = ProfileState(id="b", part=0, created_at=0)
            for (ts, granted), side in zip(statements, split, strict=True):
                fold((a, b)[side], {"type": "track", "context": {
                    "consent": {"categoryPreferences": {"sms": granted}}}}, ts=ts, seq=ts)
            if not a.consent or not b.consent:
                continue
            merge_into(a, b, {})
            assert (a.consent["sms"]["granted"], a.consent["sms"]["since"]) == want, split
