"""Settings of the tamper-evidence and audit features (``LEDGER_*`` environment variables)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    data_dir: Path = Field(Path(".ledger"), description="Same as the service's data_dir.")
    checkpoint_key_file: Path | None = Field(
        None, description="Ed25519 private key (PEM) that signs checkpoints. Default: "
        "<data_dir>/keys/checkpoint-ed25519.pem; created by `ledger checkpoints keygen` (or "
        "on first use). Keep it outside the database and its backups.")
    checkpoint_public_key_file: Path | None = Field(
        None, description="The public key `ledger verify` trusts (PEM). Default: derived from "
        "the private key file when readable.")
    checkpoint_dir: Path | None = Field(
        None, description="Where checkpoints are exported as JSON files (outside the database; "
        "e.g. another disk or a write-once mount), in a directory per log named by the "
        "log id kept in the database (ledger_log_identity). Default: <data_dir>/checkpoints.")
    checkpoint_interval: float = Field(10.0, description="Seconds between checkpoint runs.")
    checkpoints_in_process: bool = Field(
        True, description="`ledger serve` runs the checkpoint job in a thread of its own "
        "process (off: run `ledger checkpoints run` separately).")
    checkpoint_origin: str = Field("claims-ledger", description="First line of every signed "
                                   "checkpoint: names this log.")
    checkpoint_max_leaves: int = Field(100_000, description="Most events one checkpoint adds.")
    seal_per_batch: bool = Field(
        True, description="Sign a checkpoint over every committed batch: in its transaction, "
        "or for a lone command within LEDGER_SEAL_MAX_DELAY (no unsealed tail; `ledger verify` "
        "then reports any event after the latest checkpoint older than that as inserted).")
    seal_max_delay: float = Field(
        1.0, description="Seconds within which a lone command's batch (one encounter) is "
        "sealed by the writer's background sealer instead of in its transaction (batches of "
        "several encounters are always sealed in theirs). `ledger verify` reports an unsealed "
        "event younger than this as pending, an older one as inserted. 0: seal every batch "
        "in its transaction.")
    seal_export_interval: float = Field(
        1.0, description="Seconds within which the newest checkpoint is copied to the "
        "export directory (and the witness).")
    seal_max_backlog: int = Field(
        10_000, description="A batch seals the unsealed events before it only up to this many "
        "(more: run `ledger checkpoints run --once`).")
    checkpoint_witness_url: str = Field(
        "", description="Optional HTTP(S) URL that receives each exported checkpoint as a JSON "
        "POST (a second place outside the database).")

    @property
    def key_file(self) -> Path:
        return self.checkpoint_key_file or self.data_dir / "keys" / "checkpoint-ed25519.pem"

    @property
    def export_dir(self) -> Path:
        return self.checkpoint_dir or self.data_dir / "checkpoints"


@lru_cache
def get_audit_settings() -> AuditSettings:
    return AuditSettings()
