"""The validator sets by height (node/epochs.py) and their signing domains (node/signing.py).

The table read from the ledger's state names the set of each height; a commit certificate
verifies only by the set of its block's height and under that set's domain, so a certificate of
the genesis set means nothing above a change, and one of the next set nothing below it."""

from __future__ import annotations

import pytest

from ibledger.consensus import CommitCertificate, encode_commit_certificate
from ibledger.consensus.certificates import KIND_COMMIT, _vote
from ibledger.contracts.codec import canonical_encode
from ibledger.contracts.membership import epoch_key
from ibledger.node.addresses import HostPort
from ibledger.node.crypto import KeyPair, generate_keypair, get_suite
from ibledger.node.epochs import EpochError, EpochTable, ValidatorSet, certificate_check
from ibledger.node.signing import ValidatorSigner, ValidatorVerifier
from ibledger.node.validator_set import ValidatorInfo

SUITE = get_suite("ed25519-sha256")


def _info(node_id: str, key: KeyPair, n: int) -> ValidatorInfo:
    return ValidatorInfo(
        node_id, key.public_key, HostPort("10.0.0.1", 7200 + n), HostPort("10.0.0.1", 7100 + n)
    )


KEYS = {f"node{n}": generate_keypair("ed25519-sha256") for n in range(5)}
GENESIS = tuple(_info(f"node{n}", KEYS[f"node{n}"], n) for n in range(4))
NEXT = (GENESIS[0], GENESIS[1], GENESIS[2], _info("node4", KEYS["node4"], 4))


class _State:
    def __init__(self, records: dict[bytes, bytes]) -> None:
        self._records = dict(sorted(records.items()))

    def scan(self, prefix: bytes):  # type: ignore[no-untyped-def]
        return iter([(k, v) for k, v in self._records.items() if k.startswith(prefix)])


def _record(epoch: int, from_height: int, validators: tuple[ValidatorInfo, ...]) -> bytes:
    return canonical_encode(
        {
            "epoch": epoch,
            "from_height": from_height,
            "scheduled_at": 0,
            "change": {},
            "validators": [
                {
                    "id": v.id,
                    "public_key": v.public_key,
                    "peer_address": f"{v.peer_address.host}:{v.peer_address.port}",
                    "api_address": f"{v.api_address.host}:{v.api_address.port}",
                }
                for v in validators
            ],
        }
    )


def _table() -> EpochTable:
    return EpochTable.from_state(
        _State({epoch_key(0): _record(0, 0, GENESIS), epoch_key(1): _record(1, 41, NEXT)}),
        GENESIS,
    )


def test_the_table_names_the_set_of_each_height() -> None:
    table = _table()
    assert table.at(0).epoch == table.at(40).epoch == 0
    assert table.at(41).epoch == table.at(10_000).epoch == 1
    assert table.at(41).members == ("node0", "node1", "node2", "node4")
    assert table.at(41).validator("node4") == NEXT[3]
    assert table.ever_member("node3") and table.ever_member("node4")
    assert not table.ever_member("node5")


def test_a_state_without_records_has_the_genesis_set_alone() -> None:
    table = EpochTable.from_state(_State({}), GENESIS)
    assert [s.epoch for s in table.sets] == [0]
    assert table.at(5).validators == GENESIS


def test_a_table_with_a_gap_or_a_height_out_of_order_is_refused() -> None:
    with pytest.raises(EpochError, match="does not follow"):
        EpochTable([ValidatorSet(0, 0, GENESIS), ValidatorSet(2, 41, NEXT)])
    with pytest.raises(EpochError, match="does not follow"):
        EpochTable([ValidatorSet(0, 0, GENESIS), ValidatorSet(1, 0, NEXT)])
    with pytest.raises(EpochError, match="does not read"):
        EpochTable.from_state(_State({epoch_key(0): b"\x01"}), GENESIS)


def test_a_signature_of_one_set_does_not_verify_for_another() -> None:
    data = b"a consensus message"
    epoch1 = ValidatorSigner("node0", KEYS["node0"], SUITE, epoch=1).sign(data)
    keys = {"node0": KEYS["node0"].public_key}
    assert ValidatorVerifier(keys, SUITE, epoch=1).verify("node0", data, epoch1)
    assert not ValidatorVerifier(keys, SUITE, epoch=0).verify("node0", data, epoch1)
    assert not ValidatorVerifier(keys, SUITE, epoch=2).verify("node0", data, epoch1)
    # Epoch 0 signs the bare bytes, as before sets could change.
    bare = SUITE.sign(KEYS["node0"].seed, data)
    assert ValidatorSigner("node0", KEYS["node0"], SUITE).sign(data) == bare


class _Header:
    def __init__(self, height: int) -> None:
        self.height = height

    def consensus_digest(self, hash_fn: object) -> bytes:
        return b"d" * 32


def _certificate(epoch: int, signers: tuple[str, ...], seq: int) -> bytes:
    digest = b"d" * 32
    signatures = tuple(
        (r, ValidatorSigner(r, KEYS[r], SUITE, epoch).sign(_vote(KIND_COMMIT, r, 0, seq, digest)))
        for r in signers
    )
    return encode_commit_certificate(CommitCertificate(0, seq, digest, signatures))


def test_a_commit_certificate_verifies_only_by_the_set_of_its_height() -> None:
    check = certificate_check(_table(), SUITE)
    old = ("node0", "node1", "node3")
    new = ("node0", "node1", "node4")
    assert check(_Header(40), b"", _certificate(0, old, 40))
    assert not check(_Header(41), b"", _certificate(0, old, 41))  # the old set's, above the change
    assert check(_Header(41), b"", _certificate(1, new, 41))
    assert not check(_Header(40), b"", _certificate(1, new, 40))  # the new set's, below it
    # node4 was never in the genesis set: its signature cannot complete an old certificate.
    assert not check(_Header(40), b"", _certificate(0, new, 40))
