"""The contract runtime: the one boundary the ledger calls.

Theory of operation
-------------------
``execute(state, call, ctx)`` is a pure function of the state view, the decoded call and the
block context. It

1. checks the sender: a registered, active participant whose active key signed the envelope
   (``UNKNOWN_SENDER`` / ``SENDER_INACTIVE`` / ``SIGNER_NOT_SENDER``);
1a. checks the nonce: a sender uses each nonce once, whatever the outcome (``NONCE_REUSED``);
   the used nonce is recorded even when the operation is then refused, so of two transactions
   with one sender and nonce exactly the first ordered is executed, on every replica;
2. finds the handler in ``OPERATIONS`` (``UNKNOWN_OPERATION`` otherwise);
3. runs it against a transaction-local ``Store``; handlers read their arguments strictly and
   raise ``ContractError`` for every business-rule rejection;
4. returns ``Outcome("OK", ...)`` with the sorted writes (plus a version entry for each write of
   a registry key, ``versions``) and the events, or, for a
   ``ContractError``, the error's code and message with no writes and no events.

Anything other than a ``ContractError`` is a bug and propagates to the ledger. Nothing here reads
a clock, a random source or the environment; dates come from ``ctx.timestamp_ms`` only, so every
replica produces byte-identical outcomes.

State key layout (prefix -> owner module):

    id/p/, id/k/, id/lei/, id/uscc/     identity
    cfg/governance, gov/p/, gov/o/      governance (admin quorum from genesis, proposals)
    cfg/calendar, cfg/params            calendar (genesis reference data)
    cfg/membership, membership/         membership (the validator set by epoch, from genesis)
    asset/i/, asset/h/, asset/hh/, asset/prc/   assets
    areq/, idx/ar/, asset/hr/           asset requests (asset_requests, assets, asset_answers)
    bill/, breq/, bset/, idx/bp/        bills
    hist/<scope>/<height>/<tx>/<n>      history of every event, scopes p/<id>, a/<ISIN>, b/<no>
    nonce/<sender>/<nonce>              runtime: the transaction that used the nonce
    ver/<key>@<height>                  runtime: versions of asset/i/, asset/h/, asset/hh/ keys
                                        (``versions``: reads as of a past height)

All values are canonical MessagePack (``codec``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from . import asset_answers, assets, bills, governance, identity, membership
from .args import Args
from .calendar import (
    CALENDAR_KEY,
    PARAMS_KEY,
    calendar_from_genesis,
    parameters_from_genesis,
)
from .codec import canonical_decode
from .core import Call, Env, Event, Outcome, StateView, Store, TxContext, business_day
from .errors import ContractError, GenesisError
from .identity import KeyRecord, check_sender, key_fingerprint
from .queries import TransactionVisibility, run_query, transaction_visible
from .versions import with_versions

__all__ = [
    "OPERATIONS",
    "Call",
    "Event",
    "KeyRecord",
    "Outcome",
    "StateView",
    "TransactionVisibility",
    "TxContext",
    "admissible_sender",
    "check_nonce",
    "execute",
    "genesis_writes",
    "key_fingerprint",
    "nonce_key",
    "nonce_rejection",
    "query",
    "resolve_key",
    "transaction_visible",
]

Handler = Callable[[Env, Args], None]


def _registry(*tables: Mapping[str, Handler]) -> dict[str, Handler]:
    merged: dict[str, Handler] = {}
    for table in tables:
        for name, handler in table.items():
            if name in merged:
                raise AssertionError(f"operation {name} is registered twice")
            merged[name] = handler
    return dict(sorted(merged.items()))


OPERATIONS: dict[str, Handler] = _registry(
    identity.OPERATIONS,
    governance.OPERATIONS,
    assets.OPERATIONS,
    asset_answers.OPERATIONS,
    bills.OPERATIONS,
)


def nonce_key(sender: str, nonce: int) -> bytes:
    return b"nonce/" + sender.encode() + b"/" + nonce.to_bytes(8, "big")


def check_nonce(state: StateView, sender: str, nonce: int) -> None:
    """Raise NONCE_REUSED if ``sender`` has already used ``nonce``."""
    used = state.get(nonce_key(sender, nonce))
    if used is not None:
        raise ContractError(
            "NONCE_REUSED",
            f"{sender} already used nonce {nonce} (transaction {canonical_decode(used).hex()}); "
            "every transaction of a sender needs a new nonce",
        )


def admissible_sender(state: StateView, sender: str, key_id: bytes) -> ContractError | None:
    """The rejection the sender check of ``execute`` would give now, or None: admission asks
    before a transaction enters the mempool (execution checks again, against its block's state)."""
    try:
        check_sender(Store(state), TxContext("", 0, 0, 0, b"", sender, key_id))
    except ContractError as rejection:
        return rejection
    return None


def nonce_rejection(state: StateView, sender: str, nonce: int) -> ContractError | None:
    """NONCE_REUSED if ``sender`` has already used ``nonce`` in committed state, else None."""
    try:
        check_nonce(state, sender, nonce)
    except ContractError as rejection:
        return rejection
    return None


def execute(state: StateView, call: Call, ctx: TxContext) -> Outcome:
    store = Store(state, ctx)
    nonce_write: tuple[tuple[bytes, bytes | None], ...] = ()
    try:
        sender = check_sender(store, ctx)
        if ctx.nonce is not None:
            check_nonce(store, sender.id, ctx.nonce)
            key = nonce_key(sender.id, ctx.nonce)
            store.put(key, ctx.tx_id)
            nonce_write = ((key, store.get(key)),)
        handler = OPERATIONS.get(call.operation) if isinstance(call.operation, str) else None
        if handler is None:
            raise ContractError(
                "UNKNOWN_OPERATION", f"There is no operation named {call.operation!r}."
            )
        env = Env(store, ctx, sender, business_day(ctx.timestamp_ms))
        handler(env, Args(call.args))
    except ContractError as rejection:
        return Outcome(rejection.code, rejection.message, nonce_write, ())
    writes = with_versions(store.writes(), ctx.height)
    return Outcome("OK", f"{call.operation} done.", writes, store.events())


class _EmptyState:
    def get(self, key: bytes) -> bytes | None:
        return None

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return iter(())


def genesis_writes(genesis: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
    """Validate the contract sections of a genesis document and return the initial state.

    Reads ``participants`` and ``governance`` (required), ``calendar`` and ``parameters``
    (optional); other top-level sections (chain id, validators, consensus settings) belong to
    the node.
    """
    if not isinstance(genesis, Mapping):
        raise GenesisError("the genesis document must be a map")
    store = Store(_EmptyState())
    admins = identity.genesis_participant_writes(store, genesis.get("participants"))
    store.put(
        identity.GOVERNANCE_KEY,
        governance.governance_from_genesis(genesis.get("governance"), admins),
    )
    store.put(CALENDAR_KEY, calendar_from_genesis(genesis.get("calendar")).to_stored())
    store.put(PARAMS_KEY, parameters_from_genesis(genesis.get("parameters")).to_stored())
    membership.genesis_membership_writes(store, genesis)
    writes: list[tuple[bytes, bytes]] = []
    for key, value in store.writes():
        assert value is not None
        writes.append((key, value))
    return writes


def query(
    state: StateView,
    name: str,
    args: Mapping[str, Any],
    viewer: str | None,
    authority: StateView | None = None,
) -> Any:
    return run_query(state, name, args, viewer, authority)


def resolve_key(state: StateView, key_id: bytes) -> KeyRecord | None:
    return identity.resolve_key(Store(state), key_id)
