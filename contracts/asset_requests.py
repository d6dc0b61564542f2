"""Pending requests of the asset registry (docs/domain.md C.3): a transfer or a pledge that waits
for its counterparty's signature.

Theory of operation
-------------------
``asset.transfer`` and ``asset.pledge`` do not move anything: they record a request (id = the
requesting transaction's id) and reserve its quantity on the holding it comes from, so that no
other transfer, pledge, freeze or redemption can use it. Exactly one answer closes it: the
counterparty signs (the buyer for a transfer, the pledgee for a pledge; the quantity moves or is
pledged), rejects, the initiator revokes, or time clears it. A request is answerable until the
end of its ``expires_day`` (``request_ttl_business_days`` business days after the request, the
same genesis parameter and rule as bill requests); from the next day on it is cleared as of that
day, lazily, by whichever operation next loads the holding (or ``asset.sweep``), exactly as bill
requests time out. Reject, revoke and clearing release exactly the reserved quantity.

This module holds the record and its keys; the operations are in ``assets`` (requests, the
time-out) and ``asset_answers`` (sign, reject, revoke, sweep).

State keys::

    areq/<request id hex>             request record (kept after it closes: the audit trail)
    asset/hr/<ISIN>/<holder>/<last day>/<request id>
                                      the reservation, while pending (``assets``)
    idx/ar/<participant>/<request id> ISIN, while pending, for the holder, initiator and
                                      counterparty (the ``asset_requests`` query)
"""

from __future__ import annotations

from dataclasses import dataclass

from .bill_records import RequestAnswer
from .core import Store
from .errors import ContractError
from .stored import Fields, StoredMap
from .vocabulary import AssetAction, RequestStatus

__all__ = [
    "AssetRequest",
    "asset_request_key",
    "drop_request_index",
    "index_request",
    "load_asset_request",
    "party_index_prefix",
    "save_asset_request",
]


def asset_request_key(request_id: str) -> bytes:
    return b"areq/" + request_id.encode()


def party_index_prefix(pid: str) -> bytes:
    return b"idx/ar/" + pid.encode() + b"/"


@dataclass(frozen=True, slots=True)
class AssetRequest:
    """A request to transfer ``quantity`` of ``isin`` from ``holder`` to ``counterparty``, or to
    pledge it to ``counterparty``; ``initiator`` is the holder, or the registrar for a non-trade
    transfer (then with a ``reason``)."""

    id: str
    action: AssetAction
    isin: str
    holder: str
    initiator: str
    counterparty: str
    quantity: int
    reason: str | None
    status: RequestStatus
    created_day: int
    expires_day: int
    height: int
    closed_day: int | None
    answer: RequestAnswer | None

    @property
    def parties(self) -> tuple[str, ...]:
        return tuple(sorted({self.holder, self.initiator, self.counterparty}))

    def to_stored(self) -> StoredMap:
        return {
            "id": self.id,
            "action": self.action.value,
            "isin": self.isin,
            "holder": self.holder,
            "initiator": self.initiator,
            "counterparty": self.counterparty,
            "quantity": self.quantity,
            "reason": self.reason,
            "status": self.status.value,
            "created_day": self.created_day,
            "expires_day": self.expires_day,
            "height": self.height,
            "closed_day": self.closed_day,
            "answer": None if self.answer is None else self.answer.to_stored(),
        }

    @classmethod
    def from_stored(cls, value: object) -> AssetRequest:
        f = Fields(value, "asset request")
        record = cls(
            id=f.str_("id"),
            action=f.enum_("action", AssetAction),
            isin=f.str_("isin"),
            holder=f.str_("holder"),
            initiator=f.str_("initiator"),
            counterparty=f.str_("counterparty"),
            quantity=f.int_("quantity"),
            reason=f.opt_str("reason"),
            status=f.enum_("status", RequestStatus),
            created_day=f.int_("created_day"),
            expires_day=f.int_("expires_day"),
            height=f.int_("height"),
            closed_day=f.opt_int("closed_day"),
            answer=f.opt_record("answer", RequestAnswer.from_stored),
        )
        f.done()
        return record


def load_asset_request(store: Store, request_id: str) -> AssetRequest:
    record = store.get_obj(asset_request_key(request_id))
    if record is None:
        raise ContractError("UNKNOWN_REQUEST", f"There is no asset request {request_id}.")
    return AssetRequest.from_stored(record)


def save_asset_request(store: Store, request: AssetRequest) -> None:
    store.put(asset_request_key(request.id), request.to_stored())


def index_request(store: Store, request: AssetRequest) -> None:
    for pid in request.parties:
        store.put(party_index_prefix(pid) + request.id.encode(), request.isin)


def drop_request_index(store: Store, request: AssetRequest) -> None:
    for pid in request.parties:
        store.delete(party_index_prefix(pid) + request.id.encode())
