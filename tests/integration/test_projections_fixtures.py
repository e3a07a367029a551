"""Fixtures for the projection tests that must be the only runner on their database.

The session database of ``tests/conftest.py`` is shared by every test; an application started
elsewhere (e.g. an API lifespan with its in-process runner) may still be following it. Tests
that count pages, kill a runner or inject a fault run on a private database on the same
server, created and migrated here, dropped afterwards. (No tests in this module.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import urlparse, urlunparse

import psycopg
import pytest


@pytest.fixture
def private_db(database_url: str) -> Iterator[str]:
    from ledger.persistence.migrate import migrate

    name = f"ledger_proj_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunparse(urlparse(database_url)._replace(path="/" + name))
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def private_env(private_db: str) -> dict[str, str]:
    from ledger.config import Settings
    from ledger.persistence.database import eventsourcing_env

    return eventsourcing_env(private_db, Settings(database_url=private_db, cache_size=0))


@pytest.fixture
def private_app(private_env: dict[str, str]) -> Iterator[object]:
    from ledger.application.service import LedgerApplication

    application = LedgerApplication(env=private_env)
    yield application
    application.close()
