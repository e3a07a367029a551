"""The database monitor tells a database that does not answer from a stall of its own process
(a long garbage collection or a C call holding the GIL): the first is an outage at once, the
second only if the ping is still unanswered when the process runs again."""

from __future__ import annotations

import threading

from ledger import availability
from ledger.availability import DatabaseMonitor


def _monitor(ping) -> DatabaseMonitor:
    m = DatabaseMonitor("postgresql://unused", interval=0.01, timeout=0.2)
    m._ping = ping  # type: ignore[method-assign]
    return m


def test_a_ping_that_never_answers_is_an_outage_in_one_round():
    frozen = threading.Event()
    m = _monitor(lambda: frozen.wait(5))
    m._round()
    assert not m.available and m.reason == "not answering"
    frozen.set()


def test_a_stall_of_this_process_is_not_taken_for_an_outage(monkeypatch):
    answered = threading.Event()
    m = _monitor(lambda: answered.wait(5))
    real = availability.time.monotonic
    clock = {"skew": 0.0}

    class StalledClock:
        @staticmethod
        def monotonic() -> float:
            return real() + clock["skew"]

    def join_and_stall(self, timeout=None, _join=threading.Thread.join):
        _join(self, timeout)
        clock["skew"] += 1.0  # this thread woke a second late: the process was stalled

    monkeypatch.setattr(availability, "time", StalledClock)
    monkeypatch.setattr(threading.Thread, "join", join_and_stall)
    m._round()
    assert m.available, "a stall of our own process was called an outage"
    monkeypatch.undo()
    answered.set()  # the answer is there as soon as the ping's thread runs
    m._round()
    assert m.available
    # a second unanswered round in a row is an outage, stall or not
    never = threading.Event()
    m2 = _monitor(lambda: never.wait(5))
    monkeypatch.setattr(availability, "time", StalledClock)
    monkeypatch.setattr(threading.Thread, "join", join_and_stall)
    m2._round()
    assert m2.available
    m2._round()
    assert not m2.available and m2.reason == "not answering"
    monkeypatch.undo()
    never.set()
