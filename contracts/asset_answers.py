"""Answers to pending asset requests (docs/domain.md C.3): sign, reject, revoke, and the sweep
that applies time-outs.

Theory of operation
-------------------
A request (``asset_requests``) is answered exactly once. Checks run in a fixed order so that
every replica reports the same code: the request exists (``UNKNOWN_REQUEST``) -> time has not
cleared it (the holding is loaded through ``assets.live_holding`` first, so an answer after the
last day finds it cleared: ``REQUEST_NOT_PENDING``) -> it is still open (``DUPLICATE_ANSWER``
after a signature or rejection, ``REQUEST_NOT_PENDING`` after a revocation or time-out) -> the
sender is the one who may answer (``SIGNATURE_INVALID``) -> for a signature, the instrument is
ACTIVE (``INSTRUMENT_NOT_ACTIVE``). Reject and revoke are allowed on a suspended instrument:
releasing a reservation moves nothing to anyone.

A signed transfer moves the reserved quantity to the buyer's available part; a signed pledge
turns it into a pledge whose id is the request id (released later by the pledgee with
``asset.release``). Reject, revoke and the time-out give it back to the holder's available part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .args import Args, day_to_iso
from .asset_requests import AssetRequest, load_asset_request
from .assets import (
    Encumbrance,
    Holding,
    Instrument,
    close_request,
    holding_key,
    live_holding,
    load_holding,
    load_instrument,
    request_attrs,
    save_holding,
    take_reservation,
)
from .bill_records import RequestAnswer
from .core import Env
from .errors import ContractError
from .identity import require_party
from .nesting import names_instrument, require_holder
from .vocabulary import AssetAction, InstrumentStatus, RequestStatus, Role

__all__ = ["OPERATIONS"]


def _scope(isin: str) -> list[str]:
    return [f"a/{isin}"]


def _target(env: Env, args: Args) -> tuple[AssetRequest, Instrument, Holding]:
    """The pending request to answer, its instrument and its holder's holding (after time)."""
    request_id: str = args.str_("request_id", max_len=128)
    request = load_asset_request(env.store, request_id)
    instrument = load_instrument(env.store, request.isin)
    holding = live_holding(env, request.isin, request.holder)
    request = load_asset_request(env.store, request_id)  # time may have cleared it just now
    if request.status in (RequestStatus.SIGNED, RequestStatus.REJECTED):
        raise ContractError(
            "DUPLICATE_ANSWER",
            f"Request {request.id} was already answered ({request.status.lower()}).",
        )
    if request.status is RequestStatus.REVOKED:
        raise ContractError("REQUEST_NOT_PENDING", f"Request {request.id} is revoked.")
    if request.status is not RequestStatus.PENDING:
        raise ContractError(
            "REQUEST_NOT_PENDING",
            f"Request {request.id} expired after {day_to_iso(request.expires_day)}.",
        )
    return request, instrument, holding


def _answer(env: Env, reason: str | None = None) -> RequestAnswer:
    return RequestAnswer(env.sender.id, env.today, env.ctx.height, reason)


def _counterparty(env: Env, request: AssetRequest) -> None:
    """The counterparty answers; a product (an ISIN receiving a transfer) cannot sign, so its
    registrar, which runs the product's register, answers for it (docs/domain.md C.4)."""
    answerer = request.counterparty
    if names_instrument(answerer):
        answerer = load_instrument(env.store, answerer).registrar
    if env.sender.id != answerer:
        who = answerer if answerer == request.counterparty else f"{answerer} (for the product)"
        raise ContractError("SIGNATURE_INVALID", f"Only {who} may answer this request.")


def op_sign(env: Env, args: Args) -> None:
    request, instrument, holding = _target(env, args)
    args.done()
    _counterparty(env, request)
    if instrument.status is not InstrumentStatus.ACTIVE:
        raise ContractError(
            "INSTRUMENT_NOT_ACTIVE",
            f"Instrument {instrument.isin} is {instrument.status}; a request on it can be "
            "signed only while it is ACTIVE.",
        )
    if request.action is AssetAction.TRANSFER:
        # Checked again now, when the receiving holding is created: the nesting of products
        # may have changed while the request was pending.
        require_holder(env.store, request.counterparty, request.isin, "counterparty")
    else:
        require_party(env.store, request.counterparty, "counterparty")
    holding = take_reservation(env.store, holding, request)
    holding = close_request(env, holding, request, RequestStatus.SIGNED, env.today, _answer(env))
    quantity = request.quantity
    if request.action is AssetAction.TRANSFER:
        save_holding(env.store, holding)
        receiver = load_holding(env.store, request.isin, request.counterparty)
        save_holding(env.store, replace(receiver, available=receiver.available + quantity))
        env.store.emit("asset.transferred", request_attrs(request), _scope(request.isin))
        return
    holding = replace(
        holding,
        pledged=holding.pledged + quantity,
        pledges={**holding.pledges, request.id: Encumbrance(request.counterparty, quantity)},
    )
    save_holding(env.store, holding)
    env.store.emit(
        "asset.pledged", request_attrs(request, pledge_id=request.id), _scope(request.isin)
    )


def op_reject(env: Env, args: Args) -> None:
    request, _, holding = _target(env, args)
    reason: str = args.str_("reason", optional=True, max_len=256) or "refused"
    args.done()
    _counterparty(env, request)
    answer = _answer(env, reason)
    holding = close_request(env, holding, request, RequestStatus.REJECTED, env.today, answer)
    save_holding(env.store, holding)
    env.store.emit(
        "asset.request_rejected", request_attrs(request, answer=reason), _scope(request.isin)
    )


def op_revoke(env: Env, args: Args) -> None:
    request, _, holding = _target(env, args)
    args.done()
    if env.sender.id != request.initiator:
        raise ContractError(
            "SIGNATURE_INVALID", f"Only {request.initiator}, who asked, may revoke it."
        )
    holding = close_request(env, holding, request, RequestStatus.REVOKED, env.today, _answer(env))
    save_holding(env.store, holding)
    env.store.emit("asset.request_revoked", request_attrs(request), _scope(request.isin))


def op_sweep(env: Env, args: Args) -> None:
    """Apply the time-outs that are due on an instrument's holdings (what any later operation on
    a holding would apply first), so that queries show them."""
    isin: str = args.code_("isin", "isin")
    args.done()
    instrument = load_instrument(env.store, isin)
    if (
        not env.sender.has(Role.CONSORTIUM_ADMIN)
        and env.sender.id != instrument.registrar
        and env.store.get(holding_key(isin, env.sender.id)) is None
    ):
        raise ContractError(
            "FORBIDDEN", "Only the operator, the registrar or a holder may sweep an instrument."
        )
    holders = [
        Holding.from_stored(record).holder
        for _, record in env.store.scan_objs(b"asset/h/" + isin.encode() + b"/")
    ]
    for holder in holders:
        live_holding(env, isin, holder)


OPERATIONS: dict[str, Callable[[Env, Args], None]] = {
    "asset.sign": op_sign,
    "asset.reject": op_reject,
    "asset.revoke": op_revoke,
    "asset.sweep": op_sweep,
}
