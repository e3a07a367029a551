"""``ledger.gc_pause.gc_paused``: one counted pause shared by the 835 importer and the
projections. The collector stays off while any pause is under way (whichever thread or user
began first) and is restored to what it was before the first."""

from __future__ import annotations

import gc
import threading

import pytest

from ledger.gc_pause import gc_paused


@pytest.fixture(autouse=True)
def _collector_restored():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_overlapping_pauses_of_two_threads_keep_it_off_until_the_last_ends():
    gc.enable()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def second() -> None:
        first_in.wait(5)
        with gc_paused():
            second_in.set()
            first_out.wait(5)
            seen.append(gc.isenabled())  # the first pause has ended; this one has not

    thread = threading.Thread(target=second)
    thread.start()
    with gc_paused():
        first_in.set()
        second_in.wait(5)
        assert not gc.isenabled()
    first_out.set()
    thread.join(5)
    assert seen == [False]
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    with gc_paused(), gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_an_error_inside_ends_the_pause():
    gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
