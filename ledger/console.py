"""The CLI's rich consoles: on a terminal, its width; piped or redirected, no width limit, so
tables and lines are never cut or wrapped ("duplica…") for the program reading them."""

from __future__ import annotations

import sys

from rich.console import Console

PIPED_WIDTH = 100_000  # tables size to their content; this only removes the 80-column cap


def make_console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty())
    return Console(stderr=stderr, soft_wrap=True, width=PIPED_WIDTH if piped else None)
