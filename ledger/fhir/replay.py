"""Replay an encounter's events into the aggregate while noting, for every FHIR resource the
encounter yields, the versions (and recorded times) of the events that touched it.

A resource's ``meta.versionId`` is the encounter version of the last event that touched it, and
its ``_history`` lists every such version; ``_history/{vid}`` is the resource built from the
encounter replayed to version ``vid``. Which events touch which resource:

- Coverage (one per responsible party): the encounter's opening (parties never change).
- Claim: every event naming the claim, and the creation of a claim that replaces it.
- ExplanationOfBenefit: as Claim once the claim has an adjudication, plus coding events (the
  EOB shows the encounter's current diagnoses and lines).
- ClaimResponse (one per adjudication): the events naming the claim while that adjudication is
  the claim's latest, and the reversal that negates it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.domain.encounter import Encounter

CODING_EVENTS = frozenset({"DiagnosisCoded", "DiagnosisRevised", "DiagnosisRemoved",
                           "ServiceLineAdded", "SupplyAdded", "ServiceLineRevised",
                           "ServiceLineRemoved", "ChargeAdjusted", "ChargeReversed"})

Key = tuple[str, ...]  # ("Coverage", bucket) | ("Claim", n) | ("EOB", n) | ("CR", n, seq)


@dataclass(frozen=True, slots=True)
class Touch:
    version: int
    recorded_at: datetime


@dataclass(slots=True)
class Stamps:
    """What the aggregate does not keep but FHIR needs: when each claim was created and
    submitted, what was submitted, and which versions touched each resource."""

    claim_created: dict[str, datetime] = field(default_factory=dict)
    submitted: dict[str, Any] = field(default_factory=dict)  # claim -> last ClaimSubmitted
    touches: dict[Key, list[Touch]] = field(default_factory=dict)
    keep_all: bool = True  # False: only the last touch (export: constant memory per stream)

    def touch(self, key: Key, at: Touch) -> None:
        seen = self.touches.get(key)
        if seen is None:
            self.touches[key] = [at]
        elif self.keep_all:
            seen.append(at)
        else:
            seen[0] = at

    def last(self, key: Key) -> Touch | None:
        seen = self.touches.get(key)
        return seen[-1] if seen else None

    def versions(self, key: Key) -> list[Touch]:
        return list(self.touches.get(key, ()))


def claim_index(enc: Encounter, number: str) -> int:
    """The claim's position (1-based) in creation order: stable, since claims are never
    removed; part of the resource id."""
    for i, name in enumerate(enc.claims, start=1):
        if name == number:
            return i
    raise KeyError(number)


def _note(enc: Encounter, event: Any, stamps: Stamps) -> None:
    at = Touch(event.originator_version, event.timestamp)
    name = type(event).__name__
    if name == "Opened":
        for party in enc.parties:
            stamps.touch(("Coverage", party.bucket), at)
        return
    number = getattr(event, "claim_number", None)
    if name == "ClaimCreated":
        stamps.claim_created[number] = event.timestamp
        if event.replaces:
            stamps.touch(("Claim", event.replaces), at)
            if enc.claims[event.replaces].adjudications:
                stamps.touch(("EOB", event.replaces), at)
    if name == "ClaimSubmitted":
        stamps.submitted[number] = event
    if number is not None and number in enc.claims:
        claim = enc.claims[number]
        stamps.touch(("Claim", number), at)
        if claim.adjudications:
            stamps.touch(("EOB", number), at)
            latest = claim.adjudications[-1]
            stamps.touch(("CR", number, str(latest.seq)), at)
            if name == "ClaimAdjudicated" and latest.status_code == "22" and \
                    event.reverses_seq is not None:
                stamps.touch(("CR", number, str(event.reverses_seq)), at)
    elif name in CODING_EVENTS:
        for n, claim in enc.claims.items():
            if claim.adjudications:
                stamps.touch(("EOB", n), at)


def replay(events: Iterable[Any], stamps: Stamps | None = None
           ) -> Iterator[tuple[Encounter, Stamps, Any]]:
    """Apply the events in order; after each, yield (encounter, stamps, event). The encounter
    object is the same one, mutated in place."""
    stamps = stamps if stamps is not None else Stamps()
    enc: Any = None
    for event in events:
        enc = event.mutate(enc)
        if not isinstance(enc, Encounter):
            return  # another kind of stream: no FHIR resources
        _note(enc, event, stamps)
        yield enc, stamps, event


def replay_all(events: Iterable[Any], *, keep_all: bool = True
               ) -> tuple[Encounter | None, Stamps]:
    enc = None
    stamps = Stamps(keep_all=keep_all)
    for current, _, _ in replay(events, stamps):
        enc = current
    return enc, stamps
