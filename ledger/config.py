"""One settings object for the whole service; every knob is a ``LEDGER_*`` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    database_url: str | None = Field(
        None, description="PostgreSQL 15+ URL. Unset: start the embedded server in data_dir.")
    data_dir: Path = Field(Path(".ledger"), description="Where the embedded server keeps data.")
    host: str = "127.0.0.1"
    port: int = 8000
    pool_size: int = Field(5, description="Connections per pool kept open.")
    max_overflow: int = Field(10, description="Extra connections a pool may open under load.")
    lock_timeout: int = Field(5, description="Seconds a writer waits for the event-table lock.")
    connect_timeout: float = Field(5.0, description="Seconds to wait for a new database "
                                   "connection (libpq connect_timeout, at least 2).")
    pool_timeout: float = Field(5.0, description="Seconds a request waits for a pooled "
                                "connection before it is answered 503 (an outage is answered "
                                "503 at once, see /health).")
    statement_timeout: float = Field(30.0, description="Seconds any one SQL statement may run "
                                     "(0: no limit).")
    ready_max_lag: int = Field(10_000, description="/ready answers 503 while a projection is "
                               "more than this many events behind the log.")
    idempotency_lease_seconds: float = Field(15.0, description="How long a request owns its "
                                             "Idempotency-Key; a retry after that may take "
                                             "it over (the first can then no longer commit).")
    snapshot_interval: int = Field(50, description="Take an encounter snapshot every N events.")
    cache_size: int = Field(1000, description="Encounters cached per process (0 = off).")
    appeal_window_days: int = Field(120, description="Days from a denial to its appeal deadline.")
    embedded: bool = Field(False, description="Set by `ledger serve` when it started the "
                           "embedded server (informational).")
    demo: bool = Field(False, description="Load sample encounters at start (make run --demo).")
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = Field(
        "json", description="Logs on stderr: one JSON object per line (with the request id), "
        "or `text` for a terminal. Never PHI (see README, Operating).")
    projections_in_process: bool = Field(
        True, description="Run the projection runner inside the API process (single process).")
    group_commit: bool = Field(True, description="Save concurrent commands on different "
                               "encounters in one transaction (see ledger/application/writer.py).")
    group_commit_window_ms: float = Field(0.0, description="When others are already queued, "
                                          "wait up to this long for more (0: never wait).")
    group_commit_max_batch: int = Field(256, description="Most commands in one transaction.")
    group_commit_writers: int = Field(1, description="Writer threads (each owns a share of the "
                                      "encounters; one prepares while another commits).")
    token_cache_seconds: float = Field(30.0, description="How long a process trusts a token it "
                                       "verified (revocations take effect within this).")
    auth_failure_limit: int = Field(20, description="Failed authentications per client "
                                    "address, and per token id, per minute before 429.")
    trusted_proxies: str = Field("", description="Comma-separated addresses or networks of "
                                 "reverse proxies whose Forwarded / X-Forwarded-For headers "
                                 "name the client (empty: those headers are ignored).")
    cipher_key: str | None = Field(None, description="base64 of 32 bytes: encrypt event state "
                                   "at rest (AES-GCM). Create one with `ledger keys new`.")
    cipher_old_keys: str = Field("", description="Comma-separated previous cipher keys, for "
                                 "reading events written before a rotation.")
    idempotency_retention_hours: int = Field(24, description="How long Idempotency-Keys are "
                                             "remembered.")
    wait_timeout: float = Field(5.0, description="Max seconds a read waits for ?min_position.")
    read_database_url: str = Field("", description="Read replicas (PostgreSQL streaming "
                                   "standbys), comma-separated URLs: the read-model, replay "
                                   "and report routes read from them, round robin (empty: the "
                                   "primary).")
    read_replica_wait: float = Field(1.0, description="Seconds a read with ?min_position "
                                     "waits for a replica to have replayed that position "
                                     "before it is answered from the primary instead.")
    tenants: dict[str, str | dict[str, Any]] = Field(
        default_factory=dict, description="Several organizations, a database each (JSON: "
        "tenant id -> database URL, or -> its own settings with database_url); see "
        "api/tenants.py. Empty: one organization, LEDGER_DATABASE_URL.")
    app_role: str | None = Field(None, description="Role the event store connects as (e.g. "
                                 "ledger_app: no UPDATE/DELETE on events); unset: the URL's user.")
    app_password: str | None = Field(None, description="Password of app_role, if it needs one.")
    # code sets and scrubber edit tables (ledger/codes; formats in README "Code sets")
    ncci_ptp_file: str = Field("", description="CMS NCCI PTP .txt file(s), os.pathsep-separated.")
    mue_file: str = Field("", description="CMS MUE .csv file(s), os.pathsep-separated.")
    hcpcs_file: str = Field("", description="CMS quarterly HCPCS fixed-width .txt file.")
    cpt_descriptor_file: str = Field("", description="Licensed CPT descriptors (CSV).")
    icd10cm_order_files: str = Field("", description="Extra ICD-10-CM editions: CMS order files, "
                                     "'path' or 'FY2027=path', os.pathsep-separated.")
    codes_cache_dir: str | None = Field(
        None, description="Where the built ICD-10-CM table is cached. Unset: "
        "<data_dir>/codes-cache; empty: no cache.")
    # X12 imports
    patient_ref_key: str = Field(
        "ledger-x12-patient-ref", description="HMAC key for the surrogate patient references "
        "837 imports make; set your own secret per installation.")
    # operators
    migrations_dir: str = Field("", description="A folder of NNNN_*.sql files instead of the "
                                "ones the package ships.")
    pg_bin: str = Field("", description="The folder of pg_dump/pg_restore for `ledger db "
                        "backup/restore` (searched first).")
    # tamper evidence and audit (checkpoints, sealing)
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
        True, description="Sign a checkpoint over every committed batch within "
        "LEDGER_SEAL_MAX_DELAY after its commit, or in its transaction (no unsealed tail; "
        "`ledger verify` then reports any event after the latest checkpoint older than that "
        "as inserted).")
    seal_max_delay: float = Field(
        1.0, description="Seconds within which every committed batch (a lone command's or "
        "a group commit's of several encounters) is sealed by the writer's background sealer "
        "after its commit instead of in its transaction. `ledger verify` reports an unsealed "
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
def get_settings() -> Settings:
    return Settings()
