"""Typed records of the bill state: package, piece (with its encumbrances, guarantees and chain)
and request, with their exact stored forms.

Theory of operation
-------------------
Records are frozen: a handler derives the next piece with ``dataclasses.replace`` and saves it,
so nothing is changed behind the store's back. ``to_stored()`` produces the very map the state
held before records existed (every key always present, ``None`` where empty, enums as their
text); ``from_stored()`` demands that form and raises ``StoredFormError`` otherwise.

Chain entries (B.8) and request parameters vary by action; their common fields are typed and
the action-specific ones are kept, in stored form, in ``extra`` / ``params`` with typed getters.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .errors import StoredFormError
from .stored import Fields, StoredMap, StoredValue
from .vocabulary import (
    BillAction,
    BillFlag,
    BillKind,
    BillStatus,
    GuaranteeCapacity,
    PresentmentType,
    RepoKind,
    RequestStatus,
    SettlementStatus,
)

__all__ = [
    "BillFreeze",
    "ChainEntry",
    "Guarantee",
    "Package",
    "Params",
    "Piece",
    "Refusal",
    "Repo",
    "Request",
    "RequestAnswer",
    "Settlement",
]


@dataclass(frozen=True, slots=True)
class Package:
    """Bill-level attributes (``bill/<package no>``)."""

    package_no: str
    kind: BillKind
    currency: str
    amount_fen: int
    splittable: bool
    drawer: str
    acceptor: str
    payee: str
    issue_date: int
    maturity_date: int
    acceptance_date: int | None
    drawer_nt: bool
    disclosed: bool
    height: int

    def to_stored(self) -> StoredMap:
        return {
            "package_no": self.package_no,
            "kind": self.kind.value,
            "currency": self.currency,
            "amount_fen": self.amount_fen,
            "splittable": self.splittable,
            "drawer": self.drawer,
            "acceptor": self.acceptor,
            "payee": self.payee,
            "issue_date": self.issue_date,
            "maturity_date": self.maturity_date,
            "acceptance_date": self.acceptance_date,
            "drawer_nt": self.drawer_nt,
            "disclosed": self.disclosed,
            "height": self.height,
        }

    @classmethod
    def from_stored(cls, value: object) -> Package:
        f = Fields(value, "bill package")
        record = cls(
            package_no=f.str_("package_no"),
            kind=f.enum_("kind", BillKind),
            currency=f.str_("currency"),
            amount_fen=f.int_("amount_fen"),
            splittable=f.bool_("splittable"),
            drawer=f.str_("drawer"),
            acceptor=f.str_("acceptor"),
            payee=f.str_("payee"),
            issue_date=f.int_("issue_date"),
            maturity_date=f.int_("maturity_date"),
            acceptance_date=f.opt_int("acceptance_date"),
            drawer_nt=f.bool_("drawer_nt"),
            disclosed=f.bool_("disclosed"),
            height=f.int_("height"),
        )
        f.done()
        return record


@dataclass(frozen=True, slots=True)
class Repo:
    """The repo leg a piece is under (discount or trade with an end date)."""

    kind: RepoKind
    cash_taker: str
    cash_provider: str
    start_day: int
    end_date: int
    rate_ppm: int

    def to_stored(self) -> StoredMap:
        return {
            "kind": self.kind.value,
            "cash_taker": self.cash_taker,
            "cash_provider": self.cash_provider,
            "start_day": self.start_day,
            "end_date": self.end_date,
            "rate_ppm": self.rate_ppm,
        }

    @classmethod
    def from_stored(cls, value: object) -> Repo:
        f = Fields(value, "bill repo")
        record = cls(
            kind=f.enum_("kind", RepoKind),
            cash_taker=f.str_("cash_taker"),
            cash_provider=f.str_("cash_provider"),
            start_day=f.int_("start_day"),
            end_date=f.int_("end_date"),
            rate_ppm=f.int_("rate_ppm"),
        )
        f.done()
        return record


@dataclass(frozen=True, slots=True)
class BillFreeze:
    """A judicial or supervisory freeze of a piece."""

    case_ref: str
    by: str
    day: int

    def to_stored(self) -> StoredMap:
        return {"case_ref": self.case_ref, "by": self.by, "day": self.day}

    @classmethod
    def from_stored(cls, value: object) -> BillFreeze:
        f = Fields(value, "bill freeze")
        record = cls(f.str_("case_ref"), f.str_("by"), f.int_("day"))
        f.done()
        return record


@dataclass(frozen=True, slots=True)
class Refusal:
    """A recorded refusal of payment: the presentment type, the day and the reason."""

    type: PresentmentType
    day: int
    reason: str

    def to_stored(self) -> StoredMap:
        return {"type": self.type.value, "day": self.day, "reason": self.reason}

    @classmethod
    def from_stored(cls, value: object) -> Refusal:
        f = Fields(value, "bill refusal")
        record = cls(f.enum_("type", PresentmentType), f.int_("day"), f.str_("reason"))
        f.done()
        return record


@dataclass(frozen=True, slots=True)
class Guarantee:
    guarantor: str
    guaranteed: str
    capacity: GuaranteeCapacity
    day: int

    def to_stored(self) -> StoredMap:
        return {
            "guarantor": self.guarantor,
            "guaranteed": self.guaranteed,
            "capacity": self.capacity.value,
            "day": self.day,
        }

    @classmethod
    def from_stored(cls, value: object) -> Guarantee:
        f = Fields(value, "bill guarantee")
        record = cls(
            f.str_("guarantor"),
            f.str_("guaranteed"),
            f.enum_("capacity", GuaranteeCapacity),
            f.int_("day"),
        )
        f.done()
        return record


_CHAIN_FIELDS = (
    "seq",
    "type",
    "from",
    "to",
    "day",
    "height",
    "timestamp_ms",
    "tx_id",
    "range",
    "amount_fen",
)


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """One completed action of the piece's chain (B.8); ``extra`` holds the action's own fields
    (rate, interest, reason ...) in stored form."""

    seq: int
    type: str
    source: str | None  # stored as "from"
    target: str | None  # stored as "to"
    day: int
    height: int
    timestamp_ms: int
    tx_id: str
    range: str
    amount_fen: int
    extra: StoredMap = field(default_factory=dict)

    @property
    def nt(self) -> bool:
        """The endorsement carried a not-transferable mark (art. 34)."""
        return self.extra.get("nt") is True

    @property
    def ref_seq(self) -> int | None:
        value = self.extra.get("ref_seq")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def to_stored(self) -> StoredMap:
        return {
            "seq": self.seq,
            "type": self.type,
            "from": self.source,
            "to": self.target,
            "day": self.day,
            "height": self.height,
            "timestamp_ms": self.timestamp_ms,
            "tx_id": self.tx_id,
            "range": self.range,
            "amount_fen": self.amount_fen,
            **self.extra,
        }

    @classmethod
    def from_stored(cls, value: object) -> ChainEntry:
        f = Fields(value, "bill chain entry")
        record = cls(
            seq=f.int_("seq"),
            type=f.str_("type"),
            source=f.opt_str("from"),
            target=f.opt_str("to"),
            day=f.int_("day"),
            height=f.int_("height"),
            timestamp_ms=f.int_("timestamp_ms"),
            tx_id=f.str_("tx_id"),
            range=f.str_("range"),
            amount_fen=f.int_("amount_fen"),
            extra=f.rest(_CHAIN_FIELDS),
        )
        f.done()
        return record


@dataclass(frozen=True, slots=True)
class Piece:
    """A range of a package with its own state (``bill/<package no>/p/<start:012d>``)."""

    start: int
    end: int
    status: BillStatus
    flag: BillFlag
    holder: str | None
    nt: bool
    nt_setter: str | None
    nt_seq: int | None
    pledgee: str | None
    repo: Repo | None
    frozen: BillFreeze | None
    request: str | None
    discounted: bool
    refusal: Refusal | None
    recourse_paid_day: int | None
    rights_expired: bool
    paid_to: str | None
    guarantees: tuple[Guarantee, ...]
    chain: tuple[ChainEntry, ...]

    def with_state(self, status: BillStatus, flag: BillFlag) -> Piece:
        return replace(self, status=status, flag=flag)

    def to_stored(self) -> StoredMap:
        return {
            "start": self.start,
            "end": self.end,
            "status": self.status.value,
            "flag": self.flag.value,
            "holder": self.holder,
            "nt": self.nt,
            "nt_setter": self.nt_setter,
            "nt_seq": self.nt_seq,
            "pledgee": self.pledgee,
            "repo": None if self.repo is None else self.repo.to_stored(),
            "frozen": None if self.frozen is None else self.frozen.to_stored(),
            "request": self.request,
            "discounted": self.discounted,
            "refusal": None if self.refusal is None else self.refusal.to_stored(),
            "recourse_paid_day": self.recourse_paid_day,
            "rights_expired": self.rights_expired,
            "paid_to": self.paid_to,
            "guarantees": [g.to_stored() for g in self.guarantees],
            "chain": [entry.to_stored() for entry in self.chain],
        }

    @classmethod
    def from_stored(cls, value: object) -> Piece:
        f = Fields(value, "bill piece")
        record = cls(
            start=f.int_("start"),
            end=f.int_("end"),
            status=f.enum_("status", BillStatus),
            flag=f.enum_("flag", BillFlag),
            holder=f.opt_str("holder"),
            nt=f.bool_("nt"),
            nt_setter=f.opt_str("nt_setter"),
            nt_seq=f.opt_int("nt_seq"),
            pledgee=f.opt_str("pledgee"),
            repo=f.opt_record("repo", Repo.from_stored),
            frozen=f.opt_record("frozen", BillFreeze.from_stored),
            request=f.opt_str("request"),
            discounted=f.bool_("discounted"),
            refusal=f.opt_record("refusal", Refusal.from_stored),
            recourse_paid_day=f.opt_int("recourse_paid_day"),
            rights_expired=f.bool_("rights_expired"),
            paid_to=f.opt_str("paid_to"),
            guarantees=f.records("guarantees", Guarantee.from_stored),
            chain=f.records("chain", ChainEntry.from_stored),
        )
        f.done()
        return record


@dataclass(frozen=True, slots=True)
class Params:
    """A request's action-specific parameters, in stored form, with typed getters."""

    values: StoredMap = field(default_factory=dict)

    def _get(self, key: str) -> StoredValue:
        if key not in self.values:
            raise StoredFormError(f"bill request params.{key} is missing")
        return self.values[key]

    def str_(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str):
            raise StoredFormError(f"bill request params.{key} must be text")
        return value

    def int_(self, key: str) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise StoredFormError(f"bill request params.{key} must be an integer")
        return value

    def opt_int(self, key: str) -> int | None:
        """The integer under ``key``; None when the key is absent or holds None."""
        if self.values.get(key) is None:
            return None
        return self.int_(key)

    def bool_(self, key: str) -> bool:
        value = self._get(key)
        if not isinstance(value, bool):
            raise StoredFormError(f"bill request params.{key} must be true or false")
        return value

    def with_(self, **values: StoredValue) -> Params:
        return Params({**self.values, **values})


@dataclass(frozen=True, slots=True)
class RequestAnswer:
    """Who answered a request, when, and (for a rejection) why. ``automatic`` marks an answer
    the exchange gave for the acceptor (B.7); ``by`` then names the acceptor it answered for."""

    by: str
    day: int
    height: int
    reason: str | None = None
    automatic: bool = False

    def to_stored(self) -> StoredMap:
        stored: StoredMap = {"by": self.by, "day": self.day, "height": self.height}
        if self.reason is not None:
            stored["reason"] = self.reason
        if self.automatic:  # only then, so that manual answers keep their stored form
            stored["automatic"] = True
        return stored

    @classmethod
    def from_stored(cls, value: object) -> RequestAnswer:
        f = Fields(value, "bill request answer")
        record = cls(
            f.str_("by"),
            f.int_("day"),
            f.int_("height"),
            f.str_("reason") if f.has("reason") else None,
            f.bool_("automatic") if f.has("automatic") else False,
        )
        f.done()
        return record


@dataclass(frozen=True, slots=True)
class Request:
    """A two-step action awaiting (or past) its answer (``breq/<request id>``)."""

    id: str
    action: BillAction
    package_no: str
    start: int
    end: int
    initiator: str
    counterparty: str
    params: Params
    status: RequestStatus
    prev_status: BillStatus
    prev_flag: BillFlag
    created_day: int
    expires_day: int
    height: int
    closed_day: int | None
    answer: RequestAnswer | None

    def to_stored(self) -> StoredMap:
        return {
            "id": self.id,
            "action": self.action.value,
            "package_no": self.package_no,
            "start": self.start,
            "end": self.end,
            "initiator": self.initiator,
            "counterparty": self.counterparty,
            "params": dict(self.params.values),
            "status": self.status.value,
            "prev_status": self.prev_status.value,
            "prev_flag": self.prev_flag.value,
            "created_day": self.created_day,
            "expires_day": self.expires_day,
            "height": self.height,
            "closed_day": self.closed_day,
            "answer": None if self.answer is None else self.answer.to_stored(),
        }

    @classmethod
    def from_stored(cls, value: object) -> Request:
        f = Fields(value, "bill request")
        record = cls(
            id=f.str_("id"),
            action=f.enum_("action", BillAction),
            package_no=f.str_("package_no"),
            start=f.int_("start"),
            end=f.int_("end"),
            initiator=f.str_("initiator"),
            counterparty=f.str_("counterparty"),
            params=Params(f.map_("params")),
            status=f.enum_("status", RequestStatus),
            prev_status=f.enum_("prev_status", BillStatus),
            prev_flag=f.enum_("prev_flag", BillFlag),
            created_day=f.int_("created_day"),
            expires_day=f.int_("expires_day"),
            height=f.int_("height"),
            closed_day=f.opt_int("closed_day"),
            answer=f.opt_record("answer", RequestAnswer.from_stored),
        )
        f.done()
        return record


@dataclass(frozen=True, slots=True)
class Settlement:
    """The cash leg of a signed DVP request (``bset/<request id>``, B.6 step 3).

    ``after`` is the piece as the signature made it, in stored form: confirmation writes it,
    so the piece moves exactly as the signature decided; failure or time-out restores the
    request's previous (status, flag) instead. ``payer`` pays ``amount_fen`` to ``payee``."""

    request_id: str
    action: BillAction
    package_no: str
    start: int
    end: int
    payer: str
    payee: str
    amount_fen: int
    signed_day: int
    deadline_day: int
    status: SettlementStatus
    after: StoredMap
    closed_day: int | None
    closed_by: str | None
    reason: str | None

    def to_stored(self) -> StoredMap:
        return {
            "request_id": self.request_id,
            "action": self.action.value,
            "package_no": self.package_no,
            "start": self.start,
            "end": self.end,
            "payer": self.payer,
            "payee": self.payee,
            "amount_fen": self.amount_fen,
            "signed_day": self.signed_day,
            "deadline_day": self.deadline_day,
            "status": self.status.value,
            "after": dict(self.after),
            "closed_day": self.closed_day,
            "closed_by": self.closed_by,
            "reason": self.reason,
        }

    @classmethod
    def from_stored(cls, value: object) -> Settlement:
        f = Fields(value, "bill settlement")
        record = cls(
            request_id=f.str_("request_id"),
            action=f.enum_("action", BillAction),
            package_no=f.str_("package_no"),
            start=f.int_("start"),
            end=f.int_("end"),
            payer=f.str_("payer"),
            payee=f.str_("payee"),
            amount_fen=f.int_("amount_fen"),
            signed_day=f.int_("signed_day"),
            deadline_day=f.int_("deadline_day"),
            status=f.enum_("status", SettlementStatus),
            after=f.map_("after"),
            closed_day=f.opt_int("closed_day"),
            closed_by=f.opt_str("closed_by"),
            reason=f.opt_str("reason"),
        )
        f.done()
        return record
