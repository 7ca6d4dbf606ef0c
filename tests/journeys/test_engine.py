"""The pure engine: advance() with a manual clock, and golden histories of whole journeys."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from partitur.clock import ManualClock, to_us
from partitur.journeys.engine import (
    MAX_TRANSITIONS,
    CallWebhook,
    Convert,
    Emit,
    Enter,
    Event,
    Exit,
    Halt,
    Instance,
    Person,
    Record,
    ScheduleWake,
    Send,
    Step,
    Timer,
    UpdateProfile,
    advance,
    new_instance,
    next_local_time,
)
from partitur.journeys.model import Journey
from partitur.journeys.parse import parse_journey

ROOT = Path(__file__).resolve().parents[2]
H = 3_600_000_000
D = 24 * H


def load(name: str) -> Journey:
    return parse_journey(yaml.safe_load((ROOT / f"examples/journeys/{name}.yaml").read_text()))


def person(pid: str = "p1", **traits: Any) -> Person:
    return Person(pid, traits=traits, timezone=str(traits.get("timezone", "UTC")))


class Run:
    """One person through a journey, the clock moved by hand."""

    def __init__(self, journey: Journey, who: Person, clock: ManualClock) -> None:
        self.journey, self.who, self.clock = journey, who, clock
        self.inst: Instance = new_instance(journey, 1, who.profile_id, 1, clock.now_us())
        self.commands: list[Any] = []

    def apply(self, step: Step) -> Step:
        self.inst = step.instance
        self.commands.extend(step.commands)
        return step

    def enter(self, event: dict[str, Any] | None = None) -> Step:
        return self.apply(advance(self.journey, self.inst,
                                  Enter(self.who, event, "test"), self.clock.now_us()))

    def event(self, name: str, **props: Any) -> Step:
        message = {"type": "track", "event": name, "properties": props}
        now = self.clock.now_us()
        return self.apply(advance(self.journey, self.inst, Event(self.who, name, message, now),
                                  now))

    def sleep(self, us: int) -> Step:
        """Move the clock and fire the timer if it is due (as the runner does)."""
        self.clock.advance(timedelta(microseconds=us))
        return self.apply(advance(self.journey, self.inst,
                                  Timer(self.who, self.inst.state_version),
                                  self.clock.now_us()))

    def path(self) -> list[tuple[str | None, str]]:
        return [(c.step_id, c.kind) for c in self.commands if isinstance(c, Record)]

    def of(self, kind: type) -> list[Any]:
        return [c for c in self.commands if isinstance(c, kind)]


def test_welcome_order_within_a_day_converts() -> None:
    clock = ManualClock()
    run = Run(load("welcome"), person(), clock)
    run.enter({"event": "User Registered", "properties": {}})
    assert run.inst.step == "wait-order" and run.inst.waiting_for == "Order Completed"
    assert run.inst.wake_at == clock.now_us() + 24 * H
    [send] = run.of(Send)
    assert send.key == "welcome:1:p1:1:welcome:1"
    assert send.channel == "email" and send.template == "welcome-email"
    assert send.variables["event"]["event"] == "User Registered"
    clock.advance(timedelta(hours=3))
    run.event("Order Completed", total=10)
    assert run.inst.status == "exited" and run.inst.exit_reason == "goal reached"
    assert run.of(Exit) == [Exit("goal reached", converted=True)]
    assert run.of(Convert)[0].step_id == "wait-order"
    assert run.path() == [(None, "enter"), ("welcome", "send"),
                          ("wait-order", "wait_for_event"), ("wait-order", "goal")]


def test_welcome_timeout_pro_plan_goes_to_done() -> None:
    clock = ManualClock()
    run = Run(load("welcome"), person(plan="pro"), clock)
    run.enter()
    before = run.inst.state_version
    assert run.sleep(23 * H).commands == ()  # not due yet: nothing happens
    run.sleep(1 * H)
    assert run.inst.state_version == before + 1
    assert run.inst.status == "completed" and run.inst.step == "done"
    branch = next(c for c in run.commands if isinstance(c, Record) and c.kind == "branch")
    assert branch.reason == {"branch": 0, "next": "done", "seen": {"trait:plan": "pro"}}


def test_stale_timer_does_nothing() -> None:
    clock = ManualClock()
    run = Run(load("welcome"), person(plan="free"), clock)
    run.enter()
    stale = run.inst.state_version - 1
    clock.advance(timedelta(days=2))
    step = advance(run.journey, run.inst, Timer(run.who, stale), clock.now_us())
    assert step.commands == () and step.instance == run.inst


def test_split_is_deterministic_and_weighted() -> None:
    journey = load("welcome")
    arms: Counter[str] = Counter()
    for i in range(3000):
        clock = ManualClock()
        run = Run(journey, person(f"person-{i}", plan="free"), clock)
        run.enter()
        run.sleep(24 * H)
        [split] = [c for c in run.commands if isinstance(c, Record) and c.kind == "split"]
        arms[split.reason["arm"]] += 1
        again = Run(journey, person(f"person-{i}", plan="free"), ManualClock())
        again.enter()
        again.sleep(24 * H)
        assert again.inst.context["arms"] == run.inst.context["arms"]
    assert 1200 < arms["discount"] < 1500 and 1200 < arms["reminder"] < 1500
    assert 200 < arms["control"] < 400


def test_reminder_arm_waits_two_days_then_mails() -> None:
    journey = load("welcome")
    pid = next(f"p{i}" for i in range(100) if _arm(journey, f"p{i}") == "reminder")
    clock = ManualClock()
    run = Run(journey, person(pid, plan="free"), clock)
    run.enter()
    run.sleep(24 * H)
    assert run.inst.step == "reminder" and run.inst.wake_at == clock.now_us() + 2 * D
    run.sleep(2 * D)
    sends = run.of(Send)
    assert [s.step_id for s in sends] == ["welcome", "remind-mail"]
    assert sends[1].variables["journey"]["arm"] == "reminder"
    assert run.inst.status == "completed"


def _arm(journey: Journey, pid: str) -> str:
    run = Run(journey, person(pid, plan="free"), ManualClock())
    run.enter()
    run.sleep(24 * H)
    return str(run.inst.context["arms"]["split"])


def test_goal_after_completion_still_counts_within_the_window() -> None:
    clock = ManualClock()
    run = Run(load("welcome"), person(plan="pro"), clock)
    run.enter()
    run.sleep(24 * H)
    assert run.inst.status == "completed"
    clock.advance(timedelta(days=5))
    run.event("Order Completed")
    assert run.inst.converted_at == clock.now_us() and run.inst.status == "completed"
    assert len(run.of(Convert)) == 1
    run.event("Order Completed")  # only once
    assert len(run.of(Convert)) == 1


def test_goal_window_closes() -> None:
    clock = ManualClock()
    run = Run(load("welcome"), person(plan="pro"), clock)
    run.enter()
    run.sleep(24 * H)
    clock.advance(timedelta(days=14))
    assert run.event("Order Completed").commands == ()


def test_exit_rule_on_event() -> None:
    clock = ManualClock()
    run = Run(load("welcome"), person(), clock)
    run.enter()
    run.event("Unsubscribed")
    assert run.inst.status == "exited" and run.inst.exit_reason == "exit rule 0: event Unsubscribed"
    assert run.inst.wake_at is None
    assert run.sleep(2 * D).commands == ()


def test_wait_for_event_matches_trigger_property() -> None:
    doc = yaml.safe_load((ROOT / "examples/journeys/abandoned-cart.yaml").read_text())
    clock = ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))  # a Monday
    run = Run(load("abandoned-cart"), person(timezone="Europe/Oslo"), clock)
    run.enter({"event": "Cart Abandoned", "properties": {"cart_id": "c1", "total": 30}})
    run.event("Order Completed", cart_id="c2")
    # the goal is any order: it converts before the wait looks at the event
    assert run.inst.exit_reason == "goal reached"
    del doc["goal"]
    run = Run(parse_journey(doc), person(timezone="Europe/Oslo"), clock)
    run.enter({"event": "Cart Abandoned", "properties": {"cart_id": "c1", "total": 30}})
    assert run.inst.waiting_for == "Order Completed"
    assert run.event("Order Completed", cart_id="c2").commands == ()  # another cart
    assert run.inst.status == "active"
    run.event("Order Completed", cart_id="c1")
    assert run.inst.step == "done" and run.inst.status == "completed"
    assert [e.event for e in run.of(Emit)] == ["Cart Recovered"]
    assert run.of(Emit)[0].properties == {"cart_id": "c1"}


def test_abandoned_cart_timeout_waits_for_local_morning() -> None:
    journey = load("abandoned-cart")
    clock = ManualClock(datetime(2026, 3, 6, 20, 0, tzinfo=UTC))  # a Friday, 21:00 in Oslo
    run = Run(journey, person("kari", timezone="Europe/Oslo", first_name="Kari"), clock)
    run.enter({"event": "Cart Abandoned", "properties": {"cart_id": "c9", "total": 30}})
    run.sleep(2 * H)
    assert run.inst.step == "morning"
    # next weekday 10:00 in Oslo (UTC+1 in March): Monday 09:00 UTC
    assert run.inst.wake_at == to_us(datetime(2026, 3, 9, 9, 0, tzinfo=UTC))
    run.sleep(run.inst.wake_at - clock.now_us())
    [send] = run.of(Send)
    assert send.step_id == "remind" and isinstance(send.template, dict)
    [update] = run.of(UpdateProfile)
    assert update.set == {"last_cart_reminder": "c9"}
    [hook] = run.of(CallWebhook)
    assert hook.request["url"] == "https://crm.example.com/hooks/cart"
    assert hook.key == "abandoned-cart:1:kari:1:crm:1"
    assert run.inst.status == "completed"


def test_local_time_across_daylight_saving() -> None:
    before = to_us(datetime(2026, 3, 28, 12, 0, tzinfo=UTC))  # Saturday; DST starts Sunday
    wake = next_local_time(before, 9, 0, frozenset({6}), "Europe/Oslo")
    assert wake == to_us(datetime(2026, 3, 29, 7, 0, tzinfo=UTC))  # 09:00 CEST


def test_wait_until_trait_date() -> None:
    doc = {"key": "trial", "trigger": {"event": "Trial Started"}, "steps": [
        {"id": "w", "type": "wait", "until": {"trait": "trial_ends_at", "offset": "-1d"},
         "next": "mail"},
        {"id": "mail", "type": "send", "channel": "email", "template": "t", "next": "end"},
        {"id": "end", "type": "exit"},
    ]}
    journey = parse_journey(doc)
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    run = Run(journey, person(trial_ends_at="2026-01-15T00:00:00Z"), clock)
    run.enter()
    assert run.inst.wake_at == to_us(datetime(2026, 1, 14, tzinfo=UTC))
    passed = Run(journey, person(trial_ends_at="2025-12-01"), ManualClock())
    passed.enter()
    assert [s.step_id for s in passed.of(Send)] == ["mail"]
    missing = Run(journey, person(), ManualClock())
    missing.enter()
    assert [c.reason.get("skipped") for c in missing.commands
            if isinstance(c, Record) and c.kind == "wait"] == ["trait missing or not a date"]


def test_emit_and_visits_make_distinct_keys() -> None:
    doc = {"key": "loop", "trigger": {"event": "X"}, "steps": [
        {"id": "ping", "type": "send", "channel": "sms", "template": "t", "next": "ev"},
        {"id": "ev", "type": "emit_event", "event": "Pinged", "properties": {"n": 1},
         "next": "w"},
        {"id": "w", "type": "wait", "duration": "1h", "next": "ping"},
    ]}
    clock = ManualClock()
    run = Run(parse_journey(doc), person(), clock)
    run.enter()
    run.sleep(H)
    run.sleep(H)
    assert [s.key for s in run.of(Send)] == [f"loop:1:p1:1:ping:{n}" for n in (1, 2, 3)]
    assert len(run.of(Emit)) == 3 and len(run.of(ScheduleWake)) == 3


def test_runaway_guard_ends_a_loop_that_never_waits() -> None:
    # validation refuses such a journey; the engine must still stop on its own
    from partitur.journeys.model import ExitStep, Journey, Trigger, UpdateProfileStep

    a = UpdateProfileStep("a", {"x": 1}, (), "b")
    b = UpdateProfileStep("b", {"x": 2}, (), "a")
    journey = Journey("bad", "bad", "", Trigger("event", event="X"), __import__(
        "partitur.journeys.model", fromlist=["Entry"]).Entry(), None, (), (a, b, ExitStep("c")),
        {})
    run = Run(journey, person(), ManualClock())
    run.enter()
    assert run.inst.exit_reason == "runaway guard"
    assert len(run.of(UpdateProfile)) == MAX_TRANSITIONS


def test_halt_ends_an_active_instance_only() -> None:
    run = Run(load("welcome"), person(), ManualClock())
    run.enter()
    step = run.apply(advance(run.journey, run.inst, Halt("archived"), 0))
    assert run.inst.status == "exited" and step.commands[-1] == Exit("archived")
    assert advance(run.journey, run.inst, Halt("archived"), 0).commands == ()


def test_draft_fields_match_the_instance() -> None:
    from partitur.journeys.engine import _FIELDS

    assert Instance.__struct_fields__ == _FIELDS


def _cart_without_goal() -> Journey:
    doc = yaml.safe_load((ROOT / "examples/journeys/abandoned-cart.yaml").read_text())
    del doc["goal"]
    return parse_journey(doc)


def test_held_event_is_recorded_and_moves_nobody_but_exit_rules_apply() -> None:
    clock = ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    run = Run(_cart_without_goal(), person(), clock)
    run.enter({"event": "Cart Abandoned", "properties": {"cart_id": "c1"}})
    before = run.inst
    message = {"type": "track", "event": "Order Completed", "messageId": "m1",
               "properties": {"cart_id": "c1"}}
    now = clock.now_us()
    step = run.apply(advance(run.journey, run.inst,
                             Event(run.who, "Order Completed", message, now, held=True), now))
    assert step.instance.step == "wait-purchase" and step.instance.status == "active"
    assert step.instance.state_version == before.state_version  # its timer still counts
    assert step.instance.wake_at == before.wake_at
    [held] = step.commands
    assert isinstance(held, Record) and held.kind == "held"
    assert held.reason == {"event": "Order Completed", "message_id": "m1",
                           "reason": "journey paused"}
    unsub = {"type": "track", "event": "Unsubscribed", "properties": {}}
    step = advance(run.journey, run.inst, Event(run.who, "Unsubscribed", unsub, now,
                                                held=True), now)
    assert step.instance.exit_reason == "exit rule 0: event Unsubscribed"


def test_awaited_event_received_after_the_timeout_fell_due_takes_the_timeout() -> None:
    clock = ManualClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    run = Run(_cart_without_goal(), person(), clock)
    run.enter({"event": "Cart Abandoned", "properties": {"cart_id": "c1"}})
    wake = run.inst.wake_at
    assert wake is not None
    message = {"type": "track", "event": "Order Completed", "properties": {"cart_id": "c1"}}
    clock.advance(timedelta(hours=3))
    now = clock.now_us()
    early = advance(run.journey, run.inst, Event(run.who, "Order Completed", message, now,
                                                 received_at=wake - 1), now)
    assert early.instance.step == "done"  # received before the deadline: the event wins
    late = advance(run.journey, run.inst, Event(run.who, "Order Completed", message, now,
                                                received_at=wake), now)
    kinds = [(c.step_id, c.kind) for c in late.commands if isinstance(c, Record)]
    assert kinds[0] == ("wait-purchase", "timeout")
    assert late.instance.step == "morning"
