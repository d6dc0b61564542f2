"""Stable error codes and the one place that maps them to gRPC status codes.

Every rejection the node gives a client carries a stable code (``BAD_SIGNATURE``, ``EXPIRED``,
...) and a sentence; over gRPC the status details read ``"CODE: sentence"`` so clients can match
on the code.  Which gRPC status a code travels under is decided here and nowhere else.
"""

from __future__ import annotations

import grpc


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


_STATUS = {
    # The transaction itself is wrong.
    "ENVELOPE_TOO_LARGE": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "MALFORMED_ENVELOPE": grpc.StatusCode.INVALID_ARGUMENT,
    "UNSUPPORTED_ENVELOPE_VERSION": grpc.StatusCode.INVALID_ARGUMENT,
    "BAD_KEY_ID": grpc.StatusCode.INVALID_ARGUMENT,
    "MALFORMED_PAYLOAD": grpc.StatusCode.INVALID_ARGUMENT,
    "UNKNOWN_FIELD": grpc.StatusCode.INVALID_ARGUMENT,
    "MISSING_FIELD": grpc.StatusCode.INVALID_ARGUMENT,
    "BAD_FIELD": grpc.StatusCode.INVALID_ARGUMENT,
    "BAD_SIGNATURE": grpc.StatusCode.INVALID_ARGUMENT,
    "BAD_SIGNATURE_LENGTH": grpc.StatusCode.INVALID_ARGUMENT,
    "NON_CANONICAL_SIGNATURE": grpc.StatusCode.INVALID_ARGUMENT,
    "BAD_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    # Who signed it.
    "UNKNOWN_SIGNER": grpc.StatusCode.UNAUTHENTICATED,
    "SIGNER_NOT_SENDER": grpc.StatusCode.UNAUTHENTICATED,
    "KEY_REVOKED": grpc.StatusCode.UNAUTHENTICATED,
    "WEAK_PUBLIC_KEY": grpc.StatusCode.UNAUTHENTICATED,
    "BAD_PUBLIC_KEY": grpc.StatusCode.UNAUTHENTICATED,
    "BAD_VIEWER": grpc.StatusCode.UNAUTHENTICATED,
    "VIEWER_REQUIRED": grpc.StatusCode.UNAUTHENTICATED,
    "FORBIDDEN": grpc.StatusCode.PERMISSION_DENIED,
    "UNKNOWN_SENDER": grpc.StatusCode.PERMISSION_DENIED,
    "SENDER_INACTIVE": grpc.StatusCode.PERMISSION_DENIED,
    # Valid, but not admissible here or now.
    "WRONG_CHAIN": grpc.StatusCode.FAILED_PRECONDITION,
    "EXPIRED": grpc.StatusCode.FAILED_PRECONDITION,
    "EXPIRY_TOO_FAR": grpc.StatusCode.FAILED_PRECONDITION,
    "NONCE_REUSED": grpc.StatusCode.ALREADY_EXISTS,
    "MEMPOOL_FULL": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "SENDER_QUOTA": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "RATE_LIMITED": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "BUSY": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "BATCH_TOO_LARGE": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "STREAM_LIMIT": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "UNKNOWN_QUERY": grpc.StatusCode.NOT_FOUND,
    "TIMEOUT": grpc.StatusCode.DEADLINE_EXCEEDED,
    "NOT_READY": grpc.StatusCode.UNAVAILABLE,
    "CATCHING_UP": grpc.StatusCode.UNAVAILABLE,
    "SHUTTING_DOWN": grpc.StatusCode.UNAVAILABLE,
    "INTERNAL": grpc.StatusCode.INTERNAL,
}


def status_for(code: str) -> grpc.StatusCode:
    """The gRPC status for a code; query and contract codes default to INVALID_ARGUMENT."""
    return _STATUS.get(code, grpc.StatusCode.INVALID_ARGUMENT)
