"""LEDGER_DATABASE_URL forms for failover (issue 20): a multi-host URL becomes libpq's host and
port lists for the event-sourcing library, and target_session_attrs reaches its pools; the
replica list of LEDGER_READ_DATABASE_URL splits on commas between URLs only."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from ledger.config import Settings
from ledger.persistence.database import (
    app_url,
    apply_connection_options,
    eventsourcing_env,
    url_options,
)
from ledger.replicas import parse_urls

MULTI = ("postgresql://owner:s%40cret@db-a.internal:5432,db-b.internal:5433/ledger"
         "?target_session_attrs=read-write")


def test_a_multi_host_url_gives_host_and_port_lists() -> None:
    env = eventsourcing_env(MULTI, Settings(database_url=MULTI))
    assert env["POSTGRES_HOST"] == "db-a.internal,db-b.internal"
    assert env["POSTGRES_PORT"] == "5432,5433"
    assert env["POSTGRES_DBNAME"] == "ledger"
    assert env["POSTGRES_USER"] == "owner"
    assert env["POSTGRES_PASSWORD"] == "s@cret"


def test_host_list_in_the_query_and_a_unix_socket() -> None:
    url = "postgresql://owner@/ledger?host=10.0.0.1,10.0.0.2&port=5432,5432"
    env = eventsourcing_env(url, Settings(database_url=url))
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("10.0.0.1,10.0.0.2", "5432,5432")
    sock = "postgresql://postgres:@/postgres?host=/tmp/pg"
    env = eventsourcing_env(sock, Settings(database_url=sock))
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("/tmp/pg", "5432")


def test_target_session_attrs_reaches_the_library_pool() -> None:
    settings = Settings(database_url=MULTI)
    assert url_options(MULTI) == {"target_session_attrs": "read-write"}

    class Pool:
        kwargs = {"host": "db-a.internal,db-b.internal"}

    pool = Pool()
    apply_connection_options(pool, settings)
    assert pool.kwargs["target_session_attrs"] == "read-write"
    assert pool.kwargs["connect_timeout"] == "5"


def test_the_app_role_keeps_every_host() -> None:
    url = app_url(MULTI, Settings(database_url=MULTI, app_role="ledger_app",
                                  app_password="p w"))
    info = conninfo_to_dict(url)
    assert info["host"] == "db-a.internal,db-b.internal"
    assert info["port"] == "5432,5433"
    assert (info["user"], info["password"]) == ("ledger_app", "p w")
    assert info["target_session_attrs"] == "read-write"


def test_replica_urls_split_between_urls_only() -> None:
    assert parse_urls("") == []
    assert parse_urls("postgresql://r@a/l, postgresql://r@b/l") == [
        "postgresql://r@a/l", "postgresql://r@b/l"]
    assert parse_urls("postgresql://r@/l?host=a,b&port=1,2,postgresql://r@c/l") == [
        "postgresql://r@/l?host=a,b&port=1,2", "postgresql://r@c/l"]
