from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from eventsourcing.persistence import TranscodingNotRegisteredError

from ledger.domain.model import Adjustment, Finding, LineResult, ResponsibleParty
from ledger.domain.values import Money
from ledger.persistence.transcoding import OrjsonTranscoder


def test_round_trip_of_every_supported_type():
    t = OrjsonTranscoder()
    value = {
        "uuid": uuid4(),
        "decimal": Decimal("10.125"),
        "money": Money.parse("-12.30"),
        "date": date(2026, 3, 10),
        "datetime": datetime(2026, 3, 10, 12, 30, 1, 123456, tzinfo=UTC),
        "nested": [{"when": date(2026, 1, 1), "ids": [uuid4()]}],
        "party": ResponsibleParty("primary", "insurer", "P1", "Plan", "M1"),
        "findings": [Finding("DX001", "error", "no principal", None)],
        "line": LineResult(1, "99213", Money.parse("1"), Money.parse("0"), None, Decimal(2),
                           (Adjustment("CO", "45", Money.parse("1.00")),), ("N115",)),
        "plain": ["a", 1, True, None],
    }
    assert t.decode(t.encode(value)) == value


def test_tuples_come_back_as_lists():
    t = OrjsonTranscoder()
    assert t.decode(t.encode({"t": (1, 2)})) == {"t": [1, 2]}


def test_unregistered_types_are_refused_both_ways():
    t = OrjsonTranscoder()
    with pytest.raises(TranscodingNotRegisteredError):
        t.encode({"x": object()})
    with pytest.raises(TranscodingNotRegisteredError):
        t.decode(b'{"x": {"_type_": "os:system", "_data_": {}}}')


def test_encoding_is_plain_json():
    t = OrjsonTranscoder()
    assert t.encode({"m": Money.parse("1.5")}) == b'{"m":{"_type_":"money","_data_":"1.50"}}'
