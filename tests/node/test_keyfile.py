"""node/keyfile.py: encrypted PKCS#8 key files (PBES2, scrypt, AES-256-CBC) and their errors,
through the loaders that use them (signing keys, TLS and CA keys, node.toml)."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ibledger.cli import main as cli_main
from ibledger.node import keyfile, pki
from ibledger.node.config import ConfigError, load_node_config
from ibledger.node.crypto import (
    KeyFileError,
    generate_keypair,
    load_private_key,
    write_private_key,
)

PASSPHRASE = b"correct horse battery staple"


def _der(pem: bytes) -> bytes:
    lines = [line for line in pem.splitlines() if line and not line.startswith(b"-----")]
    return base64.b64decode(b"".join(lines))


def test_encrypted_file_is_pbes2_scrypt_aes256_and_loads_with_the_standard_loader(
    tmp_path: Path,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "tls.key"
    keyfile.write_key_file(path, key, PASSPHRASE)
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert path.stat().st_mode & 0o777 == 0o600
    der = _der(data)
    assert bytes.fromhex("06092a864886f70d01050d") in der  # PBES2
    assert bytes.fromhex("06092b06010401da47040b") in der  # scrypt
    assert bytes.fromhex("060960864801650304012a") in der  # AES-256-CBC
    assert bytes.fromhex("020240000201080201 05".replace(" ", "")) in der  # N=2^14, r=8, p=5
    loaded = serialization.load_pem_private_key(data, password=PASSPHRASE)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.private_numbers() == key.private_numbers()
    secret = key.private_numbers().private_value.to_bytes(32, "big")
    assert secret not in der


def test_two_encryptions_of_one_key_differ(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    first = keyfile.private_key_to_pem(key, PASSPHRASE)
    second = keyfile.private_key_to_pem(key, PASSPHRASE)
    assert first != second  # fresh salt and IV every time


def test_signing_key_roundtrip_and_keys_written_before_still_load(tmp_path: Path) -> None:
    keypair = generate_keypair()
    write_private_key(tmp_path / "new.pem", keypair, PASSPHRASE)
    assert load_private_key(tmp_path / "new.pem", PASSPHRASE).seed == keypair.seed
    # The earlier format: PKCS#8 from cryptography's BestAvailableEncryption (PBKDF2).
    old = Ed25519PrivateKey.from_private_bytes(keypair.seed).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE),
    )
    (tmp_path / "old.pem").write_bytes(old)
    (tmp_path / "old.pem").chmod(0o600)
    loaded = load_private_key(tmp_path / "old.pem", PASSPHRASE, require_encrypted=True)
    assert loaded.seed == keypair.seed


@pytest.mark.parametrize(
    ("passphrase", "code"),
    [(None, "KEY_PASSPHRASE_REQUIRED"), (b"not the passphrase", "KEY_PASSPHRASE_WRONG")],
)
def test_missing_or_wrong_passphrase_names_the_file_and_what_to_do(
    tmp_path: Path, passphrase: bytes | None, code: str
) -> None:
    path = tmp_path / "validator.key.pem"
    write_private_key(path, generate_keypair(), PASSPHRASE)
    with pytest.raises(KeyFileError) as caught:
        load_private_key(path, passphrase)
    assert caught.value.code == code
    assert str(path) in caught.value.message
    assert "--passphrase-file" in caught.value.message
    assert PASSPHRASE.decode() not in str(caught.value)
    if passphrase is not None:
        assert passphrase.decode() not in str(caught.value)


def test_plaintext_key_where_encryption_is_required_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "validator.key.pem"
    write_private_key(path, generate_keypair())
    with pytest.raises(KeyFileError) as caught:
        load_private_key(path, PASSPHRASE, require_encrypted=True)
    assert caught.value.code == "KEY_NOT_ENCRYPTED"
    assert str(path) in caught.value.message
    tls = tmp_path / "node.key"
    pki.write_private_key_pem(tls, ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(pki.PkiError, match="not encrypted"):
        pki.read_private_key(tls, PASSPHRASE, require_encrypted=True)
    # Without the requirement a plaintext key loads as before, a surplus passphrase or not.
    assert isinstance(pki.read_private_key(tls, PASSPHRASE), ec.EllipticCurvePrivateKey)


def test_encrypted_tls_and_ca_keys_need_their_passphrase(tmp_path: Path) -> None:
    ca = pki.create_ca("test CA")
    ca.write(tmp_path / "ca", PASSPHRASE)
    with pytest.raises(pki.PkiError, match="is encrypted"):
        pki.load_ca(tmp_path / "ca")
    with pytest.raises(pki.PkiError, match="wrong passphrase"):
        pki.load_ca(tmp_path / "ca", b"guess")
    loaded = pki.load_ca(tmp_path / "ca", PASSPHRASE)
    assert loaded.certificate == ca.certificate
    node = pki.issue_node_certificate(loaded, "node0")
    node.write(tmp_path / "node.crt", tmp_path / "node.key", PASSPHRASE)
    assert (tmp_path / "node.key").read_bytes().startswith(keyfile.ENCRYPTED_PEM_LABEL)
    with pytest.raises(pki.PkiError, match="is encrypted"):
        pki.load_node_certificate(tmp_path / "node.crt", tmp_path / "node.key")
    again = pki.load_node_certificate(tmp_path / "node.crt", tmp_path / "node.key", PASSPHRASE)
    assert again.node_id == "node0"


@pytest.mark.parametrize("mode", [0o640, 0o604])
def test_group_or_world_readable_encrypted_key_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k.pem"
    write_private_key(path, generate_keypair(), PASSPHRASE)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as caught:
        load_private_key(path, PASSPHRASE)
    assert caught.value.code == "KEY_FILE_PERMISSIONS"
    assert f"chmod 600 {path}" in caught.value.message


def test_passphrase_file_rules(tmp_path: Path) -> None:
    path = tmp_path / "pass"
    path.write_bytes(PASSPHRASE + b"\n")
    path.chmod(0o600)
    assert keyfile.read_passphrase_file(path) == PASSPHRASE
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        keyfile.read_passphrase_file(path)
    path.write_bytes(b"\n")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="is empty"):
        keyfile.read_passphrase_file(path)
    with pytest.raises(KeyFileError, match="cannot read"):
        keyfile.read_passphrase_file(tmp_path / "absent")
    with pytest.raises(KeyFileError) as caught:
        keyfile.private_key_to_pem(Ed25519PrivateKey.generate(), b"")
    assert caught.value.code == "PASSPHRASE_EMPTY"


def test_an_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(KeyFileError) as caught:
        keyfile.private_key_to_pem(Ed25519PrivateKey.generate(), PASSPHRASE, scheme="sm4-cbc")
    assert caught.value.code == "UNKNOWN_KEY_SCHEME"


# --- node.toml ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encrypted_network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("enc") / "network"
    pass_file = directory.parent / "pass"
    pass_file.write_bytes(PASSPHRASE)
    pass_file.chmod(0o600)
    arguments = ["network", "init", "--dir", str(directory), "--nodes", "1", "--encrypt"]
    assert cli_main.main([*arguments, "--passphrase-file", str(pass_file)]) == 0
    return directory


def _copy(network_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "network"
    shutil.copytree(network_dir, target)
    return target / "nodes" / "node0" / "node.toml"


def test_node_config_decrypts_each_key_once_and_keeps_tls_in_memory(
    encrypted_network: Path, tmp_path: Path
) -> None:
    config_path = _copy(encrypted_network, tmp_path)
    asked: list[Path] = []

    def ask(key_file: Path) -> bytes:
        asked.append(key_file)
        return PASSPHRASE

    config = load_node_config(config_path, ask_passphrase=ask)
    assert len(asked) == 1  # one prompt serves the validator and the TLS key
    assert config.keys.encrypted
    assert config.tls_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert "tls_key_pem" not in repr(config) and PASSPHRASE.decode() not in repr(config)
    # TLS credentials come from memory: the key file is not read again after startup.
    config.peer.tls_key.unlink()
    pki.server_credentials(config)
    pki.channel_credentials(config)


def test_node_config_refuses_missing_wrong_or_plaintext_keys(
    encrypted_network: Path, tmp_path: Path
) -> None:
    config_path = _copy(encrypted_network, tmp_path)
    with pytest.raises(ConfigError, match="is encrypted: give its passphrase"):
        load_node_config(config_path)
    with pytest.raises(ConfigError, match=r"wrong passphrase for .*validator\.key\.pem"):
        load_node_config(config_path, passphrase=b"guess")
    # A plaintext key put in place of the encrypted one is refused, not used.
    validator_key = config_path.parent / "keys" / "validator.key.pem"
    keypair = load_private_key(validator_key, PASSPHRASE)
    validator_key.unlink()
    write_private_key(validator_key, keypair)
    with pytest.raises(ConfigError, match=r"validator_key: .* is not encrypted"):
        load_node_config(config_path, passphrase=PASSPHRASE)


def test_node_config_reads_keys_passphrase_file(encrypted_network: Path, tmp_path: Path) -> None:
    config_path = _copy(encrypted_network, tmp_path)
    pass_file = tmp_path / "node.pass"
    pass_file.write_bytes(PASSPHRASE + b"\n")
    pass_file.chmod(0o600)
    text = config_path.read_text()
    config_path.write_text(text + f'passphrase_file = "{pass_file}"\n')
    assert load_node_config(config_path).validator_keypair.public_key
    pass_file.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_node_config(config_path)
