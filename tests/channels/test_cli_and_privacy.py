"""partitur deliveries list|replay, and erasing a person's messages."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from partitur.channels import OutboundMessage, delivery_status, enqueue
from partitur.channels.privacy import erase_deliveries
from partitur.channels.web import store_message
from partitur.cli import main
from partitur.services import Services, build_services
from partitur.settings import load_settings


def sms(key: str, profile: str = "p1") -> OutboundMessage:
    return OutboundMessage(key=key, profile_id=profile, channel="sms", template={"text": "x"})


def test_list_and_replay(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services = build_services(load_settings(data, environ={}))
    try:
        with services.db.transaction() as tx:
            enqueue(tx, [sms("a"), sms("b")], services.clock.now_us())
            tx.execute("UPDATE outbox SET status = 'dead', due_at = NULL, reason = 'gave up' "
                       "WHERE key = 'a'")
    finally:
        services.close()
    runner = CliRunner()
    listed = runner.invoke(main, ["deliveries", "list", "--data", str(data), "--status", "dead"])
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == ["a  dead       sms     attempts 0  gave up"]
    replayed = runner.invoke(main, ["deliveries", "replay", "--data", str(data), "a"])
    assert replayed.exit_code == 0 and "1 queued again" in replayed.output
    again = runner.invoke(main, ["deliveries", "replay", "--data", str(data), "a"])
    assert again.exit_code == 1 and "is queued; only failed, dead, suppressed" in again.output
    bad = runner.invoke(main, ["deliveries", "list", "--data", str(data), "--status", "lost"])
    assert bad.exit_code == 2 and "unknown status 'lost'" in bad.output


def test_erase_deliveries(services: Services) -> None:
    now = services.clock.now_us()
    with services.db.transaction() as tx:
        enqueue(tx, [sms("gone-1", "gone"), sms("gone-2", "gone"), sms("kept", "other")], now)
        store_message(tx, "gone-web", "gone", {"title": "t"}, now)
        counts = erase_deliveries(tx, ["gone", "merged-away"])
    assert counts == {"deliveries_erased": 2, "web_messages_erased": 1}
    with services.db.read() as tx:
        assert list(delivery_status(tx, ["gone-1", "gone-2", "kept"])) == ["kept"]
        assert tx.one("SELECT COUNT(*) FROM web_messages")[0] == 0  # type: ignore[index]


def test_keys_with_colons_and_slashes_in_the_api(services: Services, client: object,
                                                 admin: dict[str, str]) -> None:
    from urllib.parse import quote

    from starlette.testclient import TestClient

    assert isinstance(client, TestClient)
    key = "welcome:v3:p_1:e/1:welcome:1"
    with services.db.transaction() as tx:
        enqueue(tx, [sms(key)], services.clock.now_us())
        tx.execute("UPDATE outbox SET status = 'failed', due_at = NULL WHERE key = ?", (key,))
    one = client.get(f"/api/v1/deliveries/{quote(key, safe=':')}", headers=admin)
    assert one.status_code == 200 and one.json()["key"] == key
    replayed = client.post(f"/api/v1/deliveries/{quote(key, safe=':')}/replay", headers=admin)
    assert replayed.status_code == 200 and replayed.json()["status"] == "queued"
