from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from ledger.config import Settings

# Every actor the API tests use, with a deterministic token (created by ``provision``).
TEST_ACTORS = {"coder-a": "coder", "coder-b": "coder", "biller-1": "biller",
               "auditor-1": "auditor", "advocate-1": "advocate", "advocate-2": "advocate",
               "admin-1": "admin", "fuzz-1": "biller"}
SECRET = "test-secret-0123456789abcdef"


def token_for(actor: str) -> str:
    return f"lgr_t-{actor}.{SECRET}"


def provision(url: str) -> None:
    """Create the test users and their tokens in the test database."""
    from ledger.application.idempotency import new_pool
    from ledger.auth.tokens import AuthStore

    pool = new_pool(url, max_size=2)
    try:
        store = AuthStore(pool)
        for actor, role in TEST_ACTORS.items():
            store.create_user(actor, role, created_by="tests")
            store.create_token(actor, "tests", token_id=f"t-{actor}", secret=SECRET)
    finally:
        pool.close()


@pytest.fixture
def settings(clean_db: str) -> Settings:
    provision(clean_db)
    return Settings(database_url=clean_db, cache_size=0)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def headers(actor: str = "biller-1", role: str = "biller", **extra: str) -> dict[str, str]:
    """Authorization for a test actor (its role is the one it was provisioned with)."""
    assert TEST_ACTORS[actor] == role, f"{actor} is provisioned as {TEST_ACTORS[actor]}"
    return {"Authorization": f"Bearer {token_for(actor)}", **extra}


class LiveServer:
    """The real app under uvicorn on a loopback port, in a thread; stoppable and restartable."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server = None
        self.thread = None
        self.port = 0

    def start(self) -> str:
        import socket
        import threading
        import time

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(self.settings), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="on", proxy_headers=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            self.thread.join(timeout=20)
            self.server = None


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(settings)
    server.start()
    yield server
    server.stop()
