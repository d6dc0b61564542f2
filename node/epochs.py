"""The validator sets of a chain by height, as the ledger's state records them.

``contracts/membership.py`` keeps one record per epoch: the whole validator set and the height
it orders from. This module reads them for the node: which set signs (and so certifies) the
block at a height, its keys, its addresses and its fault bound. Epoch records are only ever
added, each at least a watermark window before it takes effect, so the table read from the state
at the tip answers for every height up to the tip and for the blocks the current set orders.

A ledger written before the membership contract (or from a genesis without its sections) holds
no records; its one set is the genesis validators, from height 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ibledger.consensus import decode_commit_certificate, verify_commit_certificate
from ibledger.contracts.codec import CodecError, canonical_decode
from ibledger.contracts.membership import EPOCH_PREFIX, epoch_from_stored

from .addresses import HostPort, parse_host_port
from .crypto import CryptoSuite
from .signing import ValidatorVerifier
from .validator_set import ValidatorInfo

__all__ = ["EpochError", "EpochTable", "ValidatorSet", "certificate_check"]


class EpochError(Exception):
    """An epoch record that does not read: the state is damaged or was not written by us."""


class StateScan(Protocol):
    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """One epoch's validators, in their genesis or governance order."""

    epoch: int
    from_height: int
    validators: tuple[ValidatorInfo, ...]

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(v.id for v in self.validators)

    @property
    def f(self) -> int:
        return (len(self.validators) - 1) // 3

    @property
    def public_keys(self) -> dict[str, bytes]:
        return {v.id: v.public_key for v in self.validators}

    @property
    def peer_addresses(self) -> dict[str, str]:
        return {v.id: f"{v.peer_address.host}:{v.peer_address.port}" for v in self.validators}

    def verifier(self, suite: CryptoSuite) -> ValidatorVerifier:
        return ValidatorVerifier(self.public_keys, suite, self.epoch)

    def validator(self, node_id: str) -> ValidatorInfo | None:
        return next((v for v in self.validators if v.id == node_id), None)


class EpochTable:
    """Every validator set of the chain, by the height it orders from."""

    def __init__(self, sets: Iterable[ValidatorSet]) -> None:
        ordered = sorted(sets, key=lambda s: s.epoch)
        if not ordered or ordered[0].epoch != 0 or ordered[0].from_height != 0:
            raise EpochError("the epoch table must start with epoch 0 at height 0")
        for before, after in itertools.pairwise(ordered):
            if after.epoch != before.epoch + 1 or after.from_height <= before.from_height:
                raise EpochError(
                    f"epoch {after.epoch} (from height {after.from_height}) does not follow "
                    f"epoch {before.epoch} (from height {before.from_height})"
                )
        self.sets: tuple[ValidatorSet, ...] = tuple(ordered)

    @classmethod
    def genesis(cls, validators: Sequence[ValidatorInfo]) -> EpochTable:
        return cls([ValidatorSet(0, 0, tuple(validators))])

    @classmethod
    def from_state(cls, state: StateScan, genesis: Sequence[ValidatorInfo]) -> EpochTable:
        """The table the ledger state records; the genesis set alone if it records none."""
        sets = []
        for key, raw in state.scan(EPOCH_PREFIX):
            try:
                epoch = epoch_from_stored(canonical_decode(raw))
                validators = tuple(
                    ValidatorInfo(
                        v.id, v.public_key, _address(v.api_address), _address(v.peer_address)
                    )
                    for v in epoch.validators
                )
            except (CodecError, KeyError, TypeError, ValueError) as exc:
                raise EpochError(f"the epoch record {key!r} does not read: {exc}") from exc
            sets.append(ValidatorSet(epoch.number, epoch.from_height, validators))
        if not sets:
            return cls.genesis(genesis)
        return cls(sets)

    @property
    def latest(self) -> ValidatorSet:
        return self.sets[-1]

    def at(self, height: int) -> ValidatorSet:
        """The set that orders (and certifies) the block at ``height``."""
        found = self.sets[0]
        for candidate in self.sets:
            if candidate.from_height > height:
                break
            found = candidate
        return found

    def ever_member(self, node_id: str) -> bool:
        return any(s.validator(node_id) is not None for s in self.sets)


def _address(text: str) -> HostPort:
    return parse_host_port(text)


def certificate_check(
    table: EpochTable | Callable[[], EpochTable], suite: CryptoSuite
) -> Callable[[object, bytes, bytes], bool]:
    """How a stored or fetched block's commit certificate is checked: 2f+1 signatures of the
    set that ordered its height, under that set's domain. ``table`` may be a callable, read at
    each check, for a table that grows as the chain does."""
    verifiers: dict[int, ValidatorVerifier] = {}

    def check(header: object, block_hash: bytes, certificate: bytes) -> bool:
        try:
            cert = decode_commit_certificate(certificate)
        except ValueError:
            return False
        current = table() if callable(table) else table
        validator_set = current.at(header.height)  # type: ignore[attr-defined]
        verifier = verifiers.get(validator_set.epoch)
        if verifier is None:
            verifier = verifiers[validator_set.epoch] = validator_set.verifier(suite)
        digest = header.consensus_digest(suite.hash)  # type: ignore[attr-defined]
        return verify_commit_certificate(
            validator_set.members, validator_set.f, digest, cert, verifier
        )

    return check
