"""Admission: the checks a transaction passes before it enters the mempool.

Order of checks, cheapest first, each with its own code: size and structure (``decode_envelope``),
chain id, expiry against the node's clock (not past, and not beyond the chain's expiry horizon),
already committed (answered with the original receipt by the API) or already pending, the
sender (registered, active, signing with its own key) and its nonce (not used before), both
against committed state, mempool capacity, and finally signature verification — done for
the whole batch at once on the batched verifier's worker pool, off the event loop.  Admitted
transactions are handed on (to the consensus core and, when a client sent them, to the peers) in
the order they arrived.

Verification is coalesced across callers: while one batch is in the worker pool, the batches of
every other caller (single ``Submit`` calls, ``SubmitBatch`` calls, frames of relayed
transactions) wait and then go to the pool together.  Under load a node answers hundreds of small
callers a second, and each hand-off to a worker thread costs the event loop about as much as
verifying a signature; coalesced, the hand-offs follow the pool's pace instead of the callers'.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ibledger import contracts
from ibledger.contracts import StateView

from .ledger import Ledger
from .mempool import Mempool
from .tx import Transaction, TxError
from .verifier import Verdict

SENDER_CHECKS_MAX = 10_000  # distinct (sender, key) answers kept per block
COALESCED_MAX = 4_096  # transactions verified in one hand-off to the worker pool

ADMITTED = "ADMITTED"
PENDING = "PENDING"
COMMITTED = "COMMITTED"
REJECTED = "REJECTED"


class SenderQuota:
    """Per-sender bounds at one node: a pending share of the mempool and a token bucket."""

    def __init__(self, *, pending_max: int, rate_per_s: int, burst: int) -> None:
        self.pending_max = pending_max
        self.rate_per_s = rate_per_s
        self.burst = burst
        # Only senders that passed the sender check get a bucket: registered participants.
        self._buckets: dict[str, tuple[float, int]] = {}

    def take(self, sender: str, now_ms: int) -> bool:
        tokens, last_ms = self._buckets.get(sender, (float(self.burst), now_ms))
        tokens = min(float(self.burst), tokens + max(0, now_ms - last_ms) * self.rate_per_s / 1000)
        if tokens < 1:
            self._buckets[sender] = (tokens, now_ms)
            return False
        self._buckets[sender] = (tokens - 1, now_ms)
        return True


@dataclass(frozen=True, slots=True)
class AdmissionResult:
    status: str
    tx_id: bytes = b""
    code: str = "OK"
    message: str = ""


class Admission:
    def __init__(
        self,
        *,
        chain_id: str,
        ledger: Ledger,
        mempool: Mempool,
        clock_ms: Callable[[], int],
        on_admitted: Callable[[list[Transaction], bool], None],
        envelope_size_max: int,
        quota: SenderQuota | None = None,
    ) -> None:
        self._quota = quota
        self._chain_id = chain_id
        self._ledger = ledger
        self._mempool = mempool
        self._clock_ms = clock_ms
        self._on_admitted = on_admitted
        self._envelope_size_max = envelope_size_max
        self.rejected_by_code: dict[str, int] = {}
        # Told how long each batch waited for a worker thread before its verification began.
        self.on_verify_wait: Callable[[float], None] = lambda seconds: None
        self._sender_checked: dict[tuple[str, bytes], contracts.ContractError | None] = {}
        self._checked_height = -1
        # Callers' batches waiting for the worker pool, and whether a hand-off is running.
        self._verify_waiting: list[tuple[list[Transaction], float, asyncio.Future[list[Verdict]]]]
        self._verify_waiting = []
        self._verifying: asyncio.Task[None] | None = None

    async def admit(
        self, envelopes: Sequence[bytes], *, from_peer: bool = False
    ) -> list[AdmissionResult]:
        results: list[AdmissionResult | None] = [None] * len(envelopes)
        candidates: list[tuple[int, Transaction]] = []
        seen: set[bytes] = set()
        now_ms = self._clock_ms()
        state = self._ledger.state()
        for index, envelope in enumerate(envelopes):
            try:
                if len(envelope) > self._envelope_size_max:
                    raise TxError(
                        "ENVELOPE_TOO_LARGE",
                        f"the envelope is {len(envelope)} bytes; the limit is "
                        f"{self._envelope_size_max}",
                    )
                tx = self._ledger.decoder.decode(envelope)
            except TxError as exc:
                results[index] = self._reject(b"", exc.code, exc.message)
                continue
            early = (
                self._precheck(tx, now_ms, seen)
                or self._check_sender(tx, state)
                or self._check_quota(tx, now_ms, from_peer)
            )
            if early is not None:
                results[index] = early
                continue
            seen.add(tx.tx_id)
            candidates.append((index, tx))
        if candidates:
            verdicts = await self._verify([tx for _, tx in candidates])
            admitted: list[Transaction] = []
            for (index, tx), verdict in zip(candidates, verdicts, strict=True):
                if not verdict.ok:
                    results[index] = self._reject(tx.tx_id, verdict.code, verdict.message)
                elif tx.tx_id in self._mempool:
                    results[index] = AdmissionResult(PENDING, tx.tx_id)
                elif not self._mempool.add(tx, now_ms):
                    results[index] = self._reject(
                        tx.tx_id,
                        "MEMPOOL_FULL",
                        f"the node holds {self._mempool.size_max} pending transactions; "
                        "retry later or submit to another node",
                    )
                else:
                    results[index] = AdmissionResult(ADMITTED, tx.tx_id)
                    admitted.append(tx)
            if admitted:
                self._on_admitted(admitted, not from_peer)
        return [result for result in results if result is not None]

    async def _verify(self, txs: list[Transaction]) -> list[Verdict]:
        """The verdicts for ``txs``, verified together with whatever else waits meanwhile."""
        loop = asyncio.get_running_loop()
        verdicts: asyncio.Future[list[Verdict]] = loop.create_future()
        self._verify_waiting.append((txs, time.perf_counter(), verdicts))
        if self._verifying is None:
            self._verifying = loop.create_task(self._verify_waiting_batches())
        return await verdicts

    async def _verify_waiting_batches(self) -> None:
        try:
            while self._verify_waiting:
                taken = 0
                count = 0
                for txs, _, _ in self._verify_waiting:
                    if count and count + len(txs) > COALESCED_MAX:
                        break
                    count += len(txs)
                    taken += 1
                batches = self._verify_waiting[:taken]
                del self._verify_waiting[:taken]
                try:
                    verdicts = await asyncio.to_thread(
                        self._verify_queued, [tx for txs, _, _ in batches for tx in txs],
                        [queued_at for _, queued_at, _ in batches],
                    )  # fmt: skip
                except Exception as exc:  # the callers see the verifier's failure
                    for _, _, waiter in batches:
                        if not waiter.done():
                            waiter.set_exception(exc)
                    continue
                except BaseException:
                    for _, _, waiter in batches:
                        waiter.cancel()
                    raise
                start = 0
                for txs, _, waiter in batches:
                    if not waiter.done():  # a caller that went away was cancelled
                        waiter.set_result(verdicts[start : start + len(txs)])
                    start += len(txs)
        finally:
            self._verifying = None
            # Stopped from outside (the node shutting down): nobody is left waiting forever.
            for _, _, waiter in self._verify_waiting:
                waiter.cancel()
            self._verify_waiting.clear()

    def _verify_queued(self, txs: list[Transaction], queued_at: list[float]) -> list[Verdict]:
        began = time.perf_counter()
        for at in queued_at:
            self.on_verify_wait(began - at)
        return self._ledger.verifier.verify(txs)

    def _precheck(self, tx: Transaction, now_ms: int, seen: set[bytes]) -> AdmissionResult | None:
        if tx.chain_id != self._chain_id:
            return self._reject(
                tx.tx_id,
                "WRONG_CHAIN",
                f"the transaction is for chain {tx.chain_id!r}; this node serves "
                f"{self._chain_id!r}",
            )
        if tx.expires_at_ms <= now_ms:
            return self._reject(
                tx.tx_id,
                "EXPIRED",
                f"the transaction expired at {tx.expires_at_ms} ms, before it reached this node "
                f"(now {now_ms} ms); sign it again with a later expiry",
            )
        horizon_ms = self._ledger.expiry_horizon_ms
        if tx.expires_at_ms > now_ms + horizon_ms:
            return self._reject(
                tx.tx_id,
                "EXPIRY_TOO_FAR",
                f"the transaction expires at {tx.expires_at_ms} ms, more than {horizon_ms} ms "
                f"from now ({now_ms} ms); this chain's expiry horizon is {horizon_ms} ms",
            )
        if self._ledger.tx_location(tx.tx_id) is not None:
            return AdmissionResult(COMMITTED, tx.tx_id)
        if tx.tx_id in self._mempool or tx.tx_id in seen:
            return AdmissionResult(PENDING, tx.tx_id)
        return None

    def _check_sender(self, tx: Transaction, state: StateView) -> AdmissionResult | None:
        # The sender check reads and decodes two records (as costly as a signature check), so
        # its answer is kept until the next block; the nonce is one key, read every time.
        height = self._ledger.height
        if height != self._checked_height:
            self._sender_checked.clear()
            self._checked_height = height
        key = (tx.sender, tx.key_id)
        if key in self._sender_checked:
            rejection = self._sender_checked[key]
        else:
            rejection = contracts.admissible_sender(state, tx.sender, tx.key_id)
            if len(self._sender_checked) < SENDER_CHECKS_MAX:
                self._sender_checked[key] = rejection
        if rejection is None:
            rejection = contracts.nonce_rejection(state, tx.sender, tx.nonce)
        if rejection is None:
            return None
        return self._reject(tx.tx_id, rejection.code, rejection.message)

    def _check_quota(self, tx: Transaction, now_ms: int, from_peer: bool) -> AdmissionResult | None:
        quota = self._quota
        if quota is None:
            return None
        if self._mempool.pending_of(tx.sender) >= quota.pending_max:
            return self._reject(
                tx.tx_id,
                "SENDER_QUOTA",
                f"{tx.sender} already has {quota.pending_max} transactions pending at this node "
                "(the chain's sender_pending_max); wait for some to commit",
            )
        # Relayed copies were counted against the rate at the node the client chose.
        if not from_peer and not quota.take(tx.sender, now_ms):
            return self._reject(
                tx.tx_id,
                "RATE_LIMITED",
                f"{tx.sender} is over {quota.rate_per_s} transactions/s at this node (burst "
                f"{quota.burst}, the chain's sender_rate_per_s and sender_burst); slow down",
            )
        return None

    def _reject(self, tx_id: bytes, code: str, message: str) -> AdmissionResult:
        self.rejected_by_code[code] = self.rejected_by_code.get(code, 0) + 1
        return AdmissionResult(REJECTED, tx_id, code, message)
