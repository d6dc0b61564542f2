"""The node's crypto suite and the identity contract refuse the same Ed25519 keys: both use
``contracts.ed25519``, and this checks the two call sites agree on every edge case."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibledger.contracts.identity import ed25519_key_problem
from ibledger.node.crypto import CryptoError, generate_keypair, get_suite
from tests.contracts.test_ed25519 import TORSION_CANONICAL, TORSION_NON_CANONICAL

SUITE = get_suite("ed25519-sha256")


def _node_refuses(key: bytes) -> str | None:
    try:
        SUITE.check_public_key(key)
    except CryptoError as error:
        return error.code
    return None


@pytest.mark.parametrize("encoded", sorted(TORSION_CANONICAL))
def test_small_order_points_both_refuse(encoded: str) -> None:
    key = bytes.fromhex(encoded)
    assert _node_refuses(key) == "WEAK_PUBLIC_KEY"
    assert ed25519_key_problem(key) == "the key has small order and would admit forged signatures"


@pytest.mark.parametrize("encoded", TORSION_NON_CANONICAL)
def test_non_canonical_encodings_both_refuse(encoded: str) -> None:
    key = bytes.fromhex(encoded)
    assert _node_refuses(key) == "BAD_PUBLIC_KEY"
    assert ed25519_key_problem(key) == "the key is not canonically encoded"


def test_generated_keys_both_accept() -> None:
    for _ in range(20):
        key = generate_keypair().public_key
        assert _node_refuses(key) is None
        assert ed25519_key_problem(key) is None


@settings(max_examples=500, derandomize=True, database=None)
@given(st.binary(min_size=32, max_size=32))
def test_agreement_on_arbitrary_bytes(key: bytes) -> None:
    assert (_node_refuses(key) is None) == (ed25519_key_problem(key) is None)
