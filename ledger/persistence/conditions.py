"""The WHERE conditions of a filtered read: one copy of "a filter given is a condition"."""

from __future__ import annotations

from typing import Any


def given(params: list[Any], *conditions: tuple[str, Any]) -> list[str]:
    """The conditions (SQL text with one ``%s``) whose value is given (not None), in order;
    their values are appended to ``params``."""
    out = []
    for condition, value in conditions:
        if value is not None:
            out.append(condition)
            params.append(value)
    return out
