"""Who is reading, what they may see, and how many long calls they may hold.

Theory of operation
-------------------
Blocks, receipts and events carry every bank's business, so the public API shows each caller
only its own (README, "Security model"):

* **Viewer proof.** A read names its viewer with a *read session*: an envelope signed in
  ``READ_SIGNING_DOMAIN`` (so it never verifies as a transaction or a query), op
  ``read.session``, args ``{"node": <this node's id>}``, expiring within ten minutes.  Binding it
  to one node means a node operator who sees a client's session cannot replay it elsewhere; the
  short expiry bounds what a leaked one is worth.  A client signs one session per node and
  reuses it, and the node keeps verified sessions in a bounded cache, so a read costs one
  signature check per session, not per call.  A read without a proof is anonymous.
* **Redaction.** The contracts decide visibility (``contracts.queries.transaction_visible``):
  the regulator sees everything, a participant the transactions it is a party to.  Everything
  else is *withheld*: a block keeps its header, certificate and the request ids that make up its
  ``txs_root`` (so it still verifies), a receipt keeps its position and inclusion path.
* **Long-call limits.** Streams and commit waits hold a server slot for minutes.  Each viewer
  may hold ``streams_per_viewer`` of them; anonymous callers share a separate pool
  (``anonymous_streams_max`` in all, ``anonymous_streams_per_address`` per network address), so
  callers who prove no identity can never use up the slots that identified ones rely on.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ibledger.contracts import runtime as contracts
from ibledger.contracts.core import StateView

from . import clock
from .blocks import StoredBlock
from .errors import NodeError
from .ledger import Ledger
from .tx import (
    READ_SESSION_OP,
    READ_SESSION_TTL_MAX_MS,
    READ_SIGNING_DOMAIN,
    TxError,
    decode_envelope,
)

SESSION_CACHE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller of a read: a participant (proven by a read session) or anonymous."""

    participant: str | None
    everything: bool = False  # an active regulator

    @property
    def anonymous(self) -> bool:
        return self.participant is None


ANONYMOUS = Viewer(None)


class ViewerGate:
    """Turns a request's ``viewer`` bytes into a :class:`Viewer`, or refuses them."""

    def __init__(self, *, node_id: str, ledger: Ledger) -> None:
        self._node_id = node_id
        self._ledger = ledger
        # sha256(session) -> (participant, key id, expires_at_ms), oldest first.
        self._sessions: OrderedDict[bytes, tuple[str, bytes, int]] = OrderedDict()

    def viewer(self, proof: bytes) -> Viewer:
        if not proof:
            return ANONYMOUS
        now_ms = clock.now_ms()
        digest = hashlib.sha256(proof).digest()
        cached = self._sessions.get(digest)
        if cached is None or now_ms >= cached[2]:
            cached = self._verify(proof, now_ms)
            self._sessions[digest] = cached
            while len(self._sessions) > SESSION_CACHE_MAX:
                self._sessions.popitem(last=False)
        participant, key_id, _ = cached
        # Checked on every call, not cached: a key revoked or a participant deactivated since
        # the session was signed loses its reads at once.
        state = self._ledger.state()
        rejection = contracts.admissible_sender(state, participant, key_id)
        if rejection is not None:
            raise NodeError(rejection.code, rejection.message)
        return Viewer(participant, contracts.TransactionVisibility(state, participant).everything)

    def _verify(self, proof: bytes, now_ms: int) -> tuple[str, bytes, int]:
        try:
            session = decode_envelope(
                proof, hash_fn=self._ledger.suite.hash, domain=READ_SIGNING_DOMAIN
            )
        except TxError as exc:
            raise NodeError(exc.code, f"the viewer proof: {exc.message}") from None
        if session.chain_id != self._ledger.chain_id:
            raise NodeError("WRONG_CHAIN", f"the viewer proof is for chain {session.chain_id!r}")
        if session.operation != READ_SESSION_OP or dict(session.args) != {"node": self._node_id}:
            raise NodeError(
                "BAD_VIEWER",
                f"a viewer proof is op {READ_SESSION_OP!r} with args "
                f"{{'node': {self._node_id!r}}} (this node)",
            )
        if not now_ms < session.expires_at_ms <= now_ms + READ_SESSION_TTL_MAX_MS:
            raise NodeError("EXPIRED", "a viewer proof must expire within the next ten minutes")
        [verdict] = self._ledger.verifier.verify([session])
        if not verdict.ok:
            raise NodeError(verdict.code, f"the viewer proof: {verdict.message}")
        return session.sender, session.key_id, session.expires_at_ms


def _sender(envelope: bytes) -> str | None:
    try:
        return decode_envelope(envelope).sender
    except TxError:
        return None  # a malformed envelope, ordered and refused: only the regulator sees it


def _events_by_tx(events: Sequence[Mapping[str, Any]]) -> dict[int, list[Mapping[str, Any]]]:
    grouped: dict[int, list[Mapping[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event["tx_index"], []).append(event)
    return grouped


def _visible(
    rule: contracts.TransactionVisibility, envelope: bytes, events: Sequence[Mapping[str, Any]]
) -> bool:
    sender = _sender(envelope)
    return sender is not None and rule.sees(sender, events)


def tx_visible(
    viewer: Viewer, state: StateView, envelope: bytes, events: Sequence[Mapping[str, Any]]
) -> bool:
    if viewer.everything:
        return True
    if viewer.anonymous:
        return False
    rule = contracts.TransactionVisibility(state, viewer.participant)
    return _visible(rule, envelope, events)


def visible_indexes(viewer: Viewer, state: StateView, block: StoredBlock) -> frozenset[int]:
    """The positions of ``block`` whose payload, result and events ``viewer`` may see."""
    if viewer.everything:
        return frozenset(range(len(block.txs)))
    if viewer.anonymous:
        return frozenset()
    rule = contracts.TransactionVisibility(state, viewer.participant)  # one load per block
    events = _events_by_tx(block.events)
    return frozenset(
        index
        for index, envelope in enumerate(block.txs)
        if _visible(rule, envelope, events.get(index, []))
    )


def _address_of(peer: str) -> str:
    """The network address of a gRPC peer string ("ipv4:1.2.3.4:5678" -> "ipv4:1.2.3.4")."""
    host, _, port = peer.rpartition(":")
    return host if host and port.isdigit() else peer


class LongCallLimits:
    """Concurrent streams and commit waits per viewer, and a separate anonymous pool."""

    def __init__(self, *, per_viewer: int, anonymous_per_address: int, anonymous_max: int) -> None:
        self.per_viewer = per_viewer
        self.anonymous_per_address = anonymous_per_address
        self.anonymous_max = anonymous_max
        self._held: dict[str, int] = {}
        self._anonymous = 0

    @property
    def anonymous_held(self) -> int:
        return self._anonymous

    @contextmanager
    def hold(self, viewer: Viewer, peer: str) -> Iterator[None]:
        if viewer.participant is not None:
            key, limit = "p:" + viewer.participant, self.per_viewer
            whose = f"participant {viewer.participant}"
        else:
            key, limit = "a:" + _address_of(peer), self.anonymous_per_address
            whose = f"anonymous callers from {_address_of(peer)}"
            if self._anonymous >= self.anonymous_max:
                raise NodeError(
                    "STREAM_LIMIT",
                    f"anonymous callers hold all {self.anonymous_max} anonymous streams and "
                    "waits of this node; sign the request (a viewer proof) to use your own",
                )
        held = self._held.get(key, 0)
        if held >= limit:
            raise NodeError(
                "STREAM_LIMIT",
                f"{whose} already hold {held} streams and waits on this node (the limit is "
                f"{limit}); close one first",
            )
        self._held[key] = held + 1
        self._anonymous += viewer.anonymous
        try:
            yield
        finally:
            self._anonymous -= viewer.anonymous
            remaining = self._held[key] - 1
            if remaining:
                self._held[key] = remaining
            else:
                del self._held[key]
