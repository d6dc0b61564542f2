"""Admission coalesces signature verification across callers: what waits while one batch is in
the worker pool goes there together next, and each caller still gets exactly its own answers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from ibledger.node.admission import ADMITTED, REJECTED, Admission
from ibledger.node.ledger import Ledger
from ibledger.node.mempool import Mempool
from ibledger.node.tx import Transaction, encode_envelope
from ibledger.node.verifier import Verdict

from .conftest import CHAIN_ID, GENESIS_TIME_MS, Directory, make_genesis


class _HeldVerifier:
    """The ledger's verifier, recording each hand-off and holding the first until released."""

    def __init__(self, inner: object) -> None:
        self._inner = inner
        self.calls: list[int] = []
        self.release = threading.Event()
        self.entered = threading.Event()

    def verify(self, txs: Sequence[Transaction]) -> list[Verdict]:
        self.calls.append(len(txs))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(30), "the test never released the first verification"
        return self._inner.verify(txs)  # type: ignore[attr-defined, no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


@pytest.fixture
def ledger(tmp_path: Path, directory: Directory) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "db", make_genesis(directory)) as opened:
        yield opened


def _admission(ledger: Ledger, admitted: list[Transaction]) -> Admission:
    return Admission(
        chain_id=CHAIN_ID,
        ledger=ledger,
        mempool=Mempool(10_000),
        clock_ms=lambda: GENESIS_TIME_MS + 1_000,
        on_admitted=lambda txs, relay: admitted.extend(txs),
        envelope_size_max=64 * 1024,
    )


def _bad_signature(directory: Directory, envelope: bytes) -> bytes:
    tx = directory.decode(envelope)
    forged = tx.signature[:-1] + bytes([tx.signature[-1] ^ 1])
    return encode_envelope(tx.payload, forged, tx.key_id)


async def _until(event: threading.Event) -> None:
    for _ in range(3000):
        if event.is_set():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the first verification never started")


def test_callers_waiting_behind_a_verification_are_verified_together(
    ledger: Ledger, directory: Directory
) -> None:
    held = _HeldVerifier(ledger.verifier)
    ledger.verifier = held  # type: ignore[assignment]
    admitted: list[Transaction] = []
    admission = _admission(ledger, admitted)
    good = [directory.tx("ADMIN", nonce=n) for n in range(1, 12)]
    bad = _bad_signature(directory, directory.tx("ADMIN", nonce=50))

    async def scenario() -> list[list[tuple[str, str]]]:
        first = asyncio.create_task(admission.admit(good[:1]))
        await _until(held.entered)
        # Five callers arrive while the first batch is in the pool, one of them with a forged
        # signature among valid ones, and one relayed from a peer.
        later = [
            asyncio.create_task(admission.admit(good[1:3])),
            asyncio.create_task(admission.admit([good[3]])),
            asyncio.create_task(admission.admit([good[4], bad, good[5]])),
            asyncio.create_task(admission.admit(good[6:9], from_peer=True)),
            asyncio.create_task(admission.admit(good[9:])),
        ]
        await asyncio.sleep(0.05)
        held.release.set()
        answers = await asyncio.gather(first, *later)
        return [[(result.status, result.code) for result in answer] for answer in answers]

    ok = (ADMITTED, "OK")
    assert asyncio.run(scenario()) == [
        [ok],
        [ok] * 2,
        [ok],
        [ok, (REJECTED, "BAD_SIGNATURE"), ok],
        [ok] * 3,
        [ok] * 2,
    ]
    # One hand-off for the first caller, one for the eleven transactions that waited behind it.
    assert held.calls == [1, 11]
    assert sorted(tx.nonce for tx in admitted) == list(range(1, 12))


def test_a_caller_that_goes_away_leaves_the_others_answered(
    ledger: Ledger, directory: Directory
) -> None:
    held = _HeldVerifier(ledger.verifier)
    ledger.verifier = held  # type: ignore[assignment]
    admission = _admission(ledger, [])
    envelopes = [directory.tx("ADMIN", nonce=n) for n in range(1, 5)]

    async def scenario() -> tuple[list[str], list[str]]:
        first = asyncio.create_task(admission.admit(envelopes[:1]))
        await _until(held.entered)
        leaving = asyncio.create_task(admission.admit(envelopes[1:2]))
        staying = asyncio.create_task(admission.admit(envelopes[2:]))
        await asyncio.sleep(0.05)
        leaving.cancel()
        held.release.set()
        answers = await asyncio.gather(first, staying)
        with pytest.raises(asyncio.CancelledError):
            await leaving
        # The admission keeps working after the batch it coalesced.
        again = await admission.admit([directory.tx("ADMIN", nonce=9)])
        return [r.status for r in answers[0] + answers[1]], [r.status for r in again]

    statuses, again = asyncio.run(scenario())
    assert statuses == [ADMITTED] * 3
    assert again == [ADMITTED]
    assert held.calls == [1, 3, 1]
