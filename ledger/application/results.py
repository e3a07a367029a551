"""What a command returns (``CommandResult``), and the hook that hands it to a write in the
same transaction as the command's events (e.g. the idempotency record)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class CommandResult:
    encounter_id: UUID
    version: int
    position: int | None  # log position of the last event written (None: nothing written)
    value: Any = None
    written: int = 0


CommitWrite = Callable[[Any, CommandResult], None]


def commit_hook(enc_id: UUID, version: int, produced: int, value: Any,
                write_with: CommitWrite) -> Callable[..., None]:
    """A recorder side write that hands ``write_with`` one command's CommandResult, in the
    transaction of the save: its position is the log position of the command's last event
    (found by encounter and version, so it works in a save of many encounters too)."""

    def hook(curs: Any, stored_events: Any, ids: Any) -> None:
        position = next((i for e, i in zip(stored_events, ids, strict=False)
                         if e.originator_id == enc_id and e.originator_version == version),
                        None)
        write_with(curs, CommandResult(enc_id, version, position, value, produced))

    return hook
