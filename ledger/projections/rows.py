"""Bulk writes shared by the projections: COPY for rewritten rows, one statement for counters.

Counters (payer balances, trends) are kept by adding deltas. A row whose every measure adds
up to zero is deleted, so that a view has the same rows whether its events arrived one page
at a time or all in one (a rebuild): a row that exists only while something is open vanishes
in both cases.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson
from psycopg import Cursor
from psycopg.sql import SQL, Identifier
from psycopg.types.json import Jsonb

ZERO = Decimal("0.00")


def amount(value: Any) -> Decimal:
    """A Money (or Decimal) as a Decimal with cents."""
    if value is None:
        return ZERO
    return value.amount if hasattr(value, "amount") else Decimal(value)


class JsonValue:
    """A value for a jsonb column (encoded with orjson when written)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _orjson_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def pg_array(values: list[Any]) -> str:
    """A PostgreSQL array literal (``{"a","b"}``): cheaper than psycopg's list adapter in
    COPY, which looks up a dumper per element."""
    return "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
                          for v in values) + "}"


def _field(value: Any) -> Any:
    t = type(value)
    if t is list:
        return pg_array(value)
    if t is JsonValue:
        return Jsonb(value.value, _orjson_text)
    return value


def copy_rows(curs: Cursor[Any], table: str, columns: Sequence[str],
              rows: Iterable[Sequence[Any]]) -> int:
    """COPY rows into ``table`` in one round trip (lists go to array columns, ``JsonValue``
    to jsonb)."""
    statement = SQL("COPY {0} ({1}) FROM STDIN").format(
        Identifier(table), SQL(", ").join(Identifier(c) for c in columns))
    count = 0
    with curs.copy(statement) as copy:
        for row in rows:
            copy.write_row([_field(v) for v in row])
            count += 1
    return count


def delete_where_in(curs: Cursor[Any], table: str, column: str, values: Sequence[Any]) -> None:
    if values:
        curs.execute(SQL("DELETE FROM {0} WHERE {1} = ANY(%s)").format(
            Identifier(table), Identifier(column)), (list(values),))


def add_deltas(curs: Cursor[Any], table: str, keys: Mapping[str, str],
               measures: Mapping[str, str], deltas: Mapping[tuple[Any, ...], Sequence[Any]],
               *, extra: str = "") -> None:
    """Add ``deltas[key]`` (one value per measure, in order) to the row of ``key``, creating
    it when missing; then delete the touched rows whose measures are all zero.

    ``keys`` and ``measures`` map column names to SQL types (for the unnest arrays).
    ``extra`` is appended to the ON CONFLICT SET list (for non-additive columns).
    """
    if not deltas:
        return
    key_names, measure_names = list(keys), list(measures)
    columns: list[list[Any]] = [[] for _ in range(len(key_names) + len(measure_names))]
    for key, values in deltas.items():
        for i, k in enumerate(key):
            columns[i].append(k)
        for j, v in enumerate(values):
            columns[len(key_names) + j].append(v)
    types = list(keys.values()) + list(measures.values())
    unnest = SQL(", ").join(SQL("%s::{0}[]").format(SQL(t)) for t in types)
    sets = [SQL("{0} = {1}.{0} + EXCLUDED.{0}").format(Identifier(m), Identifier(table))
            for m in measure_names]
    if extra:
        sets.append(SQL(extra))  # type: ignore[arg-type]
    empty = SQL(" AND ").join(SQL("{0} = 0").format(Identifier(m)) for m in measure_names)
    statement = SQL(
        "INSERT INTO {table} ({cols}) SELECT * FROM unnest({unnest}) "
        "ON CONFLICT ({keys}) DO UPDATE SET {sets} RETURNING {keys}, ({empty})"
    ).format(table=Identifier(table),
             cols=SQL(", ").join(Identifier(c) for c in key_names + measure_names),
             unnest=unnest, keys=SQL(", ").join(Identifier(k) for k in key_names),
             sets=SQL(", ").join(sets), empty=empty)
    curs.execute(statement, columns)
    gone = [tuple(row.values())[:-1] if isinstance(row, dict) else tuple(row)[:-1]
            for row in curs.fetchall()
            if (tuple(row.values())[-1] if isinstance(row, dict) else row[-1])]
    if gone:
        key_arrays = [[g[i] for g in gone] for i in range(len(key_names))]
        curs.execute(SQL("DELETE FROM {table} WHERE ({keys}) IN (SELECT * FROM unnest({arr}))")
                     .format(table=Identifier(table),
                             keys=SQL(", ").join(Identifier(k) for k in key_names),
                             arr=SQL(", ").join(SQL("%s::{0}[]").format(SQL(keys[k]))
                                                for k in key_names)),
                     key_arrays)


def accumulate(target: dict[tuple[Any, ...], list[Any]], key: tuple[Any, ...],
               values: Sequence[Any], sign: int) -> None:
    """target[key] += sign * values (element-wise)."""
    row = target.get(key)
    if row is None:
        target[key] = [v * sign for v in values]
    else:
        for i, v in enumerate(values):
            row[i] += v * sign
