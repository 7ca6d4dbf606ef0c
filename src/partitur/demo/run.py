"""``partitur demo``: a shop's history through the real APIs, journeys on top, analytics that
answer, then live traffic.

The phases, each over HTTP to the server (:class:`~partitur.demo.sender.Api`):

1. **History.** The population's last ``days`` days go to ``/v1/batch`` with the touchpoints'
   write keys, each event with its own timestamp and no ``sentAt``, so the timestamps are kept
   (a historical import). Then the demo waits until the profile worker and the analytics
   projector have caught up. A marker file (``demo.json`` in the data directory) records what
   was loaded; a second start on the same data skips this phase (the population is rebuilt in
   memory from its seed, so the live traffic continues the same story).
2. **Journeys** and their templates are applied and published *after* the history: journeys
   act on events as they are processed, at the time they are processed, so publishing them
   first would send thousands of welcome messages for sign-ups weeks old.
3. **Today.** A burst of sessions stamped now, which the journeys see: people sign up and
   get the welcome message and the offer, carts are followed by their ``cart_id``.
4. **Summary**: the sign-up → cart → order funnel (overall and by first-touch campaign source),
   the journeys' numbers, the tracking plan's violations, one person with two devices, and
   how to ask for more.
5. **Live** (unless ``--no-live``): a few events a second until Ctrl+C, with a line of moving
   numbers now and then.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from partitur.clock import Clock, iso, to_us
from partitur.demo.journeys import apply_journeys
from partitur.demo.population import DAY_US, Population
from partitur.demo.report import describe_funnel, describe_journeys, describe_person
from partitur.demo.sender import Api
from partitur.errors import InvalidInput

MARKER = "demo.json"
FUNNEL_STEPS = ["Signed Up", "Product Added", "Order Completed"]
JOURNEYS = ("welcome", "abandoned-cart", "signup-offer")


@dataclass(frozen=True)
class Options:
    people: int = 20_000
    days: int = 60
    seed: int = 7
    live: bool = True
    rate: float = 5.0  # live events a second
    status_every: float = 15.0  # seconds between live status lines

    def check(self) -> None:
        if not 1 <= self.people <= 1_000_000:
            raise InvalidInput("--people must be between 1 and 1,000,000")
        if not 1 <= self.days <= 730:
            raise InvalidInput("--days must be between 1 and 730")
        if not 0 < self.rate <= 10_000:
            raise InvalidInput("the live rate must be above 0 and at most 10,000 events/s")


@dataclass(frozen=True)
class Loaded:
    """What the marker file says was loaded into this data directory."""

    seed: int
    people: int
    days: int
    end_us: int
    complete: bool


class Demo:
    def __init__(
        self,
        api: Api,
        options: Options,
        clock: Clock,
        data_dir: Path,
        *,
        email: bool,
        echo: Callable[[str], None],
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.options = options
        self.clock = clock
        self.data_dir = data_dir
        self.email = email
        self.echo = echo
        self.sleep = sleep
        self.monotonic = monotonic
        self.start_us = 0

    # -- the whole run -------------------------------------------------------------------------
    def run(self) -> None:
        self.options.check()
        self.api.wait_healthy()
        population = self.history()
        self.phase("Journeys (published after the history, so old events send nothing)")
        channel = "email" if self.email else "web messages (no SMTP server is configured)"
        for line in apply_journeys(self.api, email=self.email):
            self.echo(f"  {line}")
        self.echo(f"  messages go out as {channel}")
        self.today(population)
        self.summary(population)
        if self.options.live:
            self.live(population)

    def phase(self, title: str) -> None:
        self.echo("")
        self.echo(title)

    # -- 1. history ----------------------------------------------------------------------------
    def history(self) -> Population:
        o = self.options
        loaded = self._marker()
        if loaded and (loaded.seed, loaded.people, loaded.days) != (o.seed, o.people, o.days):
            raise InvalidInput(
                f"{self.data_dir} already holds a demo of {loaded.people:,} people over "
                f"{loaded.days} days (seed {loaded.seed}); use another --data directory "
                f"for a different one"
            )
        if loaded and loaded.complete:
            self.phase(f"History: already loaded ({o.people:,} people over {o.days} days, up to "
                       f"{iso(loaded.end_us)}); rebuilding the population in memory")
            population = self._population(loaded.end_us)
            for _ in population.history(loaded.end_us):
                pass
            self.start_us = loaded.end_us - o.days * DAY_US
            return population
        end_us = loaded.end_us if loaded else self.clock.now_us()
        self._write_marker(Loaded(o.seed, o.people, o.days, end_us, complete=False))
        self.phase(f"History: {o.people:,} people over {o.days} days of an online music shop "
                   f"(seed {o.seed}), through the tracking API")
        population = self._population(end_us)
        started = self.monotonic()
        self.start_us = end_us - o.days * DAY_US
        last_said, sent = started, 0
        for chunk in population.history(end_us):
            sent += self.api.send(chunk)  # no sentAt: the timestamps are kept
            now = self.monotonic()
            if now - last_said >= 2.0:
                day = (_us(chunk[-1].message["timestamp"]) - self.start_us) // DAY_US + 1
                rate = sent / (now - started)
                self.echo(f"  day {min(day, o.days):>3} of {o.days}: {sent:>9,} events sent "
                          f"({rate:,.0f}/s)")
                last_said = now
        sent_s = self.monotonic() - started
        self.echo(f"  {sent:,} events sent in {sent_s:.1f} s; waiting for profiles and "
                  f"analytics to catch up")
        self.wait_processed()
        total_s = self.monotonic() - started
        self.echo(f"  history loaded in {total_s:.1f} s ({sent:,} events, "
                  f"{sent / total_s:,.0f}/s end to end)")
        self._write_marker(Loaded(o.seed, o.people, o.days, end_us, complete=True))
        return population

    def _population(self, end_us: int) -> Population:
        o = self.options
        return Population(seed=o.seed, size=o.people, days=o.days, run=f"h{o.seed}-{end_us:x}")

    def _marker(self) -> Loaded | None:
        path = self.data_dir / MARKER
        if not path.exists():
            return None
        try:
            return Loaded(**json.loads(path.read_text()))
        except (ValueError, TypeError):
            raise InvalidInput(f"{path} is not a demo marker; remove it or use another "
                               f"--data directory") from None

    def _write_marker(self, loaded: Loaded) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / MARKER
        path.with_suffix(".tmp").write_text(json.dumps(asdict(loaded)))
        path.with_suffix(".tmp").replace(path)

    def wait_processed(self, timeout: float = 1800.0) -> None:
        """Until the profile worker's backlog and the analytics projector's queue are empty."""
        deadline = self.monotonic() + timeout
        last_said = self.monotonic()
        while True:
            backlog = int(self.api.wait_healthy()["backlog"])
            status = self.api.admin("GET", "/api/v1/analytics/status")
            waiting = int(status["waiting_events"])
            if backlog == 0 and waiting == 0:
                return
            if self.monotonic() > deadline:
                raise InvalidInput(f"the server did not catch up within {timeout:.0f} s "
                                   f"(backlog {backlog:,}, analytics {waiting:,})")
            if self.monotonic() - last_said >= 2.0:
                self.echo(f"  processing: {backlog:>9,} events waiting for the profile worker, "
                          f"{waiting:,} for analytics")
                last_said = self.monotonic()
            self.sleep(0.25)

    # -- 3. today ------------------------------------------------------------------------------
    def today(self, population: Population) -> None:
        budget = max(300, self.options.people // 20)
        now = self.clock.now_us()
        population.go_live(f"live{now:x}", salt=now)
        sent = self.api.send(population.tick(self.clock.now_us(), budget),
                             sent_at=iso(self.clock.now_us()))
        self.phase(f"Today: {sent:,} events of people visiting right now; the journeys see them")
        self.wait_processed()
        self.wait_delivered()

    def wait_delivered(self, timeout: float = 60.0) -> None:
        """Until the dispatcher has handed every due message to its channel."""
        deadline = self.monotonic() + timeout
        while self.monotonic() < deadline:
            queued = self.api.admin("GET", "/api/v1/deliveries?status=queued,sending&limit=1")
            due = [d for d in queued["deliveries"]
                   if not d.get("due_at") or _us(d["due_at"]) <= self.clock.now_us()]
            if not due:
                return
            self.sleep(0.25)

    # -- 4. summary ----------------------------------------------------------------------------
    def funnel(self, breakdown: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "steps": FUNNEL_STEPS,
            "window": "30d",
            "from": iso(self.start_us),
            "to": iso(self.clock.now_us() + 60_000_000),
            "people_limit": 0,
        }
        if breakdown:
            body["breakdown"] = {"property": "context.campaign.source",
                                 "attribution": "first_touch", "limit": 6}
        answer: dict[str, Any] = self.api.admin("POST", "/api/v1/analytics/funnel", body)
        answer["request"] = body
        return answer

    def journey_stats(self) -> dict[str, dict[str, Any]]:
        return {key: self.api.admin("GET", f"/api/v1/journeys/{key}/stats") for key in JOURNEYS}

    def summary(self, population: Population) -> None:
        base, token = self.api.base_url, self.api.admin_token
        funnel = self.funnel()
        self.phase(f"Funnel over the {self.options.days} days, within 30 days of signing up "
                   f"(analytics on DuckDB over Parquet)")
        for line in describe_funnel(funnel):
            self.echo(f"  {line}")
        asked = {k: v for k, v in funnel["request"].items() if k != "breakdown"}
        body = json.dumps(asked | {"people_limit": 10})
        self.echo(f"  ask it yourself: curl -X POST {base}/api/v1/analytics/funnel "
                  f"-H 'Authorization: Bearer {token}' -d '{body}'")
        self.phase("Journeys")
        for line in describe_journeys(self.journey_stats()):
            self.echo(f"  {line}")
        self.echo(f"  messages: curl -H 'Authorization: Bearer {token}' "
                  f"'{base}/api/v1/deliveries?limit=5'")
        violations = self.api.admin("GET", "/api/v1/tracking-plan/violations")["violations"]
        self.phase("Tracking plan")
        if violations:
            for v in violations[:3]:
                paths = ", ".join(v.get("paths") or {})
                self.echo(f"  {v['count']:,} {v['event'] or v['type']} events, {v['rule']} "
                          f"of {paths} ({v['flagged']:,} flagged and kept), e.g. {v['sample']}")
        else:
            self.echo("  no violations")
        self.echo(f"  curl -H 'Authorization: Bearer {token}' "
                  f"{base}/api/v1/tracking-plan/violations")
        person = next((p for p in population.known
                       if p.two_devices and all(d.signed_in for d in p.devices)), None)
        if person is not None:
            profile = self.api.admin(
                "GET", f"/api/v1/profiles/lookup?type=email&value={person.email}")
            if profile:
                self.phase("One person, two devices")
                for line in describe_person(profile, base):
                    self.echo(f"  {line}")

    # -- 5. live -------------------------------------------------------------------------------
    def live(self, population: Population) -> None:
        o = self.options
        self.phase(f"Live: about {o.rate:g} events a second until Ctrl+C")
        credit, last = 0.0, self.monotonic()
        said, sent = last, 0
        while True:
            self.sleep(1.0)
            now = self.monotonic()
            credit = min(credit + o.rate * (now - last), o.rate * 5)
            last = now
            if credit >= 1:
                batch = population.tick(self.clock.now_us(), int(credit))
                credit -= len(batch)
                sent += self.api.send(batch, sent_at=iso(self.clock.now_us()))
            if now - said >= o.status_every:
                said = now
                self.echo(self.live_line(sent))

    def live_line(self, sent: int) -> str:
        counts = [s["count"] for s in self.funnel(breakdown=False)["steps"]]
        stats = self.journey_stats()
        entered = ", ".join(f"{k} {s['entered']:,}" for k, s in stats.items())
        clock = iso(self.clock.now_us())[11:19]
        return (f"  [{clock}] {sent:,} events sent · funnel "
                f"{' → '.join(f'{c:,}' for c in counts)} · journeys entered: {entered}")


def _us(timestamp: str) -> int:
    return to_us(datetime.fromisoformat(timestamp.replace("Z", "+00:00")))
