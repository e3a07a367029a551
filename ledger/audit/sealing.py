"""No unsealed tail: every committed batch of events is covered by a signed checkpoint within a
bounded time — by this process's background sealer within ``LEDGER_SEAL_MAX_DELAY`` (1 s) after
its commit, or, with a max delay of 0, in the SAME transaction that inserts it — and the newest
checkpoint is copied outside the database within ``LEDGER_SEAL_EXPORT_INTERVAL`` (1 s).

Deferred sealing (the default): a batch — a lone command's or a group commit's of several
encounters alike — commits with no seal statement at all; after the commit the writer hands its
events — (position, encounter, version, chain hash), as it wrote them — to the background
sealer, which signs them (with any that came after) at most half the bound after the oldest was
committed, in one transaction of its own: ``ledger_seal_check`` (0093) confirms that the newest
checkpoint is still the one it remembers and that no other event sits among its own, and the
leaves are inserted from memory, so an event altered in the database between its commit and
its seal no longer matches its leaf. When the check fails (another process wrote or sealed), it
seals reading the database, as a batch does. When it starts, it seals what an earlier process
left unsealed (killed between commit and seal). ``ledger verify`` reports an unsealed event
younger than the bound (``recorded_at``, 0093) as ``pending`` and an older one as ``inserted``.
Why every batch and not only a lone command's: sealed in its transaction, a group commit's
batch paid 12–15 % of the append throughput at 8–32 callers (the writer thread is the
bottleneck there, and the seal's three statements, signature and tree ran on it, inside the
event-table lock); deferred, the writer's share is handing over the tuples it already has.

In-transaction sealing (max delay 0, or the background sealer stopped): per batch, after the
events are inserted (the event-table lock is held, so batches seal in log order),
``Sealer.seal`` takes the checkpoint job's advisory lock, reads the latest checkpoint's
frontier, extends the RFC 6962 tree with every event after it (normally just this batch's),
signs the new tree head with Ed25519 (microseconds) and inserts the leaves and the checkpoint —
the same records the background job writes (``ledger.audit.checkpoints``), so ``ledger verify``
and the auditors' tools read them unchanged. The commit makes the events and their seal
durable together; a rolled-back batch leaves neither.

Because a legitimate event is never left unsealed longer than the bound, ``ledger verify``
(with ``require_sealed``) reports any event after the latest checkpoint that is older than
that as ``inserted``: an event appended, or the newest one replaced, behind the ledger's back.
Deleting the newest checkpoints together with their events is caught by the copy outside
the database: the ``Exporter`` writes the newest checkpoint to the log's export directory
(named by the database identity, ``log_export_dir``), at most ``interval`` seconds after its
commit, and optionally POSTs it to a witness URL.

``sealing_status`` reports what is not yet sealed or exported (for ``/ready`` and metrics).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.rows import tuple_row

from ledger.audit.checkpoints import (
    LOCK_KEY,
    Checkpoint,
    export,
    raw_public,
)
from ledger.audit.merkle import Frontier, FrontierAndTail, consistency_proof, event_leaf
from ledger.config import get_settings
from ledger.persistence.batch_seal import SealingRecorderMixin, _messages

log = logging.getLogger(__name__)

# The newest checkpoint and the events after it, in one statement (after the advisory lock:
# a statement's snapshot is taken when it starts, so it sees a checkpoint committed by the
# background job while this transaction waited for the lock).
_NEWEST = ("SELECT tree_size, last_position, frontier FROM ledger_checkpoints "
           "ORDER BY tree_size DESC LIMIT 1")
_AFTER = ("SELECT notification_id, chain_hash FROM ledger_events WHERE notification_id > "
          "COALESCE((SELECT last_position FROM ledger_checkpoints ORDER BY tree_size DESC "
          "LIMIT 1), 0) ORDER BY notification_id LIMIT %s")
_LEAVES = (
    "INSERT INTO ledger_audit_leaves (notification_id, originator_id, originator_version, "
    "chain_hash) SELECT notification_id, originator_id, originator_version, chain_hash "
    "FROM ledger_events WHERE notification_id > %s AND notification_id <= %s")
# The leaf records of events this process wrote, as it wrote them (deferred sealing);
# binary arrays: a quarter of the client's time of text ones for a batch's bytea hashes.
_LEAVES_FROM_MEMORY = (
    "INSERT INTO ledger_audit_leaves (notification_id, originator_id, originator_version, "
    "chain_hash) SELECT * FROM unnest(%b::bigint[], %b::uuid[], %b::bigint[], %b::bytea[])")
_CHECKPOINT = (
    "INSERT INTO ledger_checkpoints (tree_size, last_position, root_hash, created_at, origin, "
    "body, signature, key_id, public_key, previous_size, consistency_proof, frontier) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")


def log_id(conn: psycopg.Connection[Any]) -> str:
    """This log's identity, made once by migration 0099 and kept in the database (so a backup
    restored elsewhere is the same log, and several databases sharing one data directory are
    several logs). A database migrated before 0099 falls back to the server's system
    identifier and the database name."""
    with conn.cursor(row_factory=tuple_row) as cur:  # whatever the connection's factory
        row = cur.execute("SELECT to_regclass('ledger_log_identity') IS NOT NULL").fetchone()
        if row and row[0]:
            stored = cur.execute("SELECT log_id FROM ledger_log_identity").fetchone()
            if stored:
                return str(stored[0])
        sysid, dbname = cur.execute(
            "SELECT system_identifier, current_database() FROM pg_control_system()").fetchone()
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in dbname)
    return f"{sysid}-{safe}"


def log_export_dir(base: Path, target: psycopg.Connection[Any] | str) -> Path:
    """Where this log's checkpoints are exported: ``<base>/<log id>``."""
    if isinstance(target, str):
        with psycopg.connect(target) as conn:
            return Path(base) / log_id(conn)
    return Path(base) / log_id(target)


@dataclass
class SealState:
    """What this process sealed and exported (monotonic clock times)."""

    sealed_position: int = 0
    sealed_size: int = 0
    sealed_at: float = 0.0
    exported_size: int = 0
    exported_at: float = 0.0
    skipped_batches: int = 0  # batches committed without a seal (backlog over the cap)
    export_failures: int = 0
    witness_failures: int = 0


class Exporter:
    """Copies the newest checkpoint outside the database, at most ``interval`` seconds after
    it is offered (latest wins: each file holds its own consistency proof and is checked
    against the database's checkpoint of the same size)."""

    def __init__(self, directory: Path | None, interval: float = 1.0,
                 witness_url: str | None = None, state: SealState | None = None,
                 base_dir: Path | None = None) -> None:
        self.directory = directory
        self.base_dir = base_dir  # when directory is None: base_dir / <log id>, found later
        self.interval = interval
        self.witness_url = witness_url
        self.state = state or SealState()
        self._latest: Checkpoint | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-seal-export",
                                        daemon=True)
        self._thread.start()

    def offer(self, checkpoint: Checkpoint) -> None:
        with self._lock:
            if self._latest is None or checkpoint.tree_size > self._latest.tree_size:
                self._latest = checkpoint
        self._wake.set()

    def flush(self) -> None:
        with self._lock:
            checkpoint, self._latest = self._latest, None
        if checkpoint is None or checkpoint.tree_size <= self.state.exported_size:
            return
        try:
            if self.directory is not None:
                export(checkpoint, self.directory)
            if self.witness_url:
                self._witness(checkpoint)
            self.state.exported_size = checkpoint.tree_size
            self.state.exported_at = time.monotonic()
        except OSError as exc:
            self.state.export_failures += 1
            log.warning("checkpoint export failed (%s); will retry", type(exc).__name__)
            self.offer(checkpoint)

    def _witness(self, checkpoint: Checkpoint) -> None:
        body = json.dumps(checkpoint.to_json(), sort_keys=True).encode()
        request = urllib.request.Request(self.witness_url or "", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                response.read()
        except OSError as exc:
            self.state.witness_failures += 1
            log.warning("checkpoint witness unreachable (%s)", type(exc).__name__)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            self.flush()
            self._stop.wait(self.interval)  # at most one file per interval

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.flush()


class Sealer:
    """Signs a checkpoint over each committed batch: after its commit, in its background
    thread (``max_delay`` > 0), or in the batch's transaction."""

    def __init__(self, key: Ed25519PrivateKey, *, origin: str = "claims-ledger",
                 exporter: Exporter | None = None, max_backlog: int = 10_000,
                 max_delay: float = 0.0) -> None:
        self.key = key
        self.public = raw_public(key.public_key())
        self.origin = origin
        self.exporter = exporter
        self.max_backlog = max_backlog
        self.state = exporter.state if exporter is not None else SealState()
        self._warned = False
        self.store_proofs = False
        # The newest checkpoint this process committed: (tree size, last position, frontier).
        # With it a batch is sealed without reading anything (ledger_seal_expect checks it
        # in the pipeline). Taken by a seal, put back by its commit.
        self._newest: tuple[int, int, bytes] | None = None
        self._newest_lock = threading.Lock()
        self.fast_seals = 0
        self.read_seals = 0
        # Deferred sealing (max_delay > 0 and the background sealer started): events of
        # the batches this process committed, not sealed yet — (position, encounter,
        # version, chain hash) in position order — and when the oldest was committed.
        self.max_delay = max_delay
        self._deferred: list[tuple[int, Any, int, bytes]] = []
        self._deferred_since = 0.0
        self._deferred_lock = threading.Lock()
        # one sealing transaction of this process at a time (a batch sealed in its
        # transaction, or the background sealer's)
        self.seal_lock = threading.Lock()
        self._datastore: Any = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.deferred_seals = 0
        self.recovered_events = 0
        self.recovered = threading.Event()  # set after the start-up run sealed what was left
        self.last_read: tuple[int, int, bytes] | None = None  # newest checkpoint, as last read

    def seal(self, curs: Any, batch: list[tuple[int, Any, int, bytes]] | None = None,
             read: bool = False) -> Checkpoint | None:
        """Seal every event after the latest checkpoint (this batch's, normally). Runs in the
        inserting transaction, after the event-table lock; None if the backlog of unsealed
        events is larger than ``max_backlog`` (then ``ledger checkpoints run`` seals it).

        ``batch``: this batch's (position, encounter, version, chain hash). With them and the
        memory of the newest checkpoint this process committed (and of the events it
        committed since, deferred), nothing is read: the procedure ``ledger_seal_check``
        (pipelined) checks that memory and raises if it is stale, and the recorder saves the
        batch again with ``read=True``."""
        exporter = self.exporter
        if exporter is not None and exporter.directory is None and exporter.base_dir:
            exporter.directory = Path(exporter.base_dir) / log_id(curs.connection)
        with self._newest_lock:
            newest, self._newest = self._newest, None
        if batch and newest is not None and not read:
            size, last, frontier_bytes = newest
            batch = sorted(batch)
            first = batch[0][0]
            with self._deferred_lock:
                known = [d for d in self._deferred if last < d[0] < first]
            curs.execute("CALL ledger_seal_check(%s, %s, %s, %s)",
                         (size, last, first, len(known)), prepare=True)
            self.fast_seals += 1
            return self._sign_and_insert(curs, size, last, frontier_bytes, known + batch)
        self.read_seals += 1
        curs.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,), prepare=True)
        # two simple statements, sent together (one round trip in pipeline mode)
        with curs.connection.cursor(row_factory=tuple_row) as newest_cur, \
                curs.connection.cursor(row_factory=tuple_row) as after:
            newest_cur.execute(_NEWEST, prepare=True)
            after.execute(_AFTER, (self.max_backlog + 1,), prepare=True)
            top = newest_cur.fetchone()
            rows = after.fetchall()
        size, last, frontier_bytes = top if top else (0, 0, b"")
        ids = [r[0] for r in rows]
        hashes = [r[1] for r in rows]
        self.last_read = (size, last, bytes(frontier_bytes))
        if not ids:
            return None
        if len(ids) > self.max_backlog:
            self.state.skipped_batches += 1
            if not self._warned:
                self._warned = True
                log.warning("sealing: more than %d unsealed events before this batch; run "
                            "`ledger checkpoints run --once` to seal them", self.max_backlog)
            return None
        return self._sign_and_insert(curs, size, last, frontier_bytes, ids=ids, hashes=hashes)

    def _sign_and_insert(self, curs: Any, size: int, last: int, frontier_bytes: bytes,
                         leaves: list[tuple[int, Any, int, bytes]] | None = None, *,
                         ids: list[int] | None = None, hashes: list[bytes] | None = None
                         ) -> Checkpoint:
        """Extend the tree after (size, frontier) and insert its leaves and checkpoint:
        ``leaves`` as this process wrote them (from memory), or ``ids``/``hashes`` read in
        this transaction (the leaf records then copied from the log)."""
        if leaves is not None:
            ids = [leaf[0] for leaf in leaves]
            hashes = [leaf[3] for leaf in leaves]
        assert ids is not None and hashes is not None
        frontier = Frontier.from_bytes(size, bytes(frontier_bytes)) if size else Frontier()
        old = frontier.copy()
        tail = [event_leaf(nid, bytes(h)) for nid, h in zip(ids, hashes, strict=True)]
        frontier.extend(tail)
        # No consistency proof is stored with a per-batch checkpoint: `ledger verify` checks
        # every checkpoint's root against the log itself, and `ledger checkpoints prove` makes
        # a proof between any two on demand; storing one per batch would double the WAL a
        # batch writes (log2 n hashes).
        proof: list[bytes] = consistency_proof(
            old.size, frontier.size, FrontierAndTail(old, tail)) \
            if old.size and self.store_proofs else []
        checkpoint = Checkpoint(
            origin=self.origin, tree_size=frontier.size, root_hash=frontier.root(),
            last_position=ids[-1], time=datetime.now(UTC), signature=b"",
            public_key=self.public, previous_size=old.size or None,
            consistency_proof=tuple(proof), frontier=frontier.to_bytes())
        text = checkpoint.signed_text()
        checkpoint = replace(checkpoint, signature=self.key.sign(text.encode("utf-8")),
                             body=text)
        if leaves is not None:
            curs.execute(_LEAVES_FROM_MEMORY, (ids, [leaf[1] for leaf in leaves],
                                               [leaf[2] for leaf in leaves], hashes),
                         prepare=True)
        else:
            curs.execute(_LEAVES, (last, ids[-1]), prepare=True)
        curs.execute(_CHECKPOINT, (
            checkpoint.tree_size, checkpoint.last_position, checkpoint.root_hash,
            checkpoint.time, checkpoint.origin, text, checkpoint.signature, checkpoint.key_id,
            self.public, checkpoint.previous_size, b"".join(proof), checkpoint.frontier),
            prepare=True)
        return checkpoint

    def committed(self, checkpoint: Checkpoint) -> None:
        """After the commit: remember it, and have it copied outside the database."""
        with self._newest_lock:
            self._newest = (checkpoint.tree_size, checkpoint.last_position,
                            checkpoint.frontier)
        with self._deferred_lock:
            if self._deferred and self._deferred[0][0] <= checkpoint.last_position:
                self._deferred = [d for d in self._deferred
                                  if d[0] > checkpoint.last_position]
                if not self._deferred:  # (else the oldest's time stays: sealed sooner)
                    self._deferred_since = 0.0
        if checkpoint.tree_size > self.state.sealed_size:
            self.state.sealed_size = checkpoint.tree_size
            self.state.sealed_position = checkpoint.last_position
            self.state.sealed_at = time.monotonic()
        if self.exporter is not None:
            self.exporter.offer(checkpoint)

    # ------------------------------------------------------------- deferred sealing
    @property
    def defers(self) -> bool:
        """Are batches left to the background sealer (sealed after their commit)?"""
        return self.max_delay > 0 and self._thread is not None and not self._stop.is_set()

    def start(self, datastore: Any) -> None:
        """Start the background sealer on ``datastore`` (the recorder's pool). It first seals
        what an earlier process left unsealed, then every deferred batch within the bound."""
        if self.max_delay <= 0 or self._thread is not None:
            return
        self._datastore = datastore
        self._thread = threading.Thread(target=self._run, name="ledger-sealer", daemon=True)
        self._thread.start()

    def defer(self, events: list[tuple[int, Any, int, bytes]]) -> None:
        """After a batch committed: its events, to be sealed within the bound."""
        with self._deferred_lock:
            if not self._deferred:
                self._deferred_since = time.monotonic()
            self._deferred.extend(events)
            if len(self._deferred) > 1 and self._deferred[-2][0] > events[0][0]:
                self._deferred.sort()  # writers of one process may commit out of turn
        self._wake.set()

    def deferred_status(self) -> tuple[int, float | None]:
        """(events committed here and not sealed yet, seconds since the oldest committed)."""
        with self._deferred_lock:
            count, since = len(self._deferred), self._deferred_since
        return count, (round(time.monotonic() - since, 3) if count else None)

    def _run(self) -> None:
        backoff = min(0.5, self.max_delay / 4)
        recovered = False
        while not self._stop.is_set():
            try:
                if not recovered:
                    self.recovered_events += self._seal_from_database()
                    recovered = True
                    self.recovered.set()
                    continue
                with self._deferred_lock:
                    since = self._deferred_since if self._deferred else None
                if since is None:
                    self._wake.wait()
                    self._wake.clear()
                    continue
                # at half the bound after the oldest: the events of that half share one
                # checkpoint, and the other half is the margin for the seal itself
                wait = since + self.max_delay / 2 - time.monotonic()
                if wait > 0:
                    self._stop.wait(wait)
                    continue
                self.seal_deferred()
                with self._deferred_lock:
                    stuck = bool(self._deferred) and self._deferred_since == since
                if stuck:  # nothing sealed them (cannot happen; never spin on it)
                    self._stop.wait(backoff)
            except Exception as exc:  # noqa: BLE001 - the database may be down: retry
                log.warning("background sealing failed (%s); will retry", type(exc).__name__)
                self._stop.wait(backoff)

    def seal_deferred(self) -> Checkpoint | None:
        """Seal the events this process committed unsealed (and, when another process wrote
        among them, every unsealed event, reading the database)."""
        with self.seal_lock:
            started = time.monotonic()
            with self._deferred_lock:
                snapshot = list(self._deferred)
            if not snapshot:
                return None
            with self._newest_lock:
                newest = self._newest
            checkpoint = None
            if newest is not None:
                size, last, frontier_bytes = newest
                mine = [d for d in snapshot if d[0] > last]
                if not mine:  # sealed meanwhile (a batch read and sealed them first)
                    self._forget({d[0] for d in snapshot})
                    return None
                try:
                    with self._datastore.get_connection() as conn, conn.transaction(), \
                            conn.cursor() as curs:
                        curs.execute("CALL ledger_seal_check(%s, %s, %s, %s)",
                                     (size, last, mine[-1][0] + 1, len(mine)))
                        checkpoint = self._sign_and_insert(curs, size, last, frontier_bytes,
                                                           mine)
                except Exception as exc:
                    if "ledger_seal_stale" not in _messages(exc):
                        raise
                    checkpoint = None
            if checkpoint is None:
                checkpoint = self._read_and_seal()
                # a read seals every event committed before it: an event this process
                # committed that is still not under the newest checkpoint left the log
                upto = checkpoint.last_position if checkpoint is not None else (
                    self.last_read[1] if self.last_read else 0)
                gone = {d[0] for d in snapshot if d[0] > upto}
                if gone:
                    log.warning("%d event(s) this process committed were no longer in the "
                                "log when sealed (first position %d): `ledger verify`",
                                len(gone), min(gone))
                    self._forget(gone)
            self.deferred_seals += 1
            if checkpoint is not None:
                self.committed(checkpoint)
            with self._deferred_lock:  # what is left was committed after the snapshot
                if self._deferred:
                    self._deferred_since = max(self._deferred_since, started)
            return checkpoint

    def _forget(self, positions: set[int]) -> None:
        with self._deferred_lock:
            self._deferred = [d for d in self._deferred if d[0] not in positions]
            if not self._deferred:
                self._deferred_since = 0.0

    def _read_and_seal(self) -> Checkpoint | None:
        with self._datastore.get_connection() as conn, conn.transaction(), \
                conn.cursor() as curs:
            checkpoint = self.seal(curs, None, read=True)
        if checkpoint is None and self.last_read is not None:
            with self._newest_lock:  # nothing to seal: remember the newest checkpoint
                self._newest = self.last_read
            last = self.last_read[1]
            with self._deferred_lock:
                self._deferred = [d for d in self._deferred if d[0] > last]
                if not self._deferred:
                    self._deferred_since = 0.0
        return checkpoint

    def _seal_from_database(self) -> int:
        """Seal what is unsealed in the database (an earlier process killed between commit
        and seal, or a writer with sealing off): the next sealer run after a restart."""
        with self.seal_lock:
            checkpoint = self._read_and_seal()
        if checkpoint is None:
            return 0
        self.committed(checkpoint)
        count = checkpoint.tree_size - (checkpoint.previous_size or 0)
        log.info("sealed %d event(s) left unsealed before this process started", count)
        return count

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout=10)
            try:
                self.seal_deferred()  # the tail this process wrote, before it goes
            except Exception as exc:  # noqa: BLE001
                log.warning("deferred events left unsealed at close (%s); the next sealer "
                            "seals them", type(exc).__name__)
        if self.exporter is not None:
            self.exporter.close()


def make_sealer(url: str | None = None, *, export: bool = True) -> Sealer:
    """A sealer configured from the settings (key, origin, the log's export directory
    — found from ``url``, or from the first sealing transaction's connection —, interval,
    witness URL)."""
    from ledger.audit.checkpoints import signing_key

    s = get_settings()
    exporter = None
    if export:
        exporter = Exporter(log_export_dir(s.export_dir, url) if url else None,
                            s.seal_export_interval, s.checkpoint_witness_url or None,
                            base_dir=s.export_dir)
    return Sealer(signing_key(s.key_file), origin=s.checkpoint_origin, exporter=exporter,
                  max_backlog=s.seal_max_backlog, max_delay=s.seal_max_delay)


def install_from_settings(application: Any) -> Sealer | None:
    """What every LedgerApplication does when it starts: seal each batch it saves, unless
    LEDGER_SEAL_PER_BATCH is off."""
    if not get_settings().seal_per_batch:
        return None
    if not isinstance(getattr(application, "recorder", None), SealingRecorderMixin):
        return None  # e.g. an in-memory store in a unit test
    return install(application, make_sealer())


def install(application: Any, sealer: Sealer) -> Sealer:
    """Seal every batch ``application`` saves (its recorder must be the ledger's)."""
    recorder = application.recorder
    if not isinstance(recorder, SealingRecorderMixin):
        raise TypeError("the application's recorder cannot seal batches")
    recorder.sealer = sealer
    sealer.start(recorder.datastore)  # deferred sealing of every batch (max_delay > 0)
    return sealer


def unsealed_backlog(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Events committed after the latest checkpoint, how old the oldest of them is (its
    ``recorded_at``; None when there is none, or it was written before migration 0093), and
    how old that checkpoint is."""
    row = conn.execute(
        "WITH c AS (SELECT last_position, created_at FROM ledger_checkpoints "
        "           ORDER BY tree_size DESC LIMIT 1) "
        "SELECT (SELECT last_position FROM c), (SELECT created_at FROM c), "
        "       (SELECT count(*) FROM ledger_events "
        "        WHERE notification_id > COALESCE((SELECT last_position FROM c), 0)), "
        "       (SELECT COALESCE(max(notification_id), 0) FROM ledger_events), "
        "       (SELECT extract(epoch FROM clock_timestamp() - recorded_at) FROM ledger_events "
        "        WHERE notification_id > COALESCE((SELECT last_position FROM c), 0) "
        "        ORDER BY notification_id LIMIT 1)").fetchone()
    last, at, unsealed, head, oldest = row
    return {"unsealed_events": int(unsealed), "log_position": int(head),
            "sealed_position": int(last or 0),
            "oldest_unsealed_age_seconds": round(float(oldest), 3) if oldest is not None
            else None,
            "last_checkpoint_age_seconds": (round((datetime.now(UTC) - at).total_seconds(), 3)
                                            if at else None)}


def sealing_status(sealer: Sealer | None, conn: psycopg.Connection[Any] | None = None
                   ) -> dict[str, Any]:
    """For ``/ready`` and metrics: what this process has sealed and exported, and (with a
    connection) the database's unsealed backlog. Without a database (down) it reports what
    it knows: checkpoints committed but not yet copied outside the database."""
    out: dict[str, Any] = {"per_batch": sealer is not None}
    if sealer is not None:
        st = sealer.state
        now = time.monotonic()
        out.update({
            "sealed_size": st.sealed_size, "sealed_position": st.sealed_position,
            "exported_size": st.exported_size,
            "unexported_checkpoint_events": max(0, st.sealed_size - st.exported_size),
            "seconds_since_seal": round(now - st.sealed_at, 3) if st.sealed_at else None,
            "seconds_since_export": round(now - st.exported_at, 3) if st.exported_at else None,
            "skipped_batches": st.skipped_batches, "export_failures": st.export_failures,
            "witness_failures": st.witness_failures})
        deferred, age = sealer.deferred_status()
        out.update({"max_delay_seconds": sealer.max_delay if sealer.defers else 0.0,
                    "deferred_events": deferred, "oldest_deferred_seconds": age,
                    "recovered_events": sealer.recovered_events})
    if conn is not None:
        try:
            out.update(unsealed_backlog(conn))
        except psycopg.Error as exc:
            out["database"] = f"unavailable ({type(exc).__name__})"
    return out
