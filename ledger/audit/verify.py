"""``ledger verify``: is the stored history the history that was written?

Full verification reads, in ONE repeatable-read snapshot:

1. the checkpoints (database rows and the exported files, read first): each signature against
   the trusted public key, each RFC 6962 consistency proof from its predecessor, and the
   database rows against their exported copies;
2. every event in log order: each encounter's hash chain is recomputed (versions contiguous
   from 1, stored in version order, every hash reproduced); the log's Merkle tree is rebuilt
   and must reproduce every checkpoint's root; and the events are compared one by one with the
   audit leaf record (itself checked against the signed roots), which names the exact event
   that went missing, was inserted, moved or changed.

What is wrong is one of: ``modified``, ``missing``, ``inserted``, ``reordered``, ``truncated``
(events) or ``checkpoint`` (a checkpoint record or file). Problems are ordered by log position;
the first one is "the first bad place". Events newer than the latest checkpoint are protected
by their chains only: deleting the newest events of an encounter, or appending a well-formed
forged event, is detectable only once a checkpoint covers them.

``verify(url, encounter=ID)`` checks one encounter (its chain and its leaf record, plus the
latest checkpoint's signature) through the primary-key index: milliseconds.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.audit.checkpoints import (
    SELECT_CHECKPOINTS,
    Checkpoint,
    key_id,
    latest_checkpoint,
    load_checkpoints,
    load_exported,
    raw_public,
)
from ledger.audit.merkle import Frontier
from ledger.persistence.chain import GENESIS, link, topic_field

UNSEALED = ("after the latest checkpoint and older than the sealing bound (LEDGER_SEAL_MAX_DELAY):"
            " every batch is sealed within it, so this event was appended (or the newest one "
            "replaced) behind the ledger's back")
# Clock difference tolerated between the writer's insert time and the verifier's "now".
PENDING_SKEW_SECONDS = 1.0
KINDS = ("modified", "missing", "inserted", "reordered", "truncated", "checkpoint")
_U64 = struct.Struct(">Q")
_NO_POSITION = 1 << 62


@dataclass(frozen=True)
class Problem:
    kind: str
    detail: str
    encounter_id: UUID | None = None
    version: int | None = None
    position: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "encounter_id": str(self.encounter_id)
                if self.encounter_id else None, "version": self.version,
                "position": self.position, "detail": self.detail}

    def where(self) -> str:
        parts = []
        if self.encounter_id:
            parts.append(f"encounter {self.encounter_id}")
        if self.version is not None:
            parts.append(f"version {self.version}")
        if self.position is not None:
            parts.append(f"position {self.position}")
        return ", ".join(parts) or "-"


@dataclass
class Report:
    scope: str  # "all" or "encounter"
    encounter_id: UUID | None = None
    events: int = 0
    encounters: int = 0
    checkpoints: int = 0
    exported_checkpoints: int = 0
    snapshots: int | None = None  # snapshots compared with the events (None: not checked)
    access_seals: int = 0
    access_records: int = 0  # sealed access records verified
    covered: int = 0  # events under the latest checkpoint
    # unsealed events younger than the sealing bound (a batch is sealed within it, after
    # its commit): reported, not a problem
    pending: int = 0
    pending_from: int | None = None  # position of the first pending event
    latest_position: int | None = None  # log position the latest checkpoint covers
    key: str = "none"  # trusted key id, or "untrusted" (each checkpoint's own key)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "scope": self.scope,
            "encounter_id": str(self.encounter_id) if self.encounter_id else None,
            "events": self.events, "encounters": self.encounters,
            "checkpoints": self.checkpoints, "exported_checkpoints": self.exported_checkpoints,
            "snapshots_checked": self.snapshots, "access_seals": self.access_seals,
            "access_records_verified": self.access_records,
            "covered_events": self.covered, "covered_position": self.latest_position,
            "pending_events": self.pending, "pending_from": self.pending_from,
            "trusted_key": self.key, "problem_count": self.problem_count,
            "counts": self.counts, "first_problem": self.first.as_dict() if self.first else None,
            "problems": [p.as_dict() for p in self.problems], "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
        }


class _Sink:
    def __init__(self, report: Report, cap: int) -> None:
        self.report = report
        self.cap = cap
        self.pending_positions: frozenset[int] = frozenset()

    def unsealed(self, oid: bytes, version: int, position: int) -> None:
        """An event after the latest checkpoint: pending while younger than the bound."""
        if position in self.pending_positions:
            r = self.report
            r.pending += 1
            if r.pending_from is None or position < r.pending_from:
                r.pending_from = position
        else:
            self.add("inserted", UNSEALED, oid, version, position)

    def add(self, kind: str, detail: str, oid: bytes | UUID | None = None,
            version: int | None = None, position: int | None = None) -> None:
        r = self.report
        r.problem_count += 1
        r.counts[kind] = r.counts.get(kind, 0) + 1
        if len(r.problems) < self.cap:
            if isinstance(oid, bytes | bytearray | memoryview):
                oid = UUID(bytes=bytes(oid))
            r.problems.append(Problem(kind, detail, oid, version, position))

    def finish(self) -> None:
        self.report.problems.sort(
            key=lambda p: (p.position if p.position is not None else _NO_POSITION,
                           KINDS.index(p.kind)))


# --------------------------------------------------------------------------- checkpoints
def _trusted(keys: Ed25519PublicKey | list[Ed25519PublicKey] | None
             ) -> dict[bytes, Ed25519PublicKey] | None:
    if keys is None:
        return None
    if isinstance(keys, Ed25519PublicKey):
        keys = [keys]
    return {raw_public(k): k for k in keys} or None


def _check_checkpoints(db: list[Any], files: list[Any],
                       trusted: Ed25519PublicKey | list[Ed25519PublicKey] | None, sink: _Sink,
                       report: Report, *, complete: bool = True,
                       label: str = "checkpoint") -> list[Any]:
    """Validate the records (checkpoints, or access seals with ``label``); return the ones the
    log is checked against. ``trusted``: one key, or several (after key rotations)."""
    at = (lambda c: c.last_position) if label == "checkpoint" else (lambda c: None)
    ring = _trusted(trusted)

    def signed_ok(c: Checkpoint, where: str) -> bool:
        key = None
        if ring is not None:
            key = ring.get(c.public_key)
            if key is None:
                sink.add("checkpoint", f"{where} {label} {c.tree_size} is signed by key "
                         f"{c.key_id}, not a trusted key "
                         f"({', '.join(key_id(r) for r in ring)})", position=at(c))
                return False
        if not c.signature_valid(key):
            sink.add("checkpoint", f"{where} {label} {c.tree_size}: the signature does not "
                     "verify (the record was altered)", position=at(c))
            return False
        return True

    def chain_ok(items: list[Checkpoint], where: str, consecutive: bool = True) -> None:
        for prev, cur in zip(items, items[1:], strict=False):
            if not consecutive and cur.previous_size != prev.tree_size:
                continue  # exported copies are a subset (the newest per export interval)
            if cur.previous_size != prev.tree_size:
                sink.add("checkpoint", f"{where} {label} {cur.tree_size} follows {label} "
                         f"{cur.previous_size}, but the one before it is {prev.tree_size} "
                         f"(a {label} is missing)", position=at(cur))
            elif cur.consistency_proof and not cur.extends(prev):
                # (per-batch checkpoints store no proof: the scan checks their roots)
                sink.add("checkpoint", f"{where} {label} {cur.tree_size} is not consistent "
                         f"with {label} {prev.tree_size} (RFC 6962 proof fails)",
                         position=at(cur))
        if complete and consecutive and items and items[0].previous_size not in (None, 0):
            sink.add("checkpoint", f"{where} {label} {items[0].tree_size} follows "
                     f"{label} {items[0].previous_size}, which is missing",
                     position=at(items[0]))

    good_db = [c for c in db if signed_ok(c, "database")]
    good_files = [c for c in files if signed_ok(c, "exported")]
    chain_ok(good_db, "database", consecutive=complete)
    chain_ok(good_files, "exported", consecutive=False)

    by_size = {c.tree_size: c for c in good_db}
    reference = dict(by_size)
    for f in good_files:
        mine = by_size.get(f.tree_size)
        if mine is None:
            if not any(c.tree_size == f.tree_size for c in db):
                sink.add("checkpoint", f"{label} {f.tree_size} (exported) is missing from "
                         "the database", position=at(f))
        elif (mine.root_hash, mine.last_position, mine.signature) != (
                f.root_hash, f.last_position, f.signature):
            sink.add("checkpoint", f"database {label} {f.tree_size} differs from its "
                     "exported copy", position=at(f))
        reference[f.tree_size] = f  # the copy outside the database wins
    exported = {f.tree_size for f in files}
    unexported = [c.tree_size for c in db if c.tree_size not in exported]
    if files and unexported:
        report.warnings.append(f"{len(unexported)} database {label}(s) not exported yet "
                               f"(e.g. {unexported[-1]}); run `ledger checkpoints export`")
    return [reference[k] for k in sorted(reference)]


# ------------------------------------------------------------------------------ the scan

def _suspect(suspects: dict[bytes, list[int]], ib: bytes, nid: int, sealed_version: int,
             delta: int) -> None:
    """Note a sealed event of this encounter that now differs (same position)."""
    st = suspects.get(ib)
    if st is None:
        suspects[ib] = [nid, sealed_version, delta, delta]
    else:
        st[2] = min(st[2], delta)
        st[3] = max(st[3], delta)


def _report_suspects(conn: psycopg.Connection[Any], suspects: dict[bytes, list[int]],
                     sink: _Sink) -> None:
    """One problem per encounter whose sealed events changed, classified by how the versions
    at the sealed positions moved: all up = events inserted before them (and the later ones
    renumbered), all down = events removed, both = reordered, none = rewritten in place."""
    for ib, (nid, version, low, high) in suspects.items():
        if high > 0 and low >= 0:
            forged = conn.execute(
                "SELECT notification_id FROM ledger_events WHERE originator_id = %s "
                "AND originator_version = %s", (UUID(bytes=ib), version)).fetchone()
            where = f" (now at position {forged[0]})" if forged else ""
            sink.add("inserted", f"{high} event(s) inserted as version {version}{where}: the "
                     f"event sealed here as version {version} is now version {version + high}",
                     ib, version, nid)
        elif low < 0 and high <= 0:
            sink.add("missing", f"event(s) removed before version {version}: the event sealed "
                     f"here as version {version} is now version {version + low}", ib,
                     version + low, nid)
        elif low < 0 < high:
            sink.add("reordered", f"sealed as version {version}, now stored as a different "
                     "version (versions were swapped)", ib, version, nid)
        else:
            sink.add("modified", "the chain hash differs from the one sealed by the checkpoint "
                     "(the event was rewritten and the chain recomputed)", ib, version, nid)

def _rows(conn: psycopg.Connection[Any], name: str, sql: str,
          params: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    with conn.cursor(name=name, binary=True) as cur:
        cur.itersize = 5000
        cur.execute(sql, params)
        while batch := cur.fetchmany(5000):
            yield from batch


def _scan_log(conn: psycopg.Connection[Any], reference: list[Checkpoint], leaf_limit: int,
              db_checkpoints: list[Checkpoint], sink: _Sink, report: Report,
              require_sealed: bool = False) -> None:
    sha = hashlib.sha256
    pack_q = _U64.pack
    topics: dict[str, bytes] = {}
    # encounter id bytes -> [next version, previous hash, {version: position} seen early, bad]
    enc: dict[bytes, list[Any]] = {}

    # The log's Merkle tree, built inline (the hot loop): the frontier's nodes and size.
    nodes: list[bytes] = []
    size = 0
    roots = {c.tree_size: (c.root_hash, c.last_position) for c in reference}
    db_roots = {c.tree_size: c.root_hash for c in db_checkpoints}
    checkpoint_sizes = sorted(set(roots) | set(db_roots))
    next_check = checkpoint_sizes[0] if checkpoint_sizes else -1
    ci = 0
    log_matches = True
    # The leaf record's tree: None while it is identical to the log's (the usual case).
    leaf_tree: Frontier | None = None
    leaf_record_ok = True

    def leaf_record_altered(at: int) -> None:
        nonlocal leaf_record_ok
        if leaf_record_ok:
            leaf_record_ok = False
            report.warnings.append(
                f"the audit leaf record does not reproduce checkpoint {at}: it was altered "
                "too, so the positions named may be approximate")

    def leaf_append(leaf: bytes) -> None:
        assert leaf_tree is not None
        leaf_tree.append(leaf)
        expected = db_roots.get(leaf_tree.size)
        if expected is not None and leaf_tree.root() != expected:
            leaf_record_altered(leaf_tree.size)

    def diverge() -> Frontier:
        nonlocal leaf_tree
        if leaf_tree is None:
            leaf_tree = Frontier(size, list(nodes))
        return leaf_tree

    suspects: dict[bytes, list[int]] = {}
    leaves = _rows(conn, "verify_leaves",
                   "SELECT notification_id, uuid_send(originator_id), originator_version, "
                   "chain_hash FROM ledger_audit_leaves ORDER BY notification_id")
    lf = next(leaves, None)
    last_nid = 0
    for nid, ib, ver, topic, state, h in _rows(
            conn, "verify_events",
            "SELECT notification_id, uuid_send(originator_id), originator_version, topic, "
            "state, chain_hash FROM ledger_events ORDER BY notification_id"):
        last_nid = nid
        if h is None:
            h = b""
        leaf = sha(b"\x00" + pack_q(nid) + h).digest()

        # The audit leaf record, merged by position.
        if lf is not None and lf[0] == nid and lf[3] == h and lf[2] == ver and lf[1] == ib:
            if leaf_tree is not None:
                leaf_append(leaf)
            lf = next(leaves, None)
        else:
            while lf is not None and lf[0] < nid:
                sink.add("missing", "sealed by a checkpoint but no longer in the log (deleted)",
                         lf[1], lf[2], lf[0])
                diverge()
                leaf_append(sha(b"\x00" + pack_q(lf[0]) + lf[3]).digest())
                lf = next(leaves, None)
            if lf is not None and lf[0] == nid:
                if lf[1] != ib:
                    sink.add("modified", f"the event at this position belonged to encounter "
                             f"{UUID(bytes=lf[1])} version {lf[2]} when sealed", ib, ver, nid)
                elif lf[2] != ver or lf[3] != h:
                    _suspect(suspects, ib, nid, lf[2], ver - lf[2])
                if lf[3] == h and leaf_tree is None:
                    pass  # same leaf hash: the trees stay identical
                else:
                    diverge()
                    leaf_append(sha(b"\x00" + pack_q(lf[0]) + lf[3]).digest())
                lf = next(leaves, None)
            elif nid <= leaf_limit:
                sink.add("inserted", "in the log at a position a checkpoint sealed without it",
                         ib, ver, nid)
                diverge()
            elif require_sealed:
                sink.unsealed(ib, ver, nid)

        # The log's tree (RFC 6962 frontier append, inline), checked at checkpoint sizes.
        nodes.append(leaf)
        n = size
        while n & 1:
            right = nodes.pop()
            nodes[-1] = sha(b"\x01" + nodes[-1] + right).digest()
            n >>= 1
        size += 1
        if size == next_check:
            root = Frontier(size, nodes).root()
            if size in roots and log_matches and root != roots[size][0]:
                log_matches = False
                sink.add("checkpoint", f"the first {size} events do not reproduce the root of "
                         f"checkpoint {size} (covering up to position {roots[size][1]})",
                         position=nid)
            if size in db_roots and leaf_tree is None and root != db_roots[size]:
                leaf_record_altered(size)
            ci += 1
            next_check = checkpoint_sizes[ci] if ci < len(checkpoint_sizes) else -1

        # The encounter's chain.
        st = enc.get(ib)
        if st is None:
            st = enc[ib] = [1, GENESIS, None, False]
        elif st[3]:
            continue
        if ver == st[0]:
            if st[2]:
                early = min(st[2])
                sink.add("reordered", f"version {ver} (position {nid}) is stored after "
                         f"version {early} (position {st[2][early]})", ib, ver,
                         min(st[2].values()))
                st[3] = True
                continue
            tp = topics.get(topic)
            if tp is None:
                tp = topics[topic] = topic_field(topic)
            if link(st[1], ib, ver, tp, state) != h:
                sink.add("modified", "the stored event does not reproduce its chain hash "
                         "(state, topic, id or version changed, or the hash itself)",
                         ib, ver, nid)
                st[3] = True
                continue
            st[0] = ver + 1
            st[1] = h
        elif ver > st[0]:
            if st[2] is None:
                st[2] = {}
            st[2][ver] = nid
        else:  # pragma: no cover - the primary key forbids a repeated version
            sink.add("inserted", "a repeated version", ib, ver, nid)
            st[3] = True

    # Leaves past the end of the log: the log was cut short.
    while lf is not None:
        kind = "truncated" if lf[0] > last_nid else "missing"
        sink.add(kind, "sealed by a checkpoint but no longer in the log"
                 + (f" (the log now ends at position {last_nid})" if kind == "truncated" else ""),
                 lf[1], lf[2], lf[0])
        diverge()
        leaf_append(sha(b"\x00" + pack_q(lf[0]) + lf[3]).digest())
        lf = next(leaves, None)
    if roots and size < max(roots):
        top = max(roots)
        sink.add("truncated", f"the log has {size} events, but checkpoint {top} sealed "
                 f"{top} (up to position {roots[top][1]})", position=last_nid + 1)
    sealed = (leaf_tree.size if leaf_tree is not None else size)
    if db_roots and sealed < max(db_roots) and leaf_record_ok:
        report.warnings.append("the audit leaf record is shorter than the checkpoints: it was "
                               "altered too")

    _report_suspects(conn, suspects, sink)
    for ib, st in enc.items():
        if st[2] and not st[3]:
            early = min(st[2])
            sink.add("missing", f"version {st[0]} is missing (the encounter continues with "
                     f"version {early})", ib, st[0], st[2][early])
    report.events = size
    report.encounters = len(enc)


def _scan_encounter(conn: psycopg.Connection[Any], encounter_id: UUID, leaf_limit: int,
                    sink: _Sink, report: Report, require_sealed: bool = False) -> None:
    rows = conn.execute(
        "SELECT notification_id, uuid_send(originator_id), originator_version, topic, state, "
        "chain_hash FROM ledger_events WHERE originator_id = %s ORDER BY originator_version",
        (encounter_id,), binary=True).fetchall()
    leaves = conn.execute(
        "SELECT notification_id, originator_version, chain_hash FROM ledger_audit_leaves "
        "WHERE originator_id = %s ORDER BY originator_version", (encounter_id,)).fetchall()
    report.events = len(rows)
    report.encounters = 1 if rows else 0
    ib = encounter_id.bytes
    for prev, cur in zip(rows, rows[1:], strict=False):
        if cur[0] < prev[0]:
            sink.add("reordered", f"version {prev[2]} (position {prev[0]}) is stored after "
                     f"version {cur[2]} (position {cur[0]})", ib, prev[2], cur[0])
            break
    else:
        h = GENESIS
        expected_version = 1
        for nid, _, ver, topic, state, stored in rows:
            if ver != expected_version:
                missing = (f"version {expected_version}" if ver == expected_version + 1
                           else f"versions {expected_version}-{ver - 1}")
                sink.add("missing", f"{missing} missing before this event", ib,
                         expected_version, nid)
                break
            h = link(h, ib, ver, topic_field(topic), state)
            if h != stored:
                sink.add("modified", "the stored event does not reproduce its chain hash",
                         ib, ver, nid)
                break
            h = bytes(stored)
            expected_version += 1
    in_log = {r[0]: r for r in rows}
    sealed = set()
    suspects: dict[bytes, list[int]] = {}
    for nid, ver, stored in sorted(leaves):
        sealed.add(nid)
        row = in_log.get(nid)
        if row is None:
            sink.add("missing", "sealed by a checkpoint but no longer in the log (deleted)",
                     ib, ver, nid)
        elif row[2] != ver or bytes(row[5]) != bytes(stored):
            _suspect(suspects, ib, nid, ver, row[2] - ver)
    _report_suspects(conn, suspects, sink)
    for nid, _, ver, *_ in rows:
        if nid > leaf_limit and require_sealed:
            sink.unsealed(ib, ver, nid)
        if nid <= leaf_limit and nid not in sealed:
            other = conn.execute("SELECT originator_id, originator_version FROM "
                                 "ledger_audit_leaves WHERE notification_id = %s",
                                 (nid,)).fetchone()
            detail = ("in the log at a position a checkpoint sealed without it" if other is None
                      else f"at a position sealed for encounter {other[0]} version {other[1]}")
            sink.add("inserted" if other is None else "modified", detail, ib, ver, nid)


# ---------------------------------------------------------------------------- access log
def _scan_access(conn: psycopg.Connection[Any],
                 trusted: Ed25519PublicKey | list[Ed25519PublicKey] | None,
                 export_dir: Path | None, sink: _Sink, report: Report) -> None:
    """The read-access log against its signed seals (ledger/audit/seals.py)."""
    from ledger.audit.seals import ACCESS_COLUMNS, access_leaf, load_exported_seals, load_seals

    db = load_seals(conn)
    files = load_exported_seals(export_dir) if export_dir else []
    report.access_seals = len(db)
    reference = _check_checkpoints(db, files, trusted, sink, report, label="access seal")
    if not reference:
        return
    last = reference[-1]
    tree = Frontier()
    targets = {c.tree_size: c for c in reference}
    previous_id = 0
    bad = False
    for row in _rows(conn, "verify_access",
                     f"SELECT {ACCESS_COLUMNS} FROM ledger_access_log "
                     "WHERE (tx, id) <= (%s::text::xid8, %s) ORDER BY tx, id",
                     (str(last.cursor_tx), last.cursor_id)):
        tree.append(access_leaf(row))
        seal = targets.get(tree.size)
        if seal is not None and not bad:
            if tree.root() != seal.root_hash:
                bad = True
                sink.add("modified", f"the access log does not reproduce access seal "
                         f"{seal.tree_size}: a record sealed after access record {previous_id} "
                         f"and up to access record {seal.cursor_id} was changed, removed or "
                         "inserted")
            previous_id = seal.cursor_id
    report.access_records = tree.size
    if tree.size < last.tree_size and not bad:
        sink.add("truncated", f"the access log holds {tree.size} sealed records, but access "
                 f"seal {last.tree_size} sealed {last.tree_size} (up to access record "
                 f"{last.cursor_id})")
    elif tree.size > last.tree_size and not bad:
        sink.add("inserted", f"{tree.size - last.tree_size} access record(s) now sit among "
                 f"those sealed by access seal {last.tree_size}")


# ---------------------------------------------------------------------------- snapshots
def _check_snapshots(url: str, encounter: UUID | None, sink: _Sink, report: Report) -> None:
    """Snapshots are a cache the application trusts: each must equal the encounter replayed
    from its (verified) events up to the snapshot's version."""
    from eventsourcing.application import Application, Repository

    from ledger.config import get_settings
    from ledger.domain.encounter import Encounter
    from ledger.persistence.database import APP_NAME, eventsourcing_env
    from ledger.persistence.transcoding import OrjsonTranscoder

    settings = get_settings().model_copy(update={"database_url": url, "cache_size": 0,
                                                 "pool_size": 1, "max_overflow": 1})
    with psycopg.connect(url) as conn:
        sql = "SELECT originator_id, originator_version FROM ledger_snapshots"
        params: tuple[Any, ...] = ()
        if encounter is not None:
            sql += " WHERE originator_id = %s"
            params = (encounter,)
        snapshots = conn.execute(sql + " ORDER BY originator_id, originator_version",
                                 params).fetchall()
    report.snapshots = len(snapshots)
    if not snapshots:
        return
    class _Reader(Application[UUID]):  # the ledger's stores and transcoder, nothing else
        name = APP_NAME
        snapshotting_intervals = {Encounter: 50}  # any: only turns the snapshot store on

        def construct_transcoder(self) -> OrjsonTranscoder:
            return OrjsonTranscoder()

    app = _Reader(eventsourcing_env(url, settings))
    try:
        replay = Repository(app.events)
        assert app.snapshots is not None
        for oid, version in snapshots:
            try:
                snapshot = next(iter(app.snapshots.get(oid, gt=version - 1, lte=version)))
                from_snapshot = snapshot.mutate(None)
            except Exception as exc:  # noqa: BLE001 - an unreadable snapshot is a finding
                sink.add("modified", f"the snapshot at version {version} cannot be read "
                         f"({type(exc).__name__})", oid, version)
                continue
            try:
                replayed = replay.get(oid, version=version)
            except Exception as exc:  # noqa: BLE001
                sink.add("missing", f"the events up to the snapshot's version {version} cannot "
                         f"be replayed ({type(exc).__name__})", oid, version)
                continue
            if vars(from_snapshot) != vars(replayed):
                differ = sorted(k for k in set(vars(replayed)) | set(vars(from_snapshot))
                                if vars(replayed).get(k) != vars(from_snapshot).get(k))
                sink.add("modified", f"the snapshot at version {version} does not match the "
                         f"events (attributes differ: {', '.join(differ[:5])})", oid, version)
    finally:
        app.close()


def _pending_positions(conn: psycopg.Connection[Any], leaf_limit: int, seconds: float,
                       encounter: UUID | None = None) -> frozenset[int]:
    """Positions after the latest checkpoint inserted less than ``seconds`` ago (by the
    server's clock; a time in the future beyond the skew is not believed)."""
    if seconds <= 0:
        return frozenset()
    sql = ("SELECT notification_id FROM ledger_events WHERE notification_id > %s "
           "AND recorded_at > clock_timestamp() - make_interval(secs => %s) "
           "AND recorded_at <= clock_timestamp() + make_interval(secs => %s)")
    params: tuple[Any, ...] = (leaf_limit, seconds, PENDING_SKEW_SECONDS)
    if encounter is not None:
        sql += " AND originator_id = %s"
        params += (encounter,)
    return frozenset(r[0] for r in conn.execute(sql, params))


# --------------------------------------------------------------------------------- entry
def verify(url: str, *, encounter: UUID | None = None,
           public_key: Ed25519PublicKey | list[Ed25519PublicKey] | None = None,
           export_dir: Path | None = None,
           snapshots: bool | None = None, max_problems: int = 200,
           require_sealed: bool = False, pending_seconds: float | None = None) -> Report:
    """Verify the whole log, or one encounter. ``snapshots``: also compare every snapshot with
    the events it stands for (default: only for one encounter; the whole log replays every
    snapshotted encounter, so it is asked for explicitly). ``require_sealed``: every batch is
    sealed within ``pending_seconds`` of its commit (LEDGER_SEAL_PER_BATCH; default
    LEDGER_SEAL_MAX_DELAY), so an event after the latest checkpoint is reported as
    ``inserted`` when it is older than that (its ``recorded_at``), and counted as ``pending``
    otherwise."""
    if pending_seconds is None:
        from ledger.config import get_settings

        pending_seconds = get_settings().seal_max_delay if require_sealed else 0.0
    started = time.perf_counter()
    report = Report(scope="encounter" if encounter else "all", encounter_id=encounter)
    sink = _Sink(report, max_problems)
    # Files first: a file written before the snapshot below was committed before it too.
    files = (load_exported(export_dir, latest_only=encounter is not None)
             if export_dir else [])
    report.exported_checkpoints = len(files)
    ring = _trusted(public_key)
    report.key = ", ".join(key_id(r) for r in ring) if ring else "untrusted"
    if ring is None:
        report.warnings.append("no trusted public key configured: each checkpoint's signature "
                               "is checked against the key stored with it")
    with psycopg.connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            if encounter is not None:
                # Fast path: the latest checkpoints' signatures and this encounter only.
                latest = latest_checkpoint(conn)
                latest_db = [latest] if latest else []
                # the exported copy may be older than the newest row (it is written within a
                # second): compare it with the row of its own size
                sizes = [f.tree_size for f in files if latest is None
                         or f.tree_size != latest.tree_size]
                if sizes:
                    rows = conn.execute(SELECT_CHECKPOINTS + " WHERE tree_size = ANY(%s) "
                                        "ORDER BY tree_size", (sizes,)).fetchall()
                    latest_db = [Checkpoint.from_row(r) for r in rows] + latest_db
                report.checkpoints = len(latest_db)
                reference = _check_checkpoints(latest_db, files, public_key, sink, report,
                                               complete=False)
                leaf_limit = latest.last_position if latest else 0
                sink.pending_positions = _pending_positions(conn, leaf_limit, pending_seconds,
                                                            encounter)
                _scan_encounter(conn, encounter, leaf_limit, sink, report, require_sealed)
            else:
                db = load_checkpoints(conn)
                report.checkpoints = len(db)
                reference = _check_checkpoints(db, files, public_key, sink, report)
                leaf_limit = db[-1].last_position if db else 0
                sink.pending_positions = _pending_positions(conn, leaf_limit, pending_seconds)
                _scan_log(conn, reference, leaf_limit, db, sink, report, require_sealed)
                _scan_access(conn, public_key, export_dir, sink, report)
            if reference:
                report.covered = reference[-1].tree_size
                report.latest_position = reference[-1].last_position
    if snapshots or (snapshots is None and encounter is not None):
        _check_snapshots(url, encounter, sink, report)
    sink.finish()
    report.seconds = time.perf_counter() - started
    return report
