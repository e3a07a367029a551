"""Every event topic this ledger has ever stored still loads (issue 15).

Topics are ``module:qualname`` of the event class; they are stored with each event and feed
the hash chain, so they can never change. The list below is fixed: it is what the code wrote
from the first commit that stored events until the structure redesign (every event class of
the Encounter aggregate, the aggregate itself as the snapshots' and Created events'
``originator_topic``; no event class was ever renamed: `git log -S` finds none). A class that
moves must stay reachable under its old topic (ledger/persistence/topics.py once it exists).
"""

from __future__ import annotations

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.utils import resolve_topic

OLD = "ledger.domain.encounter:Encounter"
EVENTS = (
    "Opened", "DiagnosisCoded", "DiagnosisRevised", "DiagnosisRemoved", "ServiceLineAdded",
    "SupplyAdded", "ServiceLineRevised", "ServiceLineRemoved", "ChargeAdjusted",
    "ChargeReversed", "ClaimCreated", "ClaimVoidSettled", "ClaimScrubbed", "ClaimSubmitted",
    "ClaimAcknowledged", "RemittanceReceived", "ClaimAdjudicated", "LineAdjudicated",
    "PatientResponsibilityAssigned", "ClaimForwardedToSecondary", "ProviderAdjustmentPosted",
    "DenialRecorded", "AppealFiled", "AppealDecided", "StatementIssued",
    "PatientPaymentReceived", "RefundIssued", "WriteOffPosted", "DisputeOpened",
    "DisputeNoteAdded", "DisputeResolved", "AccessGranted", "AccessRevoked",
)
STORED_TOPICS = (OLD, *(f"{OLD}.{name}" for name in EVENTS),
                 "eventsourcing.domain:Snapshot")


def _application_loaded() -> None:
    # the application registers old topics when it is imported (as the service does)
    import ledger.application.service  # noqa: F401


@pytest.mark.parametrize("topic", STORED_TOPICS)
def test_every_stored_topic_resolves_to_a_class(topic: str) -> None:
    _application_loaded()
    cls = resolve_topic(topic)
    assert isinstance(cls, type)
    name = topic.rpartition(".")[2] if "." in topic.partition(":")[2] else \
        topic.partition(":")[2]
    assert cls.__name__ == name


def test_old_event_topics_resolve_to_the_aggregates_current_events() -> None:
    _application_loaded()
    from ledger.domain.encounter import Encounter

    assert resolve_topic(OLD) is Encounter
    for name in EVENTS:
        cls = resolve_topic(f"{OLD}.{name}")
        assert cls is getattr(Encounter, name), name
        assert issubclass(cls, Aggregate.Event)


def test_the_list_names_every_event_class_the_aggregate_has() -> None:
    """A new event class must be added here (and is then a stored topic for good)."""
    from ledger.domain.encounter import Encounter

    # ``Created`` is made by the library's metaclass for every aggregate class; Encounter
    # never triggers it (``Opened`` is its created event), so it was never stored.
    current = {n for n, v in vars(Encounter).items()
               if isinstance(v, type) and issubclass(v, Aggregate.Event)
               and n not in ("Event", "Created")}
    for base in Encounter.__mro__[1:]:  # events defined on mixins of a split aggregate
        current |= {n for n, v in vars(base).items() if isinstance(v, type)
                    and issubclass(v, Aggregate.Event) and n not in ("Event", "Created")
                    and not n.startswith("_") and base.__module__.startswith("ledger.")}
    assert current == set(EVENTS)
