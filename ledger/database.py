"""Where the database is, as a psycopg URL and as the event-sourcing library's settings."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, unquote, urlparse, urlunparse

from ledger import embedded
from ledger.config import Settings


def database_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's (started on demand)."""
    if settings.database_url:
        return settings.database_url
    return embedded.start(settings.data_dir)


def app_url(url: str, settings: Settings) -> str:
    """``url`` with LEDGER_APP_ROLE (and its password) as the user, when one is set: the
    service's own connections then have the app role's rights only (e.g. no writes to users
    and tokens but through the functions of migration 0091)."""
    if not settings.app_role:
        return url
    parts = urlparse(url)
    password = f":{quote(settings.app_password, safe='')}" if settings.app_password else ""
    host = parts.hostname or ""
    if host and ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(settings.app_role, safe='')}{password}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunparse(parts._replace(netloc=netloc))


def eventsourcing_env(url: str, settings: Settings) -> dict[str, str]:
    """Settings for ``eventsourcing.postgres`` from a postgresql:// URL.

    Tables are created by migrations (``ledger migrate``), never at start-up: CREATE_TABLE=n.
    """
    parts = urlparse(url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": "ledger.recorder:LedgerRecorder",
        "POSTGRES_DBNAME": (parts.path or "/postgres").lstrip("/") or "postgres",
        "POSTGRES_HOST": unquote(host),
        "POSTGRES_PORT": str(parts.port or query.get("port", ["5432"])[0]),
        # LEDGER_APP_ROLE: events are written as the append-only app role (migration 0030);
        # the URL's user (the owner) runs migrations.
        "POSTGRES_USER": settings.app_role or unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": (settings.app_password or "") if settings.app_role
        else unquote(parts.password or ""),
        "POSTGRES_POOL_SIZE": str(settings.pool_size),
        "POSTGRES_MAX_OVERFLOW": str(settings.max_overflow),
        "POSTGRES_LOCK_TIMEOUT": str(settings.lock_timeout),
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
        "CREATE_TABLE": "n",
        "AGGREGATE_CACHE_MAXSIZE": str(settings.cache_size) if settings.cache_size else "",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }
    if settings.cipher_key:
        env["CIPHER_TOPIC"] = "ledger.crypto:RotatingAESCipher"
        env["CIPHER_KEY"] = settings.cipher_key
        env["CIPHER_OLD_KEYS"] = settings.cipher_old_keys
    return env
