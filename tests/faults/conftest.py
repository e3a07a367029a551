from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.api.conftest import provision  # noqa: F401  (re-exported for the fault tests)
from tests.faults.pgproxy import PgProxy


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
