"""A refusal is only as good as the state it saw (found by the fault run): in a group-commit
batch, a command refused because of a batch-mate's change must not be answered if that change
never commits. Here the batch-mate's idempotency claim was taken over (its transaction must
roll back): the refused command is re-run on its own and succeeds."""

from __future__ import annotations

import threading
import time

import pytest

from ledger.application.idempotency import ClaimLost
from ledger.application.service import LedgerApplication
from ledger.application.writer import Job
from tests import builders as s

pytestmark = pytest.mark.postgres


def test_a_refusal_caused_by_a_batch_mate_that_does_not_commit_is_re_run(app_env, clean_db):
    app = LedgerApplication(env=app_env, group_commit=True)
    try:
        eid = s.open_encounter(app)
        writer = app.writer

        def code(enc):
            return enc.code_diagnosis("E11.9", code_set=app.code_set, actor=s.CODER_A)

        def superseded(curs, result):  # the key was taken over: this one may not commit
            raise ClaimLost("Idempotency-Key: taken over")

        gate = threading.Event()
        blocker = Job(eid, lambda enc: gate.wait(5) and None, None, None)
        threading.Thread(target=writer.submit, args=(blocker,), daemon=True).start()
        time.sleep(0.2)  # the writer holds the blocker: the next two form one batch
        first = Job(eid, code, None, superseded)
        second = Job(eid, code, None, None)  # in the batch, refused: "already coded"
        for job in (first, second):
            threading.Thread(target=writer.submit, args=(job,), daemon=True).start()
        time.sleep(0.2)
        gate.set()
        assert isinstance(first.future.exception(timeout=20), ClaimLost)
        assert second.future.exception(timeout=20) is None, second.future.exception()
        assert [d.code for d in app.get_encounter(eid).diagnoses] == ["E119"]
    finally:
        app.close()
