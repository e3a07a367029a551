"""Throttling failed authentications (429), per client address and per token id."""

from __future__ import annotations

import hmac
import threading
import time


class FailureLimiter:
    """Counts failed authentications per client address AND per token id; over ``limit`` in
    ``window`` seconds the address, or the token id, is refused (429) until the window passes.

    Per token id, so that an attacker spreading guesses over many addresses is still stopped;
    but a token id is public, so its limit must not lock its owner out: a request presenting
    the secret last verified for that id (compared by SHA-256 digest, in constant time) is not
    refused by the token-id limit. The address limit keys on the address resolved from trusted
    proxies only (``api.client_address``), so spoofed forwarding headers change nothing."""

    def __init__(self, limit: int = 20, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, list[float]] = {}
        self._known_good: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def _over(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(key, []) if now - t < self.window]
            if recent:
                self._failures[key] = recent
            else:
                self._failures.pop(key, None)
            return len(recent) >= self.limit

    def blocked(self, client: str) -> bool:
        return self._over("addr:" + client)

    def token_blocked(self, token_id: str, digest: bytes) -> bool:
        if not self._over("token:" + token_id):
            return False
        with self._lock:
            good = self._known_good.get(token_id)
        return good is None or not hmac.compare_digest(good, digest)

    def failed(self, client: str, token_id: str | None = None) -> None:
        now = time.monotonic()
        with self._lock:
            self._failures.setdefault("addr:" + client, []).append(now)
            if token_id:
                self._failures.setdefault("token:" + token_id, []).append(now)

    def succeeded(self, token_id: str, digest: bytes) -> None:
        with self._lock:
            self._known_good[token_id] = digest
