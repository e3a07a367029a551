"""The recorder's side of per-batch sealing (issue 14): once per saved batch, hand the batch's
positions, encounters, versions and chain hashes to a sealer — when the sealer defers
(LEDGER_SEAL_MAX_DELAY > 0, the default), after the commit, for its background sealer to sign
within that bound; otherwise in the batch's transaction, handing the sealer's checkpoint back
after the commit. What a seal is (a signed Merkle checkpoint) is the sealer's business:
``ledger.audit.sealing.Sealer``, installed on the recorder by
``ledger.audit.sealing.install``."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from typing import Any, Protocol


class BatchSealer(Protocol):
    seal_lock: Any  # one sealing transaction of the process at a time

    @property
    def defers(self) -> bool: ...

    def seal(self, curs: Any, batch: list[tuple[int, Any, int, bytes]] | None = None,
             read: bool = False) -> Any: ...

    def committed(self, checkpoint: Any) -> None: ...

    def defer(self, events: list[tuple[int, Any, int, bytes]]) -> None: ...


class SealingRecorderMixin:
    """Mixed into the ledger's recorder: ``_seal_batch(curs)`` is called once per batch, in
    its transaction; the checkpoint is handed on after the commit. No sealer: no-op."""

    sealer: BatchSealer | None = None

    def _seal_batch(self, curs: Any, ids: Any = None, stored_events: Any = None) -> None:
        sealer = self.sealer
        if sealer is None:
            return
        hashes = getattr(getattr(self, "_chain_local", None), "hashes", None)
        batch = None
        if ids and hashes and stored_events and len(ids) == len(hashes) == len(stored_events):
            batch = [(nid, e.originator_id, e.originator_version, h)
                     for nid, e, h in zip(ids, stored_events, hashes, strict=True)]
        if batch and getattr(_pending, "defer", False):
            _pending.deferred = batch  # sealed after the commit, by the background sealer
            return
        _pending.checkpoint = sealer.seal(curs, batch, read=getattr(_pending, "read", False))

    def _seals_in_transaction(self) -> bool:
        """Whether the batch being saved is sealed in its transaction (not deferred)."""
        return self.sealer is not None and not getattr(_pending, "defer", False)

    def insert_events(self, stored_events: Any, **kwargs: Any) -> Any:
        sealer = self.sealer
        _pending.checkpoint = None
        _pending.deferred = None
        _pending.read = False
        # every batch is sealed within the bound after its commit, when the sealer defers
        _pending.defer = defer = sealer is not None and sealer.defers
        lock = sealer.seal_lock if sealer is not None and not defer else nullcontext()
        try:
            with lock:
                try:
                    ids = super().insert_events(stored_events, **kwargs)  # type: ignore[misc]
                except Exception as exc:
                    if sealer is None or "ledger_seal_stale" not in _messages(exc):
                        raise
                    # another process sealed (or wrote) since our last batch: nothing was
                    # saved; save the batch again, reading the newest checkpoint this time
                    _pending.checkpoint = None
                    _pending.read = True
                    ids = super().insert_events(stored_events, **kwargs)  # type: ignore[misc]
        finally:
            _pending.read = False
            _pending.defer = False
        checkpoint, _pending.checkpoint = getattr(_pending, "checkpoint", None), None
        deferred, _pending.deferred = getattr(_pending, "deferred", None), None
        if sealer is not None:
            if checkpoint is not None:
                sealer.committed(checkpoint)
            if deferred:
                sealer.defer(deferred)
        return ids


def _messages(exc: BaseException) -> str:
    out = []
    seen: BaseException | None = exc
    while seen is not None and len(out) < 5:
        out.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    return " ".join(out)


_pending = threading.local()
