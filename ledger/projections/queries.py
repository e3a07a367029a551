"""Read queries over the projections' tables: plain SQL, one function per question.

Every function takes an open psycopg connection (any row factory: rows are returned as
dicts) and returns plain Python values (Decimal money, dates, UUIDs). Lists are paged with an
opaque cursor: pass ``next_cursor`` of one page as ``cursor`` to get the next.

Read-your-writes: a caller that wrote at log position P waits for the projections to reach P
before querying (ledger/projections/waiting.py: one waiter, three feeds).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.sql import SQL, Composable, Identifier, Literal

from ledger.domain.errors import InvalidValue
from ledger.persistence.conditions import given
from ledger.projections import PROJECTION_NAMES
from ledger.projections.base import APPLICATION_NAME
from ledger.projections.history import HISTORY_OF, SUMMED

MAX_LIMIT = 500
CLAIM_STATUSES = ("draft", "scrubbed", "submitted", "accepted", "rejected", "adjudicated",
                  "denied", "in_appeal", "paid", "closed", "voided")
AGING_BUCKETS = (("0_30", 0, 30), ("31_60", 31, 60), ("61_90", 61, 90), ("91_120", 91, 120),
                 ("over_120", 121, None))


@dataclass(frozen=True)
class ResultPage:
    items: list[dict[str, Any]]
    next_cursor: str | None


def normalise_code(code: str) -> str:
    """Codes are stored upper case, ICD-10-CM without the dot."""
    return code.strip().upper().replace(".", "")


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidValue("limit", "limit.range", f"limit: between 1 and {MAX_LIMIT}")
    return limit


def _cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    try:
        value = int(cursor)
    except ValueError:
        raise InvalidValue("cursor", "cursor.format", "cursor: not a cursor from this list") \
            from None
    if value < 0:
        raise InvalidValue("cursor", "cursor.format", "cursor: not a cursor from this list")
    return value


def _given(params: list[Any], *conditions: tuple[str, Any]) -> list[Composable]:
    """``given`` (ledger.persistence.conditions) as composable SQL."""
    return [SQL(c) for c in given(params, *conditions)]


def _source(table: str, position: int | None) -> Composable:
    """The rows of ``table`` now (None), or as they stood at log ``position``: the versions of
    its history whose [valid_from, valid_to) contains it (summed tables: skipping versions
    whose measures all came back to zero, which the current table deletes)."""
    if position is None:
        return Identifier(table)
    return SQL("(SELECT * FROM {0} WHERE int8range(valid_from, valid_to) @> {1}::bigint{2})"
               ).format(Identifier(HISTORY_OF[table]), Literal(int(position)),
                        SQL(" AND present") if table in SUMMED else SQL(""))


def _rows(conn: Connection[Any], query: Composable | str, params: Sequence[Any] = ()
          ) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


# ---------------------------------------------------------------- read-your-writes
def _positions_sql(names: Iterable[str]) -> Composable:
    parts = [SQL("SELECT {0}::text AS name, (SELECT notification_id FROM {1} WHERE "
                 "application_name = {2}) AS position").format(
        Literal(n), Identifier(f"{n}_tracking"), Literal(APPLICATION_NAME)) for n in names]
    return SQL(" UNION ALL ").join(parts)


def projection_positions(conn: Connection[Any],
                         names: Iterable[str] = PROJECTION_NAMES) -> dict[str, int]:
    """Each projection's tracked log position (0: nothing applied yet)."""
    return {r["name"]: int(r["position"] or 0) for r in _rows(conn, _positions_sql(names))}


# ---------------------------------------------------------------- claims
PAYER_COLUMNS = ("payer_id", "party_kind", "claims", "open_claims", "billed", "allowed", "paid",
                 "contractual", "other_adjustments", "patient_responsibility", "written_off",
                 "provider_adjustments", "outstanding")
PATIENT_COLUMNS = ("patient_ref", "encounters", "charged", "owed", "credit", "paid", "refunded",
                   "written_off", "deductible", "coinsurance", "copay", "statements",
                   "last_statement_date", "last_statement_amount", "last_statement_position")
CLAIM_LIST_COLUMNS = SQL(
    "c.encounter_id, c.claim_number, c.created_position, c.patient_ref, c.payer_id, "
    "c.party_kind, c.bucket, c.frequency, c.status, c.service_from, c.service_to, "
    "c.diagnoses, c.total_charge, c.allowed, c.paid, c.patient_responsibility, c.contractual, "
    "c.other_adjustments, c.outstanding, c.payer_icn, c.submitted_on, c.denial_deadline, "
    "c.balance_primary, c.balance_secondary, c.balance_tertiary, c.balance_patient, "
    "c.version, c.last_event, c.updated_at")


def list_claims(conn: Connection[Any], *, status: str | None = None,
                payer_id: str | None = None, patient_ref: str | None = None,
                dos_from: date | None = None, dos_to: date | None = None,
                code: str | None = None, actor_id: str | None = None,
                limit: int = 50, cursor: str | None = None, position: int | None = None,
                adjudicated_from: date | None = None, adjudicated_to: date | None = None,
                paid_from: date | None = None, paid_to: date | None = None) -> ResultPage:
    """Current claims, newest first, filtered by status, payer, patient reference, dates of
    service (overlapping ``dos_from``..``dos_to``), a code (diagnosis on the claim, or a
    procedure/revenue code on one of its lines) or an actor (anyone who recorded an event on
    the claim's encounter, from the audit trail).

    ``position``: the claims as they stood at that log position (``claims_history``).
    Effective time: ``adjudicated_from``/``_to`` (date of the claim's last adjudication) and
    ``paid_from``/``_to`` (date of its last payment) combine with the dates of service and
    with ``position`` ("September's services as known at P") or without it (as known now:
    the history's open versions)."""
    limit = _limit(limit)
    where: list[Composable] = []
    params: list[Any] = []
    if status is not None and status not in CLAIM_STATUSES:
        raise InvalidValue("status", "status.enum", f"status: one of {', '.join(CLAIM_STATUSES)}")
    where += _given(params, ("c.status = %s", status), ("c.payer_id = %s", payer_id or None),
                    ("c.patient_ref = %s", patient_ref or None))
    effective = Effective(dos_from, dos_to, adjudicated_from, adjudicated_to, paid_from,
                          paid_to)
    dated = effective.dated()  # needs last_paid_on: the history's versions, now or at P
    where += effective.where(params)
    if code and position is not None:
        raise InvalidValue("code", "code.as_of", "code: not available with as_of (claim lines "
                           "keep no history); filter the current list")
    if code:
        value = normalise_code(code)
        where.append(SQL(
            "(c.diagnoses @> ARRAY[%s]::text[] OR EXISTS (SELECT 1 FROM current_claim_lines l "
            "WHERE l.encounter_id = c.encounter_id AND l.claim_number = c.claim_number "
            "AND (l.procedure_code = %s OR l.revenue_code = %s)))"))
        params += [value, value, value]
    if actor_id:
        where.append(SQL("EXISTS (SELECT 1 FROM audit_trail a WHERE a.actor_id = %s AND "
                         "a.encounter_id = c.encounter_id{0})").format(
            SQL("") if position is None else SQL(" AND a.position <= {0}").format(
                Literal(int(position)))))
        params.append(actor_id)
    after = _cursor(cursor)
    if after is not None:
        where.append(SQL("c.created_position < %s"))
        params.append(after)
    query = SQL("SELECT {cols} FROM {source} c {where} ORDER BY c.created_position DESC "
                "LIMIT %s").format(
        cols=CLAIM_LIST_COLUMNS if position is None and not dated else CLAIM_LIST_COLUMNS + SQL(
            ", c.last_adjudicated_on, c.last_paid_on"),
        source=claim_versions(position) if dated else _source("current_claims", position),
        where=SQL("WHERE ") + SQL(" AND ").join(where) if where else SQL(""))
    rows = _rows(conn, query, [*params, limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return ResultPage(rows, str(rows[-1]["created_position"]) if more else None)


def get_claim(conn: Connection[Any], claim_number: str,
              encounter_id: UUID | None = None) -> dict[str, Any] | None:
    """One claim with its lines (and the encounter's balances per bucket); None if unknown.
    Claim numbers are unique per encounter: pass ``encounter_id`` when numbers may repeat."""
    query = "SELECT * FROM current_claims WHERE claim_number = %s"
    params: list[Any] = [claim_number]
    if encounter_id is not None:
        query += " AND encounter_id = %s"
        params.append(encounter_id)
    rows = _rows(conn, query + " ORDER BY created_position DESC LIMIT 1", params)
    if not rows:
        return None
    claim = rows[0]
    claim["lines"] = _rows(conn, "SELECT * FROM current_claim_lines WHERE encounter_id = %s "
                                 "AND claim_number = %s ORDER BY line_no",
                           (claim["encounter_id"], claim["claim_number"]))
    return claim


def encounter_claims(conn: Connection[Any], encounter_id: UUID) -> list[dict[str, Any]]:
    """Every claim of an encounter (originals, replacements, voids), oldest first."""
    return _rows(conn, "SELECT * FROM current_claims WHERE encounter_id = %s "
                       "ORDER BY created_position", (encounter_id,))


def encounter_summary(conn: Connection[Any], encounter_id: UUID) -> dict[str, Any] | None:
    """The encounter's balances per bucket and patient totals, with its current lines."""
    rows = _rows(conn, "SELECT * FROM claims_encounters WHERE encounter_id = %s",
                 (encounter_id,))
    if not rows:
        return None
    enc = rows[0]
    enc["lines"] = _rows(conn, "SELECT * FROM claims_encounter_lines WHERE encounter_id = %s "
                               "ORDER BY line_no", (encounter_id,))
    return enc


# ---------------------------------------------------------------- effective time
@dataclass(frozen=True)
class Effective:
    """Effective-time filters on claims (dates inclusive): date of service (a claim's
    ``service_from``..``service_to`` overlapping ``dos_from``..``dos_to``), date of its last
    adjudication and date of its last payment (``last_adjudicated_on``, ``last_paid_on``)."""

    dos_from: date | None = None
    dos_to: date | None = None
    adjudicated_from: date | None = None
    adjudicated_to: date | None = None
    paid_from: date | None = None
    paid_to: date | None = None

    def _terms(self) -> tuple[tuple[str, str, date | None], ...]:
        return (("service_to", ">=", self.dos_from), ("service_from", "<=", self.dos_to),
                ("last_adjudicated_on", ">=", self.adjudicated_from),
                ("last_adjudicated_on", "<=", self.adjudicated_to),
                ("last_paid_on", ">=", self.paid_from), ("last_paid_on", "<=", self.paid_to))

    def given(self) -> bool:
        return any(value is not None for _, _, value in self._terms())

    def dated(self) -> bool:
        """Filters on adjudication or payment dates (the current claims table keeps only
        the last adjudication date; the history keeps both)."""
        return any(v is not None for v in (self.adjudicated_from, self.adjudicated_to,
                                           self.paid_from, self.paid_to))

    def where(self, params: list[Any], alias: str = "c") -> list[Composable]:
        for name in ("dos", "adjudicated", "paid"):
            lo, hi = getattr(self, f"{name}_from"), getattr(self, f"{name}_to")
            if lo is not None and hi is not None and lo > hi:
                raise InvalidValue(f"{name}_from", "effective.range",
                                   f"{name}_from: after {name}_to ({lo} > {hi})")
        out: list[Composable] = []
        for column, op, value in self._terms():
            if value is not None:
                out.append(SQL("{0}.{1} {2} %s").format(Identifier(alias), Identifier(column),
                                                        SQL(op)))
                params.append(value)
        return out

    def as_dict(self) -> dict[str, date | None]:
        return {k: getattr(self, k) for k in ("dos_from", "dos_to", "adjudicated_from",
                                              "adjudicated_to", "paid_from", "paid_to")}


def claim_versions(position: int | None) -> Composable:
    """The claims list's rows with their effective dates (``claims_history``): as they stood
    at ``position``, or now (the open versions)."""
    if position is None:
        return SQL("(SELECT * FROM claims_history WHERE valid_to IS NULL)")
    return _source("current_claims", position)


def payer_balances_effective(conn: Connection[Any], effective: Effective, *,
                             payer_id: str | None = None, as_of: date | None = None,
                             position: int | None = None) -> list[dict[str, Any]]:
    """Payer balances over the claims the effective-time filters select (e.g. September's
    services), as known at ``position`` or now: per payer and kind of party, claims, open
    claims, charged, allowed, paid, contractual and other adjustments, patient
    responsibility, write-offs, outstanding and its aging (days since submission counted to
    ``as_of``). Each row carries both dates: the effective ones it covers (dates of service,
    last adjudication, last payment) and when the ledger recorded its latest change
    (``recorded_position``, ``recorded_at``). Sums of the same claim rows as the payer
    balances (billed and provider adjustments are not kept per claim version)."""
    from ledger.domain.figures import OPEN_STATUSES  # noqa: PLC0415

    as_of = as_of or date.today()
    params: list[Any] = [list(OPEN_STATUSES)]
    buckets = [SQL("COALESCE(SUM(c.outstanding) FILTER (WHERE c.submitted_on IS NOT NULL AND "
                   "{cond}), 0) AS {name}").format(
        cond=SQL("%s - c.submitted_on BETWEEN {0} AND {1}").format(Literal(lo), Literal(hi))
        if hi is not None else SQL("%s - c.submitted_on >= {0}").format(Literal(lo)),
        name=Identifier(f"aging_{name}")) for name, lo, hi in AGING_BUCKETS]
    params += [as_of] * len(AGING_BUCKETS)
    where = effective.where(params)
    where += _given(params, ("c.payer_id = %s", payer_id or None))
    query = SQL(
        "SELECT c.payer_id, c.party_kind, count(*) AS claims, "
        "count(*) FILTER (WHERE c.status = ANY(%s)) AS open_claims, "
        "SUM(c.total_charge) AS charged, SUM(c.allowed) AS allowed, SUM(c.paid) AS paid, "
        "SUM(c.contractual) AS contractual, SUM(c.other_adjustments) AS other_adjustments, "
        "SUM(c.patient_responsibility) AS patient_responsibility, "
        "SUM(c.written_off) AS written_off, SUM(c.outstanding) AS outstanding, {buckets}, "
        "min(c.service_from) AS service_from, max(c.service_to) AS service_to, "
        "max(c.last_adjudicated_on) AS last_adjudicated_on, max(c.last_paid_on) AS last_paid_on, "
        "max(c.valid_from) AS recorded_position, max(c.updated_at) AS recorded_at "
        "FROM {source} c {where} GROUP BY c.payer_id, c.party_kind "
        "ORDER BY c.payer_id, c.party_kind"
    ).format(buckets=SQL(", ").join(buckets), source=claim_versions(position),
             where=SQL("WHERE ") + SQL(" AND ").join(where) if where else SQL(""))
    return _rows(conn, query, params)


def patient_balances_effective(conn: Connection[Any], effective: Effective, *,
                               patient_ref: str | None = None, position: int | None = None,
                               owing_only: bool = False, limit: int = MAX_LIMIT
                               ) -> list[dict[str, Any]]:
    """What patients owe (``owed``) or are owed (``credit``) on the encounters whose claims
    the effective-time filters select, as known at ``position`` or now, largest owed first,
    with the effective dates covered and the latest recorded change. Covers encounters that
    have a claim (the per-claim history carries the encounter's patient balance)."""
    params: list[Any] = []
    where = effective.where(params)
    if patient_ref is not None:
        where.append(SQL("c.patient_ref = %s"))
        params.append(patient_ref)
    query = SQL(
        "WITH enc AS (SELECT c.encounter_id, min(c.patient_ref) AS patient_ref, "
        "min(c.balance_patient) AS balance, min(c.service_from) AS service_from, "
        "max(c.service_to) AS service_to, max(c.last_adjudicated_on) AS last_adjudicated_on, "
        "max(c.last_paid_on) AS last_paid_on, max(c.valid_from) AS recorded_position, "
        "max(c.updated_at) AS recorded_at FROM {source} c {where} GROUP BY c.encounter_id) "
        "SELECT patient_ref, count(*) AS encounters, "
        "SUM(GREATEST(balance, 0)) AS owed, SUM(GREATEST(-balance, 0)) AS credit, "
        "min(service_from) AS service_from, max(service_to) AS service_to, "
        "max(last_adjudicated_on) AS last_adjudicated_on, max(last_paid_on) AS last_paid_on, "
        "max(recorded_position) AS recorded_position, max(recorded_at) AS recorded_at "
        "FROM enc GROUP BY patient_ref {having} ORDER BY owed DESC, patient_ref LIMIT %s"
    ).format(source=claim_versions(position),
             where=SQL("WHERE ") + SQL(" AND ").join(where) if where else SQL(""),
             having=SQL("HAVING SUM(GREATEST(balance, 0)) <> 0 OR SUM(GREATEST(-balance, 0)) "
                        "<> 0") if owing_only else SQL(""))
    return _rows(conn, query, [*params, _limit(limit)])


# ---------------------------------------------------------------- balances
def payer_balances(conn: Connection[Any], payer_id: str | None = None, *,
                   as_of: date | None = None, position: int | None = None
                   ) -> list[dict[str, Any]]:
    """Per payer and kind of party: claims, open claims, billed, allowed, paid, contractual
    (CO) and other adjustments, patient responsibility, write-offs, provider (PLB)
    adjustments, outstanding, and outstanding by age since submission (``aging_0_30`` …
    ``aging_over_120``, days counted to ``as_of``, default today). ``position``: as the
    balances stood at that log position."""
    as_of = as_of or date.today()
    buckets = [SQL("COALESCE(SUM(a.outstanding) FILTER (WHERE {cond}), 0) AS {name}").format(
        cond=SQL("%s - a.submitted_on BETWEEN {0} AND {1}").format(Literal(lo), Literal(hi))
        if hi is not None else SQL("%s - a.submitted_on >= {0}").format(Literal(lo)),
        name=Identifier(f"aging_{name}")) for name, lo, hi in AGING_BUCKETS]
    where = SQL("WHERE p.payer_id = %s") if payer_id else SQL("")
    query = SQL(
        "SELECT {cols}, {buckets} FROM {balances} p LEFT JOIN {aging} a "
        "ON a.payer_id = p.payer_id AND a.party_kind = p.party_kind {where} "
        "GROUP BY {cols} ORDER BY p.payer_id, p.party_kind"
    ).format(buckets=SQL(", ").join(buckets), where=where,
             cols=SQL(", ").join(SQL("p.{0}").format(Identifier(c)) for c in PAYER_COLUMNS),
             balances=_source("payer_balances", position),
             aging=_source("payer_aging", position))
    params: list[Any] = [as_of] * len(AGING_BUCKETS)
    if payer_id:
        params.append(payer_id)
    return _rows(conn, query, params)


def patient_balance(conn: Connection[Any], patient_ref: str,
                    position: int | None = None) -> dict[str, Any] | None:
    """What one patient owes across encounters: owed, paid, refunded, credit (refund
    liability), written off, deductible/coinsurance/copay assigned, last statement."""
    rows = patient_balances(conn, patient_ref=patient_ref, position=position, limit=1)
    return rows[0] if rows else None


def patient_balances(conn: Connection[Any], *, patient_ref: str | None = None,
                     position: int | None = None, owing_only: bool = False,
                     limit: int = MAX_LIMIT) -> list[dict[str, Any]]:
    """Patients' balances (now, or as of ``position``), largest amount owed first."""
    where = [SQL("TRUE")]
    params: list[Any] = []
    if patient_ref is not None:
        where.append(SQL("p.patient_ref = %s"))
        params.append(patient_ref)
    if owing_only:
        where.append(SQL("(p.owed <> 0 OR p.credit <> 0)"))
    return _rows(conn, SQL("SELECT {cols} FROM {source} p WHERE {where} "
                           "ORDER BY p.owed DESC, p.patient_ref LIMIT %s").format(
        cols=SQL(", ").join(SQL("p.{0}").format(Identifier(c)) for c in PATIENT_COLUMNS),
        source=_source("patient_balances", position), where=SQL(" AND ").join(where)),
        [*params, _limit(limit)])


# ---------------------------------------------------------------- disputes and denials
def work_queue(conn: Connection[Any], *, kind: str | None = None, open_only: bool = True,
               due_before: date | None = None, payer_id: str | None = None,
               assignee: str | None = None, limit: int = 50,
               cursor: str | None = None) -> ResultPage:
    """Denials, rejections and disputes, earliest deadline first (open ones by default)."""
    limit = _limit(limit)
    params: list[Any] = []
    if kind is not None and kind not in ("denial", "rejection", "dispute"):
        raise InvalidValue("kind", "kind.enum", "kind: denial, rejection or dispute")
    where = _given(params, ("item_kind = %s", kind), ("payer_id = %s", payer_id or None),
                   ("assignee = %s", assignee or None), ("deadline < %s", due_before))
    if open_only:
        where.append(SQL("status <> 'resolved'"))
    offset = _cursor(cursor) or 0
    query = SQL("SELECT * FROM work_queue {where} ORDER BY deadline NULLS LAST, "
                "opened_position LIMIT %s OFFSET %s").format(
        where=SQL("WHERE ") + SQL(" AND ").join(where) if where else SQL(""))
    rows = _rows(conn, query, [*params, limit + 1, offset])
    more = len(rows) > limit
    return ResultPage(rows[:limit], str(offset + limit) if more else None)


# ---------------------------------------------------------------- trends
def diagnosis_trend(conn: Connection[Any], diagnosis: str, *, scope: str = "principal",
                    kind: str | None = None, limit: int = 50,
                    position: int | None = None) -> dict[str, Any] | None:
    """For one diagnosis: encounters, charged/allowed/paid in total and per encounter, and the
    services and supplies used (most frequent first) with counts and money."""
    if scope not in ("principal", "any"):
        raise InvalidValue("scope", "scope.enum", "scope: principal or any")
    dx = normalise_code(diagnosis)
    rows = _rows(conn, SQL("SELECT diagnosis, scope, encounters, lines, charged, allowed, "
                           "paid, round(charged / encounters, 2) AS average_charged, "
                           "round(allowed / encounters, 2) AS average_allowed, "
                           "round(paid / encounters, 2) AS average_paid FROM {0} t "
                           "WHERE diagnosis = %s AND scope = %s").format(
        _source("trend_diagnoses", position)), (dx, scope))
    if not rows:
        return None
    out = rows[0]
    where = "diagnosis = %s AND scope = %s" + (" AND kind = %s" if kind else "")
    params: list[Any] = [dx, scope] + ([kind] if kind else [])
    out["services"] = _rows(
        conn, SQL("SELECT kind, procedure_code, revenue_code, encounters, lines, units, "
                  "charged, allowed, paid, round(charged / encounters, 2) AS "
                  "average_charged_per_encounter FROM {0} t WHERE " + where +
                  " ORDER BY encounters DESC, lines DESC, charged DESC, procedure_code, "
                  "revenue_code LIMIT %s").format(
            _source("trend_diagnosis_services", position)), [*params, _limit(limit)])
    return out


def top_diagnoses(conn: Connection[Any], *, scope: str = "principal",
                  limit: int = 50, position: int | None = None) -> list[dict[str, Any]]:
    """Diagnoses by number of encounters, with average charged/allowed/paid per encounter."""
    return _rows(conn, SQL("SELECT diagnosis, scope, encounters, lines, charged, allowed, paid, "
                           "round(charged / encounters, 2) AS average_charged, "
                           "round(allowed / encounters, 2) AS average_allowed, "
                           "round(paid / encounters, 2) AS average_paid FROM {0} t "
                           "WHERE scope = %s ORDER BY encounters DESC, diagnosis LIMIT %s"
                           ).format(_source("trend_diagnoses", position)),
                 (scope, _limit(limit)))


def code_revisions_by_coder(conn: Connection[Any], *, limit: int = 50,
                            position: int | None = None) -> list[dict[str, Any]]:
    """Per coder: diagnoses coded/revised/removed, lines added/revised/removed, most revisions
    first."""
    return _rows(conn, SQL("SELECT actor_id, actor_role, diagnoses_coded, diagnoses_revised, "
                           "diagnoses_removed, lines_added, line_codes_revised, lines_revised, "
                           "lines_removed, charges_adjusted, diagnoses_revised + "
                           "diagnoses_removed + line_codes_revised + lines_removed AS "
                           "code_changes FROM {0} t ORDER BY code_changes DESC, actor_id, "
                           "actor_role LIMIT %s").format(
        _source("code_revisions_by_coder", position)), (_limit(limit),))


def code_revisions_by_code(conn: Connection[Any], *, code_system: str | None = None,
                           limit: int = 50, position: int | None = None
                           ) -> list[dict[str, Any]]:
    """Codes that get changed most: times revised away from, revised to, removed, assigned."""
    where = "WHERE code_system = %s" if code_system else ""
    params: list[Any] = [code_system] if code_system else []
    return _rows(conn, SQL("SELECT code_system, code, assigned, revised_from, revised_to, "
                           "removed, revised_from + removed AS changed_away FROM {0} t "
                           + where + " ORDER BY changed_away DESC, revised_to DESC, "
                           "code_system, code LIMIT %s").format(
        _source("code_revisions_by_code", position)), [*params, _limit(limit)])


# ---------------------------------------------------------------- audit trail
def audit_trail(conn: Connection[Any], *, encounter_id: UUID | None = None,
                claim_number: str | None = None, actor_id: str | None = None,
                code: str | None = None, event_type: str | None = None,
                since: datetime | None = None, until: datetime | None = None,
                limit: int = 100, cursor: str | None = None,
                period: str | None = None) -> ResultPage:
    """Audit rows in log order, filtered by encounter, claim, actor, code (any code the
    event is about, e.g. before or after a revision), event type, recorded time range
    (``since`` inclusive, ``until`` exclusive) and closed period (``YYYY-MM``: its
    ``PeriodClosed`` row)."""
    limit = _limit(limit)
    params: list[Any] = []
    where = _given(params, ("encounter_id = %s", encounter_id),
                   ("claim_number = %s", claim_number), ("actor_id = %s", actor_id),
                   ("event_type = %s", event_type), ("period = %s", period),
                   ("codes @> ARRAY[%s]::text[]", normalise_code(code) if code else None),
                   ("recorded_at >= %s", since), ("recorded_at < %s", until),
                   ("position > %s", _cursor(cursor)))
    query = SQL("SELECT * FROM audit_trail {where} ORDER BY position LIMIT %s").format(
        where=SQL("WHERE ") + SQL(" AND ").join(where) if where else SQL(""))
    rows = _rows(conn, query, [*params, limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return ResultPage(rows, str(rows[-1]["position"]) if more else None)


def money(value: Decimal | None) -> str | None:
    """Money for JSON: a string with two decimals (never a float)."""
    return None if value is None else f"{value:.2f}"
