"""Privacy operations as the API and the command line run them: each in its own transaction,
each leaving an audit record (also when nothing was held)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from partitur.analytics import apply_erasures
from partitur.errors import NotFound
from partitur.identity.extract import Identifier, identifier_hash
from partitur.privacy import audit, consent
from partitur.privacy.erase import erase
from partitur.privacy.export import export
from partitur.privacy.find import subject_of, timeline_seqs
from partitur.profiles import store as profile_store
from partitur.profiles.state import public_consent
from partitur.worker.processor import lock_identity, rules_from

if TYPE_CHECKING:
    from partitur.services import Services


def _who(subject: Identifier) -> dict[str, Any]:
    return {"type": subject.type, "subject": identifier_hash(subject.type, subject.value)}


def _missed(services: Services, action: str, actor: str, subject: Identifier) -> None:
    with services.db.transaction() as tx:
        audit.record(tx, action, actor, {"found": False, **_who(subject)},
                     services.clock.now_us())


def erase_person(services: Services, kind: Any, value: Any, actor: str) -> dict[str, Any]:
    """Erase the person; :class:`NotFound` (audited) if nothing is held about them."""
    rules = rules_from(services.settings)
    subject = subject_of(rules, kind, value)
    try:
        with services.db.transaction() as tx:
            lock_identity(services.db, tx)
            now = services.clock.now_us()
            summary = erase(tx, services.events, rules, subject, now)
            audit.record(tx, "erase", actor, {"found": True, **_who(subject), **summary}, now)
    except NotFound:
        _missed(services, "erase", actor, subject)
        raise
    apply_erasures(services)  # the analytics Parquet files (recorded in the transaction)
    return summary


def export_person(services: Services, kind: Any, value: Any, actor: str) -> dict[str, Any]:
    """Everything held about the person; :class:`NotFound` (audited) if nothing is."""
    rules = rules_from(services.settings)
    subject = subject_of(rules, kind, value)
    try:
        # On SQLite a read transaction is a snapshot and blocks no writer; on PostgreSQL the
        # identity lock keeps the worker from moving the person's events between the reads.
        with services.db.read() as tx:
            lock_identity(services.db, tx)
            data = export(tx, services.events, rules, subject, services.clock.now_us())
    except NotFound:
        _missed(services, "export", actor, subject)
        raise
    # The document is handed out only once the audit record is written.
    with services.db.transaction() as tx:
        audit.record(tx, "export", actor, {
            "found": True, **_who(subject),
            "profile": data["profile"]["id"] if data["profile"] else None,
            "profiles": len(data["profiles"]), "events": len(data["events"]),
            "queued_events": len(data["queued_events"]),
            "identity_log": len(data["identity_log"]),
            "rejected_events": len(data["rejected_events"]),
        }, services.clock.now_us())
    return data


def consent_view(services: Services, profile_id: str) -> tuple[str, dict[str, Any] | None]:
    """``(live id, view)``; the view is None when ``profile_id`` was merged into ``live id``."""
    with services.db.read() as tx:
        live, redirected = profile_store.resolve_id(tx, profile_id)
        if live is None:
            raise NotFound(f"no profile {profile_id}")
        if redirected:
            return live, None
        state = profile_store.get(tx, live)
        assert state is not None
        # Merged profiles' timelines were moved to the survivor; all of it is on ``live``.
        seqs = timeline_seqs(tx, [live])
        statements = consent.load_statements(tx, seqs)
        names = consent.source_names(tx)
    current = public_consent(state.consent)
    for entry in current.values():
        entry["source_name"] = names.get(entry["source"])
    return live, {
        "profile_id": live,
        "consent": current,
        "history": consent.history(statements, names),
    }


def audit_trail(
    services: Services, *, limit: int, action: str | None, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    with services.db.read() as tx:
        return audit.trail(tx, limit=limit, action=action, before=cursor)
