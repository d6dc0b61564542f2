"""The contracts' closed vocabularies: every status, flag, role and kind a record or an argument
may hold, as enums.

Theory of operation
-------------------
Each enum's *value* is the exact text stored in state and carried in transaction arguments (they
are ``StrEnum``s, so a member compares equal to its text). Records convert at the storage
boundary (``stored``): a value outside its enum is a ``StoredFormError``, raised identically on
every replica, instead of a ``KeyError`` deep inside a handler. The command line derives its
argument choices from these enums, so the two cannot drift apart.

Nothing here may be renamed or re-spelled without a state migration: the values are stored bytes.
"""

from __future__ import annotations

import enum

__all__ = [
    "AssetAction",
    "BillAction",
    "BillFlag",
    "BillKind",
    "BillStatus",
    "GuaranteeCapacity",
    "InstrumentStatus",
    "LeiStatus",
    "PresentmentType",
    "ProductCategory",
    "ProposalStatus",
    "RecourseGround",
    "RepoKind",
    "RequestStatus",
    "Role",
    "SettlementStatus",
    "TradeMode",
]


class Role(enum.StrEnum):
    BANK = "bank"
    CENTRAL_BANK = "central_bank"
    CONSORTIUM_ADMIN = "consortium_admin"
    ENTERPRISE = "enterprise"
    REGISTRAR = "registrar"
    REGULATOR = "regulator"
    # The central bank's large-value payment system: confirms or fails the cash leg of a
    # delivery-versus-payment bill action (docs/domain.md B.6).
    SETTLEMENT_AGENT = "settlement_agent"


class LeiStatus(enum.StrEnum):
    """GLEIF registration status of a participant's LEI."""

    ISSUED = "ISSUED"
    LAPSED = "LAPSED"
    RETIRED = "RETIRED"
    MERGED = "MERGED"
    PENDING_TRANSFER = "PENDING_TRANSFER"
    ANNULLED = "ANNULLED"


# --- bills (docs/domain.md Part B) ------------------------------------------------------------


class BillStatus(enum.StrEnum):
    """B.4 bill status, with its CS code."""

    ISSUED = "ISSUED"
    ACCEPTED = "ACCEPTED"
    RECEIVED = "RECEIVED"
    MATURED = "MATURED"
    TERMINATED = "TERMINATED"
    SETTLED = "SETTLED"

    @property
    def code(self) -> str:
        return _STATUS_CODES[self]


_STATUS_CODES = {
    BillStatus.ISSUED: "CS01",
    BillStatus.ACCEPTED: "CS02",
    BillStatus.RECEIVED: "CS03",
    BillStatus.MATURED: "CS04",
    BillStatus.TERMINATED: "CS05",
    BillStatus.SETTLED: "CS06",
}


class BillFlag(enum.StrEnum):
    """B.4 circulation flag, with its TF code."""

    AWAITING_RECEIPT = "AWAITING_RECEIPT"
    NEGOTIABLE = "NEGOTIABLE"
    LOCKED = "LOCKED"
    NON_TRANSFERABLE = "NON_TRANSFERABLE"
    PLEDGED = "PLEDGED"
    AWAITING_REDEMPTION = "AWAITING_REDEMPTION"
    COLLECTION_IN_TRANSIT = "COLLECTION_IN_TRANSIT"
    RECOURSE = "RECOURSE"
    ENDED = "ENDED"
    # Signed, awaiting the cash leg (B.6 step 3; ECDS suffix 03). The new system publishes no
    # flag for it; its code below is this ledger's own.
    AWAITING_SETTLEMENT = "AWAITING_SETTLEMENT"

    @property
    def code(self) -> str:
        return _FLAG_CODES[self]


_FLAG_CODES = {
    BillFlag.AWAITING_RECEIPT: "TF0101",
    BillFlag.NEGOTIABLE: "TF0301",
    BillFlag.LOCKED: "TF0302",
    BillFlag.NON_TRANSFERABLE: "TF0303",
    BillFlag.PLEDGED: "TF0304",
    BillFlag.AWAITING_REDEMPTION: "TF0305",
    BillFlag.COLLECTION_IN_TRANSIT: "TF0401",
    BillFlag.RECOURSE: "TF0402",
    BillFlag.ENDED: "TF0501",
    BillFlag.AWAITING_SETTLEMENT: "IB0303",
}


class BillKind(enum.StrEnum):
    BANK = "BANK"
    FINANCE = "FINANCE"
    COMMERCIAL = "COMMERCIAL"


class BillAction(enum.StrEnum):
    """The two-step actions of the B.5 table (rows of ``bill_actions.ACTIONS``)."""

    ACCEPTANCE = "ACCEPTANCE"
    RECEIPT = "RECEIPT"
    ENDORSE = "ENDORSE"
    DISCOUNT = "DISCOUNT"
    REDISCOUNT = "REDISCOUNT"
    CB_REDISCOUNT = "CB_REDISCOUNT"
    OUTRIGHT_REPO = "OUTRIGHT_REPO"
    PLEDGE_REPO = "PLEDGE_REPO"
    PLEDGE = "PLEDGE"
    RELEASE = "RELEASE"
    REDEEM = "REDEEM"
    GUARANTEE = "GUARANTEE"
    NT_REVOKE = "NT_REVOKE"
    PRESENT = "PRESENT"
    RECOURSE = "RECOURSE"


class RequestStatus(enum.StrEnum):
    PENDING = "PENDING"
    SIGNED = "SIGNED"  # answered and, for a DVP action, settled
    REJECTED = "REJECTED"
    REVOKED = "REVOKED"
    CLEARED = "CLEARED"
    AWAITING_SETTLEMENT = "AWAITING_SETTLEMENT"  # signed; the cash leg is pending (B.6 step 3)
    SETTLEMENT_FAILED = "SETTLEMENT_FAILED"  # signed; the cash leg failed or timed out


class SettlementStatus(enum.StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"


class RecourseGround(enum.StrEnum):
    REFUSAL = "REFUSAL"
    ACCEPTOR_BANKRUPT = "ACCEPTOR_BANKRUPT"
    ACCEPTOR_CEASED_BUSINESS = "ACCEPTOR_CEASED_BUSINESS"
    ACCEPTOR_DECEASED_OR_ABSCONDED = "ACCEPTOR_DECEASED_OR_ABSCONDED"


class GuaranteeCapacity(enum.StrEnum):
    """Whose obligation a guarantee backs."""

    DRAWER = "DRAWER"
    ACCEPTOR = "ACCEPTOR"
    ENDORSER = "ENDORSER"


class TradeMode(enum.StrEnum):
    OUTRIGHT = "outright"
    REPO = "repo"


class RepoKind(enum.StrEnum):
    PLEDGE = "PLEDGE"
    TRANSFER = "TRANSFER"


class PresentmentType(enum.StrEnum):
    EARLY = "EARLY"
    IN_WINDOW = "IN_WINDOW"
    OVERDUE = "OVERDUE"


# --- assets (docs/domain.md Part C) -----------------------------------------------------------


class InstrumentStatus(enum.StrEnum):
    REGISTERED = "REGISTERED"
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    MATURED = "MATURED"
    REDEEMED = "REDEEMED"
    DEREGISTERED = "DEREGISTERED"


class AssetAction(enum.StrEnum):
    """What a pending asset request asks its counterparty to sign for (C.3)."""

    TRANSFER = "TRANSFER"
    PLEDGE = "PLEDGE"


class ProductCategory(enum.StrEnum):
    FIXED_INCOME = "FIXED_INCOME"
    EQUITY = "EQUITY"
    COMMODITY_DERIVATIVE = "COMMODITY_DERIVATIVE"
    MIXED = "MIXED"


# --- governance -------------------------------------------------------------------------------


class ProposalStatus(enum.StrEnum):
    OPEN = "open"
    EXECUTED = "executed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


def values(vocabulary: type[enum.StrEnum]) -> tuple[str, ...]:
    """The stored texts of an enum, in declaration order (for argument choices and messages)."""
    return tuple(member.value for member in vocabulary)
