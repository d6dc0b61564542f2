"""Stable error codes and the one table that maps each of them to its gRPC status.

Every rejection the node gives a client carries a stable code (``BAD_SIGNATURE``, ``EXPIRED``,
...) and a sentence; over gRPC the status details read ``"CODE: sentence"`` so clients can match
on the code.  Which gRPC status a code travels under is decided here and nowhere else: the API's
handlers raise ``NodeError`` and the gRPC edge (``grpc_edge.add_service``) answers it with
``status_for(code)``; the client tests' stand-in node reads the same table.

The table has one entry for every code node/ and contracts/ produce, the contracts' business-rule
codes included: most of those reach a client inside a receipt (the transaction committed with a
failed result), but the sender checks run again at admission and the query side raises its own,
so any of them may travel as a status, and each must say which.  ``tests/node/test_errors.py``
collects the codes from the source and checks both directions (no code without an entry, no
entry without a code).
"""

from __future__ import annotations

from types import MappingProxyType

import grpc

__all__ = ["STATUS", "NodeError", "status_for"]

_INVALID = grpc.StatusCode.INVALID_ARGUMENT
_UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
_DENIED = grpc.StatusCode.PERMISSION_DENIED
_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
_EXISTS = grpc.StatusCode.ALREADY_EXISTS
_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
_NOT_FOUND = grpc.StatusCode.NOT_FOUND
_INTERNAL = grpc.StatusCode.INTERNAL

STATUS = MappingProxyType(
    {
        "OK": grpc.StatusCode.OK,
        # The request or the transaction itself is wrong (node/tx.py, node/crypto.py, the edge).
        "MALFORMED_REQUEST": _INVALID,
        "ENVELOPE_TOO_LARGE": _EXHAUSTED,
        "MALFORMED_ENVELOPE": _INVALID,
        "UNSUPPORTED_ENVELOPE_VERSION": _INVALID,
        "BAD_KEY_ID": _INVALID,
        "MALFORMED_PAYLOAD": _INVALID,
        "UNKNOWN_FIELD": _INVALID,
        "MISSING_FIELD": _INVALID,
        "BAD_FIELD": _INVALID,
        "BAD_SIGNATURE": _INVALID,
        "BAD_SIGNATURE_LENGTH": _INVALID,
        "NON_CANONICAL_SIGNATURE": _INVALID,
        "BAD_ARGUMENT": _INVALID,
        # Who signed it.
        "UNKNOWN_SIGNER": _UNAUTHENTICATED,
        "SIGNER_NOT_SENDER": _UNAUTHENTICATED,
        "KEY_REVOKED": _UNAUTHENTICATED,
        "WEAK_PUBLIC_KEY": _UNAUTHENTICATED,
        "BAD_PUBLIC_KEY": _UNAUTHENTICATED,
        "SUITE_MISMATCH": _UNAUTHENTICATED,  # a key or signature of another crypto suite
        "BAD_VIEWER": _UNAUTHENTICATED,
        "VIEWER_REQUIRED": _UNAUTHENTICATED,
        "FORBIDDEN": _DENIED,
        "CERTIFICATE_REVOKED": _DENIED,
        "UNKNOWN_SENDER": _DENIED,
        "SENDER_INACTIVE": _DENIED,
        # Valid, but not admissible here or now.
        "WRONG_CHAIN": _PRECONDITION,
        "GENESIS_MISMATCH": _PRECONDITION,
        "EXPIRED": _PRECONDITION,
        "EXPIRY_TOO_FAR": _PRECONDITION,
        "NONCE_REUSED": _EXISTS,
        "DUPLICATE_TX": _EXISTS,
        "MEMPOOL_FULL": _EXHAUSTED,
        "SENDER_QUOTA": _EXHAUSTED,
        "RATE_LIMITED": _EXHAUSTED,
        "BATCH_TOO_LARGE": _EXHAUSTED,
        "STREAM_LIMIT": _EXHAUSTED,
        "NOT_FOUND": _NOT_FOUND,
        "UNKNOWN_QUERY": _NOT_FOUND,
        "UNKNOWN_OPERATION": _NOT_FOUND,
        "TIMEOUT": grpc.StatusCode.DEADLINE_EXCEEDED,
        "NOT_READY": grpc.StatusCode.UNAVAILABLE,
        # A write sent to an observer, which serves reads only: the sentence names a validator.
        "OBSERVER_READ_ONLY": _PRECONDITION,
        # A query as of a height the node cannot answer (node/archive.py).
        "HEIGHT_IN_FUTURE": grpc.StatusCode.OUT_OF_RANGE,
        "HEIGHT_UNAVAILABLE": _PRECONDITION,
        # The node's own trouble: its key files, its crypto suite, or a bug. (Key-file codes
        # stop a node at start or a command before it sends anything; listed all the same.)
        "BAD_PRIVATE_KEY": _INTERNAL,
        "KEY_FILE_INVALID": _INTERNAL,
        "KEY_FILE_MISSING": _INTERNAL,
        "KEY_FILE_PERMISSIONS": _INTERNAL,
        "KEY_FILE_UNREADABLE": _INTERNAL,
        "KEY_NOT_ENCRYPTED": _INTERNAL,
        "KEY_PASSPHRASE_REQUIRED": _INTERNAL,
        "KEY_PASSPHRASE_WRONG": _INTERNAL,
        "PASSPHRASE_EMPTY": _INTERNAL,
        "PASSPHRASE_FILE": _INTERNAL,
        "PASSPHRASE_TOO_LONG": _INTERNAL,
        "UNKNOWN_KEY_SCHEME": _INTERNAL,
        "UNKNOWN_SUITE": _INTERNAL,
        "SUITE_UNAVAILABLE": _INTERNAL,  # the local crypto library lacks the chain's suite
        "SIGN_FAILED": _INTERNAL,
        "INTERNAL": _INTERNAL,
        # Contract arguments that are not well-formed values (contracts/identifiers.py, args).
        "AMOUNT_INVALID": _INVALID,
        "BIC_INVALID": _INVALID,
        "BILL_AMOUNT_INVALID": _INVALID,
        "BILL_NO_INVALID": _INVALID,
        "CFI_INVALID": _INVALID,
        "CNAPS_INVALID": _INVALID,
        "CURRENCY_INVALID": _INVALID,
        "ISIN_INVALID": _INVALID,
        "KEY_INVALID": _INVALID,
        "LEI_INVALID": _INVALID,
        "PRODUCT_CODE_INVALID": _INVALID,
        "QUANTITY_INVALID": _INVALID,
        "REPO_TERM_INVALID": _INVALID,
        "ROLE_INVALID": _INVALID,
        "SIGNATURE_INVALID": _INVALID,
        "SPLIT_INVALID": _INVALID,
        "SUM_MISMATCH": _INVALID,
        "USCC_INVALID": _INVALID,
        "PARTIAL_ENDORSEMENT": _INVALID,
        # Contract records that do not exist.
        "KEY_NOT_FOUND": _NOT_FOUND,
        "PROPOSAL_NOT_FOUND": _NOT_FOUND,
        "UNKNOWN_BILL": _NOT_FOUND,
        "UNKNOWN_CASE": _NOT_FOUND,
        "UNKNOWN_INSTRUMENT": _NOT_FOUND,
        "UNKNOWN_PARTICIPANT": _NOT_FOUND,
        "UNKNOWN_PIECE": _NOT_FOUND,
        "UNKNOWN_PLEDGE": _NOT_FOUND,
        "UNKNOWN_REQUEST": _NOT_FOUND,
        "VALIDATOR_UNKNOWN": _NOT_FOUND,
        # Contract records that exist already.
        "ALREADY_VOTED": _EXISTS,
        "DUPLICATE_ANSWER": _EXISTS,
        "DUPLICATE_BILL": _EXISTS,
        "DUPLICATE_CASE": _EXISTS,
        "DUPLICATE_INSTRUMENT": _EXISTS,
        "DUPLICATE_SETTLEMENT": _EXISTS,
        "KEY_ALREADY_REGISTERED": _EXISTS,
        "KEY_ALREADY_REVOKED": _EXISTS,
        "CERTIFICATE_ALREADY_REVOKED": _EXISTS,
        "VALIDATOR_EXISTS": _EXISTS,
        "KEY_ALREADY_USED": _EXISTS,
        "KEY_IN_USE": _EXISTS,
        "ADDRESS_IN_USE": _EXISTS,
        # Business rules: who may act.
        "GOVERNANCE_REQUIRED": _DENIED,
        "NOT_HOLDER": _DENIED,
        "SELF_DEALING": _DENIED,
        "COUNTERPARTY_TYPE": _DENIED,
        "PARTY_NOT_REGISTERED": _PRECONDITION,
        # Business rules: what the ledger's state allows now.
        "ADMIN_QUORUM_UNREACHABLE": _PRECONDITION,
        "AFTER_MATURITY": _PRECONDITION,
        "BILL_TERM_EXCEEDED": _PRECONDITION,
        "DEREGISTER_NOT_ALLOWED": _PRECONDITION,
        "DISCLOSURE_MISSING": _PRECONDITION,
        "ENCUMBERED": _PRECONDITION,
        "FROZEN": _PRECONDITION,
        "IMMUTABLE_FIELD": _PRECONDITION,
        "INSTRUMENT_NOT_ACTIVE": _PRECONDITION,
        "KEY_LAST_ACTIVE": _PRECONDITION,
        "KEY_LIMIT": _EXHAUSTED,
        "MEMBERSHIP_CHANGE_PENDING": _PRECONDITION,
        "MEMBERSHIP_TOO_LARGE": _EXHAUSTED,
        "MEMBERSHIP_TOO_SMALL": _PRECONDITION,
        "MEMBERSHIP_UNAVAILABLE": _PRECONDITION,
        "LAST_ADMIN": _PRECONDITION,
        "NESTING_EXCEEDED": _PRECONDITION,
        "NON_TRANSFERABLE": _PRECONDITION,
        "NOT_A_PRODUCT": _PRECONDITION,
        "NOT_MATURE": _PRECONDITION,
        "PARTICIPANT_ACTIVE": _PRECONDITION,
        "PARTICIPANT_INACTIVE": _PRECONDITION,
        "PIECE_LOCKED": _PRECONDITION,
        "PLEDGED": _PRECONDITION,
        "PROPOSAL_CLOSED": _PRECONDITION,
        "PROPOSAL_EXPIRED": _PRECONDITION,
        "PROPOSAL_LIMIT": _EXHAUSTED,
        "QUANTITY_EXCEEDS_AVAILABLE": _PRECONDITION,
        "RECOURSE_NOT_ALLOWED": _PRECONDITION,
        "REQUEST_NOT_PENDING": _PRECONDITION,
        "REQUEST_PENDING": _PRECONDITION,
        "SETTLEMENT_NOT_PENDING": _PRECONDITION,
        "WINDOW_CLOSED": _PRECONDITION,
        "WRONG_STATE": _PRECONDITION,
        # Operator commands (node/admin.py's socket, node/backup.py): they reach the operator's
        # command line, never a gRPC client; the status says the same in gRPC's vocabulary.
        "UNKNOWN_COMMAND": _NOT_FOUND,
        "BUSY": grpc.StatusCode.UNAVAILABLE,
        "CANCELLED": grpc.StatusCode.CANCELLED,
        "OUTPUT_EXISTS": _EXISTS,
        "BAD_OUTPUT": _INVALID,
        "WRITE_FAILED": _INTERNAL,
        "NOT_A_BACKUP": _INVALID,
        "BACKUP_FORMAT": grpc.StatusCode.UNIMPLEMENTED,
        "BACKUP_CORRUPT": grpc.StatusCode.DATA_LOSS,
        "BACKUP_TRUNCATED": grpc.StatusCode.DATA_LOSS,
        "BACKUP_DOES_NOT_VERIFY": grpc.StatusCode.DATA_LOSS,
        "TARGET_NOT_EMPTY": _PRECONDITION,
    }
)
"""Every code's gRPC status; read-only, so no module can patch in a second opinion."""

# A code missing from STATUS is a bug the table test reports; on the wire it keeps the status
# the node has always given codes it did not list.
_UNLISTED = grpc.StatusCode.INVALID_ARGUMENT


def status_for(code: str) -> grpc.StatusCode:
    """The gRPC status ``code`` travels under."""
    return STATUS.get(code, _UNLISTED)


class NodeError(Exception):
    """A request the node refuses, with a stable code and a sentence for the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def status(self) -> grpc.StatusCode:
        return status_for(self.code)

    @property
    def details(self) -> str:
        return f"{self.code}: {self.message}"
