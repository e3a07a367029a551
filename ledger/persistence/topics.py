"""Event topics are stored for good: ``module:qualname`` of the event class, written with each
event and fed into its chain hash. A class that moves must still load from every topic it was
stored under, and a reader that filters the log by topic must ask for all of them.

``MOVED`` names, for each class that moved, the topics it was stored under before (none has
moved yet: tests/unit/test_stored_topics.py holds the fixed list of every topic ever stored,
and tests/integration/test_old_log.py a ledger written before the structure redesign).
``register_old_topics()`` runs when the application is imported.
"""

from __future__ import annotations

from eventsourcing.utils import get_topic, register_topic

# old topic -> "module:qualname" where the class lives now
MOVED: dict[str, str] = {}


def register_old_topics() -> None:
    from eventsourcing.utils import resolve_topic

    for old, new in MOVED.items():
        register_topic(old, resolve_topic(new))


def stored_topics(cls: type) -> list[str]:
    """Every topic events of ``cls`` may be stored under: today's and any earlier ones."""
    topic = get_topic(cls)
    return [topic, *sorted(old for old, new in MOVED.items() if new == topic)]
