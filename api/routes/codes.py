"""``GET /codes/{system}/{code}``: is a code valid and billable, what it means, and which
code-set version says so. Reference data only (no PHI, no encounter): no actor needed.

Mount with ``app.include_router(routes_codes.router)``. An unknown system is a 404
problem+json (``NotFound``, rule ``code_system.exists``); a bad code is a 200 answer with
``valid``/``billable`` false and the ``rule`` and ``message`` saying why.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api.responses import OrjsonResponse
from ledger.codes.lookup import SYSTEMS, lookup_code

router = APIRouter(prefix="/codes", tags=["codes"])


@router.get("/{system}/{code}", summary="Look up a code (ICD-10-CM, CPT, HCPCS, modifier, …)")
def get_code(
    system: Annotated[str, Path(description=", ".join(SYSTEMS))],
    code: Annotated[str, Path(max_length=20, description="the code, e.g. E11.9 or 99213")],
    date_of_service: Annotated[date | None, Query(
        description="validity on this date of service (default: latest code set)")] = None,
) -> Response:
    return OrjsonResponse(lookup_code(system, code, date_of_service))
