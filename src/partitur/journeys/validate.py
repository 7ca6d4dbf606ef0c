"""Checks on a parsed journey as a whole: the graph of steps, and its templates.

:func:`graph_problems` is pure: every ``next`` names a step, every step can be reached from
the first, and no cycle lacks a wait (a person would loop without end in one instant).
:func:`template_problems` checks each message's template with the template checker, and, given
a transaction, that stored templates exist for the right channel (publish time).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from partitur.journeys.model import (
    WAITING_TYPES,
    Journey,
    SendStep,
    WebhookStep,
    successors,
)
from partitur.journeys.parse import InvalidJourney
from partitur.store.db import Tx

KNOWN_ROOTS = frozenset({"profile", "event", "journey"})


def graph_problems(journey: Journey) -> list[InvalidJourney]:
    problems: list[InvalidJourney] = []
    index = {s.id: i for i, s in enumerate(journey.steps)}
    for step in journey.steps:
        for field, target in successors(step):
            if target not in journey.by_id:
                problems.append(InvalidJourney(
                    f"unknown next step '{target}'", step_id=step.id,
                    path=f"steps[{index[step.id]}].{field}",
                ))
    if problems:
        return problems
    reached = {journey.start}
    todo = [journey.start]
    while todo:
        for _, target in successors(journey.by_id[todo.pop()]):
            if target not in reached:
                reached.add(target)
                todo.append(target)
    for step in journey.steps:
        if step.id not in reached:
            problems.append(InvalidJourney(
                f"unreachable step: no path leads to it from the first step "
                f"'{journey.start}'", step_id=step.id, path=f"steps[{index[step.id]}]",
            ))
    cycle = _cycle_without_wait(journey)
    if cycle:
        problems.append(InvalidJourney(
            "cycle without a wait: " + " -> ".join([*cycle, cycle[0]])
            + " (add a wait or wait_for_event step to the loop)",
            step_id=cycle[0], path=f"steps[{index[cycle[0]]}]",
        ))
    return problems


def _cycle_without_wait(journey: Journey) -> list[str] | None:
    """A loop of steps none of which waits, if there is one (as its step ids)."""
    edges = {
        s.id: ([] if s.type in WAITING_TYPES else [t for _, t in successors(s)])
        for s in journey.steps
    }
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for root in edges:
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = [root]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            if i < len(edges[node]):
                stack[-1] = (node, i + 1)
                target = edges[node][i]
                if state.get(target) == 1:
                    return path[path.index(target):]
                if not state.get(target):
                    state[target] = 1
                    stack.append((target, 0))
                    path.append(target)
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return None


def template_problems(journey: Journey, tx: Tx | None = None) -> list[InvalidJourney]:
    """Template checks; with ``tx``, also that stored templates exist (for the channel)."""
    from partitur.templates import check_template, template_channel

    problems: list[InvalidJourney] = []
    index = {s.id: i for i, s in enumerate(journey.steps)}
    for step in journey.steps:
        checks: list[tuple[str, str, Any]] = []
        if isinstance(step, SendStep):
            if step.template is not None:
                checks.append(("template", step.channel, step.template))
            if step.webhook is not None:
                checks.append(("webhook", "webhook", step.webhook))
        elif isinstance(step, WebhookStep):
            request: dict[str, Any] = {"url": step.url, "method": step.method,
                                       "headers": step.headers}
            if step.body is not None:
                request["body"] = step.body
            checks.append(("", "webhook", request))
        for field, channel, template in checks:
            path = f"steps[{index[step.id]}]" + (f".{field}" if field else "")
            for problem in check_template(template, channel, KNOWN_ROOTS):
                problems.append(InvalidJourney(problem, step_id=step.id, path=path))
            if tx is not None and isinstance(template, str):
                stored = template_channel(tx, template)
                if stored is None:
                    problems.append(InvalidJourney(
                        f"missing template '{template}': no stored template has this key",
                        step_id=step.id, path=path))
                elif stored != channel:
                    problems.append(InvalidJourney(
                        f"template '{template}' is for {stored}, not {channel}",
                        step_id=step.id, path=path))
    return problems


def segment_problems(journey: Journey, tx: Tx) -> list[InvalidJourney]:
    """Every segment the journey names (trigger, audience, branch conditions, exit rules)
    must exist."""
    from partitur.segments.usage import parts_using  # segments come first: import late

    known = {str(r[0]) for r in tx.execute("SELECT key FROM segments")}
    index = {s.id: i for i, s in enumerate(journey.steps)}
    by_path = {f"steps[{i}] ({sid})": sid for sid, i in index.items()}
    problems = []
    for where, segments in parts_using(journey):
        for segment in sorted(segments - known):
            step_id = by_path.get(where)
            path = where.split(" ")[0] if step_id else where
            problems.append(InvalidJourney(
                f"unknown segment '{segment}': no segment has this key", step_id=step_id,
                path=path))
    return problems


def raise_first(problems: Iterable[InvalidJourney]) -> None:
    """Raise one error carrying every problem (its message is the first one's)."""
    found = list(problems)
    if not found:
        return
    first = found[0]
    message = first.message if len(found) == 1 else (
        f"{first.message} (and {len(found) - 1} more problem{'s' if len(found) > 2 else ''})"
    )
    error = InvalidJourney(first.reason, step_id=first.step_id, path=first.path)
    error.message = message
    error.args = (message,)
    error.details = [d for p in found for d in p.details]
    raise error


def check_journey(journey: Journey, tx: Tx | None = None, *, templates: bool = True) -> None:
    """Raise :class:`InvalidJourney` listing every problem found."""
    problems = graph_problems(journey)
    if templates:
        problems += template_problems(journey, tx)
        if tx is not None:
            problems += segment_problems(journey, tx)
    raise_first(problems)
