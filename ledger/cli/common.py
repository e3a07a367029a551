"""What every sub-command shares: the rich consoles (on a terminal, its width; piped or
redirected, no width limit, so tables and lines are never cut or wrapped ("duplica…") for the
program reading them), the configured database URL and the logging set-up."""

from __future__ import annotations

import sys

from rich.console import Console

PIPED_WIDTH = 100_000  # tables size to their content; this only removes the 80-column cap


def make_console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty())
    return Console(stderr=stderr, soft_wrap=True, width=PIPED_WIDTH if piped else None)


console = make_console()
err_console = make_console(stderr=True)


def ledger_url() -> str:
    """The database the settings name (LEDGER_DATABASE_URL, else the embedded server)."""
    from ledger.config import get_settings
    from ledger.persistence.database import database_url

    return database_url(get_settings())


def setup_logging() -> None:
    from ledger.config import get_settings
    from ledger.logs import configure

    settings = get_settings()
    configure(settings.log_level, settings.log_format)
