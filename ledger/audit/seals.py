"""Signed seals over the read-access log: altering the audit log becomes detectable.

The checkpoint job (``CheckpointWriter.seal_access``) appends the access records that are
final — written by transactions older than every running one (``tx`` below the snapshot's
xmin) — in ``(tx, id)`` order to an RFC 6962 tree, and signs its root with the checkpoint key.
Records are sealed in that order because ids are handed out before commit: a record with a
lower id may commit later, but never with a lower ``tx`` than a sealed one.

Leaf of a record: ``SHA-256(0x00 ‖ u64be(id) ‖ field ‖ field ‖ …)`` over ``tx``, ``at``
(UTC, ISO 8601, microseconds), actor, actor_role, action, resource_type, resource_id,
encounter_id, route, client, outcome and status, each field ``u32be(len) ‖ UTF-8`` or
``0xFFFFFFFF`` when NULL. The signed text::

    <origin>/access-log
    <tree size>
    <root, base64>
    cursor <tx>:<id>
    time <UTC ISO 8601>
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import psycopg

from ledger.audit.checkpoints import SignedTreeHead, export_path, format_time

FILE_PREFIX = "access-seal-"
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_NULL = b"\xff\xff\xff\xff"

ACCESS_COLUMNS = ("id, tx::text, at, actor, actor_role, action, resource_type, resource_id, "
                  "encounter_id, route, client, outcome, status")
SELECT_SEALS = (
    "SELECT tree_size, cursor_tx::text, cursor_id, root_hash, created_at, origin, body, "
    "signature, public_key, previous_size, consistency_proof, frontier FROM ledger_access_seals")


def access_leaf(row: tuple[Any, ...]) -> bytes:
    """The leaf hash of one access record (a row of ACCESS_COLUMNS)."""
    parts = [b"\x00", _U64.pack(row[0])]
    for value in row[1:]:
        if value is None:
            parts.append(_NULL)
            continue
        if isinstance(value, datetime):
            value = format_time(value)
        data = str(value).encode("utf-8")
        parts.append(_U32.pack(len(data)))
        parts.append(data)
    return hashlib.sha256(b"".join(parts)).digest()


@dataclass(frozen=True, kw_only=True)
class AccessSeal(SignedTreeHead):
    cursor_tx: int
    cursor_id: int

    POSITION: ClassVar[tuple[str, ...]] = ("cursor_tx", "cursor_id")
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "tree_size", "cursor_tx", "cursor_id", "root_hash", "time", "origin", "body",
        "signature", "public_key", "previous_size", "consistency_proof", "frontier")
    SELECT: ClassVar[str] = SELECT_SEALS

    @property
    def last_position(self) -> int:  # for messages shared with checkpoints: the last record id
        return self.cursor_id

    def signed_text(self) -> str:
        return (f"{self.origin}/access-log\n{self.tree_size}\n"
                f"{base64.b64encode(self.root_hash).decode()}\n"
                f"cursor {self.cursor_tx}:{self.cursor_id}\ntime {format_time(self.time)}\n")


def load_seals(conn: psycopg.Connection[Any]) -> list[AccessSeal]:
    return AccessSeal.load_all(conn)


def latest_seal(conn: psycopg.Connection[Any]) -> AccessSeal | None:
    return AccessSeal.latest(conn)


def seal_path(directory: Path, tree_size: int) -> Path:
    return export_path(directory, tree_size, FILE_PREFIX)


def load_exported_seals(directory: Path) -> list[AccessSeal]:
    return AccessSeal.load_files(directory, FILE_PREFIX)
