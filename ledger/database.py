"""Where the database is, as a psycopg URL and as the event-sourcing library's settings; how
long a client waits for it (connect, pool, statement and lock timeouts, from configuration);
and the errors that say it is not there."""

from __future__ import annotations

import logging
import select
import time
from urllib.parse import quote, urlparse, urlunparse

from psycopg.conninfo import conninfo_to_dict

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
    hosts = parts.netloc.rpartition("@")[2]  # as written: a:5432,b:5432 and [::1] kept
    netloc = f"{quote(settings.app_role, safe='')}{password}@{hosts}"
    return urlunparse(parts._replace(netloc=netloc))


def eventsourcing_env(url: str, settings: Settings) -> dict[str, str]:
    """Settings for ``eventsourcing.postgres`` from a postgresql:// URL.

    Tables are created by migrations (``ledger migrate``), never at start-up: CREATE_TABLE=n.
    """
    # psycopg's own parser: a multi-host URL (postgresql://u@a:5432,b:5432/db or
    # ?host=a,b&port=5432,5433) becomes libpq's host and port lists, which the library passes on
    info = conninfo_to_dict(url)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": "ledger.recorder:LedgerRecorder",
        "POSTGRES_DBNAME": str(info.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(info.get("host") or "localhost"),
        "POSTGRES_PORT": str(info.get("port") or "5432"),
        # LEDGER_APP_ROLE: events are written as the append-only app role (migration 0030);
        # the URL's user (the owner) runs migrations.
        "POSTGRES_USER": settings.app_role or str(info.get("user") or "postgres"),
        "POSTGRES_PASSWORD": (settings.app_password or "") if settings.app_role
        else str(info.get("password") or ""),
        "POSTGRES_POOL_SIZE": str(settings.pool_size),
        "POSTGRES_MAX_OVERFLOW": str(settings.max_overflow),
        "POSTGRES_LOCK_TIMEOUT": str(settings.lock_timeout),
        # how long a caller waits for a pooled connection (an integer for the library): an
        # outage answers 503 in about this long instead of the library's 30 s
        "POSTGRES_CONNECT_TIMEOUT": str(max(1, round(settings.pool_timeout))),
        # a connection that died with the server is discarded, not handed to a command
        "POSTGRES_PRE_PING": "y",
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


def configure_client(settings: Settings) -> None:
    """Process-wide: connection pools retry a lost server every ~0.2 s (not with
    psycopg_pool's doubling back-off, which delayed recovery by up to 10 s after an outage);
    their per-attempt warnings are left to the availability monitor, which logs one line per
    change of state."""
    from psycopg_pool.base import AttemptWithBackoff

    AttemptWithBackoff.INITIAL_DELAY = 0.2
    AttemptWithBackoff.DELAY_BACKOFF = 1.0
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


# libpq keywords of LEDGER_DATABASE_URL that the event-sourcing library's settings cannot carry
# (it passes dbname, host, port, user and password only); given to its pools' connections
URL_KEYWORDS = ("target_session_attrs", "load_balance_hosts", "sslmode", "sslrootcert",
                "sslcert", "sslkey", "application_name")


def url_options(url: str | None) -> dict[str, str]:
    """The URL_KEYWORDS set in ``url`` (e.g. target_session_attrs=read-write of a
    multi-host URL: after a failover the pools connect to whichever host is the primary)."""
    if not url:
        return {}
    info = conninfo_to_dict(url)
    return {k: str(info[k]) for k in URL_KEYWORDS if info.get(k)}


def connection_options(settings: Settings) -> dict[str, str]:
    """libpq keywords for the service's own connections, from configuration: how long to
    wait for a connection, and the statement timeout sent with every new one."""
    options = {"connect_timeout": str(max(2, round(settings.connect_timeout)))}
    if settings.statement_timeout:
        options["options"] = f"-c statement_timeout={int(settings.statement_timeout * 1000)}"
    return options


def apply_connection_options(pool: object, settings: Settings) -> None:
    """Use ``connection_options`` (and the URL's ``url_options``) for every connection
    ``pool`` opens from now on (a psycopg_pool pool, such as an event-sourcing datastore's);
    and, when the pool checks connections before handing them out (POSTGRES_PRE_PING), check
    them the cheap way (``check_when_suspect``)."""
    kwargs = getattr(pool, "kwargs", None)
    if isinstance(kwargs, dict):
        kwargs.update(url_options(settings.database_url))
        kwargs.update(connection_options(settings))
    check_cheaply(pool)


def check_cheaply(pool: object) -> None:
    """When ``pool`` (a psycopg_pool pool, such as an event-sourcing datastore's with
    POSTGRES_PRE_PING) pings every connection it hands out, make it ping only the suspect
    ones (``check_when_suspect``). Idempotent; a pool without a check is left alone."""
    if getattr(pool, "_check", None) in (None, check_when_suspect) \
            or not hasattr(pool, "_reset"):
        return
    previous_reset = pool._reset  # type: ignore[attr-defined]

    def reset(conn: object) -> None:
        if previous_reset is not None:
            previous_reset(conn)
        mark_idle(conn)

    pool._check = check_when_suspect  # type: ignore[attr-defined]
    pool._reset = reset  # type: ignore[attr-defined]


# A pooled connection idle for longer than this is pinged (one round trip) before use.
CHECK_IDLE_AFTER = 1.0


def mark_idle(conn: object) -> None:
    """A psycopg_pool ``reset`` callback: note when ``conn`` went back to its pool."""
    conn._ledger_idle_since = time.monotonic()  # type: ignore[attr-defined]


def check_when_suspect(conn: object) -> None:
    """A psycopg_pool ``check`` callback (with ``mark_idle`` as its ``reset``) that pings a
    connection only when it may be dead: it has never been back in the pool, it has been idle
    for more than CHECK_IDLE_AFTER seconds, or the server has sent it something unasked (a
    server that stops or is killed closes its sockets, after a FATAL message: the socket is
    readable). A busy pool's connections are then handed out without a round trip (the
    per-checkout ping was about half of the writer's wall time under load); a dead one is
    still discarded and replaced, as with the plain ping. Raises as the ping does."""
    from psycopg_pool import ConnectionPool

    idle_since = getattr(conn, "_ledger_idle_since", None)
    if idle_since is None or time.monotonic() - idle_since > CHECK_IDLE_AFTER \
            or _readable(conn):
        ConnectionPool.check_connection(conn)  # type: ignore[arg-type]


def _readable(conn: object) -> bool:
    try:
        fd = conn.pgconn.socket  # type: ignore[attr-defined]
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except Exception:  # noqa: BLE001 - a closed or broken connection: let the ping say so
        return True


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached (or did not answer in time): nothing was written.
    The API answers 503 with Retry-After."""

    retry_after = 1


class CommitOutcomeUnknown(DatabaseUnavailable):
    """The connection dropped while a save was being committed and the database could not
    be asked since whether it committed. A client that sent an Idempotency-Key retries with
    the same key and gets the original response or a fresh, single, execution."""


class CommitNotMade(DatabaseUnavailable):
    """The connection dropped during a save, and the save is now known (fenced) never to
    commit: the command may be re-run."""
