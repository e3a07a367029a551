"""RFC 6962 (Certificate Transparency) Merkle trees: hashes, an append-only frontier,
inclusion and consistency proofs and their verification (RFC 9162 §2.1.3-2.1.4 algorithms).

Hashes (RFC 6962 §2.1)::

    leaf hash  = SHA-256(0x00 ‖ leaf data)
    node hash  = SHA-256(0x01 ‖ left ‖ right)
    empty tree = SHA-256("")

A tree over n leaves splits at k, the largest power of two smaller than n:
MTH(D[0:n]) = node(MTH(D[0:k]), MTH(D[k:n])).

The ledger's leaves are the events in log order; the leaf data of an event is
``u64be(notification_id) ‖ chain_hash`` (see ``event_leaf``), so a leaf commits to the event's
log position and, through its chain hash, to its encounter, version, topic and stored state.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_U64 = struct.Struct(">Q")
_sha256 = hashlib.sha256

SubtreeHash = Callable[[int, int], bytes]  # (start, end) -> MTH(D[start:end])


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def event_leaf(notification_id: int, chain_hash: bytes) -> bytes:
    """The leaf hash of one stored event: SHA-256(0x00 ‖ u64be(position) ‖ chain hash)."""
    return _sha256(b"\x00" + _U64.pack(notification_id) + chain_hash).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH over a list of leaf hashes (reference implementation, recursive)."""
    if not leaves:
        return EMPTY_ROOT
    return subtree(leaves, 0, len(leaves))


def subtree(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) over leaf hashes."""
    n = end - start
    if n == 1:
        return leaves[start]
    k = _split(n)
    return node_hash(subtree(leaves, start, start + k), subtree(leaves, start + k, end))


class Frontier:
    """The right edge of a tree: the roots of its perfect subtrees, largest (leftmost) first.

    Enough to append leaves and to compute the root in O(log n) space; a checkpoint stores it
    so that the builder can resume without re-reading the log.
    """

    __slots__ = ("size", "nodes")

    def __init__(self, size: int = 0, nodes: list[bytes] | None = None) -> None:
        nodes = list(nodes or [])
        if len(nodes) != bin(size).count("1"):
            raise ValueError(f"frontier of size {size} needs {bin(size).count('1')} nodes, "
                             f"got {len(nodes)}")
        self.size = size
        self.nodes = nodes

    def append(self, leaf: bytes) -> None:
        nodes = self.nodes
        nodes.append(leaf)
        size = self.size
        # Merge equal-sized subtrees: one merge per trailing 1 bit of the old size.
        while size & 1:
            right = nodes.pop()
            nodes[-1] = _sha256(b"\x01" + nodes[-1] + right).digest()
            size >>= 1
        self.size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        acc = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            acc = _sha256(b"\x01" + node + acc).digest()
        return acc

    def ranges(self) -> list[tuple[int, int]]:
        """The (start, end) leaf range of each frontier node, in order."""
        out: list[tuple[int, int]] = []
        start = 0
        for bit in reversed(range(self.size.bit_length())):
            width = 1 << bit
            if self.size & width:
                out.append((start, start + width))
                start += width
        return out

    def copy(self) -> Frontier:
        return Frontier(self.size, list(self.nodes))

    def to_bytes(self) -> bytes:
        return b"".join(self.nodes)

    @classmethod
    def from_bytes(cls, size: int, data: bytes) -> Frontier:
        nodes = [bytes(data[i:i + HASH_SIZE]) for i in range(0, len(data), HASH_SIZE)]
        return cls(size, nodes)


# ---------------------------------------------------------------------- proofs (RFC 6962 §2.1.1-2)
def inclusion_proof(index: int, size: int, mth: SubtreeHash) -> list[bytes]:
    """PATH(index, D[0:size]): the audit path of leaf ``index``."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []

    def walk(m: int, start: int, end: int) -> None:
        n = end - start
        if n <= 1:
            return
        k = _split(n)
        if m < k:
            walk(m, start, start + k)
            path.append(mth(start + k, end))
        else:
            walk(m - k, start + k, end)
            path.append(mth(start, start + k))

    walk(index, 0, size)
    return path


def consistency_proof(old_size: int, new_size: int, mth: SubtreeHash) -> list[bytes]:
    """PROOF(m, D[0:n]): proves that the tree of size m is a prefix of the tree of size n.

    Every node asked of ``mth`` lies either inside [0, m) as a node of the old tree's frontier,
    or inside [m, n): the checkpoint builder answers from the previous checkpoint's frontier
    and the newly appended leaves (``FrontierAndTail``).
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    proof: list[bytes] = []

    def sub(m: int, start: int, end: int, complete: bool) -> None:
        n = end - start
        if m == n:
            if not complete:
                proof.append(mth(start, end))
            return
        k = _split(n)
        if m <= k:
            sub(m, start, start + k, complete)
            proof.append(mth(start + k, end))
        else:
            sub(m - k, start + k, end, False)
            proof.append(mth(start, start + k))

    sub(old_size, 0, new_size, True)
    return proof


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root_hash: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: does the tree (new_size, new_root) extend (old_size, old_root)?"""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class LeafList:
    """``mth`` over a complete list of leaf hashes (for auditors' tools and tests)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves

    def __call__(self, start: int, end: int) -> bytes:
        return subtree(self.leaves, start, end)


class FrontierAndTail:
    """``mth`` for a consistency proof from m to n knowing only the old tree's frontier and
    the leaves appended since (leaves m..n-1): exactly what the checkpoint builder holds."""

    def __init__(self, old: Frontier, tail: Sequence[bytes]) -> None:
        self.old_size = old.size
        self.known = dict(zip(old.ranges(), old.nodes, strict=True))
        self.tail = tail

    def __call__(self, start: int, end: int) -> bytes:
        if end <= self.old_size:
            try:
                return self.known[(start, end)]
            except KeyError:
                raise ValueError(f"node [{start}, {end}) is not on the old frontier") from None
        if start < self.old_size:
            raise ValueError(f"node [{start}, {end}) straddles the old tree's edge")
        return subtree(self.tail, start - self.old_size, end - self.old_size)
