"""The recorder's side of per-batch sealing (issue 14): once per saved batch, in its
transaction, hand the batch's positions and chain hashes to a sealer, and hand the sealer's
checkpoint back after the commit. What a seal is (a signed Merkle checkpoint) is the sealer's
business: ``ledger.audit.sealing.Sealer``, installed on the recorder by
``ledger.audit.sealing.install``."""

from __future__ import annotations

import threading
from typing import Any, Protocol


class BatchSealer(Protocol):
    def seal(self, curs: Any, batch: list[tuple[int, bytes]] | None = None,
             read: bool = False) -> Any: ...

    def committed(self, checkpoint: Any) -> None: ...


class SealingRecorderMixin:
    """Mixed into the ledger's recorder: ``_seal_batch(curs)`` is called once per batch, in
    its transaction; the checkpoint is handed on after the commit. No sealer: no-op."""

    sealer: BatchSealer | None = None

    def _seal_batch(self, curs: Any, ids: Any = None) -> None:
        sealer = self.sealer
        if sealer is None:
            return
        hashes = getattr(getattr(self, "_chain_local", None), "hashes", None)
        batch = list(zip(ids, hashes, strict=True)) \
            if ids and hashes and len(ids) == len(hashes) else None
        _pending.checkpoint = sealer.seal(curs, batch, read=getattr(_pending, "read", False))

    def insert_events(self, stored_events: Any, **kwargs: Any) -> Any:
        _pending.checkpoint = None
        _pending.read = False
        try:
            ids = super().insert_events(stored_events, **kwargs)  # type: ignore[misc]
        except Exception as exc:
            if self.sealer is None or "ledger_seal_stale" not in _messages(exc):
                raise
            # another process sealed (or wrote) since our last batch: nothing was saved;
            # save the batch again, reading the newest checkpoint this time
            _pending.checkpoint = None
            _pending.read = True
            ids = super().insert_events(stored_events, **kwargs)  # type: ignore[misc]
        finally:
            _pending.read = False
        checkpoint, _pending.checkpoint = getattr(_pending, "checkpoint", None), None
        if checkpoint is not None and self.sealer is not None:
            self.sealer.committed(checkpoint)
        return ids


def _messages(exc: BaseException) -> str:
    out = []
    seen: BaseException | None = exc
    while seen is not None and len(out) < 5:
        out.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    return " ".join(out)


_pending = threading.local()
