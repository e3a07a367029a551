from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.api.conftest import provision
from tests.faults.pgproxy import PgProxy
from tests.faults.private_pg import PrivatePostgres


@pytest.fixture
def pgproxy(clean_db: str, tmp_path: Path) -> Iterator[PgProxy]:
    """A fault-injecting proxy in front of the test database (Unix sockets only)."""
    parts = urlparse(clean_db)
    socket_dir = parse_qs(parts.query).get("host", [None])[0]
    assert socket_dir, "the fault proxy needs a Unix-socket server (the embedded one)"
    proxy = PgProxy(socket_dir, tmp_path / "proxy")
    yield proxy
    proxy.close()


def proxied_url(proxy: PgProxy, clean_db: str) -> str:
    return proxy.url(urlparse(clean_db).path.lstrip("/"))


@pytest.fixture(scope="module")
def private_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePostgres]:
    """A PostgreSQL of the module's own, which its tests may stop, kill and freeze."""
    pg = PrivatePostgres(tmp_path_factory.mktemp("pg"))
    yield pg
    pg.close()


@pytest.fixture
def private_db(private_pg: PrivatePostgres) -> str:
    """A fresh, migrated database with the test users, on the private server."""
    from ledger.migrate import migrate

    url = private_pg.create_database("faults")
    migrate(url)
    provision(url)
    return url


@pytest.fixture
def client(clean_db: str) -> Iterator[object]:
    """The API in-process (TestClient), projections running in it, on the test database."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from ledger.config import Settings

    provision(clean_db)
    with TestClient(create_app(Settings(database_url=clean_db, cache_size=0))) as c:
        yield c
