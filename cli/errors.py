"""Exit statuses and ``ClientError``: what every client-side failure raises.

This module owns the CLI's exit statuses (``EXIT_CODES``, documented in docs/cli.md and in
``ibledger --help``); every other module takes its numbers from here. It lives apart from
``cli.client`` so that modules that only read local files (the network manifest, genesis) can
raise ``ClientError`` without importing the gRPC client and the node's wire modules, and it
imports no gRPC itself: a status is compared by its name, so that ``ibledger --version`` and
``--help`` start without loading gRPC.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import grpc

__all__ = [
    "EXIT_CODES",
    "EXIT_DEADLINE",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID_RUN",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "ClientError",
    "exit_code_for",
    "exit_codes_text",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_DEADLINE = 4
EXIT_INVALID_RUN = 5
EXIT_INTERRUPTED = 130

# (status, meaning): the one table, printed by `ibledger --help` and kept in docs/cli.md.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "success"),
    (
        EXIT_FAILURE,
        "the ledger refused (a status code, or a transaction in a block with a failed result), "
        "or a local command failed (an invalid identifier for validate, an existing key file)",
    ),
    (
        EXIT_USAGE,
        "a usage error: bad flags, or input refused before anything was signed or sent (an "
        "identifier, amount, date or JSON argument, an unknown participant, a missing identity)",
    ),
    (EXIT_UNAVAILABLE, "no node reachable (UNAVAILABLE on every node tried)"),
    (EXIT_DEADLINE, "a deadline ran out (DEADLINE_EXCEEDED, or the wait for a commit)"),
    (EXIT_INVALID_RUN, "bench: the run is invalid (the clients offered less load than was due)"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)


def exit_codes_text() -> str:
    """The exit status table as plain text for a help epilog, wrapped to 80 columns."""
    import textwrap

    return "\n".join(
        textwrap.fill(meaning, 80, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7)
        for code, meaning in EXIT_CODES
    )


def exit_code_for(status: grpc.StatusCode | None) -> int:
    """The CLI exit status for a failure with this gRPC status (1 unless connection/deadline)."""
    name = getattr(status, "name", None)
    if name == "UNAVAILABLE":
        return EXIT_UNAVAILABLE
    if name == "DEADLINE_EXCEEDED":
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
