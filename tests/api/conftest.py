from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from ledger.config import Settings


@pytest.fixture
def settings(clean_db: str) -> Settings:
    return Settings(database_url=clean_db, cache_size=0)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def headers(actor: str = "biller-1", role: str = "biller", **extra: str) -> dict[str, str]:
    return {"X-Actor-Id": actor, "X-Actor-Role": role, **extra}


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
                                log_level="warning", lifespan="on")
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
