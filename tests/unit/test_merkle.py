"""RFC 6962 Merkle trees: reference vectors, the frontier, inclusion and consistency proofs."""

from __future__ import annotations

import random

import pytest

from ledger.audit import merkle
from ledger.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    FrontierAndTail,
    LeafList,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

# The Certificate Transparency reference inputs and tree heads (reference data).
INPUTS = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
LEAVES = [leaf_hash(d) for d in INPUTS]

# (leaf index, tree size, audit path) and (old size, new size, proof): CT reference vectors.
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


def test_reference_roots_every_size():
    assert merkle.root([]) == EMPTY_ROOT == ROOTS[0]
    frontier = Frontier()
    assert frontier.root() == ROOTS[0]
    for n in range(1, 9):
        assert merkle.root(LEAVES[:n]) == ROOTS[n], n
        frontier.append(LEAVES[n - 1])
        assert frontier.root() == ROOTS[n], n


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_reference_inclusion_proofs(index, size, path):
    proof = inclusion_proof(index, size, LeafList(LEAVES))
    assert [p.hex() for p in proof] == path
    assert verify_inclusion(index, size, LEAVES[index], proof, ROOTS[size])
    assert not verify_inclusion(index, size, LEAVES[index], proof, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_reference_consistency_proofs(old, new, path):
    proof = consistency_proof(old, new, LeafList(LEAVES))
    assert [p.hex() for p in proof] == path
    assert verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


def _leaves(n: int, seed: int = 6962) -> list[bytes]:
    rng = random.Random(seed)
    return [leaf_hash(rng.randbytes(rng.randint(0, 40))) for _ in range(n)]


def test_every_consistency_proof_verifies_and_no_forgery_does():
    leaves = _leaves(45)
    roots = [merkle.root(leaves[:n]) for n in range(len(leaves) + 1)]
    for n in range(1, len(leaves) + 1):
        for m in range(1, n + 1):
            proof = consistency_proof(m, n, LeafList(leaves))
            assert verify_consistency(m, n, roots[m], roots[n], proof), (m, n)
            if m < n:
                # Wrong old root, wrong new root, a changed node, a dropped node: all fail.
                assert not verify_consistency(m, n, roots[m - 1] if m > 1 else roots[n],
                                              roots[n], proof)
                assert not verify_consistency(m, n, roots[m], roots[n - 1], proof)
                if proof:
                    bad = list(proof)
                    bad[-1] = bytes([bad[-1][0] ^ 1]) + bad[-1][1:]
                    assert not verify_consistency(m, n, roots[m], roots[n], bad)
                    assert not verify_consistency(m, n, roots[m], roots[n], proof[:-1])


def test_a_rewritten_prefix_is_not_consistent():
    leaves = _leaves(20)
    old_root = merkle.root(leaves[:7])
    forged = list(leaves)
    forged[3] = leaf_hash(b"forged")
    proof = consistency_proof(7, 20, LeafList(forged))
    assert not verify_consistency(7, 20, old_root, merkle.root(forged), proof)


def test_every_inclusion_proof_verifies():
    leaves = _leaves(33)
    for n in range(1, len(leaves) + 1):
        r = merkle.root(leaves[:n])
        for i in range(n):
            proof = inclusion_proof(i, n, LeafList(leaves))
            assert verify_inclusion(i, n, leaves[i], proof, r)
            assert not verify_inclusion(i, n, leaf_hash(b"x"), proof, r)


def test_frontier_and_tail_answers_every_consistency_proof():
    """The checkpoint builder's proof (old frontier + new leaves only) equals the full one."""
    leaves = _leaves(70)
    for m in range(1, 70):
        old = Frontier()
        old.extend(leaves[:m])
        for n in (m + 1, m + 2, m + 7, 64, 70):
            if n <= m or n > 70:
                continue
            mth = FrontierAndTail(old, leaves[m:n])
            assert consistency_proof(m, n, mth) == consistency_proof(m, n, LeafList(leaves))


def test_frontier_round_trips_through_bytes():
    frontier = Frontier()
    frontier.extend(_leaves(13))
    again = Frontier.from_bytes(13, frontier.to_bytes())
    assert again.root() == frontier.root() == merkle.root(_leaves(13))
    assert frontier.ranges() == [(0, 8), (8, 12), (12, 13)]
    with pytest.raises(ValueError):
        Frontier.from_bytes(12, frontier.to_bytes())
