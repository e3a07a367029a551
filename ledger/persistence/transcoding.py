"""Event and snapshot serialisation with orjson.

Stored state is JSON. Values JSON has no type for are written as ``{"_type_": name,
"_data_": value}`` (the same shape as the library's ``JSONTranscoder``): Decimal, Money,
date, datetime, UUID, and the domain's dataclasses, each registered by a stable name, so
moving a class to another module does not break old events. Unknown names are refused on
decode: a stored name never resolves to an arbitrary class.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Transcoder, TranscodingNotRegisteredError

from ledger.domain import model
from ledger.domain.values import Money, trusted_money

# Stable names for the dataclasses that live inside events and snapshots.
DATACLASSES: dict[str, type] = {
    "money": Money,
    "party": model.ResponsibleParty,
    "dx": model.Diagnosis,
    "line": model.ServiceLine,
    "adj": model.Adjustment,
    "line_result": model.LineResult,
    "remit_ref": model.RemittanceRef,
    "finding": model.Finding,
    "adjudication": model.Adjudication,
    "claim": model.Claim,
    "dispute": model.Dispute,
    "plb_ref": model.ProviderAdjustmentRef,
    "actor": model.Actor,
    "access_grant": model.AccessGrant,
}
_NAMES = {cls: name for name, cls in DATACLASSES.items()}
_FIELDS = {cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in DATACLASSES.values()}


class OrjsonTranscoder(Transcoder):
    """Encodes with orjson; round-trips Decimal, date, datetime, UUID, tuples (as lists)
    and the registered domain dataclasses."""

    def register(self, transcoding: Any) -> None:  # library API; we use names above
        raise NotImplementedError(
            "register domain types in ledger.persistence.transcoding.DATACLASSES")

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(_to_json(obj))

    def decode(self, data: bytes) -> Any:
        return _from_json(orjson.loads(data))


def _to_json(o: Any) -> Any:
    t = type(o)
    if t is str or t is int or t is bool or t is float or o is None:
        return o
    if t is dict:
        return {k: v if type(v) in _PLAIN else _to_json(v) for k, v in o.items()}
    if t is list or t is tuple:
        return [v if type(v) in _PLAIN else _to_json(v) for v in o]
    if t is Money:
        return {"_type_": "money", "_data_": str(o)}
    if t is Decimal:
        return {"_type_": "decimal_str", "_data_": str(o)}
    if t is datetime:
        return {"_type_": "datetime_iso", "_data_": o.isoformat()}
    if t is date:
        return {"_type_": "date_iso", "_data_": o.isoformat()}
    if t is UUID:
        return {"_type_": "uuid_hex", "_data_": o.hex}
    name = _NAMES.get(t)
    if name is not None:
        data = {}
        for f in _FIELDS[t]:
            v = getattr(o, f)
            data[f] = v if type(v) in _PLAIN else _to_json(v)
        return {"_type_": name, "_data_": data}
    if t is set or t is frozenset:
        return [_to_json(v) for v in sorted(o)]
    raise TranscodingNotRegisteredError(f"Object of type {t.__name__} is not serializable")


def _money(text: str) -> Money:
    # Stored amounts were validated when written: skip re-validation on the hot replay path.
    return trusted_money(Decimal(text))


def _from_json(o: Any) -> Any:
    # hot on every replay: plain values (most of them) are kept without a call
    t = type(o)
    if t is list:
        return [_from_json(v) if type(v) in _NESTED else v for v in o]
    if t is not dict:
        return o
    if len(o) == 2 and "_type_" in o and "_data_" in o:
        name, data = o["_type_"], o["_data_"]
        if name == "money":
            return _money(data)
        if name == "decimal_str":
            return Decimal(data)
        if name == "date_iso":
            return date.fromisoformat(data)
        if name == "datetime_iso":
            return datetime.fromisoformat(data)
        if name == "uuid_hex":
            return UUID(data)
        cls = DATACLASSES.get(name)
        if cls is None:
            raise TranscodingNotRegisteredError(f"Stored type {name!r} is not registered")
        fields = {k: _from_json(v) if type(v) in _NESTED else v for k, v in data.items()}
        if cls is model.ServiceLine and "adjustment_total" not in fields:
            # snapshots taken before the running total existed
            fields["adjustment_total"] = sum(fields.get("charge_adjustments", ()),
                                             Money.zero())
        if cls is model.LineResult:
            fields["adjustments"] = tuple(fields.get("adjustments", ()))
            fields["remarks"] = tuple(fields.get("remarks", ()))
        return cls(**fields)
    return {k: _from_json(v) if type(v) in _NESTED else v for k, v in o.items()}


_NESTED = frozenset((list, dict))
_PLAIN = frozenset((str, int, bool, float, type(None)))
