"""The demo: its simulated shop (pure, seeded), its workspace, and ``partitur demo`` as a real
process that loads a history through the tracking API, applies journeys and answers a funnel."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from partitur.channels.events import SOURCE_NAME as CHANNEL_SOURCE
from partitur.clock import ManualClock, iso
from partitur.demo import (
    ADMIN_TOKEN,
    PLAN_POLICY,
    WRITE_KEYS,
    Api,
    Population,
    ensure_workspace,
)
from partitur.demo.journeys import for_channel, journey_documents, template_documents
from partitur.demo.population import DAY_US
from partitur.demo.sender import loopback_url
from partitur.errors import InvalidInput
from partitur.journeys.parse import parse_journey
from partitur.services import Services, build_services
from partitur.settings import load_settings
from partitur.templates.store import parse_document
from tests.conftest import wait_processed
from tests.helpers import PartiturServer, free_port, http

END = 1_800_000_000_000_000  # 2027-01-15


def history(population: Population, end: int = END) -> list[Any]:
    return [item for chunk in population.history(end, chunk=500) for item in chunk]


# -- the population ----------------------------------------------------------------------------


def test_population_is_deterministic_from_its_seed() -> None:
    def story(seed: int) -> list[Any]:
        population = Population(seed=seed, size=300, days=14, run="r")
        told = [(item.source, item.message) for item in history(population)]
        for tick in range(5):
            told += [(i.source, i.message) for i in population.tick(END + tick * 10**6, 20)]
        return told

    first = story(11)
    assert first == story(11)
    assert first != story(12)
    assert len({m["messageId"] for _, m in first}) == len(first)
    assert {source for source, _ in first} <= set(WRITE_KEYS)
    stamps = [m["timestamp"] for _, m in first[: len(first) - 100]]
    assert iso(END - 14 * DAY_US) <= min(stamps) and max(stamps) < iso(END)


def test_history_covers_the_range_and_the_shop() -> None:
    population = Population(seed=3, size=2000, days=30, run="r")
    sent = history(population)
    days = {m.message["timestamp"][:10] for m in sent}
    assert len(days) >= 29, "people arrive on every day of the range"
    events = defaultdict(int)
    for item in sent:
        events[item.message.get("event") or item.message["type"]] += 1
    for name in ("page", "screen", "identify", "Product Viewed", "Signed Up", "Product Added",
                 "Checkout Started", "Order Completed", "Email Opened", "Unsubscribed"):
        assert events[name] > 0, name
    # A believable shop: many browse, fewer sign up, fewer buy.
    assert events["Product Viewed"] > 5 * events["Signed Up"] > 5 * 0.5 * events["Order Completed"]
    campaigns = {m.message.get("context", {}).get("campaign", {}).get("source") for m in sent}
    assert {"google", "instagram", "newsletter", None} <= campaigns


def test_two_devices_browse_anonymously_then_one_person() -> None:
    """Both devices send anonymous events first; sign-up on one, sign-in on the other, each
    with the user id and that device's anonymous id, so identity links them."""
    population = Population(seed=5, size=600, days=30, run="r")
    sent = [item.message for item in history(population)]
    stories = 0
    for person in population.known:
        if not (person.two_devices and all(d.signed_in for d in person.devices)):
            continue
        ids = {d.anonymous_id for d in person.devices}
        mine = [m for m in sent if m.get("anonymousId") in ids]
        links = [m for m in mine if m["type"] == "identify" and m.get("userId")]
        assert {m["anonymousId"] for m in links} == ids
        assert all(m["userId"] == person.user_id for m in links)
        first_link = min(m["timestamp"] for m in links)
        anonymous_before = {m["anonymousId"] for m in mine
                            if "userId" not in m and m["timestamp"] < first_link}
        if anonymous_before == ids:
            stories += 1
    assert stories >= 5, "several people browse on two devices before they sign up"


def test_carts_are_followed_by_their_cart_id() -> None:
    population = Population(seed=9, size=1500, days=30, run="r")
    sent = [item.message for item in history(population)]
    added: dict[str, set[str]] = defaultdict(set)  # cart -> products
    owner: dict[str, str] = {}
    anon_user = {d.anonymous_id: p.user_id for p in population.people for d in p.devices}
    orders = 0
    for m in sorted(sent, key=lambda m: m["timestamp"]):
        props = m.get("properties", {})
        person = m.get("userId") or anon_user[m["anonymousId"]]
        if m.get("event") == "Product Added":
            added[props["cart_id"]].add(props["product_id"])
            assert owner.setdefault(props["cart_id"], person) == person
        elif m.get("event") in ("Checkout Started", "Order Completed"):
            cart = props["cart_id"]
            assert cart in added, f"{m['event']} for a cart nobody filled"
            assert owner[cart] == person
            if m["event"] == "Order Completed":
                orders += 1
                assert {p["product_id"] for p in props["products"]} == added[cart]
                assert props["order_id"] == "order-" + cart.removeprefix("cart-")
    order_carts = [m["properties"]["cart_id"] for m in sent if m.get("event") == "Order Completed"]
    assert orders > 20 and len(order_carts) == len(set(order_carts)), "a cart is bought once"
    assert len(added) > len(order_carts), "some carts are abandoned"


def test_tick_respects_the_budget_up_to_one_session() -> None:
    population = Population(seed=1, size=20)
    assert population.tick(0, 0) == []
    for budget in (1, 5, 40):
        batch = population.tick(0, budget)
        assert budget <= len(batch) < budget + 20


def test_population_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least one person"):
        Population(size=0)
    with pytest.raises(ValueError, match="at least one day"):
        Population(days=0)


# -- journeys and templates ------------------------------------------------------------------


def test_journeys_and_templates_are_valid_on_both_channels() -> None:
    for key, doc in ((t["key"], t) for t in template_documents()):
        parse_document(key, {k: v for k, v in doc.items() if k != "key"})
    keys = {t["key"] for t in template_documents()}
    for doc in journey_documents():
        for email in (True, False):
            journey = parse_journey(for_channel(doc, email))
            sends = [s for s in journey.steps if s.type == "send"]
            assert sends and all(s.template in keys for s in sends)  # type: ignore[union-attr]
            if not email:
                assert all(s.channel == "web" for s in sends)  # type: ignore[union-attr]
    cart = next(d for d in journey_documents() if d["key"] == "abandoned-cart")
    assert cart["steps"][0]["match"] == {"cart_id": "trigger.properties.cart_id"}


# -- the workspace -----------------------------------------------------------------------------


def test_workspace_is_idempotent_and_its_keys_work(
    make_services: Any, client: TestClient, services: Services
) -> None:
    first = ensure_workspace(services)
    services.keys.update_source("crm", plan_policy={"unplanned_events": "block"})
    again = ensure_workspace(make_services())
    assert first.write_keys == again.write_keys == WRITE_KEYS
    assert first.admin_token == again.admin_token == ADMIN_TOKEN
    assert (first.plan, again.plan) == ("version 1 (applied)", "version 1 (unchanged)")
    assert len(services.keys.list_keys()) == len(WRITE_KEYS) + 1
    policies = {s.name: s.plan_policy for s in services.keys.list_sources()}
    policies.pop(CHANNEL_SOURCE, None)  # where delivery events come from, made on first send
    assert policies.keys() == WRITE_KEYS.keys()
    assert policies.pop("crm") == {"unplanned_events": "block"}, "an operator's choice stays"
    assert all(p == PLAN_POLICY for p in policies.values())
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for source, key in WRITE_KEYS.items():
        r = client.post("/v1/track", json={"writeKey": key, "userId": "u", "event": "Pinged"})
        assert r.status_code == 200, (source, r.text)
    r = client.get("/api/v1/tracking-plan", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    # An event outside the plan is flagged and kept by three sources, blocked by the CRM.
    r = client.get("/api/v1/tracking-plan/rejected", params={"event": "Pinged"}, headers=admin)
    actions = sorted(item["action"] for item in r.json()["rejected"])
    assert actions == ["blocked", "flagged", "flagged", "flagged"]


def test_demo_refuses_to_talk_beyond_loopback(make_services: Any) -> None:
    with pytest.raises(InvalidInput, match="loopback"):
        ensure_workspace(make_services(host="0.0.0.0"))
    with pytest.raises(InvalidInput, match="loopback"):
        ensure_workspace(make_services(host="192.0.2.10"))
    with pytest.raises(ValueError, match="loopback"):
        Api("http://192.0.2.10:8910", WRITE_KEYS, ADMIN_TOKEN)
    assert loopback_url("localhost", 1) == "http://127.0.0.1:1"
    assert loopback_url("::1", 2) == "http://[::1]:2"


def test_simulated_people_become_profiles(
    client: TestClient, services: Services, clock: ManualClock
) -> None:
    """Every event of the history is accepted with its own timestamp, and the profiles tell
    the population's story: identifiers of both devices, consent, traits, orders."""
    ensure_workspace(services)
    population = Population(seed=5, size=150, days=20, run="r")
    sent: list[dict[str, Any]] = []
    for chunk in population.history(clock.now_us(), chunk=300):
        by_source: dict[str, list[dict[str, Any]]] = {}
        for item in chunk:
            by_source.setdefault(item.source, []).append(item.message)
            sent.append(item.message)
        for source, batch in by_source.items():
            r = client.post("/v1/batch", json={"writeKey": WRITE_KEYS[source], "batch": batch})
            assert r.status_code == 200, r.text
    wait_processed(services)

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    known = population.known
    two_devices = [p for p in known if sum(d.signed_in for d in p.devices) == 2]
    buyers = [p for p in known if p.orders]
    assert known and two_devices and buyers, "the story should cover sign-ups, devices, orders"
    for person in known:
        r = client.get(
            "/api/v1/profiles/lookup",
            params={"type": "email", "value": person.email},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        profile = r.json()
        ids = {(i["type"], i["value"]) for i in profile["identifiers"]}
        assert ("user_id", person.user_id) in ids
        for device in person.devices:
            if device.signed_in:
                assert ("anonymous_id", device.anonymous_id) in ids
                if device.device_id:
                    assert ("device_id", device.device_id) in ids
        assert {k: v["granted"] for k, v in profile["consent"].items()} == person.consent
        assert profile["traits"]["email"] == person.email
        if person.orders:
            assert profile["traits"]["lifecycle_stage"] == "customer"
            if person.phone:
                assert ("phone", person.phone.replace(" ", "")) in ids
        # The history's timestamps were kept (no sentAt): first seen is in the past.
        assert profile["first_seen"] < iso(clock.now_us())

    # Everything the population sends is in the plan and valid, except the deliberate mistakes
    # (an app build that sends prices as text), which the plan flags.
    mistakes = sum(isinstance(m.get("properties", {}).get("price"), str) for m in sent)
    assert mistakes, "the simulation includes a few plan violations to look at"
    r = client.get("/api/v1/tracking-plan/violations", headers=admin)
    assert r.status_code == 200, r.text
    assert [(v["event"], v["rule"], v["count"]) for v in r.json()["violations"]] == [
        ("Product Viewed", "schema", mistakes)
    ]


# -- `partitur demo`, a real process -----------------------------------------------------------

SMALL = ["--people", "200", "--days", "7"]


def demo_command(data: Path, port: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "partitur", "demo", "--data", str(data),
            "--host", "127.0.0.1", "--port", str(port), *args]


def demo_env(database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTITUR_")}
    if database_url:
        env["PARTITUR_DATABASE_URL"] = database_url
    return env


class DemoServer(PartiturServer):
    """``partitur demo`` (small, live) in a subprocess, started like ``partitur serve``."""

    def _spawn(self) -> None:
        command = demo_command(self.data_dir, self.port, *SMALL, *self.args)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=self._env(),
                stdin=subprocess.DEVNULL,
            )

    def wait_for(self, text: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert self.running, self.log()
            assert time.monotonic() < deadline, f"no {text!r} within {timeout}s:\n{self.log()}"
            time.sleep(0.2)
        return self.log()


def demo_server(data: Path, database_url: str | None = None) -> DemoServer:
    """A small live demo in a subprocess (not yet started); for the quick-start tests too."""
    return DemoServer(data, database_url=database_url, args=["--rate", "4"])


def funnel_counts(output: str) -> list[int]:
    counts = [re.search(rf"^  {name} +([\d,]+) ", output, re.M)
              for name in ("Signed Up", "Product Added", "Order Completed")]
    assert all(counts), output
    return [int(c.group(1).replace(",", "")) for c in counts if c]


@pytest.mark.serial
def test_demo_loads_applies_and_answers(tmp_path: Path, database_url: str | None) -> None:
    data = tmp_path / "demo"
    started = time.monotonic()
    done = subprocess.run(
        demo_command(data, free_port(), *SMALL, "--no-live"), env=demo_env(database_url),
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output and "nanobind" not in output
    assert time.monotonic() - started < 60, "the small demo is quick"
    for text in ("admin token    demo-admin-token", "web      demo-web-write-key",
                 "welcome (version 1, published)", "abandoned-cart (version 1, published)",
                 "signup-offer (version 1, published)", "web messages (no SMTP",
                 "by first-touch campaign source", "One person, two devices"):
        assert text in output, (text, output)
    signed_up, carted, ordered = funnel_counts(output)
    assert signed_up > carted > ordered > 0

    # What the server stored agrees with what was printed.
    environ = {"PARTITUR_DATABASE_URL": database_url} if database_url else {}
    services = build_services(load_settings(data, environ=environ))
    try:
        with services.db.read() as tx:
            users = tx.one("SELECT COUNT(*) FROM identifiers WHERE id_type = 'user_id'")
            merged = tx.one("SELECT COUNT(*) FROM profiles WHERE merged_into IS NOT NULL")
            delivered = tx.one("SELECT COUNT(*) FROM outbox WHERE journey = 'welcome' "
                               "AND step_id = 'welcome' AND status = 'sent'")
        assert users[0] >= signed_up, "every sign-up is a profile with a user id"
        assert merged[0] > 0, "second devices' anonymous profiles were merged in"
        journeys = services.extra["journeys"]
        stats = {key: journeys.stats(key) for key in ("welcome", "abandoned-cart", "signup-offer")}
        assert stats["welcome"]["entered"] > 0 and stats["abandoned-cart"]["entered"] > 0
        assert stats["signup-offer"]["entered"] == stats["welcome"]["entered"]
        assert delivered[0] == stats["welcome"]["entered"], "welcome messages went out (web)"
        answer = services.extra["analytics"].funnel(
            {"steps": ["Signed Up", "Product Added", "Order Completed"], "window": "30d",
             "from": "2000-01-01", "to": "2100-01-01"})
        assert [s["count"] for s in answer["steps"]] == [signed_up, carted, ordered]
    finally:
        services.close()
    assert (data / "demo.json").exists()


@pytest.mark.serial
def test_demo_runs_live_and_continues_on_the_same_data(
    tmp_path: Path, database_url: str | None
) -> None:
    server = demo_server(tmp_path / "demo", database_url)
    server.args = ["--rate", "40"]
    try:
        server.start()
        server.wait_for("Live: about 40 events a second")
        before = funnel_counts(server.log())
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

        def rows() -> int:
            reply = http("GET", f"{server.url}/api/v1/analytics/status", headers=admin)
            assert reply.status == 200, reply.body
            return int(reply.json()["rows"])

        first, deadline = rows(), time.monotonic() + 60
        while rows() < first + 100:  # live events arrive and reach analytics
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.5)
        assert server.stop() == 0, server.log()
        server.assert_clean_log()
        assert "stopped; the data stays in" in server.log()

        # Again on the same data: the history is not sent twice; live resumes.
        server.start()
        log = server.wait_for("Live: about 40 events a second")
        assert "History: already loaded" in log
        assert "(version 1, unchanged)" in log
        again = funnel_counts(log)
        assert again[0] >= before[0]
        assert server.stop() == 0, server.log()
        server.assert_clean_log()
    finally:
        server.close()

    # `serve --demo` is the same demo: with its default size it refuses this smaller one.
    done = subprocess.run(
        [sys.executable, "-m", "partitur", "serve", "--demo", "--data", str(tmp_path / "demo"),
         "--port", str(free_port())],
        env=demo_env(database_url), capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "already holds a demo of 200 people over 7 days" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.serial
def test_ctrl_c_while_loading_stops_cleanly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        demo_command(tmp_path / "demo", free_port(), "--people", "5000"),
        env=demo_env(None), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("History:"):
                break
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopping" in out and "Traceback" not in out
    marker = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert marker["complete"] is False, "the next run sends the history again (deduplicated)"


@pytest.mark.serial
def test_the_demo_page_examples_run(tmp_path: Path) -> None:
    from tests.test_docs import ROOT, run_block, runnable_blocks

    blocks = runnable_blocks(ROOT / "docs" / "demo.md")
    assert len(blocks) >= 2
    with demo_server(tmp_path / "demo") as server:
        server.wait_for("Live: about")
        outputs = [run_block(lang, body, server.url) for lang, body in blocks]
    assert '"deliveries"' in outputs[0] and '"status":"sent"' in outputs[0].replace(" ", "")
    assert '"journey":"abandoned-cart"' in outputs[1].replace(" ", "")


@pytest.mark.serial
def test_with_a_mail_server_the_journeys_send_email(tmp_path: Path) -> None:
    from tests.channels.sinks import SmtpSink

    sink = SmtpSink().start()
    try:
        env = demo_env(None) | {
            "PARTITUR_SMTP_URL": f"smtp://127.0.0.1:{sink.port}?starttls=never",
            "PARTITUR_SMTP_FROM": "Music shop <shop@example.com>",
        }
        data = tmp_path / "demo"
        done = subprocess.run(
            demo_command(data, free_port(), *SMALL, "--no-live"), env=env,
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "messages go out as email" in done.stdout
        with sink.lock:
            mails = list(sink.mails)
    finally:
        sink.stop()
    services = build_services(load_settings(data, environ={}))
    try:
        with services.db.read() as tx:
            outcomes = dict(tx.execute(
                "SELECT status, COUNT(*) FROM outbox WHERE journey = 'welcome' "
                "AND step_id = 'welcome' GROUP BY status"))
    finally:
        services.close()
    welcomes = [m for m in mails if m.message["Subject"].startswith("Welcome to the music shop")]
    assert welcomes and len(welcomes) == outcomes["sent"], (outcomes, len(mails))
    # Marketing email goes only to those who granted marketing_email; the rest are suppressed.
    assert set(outcomes) <= {"sent", "suppressed"}
    assert all(m.recipients[0].endswith("@example.com") for m in welcomes)


def test_a_second_live_run_does_not_repeat_the_first() -> None:
    """Live runs after the same history differ, and their newcomers cannot collide."""

    def live(salt: int) -> tuple[list[Any], Population]:
        population = Population(seed=4, size=100, days=7, run="h")
        history(population)
        population.go_live(f"live{salt}", salt)
        return [i.message for i in population.tick(END + 1, 400)], population

    first, a = live(1)
    second, b = live(2)
    assert first != second and first == live(1)[0]
    assert all(m["messageId"].startswith("demo-live1-") for m in first)
    for population, run in ((a, "live1"), (b, "live2")):
        newcomers = population.people[100:]
        assert newcomers, "some visitors are new"
        assert all(p.user_id.startswith(f"user-{run}-") and run in p.email for p in newcomers)
        assert all(p.phone is None for p in newcomers)
