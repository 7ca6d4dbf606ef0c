"""Privacy: consent history, erasure, export and their audit trail.

``find`` locates everything held about a person from one identifier; ``erase`` and ``export``
act on it inside a transaction; ``consent`` derives each purpose's history from the events;
``audit`` keeps the trail (no personal data); ``suppress`` keeps erased identifiers out at
ingest; ``service`` runs each operation in its transaction with its audit record; ``routes``
and ``cli`` are the edges.
"""

from partitur.privacy.consent import history as consent_history
from partitur.privacy.erase import erase
from partitur.privacy.export import export
from partitur.privacy.find import Person, find_person, subject_of
from partitur.privacy.suppress import SuppressionCheck

__all__ = [
    "Person", "SuppressionCheck", "consent_history", "erase", "export", "find_person",
    "subject_of",
]
