"""Several processes starting at once on a fresh data directory each ask for the checkpoint key:
exactly one key is made and every one of them gets it (no half-written PEM, no second key)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ledger.audit.checkpoints import key_id, load_public_key, public_path, raw_public, signing_key


def test_concurrent_first_use_makes_one_key_and_everyone_loads_it(tmp_path):
    for round_ in range(20):
        path = tmp_path / f"r{round_}" / "checkpoint-ed25519.pem"
        start = threading.Barrier(12)

        def ask(_: int, path=path, start=start) -> str:
            start.wait()
            return key_id(raw_public(signing_key(path).public_key()))

        with ThreadPoolExecutor(12) as pool:
            ids = list(pool.map(ask, range(12)))
        assert len(set(ids)) == 1, ids
        assert key_id(raw_public(load_public_key(public_path(path)))) == ids[0]
        assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
