"""``GET /encounters/{id}/explain?figure=...``: the events that produced a money figure, each
with its signed amount, date, actor and reason, summing exactly to the figure (``ledger.explain``
replays the encounter with the aggregate's own state changes)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import IdentityDep, LedgerDep, ReadLedgerDep, check_encounter_access
from api.responses import OrjsonResponse
from ledger.domain.errors import InvalidValue
from ledger.explain import FIGURE_HELP, explain, figures_of

router = APIRouter(prefix="/encounters", tags=["encounters"])


def explain_figure(ledger: LedgerDep, identity: IdentityDep, encounter_id: UUID,
                   figure: str | None, as_of_version: int | None = None) -> dict:
    """The explanation, after the same encounter-access check as every encounter read (so a
    missing figure is refused only after it: 404 for "not yours" and "missing" alike)."""
    current = ledger.get_encounter(encounter_id)
    check_encounter_access(identity, current)
    if not figure:
        raise InvalidValue("figure", "figure.required",
                           "figure: name the figure to explain (see the parameter's list)")
    result = explain(ledger.history(encounter_id), figure, as_of_version=as_of_version)
    result["encounter_id"] = str(encounter_id)
    result["figures"] = figures_of(current)
    return result


@router.get("/{encounter_id}/explain",
            summary="Explain a money figure: the events that produced it, summing to it")
def explain_route(encounter_id: UUID, ledger: ReadLedgerDep, identity: IdentityDep,
                  figure: Annotated[str | None, Query(max_length=120, description="; ".join(
                      f"`{k}`: {v}" for k, v in FIGURE_HELP.items()))] = None,
                  as_of_version: Annotated[int | None, Query(ge=1)] = None) -> Response:
    return OrjsonResponse(explain_figure(ledger, identity, encounter_id, figure, as_of_version))
