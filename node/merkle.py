"""Merkle trees over a block's transactions, with inclusion proofs checkable offline.

The tree follows RFC 6962 (Certificate Transparency) section 2.1: leaves are hashed as
``H(0x00 || data)`` and inner nodes as ``H(0x01 || left || right)``, so a leaf can never be passed
off as an inner node (second-preimage resistance), and a tree of ``n`` leaves splits at the largest
power of two below ``n`` (no duplicated last leaf, unlike Bitcoin's tree, so no CVE-2012-2459).
The empty tree's root is ``H(b"")``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

HashFn = Callable[[bytes], bytes]


def leaf_hash(hash_fn: HashFn, data: bytes) -> bytes:
    return hash_fn(b"\x00" + data)


def _node_hash(hash_fn: HashFn, left: bytes, right: bytes) -> bytes:
    return hash_fn(b"\x01" + left + right)


def _split(count: int) -> int:
    """The largest power of two strictly less than ``count`` (count >= 2)."""
    return 1 << ((count - 1).bit_length() - 1)


def merkle_root(hash_fn: HashFn, leaves: Sequence[bytes]) -> bytes:
    """Root over already-hashed leaves (see :func:`leaf_hash`)."""
    if not leaves:
        return hash_fn(b"")
    level = list(leaves)
    # Bottom-up pairing reproduces RFC 6962's recursive split: an odd node at the end of a level
    # is promoted unchanged, which is exactly where the recursion would place it.
    while len(level) > 1:
        paired = [_node_hash(hash_fn, level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(hash_fn: HashFn, leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Sibling hashes from the leaf at ``index`` up to the root (RFC 6962 2.1.1 PATH)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is outside a tree of {len(leaves)} leaves")
    proof: list[bytes] = []
    level = list(leaves)
    position = index
    while len(level) > 1:
        sibling = position ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        paired = [_node_hash(hash_fn, level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
        position //= 2
    return proof


def verify_inclusion(
    hash_fn: HashFn, leaf: bytes, index: int, count: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check that ``leaf`` (already hashed) is leaf ``index`` of a ``count``-leaf tree."""
    if not 0 <= index < count:
        return False
    node = leaf
    position, size = index, count
    remaining = list(proof)
    while size > 1:
        sibling = position ^ 1
        if sibling < size:
            if not remaining:
                return False
            other = remaining.pop(0)
            node = (
                _node_hash(hash_fn, other, node)
                if position & 1
                else _node_hash(hash_fn, node, other)
            )
        position //= 2
        size = (size + 1) // 2
    return not remaining and node == root
