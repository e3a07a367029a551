"""Versions of read-model rows by log position: what the ``*_history`` tables hold.

A projection that keeps history records, for every event of a page, what the event's
encounter contributes after it (``AggregateReadModel.history_record``). From consecutive
records this module writes, in the page's transaction:

- for summed tables (payer balances, aging, patient balances, trends): one version of each
  row an event changed, valid from the event's position until the next change
  (``SumHistory``); a row whose measures all return to zero gets a version with
  ``present = false`` (the current table deletes it);
- for per-claim rows (the claims list): one version per event that changed the row
  (``RowHistory``).

Because every version starts at the position of the event that made it, the history is a
pure function of the log: it does not depend on how the events were paged, and the rebuild
test compares it like any other table. "As of P" is then the versions whose
``[valid_from, valid_to)`` contains P (GiST index on ``int8range(valid_from, valid_to)``).

A version's ``event_type`` names the event that opened it: the reconciliation report groups
the changes between two positions by it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg import Cursor
from psycopg.sql import SQL, Identifier

from ledger.projections.rows import pg_array

# Tables read as of a position, and where their versions are kept.
SUMMED = {"payer_balances", "payer_aging", "patient_balances", "trend_diagnoses",
          "trend_diagnosis_services", "code_revisions_by_coder", "code_revisions_by_code"}
HISTORY_OF = {"current_claims": "claims_history", **{t: f"{t}_history" for t in SUMMED}}

Key = tuple[Any, ...]
# (position, event type) -> {key: delta values}
PositionDeltas = dict[tuple[int, str], dict[Key, list[Any]]]


def _text(value: Any) -> str:
    """One field of COPY's text format (what psycopg's ``write_row`` would send, without
    its per-value dumper lookups: the history writes many rows)."""
    t = type(value)
    if t is Decimal or t is int:  # most fields: no escaping needed
        return str(value)
    if value is None:
        return "\\N"
    if t is str:
        text = value
    elif t is bool:
        return "t" if value else "f"
    elif t is list:
        text = pg_array(value)
    else:  # int, Decimal, date, datetime, UUID: their str() is PostgreSQL's input syntax
        text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                .replace("\r", "\\r"))
    return text


def copy_text(curs: Cursor[Any], table: str, columns: Sequence[str],
              lines: Sequence[str]) -> None:
    """COPY ``lines`` (rows in COPY's text format, each ending in a newline) into ``table``
    as one block."""
    if not lines:
        return
    statement = SQL("COPY {0} ({1}) FROM STDIN").format(
        Identifier(table), SQL(", ").join(Identifier(c) for c in columns))
    with curs.copy(statement) as copy:
        copy.write("".join(lines))


def copy_rows(curs: Cursor[Any], table: str, columns: Sequence[str],
              rows: Sequence[Sequence[Any]]) -> None:
    """COPY ``rows`` into ``table`` as one text block."""
    copy_text(curs, table, columns, [_line(row) + "\n" for row in rows])


def _close(curs: Cursor[Any], table: str, keys: Mapping[str, str],
           firsts: dict[Key, int]) -> None:
    """Close the open version of each key at the position of its first new version."""
    if not firsts:
        return
    names = list(keys)
    arrays = [[k[i] for k in firsts] for i in range(len(names))]
    statement = SQL(
        "UPDATE {table} h SET valid_to = u.pos FROM unnest({arrays}, %s::bigint[]) "
        "AS u({cols}, pos) WHERE {match} AND h.valid_to IS NULL"
    ).format(table=Identifier(table),
             arrays=SQL(", ").join(SQL("%s::{0}[]").format(SQL(keys[n])) for n in names),
             cols=SQL(", ").join(Identifier(n) for n in names),
             match=SQL(" AND ").join(SQL("h.{0} = u.{0}").format(Identifier(n)) for n in names))
    curs.execute(statement, [*arrays, list(firsts.values())])


def _line(values: Sequence[Any]) -> str:
    """Fields of COPY's text format joined by tabs (no newline)."""
    return "\t".join(map(_text, values))


def _valid_to(position: int | None) -> str:
    return "\\N" if position is None else str(position)


@dataclass(frozen=True)
class SumHistory:
    """History of a table of sums kept by ``rows.add_deltas``."""

    table: str
    keys: Mapping[str, str]
    measures: Mapping[str, str]
    extra: tuple[str, ...] = ()  # non-additive columns carried along (last statement)

    @property
    def history_table(self) -> str:
        return f"{self.table}_history"

    def write(self, curs: Cursor[Any], changes: PositionDeltas,
              extras: Mapping[tuple[int, Key], Sequence[Any]] | None = None) -> None:
        """Write the versions made by ``changes`` (deltas per event, in any order).

        Must run *before* the page's deltas are added to the current table: the versions
        start from the current rows. ``extras[(position, key)]`` sets the extra columns
        from that position on."""
        touched: set[Key] = set()
        for deltas in changes.values():
            touched.update(deltas)
        if not touched:
            return
        names, measures = list(self.keys), list(self.measures)
        nkeys, width = len(names), len(measures)
        running: dict[Key, list[Any]] = {}
        extra_now: dict[Key, str] = {}  # the extra columns' COPY text, from now on
        cols = SQL(", ").join(Identifier(c) for c in [*names, *measures, *self.extra])
        arrays = SQL(", ").join(SQL("%s::{0}[]").format(SQL(self.keys[n])) for n in names)
        curs.execute(SQL("SELECT {cols} FROM {table} WHERE ({keys}) IN (SELECT * FROM "
                         "unnest({arrays}))").format(
            cols=cols, table=Identifier(self.table), arrays=arrays,
            keys=SQL(", ").join(Identifier(n) for n in names)),
            [[k[i] for k in touched] for i in range(nkeys)])
        for row in curs.fetchall():
            values = list(row.values()) if isinstance(row, dict) else list(row)
            key = tuple(values[:nkeys])
            running[key] = values[nkeys:nkeys + width]
            if self.extra:
                extra_now[key] = _line(values[nkeys + width:])
        no_extra = _line([None] * len(self.extra))
        tail = "\t" if self.extra else ""
        # Per key, its versions in log order: (position, the text after valid_to).
        versions: dict[Key, list[tuple[int, str]]] = {}
        for position, event_type in sorted(changes):
            event_text = _text(event_type)
            for key, delta in changes[(position, event_type)].items():
                extra = extras.get((position, key)) if extras else None
                if extra is None and not any(delta):
                    continue
                now = running.get(key)
                now = running[key] = list(delta) if now is None else \
                    [a + b for a, b in zip(now, delta, strict=True)]
                if extra is not None:
                    extra_now[key] = _line(extra)
                text = (event_text + ("\tt\t" if any(now) else "\tf\t")
                        + "\t".join(map(str, now)))  # measures: int or Decimal
                if self.extra:
                    text += tail + extra_now.get(key, no_extra)
                chain = versions.get(key)
                if chain is None:
                    versions[key] = [(position, text)]
                else:
                    chain.append((position, text))
        if not versions:
            return
        _close(curs, self.history_table, self.keys, {k: v[0][0] for k, v in versions.items()})
        lines = []
        for key, chain in versions.items():
            prefix = _line(key) + "\t"
            last = len(chain) - 1
            for i, (position, text) in enumerate(chain):
                lines.append(f"{prefix}{position}\t"
                             f"{_valid_to(chain[i + 1][0] if i < last else None)}\t{text}\n")
        copy_text(curs, self.history_table,
                  [*names, "valid_from", "valid_to", "event_type", "present", *measures,
                   *self.extra], lines)


@dataclass(frozen=True)
class RowHistory:
    """History of rows kept per key (one row per claim)."""

    table: str  # the history table
    keys: Mapping[str, str]
    columns: tuple[str, ...]  # after the keys

    def write(self, curs: Cursor[Any],
              versions: Sequence[tuple[int, str, Key, tuple[Any, ...]]]) -> None:
        """``versions``: (position, event type, key, row values) in log order, only where the
        row changed."""
        if not versions:
            return
        chains: dict[Key, list[tuple[int, str, tuple[Any, ...]]]] = {}
        for position, event_type, key, values in versions:
            chains.setdefault(key, []).append((position, event_type, values))
        _close(curs, self.table, self.keys, {k: v[0][0] for k, v in chains.items()})
        rows = []
        for key, chain in chains.items():
            for i, (position, event_type, values) in enumerate(chain):
                valid_to = chain[i + 1][0] if i + 1 < len(chain) else None
                rows.append((*key, position, valid_to, event_type, *values))
        copy_rows(curs, self.table,
                  [*self.keys, "valid_from", "valid_to", "event_type", *self.columns], rows)


def summed(rows: Sequence[tuple[Key, Sequence[Any]]]) -> dict[Key, Sequence[Any]]:
    """A contribution's rows summed per key (what ``add_step`` compares)."""
    out: dict[Key, Sequence[Any]] = {}
    for key, values in rows:
        row = out.get(key)
        out[key] = values if row is None else [a + b for a, b in zip(row, values, strict=True)]
    return out


def add_step(changes: PositionDeltas, position: int, event_type: str,
             before: Mapping[Key, Sequence[Any]] | None, after: Mapping[Key, Sequence[Any]],
             *, keep_zero: bool = False) -> None:
    """Record one event's change of an encounter's contribution (``after - before``, each
    ``summed``), for the keys whose values changed (``keep_zero``: every key, even
    unchanged)."""
    deltas = changes.get((position, event_type))
    if deltas is None:
        deltas = changes[(position, event_type)] = {}
    old = before or {}
    for key, values in after.items():
        prev = old.get(key)
        if prev is None:
            delta = list(values)
        elif prev == values and not keep_zero:
            continue
        else:
            delta = [a - b for a, b in zip(values, prev, strict=True)]
        row = deltas.get(key)
        if row is None:
            deltas[key] = delta
        else:
            for i, v in enumerate(delta):
                row[i] += v
    for key, prev in old.items():
        if key in after:
            continue
        row = deltas.get(key)
        if row is None:
            deltas[key] = [-v for v in prev]
        else:
            for i, v in enumerate(prev):
                row[i] -= v
