"""Electronic commercial bills (docs/domain.md Part B): a table-driven state machine over bill
pieces.

This module holds the operations (request, answer, unilateral and system actions); the action
table with its guards and effects is in ``bill_actions``, and piece storage with the time-driven
transitions in ``bill_state``.

Theory of operation
-------------------
A bill package (30-digit number) is issued as one piece: range ``0`` (non-splittable) or
``1-N`` (splittable, N = face amount in fen, B.9). Every piece has a state = (status, flag) (B.4)::

    status: ISSUED CS01, ACCEPTED CS02, RECEIVED CS03, MATURED CS04, TERMINATED CS05, SETTLED CS06
    flag:   AWAITING_RECEIPT TF0101, NEGOTIABLE TF0301, LOCKED TF0302, NON_TRANSFERABLE TF0303,
            PLEDGED TF0304, AWAITING_REDEMPTION TF0305, COLLECTION_IN_TRANSIT TF0401,
            RECOURSE TF0402, ENDED TF0501

Two-step actions (B.6) are rows of ``ACTIONS``: each names the statuses and flags it starts from,
the flag that locks the piece while the request is pending, whether it names an amount (and so
may split the piece), and three functions: ``initiator`` (who may ask), ``guard`` (the action's
preconditions; returns the counterparty who must answer) and ``on_sign`` (the effect). A request
records the exact previous (status, flag); reject, revoke and clearing restore it. Exactly one
terminal answer per request: a second answer is ``DUPLICATE_ANSWER``, an answer to a revoked,
cleared or expired request is ``REQUEST_NOT_PENDING``.

Checks run in a fixed order so that every replica reports the same code: frozen -> locked ->
status (terminal, rights expired, after maturity) -> initiator -> flag -> action guard ->
amount. Splitting follows the prototype rule of B.9: the moved range is the low end
``[s, s+k-1]`` and keeps the piece's key; the retained ``[s+k, e]`` becomes a new piece with a copy
of every bill-level attribute, the chain and the guarantees. Pieces are never merged or
renumbered, so they never overlap and always partition the package.

Time-driven transitions (maturity roll, the exchange's presentment of FI-held pieces at maturity
and its payment answer for bank and finance-company acceptances, rights expiry, request
time-outs, unanswered commercial presentment auto-refusal) depend only on the agreed block date
and the genesis calendar. They are applied lazily whenever a piece is loaded by an operation (and
by ``bill.sweep``), each as of the day it fell due, so every replica computes them identically,
whichever block applies them, and nothing needs a clock.

Delivery versus payment (B.6 step 3): with the genesis switch ``dvp_settlement`` the signature of
a row marked ``dvp`` (discounts, rediscounts, repo legs, payment, recourse settlement) holds the
piece AWAITING_SETTLEMENT with a cash-leg record; ``bill.settle_confirm`` by a settlement agent
writes the piece the signature made, ``bill.settle_fail`` or the time-out restores the exact
previous state, and a closed cash leg refuses any further answer (``DUPLICATE_SETTLEMENT``), so
nothing settles twice. Off (the default), a signature moves the piece at once.

Prototype simplifications (docs/domain.md, "Not modelled"): cash balances are not on the ledger
(the settlement agent's word is taken); a recourse notice is a request whose acceptance by the
recoursee is the settlement (rows 19 + 20 collapsed); repo interest is recorded, not paid; the
access institution answering on a commercial acceptor's behalf is not modelled.

State keys::

    bill/<package no>                       package record (bill-level attributes)
    bill/<package no>/p/<start:012d>        piece record (state, holder, chain, guarantees)
    breq/<request id hex>                   request record (request id = requesting tx id)
    bset/<request id hex>                   cash leg of a signed DVP request
    idx/bp/<participant>/<package no>       sorted list of the participant's capacities
    hist/b/<package no>/...                 history entries (core.Store.emit)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .args import Args, bad, day_to_iso
from .bill_actions import ACTIONS, ACTOR_CHECKS, Action, _is_drawer
from .bill_records import BillFreeze, Package, Params, Piece, Request, RequestAnswer, Settlement
from .bill_state import (
    BILL_KINDS,
    FLAG_CODES,
    STATUS_CODES,
    _attrs,
    _chain,
    _emit_answer,
    _involve,
    _involve_key,
    _load_package,
    _load_piece,
    _load_request,
    _locate,
    _normalise,
    _params,
    _piece_args,
    _pieces,
    _record_refusal,
    _request_due,
    _restore,
    _rights_expiry,
    _save_package,
    _save_piece,
    _save_request,
    _scope,
    await_settlement,
    fail_settlement,
    load_calendar,
    load_parameters,
    load_settlement,
    needs_cash_leg,
    package_key,
    piece_amount,
    piece_range,
    presentment_window_end,
    request_expiry_day,
    request_key,
    settlement_key,
)
from .calendar import (
    add_months,
)
from .codec import INT_MIN
from .core import Env
from .errors import ContractError
from .identifiers import (
    BILL_KIND_DIGITS_BANK,
    BILL_KIND_DIGITS_COMMERCIAL,
    PACKAGE_AMOUNT_MAX_FEN,
)
from .identity import require_party
from .money import parse_amount
from .stored import StoredValue
from .vocabulary import (
    BillAction,
    BillFlag,
    BillKind,
    BillStatus,
    RequestStatus,
    Role,
    SettlementStatus,
)

__all__ = [
    "ACTIONS",
    "FLAG_CODES",
    "OPERATIONS",
    "STATUS_CODES",
    "load_calendar",
    "load_parameters",
    "package_key",
    "piece_amount",
    "piece_range",
    "presentment_window_end",
    "request_key",
]

# --- generic request / answer machinery ------------------------------------------------------


def _check_open(piece: Piece) -> None:
    if piece.frozen is not None:
        raise ContractError("FROZEN", f"This piece is frozen under case {piece.frozen.case_ref}.")
    if piece.request is not None:
        raise ContractError("PIECE_LOCKED", f"Request {piece.request} is pending on this piece.")


def _check_status(env: Env, package: Package, piece: Piece, action: Action) -> None:
    status, flag = piece.status, piece.flag
    what = action.name.replace("_", " ").capitalize()
    if status in (BillStatus.TERMINATED, BillStatus.SETTLED):
        raise ContractError("WRONG_STATE", f"This piece is {status.lower()}.")
    if flag is BillFlag.ENDED:
        raise ContractError(
            "WINDOW_CLOSED",
            f"The rights on this bill expired after "
            f"{day_to_iso(_rights_expiry(package, _params(env)))}.",
        )
    if status not in action.statuses:
        if status is BillStatus.MATURED and action.before_maturity:
            raise ContractError(
                "AFTER_MATURITY",
                f"The bill matured on {day_to_iso(package.maturity_date)}; "
                f"{what.lower()} is only possible before maturity.",
            )
        raise ContractError(
            "WRONG_STATE",
            f"{what} is not possible while the piece is {status} ({status.code}).",
        )


def _check_flag(piece: Piece, action: Action) -> None:
    flag = piece.flag
    if flag in action.flags:
        return
    if flag is BillFlag.NON_TRANSFERABLE:
        raise ContractError(
            "NON_TRANSFERABLE",
            f"This piece is marked not transferable by {piece.nt_setter}.",
        )
    if flag is BillFlag.PLEDGED:
        raise ContractError("PLEDGED", f"This piece is pledged to {piece.pledgee}.")
    what = action.name.replace("_", " ").capitalize()
    raise ContractError(
        "WRONG_STATE", f"{what} is not possible while the piece is {flag} ({flag.code})."
    )


def _take(env: Env, package: Package, piece: Piece, amount: int | None) -> Piece:
    """The piece of ``amount`` fen to act on; splits a splittable piece (B.9)."""
    held = piece_amount(package, piece)
    if amount is None or amount == held:
        return piece
    if amount <= 0 or amount > held:
        raise ContractError(
            "SPLIT_INVALID", f"The amount must be between 1 and the {held} fen held."
        )
    if piece.start == 0:
        raise ContractError(
            "PARTIAL_ENDORSEMENT",
            f"This bill is not splittable: the whole {held} fen must move together.",
        )
    start, end = piece.start, piece.end
    retained = replace(piece, start=start + amount)
    moved = replace(piece, end=start + amount - 1)
    _save_piece(env.store, package.package_no, retained)
    env.store.emit(
        "bill.split",
        {
            "package_no": package.package_no,
            "from_range": f"{start}-{end}",
            "moved_range": piece_range(moved),
            "retained_range": piece_range(retained),
        },
        _scope(package.package_no),
    )
    return moved


def _request_ttl_end(env: Env, package: Package, action: Action) -> int:
    params = _params(env)
    if action.name is BillAction.PRESENT:
        return max(env.today, package.maturity_date) + params.payment_answer_days
    return request_expiry_day(env)


def _request_handler(action: Action) -> Callable[[Env, Args], None]:
    def handler(env: Env, args: Args) -> None:
        package_no, range_text = _piece_args(args)
        amount: int | None = (
            args.int_("amount_fen", optional=True, minimum=INT_MIN) if action.partial else None
        )
        params = action.read(args)
        args.done()
        package, piece = _locate(env, package_no, range_text)
        _check_open(piece)
        _check_status(env, package, piece, action)
        ACTOR_CHECKS[action.actor](env, package, piece, params)
        _check_flag(piece, action)
        counterparty, params = action.guard(env, package, piece, params)
        piece = _take(env, package, piece, amount)
        request_id = env.ctx.tx_id.hex()
        request = Request(
            id=request_id,
            action=action.name,
            package_no=package_no,
            start=piece.start,
            end=piece.end,
            initiator=env.sender.id,
            counterparty=counterparty,
            params=params,
            status=RequestStatus.PENDING,
            prev_status=piece.status,
            prev_flag=piece.flag,
            created_day=env.today,
            expires_day=_request_ttl_end(env, package, action),
            height=env.ctx.height,
            closed_day=None,
            answer=None,
        )
        if env.store.get(request_key(request_id)) is not None:
            raise AssertionError("transaction ids are unique; a request id cannot repeat")
        piece = replace(piece, request=request_id, flag=action.lock_flag)
        _save_request(env.store, request)
        _save_piece(env.store, package_no, piece)
        _involve(env.store, counterparty, package_no, action.name.lower())
        env.store.emit(
            "bill.requested",
            _attrs(
                package,
                piece,
                request_id=request_id,
                action=action.name.value,
                initiator=env.sender.id,
                counterparty=counterparty,
                expires=day_to_iso(request.expires_day),
            ),
            _scope(package_no),
        )

    handler.__name__ = f"op_{action.name.lower()}"
    return handler


# Statuses of a request its counterparty has answered (a time-out's refusal has no answer).
_ANSWERED = frozenset(
    {
        RequestStatus.SIGNED,
        RequestStatus.REJECTED,
        RequestStatus.AWAITING_SETTLEMENT,
        RequestStatus.SETTLEMENT_FAILED,
    }
)


def _answer_target(env: Env, args: Args) -> tuple[Request, Package, Piece]:
    """Load a request to answer, revoke or clear, with its package and (normalised) piece."""
    request_id: str = args.str_("request_id", max_len=128)
    request = _load_request(env.store, request_id)
    package = _load_package(env.store, request.package_no)
    piece = _load_piece(env.store, request.package_no, request.start)
    assert piece is not None, "a request always points at an existing piece"
    if piece.request == request.id:
        # Time may have answered it already (the exchange's answer, a time-out): see that first.
        piece = _normalise(env, package, piece)
        request = _load_request(env.store, request_id)
    answer = request.answer
    if request.status in _ANSWERED and answer is not None:
        automatically = " automatically" if answer.automatic else ""
        raise ContractError(
            "DUPLICATE_ANSWER",
            f"Request {request.id} was already answered{automatically} ({request.status.lower()}).",
        )
    if request.status is RequestStatus.REVOKED:
        raise ContractError(
            "REQUEST_NOT_PENDING", f"Request {request.id} is {request.status.lower()}."
        )
    if request.status is not RequestStatus.PENDING:  # cleared or refused by its time-out
        raise ContractError(
            "REQUEST_NOT_PENDING",
            f"Request {request.id} expired after {day_to_iso(request.expires_day)}.",
        )
    assert piece.request == request.id
    return request, package, piece


def _finish(
    env: Env,
    package: Package,
    piece: Piece,
    request: Request,
    status: RequestStatus,
    kind: str,
    reason: str | None = None,
) -> None:
    answer = RequestAnswer(env.sender.id, env.today, env.ctx.height, reason)
    request = replace(request, status=status, closed_day=env.today, answer=answer)
    _save_request(env.store, request)
    _save_piece(env.store, package.package_no, piece)
    extra: dict[str, StoredValue] = {} if reason is None else {"reason": reason}
    _emit_answer(env, kind, package, piece, request, **extra)


def op_sign(env: Env, args: Args) -> None:
    request, package, piece = _answer_target(env, args)
    args.done()
    if env.sender.id != request.counterparty:
        raise ContractError(
            "SIGNATURE_INVALID", f"Only {request.counterparty} may answer this request."
        )
    if piece.frozen is not None:
        raise ContractError("FROZEN", "This piece is frozen; it cannot be signed for.")
    action = ACTIONS[request.action]
    after = action.on_sign(env, package, replace(piece, request=None), request)
    if action.target is not None:
        target = action.target
        if target is BillStatus.RECEIVED and env.today >= package.maturity_date:
            target = BillStatus.MATURED
        after = replace(after, status=target)
    signed = f"bill.{action.name.lower()}_signed"
    if (
        action.dvp
        and _params(env).dvp_settlement
        and needs_cash_leg(package, request, piece, after)
    ):
        answer = RequestAnswer(env.sender.id, env.today, env.ctx.height)
        piece = await_settlement(env, package, piece, after, request, answer, env.today)
        _save_piece(env.store, package.package_no, piece)
        _emit_answer(env, signed, package, piece, request, awaiting_settlement=True)
        return
    if after.holder is not None:
        _involve(env.store, after.holder, package.package_no, "holder")
    _finish(env, package, after, request, RequestStatus.SIGNED, signed)


def op_reject(env: Env, args: Args) -> None:
    request, package, piece = _answer_target(env, args)
    reason: str = args.str_("reason", optional=True) or "refused"
    args.done()
    if env.sender.id != request.counterparty:
        raise ContractError(
            "SIGNATURE_INVALID", f"Only {request.counterparty} may answer this request."
        )
    if piece.frozen is not None:
        raise ContractError("FROZEN", "This piece is frozen; it cannot be answered.")
    piece, request = _restore(env, package, piece, request, RequestStatus.REJECTED)
    if request.action is BillAction.PRESENT:
        piece = _record_refusal(env, package, piece, request, reason, False)
    _finish(env, package, piece, request, RequestStatus.REJECTED, "bill.request_rejected", reason)


def op_revoke(env: Env, args: Args) -> None:
    request, package, piece = _answer_target(env, args)
    args.done()
    if env.sender.id != request.initiator:
        raise ContractError(
            "SIGNATURE_INVALID", f"Only {request.initiator}, who asked, may revoke it."
        )
    if piece.frozen is not None:
        raise ContractError("FROZEN", "This piece is frozen; the request cannot be revoked.")
    piece, request = _restore(env, package, piece, request, RequestStatus.REVOKED)
    _finish(env, package, piece, request, RequestStatus.REVOKED, "bill.request_revoked")


def op_clear_request(env: Env, args: Args) -> None:
    request = _load_request(env.store, args.str_("request_id", max_len=128))
    args.done()
    if not env.sender.has(Role.CONSORTIUM_ADMIN) and env.sender.id not in (
        request.initiator,
        request.counterparty,
    ):
        raise ContractError("FORBIDDEN", "Only the operator or a party may clear a request.")
    if request.status not in (RequestStatus.PENDING, RequestStatus.AWAITING_SETTLEMENT):
        raise ContractError(
            "REQUEST_NOT_PENDING", f"Request {request.id} is {request.status.lower()}."
        )
    package = _load_package(env.store, request.package_no)
    piece = _load_piece(env.store, request.package_no, request.start)
    assert piece is not None
    due = _request_due(env, package, piece, request)
    if env.today < due:
        raise ContractError(
            "WRONG_STATE", f"Request {request.id} runs until {day_to_iso(due - 1)}."
        )
    _normalise(env, package, piece)  # clears, refuses or answers it, and saves


# --- settlement of DVP cash legs (B.6 step 3) --------------------------------------------------


def _settlement_target(env: Env, args: Args) -> tuple[Request, Package, Piece, Settlement]:
    """A request awaiting its cash leg, for the settlement agent (after time has had its say)."""
    request_id: str = args.str_("request_id", max_len=128)
    if not env.sender.has(Role.SETTLEMENT_AGENT):
        raise ContractError(
            "FORBIDDEN", "Only a settlement agent confirms or fails the cash leg of a bill."
        )
    request = _load_request(env.store, request_id)
    package = _load_package(env.store, request.package_no)
    piece = _load_piece(env.store, request.package_no, request.start)
    assert piece is not None, "a request always points at an existing piece"
    if piece.request == request.id:
        piece = _normalise(env, package, piece)  # a time-out may have restored it already
        request = _load_request(env.store, request_id)
    settlement = load_settlement(env.store, request_id)
    if settlement.status is not SettlementStatus.PENDING:
        raise ContractError(
            "DUPLICATE_SETTLEMENT",
            f"The cash leg of request {request_id} is already closed "
            f"({settlement.status.lower().replace('_', ' ')}).",
        )
    assert request.status is RequestStatus.AWAITING_SETTLEMENT and piece.request == request.id
    return request, package, piece, settlement


def op_settle_confirm(env: Env, args: Args) -> None:
    """The cash leg was paid: write what the signature made of the piece."""
    request, package, piece, settlement = _settlement_target(env, args)
    args.done()
    if piece.frozen is not None:
        raise ContractError("FROZEN", f"This piece is frozen under case {piece.frozen.case_ref}.")
    after = Piece.from_stored(settlement.after)
    assert (after.start, after.end) == (piece.start, piece.end) and after.frozen is None
    if after.status is BillStatus.RECEIVED and env.today >= package.maturity_date:
        after = replace(after, status=BillStatus.MATURED)
    _save_piece(env.store, package.package_no, after)
    if after.holder is not None:
        _involve(env.store, after.holder, package.package_no, "holder")
    _save_request(env.store, replace(request, status=RequestStatus.SIGNED, closed_day=env.today))
    closed = replace(
        settlement,
        status=SettlementStatus.CONFIRMED,
        closed_day=env.today,
        closed_by=env.sender.id,
    )
    env.store.put(settlement_key(request.id), closed.to_stored())
    env.store.emit(
        "bill.settled",
        _attrs(
            package,
            after,
            request_id=request.id,
            action=request.action.value,
            payer=settlement.payer,
            payee=settlement.payee,
            cash_fen=settlement.amount_fen,
        ),
        _scope(package.package_no),
    )


def op_settle_fail(env: Env, args: Args) -> None:
    """The cash leg failed: restore the piece exactly (allowed on a frozen piece: restoring
    moves nothing)."""
    request, package, piece, _ = _settlement_target(env, args)
    reason: str = args.str_("reason", optional=True, max_len=256) or "payment failed"
    args.done()
    piece = fail_settlement(
        env, package, piece, request, SettlementStatus.FAILED, env.today, reason=reason
    )
    _save_piece(env.store, package.package_no, piece)


# --- unilateral operations -------------------------------------------------------------------


def op_issue(env: Env, args: Args) -> None:
    package_no: str = args.code_("package_no", "bill_no")
    kind = BillKind(args.str_("kind", choices=BILL_KINDS))
    amount_text: str = args.str_("amount", max_len=32)
    currency: str = args.code_("currency", "currency")
    maturity: int = args.date_("maturity_date")
    acceptor: str = args.id_("acceptor")
    payee: str = args.id_("payee")
    splittable = args.bool_("splittable")
    nt = args.bool_("non_transferable")
    args.done()
    if not env.sender.has(Role.ENTERPRISE):
        raise ContractError("FORBIDDEN", "Only an enterprise participant may draw a bill.")
    require_party(env.store, env.sender.id, "drawer")
    commercial = kind is BillKind.COMMERCIAL
    digits = BILL_KIND_DIGITS_COMMERCIAL if commercial else BILL_KIND_DIGITS_BANK
    if package_no[0] not in digits:
        raise ContractError(
            "BILL_NO_INVALID",
            f"Kind digit {package_no[0]} does not match a {kind.lower()} acceptance bill.",
        )
    if package_no[13:21] != day_to_iso(env.today).replace("-", ""):
        raise ContractError(
            "BILL_NO_INVALID",
            f"The registration date {package_no[13:21]} in the number is not today's date.",
        )
    if currency != "CNY":
        raise ContractError("BILL_AMOUNT_INVALID", "Commercial drafts are payable in CNY only.")
    amount = parse_amount(amount_text, currency, code="BILL_AMOUNT_INVALID")
    if not 0 < amount <= PACKAGE_AMOUNT_MAX_FEN:
        raise ContractError(
            "BILL_AMOUNT_INVALID", "The amount must be above 0 and at most 100,000,000.00 yuan."
        )
    months = _params(env).max_term_months(env.today)
    latest = add_months(env.today, months)
    if maturity <= env.today or maturity > latest:
        raise ContractError(
            "BILL_TERM_EXCEEDED",
            f"The maturity date must be after the issue date {day_to_iso(env.today)} and no "
            f"later than {day_to_iso(latest)} ({months} months).",
        )
    accepting = require_party(env.store, acceptor, "acceptor")
    needed = Role.ENTERPRISE if commercial else Role.BANK
    if not accepting.has(needed):
        raise ContractError(
            "COUNTERPARTY_TYPE",
            f"The acceptor of a {kind.lower()} acceptance bill must be a {needed} participant.",
        )
    require_party(env.store, payee, "payee")
    if env.store.get(package_key(package_no)) is not None:
        raise ContractError("DUPLICATE_BILL", f"Bill package {package_no} already exists.")
    package = Package(
        package_no=package_no,
        kind=kind,
        currency=currency,
        amount_fen=amount,
        splittable=splittable,
        drawer=env.sender.id,
        acceptor=acceptor,
        payee=payee,
        issue_date=env.today,
        maturity_date=maturity,
        acceptance_date=None,
        drawer_nt=nt,
        disclosed=False,
        height=env.ctx.height,
    )
    piece = Piece(
        start=1 if splittable else 0,
        end=amount if splittable else 0,
        status=BillStatus.ISSUED,
        flag=BillFlag.AWAITING_RECEIPT,
        holder=None,
        nt=nt,
        nt_setter=env.sender.id if nt else None,
        nt_seq=0 if nt else None,
        pledgee=None,
        repo=None,
        frozen=None,
        request=None,
        discounted=False,
        refusal=None,
        recourse_paid_day=None,
        rights_expired=False,
        paid_to=None,
        guarantees=(),
        chain=(),
    )
    _save_package(env.store, package)
    piece, _ = _chain(env, package, piece, "ISSUE", env.sender.id, payee, non_transferable=nt)
    _save_piece(env.store, package_no, piece)
    for pid, capacity in ((env.sender.id, "drawer"), (acceptor, "acceptor"), (payee, "payee")):
        _involve(env.store, pid, package_no, capacity)
    env.store.emit(
        "bill.issued",
        _attrs(
            package,
            piece,
            kind=kind.value,
            drawer=env.sender.id,
            acceptor=acceptor,
            payee=payee,
            maturity_date=day_to_iso(maturity),
            non_transferable=nt,
        ),
        _scope(package_no),
    )


def _unused_piece(env: Env, args: Args) -> tuple[Package, Piece]:
    package_no, range_text = _piece_args(args)
    args.done()
    package, piece = _locate(env, package_no, range_text)
    _check_open(piece)
    if (
        piece.status not in (BillStatus.ISSUED, BillStatus.ACCEPTED)
        or piece.flag is not BillFlag.AWAITING_RECEIPT
    ):
        raise ContractError(
            "WRONG_STATE", "Only a bill not yet received by the payee can be withdrawn."
        )
    return package, piece


def _terminate(env: Env, package: Package, piece: Piece, kind: str, event: str) -> None:
    piece = piece.with_state(BillStatus.TERMINATED, BillFlag.ENDED)
    piece, _ = _chain(env, package, piece, kind, env.sender.id, None)
    _save_piece(env.store, package.package_no, piece)
    env.store.emit(event, _attrs(package, piece), _scope(package.package_no))


def op_withdraw(env: Env, args: Args) -> None:
    package, piece = _unused_piece(env, args)
    _is_drawer(env, package, piece, Params())
    _terminate(env, package, piece, "WITHDRAW", "bill.withdrawn")


def op_cleanup(env: Env, args: Args) -> None:
    package, piece = _unused_piece(env, args)
    if not env.sender.has(Role.CONSORTIUM_ADMIN) and env.sender.id != package.acceptor:
        raise ContractError("FORBIDDEN", "Only the operator or the acceptor may clean up a bill.")
    _terminate(env, package, piece, "CLEANUP", "bill.cleaned_up")


def op_disclose(env: Env, args: Args) -> None:
    package_no: str = args.code_("package_no", "bill_no")
    args.done()
    package = _load_package(env.store, package_no)
    if env.sender.id != package.acceptor:
        raise ContractError("FORBIDDEN", "Only the acceptor discloses its acceptance.")
    if package.kind is not BillKind.COMMERCIAL:
        raise ContractError("WRONG_STATE", "Only commercial acceptances are disclosed.")
    if package.acceptance_date is None or package.disclosed:
        raise ContractError("WRONG_STATE", "The bill is not accepted, or already disclosed.")
    _save_package(env.store, replace(package, disclosed=True))
    env.store.emit("bill.disclosed", {"package_no": package_no}, _scope(package_no))


def _freeze_target(env: Env, args: Args) -> tuple[Package, Piece, str]:
    package_no, range_text = _piece_args(args)
    case_ref: str = args.str_("case_ref", max_len=64)
    args.done()
    if not env.sender.has(Role.REGULATOR) and not env.sender.has(Role.CONSORTIUM_ADMIN):
        raise ContractError("FORBIDDEN", "Only an authority (regulator or operator) may freeze.")
    package, piece = _locate(env, package_no, range_text)
    return package, piece, case_ref


def op_freeze(env: Env, args: Args) -> None:
    package, piece, case_ref = _freeze_target(env, args)
    if piece.frozen is not None:
        raise ContractError("FROZEN", f"Already frozen under case {piece.frozen.case_ref}.")
    if piece.status in (BillStatus.TERMINATED, BillStatus.SETTLED):
        raise ContractError("WRONG_STATE", "A terminated or settled piece cannot be frozen.")
    piece = replace(piece, frozen=BillFreeze(case_ref, env.sender.id, env.today))
    _save_piece(env.store, package.package_no, piece)
    env.store.emit(
        "bill.frozen", _attrs(package, piece, case_ref=case_ref), _scope(package.package_no)
    )


def op_unfreeze(env: Env, args: Args) -> None:
    package, piece, case_ref = _freeze_target(env, args)
    if piece.frozen is None:
        raise ContractError("WRONG_STATE", "This piece is not frozen.")
    if piece.frozen.case_ref != case_ref:
        raise bad("case_ref", f"does not match the freezing case {piece.frozen.case_ref}")
    piece = replace(piece, frozen=None)
    _save_piece(env.store, package.package_no, piece)
    env.store.emit(
        "bill.unfrozen", _attrs(package, piece, case_ref=case_ref), _scope(package.package_no)
    )
    # What the freeze held back (the exchange's answer at maturity) is due now, in this block.
    _normalise(env, package, piece)


def op_sweep(env: Env, args: Args) -> None:
    package_no: str = args.code_("package_no", "bill_no")
    args.done()
    package = _load_package(env.store, package_no)
    if (
        not env.sender.has(Role.CONSORTIUM_ADMIN)
        and env.store.get(_involve_key(env.sender.id, package_no)) is None
    ):
        raise ContractError("FORBIDDEN", "Only the operator or a party may sweep a bill.")
    for piece in _pieces(env.store, package_no):
        _normalise(env, package, piece)


OPERATIONS: dict[str, Callable[[Env, Args], None]] = {
    "bill.issue": op_issue,
    **{action.operation: _request_handler(action) for action in ACTIONS.values()},
    "bill.sign": op_sign,
    "bill.reject": op_reject,
    "bill.revoke": op_revoke,
    "bill.clear_request": op_clear_request,
    "bill.settle_confirm": op_settle_confirm,
    "bill.settle_fail": op_settle_fail,
    "bill.withdraw": op_withdraw,
    "bill.cleanup": op_cleanup,
    "bill.disclose": op_disclose,
    "bill.freeze": op_freeze,
    "bill.unfreeze": op_unfreeze,
    "bill.sweep": op_sweep,
}
