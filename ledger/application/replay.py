"""Replay reads: an encounter rebuilt from its own events (from the nearest snapshot) as it is
now, as it was at a version, or as the ledger had recorded it at a moment; and its history,
every event in order. Answered from the event store alone (no projection, so no lag), on the
primary or a read replica's read-only store.

``ReplayReads`` is mixed into ``LedgerApplication`` (``service.py``), which provides the
library's ``repository`` and ``events``; commands load their encounter with ``get_encounter``
too."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from ledger.domain.encounter import Encounter
from ledger.domain.errors import NotFound

if TYPE_CHECKING:
    from eventsourcing.application import Repository
    from eventsourcing.persistence import EventStore


class ReplayReads:
    repository: Repository[UUID]  # set by eventsourcing's Application
    events: EventStore[UUID]

    def get_encounter(self, encounter_id: UUID, version: int | None = None) -> Encounter:
        """The encounter now, or at ``version``."""
        try:
            enc = self.repository.get(encounter_id, version=version)
        except AggregateNotFoundError:
            raise NotFound("encounter_id", "encounter.exists",
                           "encounter_id: no such encounter") from None
        if not isinstance(enc, Encounter):
            raise NotFound("encounter_id", "encounter.exists", "encounter_id: not an encounter")
        return enc

    def version_at(self, encounter_id: UUID, moment: datetime) -> int:
        """The encounter's version as recorded at ``moment`` (when the ledger learned it)."""
        version = 0
        for event in self.events.get(encounter_id):
            if event.timestamp <= moment:
                version = event.originator_version
            else:
                break
        if version == 0:
            raise NotFound("as_of", "encounter.existed",
                           "as_of: the encounter did not exist yet at that moment")
        return version

    def encounter_as_of(self, encounter_id: UUID, moment: datetime) -> Encounter:
        """The encounter as the ledger had recorded it at ``moment``."""
        return self.get_encounter(encounter_id, version=self.version_at(encounter_id, moment))

    def history(self, encounter_id: UUID) -> list[Any]:
        """Every event of the encounter, in order."""
        events = list(self.events.get(encounter_id))
        if not events:
            raise NotFound("encounter_id", "encounter.exists", "encounter_id: no such encounter")
        return events
