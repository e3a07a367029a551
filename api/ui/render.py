"""Jinja2 templates of the workbench, with filters that format money and dates for people."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ledger.domain.values import Money

HERE = Path(__file__).parent
# Pages load only this server's own files; no inline script, no framing, forms post here.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; script-src 'self'; "
                               "style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages hold claim data: not kept in shared caches
}


def money(value: Any) -> str:
    """$1,234.56 and -$30.00 (a credit); '' for None."""
    if value is None:
        return ""
    amount = value.amount if isinstance(value, Money) else Decimal(str(value))
    text = f"${abs(amount):,.2f}"
    return f"-{text}" if amount < 0 else text


def day(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.strftime("%b %-d, %Y %H:%M:%S UTC") if value.tzinfo else \
            value.strftime("%b %-d, %Y %H:%M:%S")
    return value.strftime("%b %-d, %Y")


def query(params: dict[str, Any], **changes: Any) -> str:
    merged = {k: v for k, v in {**params, **changes}.items() if v not in (None, "", False)}
    return urlencode(merged)


ENV = Environment(loader=FileSystemLoader(HERE / "templates"),
                  autoescape=select_autoescape(["html"]), trim_blocks=True,
                  lstrip_blocks=True)
ENV.filters["money"] = money
ENV.filters["day"] = day
ENV.globals["query"] = query


def render(request: Request, template: str, *, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    html = ENV.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)
