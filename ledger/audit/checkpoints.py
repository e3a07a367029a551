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
import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ledger.audit.merkle import (
    HASH_SIZE,
    Frontier,
    FrontierAndTail,
    consistency_proof,
    event_leaf,
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
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_path(path).write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
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
        key = generate_key(path)
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
    from ledger.audit.settings import get_audit_settings

    s = get_audit_settings()
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


# ---------------------------------------------------------------------------- checkpoints
@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    last_position: int
    time: datetime
    signature: bytes
    public_key: bytes
    previous_size: int | None = None
    consistency_proof: tuple[bytes, ...] = ()
    frontier: bytes = field(default=b"", repr=False)
    body: str = ""

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def signed_text(self) -> str:
        return signed_text(self.origin, self.tree_size, self.root_hash, self.last_position,
                           self.time)

    def signature_valid(self, public_key: Ed25519PublicKey | None = None) -> bool:
        """Signature over the text rebuilt from the fields (so a changed field fails)."""
        key = public_key or Ed25519PublicKey.from_public_bytes(self.public_key)
        try:
            key.verify(self.signature, self.signed_text().encode("utf-8"))
        except InvalidSignature:
            return False
        return not self.body or self.body == self.signed_text()

    def extends(self, previous: Checkpoint) -> bool:
        """RFC 6962 consistency of this checkpoint's tree with an earlier one's."""
        if self.previous_size != previous.tree_size:
            return False
        return verify_consistency(previous.tree_size, self.tree_size, previous.root_hash,
                                  self.root_hash, self.consistency_proof)

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "last_position": self.last_position,
            "time": format_time(self.time),
            "body": self.signed_text(),
            "signature": base64.b64encode(self.signature).decode(),
            "key_id": self.key_id,
            "public_key": base64.b64encode(self.public_key).decode(),
            "previous_size": self.previous_size,
            "consistency_proof": [h.hex() for h in self.consistency_proof],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            origin=data["origin"], tree_size=int(data["tree_size"]),
            root_hash=bytes.fromhex(data["root_hash"]),
            last_position=int(data["last_position"]), time=parse_time(data["time"]),
            signature=base64.b64decode(data["signature"]),
            public_key=base64.b64decode(data["public_key"]),
            previous_size=data.get("previous_size"),
            consistency_proof=tuple(bytes.fromhex(h) for h in data.get("consistency_proof", [])),
            body=data.get("body", ""),
        )

    @classmethod
    def from_row(cls, row: Any) -> Checkpoint:
        (tree_size, last_position, root_hash, created_at, origin, body, signature, public_key,
         previous_size, proof, frontier) = row
        proof = bytes(proof)
        return cls(origin=origin, tree_size=tree_size, root_hash=bytes(root_hash),
                   last_position=last_position, time=created_at.astimezone(UTC),
                   signature=bytes(signature), public_key=bytes(public_key),
                   previous_size=previous_size,
                   consistency_proof=tuple(proof[i:i + HASH_SIZE]
                                           for i in range(0, len(proof), HASH_SIZE)),
                   frontier=bytes(frontier), body=body)


SELECT_CHECKPOINTS = (
    "SELECT tree_size, last_position, root_hash, created_at, origin, body, signature, "
    "public_key, previous_size, consistency_proof, frontier FROM ledger_checkpoints")


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def signed_text(origin: str, tree_size: int, root_hash: bytes, last_position: int,
                moment: datetime) -> str:
    return (f"{origin}\n{tree_size}\n{base64.b64encode(root_hash).decode()}\n"
            f"position {last_position}\ntime {format_time(moment)}\n")


def load_checkpoints(conn: psycopg.Connection[Any]) -> list[Checkpoint]:
    rows = conn.execute(SELECT_CHECKPOINTS + " ORDER BY tree_size").fetchall()
    return [Checkpoint.from_row(r) for r in rows]


def latest_checkpoint(conn: psycopg.Connection[Any]) -> Checkpoint | None:
    row = conn.execute(SELECT_CHECKPOINTS + " ORDER BY tree_size DESC LIMIT 1").fetchone()
    return Checkpoint.from_row(row) if row else None


def export_path(directory: Path, tree_size: int) -> Path:
    return Path(directory) / f"{FILE_PREFIX}{tree_size:015d}.json"


def export(checkpoint: Any, directory: Path, prefix: str = FILE_PREFIX) -> Path:
    """Write the checkpoint (or access seal) file atomically (temp file, fsync, rename,
    fsync directory)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{prefix}{checkpoint.tree_size:015d}.json"
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
    directory = Path(directory)
    if not directory.is_dir():
        return []
    paths = sorted(directory.glob(f"{FILE_PREFIX}*.json"))
    if latest_only:
        paths = paths[-1:]
    return [Checkpoint.from_json(json.loads(path.read_text())) for path in paths]


# ------------------------------------------------------------------------------- the job
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
        while not stop.is_set():
            try:
                self.catch_up()
            except psycopg.Error as exc:
                log.warning("checkpoint run failed (%s); retrying", type(exc).__name__)
            stop.wait(interval)
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
    from ledger.audit.settings import get_audit_settings

    s = get_audit_settings()
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
