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
import json
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from ledger.audit.checkpoints import SignedTreeHead, format_time, parse_time
from ledger.audit.merkle import HASH_SIZE

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


@dataclass(frozen=True)
class AccessSeal(SignedTreeHead):
    origin: str
    tree_size: int
    root_hash: bytes
    cursor_tx: int
    cursor_id: int
    time: datetime
    signature: bytes
    public_key: bytes
    previous_size: int | None = None
    consistency_proof: tuple[bytes, ...] = ()
    frontier: bytes = field(default=b"", repr=False)
    body: str = ""

    @property
    def last_position(self) -> int:  # for messages shared with checkpoints: the last record id
        return self.cursor_id

    def signed_text(self) -> str:
        return (f"{self.origin}/access-log\n{self.tree_size}\n"
                f"{base64.b64encode(self.root_hash).decode()}\n"
                f"cursor {self.cursor_tx}:{self.cursor_id}\ntime {format_time(self.time)}\n")

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin, "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(), "cursor_tx": self.cursor_tx,
            "cursor_id": self.cursor_id, "time": format_time(self.time),
            "body": self.signed_text(), "signature": base64.b64encode(self.signature).decode(),
            "key_id": self.key_id, "public_key": base64.b64encode(self.public_key).decode(),
            "previous_size": self.previous_size,
            "consistency_proof": [h.hex() for h in self.consistency_proof],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccessSeal:
        return cls(
            origin=data["origin"], tree_size=int(data["tree_size"]),
            root_hash=bytes.fromhex(data["root_hash"]), cursor_tx=int(data["cursor_tx"]),
            cursor_id=int(data["cursor_id"]), time=parse_time(data["time"]),
            signature=base64.b64decode(data["signature"]),
            public_key=base64.b64decode(data["public_key"]),
            previous_size=data.get("previous_size"),
            consistency_proof=tuple(bytes.fromhex(h) for h in data.get("consistency_proof", [])),
            body=data.get("body", ""))

    @classmethod
    def from_row(cls, row: Any) -> AccessSeal:
        (size, ctx, cid, root, created, origin, body, signature, public, previous, proof,
         frontier) = row
        proof = bytes(proof)
        return cls(origin=origin, tree_size=size, root_hash=bytes(root), cursor_tx=int(ctx),
                   cursor_id=cid, time=created.astimezone(UTC), signature=bytes(signature),
                   public_key=bytes(public), previous_size=previous,
                   consistency_proof=tuple(proof[i:i + HASH_SIZE]
                                           for i in range(0, len(proof), HASH_SIZE)),
                   frontier=bytes(frontier), body=body)


def load_seals(conn: psycopg.Connection[Any]) -> list[AccessSeal]:
    return [AccessSeal.from_row(r)
            for r in conn.execute(SELECT_SEALS + " ORDER BY tree_size").fetchall()]


def latest_seal(conn: psycopg.Connection[Any]) -> AccessSeal | None:
    row = conn.execute(SELECT_SEALS + " ORDER BY tree_size DESC LIMIT 1").fetchone()
    return AccessSeal.from_row(row) if row else None


def seal_path(directory: Path, tree_size: int) -> Path:
    return Path(directory) / f"{FILE_PREFIX}{tree_size:015d}.json"


def load_exported_seals(directory: Path) -> list[AccessSeal]:
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return [AccessSeal.from_json(json.loads(p.read_text()))
            for p in sorted(directory.glob(f"{FILE_PREFIX}*.json"))]
