"""Crypto suite: RFC 8032 vectors, strict Ed25519 edge cases, and key files on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ibledger.node.crypto import (
    CryptoError,
    KeyFileError,
    ed25519_point_has_small_order,
    generate_keypair,
    get_suite,
    load_private_key,
    write_private_key,
)

SUITE = get_suite("ed25519-sha256")
L = 2**252 + 27742317777372353535851937790883648493
P = 2**255 - 19

# RFC 8032 section 7.1, tests 1-3: (secret seed, public key, message, signature).
RFC8032_VECTORS = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
        "39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f"
        "3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67"
        "f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]

IDENTITY = bytes([1]) + bytes(31)  # the neutral element (order 1)
# Encodings of small-order points: order 1, 2, 4 and two of order 8.
SMALL_ORDER_KEYS = [
    IDENTITY,
    (P - 1).to_bytes(32, "little"),  # (0, -1), order 2
    bytes(32),  # y = 0: order 4
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
]


@pytest.mark.parametrize(("seed", "public", "message", "signature"), RFC8032_VECTORS)
def test_rfc8032_vectors(seed: str, public: str, message: str, signature: str) -> None:
    seed_b, public_b, message_b, signature_b = map(
        bytes.fromhex, (seed, public, message, signature)
    )
    assert SUITE.public_key_from_seed(seed_b) == public_b
    assert SUITE.sign(seed_b, message_b) == signature_b
    assert SUITE.verify(public_b, message_b, signature_b)
    assert not SUITE.verify(public_b, message_b + b"\x00", signature_b)


@pytest.mark.parametrize("public_key", SMALL_ORDER_KEYS)
def test_small_order_public_keys_are_refused(public_key: bytes) -> None:
    assert ed25519_point_has_small_order(public_key)
    with pytest.raises(CryptoError) as caught:
        SUITE.check_public_key(public_key)
    assert caught.value.code == "WEAK_PUBLIC_KEY"


def test_identity_key_forgery_is_rejected_by_libsodium() -> None:
    """R = identity, S = 0 'verifies' any message under the identity key in lax verifiers."""
    forged = IDENTITY + bytes(32)
    assert not SUITE.verify(IDENTITY, b"pay 1,000,000 CNY to mallory", forged)
    assert SUITE.verify_many([(IDENTITY, b"anything", forged)]) == [False]


def test_non_canonical_s_is_rejected() -> None:
    keypair = generate_keypair()
    message = b"discount bill 110 at 2.5%"
    signature = keypair.sign(message)
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + L).to_bytes(32, "little")
    assert SUITE.verify(keypair.public_key, message, signature)
    assert not SUITE.verify(keypair.public_key, message, malleated)
    with pytest.raises(CryptoError) as caught:
        SUITE.check_signature_encoding(malleated)
    assert caught.value.code == "NON_CANONICAL_SIGNATURE"
    SUITE.check_signature_encoding(signature)


def test_non_canonical_public_key_encoding_is_refused() -> None:
    # y = p + 1 encodes the same field element as y = 1, non-canonically.
    with pytest.raises(CryptoError) as caught:
        SUITE.check_public_key((P + 1).to_bytes(32, "little"))
    assert caught.value.code == "BAD_PUBLIC_KEY"
    with pytest.raises(CryptoError):
        SUITE.check_public_key(b"\x01" * 31)


def test_ordinary_keys_pass_screening_and_match_openssl() -> None:
    for _ in range(20):
        keypair = generate_keypair()
        SUITE.check_public_key(keypair.public_key)
        message = os.urandom(48)
        signature = keypair.sign(message)
        Ed25519PublicKey.from_public_bytes(keypair.public_key).verify(signature, message)


def test_unknown_suite_is_a_clear_error() -> None:
    with pytest.raises(CryptoError, match="UNKNOWN_SUITE"):
        get_suite("rot13")


def test_key_file_roundtrip_plain_and_encrypted(tmp_path: Path) -> None:
    keypair = generate_keypair()
    write_private_key(tmp_path / "plain.pem", keypair)
    write_private_key(tmp_path / "locked.pem", keypair, passphrase=b"correct horse")
    assert (tmp_path / "plain.pem").stat().st_mode & 0o777 == 0o600
    assert load_private_key(tmp_path / "plain.pem").public_key == keypair.public_key
    loaded = load_private_key(tmp_path / "locked.pem", b"correct horse")
    assert loaded.seed == keypair.seed
    assert b"ENCRYPTED" in (tmp_path / "locked.pem").read_bytes()
    assert keypair.seed.hex() not in repr(keypair)


@pytest.mark.parametrize(
    ("passphrase", "code"),
    [(None, "KEY_PASSPHRASE_REQUIRED"), (b"wrong", "KEY_PASSPHRASE_WRONG")],
)
def test_encrypted_key_needs_the_right_passphrase(
    tmp_path: Path, passphrase: bytes | None, code: str
) -> None:
    write_private_key(tmp_path / "k.pem", generate_keypair(), passphrase=b"right")
    with pytest.raises(KeyFileError) as caught:
        load_private_key(tmp_path / "k.pem", passphrase)
    assert caught.value.code == code


def test_world_readable_private_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    write_private_key(path, generate_keypair())
    path.chmod(0o644)
    with pytest.raises(KeyFileError) as caught:
        load_private_key(path)
    assert caught.value.code == "KEY_FILE_PERMISSIONS"
    assert "chmod 600" in caught.value.message


def test_existing_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    write_private_key(path, generate_keypair())
    with pytest.raises(FileExistsError):
        write_private_key(path, generate_keypair())


def test_garbage_key_file(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"not a key")
    path.chmod(0o600)
    with pytest.raises(KeyFileError) as caught:
        load_private_key(path)
    assert caught.value.code == "KEY_FILE_INVALID"
