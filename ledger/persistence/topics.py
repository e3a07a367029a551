"""Event topics are stored for good: ``module:qualname`` of the event class, written with each
event and fed into its chain hash. A class that moves must still load from every topic it was
stored under, and a reader that filters the log by topic must ask for all of them.

``MOVED`` names, for each class that moved, the topics it was stored under before
(tests/unit/test_stored_topics.py holds the fixed list of every topic ever stored, and
tests/integration/test_old_log.py a ledger written before the structure redesign). The
Encounter aggregate moved from the module ``ledger.domain.encounter`` to the package's
``aggregate`` module (issue 15): the aggregate's topic (snapshots' and ``Opened`` events'
``originator_topic``) and each of its event classes' topics changed module only.
``register_old_topics()`` runs when the application is imported.
"""

from __future__ import annotations

from eventsourcing.utils import get_topic, register_topic

_OLD_ENCOUNTER = "ledger.domain.encounter:Encounter"
_ENCOUNTER = "ledger.domain.encounter.aggregate:Encounter"
# Every event class of the aggregate when it moved (a fixed list: it is history, not derived
# from the class; events added after the move were never stored under the old module).
_ENCOUNTER_EVENTS = (
    "Opened", "DiagnosisCoded", "DiagnosisRevised", "DiagnosisRemoved", "ServiceLineAdded",
    "SupplyAdded", "ServiceLineRevised", "ServiceLineRemoved", "ChargeAdjusted",
    "ChargeReversed", "ClaimCreated", "ClaimVoidSettled", "ClaimScrubbed", "ClaimSubmitted",
    "ClaimAcknowledged", "RemittanceReceived", "ClaimAdjudicated", "LineAdjudicated",
    "PatientResponsibilityAssigned", "ClaimForwardedToSecondary", "ProviderAdjustmentPosted",
    "DenialRecorded", "AppealFiled", "AppealDecided", "StatementIssued",
    "PatientPaymentReceived", "RefundIssued", "WriteOffPosted", "DisputeOpened",
    "DisputeNoteAdded", "DisputeResolved", "AccessGranted", "AccessRevoked",
)

# old topic -> "module:qualname" where the class lives now
MOVED: dict[str, str] = {
    _OLD_ENCOUNTER: _ENCOUNTER,
    **{f"{_OLD_ENCOUNTER}.{name}": f"{_ENCOUNTER}.{name}" for name in _ENCOUNTER_EVENTS},
}


def register_old_topics() -> None:
    from eventsourcing.utils import resolve_topic

    for old, new in MOVED.items():
        register_topic(old, resolve_topic(new))


def stored_topics(cls: type) -> list[str]:
    """Every topic events of ``cls`` may be stored under: today's and any earlier ones."""
    topic = get_topic(cls)
    return [topic, *sorted(old for old, new in MOVED.items() if new == topic)]
