"""Private key files at rest: the one place that writes, encrypts, reads and decrypts them.

Theory of operation
-------------------
Every private key ibledger writes (the consortium CA key, node TLS keys, validator signing keys,
participant signing keys) is a PKCS#8 PEM file created with mode 0600, never overwritten, and
refused on read when its group or other users may open it.

With a passphrase the file is a PKCS#8 ``EncryptedPrivateKeyInfo`` (``BEGIN ENCRYPTED PRIVATE
KEY``) under PBES2 (RFC 8018) with scrypt (RFC 7914) as the key derivation and AES-256-CBC as
the cipher. ``cryptography``'s ``BestAvailableEncryption`` would write PBES2 with
PBKDF2-HMAC-SHA256 at only 2048 iterations, which a GPU guesses through quickly, and its
``encryption_builder()`` does not apply to PKCS#8; so this module encodes the PBES2 structure
itself (a few fixed DER fields) while ``cryptography`` does the scrypt and AES, and reading goes
through ``cryptography``'s standard PKCS#8 loader, as does ``openssl pkey``. The scrypt cost
(N = 2^14, r = 8, p = 5) is OWASP's recommended strength at 16 MiB of memory, within the
32 MiB limit OpenSSL enforces when it decrypts; a derivation takes a fraction of a second, so
callers decrypt a key once per process and keep it in memory.

Reading accepts any PKCS#8 PEM ``cryptography`` understands, so keys written before (plain, or
encrypted by ``BestAvailableEncryption``) keep loading.

A scheme is a value with a name and an ``encrypt`` from PKCS#8 DER to PEM; the national-crypto
scheme (scrypt and SM4-CBC, in :mod:`keyfile_sm`, with SM2 keys) registers beside
:data:`PBES2_SCRYPT_AES256` in ``_SCHEMES``.
Errors are :class:`KeyFileError` with a stable code and a sentence naming the file and what to
do; they never carry key material or the passphrase.
"""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .crypto import KeyFileError
from .keyfile_sm import PBES2_SCRYPT_SM4, Sm2PrivateKey
from .keyfile_sm import decode_private_key as decode_sm2_private_key

PASSPHRASE_HINT = (
    "give its passphrase with --passphrase-file FILE or $IBLEDGER_PASSPHRASE "
    "(or type it when asked in a terminal)"
)
ENCRYPTED_PEM_LABEL = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
PASSPHRASE_BYTES_MAX = 1024


class KeyEncryptionScheme(Protocol):
    """How a private key file is encrypted under a passphrase."""

    @property
    def name(self) -> str: ...

    def encrypt(self, pkcs8_der: bytes, passphrase: bytes) -> bytes:
        """The PEM file content for an unencrypted PKCS#8 DER private key."""
        ...


# --- PBES2 with scrypt and AES-256-CBC, DER-encoded by hand --------------------------------------

_OID_PBES2 = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
_OID_SCRYPT = bytes.fromhex("06092b06010401da47040b")  # 1.3.6.1.4.1.11591.4.11
_OID_AES256_CBC = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _der_int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _der_seq(*items: bytes) -> bytes:
    return _der(0x30, b"".join(items))


def _der_octets(data: bytes) -> bytes:
    return _der(0x04, data)


def _pem(label: str, der: bytes) -> bytes:
    body = base64.b64encode(der)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        b"\n".join([f"-----BEGIN {label}-----".encode(), *lines, f"-----END {label}-----".encode()])
        + b"\n"
    )


@dataclass(frozen=True, slots=True)
class Pbes2ScryptAes256:
    """PKCS#8 PBES2: scrypt key derivation, AES-256-CBC; readable by any PKCS#8 loader."""

    name: str = "pkcs8-pbes2-scrypt-aes256cbc"
    scrypt_n: int = 2**14
    scrypt_r: int = 8
    scrypt_p: int = 5

    def encrypt(self, pkcs8_der: bytes, passphrase: bytes) -> bytes:
        salt, iv = os.urandom(16), os.urandom(16)
        key = Scrypt(
            salt=salt, length=32, n=self.scrypt_n, r=self.scrypt_r, p=self.scrypt_p
        ).derive(passphrase)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(pkcs8_der) + padder.finalize()
        encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(padded) + encryptor.finalize()
        kdf = _der_seq(
            _OID_SCRYPT,
            _der_seq(
                _der_octets(salt),
                _der_int(self.scrypt_n),
                _der_int(self.scrypt_r),
                _der_int(self.scrypt_p),
            ),
        )
        cipher = _der_seq(_OID_AES256_CBC, _der_octets(iv))
        algorithm = _der_seq(_OID_PBES2, _der_seq(kdf, cipher))
        return _pem("ENCRYPTED PRIVATE KEY", _der_seq(algorithm, _der_octets(ciphertext)))


PBES2_SCRYPT_AES256 = Pbes2ScryptAes256()
_SCHEMES: dict[str, KeyEncryptionScheme] = {
    PBES2_SCRYPT_AES256.name: PBES2_SCRYPT_AES256,
    PBES2_SCRYPT_SM4.name: PBES2_SCRYPT_SM4,
}
DEFAULT_SCHEME = PBES2_SCRYPT_AES256.name


def get_scheme(name: str) -> KeyEncryptionScheme:
    scheme = _SCHEMES.get(name)
    if scheme is None:
        known = ", ".join(sorted(_SCHEMES))
        raise KeyFileError(
            "UNKNOWN_KEY_SCHEME", f"unknown key encryption {name!r} (known: {known})"
        )
    return scheme


# --- writing -------------------------------------------------------------------------------------


def check_passphrase(passphrase: bytes) -> None:
    if not passphrase:
        raise KeyFileError("PASSPHRASE_EMPTY", "the passphrase is empty")
    if len(passphrase) > PASSPHRASE_BYTES_MAX:
        raise KeyFileError(
            "PASSPHRASE_TOO_LONG", f"the passphrase is longer than {PASSPHRASE_BYTES_MAX} bytes"
        )


def private_key_to_pem(
    key: PrivateKeyTypes, passphrase: bytes | None = None, *, scheme: str = DEFAULT_SCHEME
) -> bytes:
    """PKCS#8 PEM of ``key``; encrypted under ``passphrase`` when one is given."""
    if passphrase is None:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    check_passphrase(passphrase)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return get_scheme(scheme).encrypt(der, passphrase)


def write_key_file(path: Path, key: PrivateKeyTypes, passphrase: bytes | None = None) -> None:
    """Write ``key`` as a new file readable by its owner only; refuses to overwrite one."""
    data = private_key_to_pem(key, passphrase)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


# --- reading -------------------------------------------------------------------------------------


def _read_owner_only(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError("KEY_FILE_MISSING", f"no key file at {path}") from None
    except OSError as exc:
        raise KeyFileError("KEY_FILE_UNREADABLE", f"cannot read {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            "KEY_FILE_PERMISSIONS",
            f"{path} is open to its group or to every user (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}",
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError("KEY_FILE_UNREADABLE", f"cannot read {path}: {exc.strerror}") from None


def is_encrypted_pem(data: bytes) -> bool:
    return data.lstrip().startswith(ENCRYPTED_PEM_LABEL) or b"Proc-Type: 4,ENCRYPTED" in data


def key_file_is_encrypted(path: Path) -> bool:
    """True when ``path`` holds an encrypted PEM key (False when it is missing or plain)."""
    try:
        with path.open("rb") as handle:
            return is_encrypted_pem(handle.read(4096))
    except OSError:
        return False


def read_key_file(
    path: Path, passphrase: bytes | None = None, *, require_encrypted: bool = False
) -> PrivateKeyTypes:
    """Read a private key file, refusing one its group or other users of the machine can open.

    ``require_encrypted`` refuses a plaintext file: a node configured for encrypted keys never
    falls back to an unencrypted one put in its place.
    """
    return _load_key(path, _read_owner_only(path), passphrase, require_encrypted)


def read_signing_key_file(
    path: Path, passphrase: bytes | None = None, *, require_encrypted: bool = False
) -> PrivateKeyTypes | Sm2PrivateKey:
    """``read_key_file`` that also reads SM2 keys (plain, or under the SM4 scheme), which
    ``cryptography`` does not know."""
    data = _read_owner_only(path)
    if not is_encrypted_pem(data) and require_encrypted:
        return _load_key(path, data, passphrase, require_encrypted)
    national = decode_sm2_private_key(data, passphrase, str(path))
    if national is not None:
        return national
    return _load_key(path, data, passphrase, require_encrypted)


def _load_key(
    path: Path, data: bytes, passphrase: bytes | None, require_encrypted: bool
) -> PrivateKeyTypes:
    encrypted = is_encrypted_pem(data)
    if not encrypted and require_encrypted:
        raise KeyFileError(
            "KEY_NOT_ENCRYPTED",
            f"{path} is not encrypted, but this configuration requires encrypted keys; "
            "replace it with an encrypted key (e.g. 'ibledger network init --encrypt')",
        )
    if encrypted and passphrase is None:
        raise KeyFileError("KEY_PASSPHRASE_REQUIRED", f"{path} is encrypted: {PASSPHRASE_HINT}")
    try:
        # A passphrase for a plaintext key is surplus, not an error: one passphrase serves a
        # whole network, and only require_encrypted decides whether plaintext is acceptable.
        return serialization.load_pem_private_key(data, password=passphrase if encrypted else None)
    except TypeError:
        raise KeyFileError("KEY_FILE_INVALID", f"{path} is not a usable PEM private key") from None
    except ValueError:
        if encrypted:
            raise KeyFileError(
                "KEY_PASSPHRASE_WRONG",
                f"wrong passphrase for {path} (or the file is damaged); {PASSPHRASE_HINT}",
            ) from None
        raise KeyFileError("KEY_FILE_INVALID", f"{path} is not a PEM private key") from None
    except UnsupportedAlgorithm:
        raise KeyFileError("KEY_FILE_INVALID", f"{path} uses an unsupported algorithm") from None


def read_passphrase_file(path: Path) -> bytes:
    """The passphrase a file holds (one trailing newline dropped); the file must be 0600."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(
            "PASSPHRASE_FILE", f"cannot read the passphrase file {path}: {exc.strerror}"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            "PASSPHRASE_FILE",
            f"the passphrase file {path} is open to its group or to every user "
            f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}",
        )
    passphrase = data[:-2] if data.endswith(b"\r\n") else data.removesuffix(b"\n")
    if not passphrase:
        raise KeyFileError("PASSPHRASE_FILE", f"the passphrase file {path} is empty")
    check_passphrase(passphrase)
    return passphrase
