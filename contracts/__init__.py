"""Deterministic contracts of the interbank ledger: identities, asset registry and bills.

Public API (the ledger calls exactly these; see ``runtime`` for the theory of operation):

* ``execute(state, call, ctx) -> Outcome`` -- run one transaction's call against a state view.
* ``genesis_writes(genesis) -> list[(key, value)]`` -- validate and load genesis participants,
  business calendar and rule parameters (raises ``GenesisError``).
* ``query(state, name, args, viewer)`` -- read side with look-through supervision (raises
  ``QueryError``); query names in ``QUERIES``.
* ``key_fingerprint(public_key)`` and ``resolve_key(state, key_id) -> KeyRecord | None`` -- the
  envelope signer key id and its lookup at admission.
* ``canonical_encode`` / ``canonical_decode`` -- the canonical MessagePack codec.
* ``identifiers.validate(kind, value) -> ValidationResult`` -- Part A identifier checks.
* ``money.parse_amount`` / ``money.format_amount`` -- decimal strings <-> integer minor units.

Operation names are the keys of ``OPERATIONS``.
"""

from .codec import CodecError, canonical_decode, canonical_encode
from .core import Call, Event, Outcome, StateView, TxContext, business_day
from .errors import ContractError, GenesisError, QueryError, StoredFormError
from .identifiers import ValidationResult, validate
from .identity import KeyRecord
from .money import format_amount, parse_amount
from .queries import QUERIES
from .runtime import (
    OPERATIONS,
    admissible_sender,
    execute,
    genesis_writes,
    key_fingerprint,
    nonce_key,
    nonce_rejection,
    query,
    resolve_key,
)

__all__ = [
    "OPERATIONS",
    "QUERIES",
    "Call",
    "CodecError",
    "ContractError",
    "Event",
    "GenesisError",
    "KeyRecord",
    "Outcome",
    "QueryError",
    "StateView",
    "StoredFormError",
    "TxContext",
    "ValidationResult",
    "admissible_sender",
    "business_day",
    "canonical_decode",
    "canonical_encode",
    "execute",
    "format_amount",
    "genesis_writes",
    "key_fingerprint",
    "nonce_key",
    "nonce_rejection",
    "parse_amount",
    "query",
    "resolve_key",
    "validate",
]
