"""The batched signature verifier: the node's hot path.

Theory of operation
-------------------
Admission hands the verifier a batch of decoded transactions; the verifier answers one
:class:`Verdict` per transaction, in order.  Work is split in two:

1. *Screening*, on the calling thread and cheap: resolution of the signer key id to a
   registered, active key of the payload's sender, a once-per-key screen of the public key
   (malformed or small-order keys never verify), then a bounded cache of already-verified
   envelopes (so a transaction verified at admission is not verified again when it arrives
   inside a pre-prepare).
2. *Verification*, on a worker pool: the remaining signatures are cut into one chunk per worker
   and verified by the suite's ``verify_many``.  Both suites' libraries run with the GIL
   released (libsodium through cffi, OpenSSL's SM2 through ctypes), so two workers use two
   cores; what limits the speed-up is the per-item Python work that still holds the GIL
   (building ``signature || message`` or the DER signature, the call itself), plus screening
   on the caller.

The cache is keyed by transaction id but remembers the exact signature and key id it verified:
an envelope that reuses a verified payload with different signature bytes is verified afresh,
because another replica that never saw the first envelope would judge it on its own bytes.

A failed verification is classified afterwards (non-canonical ``S`` versus plain mismatch) so
that the common, valid case pays for nothing but the verification itself.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .crypto import CryptoError, CryptoSuite
from .tx import Transaction

# Verified envelopes remembered (130 bytes each measured while the decoder still holds the
# transaction, more once it has let go): two full mempools between admission and pre-prepare.
CACHE_SIZE_MAX = 100_000
INLINE_BATCH_MAX = 32  # below this, a thread hand-off costs more than it saves
STEP_SIZE = 64  # items a worker screens before it verifies them


@dataclass(frozen=True, slots=True)
class SignerKey:
    """A registered public key, as the identity registry knows it."""

    participant: str
    public_key: bytes
    active: bool = True
    suite: str | None = None  # None: the chain's (tests that build keys by hand)


KeyResolver = Callable[[bytes], SignerKey | None]


@dataclass(frozen=True, slots=True)
class Verdict:
    code: str  # "OK" or a stable rejection code
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code == "OK"


VERIFIED = Verdict("OK")


@dataclass(slots=True)
class VerifierStats:
    submitted: int = 0
    cache_hits: int = 0
    verified_ok: int = 0
    rejected: int = 0


class BatchVerifier:
    """Verifies batches of transactions on a worker pool, with a verified-envelope cache."""

    def __init__(
        self,
        suite: CryptoSuite,
        resolver: KeyResolver,
        *,
        workers: int = 2,
        cache_size_max: int = CACHE_SIZE_MAX,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self._suite = suite
        self._resolver = resolver
        self._workers = workers
        self._pool = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify")
            if workers > 1
            else None
        )
        self._cache: OrderedDict[bytes, tuple[bytes, bytes]] = OrderedDict()
        self._cache_size_max = cache_size_max
        self._screened_keys: dict[bytes, Verdict] = {}
        self._lock = threading.Lock()  # guards the cache, the screened keys and the stats
        self.stats = VerifierStats()
        # Told the seconds and size of every batch verified (metrics); any thread.
        self.on_batch: Callable[[float, int], None] = lambda seconds, size: None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> BatchVerifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def is_cached(self, tx: Transaction) -> bool:
        with self._lock:
            return self._cache.get(tx.signing_message) == (tx.key_id, tx.signature)

    def verify(self, txs: Sequence[Transaction]) -> list[Verdict]:
        began = time.perf_counter()
        if self._pool is None or len(txs) <= INLINE_BATCH_MAX:
            verdicts = self._verify_slice(txs)
        else:
            # Each worker screens *and* verifies its own slice: screening holds the GIL, and a
            # caller that screened everything first would leave the workers waiting for it.
            size = -(-len(txs) // self._workers)
            futures = [
                self._pool.submit(self._verify_slice, txs[start : start + size])
                for start in range(0, len(txs), size)
            ]
            verdicts = [verdict for future in futures for verdict in future.result()]
        accepted = sum(1 for verdict in verdicts if verdict.ok)
        with self._lock:
            self.stats.submitted += len(txs)
            self.stats.verified_ok += accepted
            self.stats.rejected += len(txs) - accepted
        self.on_batch(time.perf_counter() - began, len(txs))
        return verdicts

    def _verify_slice(self, txs: Sequence[Transaction]) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for start in range(0, len(txs), STEP_SIZE):
            verdicts.extend(self._verify_step(txs[start : start + STEP_SIZE]))
        return verdicts

    def _verify_step(self, txs: Sequence[Transaction]) -> list[Verdict]:
        """Screen, consult the cache, verify the rest: a few dozen items at a time, so that the
        GIL-bound screening of one worker never keeps the other waiting long."""
        verdicts: list[Verdict | None] = [None] * len(txs)
        pending: list[int] = []
        items: list[tuple[bytes, bytes, bytes]] = []
        cache = self._cache
        with self._lock:
            for index, tx in enumerate(txs):
                # Key resolution runs even for cached envelopes: whether a key is registered and
                # active is state, and every replica must judge it against the same state.
                screened = self._screen(tx)
                if isinstance(screened, Verdict):
                    verdicts[index] = screened
                    continue
                # Keyed by the signed message, domain included: a query verified here must not
                # count as a verified transaction with the same payload.
                if cache.get(tx.signing_message) == (tx.key_id, tx.signature):
                    cache.move_to_end(tx.signing_message)
                    verdicts[index] = VERIFIED
                    self.stats.cache_hits += 1
                    continue
                pending.append(index)
                items.append((screened.public_key, tx.signing_message, tx.signature))
        results = self._suite.verify_many(items) if items else []
        with self._lock:
            for index, ok in zip(pending, results, strict=True):
                tx = txs[index]
                if ok:
                    verdicts[index] = VERIFIED
                    cache[tx.signing_message] = (tx.key_id, tx.signature)
                    if len(cache) > self._cache_size_max:
                        cache.popitem(last=False)
                else:
                    verdicts[index] = self._classify_failure(tx)
        return [verdict for verdict in verdicts if verdict is not None]

    def _screen(self, tx: Transaction) -> Verdict | SignerKey:
        """The signer's key when the transaction may go on to verification, else why not."""
        key = self._resolver(tx.key_id)
        if key is None:
            return Verdict("UNKNOWN_SIGNER", f"no registered key has id {tx.key_id.hex()}")
        if key.participant != tx.sender:
            return Verdict(
                "SIGNER_NOT_SENDER",
                f"key {tx.key_id.hex()} belongs to {key.participant!r}, not to the sender "
                f"{tx.sender!r}",
            )
        if not key.active:
            return Verdict("KEY_REVOKED", f"key {tx.key_id.hex()} has been revoked")
        if key.suite is not None and key.suite != self._suite.name:
            return Verdict(
                "SUITE_MISMATCH",
                f"key {tx.key_id.hex()} is a {key.suite} key; this chain verifies "
                f"{self._suite.name} signatures only",
            )
        screened = self._screened_keys.get(key.public_key)
        if screened is None:
            try:
                self._suite.check_public_key(key.public_key)
                screened = VERIFIED
            except CryptoError as exc:
                screened = Verdict(exc.code, exc.message)
            if len(self._screened_keys) >= self._cache_size_max:
                self._screened_keys.clear()
            self._screened_keys[key.public_key] = screened
        return key if screened is VERIFIED else screened

    def _classify_failure(self, tx: Transaction) -> Verdict:
        try:
            self._suite.check_signature_encoding(tx.signature)
        except CryptoError as exc:
            return Verdict(exc.code, exc.message)
        return Verdict(
            "BAD_SIGNATURE",
            f"the signature does not verify under key {tx.key_id.hex()} for this payload",
        )
