"""The checkpoint job: seals new events (unless every batch is sealed as it commits) and the
access log under signed checkpoints, exports them, and runs in a thread of ``ledger serve``
or as ``ledger checkpoints run``."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.audit.checkpoints import (
    LOCK_KEY,
    Checkpoint,
    export,
    export_path,
    latest_checkpoint,
    load_checkpoints,
    raw_public,
    signing_key,
)
from ledger.audit.merkle import Frontier, FrontierAndTail, consistency_proof, event_leaf

log = logging.getLogger(__name__)


class CheckpointWriter:
    """Seals new events under a signed checkpoint; safe to run in several processes (an
    advisory lock makes them take turns) and to restart (it resumes from the last one)."""

    def __init__(self, url: str, key: Ed25519PrivateKey, *, export_dir: Path | None = None,
                 origin: str = "claims-ledger", max_leaves: int = 100_000,
                 seal_events: bool = True) -> None:
        self.url = url
        self.seal_events = seal_events
        self.key = key
        self.public = raw_public(key.public_key())
        self.export_dir = export_dir
        self.origin = origin
        self.max_leaves = max_leaves
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.url)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def run_once(self) -> Checkpoint | None:
        """Add up to ``max_leaves`` new events and sign a checkpoint; None if nothing new."""
        conn = self._connection()
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
                previous = latest_checkpoint(conn)
                frontier = (Frontier.from_bytes(previous.tree_size, previous.frontier)
                            if previous else Frontier())
                after = previous.last_position if previous else 0
                rows = conn.execute(
                    "SELECT notification_id, originator_id, originator_version, chain_hash "
                    "FROM ledger_events WHERE notification_id > %s "
                    "ORDER BY notification_id LIMIT %s", (after, self.max_leaves)).fetchall()
                if not rows:
                    return None
                old = frontier.copy()
                tail = [event_leaf(nid, bytes(h)) for nid, _, _, h in rows]
                frontier.extend(tail)
                proof = (consistency_proof(old.size, frontier.size, FrontierAndTail(old, tail))
                         if old.size else [])
                with conn.cursor().copy(
                        "COPY ledger_audit_leaves (notification_id, originator_id, "
                        "originator_version, chain_hash) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                checkpoint = Checkpoint(
                    origin=self.origin, tree_size=frontier.size, root_hash=frontier.root(),
                    last_position=rows[-1][0], time=datetime.now(UTC), signature=b"",
                    public_key=self.public, previous_size=old.size or None,
                    consistency_proof=tuple(proof), frontier=frontier.to_bytes())
                text = checkpoint.signed_text()
                signature = self.key.sign(text.encode("utf-8"))
                checkpoint = replace(checkpoint, signature=signature, body=text)
                conn.execute(
                    "INSERT INTO ledger_checkpoints (tree_size, last_position, root_hash, "
                    "created_at, origin, body, signature, key_id, public_key, previous_size, "
                    "consistency_proof, frontier) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (checkpoint.tree_size, checkpoint.last_position, checkpoint.root_hash,
                     checkpoint.time, checkpoint.origin, text, signature, checkpoint.key_id,
                     self.public, checkpoint.previous_size, b"".join(proof),
                     checkpoint.frontier))
        except psycopg.OperationalError:
            self.close()
            raise
        if self.export_dir is not None:
            export(checkpoint, self.export_dir)
        log.info("checkpoint: %d events sealed (root %s, position %d)", checkpoint.tree_size,
                 checkpoint.root_hash.hex()[:16], checkpoint.last_position)
        return checkpoint

    def seal_access(self) -> Any:
        """Seal up to ``max_leaves`` final access records; None if there are none."""
        from ledger.audit.seals import ACCESS_COLUMNS, AccessSeal, access_leaf, latest_seal
        from ledger.audit.seals import FILE_PREFIX as SEAL_PREFIX

        conn = self._connection()
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY + 1,))
                previous = latest_seal(conn)
                frontier = (Frontier.from_bytes(previous.tree_size, previous.frontier)
                            if previous else Frontier())
                cursor = (previous.cursor_tx, previous.cursor_id) if previous else (0, 0)
                # Final records only: their transaction is older than every running one.
                rows = conn.execute(
                    f"SELECT {ACCESS_COLUMNS} FROM ledger_access_log "
                    "WHERE (tx, id) > (%s::text::xid8, %s) "
                    "AND tx < pg_snapshot_xmin(pg_current_snapshot()) "
                    "ORDER BY tx, id LIMIT %s",
                    (str(cursor[0]), cursor[1], self.max_leaves)).fetchall()
                if not rows:
                    return None
                old = frontier.copy()
                tail = [access_leaf(r) for r in rows]
                frontier.extend(tail)
                proof = (consistency_proof(old.size, frontier.size, FrontierAndTail(old, tail))
                         if old.size else [])
                seal = AccessSeal(
                    origin=self.origin, tree_size=frontier.size, root_hash=frontier.root(),
                    cursor_tx=int(rows[-1][1]), cursor_id=rows[-1][0], time=datetime.now(UTC),
                    signature=b"", public_key=self.public, previous_size=old.size or None,
                    consistency_proof=tuple(proof), frontier=frontier.to_bytes())
                text = seal.signed_text()
                seal = replace(seal, signature=self.key.sign(text.encode("utf-8")), body=text)
                conn.execute(
                    "INSERT INTO ledger_access_seals (tree_size, cursor_tx, cursor_id, root_hash, "
                    "created_at, origin, body, signature, key_id, public_key, previous_size, "
                    "consistency_proof, frontier) VALUES (%s, %s::text::xid8, %s, %s, %s, %s, "
                    "%s, %s, %s, %s, %s, %s, %s)",
                    (seal.tree_size, str(seal.cursor_tx), seal.cursor_id, seal.root_hash,
                     seal.time, seal.origin, text, seal.signature, seal.key_id, self.public,
                     seal.previous_size, b"".join(proof), seal.frontier))
        except psycopg.OperationalError:
            self.close()
            raise
        if self.export_dir is not None:
            export(seal, self.export_dir, SEAL_PREFIX)
        return seal

    def catch_up(self) -> list[Checkpoint]:
        """Checkpoints until every committed event is sealed (one per ``max_leaves``), then
        seals for the final access records. With ``seal_events`` off (the writers seal every
        batch themselves), events are left alone: an event that is not sealed by now was not
        written by the ledger, and must not be signed."""
        made: list[Checkpoint] = []
        while self.seal_events and (checkpoint := self.run_once()) is not None:
            made.append(checkpoint)
            if checkpoint.tree_size - (checkpoint.previous_size or 0) < self.max_leaves:
                break
        while (seal := self.seal_access()) is not None:
            if seal.tree_size - (seal.previous_size or 0) < self.max_leaves:
                break
        self.export_missing()
        return made

    def export_missing(self, every: bool = False) -> int:
        """Export database checkpoints absent from the directory (after a crash, say): the
        newest checkpoint and access seal, or ``every`` one (with a checkpoint per batch, that
        is one file per batch: ``ledger checkpoints export`` asks for it explicitly)."""
        if self.export_dir is None:
            return 0
        from ledger.audit.seals import FILE_PREFIX as SEAL_PREFIX
        from ledger.audit.seals import load_seals, seal_path

        conn = self._connection()
        with conn.transaction():
            checkpoints = load_checkpoints(conn)
            seals = load_seals(conn)
        if not every:
            checkpoints, seals = checkpoints[-1:], seals[-1:]
        count = 0
        for c in checkpoints:
            if not export_path(self.export_dir, c.tree_size).exists():
                export(c, self.export_dir)
                count += 1
        for a in seals:
            if not seal_path(self.export_dir, a.tree_size).exists():
                export(a, self.export_dir, SEAL_PREFIX)
                count += 1
        return count

    def run_forever(self, interval: float, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        failing = False
        while not stop.is_set():
            try:
                self.catch_up()
                if failing:
                    log.warning("checkpoint runs resumed")
                failing = False
            except psycopg.Error as exc:
                if not failing:  # one line per outage, not one per attempt
                    log.warning("checkpoint run failed (%s); retrying", type(exc).__name__)
                failing = True
                self.close()  # reconnect next time (the server may have restarted)
            stop.wait(min(interval, 1.0) if failing else interval)
        self.close()

    def start_background(self, interval: float) -> tuple[threading.Thread, threading.Event]:
        """Run in a daemon thread (e.g. inside the API process); set the event to stop."""
        stop = threading.Event()
        thread = threading.Thread(target=self.run_forever, args=(interval, stop),
                                  name="ledger-checkpoints", daemon=True)
        thread.start()
        return thread, stop


def start_in_process(url: str) -> tuple[threading.Thread, threading.Event] | None:
    """Start the checkpoint job in a daemon thread (``ledger serve``), as configured by
    LEDGER_CHECKPOINTS_IN_PROCESS / _INTERVAL / _KEY_FILE / _DIR; None when switched off."""
    from ledger.config import get_settings

    s = get_settings()
    if not s.checkpoints_in_process:
        return None
    from ledger.audit.sealing import log_export_dir

    directory = log_export_dir(s.export_dir, url)
    # With per-batch sealing the writers seal events; this job seals the access log only.
    writer = CheckpointWriter(url, signing_key(s.key_file), export_dir=directory,
                              origin=s.checkpoint_origin, max_leaves=s.checkpoint_max_leaves,
                              seal_events=not s.seal_per_batch)
    log.info("checkpoints: sealing %s every %g s (export to %s)",
             "the access log" if s.seal_per_batch else "new events and the access log",
             s.checkpoint_interval, directory)
    return writer.start_background(s.checkpoint_interval)
