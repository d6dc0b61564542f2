"""SM2 private key files: PKCS#8 with the SM2 curve OID, encrypted at rest with SM4.

Theory of operation
-------------------
An SM2 key file is a standard PKCS#8 ``PrivateKeyInfo`` (``BEGIN PRIVATE KEY``): algorithm
id-ecPublicKey with the named curve ``1.2.156.10197.1.301`` (SM2), holding an RFC 5915
``ECPrivateKey`` with the public point.  ``openssl pkey`` (3.x), GmSSL and Tongsuo read it.
``cryptography`` does not know the SM2 curve, so this module encodes and decodes the few DER
fields itself.

With a passphrase the file is a PKCS#8 ``EncryptedPrivateKeyInfo`` under PBES2 (RFC 8018) with
**scrypt** as the key derivation and **SM4-CBC** (GB/T 32907, OID ``1.2.156.10197.1.104.2``)
as the cipher, the same shape as the international scheme in :mod:`keyfile` with SM4 in place
of AES-256.  Why scrypt and not PBKDF2-HMAC-SM3: what protects a stolen key file is the cost of
each passphrase guess, and scrypt's cost is memory (16 MiB per guess at N = 2^14, r = 8), which
GPUs and ASICs cannot cheapen the way they cheapen iterated hashing; the national requirement
bears on the cipher that protects the data (SM4), and no GM/T standard fixes a passphrase KDF
for key files.  OpenSSL 3 decrypts these files too (``openssl pkey -in key.pem``).
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .crypto import KeyFileError
from .sm2 import (
    OID_EC_PUBLIC_KEY,
    OID_SM2,
    Sm2Sm3,
    decode_public_key,
    der,
    der_uint,
    pkcs8_private_key_info,
    subject_public_key_info,
)

_OID_PBES2 = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
_OID_SCRYPT = bytes.fromhex("06092b06010401da47040b")  # 1.3.6.1.4.1.11591.4.11
_OID_SM4_CBC = bytes.fromhex("06082a811ccf55016802")  # 1.2.156.10197.1.104.2
SCHEME_NAME = "pkcs8-pbes2-scrypt-sm4cbc"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 5
_SCRYPT_N_MAX = 2**20  # refuse files that would make a read take minutes or gigabytes
_PEM = re.compile(rb"-----BEGIN ([A-Z ]+)-----\s*(.*?)\s*-----END \1-----", re.S)


@dataclass(frozen=True, slots=True)
class Sm2PrivateKey:
    """An SM2 private key as read from a file: the scalar and its public point."""

    seed: bytes
    public_key: bytes

    def __repr__(self) -> str:  # never print key material
        return "Sm2PrivateKey(...)"


def _pem(label: str, body: bytes) -> bytes:
    text = base64.b64encode(body)
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return (
        b"\n".join([f"-----BEGIN {label}-----".encode(), *lines, f"-----END {label}-----".encode()])
        + b"\n"
    )


def _tlv(data: bytes, offset: int, tag: int) -> tuple[bytes, int]:
    """The content of the DER element of type ``tag`` at ``offset`` and the offset after it."""
    if offset + 2 > len(data) or data[offset] != tag:
        raise ValueError("unexpected DER element")
    size = data[offset + 1]
    start = offset + 2
    if size & 0x80:
        count = size & 0x7F
        if count == 0 or count > 3 or start + count > len(data):
            raise ValueError("bad DER length")
        size = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + size
    if end > len(data):
        raise ValueError("truncated DER")
    return data[start:end], end


def _raw_tlv(data: bytes, offset: int) -> tuple[bytes, int]:
    """The whole element (tag, length and content) at ``offset``."""
    _, end = _tlv(data, offset, data[offset])
    return data[offset:end], end


def _der_int_value(content: bytes) -> int:
    return int.from_bytes(content, "big")


# --- writing -----------------------------------------------------------------------------------


def private_key_pem(seed: bytes, passphrase: bytes | None = None) -> bytes:
    public_key = Sm2Sm3().public_key_from_seed(seed)
    info = pkcs8_private_key_info(seed, public_key)
    if passphrase is None:
        return _pem("PRIVATE KEY", info)
    return _pem("ENCRYPTED PRIVATE KEY", encrypt_pkcs8(info, passphrase))


def encrypt_pkcs8(info: bytes, passphrase: bytes) -> bytes:
    salt, iv = os.urandom(16), os.urandom(16)
    key = Scrypt(salt=salt, length=16, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(info) + padder.finalize()
    encryptor = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    kdf = der(
        0x30,
        _OID_SCRYPT
        + der(
            0x30,
            der(0x04, salt)
            + der_uint(SCRYPT_N)
            + der_uint(SCRYPT_R)
            + der_uint(SCRYPT_P)
            + der_uint(16),
        ),
    )
    cipher = der(0x30, _OID_SM4_CBC + der(0x04, iv))
    algorithm = der(0x30, _OID_PBES2 + der(0x30, kdf + cipher))
    return der(0x30, algorithm + der(0x04, ciphertext))


@dataclass(frozen=True, slots=True)
class Pbes2ScryptSm4:
    """The key-encryption scheme of national-suite key files (see the module docstring)."""

    name: str = SCHEME_NAME

    def encrypt(self, pkcs8_der: bytes, passphrase: bytes) -> bytes:
        return _pem("ENCRYPTED PRIVATE KEY", encrypt_pkcs8(pkcs8_der, passphrase))


PBES2_SCRYPT_SM4 = Pbes2ScryptSm4()


def public_key_pem(public_key: bytes) -> bytes:
    return _pem("PUBLIC KEY", subject_public_key_info(public_key))


# --- reading -----------------------------------------------------------------------------------


def _pem_body(data: bytes) -> tuple[str, bytes] | None:
    match = _PEM.search(data)
    if match is None:
        return None
    try:
        return match.group(1).decode(), base64.b64decode(b"".join(match.group(2).split()))
    except ValueError:
        return None


def _decrypt(body: bytes, passphrase: bytes) -> bytes | None:
    """The PrivateKeyInfo inside an SM4 ``EncryptedPrivateKeyInfo``; None for another cipher."""
    outer, _ = _tlv(body, 0, 0x30)
    algorithm, offset = _tlv(outer, 0, 0x30)
    ciphertext, _ = _tlv(outer, offset, 0x04)
    oid, offset = _raw_tlv(algorithm, 0)
    if oid != _OID_PBES2:
        return None
    params, _ = _tlv(algorithm, offset, 0x30)
    kdf, offset = _tlv(params, 0, 0x30)
    cipher, _ = _tlv(params, offset, 0x30)
    cipher_oid, offset = _raw_tlv(cipher, 0)
    if cipher_oid != _OID_SM4_CBC:
        return None
    iv, _ = _tlv(cipher, offset, 0x04)
    kdf_oid, offset = _raw_tlv(kdf, 0)
    if kdf_oid != _OID_SCRYPT:
        raise ValueError("SM4 key files use scrypt")
    kdf_params, _ = _tlv(kdf, offset, 0x30)
    salt, offset = _tlv(kdf_params, 0, 0x04)
    values = []
    while offset < len(kdf_params):
        content, offset = _tlv(kdf_params, offset, 0x02)
        values.append(_der_int_value(content))
    if len(values) not in (3, 4) or (len(values) == 4 and values[3] != 16):
        raise ValueError("bad scrypt parameters")
    n, r, p = values[:3]
    if not (1 < n <= _SCRYPT_N_MAX and 0 < r <= 32 and 0 < p <= 16) or len(iv) != 16:
        raise ValueError("scrypt parameters out of range")
    key = Scrypt(salt=salt, length=16, n=n, r=r, p=p).derive(passphrase)
    decryptor = Cipher(algorithms.SM4(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _parse_private_key_info(info: bytes) -> Sm2PrivateKey | None:
    """The SM2 key in a PrivateKeyInfo; None when it holds another algorithm."""
    outer, _ = _tlv(info, 0, 0x30)
    _, offset = _tlv(outer, 0, 0x02)
    algorithm, offset = _tlv(outer, offset, 0x30)
    if algorithm != OID_EC_PUBLIC_KEY + OID_SM2:
        return None
    ec_key, _ = _tlv(outer, offset, 0x04)
    body, _ = _tlv(ec_key, 0, 0x30)
    _, inner = _tlv(body, 0, 0x02)
    seed, inner = _tlv(body, inner, 0x04)
    if len(seed) > 32:
        raise ValueError("SM2 private scalar too long")
    seed = seed.rjust(32, b"\x00")
    public_key = Sm2Sm3().public_key_from_seed(seed)
    while inner < len(body):
        tag = body[inner]
        content, inner = _tlv(body, inner, tag)
        if tag == 0xA1:  # the public key, when present, must be the scalar's own
            bits, _ = _tlv(content, 0, 0x03)
            if bits[1:] != public_key:
                raise ValueError("the stored public key does not match the private key")
    decode_public_key(public_key)
    return Sm2PrivateKey(seed, public_key)


def decode_private_key(data: bytes, passphrase: bytes | None, where: str) -> Sm2PrivateKey | None:
    """The SM2 key in PEM ``data``; None when the file holds something else (another algorithm,
    or a cipher other than SM4), so that the caller's standard loader can try it."""
    found = _pem_body(data)
    if found is None:
        return None
    label, body = found
    try:
        if label == "ENCRYPTED PRIVATE KEY":
            if passphrase is None:
                return None  # the caller reports the missing passphrase
            try:
                info = _decrypt(body, passphrase)
            except ValueError:
                from .keyfile import PASSPHRASE_HINT  # keyfile imports this module

                raise KeyFileError(
                    "KEY_PASSPHRASE_WRONG",
                    f"wrong passphrase for {where} (or the file is damaged); {PASSPHRASE_HINT}",
                ) from None
            if info is None:
                return None
            return _parse_private_key_info(info)
        if label == "PRIVATE KEY":
            return _parse_private_key_info(body)
    except (ValueError, IndexError):
        raise KeyFileError("KEY_FILE_INVALID", f"{where} is not a valid SM2 private key") from None
    return None


def decode_public_key_pem(data: bytes) -> bytes | None:
    found = _pem_body(data)
    if found is None or found[0] != "PUBLIC KEY":
        return None
    try:
        outer, _ = _tlv(found[1], 0, 0x30)
        algorithm, offset = _tlv(outer, 0, 0x30)
        if algorithm != OID_EC_PUBLIC_KEY + OID_SM2:
            return None
        bits, _ = _tlv(outer, offset, 0x03)
    except (ValueError, IndexError):
        return None
    if not bits or bits[0] != 0:
        return None
    return bits[1:]
