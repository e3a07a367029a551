"""Authentication an attacker cannot steer: the failed-authentication limit keys on the real
client address (forwarding headers only from trusted proxies) and on the token id, without
locking the token's owner out; an unknown token id costs as much as a wrong secret."""

from __future__ import annotations

import statistics
import time

import pytest
from fastapi.testclient import TestClient

from api.client_address import parse_trusted, resolve
from api.main import create_app
from ledger.config import Settings
from tests.api.conftest import SECRET, provision, token_for

pytestmark = pytest.mark.postgres

URL = "/encounters/00000000-0000-0000-0000-000000000001"


def _app(url: str, **settings):
    provision(url)
    return create_app(Settings(database_url=url, cache_size=0, **settings))


def _wrong(i: int) -> dict[str, str]:
    return {"Authorization": f"Bearer lgr_t-nobody-{i}.wrong-secret-{i:020d}"}


def test_spoofed_forwarded_for_from_an_untrusted_client_is_ignored(clean_db):
    app = _app(clean_db, auth_failure_limit=3)
    with TestClient(app, client=("203.0.113.7", 40000)) as c:
        codes = [c.get(URL, headers={**_wrong(i), "X-Forwarded-For": f"198.51.100.{i}",
                                     "Forwarded": f"for=198.51.100.{i}"}).status_code
                 for i in range(5)]
    # a different spoofed address each time does not escape the limit of the real address
    assert codes == [401, 401, 401, 429, 429]


def test_spoofing_a_victims_address_does_not_lock_the_victim_out(clean_db):
    app = _app(clean_db, auth_failure_limit=3)
    with TestClient(app, client=("203.0.113.7", 40000)) as attacker:
        for i in range(5):
            attacker.get(URL, headers={**_wrong(i), "X-Forwarded-For": "192.0.2.10"})
        victim = TestClient(app, client=("192.0.2.10", 40001))  # same app, same limiter
        r = victim.get(URL, headers={"Authorization": f"Bearer {token_for('biller-1')}"})
    assert r.status_code == 404  # authenticated (no such encounter), not 429


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(clean_db):
    app = _app(clean_db, auth_failure_limit=2, trusted_proxies="10.0.0.0/8")
    with TestClient(app, client=("10.0.0.5", 40000)) as proxy:
        first = [proxy.get(URL, headers={**_wrong(i), "X-Forwarded-For": "198.51.100.1"}
                           ).status_code for i in range(3)]
        # another client behind the same proxy is not affected; a client-supplied hop to the
        # left of the proxy's own entry changes nothing
        other = proxy.get(URL, headers={
            "Authorization": f"Bearer {token_for('biller-1')}",
            "X-Forwarded-For": "198.51.100.1, 198.51.100.2"}).status_code
        rfc7239 = proxy.get(URL, headers={**_wrong(9),
                                          "Forwarded": 'for="198.51.100.1:4711"'}).status_code
    assert first == [401, 401, 429] and other == 404 and rfc7239 == 429


def test_resolution_rules():
    trusted = parse_trusted("10.0.0.0/8, ::1")
    assert resolve("203.0.113.7", {"x-forwarded-for": "1.2.3.4"}, trusted) == "203.0.113.7"
    assert resolve("10.0.0.5", {"x-forwarded-for": "1.2.3.4, 10.0.0.9"}, trusted) == "1.2.3.4"
    assert resolve("::1", {"forwarded": 'for="[2001:db8::17]:4711";proto=https'},
                   trusted) == "2001:db8::17"
    assert resolve("10.0.0.5", {"forwarded": "for=unknown"}, trusted) == "10.0.0.5"
    assert resolve("10.0.0.5", {}, ()) == "10.0.0.5"  # default: nothing is trusted


def test_failures_per_token_id_stop_distributed_guessing_but_not_the_owner(clean_db):
    app = _app(clean_db, auth_failure_limit=3)
    good = {"Authorization": f"Bearer {token_for('biller-1')}"}
    with TestClient(app, client=("192.0.2.50", 1)) as owner:  # one lifespan, one limiter
        assert owner.get(URL, headers=good).status_code == 404  # verified once: known good
        codes = []
        for i in range(5):  # one guess per address: the address limit never trips
            guesser = TestClient(app, client=(f"198.51.100.{i + 1}", 2))
            codes.append(guesser.get(URL, headers={
                "Authorization": f"Bearer lgr_t-biller-1.guess-{i:024d}"}).status_code)
        assert codes == [401, 401, 401, 429, 429]
        assert owner.get(URL, headers=good).status_code == 404  # the owner is still in


def test_unknown_token_id_costs_the_same_as_a_wrong_secret(clean_db):
    """Token ids are public: timing must not confirm one. Both paths do one database read
    and one argon2 verification; the medians of many interleaved tries are within 20 %."""
    provision(clean_db)
    from ledger.application.idempotency import new_pool
    from ledger.auth.tokens import AuthStore

    pool = new_pool(clean_db, max_size=2)
    store = AuthStore(pool, cache_seconds=0)
    try:
        known = "lgr_t-biller-1.wrong-secret-0123456789abcdef"
        unknown = f"lgr_t-nobody-at-all.{SECRET}"
        for t in (known, unknown):  # warm up connections and code paths
            store.authenticate(t)
        times: dict[str, list[float]] = {"known": [], "unknown": []}
        for _ in range(60):
            for name, token in (("known", known), ("unknown", unknown)):
                started = time.perf_counter()
                assert store.authenticate(token) is None
                times[name].append(time.perf_counter() - started)
    finally:
        pool.close()
    known_ms = statistics.median(times["known"]) * 1000
    unknown_ms = statistics.median(times["unknown"]) * 1000
    assert abs(known_ms - unknown_ms) / max(known_ms, unknown_ms) < 0.20, (known_ms, unknown_ms)
    assert unknown_ms > 2  # it really verifies something (argon2 takes milliseconds)
