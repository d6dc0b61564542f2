"""``ClientError``: what every client-side failure raises, with the ledger's stable code.

It lives apart from ``cli.client`` so that modules that only read local files (the network
manifest, genesis) can raise it without importing the gRPC client and the node's wire modules.
"""

from __future__ import annotations

import grpc

__all__ = ["EXIT_DEADLINE", "EXIT_FAILURE", "EXIT_UNAVAILABLE", "ClientError", "exit_code_for"]

EXIT_FAILURE = 1
EXIT_UNAVAILABLE = 3
EXIT_DEADLINE = 4


def exit_code_for(status: grpc.StatusCode | None) -> int:
    """The CLI exit status for a failure with this gRPC status (1 unless connection/deadline)."""
    if status == grpc.StatusCode.UNAVAILABLE:
        return EXIT_UNAVAILABLE
    if status == grpc.StatusCode.DEADLINE_EXCEEDED:
        return EXIT_DEADLINE
    return EXIT_FAILURE


class ClientError(Exception):
    """A failure with the ledger's stable ``code``, a sentence, and the gRPC status if any."""

    def __init__(self, code: str, message: str, grpc_status: grpc.StatusCode | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.grpc_status = grpc_status

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.grpc_status)
