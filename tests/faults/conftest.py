from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.api.conftest import provision
from tests.conftest import ROOT
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
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL of the module's own, which its tests may stop, kill and freeze (under the
    project's .ledger, like the test server: the server's OS user can reach it)."""
    directory = ROOT / ".ledger" / "faults-tests" / f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    pg = PrivatePostgres(directory)
    try:
        yield pg
    finally:
        pg.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def private_db(private_pg: PrivatePostgres) -> str:
    """A fresh, migrated database with the test users, on the private server."""
    from ledger.persistence.migrate import migrate

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
