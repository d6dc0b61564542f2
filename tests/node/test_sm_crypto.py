"""The national suite: GB/T 32905, 32907 and 32918 examples, strict SM2, SM2/SM4 key files, and
the suite contract checked over both suites."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ibledger.node.crypto import (
    SUITE_NAMES,
    CryptoError,
    KeyFileError,
    KeyPair,
    generate_keypair,
    get_suite,
    load_private_key,
    load_public_key_pem,
    public_key_pem,
    write_private_key,
)
from ibledger.node.sm2 import DEFAULT_USER_ID, N, P, encode_point

from .sm_reference import EXAMPLE_CURVE, SM2_CURVE
from .sm_reference import sm3 as reference_sm3

SM2 = get_suite("sm2-sm3")
PASSPHRASE = b"correct horse battery staple"


# --- published examples ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "digest"),
    [
        # GB/T 32905-2016 Appendix A.1 and A.2.
        (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
        (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
    ],
)
def test_sm3_examples(message: bytes, digest: str) -> None:
    assert SM2.hash(message).hex() == digest
    assert reference_sm3(message).hex() == digest


def test_sm3_agrees_with_the_reference_on_every_padding_length() -> None:
    for size in range(0, 130):
        message = bytes(range(size % 256))[:size] or b""
        assert SM2.hash(message) == reference_sm3(message), size


SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


def test_sm4_example() -> None:
    # GB/T 32907-2016 Appendix A.1: key and plaintext are the same block.
    encryptor = Cipher(algorithms.SM4(SM4_KEY), modes.ECB()).encryptor()
    assert encryptor.update(SM4_KEY).hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm4_one_million_rounds() -> None:
    # GB/T 32907-2016 Appendix A.2; well under a second here, so it stays in the default run.
    update = Cipher(algorithms.SM4(SM4_KEY), modes.ECB()).encryptor().update
    block = SM4_KEY
    for _ in range(1_000_000):
        block = update(block)
    assert block.hex() == "595298c7c6fd271f0402f804c33d3f66"


def test_sm2_signature_example_of_the_standard() -> None:
    """GB/T 32918.2 Annex A: user ALICE123@YAHOO.COM signs "message digest" on the example curve.

    The example curve is not the one a chain uses, so this pins the reference implementation
    (Z-value, digest, signing equation) to the standard; the tests below pin OpenSSL's SM2 to
    the reference on the real curve, in both directions."""
    curve = EXAMPLE_CURVE
    d = 0x128B2FA8BD433C6C068C8D803DFF79792A519A55171B1B650C23661D15897263
    user_id = b"ALICE123@YAHOO.COM"
    public = curve.mul(d, (curve.gx, curve.gy))
    assert public == (
        0x0AE4C7798AA0F119471BEE11825BE46202BB79E2A5844495E97C04FF4DF2548A,
        0x7C0240F88F1CD4E16352A73C17B7F16F07353E53A176D684A9FE0C6BB798E857,
    )
    assert curve.z_value(user_id, public).hex() == (
        "f4a38489e32b45b6f876e3ac2168ca392362dc8f23459c1d1146fc3dbfb7bc9a"
    )
    k = 0x6CB28D99385C175C94F94E934817663FC176D925DD72B727260DBAAE1FB2F96F
    r, s = curve.sign(d, user_id, b"message digest", k=k)
    assert r == 0x40F1EC59F793D9F49E09DCEF49130D4194F79FB1EED2CAA55BACDB49C4E755D1
    assert s == 0x6FC6DAC32C5D5CF10C77DFB20F7C2EB667A457872FB09EC56327A67EC7DEEBE7
    assert curve.verify(public, user_id, b"message digest", r, s)


def test_public_key_derivation_matches_the_reference() -> None:
    for _ in range(5):
        keypair = generate_keypair("sm2-sm3")
        d = int.from_bytes(keypair.seed, "big")
        point = SM2_CURVE.mul(d, (SM2_CURVE.gx, SM2_CURVE.gy))
        assert point is not None
        assert keypair.public_key == encode_point(*point)


def test_openssl_signatures_verify_under_the_reference() -> None:
    for size in (0, 1, 250, 1000):
        keypair = generate_keypair("sm2-sm3")
        message = bytes(range(256))[:size] * (1 + size // 256)
        signature = SM2.sign(keypair.seed, message)
        public = (
            int.from_bytes(keypair.public_key[1:33], "big"),
            int.from_bytes(keypair.public_key[33:], "big"),
        )
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        assert SM2_CURVE.verify(public, DEFAULT_USER_ID, message, r, s)
        assert not SM2_CURVE.verify(public, DEFAULT_USER_ID, message + b"!", r, s)


def test_reference_signatures_verify_under_openssl() -> None:
    for size in (0, 250):
        keypair = generate_keypair("sm2-sm3")
        message = b"x" * size
        r, s = SM2_CURVE.sign(int.from_bytes(keypair.seed, "big"), DEFAULT_USER_ID, message)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        assert SM2.verify(keypair.public_key, message, signature)
        assert not SM2.verify(keypair.public_key, message + b"!", signature)
        # Another user id changes Z, so the same (r, s) must not verify under it.
        other = SM2_CURVE.sign(int.from_bytes(keypair.seed, "big"), b"someone else", message)
        assert not SM2.verify(
            keypair.public_key, message, other[0].to_bytes(32, "big") + other[1].to_bytes(32, "big")
        )


# --- strict verification -----------------------------------------------------------------------


def _signed() -> tuple[KeyPair, bytes, bytes]:
    keypair = generate_keypair("sm2-sm3")
    message = b"ibledger strictness"
    return keypair, message, SM2.sign(keypair.seed, message)


@pytest.mark.parametrize(("r", "s"), [(0, 1), (1, 0), (N, 1), (1, N), (N + 1, 1), (2**256 - 1, 1)])
def test_r_and_s_outside_one_to_n_minus_one_are_refused(r: int, s: int) -> None:
    keypair, message, _ = _signed()
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert not SM2.verify(keypair.public_key, message, signature)
    with pytest.raises(CryptoError) as caught:
        SM2.check_signature_encoding(signature)
    assert caught.value.code == "NON_CANONICAL_SIGNATURE"


def test_s_plus_n_is_not_a_second_encoding() -> None:
    # r || (s + n) would verify in an implementation that reduces s; it must not here.
    keypair, message, signature = _signed()
    s = int.from_bytes(signature[32:], "big")
    if s + N < 2**256:
        assert not SM2.verify(
            keypair.public_key, message, signature[:32] + (s + N).to_bytes(32, "big")
        )


@pytest.mark.parametrize("size", [0, 63, 65, 70, 72])
def test_signatures_of_another_length_are_refused(size: int) -> None:
    keypair, message, signature = _signed()
    forged = (signature * 2)[:size]
    assert not SM2.verify(keypair.public_key, message, forged)
    with pytest.raises(CryptoError) as caught:
        SM2.check_signature_encoding(forged)
    assert caught.value.code == "BAD_SIGNATURE_LENGTH"


def test_der_signature_is_not_accepted() -> None:
    from ibledger.node.sm2 import _signature_der

    keypair, message, signature = _signed()
    assert not SM2.verify(keypair.public_key, message, _signature_der(signature))


def _bad_keys() -> list[tuple[str, bytes]]:
    good = generate_keypair("sm2-sm3").public_key
    x = int.from_bytes(good[1:33], "big")
    y = int.from_bytes(good[33:], "big")
    return [
        ("infinity", b"\x04" + bytes(64)),
        ("single zero byte", b"\x00"),
        ("off the curve", encode_point(x, (y + 1) % P)),
        (
            "x not below p",
            b"\x04" + (x + P).to_bytes(32, "big")
            if x + P < 2**256
            else b"\x04" + P.to_bytes(32, "big") + good[33:],
        ),
        (
            "y not below p",
            b"\x04" + good[1:33] + (y + P).to_bytes(32, "big")
            if y + P < 2**256
            else b"\x04" + good[1:33] + P.to_bytes(32, "big"),
        ),
        ("compressed", bytes([2 + (y & 1)]) + good[1:33]),
        ("hybrid", bytes([6 + (y & 1)]) + good[1:]),
        ("raw x || y", good[1:]),
    ]


@pytest.mark.parametrize(
    ("why", "public_key"), _bad_keys(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_malformed_public_keys_are_refused(why: str, public_key: bytes) -> None:
    with pytest.raises(CryptoError):
        SM2.check_public_key(public_key)
    _, message, signature = _signed()
    assert not SM2.verify(public_key, message, signature)


def test_private_scalar_range() -> None:
    for seed in (bytes(32), (N - 1).to_bytes(32, "big"), N.to_bytes(32, "big"), b"\x01" * 31):
        with pytest.raises(CryptoError) as caught:
            SM2.public_key_from_seed(seed)
        assert caught.value.code == "BAD_PRIVATE_KEY"


# --- the suite contract, over both suites --------------------------------------------------------


@pytest.fixture(params=SUITE_NAMES)
def suite_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_suite_signs_verifies_and_rejects_tampering(suite_name: str) -> None:
    suite = get_suite(suite_name)
    keypair = generate_keypair(suite_name)
    suite.check_public_key(keypair.public_key)
    assert len(keypair.public_key) == suite.public_key_size
    message = b"payload"
    signature = keypair.sign(message)
    assert len(signature) == suite.signature_size
    suite.check_signature_encoding(signature)
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    other = generate_keypair(suite_name)
    assert suite.verify_many(
        [
            (keypair.public_key, message, signature),
            (keypair.public_key, message + b"x", signature),
            (keypair.public_key, message, flipped),
            (other.public_key, message, signature),
            (keypair.public_key, message, signature[:-1]),
            (keypair.public_key[:-1], message, signature),
        ]
    ) == [True, False, False, False, False, False]
    assert len(suite.hash(b"")) == 32
    assert keypair.key_id == suite.hash(keypair.public_key)[:16]


def test_suite_key_files_roundtrip(tmp_path: Path, suite_name: str) -> None:
    keypair = generate_keypair(suite_name)
    write_private_key(tmp_path / "plain.pem", keypair)
    write_private_key(tmp_path / "locked.pem", keypair, PASSPHRASE)
    assert load_private_key(tmp_path / "plain.pem") == keypair
    assert load_private_key(tmp_path / "locked.pem", PASSPHRASE) == keypair
    with pytest.raises(KeyFileError) as caught:
        load_private_key(tmp_path / "locked.pem", b"wrong")
    assert caught.value.code == "KEY_PASSPHRASE_WRONG"
    assert "--passphrase-file" in caught.value.message  # says how to give the right one
    with pytest.raises(KeyFileError) as caught:
        load_private_key(tmp_path / "locked.pem")
    assert caught.value.code == "KEY_PASSPHRASE_REQUIRED"
    with pytest.raises(KeyFileError) as caught:
        load_private_key(tmp_path / "plain.pem", require_encrypted=True)
    assert caught.value.code == "KEY_NOT_ENCRYPTED"
    assert load_public_key_pem(public_key_pem(keypair.public_key, suite_name)) == (
        suite_name,
        keypair.public_key,
    )


def test_a_key_of_the_other_suite_is_refused_by_name(tmp_path: Path, suite_name: str) -> None:
    other = next(name for name in SUITE_NAMES if name != suite_name)
    write_private_key(tmp_path / "k.pem", generate_keypair(other))
    with pytest.raises(CryptoError) as caught:
        load_private_key(tmp_path / "k.pem", suite=suite_name)
    assert caught.value.code == "SUITE_MISMATCH"
    assert other in caught.value.message and suite_name in caught.value.message


# --- key files other tools read -----------------------------------------------------------------


def test_sm2_key_files_are_pkcs8_with_the_sm2_oid_and_sm4(tmp_path: Path) -> None:
    keypair = generate_keypair("sm2-sm3")
    write_private_key(tmp_path / "plain.pem", keypair)
    write_private_key(tmp_path / "locked.pem", keypair, PASSPHRASE)
    assert (tmp_path / "plain.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    locked = (tmp_path / "locked.pem").read_bytes()
    assert locked.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    import base64

    body = base64.b64decode(b"".join(locked.splitlines()[1:-1]))
    assert bytes.fromhex("06082a811ccf55016802") in body  # SM4-CBC
    assert bytes.fromhex("06092b06010401da47040b") in body  # scrypt
    plain = base64.b64decode(b"".join((tmp_path / "plain.pem").read_bytes().splitlines()[1:-1]))
    assert bytes.fromhex("06082a811ccf5501822d") in plain  # the SM2 curve


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
def test_openssl_reads_sm2_key_files(tmp_path: Path) -> None:
    keypair = generate_keypair("sm2-sm3")
    write_private_key(tmp_path / "plain.pem", keypair)
    write_private_key(tmp_path / "locked.pem", keypair, PASSPHRASE)
    (tmp_path / "pass").write_bytes(PASSPHRASE)
    for name, extra in (
        ("plain.pem", []),
        ("locked.pem", ["-passin", f"file:{tmp_path / 'pass'}"]),
    ):
        shown = subprocess.run(
            ["openssl", "pkey", "-in", str(tmp_path / name), "-pubout", *extra],
            capture_output=True,
            check=True,
        ).stdout
        assert load_public_key_pem(shown) == ("sm2-sm3", keypair.public_key)
