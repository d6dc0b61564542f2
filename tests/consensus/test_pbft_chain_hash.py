"""The chain hash is a parameter of the core: the default suite's digests are the recorded ones,
byte for byte, and an sm2-sm3 chain's ids, roots and block digests are SM3."""

from __future__ import annotations

import hashlib

import pytest

from ibledger.consensus import (
    Block,
    ReplicaConfig,
    block_digest,
    merkle_proof,
    merkle_root,
    null_block,
    request_id,
    verify_merkle_proof,
)
from ibledger.sim.runner import run_seed

REQUESTS = tuple(b"request-%d" % i for i in range(5))

# Recorded before the hash became a parameter (SHA-256 hard-wired): they must never change.
RECORDED = {
    "request_id(abc)": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    "root of 5": "6be1e1d7b35019cf9e963a5749882293ebe8c2f9e8481b051f74cc659af85049",
    "block 7": "fb6092f2c9b2060915c7f18159dc57071101d94b20183978ea1fdb464764f23c",
    "null block 9": "8022ba390608ed3ffcd41923f79df094486d30127386e4997c877fd0e4216aae",
    "empty root": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
}
RECORDED_PROOF = (
    "a8907f0e38b163168093fce0cfe326f02d22fffda4c1aa5d924eee38c411c6b9",
    "a1ea6d4a689addf55403bb3b2b0c83803007bb4cda5b738a416be3f4c950fd5e",
    "57720cb5b2210015670cb654dc6fe4946ed70a177400bfa0453dc7af28f2d228",
)
RECORDED_TRACES = {
    (1, 4): "f0239f554ffbe0d36fae61c8ee42566e7748df30121fe9163f41408cefe59b91",
    (2, 4): "a4a0bde7a2abb27646874ead1271014335f4a0be50edde5a51f49034815d7429",
    (3, 4): "c68bf3b9b60025ccddf14c42f86fe1a5e07e0e462d686f9ffe0d80460461c44b",
    (12, 7): "377afdbd3418fc3f7840dc98c4f2174549392eec7ed1b4f4642a1c922caeee73",
}


def _sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def test_default_digests_are_the_recorded_ones() -> None:
    block = Block(7, 1_700_000_000_000, REQUESTS)
    assert request_id(b"abc").hex() == RECORDED["request_id(abc)"]
    assert block.request_root.hex() == RECORDED["root of 5"]
    assert block.digest.hex() == RECORDED["block 7"]
    assert null_block(9).digest.hex() == RECORDED["null block 9"]
    assert merkle_root([]).hex() == RECORDED["empty root"]
    assert tuple(p.hex() for p in merkle_proof(list(block.request_ids), 3)) == RECORDED_PROOF
    assert ReplicaConfig(("r0",)).hash_fn(b"abc") == hashlib.sha256(b"abc").digest()


@pytest.mark.parametrize(("seed", "n"), sorted(RECORDED_TRACES))
def test_default_simulator_traces_are_the_recorded_ones(seed: int, n: int) -> None:
    result = run_seed(seed, n)
    assert result.ok
    assert result.trace_digest == RECORDED_TRACES[(seed, n)]


def test_sm3_block_hashes_every_level_with_sm3() -> None:
    block = Block(7, 1_700_000_000_000, REQUESTS, _sm3)
    ids = [_sm3(r) for r in REQUESTS]
    assert block.request_ids == tuple(ids)
    assert block.request_root == merkle_root(ids, _sm3) != merkle_root(ids)
    assert block.digest == block_digest(7, 1_700_000_000_000, block.request_root, _sm3)
    assert block.digest.hex() != RECORDED["block 7"]
    assert merkle_root([], _sm3) == _sm3(b"")
    proof = merkle_proof(ids, 3, _sm3)
    assert verify_merkle_proof(ids[3], 3, len(ids), proof, block.request_root, _sm3)
    # A proof under one hash never verifies under the other.
    assert not verify_merkle_proof(ids[3], 3, len(ids), proof, block.request_root)
    assert null_block(9, _sm3).digest != null_block(9).digest
