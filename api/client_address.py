"""The client's address, as the failed-authentication limit and the access log see it.

`Forwarded` (RFC 7239) and `X-Forwarded-For` are believed only when the connection comes from
an address listed in LEDGER_TRUSTED_PROXIES (addresses or networks, comma-separated; empty by
default, so by default both headers are ignored and the peer address is the client). Behind
trusted proxies the client is the right-most hop that is not itself a trusted proxy: a client
cannot push a made-up address past the proxy that appended the real one. uvicorn's own proxy
handling is off (`ledger serve` passes proxy_headers=False), so the peer address is real.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted(text: str | Iterable[str] | None) -> tuple[Network, ...]:
    """``"10.0.0.5, 10.1.0.0/16, ::1"`` → networks. A bad entry is a configuration error."""
    if not text:
        return ()
    items = text.split(",") if isinstance(text, str) else list(text)
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items
                 if item.strip())


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip().strip('"')
    if value.startswith("["):  # "[2001:db8::1]:4711"
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:  # "192.0.2.1:4711"
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(address: Any, trusted: Sequence[Network]) -> bool:
    return address is not None and any(address in net for net in trusted)


def _hops(headers: Any) -> list[str]:
    """Forwarded ``for=`` values (preferred), else X-Forwarded-For, client first."""
    forwarded = headers.getlist("forwarded") if hasattr(headers, "getlist") else \
        [headers.get("forwarded")] if headers.get("forwarded") else []
    hops: list[str] = []
    for line in forwarded:
        for element in line.split(","):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.lower() == "for":
                    hops.append(value)
    if hops:
        return hops
    xff = headers.getlist("x-forwarded-for") if hasattr(headers, "getlist") else \
        [headers.get("x-forwarded-for")] if headers.get("x-forwarded-for") else []
    return [h for line in xff for h in line.split(",") if h.strip()]


def resolve(peer: str | None, headers: Any, trusted: Sequence[Network]) -> str:
    """The client address for a connection from ``peer`` carrying ``headers``."""
    if not peer:
        return "unknown"
    if not trusted or not _trusted(_ip(peer), trusted):
        return peer  # an untrusted peer's forwarding headers are ignored
    current = peer
    for hop in reversed(_hops(headers)):
        address = _ip(hop)
        if address is None:  # obfuscated or malformed: stop at the last proxy we trust
            return current
        current = str(address)
        if not _trusted(address, trusted):
            return current
    return current


def client_address(request: Any) -> str:
    """The request's client address (computed once per request)."""
    state = request.scope.setdefault("state", {})
    cached = state.get("client_address")
    if cached is None:
        trusted = getattr(request.app.state, "trusted_proxies", ())
        peer = request.client.host if request.client else None
        cached = state["client_address"] = resolve(peer, request.headers, trusted)
    return cached
