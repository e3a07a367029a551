"""The claim-number index: CLM01 -> encounter, and (GS06, ST02) -> claims for 999s.

Caught up from the event store (``ClaimCreated`` and ``ClaimSubmitted`` notifications, read
through the application's recorder and mapper), so it knows every claim whoever created it:
the API, the demo, an 837 import. The position of the last event read is kept beside it;
catching up is idempotent and safe to run from several processes at once. Events are found
by every topic they were ever stored under (``ledger.persistence.topics``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple
from uuid import UUID

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from ledger.application.loading import table_identifier
from ledger.domain.encounter import Encounter
from ledger.persistence.topics import stored_topics
from ledger.persistence.transcoding import OrjsonTranscoder

CREATED = stored_topics(Encounter.ClaimCreated)
ADJUDICATED = stored_topics(Encounter.ClaimAdjudicated)
SUBMITTED = stored_topics(Encounter.ClaimSubmitted)
BATCH = 5000


def _follow(app: Any, conn: Any, name: str, topics: list[str], keys: tuple[str, ...],
            write: Callable[[Any, list[tuple[Any, Any]]], None]) -> int:
    """Hand ``write`` (in a transaction, with a cursor) each page of (notification, fields)
    of ``topics`` after the position kept in ``<name>_position``, and move that position on in
    the same transaction; returns how many events. ``fields`` holds at least the event's
    plain string fields ``keys`` (None when absent). Idempotent, safe from several
    processes."""
    table = f"{name}_position"
    row = conn.execute(f"SELECT position FROM {table} WHERE id = 1").fetchone()
    position = row[0] if row else 0
    seen = 0
    read = _reader(app, topics, keys)
    while True:
        page = read(conn, position)
        if not page:
            break
        with conn.transaction(), conn.cursor() as cur:
            write(cur, page)
            position = page[-1][0].id
            cur.execute(
                f"INSERT INTO {table} (id, position) VALUES (1, %s) ON CONFLICT (id) DO "
                f"UPDATE SET position = GREATEST({table}.position, EXCLUDED.position)",
                (position,))
        seen += len(page)
        if len(page) < BATCH:
            break
    return seen


def catch_up(app: Any, conn: Any) -> int:
    """Index claims created/submitted since the last catch-up; returns how many events."""

    def write(cur: Any, page: list[tuple[Any, Any]]) -> None:
        created, submitted = [], []
        for n, event in page:
            if n.topic in CREATED:
                # indexed by CLM01: a same-CLM01 replacement or a crossover claim is kept
                # under another key on the same encounter
                number = event.get("clm01") or event["claim_number"]
                created.append((number, n.originator_id, event["payer_id"], n.id))
            else:
                submitted.append((event.get("group_control") or "",
                                  event.get("transaction_control") or "",
                                  event["claim_number"], n.originator_id, n.id))
        _insert(cur, "x12_claim_index (claim_number, encounter_id, payer_id, position)",
                ("text", "uuid", "text", "bigint"), created)
        _insert(cur, "x12_submission_index (group_control, transaction_control, claim_number,"
                " encounter_id, position)", ("text", "text", "text", "uuid", "bigint"),
                submitted)

    return _follow(app, conn, "x12_claim_index", CREATED + SUBMITTED,
                   ("clm01", "claim_number", "payer_id", "group_control",
                    "transaction_control"), write)


def catch_up_icn(app: Any, conn: Any) -> int:
    """Index the payer ICNs (CLP07) of adjudications since the last catch-up."""

    def write(cur: Any, page: list[tuple[Any, Any]]) -> None:
        rows = [(event["payer_icn"], n.originator_id, n.id) for n, event in page
                if event.get("payer_icn")]
        _insert(cur, "x12_icn_index (payer_icn, encounter_id, position)",
                ("text", "uuid", "bigint"), rows)

    return _follow(app, conn, "x12_icn_index", ADJUDICATED, ("payer_icn",), write)


def _insert(cur: Any, target: str, types: tuple[str, ...], rows: list[tuple]) -> None:
    """``rows`` into ``target`` (a table and its columns) with one statement: a column per
    array, unnested (a page of 5,000 events was 5,000 pipelined INSERTs); rows already
    indexed are skipped."""
    if not rows:
        return
    arrays = ", ".join(f"%b::{t}[]" for t in types)
    cur.execute(f"INSERT INTO {target} SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING",
                [list(col) for col in zip(*rows, strict=True)])


class _Note(NamedTuple):
    id: int
    originator_id: UUID
    topic: str


def _reader(app: Any, topics: list[str], keys: tuple[str, ...]
            ) -> Callable[[Any, int], list[tuple[Any, Any]]]:
    """Reads a page of (notification, fields) after a position. Stored as plain JSON (no
    cipher, no compressor): the server picks out the ``keys`` (one jsonb parse per event on
    its core, not a whole event decoded here); else the recorder's notifications, decoded by
    the application's mapper."""
    mapper = app.mapper

    def read_decoded(conn: Any, position: int) -> list[tuple[Any, Any]]:
        notes = app.recorder.select_notifications(position + 1, BATCH, topics=topics)
        return [(n, _fields(app, n)) for n in notes]

    if type(mapper.transcoder) is not OrjsonTranscoder or mapper.cipher or mapper.compressor:
        return read_decoded
    picks = sql.SQL(", ").join(sql.SQL("j ->> {}").format(sql.Literal(k)) for k in keys)
    query = sql.SQL(
        "SELECT notification_id, originator_id, topic, {picks} FROM (SELECT notification_id,"
        " originator_id, topic, convert_from(state, 'UTF8')::jsonb AS j FROM {table}"
        " WHERE notification_id > %s AND topic = ANY(%s) ORDER BY notification_id"
        " LIMIT %s) AS page ORDER BY notification_id").format(
            picks=picks, table=table_identifier(app.recorder))

    def read_picked(conn: Any, position: int) -> list[tuple[Any, Any]]:
        try:  # a savepoint inside a caller's transaction
            with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
                rows = cur.execute(query, (position, topics, BATCH)).fetchall()
        except psycopg.DataError:  # text jsonb cannot hold (an older event's)
            return read_decoded(conn, position)
        return [(_Note(r[0], r[1], r[2]), dict(zip(keys, r[3:], strict=True))) for r in rows]

    return read_picked


def _fields(app: Any, n: Any) -> dict[str, Any]:
    """The stored fields of an event as JSON, the few plain strings the index needs read
    without building the event (its lines, money and dataclasses); decrypted and
    decompressed by the application's own mapper settings. Another transcoder: the event."""
    mapper = app.mapper
    if type(mapper.transcoder) is not OrjsonTranscoder:
        return vars(mapper.to_domain_event(n))
    state = n.state
    if mapper.cipher:
        state = mapper.cipher.decrypt(state)
    if mapper.compressor:
        state = mapper.compressor.decompress(state)
    return orjson.loads(state)


def lookup_icn(conn: Any, icns: list[str]) -> dict[str, list[UUID]]:
    out: dict[str, list[UUID]] = {}
    if not icns:
        return out
    rows = conn.execute("SELECT payer_icn, encounter_id FROM x12_icn_index"
                        " WHERE payer_icn = ANY(%s)", (list(set(icns)),)).fetchall()
    for icn, eid in rows:
        out.setdefault(icn, []).append(eid)
    return out


def lookup(conn: Any, claim_numbers: list[str]) -> dict[str, list[tuple[UUID, str]]]:
    out: dict[str, list[tuple[UUID, str]]] = {}
    if not claim_numbers:
        return out
    rows = conn.execute("SELECT claim_number, encounter_id, payer_id FROM x12_claim_index"
                        " WHERE claim_number = ANY(%s)", (list(set(claim_numbers)),)).fetchall()
    for number, eid, payer in rows:
        out.setdefault(number, []).append((eid, payer))
    return out


def lookup_submission(conn: Any, group_control: str,
                      transaction_control: str) -> list[tuple[str, UUID]]:
    rows = conn.execute(
        "SELECT claim_number, encounter_id FROM x12_submission_index WHERE transaction_control"
        " = %s AND (group_control = %s OR %s = '')",
        (transaction_control, group_control, group_control)).fetchall()
    return [(r[0], r[1]) for r in rows]
