"""Signed checkpoints over the event log: an RFC 6962 Merkle tree in log order.

A background job (``CheckpointWriter``, projection-style: its position is the last checkpoint's
``last_position``) reads events after that position in notification-id order, appends one leaf
per event and writes, in ONE transaction:

* a row per event in ``ledger_audit_leaves`` (position, encounter, version, chain hash);
* a row in ``ledger_checkpoints``: tree size, root, time, the Ed25519 signature over the signed
  text below, the RFC 6962 consistency proof from the previous checkpoint, and the frontier.

Then it exports the checkpoint as a JSON file to the checkpoint directory (outside the
database). Leaf i of the tree is the i-th event in log order::

    leaf = SHA-256(0x00 ‖ u64be(notification_id) ‖ chain_hash)

The signed text (UTF-8, ``\\n`` line ends; the first three lines follow the C2SP
tlog-checkpoint layout)::

    <origin>
    <tree size, decimal>
    <root hash, base64>
    position <notification id of the last leaf>
    time <UTC, ISO 8601, microseconds, "Z">

Reading in notification-id order skips nothing: the library's EXCLUSIVE table lock makes
writers commit in notification-id order.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Self

import psycopg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger.audit.merkle import (
    HASH_SIZE,
    verify_consistency,
)

log = logging.getLogger(__name__)

LOCK_KEY = 7_243_019_030  # advisory lock: one checkpoint writer at a time
FILE_PREFIX = "checkpoint-"


# ---------------------------------------------------------------------------------- keys
def generate_key(path: Path, *, overwrite: bool = False) -> Ed25519PrivateKey:
    """Create an Ed25519 key: ``path`` (PKCS#8 PEM, mode 0600) and ``path.pub`` (public). When
    replacing a key, its public half is kept as ``path.pub.<key id>``: checkpoints it signed
    stay verifiable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    old_pub = public_path(path)
    if overwrite and old_pub.exists():
        previous = load_public_key(old_pub)
        old_pub.rename(Path(f"{old_pub}.{key_id(raw_public(previous))}"))
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # Written whole under a temporary name, then put in place in one step: several processes
    # starting at once never read a half-written key, and only one new key wins (os.link
    # refuses an existing name; the others get FileExistsError and load the winner's key).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    pub_tmp = tmp.with_suffix(".pub.tmp")
    pub_tmp.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    os.replace(pub_tmp, public_path(path))
    return key


def public_path(path: Path) -> Path:
    return Path(str(path) + ".pub")


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key from a public PEM, or derived from a private PEM."""
    data = Path(path).read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def signing_key(path: Path, *, create: bool = True) -> Ed25519PrivateKey:
    """The checkpoint key at ``path``; generated on first use when ``create``."""
    path = Path(path)
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"no checkpoint key at {path}: run `ledger checkpoints keygen`")
        try:
            key = generate_key(path)
        except FileExistsError:  # another process made it first: use theirs
            return load_private_key(path)
        log.warning("generated a new checkpoint signing key %s (key id %s); keep it and its "
                    ".pub outside the database", path, key_id(raw_public(key.public_key())))
        return key
    return load_private_key(path)


def load_public_keys(path: Path) -> list[Ed25519PublicKey]:
    """Every public key in a PEM file (several may be concatenated: a key ring)."""
    data = Path(path).read_bytes()
    if b"PRIVATE KEY" in data:
        return [load_private_key(path).public_key()]
    marker = b"-----BEGIN PUBLIC KEY-----"
    keys = []
    for block in data.split(marker)[1:]:
        key = serialization.load_pem_public_key(marker + block)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{path}: not an Ed25519 public key")
        keys.append(key)
    return keys


def trusted_public_key() -> list[Ed25519PublicKey] | None:
    """The public keys verification trusts: those in LEDGER_CHECKPOINT_PUBLIC_KEY_FILE (a PEM
    file; concatenate several after a rotation), else the public half of
    LEDGER_CHECKPOINT_KEY_FILE plus the keys it replaced (``<key>.pub``, ``<key>.pub.<id>``,
    written by ``ledger checkpoints keygen --force``), else none."""
    from ledger.config import get_settings

    s = get_settings()
    if s.checkpoint_public_key_file is not None and Path(s.checkpoint_public_key_file).exists():
        return load_public_keys(Path(s.checkpoint_public_key_file))
    pub = public_path(s.key_file)
    paths = sorted(pub.parent.glob(pub.name + ".*")) if pub.parent.is_dir() else []
    if pub.exists():
        paths.insert(0, pub)
    elif s.key_file.exists():
        paths.insert(0, s.key_file)
    keys = [k for p in paths for k in load_public_keys(p)]
    return keys or None


# ------------------------------------------------------------------------ signed tree heads
@dataclass(frozen=True, kw_only=True)
class SignedTreeHead:
    """What a checkpoint (over the event log) and an access seal (over the access log) share:
    a Merkle tree head signed with Ed25519 over ``signed_text()``, extending the previous one
    by an RFC 6962 consistency proof; its JSON file and its database row. A subclass adds
    where its tree ends in its log (its own fields, ``POSITION``), the signed text and the
    order of its row's columns (``COLUMNS``, ``SELECT``)."""

    origin: str
    tree_size: int
    root_hash: bytes
    time: datetime
    signature: bytes
    public_key: bytes
    previous_size: int | None = None
    consistency_proof: tuple[bytes, ...] = ()
    frontier: bytes = field(default=b"", repr=False)
    body: str = ""

    POSITION: ClassVar[tuple[str, ...]] = ()  # its own integer fields, in its JSON file
    COLUMNS: ClassVar[tuple[str, ...]] = ()  # its row as SELECT reads it (field names)
    SELECT: ClassVar[str] = ""

    def signed_text(self) -> str:
        raise NotImplementedError

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def signature_valid(self, public_key: Ed25519PublicKey | None = None) -> bool:
        """Signature over the text rebuilt from the fields (so a changed field fails)."""
        key = public_key or Ed25519PublicKey.from_public_bytes(self.public_key)
        try:
            key.verify(self.signature, self.signed_text().encode("utf-8"))
        except InvalidSignature:
            return False
        return not self.body or self.body == self.signed_text()

    def extends(self, previous: SignedTreeHead) -> bool:
        """RFC 6962 consistency of this tree with an earlier one's."""
        if self.previous_size != previous.tree_size:
            return False
        return verify_consistency(previous.tree_size, self.tree_size, previous.root_hash,
                                  self.root_hash, self.consistency_proof)

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            **{name: getattr(self, name) for name in self.POSITION},
            "time": format_time(self.time),
            "body": self.signed_text(),
            "signature": base64.b64encode(self.signature).decode(),
            "key_id": self.key_id,
            "public_key": base64.b64encode(self.public_key).decode(),
            "previous_size": self.previous_size,
            "consistency_proof": [h.hex() for h in self.consistency_proof],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(
            origin=data["origin"], tree_size=int(data["tree_size"]),
            root_hash=bytes.fromhex(data["root_hash"]),
            **{name: int(data[name]) for name in cls.POSITION},
            time=parse_time(data["time"]),
            signature=base64.b64decode(data["signature"]),
            public_key=base64.b64decode(data["public_key"]),
            previous_size=data.get("previous_size"),
            consistency_proof=tuple(bytes.fromhex(h) for h in data.get("consistency_proof", [])),
            body=data.get("body", ""),
        )

    @classmethod
    def from_row(cls, row: Any) -> Self:
        values = dict(zip(cls.COLUMNS, row, strict=True))
        proof = bytes(values["consistency_proof"])
        values.update({name: int(values[name]) for name in cls.POSITION},
                      root_hash=bytes(values["root_hash"]), time=values["time"].astimezone(UTC),
                      signature=bytes(values["signature"]),
                      public_key=bytes(values["public_key"]),
                      consistency_proof=tuple(proof[i:i + HASH_SIZE]
                                              for i in range(0, len(proof), HASH_SIZE)),
                      frontier=bytes(values["frontier"]))
        return cls(**values)

    @classmethod
    def load_all(cls, conn: psycopg.Connection[Any]) -> list[Self]:
        rows = conn.execute(cls.SELECT + " ORDER BY tree_size").fetchall()
        return [cls.from_row(r) for r in rows]

    @classmethod
    def latest(cls, conn: psycopg.Connection[Any]) -> Self | None:
        row = conn.execute(cls.SELECT + " ORDER BY tree_size DESC LIMIT 1").fetchone()
        return cls.from_row(row) if row else None

    @classmethod
    def load_files(cls, directory: Path, prefix: str, *,
                   latest_only: bool = False) -> list[Self]:
        """The exported files, oldest first (file names sort by tree size)."""
        directory = Path(directory)
        if not directory.is_dir():
            return []
        paths = sorted(directory.glob(f"{prefix}*.json"))
        if latest_only:
            paths = paths[-1:]
        return [cls.from_json(json.loads(path.read_text())) for path in paths]


# ---------------------------------------------------------------------------- checkpoints
@dataclass(frozen=True, kw_only=True)
class Checkpoint(SignedTreeHead):
    last_position: int

    POSITION: ClassVar[tuple[str, ...]] = ("last_position",)
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "tree_size", "last_position", "root_hash", "time", "origin", "body", "signature",
        "public_key", "previous_size", "consistency_proof", "frontier")
    SELECT: ClassVar[str] = (
        "SELECT tree_size, last_position, root_hash, created_at, origin, body, signature, "
        "public_key, previous_size, consistency_proof, frontier FROM ledger_checkpoints")

    def signed_text(self) -> str:
        return signed_text(self.origin, self.tree_size, self.root_hash, self.last_position,
                           self.time)


SELECT_CHECKPOINTS = Checkpoint.SELECT


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def signed_text(origin: str, tree_size: int, root_hash: bytes, last_position: int,
                moment: datetime) -> str:
    return (f"{origin}\n{tree_size}\n{base64.b64encode(root_hash).decode()}\n"
            f"position {last_position}\ntime {format_time(moment)}\n")


def load_checkpoints(conn: psycopg.Connection[Any]) -> list[Checkpoint]:
    return Checkpoint.load_all(conn)


def latest_checkpoint(conn: psycopg.Connection[Any]) -> Checkpoint | None:
    return Checkpoint.latest(conn)


def export_path(directory: Path, tree_size: int, prefix: str = FILE_PREFIX) -> Path:
    return Path(directory) / f"{prefix}{tree_size:015d}.json"


def export(checkpoint: Any, directory: Path, prefix: str = FILE_PREFIX) -> Path:
    """Write the checkpoint (or access seal) file atomically (temp file, fsync, rename,
    fsync directory)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = export_path(directory, checkpoint.tree_size, prefix)
    data = json.dumps(checkpoint.to_json(), indent=2, sort_keys=True).encode() + b"\n"
    if path.exists() and path.read_bytes() == data:
        return path
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def load_exported(directory: Path, *, latest_only: bool = False) -> list[Checkpoint]:
    """The exported checkpoints, oldest first (file names sort by tree size)."""
    return Checkpoint.load_files(directory, FILE_PREFIX, latest_only=latest_only)
