"""Typed rejections shared by every contract module.

A ``ContractError`` is a business-rule rejection: every honest replica raises the same one for the
same input, and the runtime turns it into a failed ``Outcome`` (code + message, no writes). Any
other exception is a bug and propagates, so that it is noticed instead of being recorded as a
rejection that replicas might disagree on.

Codes are stable strings (clients switch on them); messages are sentences for a bank clerk and
must be built only from the input and the state, never from anything replica-specific.
"""

from __future__ import annotations

__all__ = [
    "ContractError",
    "GenesisError",
    "QueryError",
    "StoredFormError",
]


class ContractError(Exception):
    """A deterministic business-rule rejection with a stable ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class GenesisError(ValueError):
    """The genesis document is not acceptable; the message names the offending field."""


class QueryError(Exception):
    """A read-side failure (unknown query, bad argument, not found, not visible to the viewer)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class StoredFormError(ValueError):
    """A state value does not have the form of its record (missing or unknown field, wrong type,
    a text outside its vocabulary). The state is corrupt or foreign: a bug to notice, never a
    business rejection, so it is not a ``ContractError``."""
