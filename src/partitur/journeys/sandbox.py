"""Journeys run in memory, on virtual time: the driver behind test runs and simulations.

Nothing here writes to the store. Instances live in a dict, timers in a heap keyed by virtual
time, and every step goes through the same :func:`~partitur.journeys.engine.advance` as in
production, so what a test run or a simulation shows is what the engine would do.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from partitur.clock import iso
from partitur.conditions import evaluate
from partitur.journeys.engine import (
    CallWebhook,
    Convert,
    Emit,
    Enter,
    Event,
    Exit,
    Instance,
    Person,
    Record,
    Send,
    Step,
    Timer,
    UpdateProfile,
    _subject,
    advance,
    new_instance,
)
from partitur.journeys.model import Journey, call_cause, call_fields, call_keys


@dataclass
class Tally:
    entered: int = 0
    converted: int = 0
    completed: int = 0
    exited: int = 0
    reached: Counter[str] = field(default_factory=Counter)
    arms: Counter[tuple[str, str]] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)


class Sandbox:
    def __init__(self, journey: Journey, person_of: Callable[[str], Person], *,
                 version: int = 0, max_steps: int = 1_000_000) -> None:
        self.journey = journey
        self.person_of = person_of
        self.version = version
        self.instances: dict[str, list[Instance]] = {}
        self.timers: list[tuple[int, int, str, int]] = []  # (at, n, pid, index)
        self.tally = Tally()
        self.steps: list[Step] = []
        self.keep_steps = False
        self._n = 0
        self.budget = max_steps

    def _apply(self, pid: str, index: int, step: Step) -> None:
        inst = step.instance
        self.instances[pid][index] = inst
        if self.keep_steps:
            self.steps.append(step)
        self.budget -= 1
        for cmd in step.commands:
            if isinstance(cmd, Record):
                if cmd.kind == "enter":
                    self.tally.entered += 1
                elif cmd.step_id and cmd.kind in ("send", "wait", "wait_for_event", "branch",
                                                  "split", "update_profile", "webhook",
                                                  "emit_event", "exit"):
                    self.tally.reached[cmd.step_id] += 1
                    if cmd.kind == "split":
                        self.tally.arms[(cmd.step_id, cmd.reason["arm"])] += 1
            elif isinstance(cmd, Send | CallWebhook):
                self.tally.messages[cmd.step_id] += 1
            elif isinstance(cmd, Exit):
                self.tally.exits[cmd.reason] += 1
                if inst.status == "completed":
                    self.tally.completed += 1
                else:
                    self.tally.exited += 1
            elif isinstance(cmd, Convert):
                self.tally.converted += 1
        if inst.status == "active" and inst.wake_at is not None:
            self._n += 1
            heapq.heappush(self.timers, (inst.wake_at, self._n, pid, index))

    def run_timers(self, until: int) -> None:
        """Fire every timer due at or before ``until``, in time order."""
        while self.timers and self.timers[0][0] <= until and self.budget > 0:
            at, _, pid, index = heapq.heappop(self.timers)
            inst = self.instances[pid][index]
            if inst.wake_at != at or inst.status != "active":
                continue
            step = advance(self.journey, inst, Timer(self.person_of(pid), inst.state_version),
                           at)
            if step.changed:
                self._apply(pid, index, step)

    def event(self, pid: str, name: str | None, message: Mapping[str, Any], ts: int) -> None:
        """One stored call of the person's: ``name`` is a track call's event name (None for
        page, screen and identify calls, which only enter people)."""
        self.run_timers(ts)
        mine = self.instances.get(pid, [])
        for index, inst in enumerate(mine):
            if name is None:
                break
            if inst.status != "active" and (inst.goal_until is None or inst.goal_until < ts):
                continue
            step = advance(self.journey, inst, Event(self.person_of(pid), name, message, ts), ts)
            if step.changed:
                self._apply(pid, index, step)
        trig = self.journey.trigger
        keys = call_keys(message)
        if trig.call is None or trig.call not in keys:
            return
        if trig.where is not None and not trig.where.matches(call_fields(message), ts):
            return
        self.enter(pid, dict(message), ts, call_cause(keys[0]))

    def enter(self, pid: str, event: dict[str, Any] | None, now: int, cause: str) -> bool:
        mine = self.instances.setdefault(pid, [])
        rule = self.journey.entry
        if any(i.status == "active" for i in mine):
            return False
        if mine and rule.reentry == "never":
            return False
        if (mine and rule.reentry == "after" and rule.after_us is not None
                and now - mine[-1].entered_at < rule.after_us):
            return False
        person = self.person_of(pid)
        if rule.audience is not None and not evaluate(
                rule.audience, _subject(person, now, event)).result:
            return False
        inst = new_instance(self.journey, self.version, pid, len(mine) + 1, now)
        mine.append(inst)
        self._apply(pid, len(mine) - 1,
                    advance(self.journey, inst, Enter(person, event, cause), now))
        return True

    def summary(self) -> dict[str, Any]:
        t = self.tally
        waiting: Counter[str] = Counter(
            i.step or "" for mine in self.instances.values() for i in mine
            if i.status == "active")
        steps = []
        for step in self.journey.steps:
            item: dict[str, Any] = {"step": step.id, "reached": t.reached.get(step.id, 0),
                                    "waiting_at_end": waiting.get(step.id, 0)}
            if t.messages.get(step.id):
                item["messages"] = t.messages[step.id]
            arms = {arm: n for (sid, arm), n in t.arms.items() if sid == step.id}
            if arms:
                item["arms"] = dict(sorted(arms.items()))
            steps.append(item)
        return {"entered": t.entered, "converted": t.converted, "completed": t.completed,
                "exited": t.exited, "still_active": sum(waiting.values()),
                "exit_reasons": dict(t.exits), "steps": steps}


def describe(step: Step) -> list[dict[str, Any]]:
    """A step's commands as the test-run answer shows them."""
    out: list[dict[str, Any]] = []
    for cmd in step.commands:
        if isinstance(cmd, Record):
            entry: dict[str, Any] = {"at": iso(cmd.at), "step": cmd.step_id, "kind": cmd.kind,
                                     "reason": cmd.reason}
            if cmd.message_key:
                entry["message_key"] = cmd.message_key
            out.append(entry)
        elif isinstance(cmd, Emit):
            out.append({"effect": "emit_event", "step": cmd.step_id, "event": cmd.event,
                        "properties": cmd.properties})
        elif isinstance(cmd, UpdateProfile):
            out.append({"effect": "update_profile", "step": cmd.step_id, "set": cmd.set,
                        "unset": list(cmd.unset)})
    return out
