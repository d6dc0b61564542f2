"""Bill pieces in state: codes, keys, loading and the time-driven transitions (B.4, B.5 rows
4, 18, 23, 24, B.7).

Theory of operation
-------------------
A package record holds the bill-level attributes; each piece record holds its (status, flag),
holder, encumbrances, guarantees and the chain of completed actions (B.8: every transfer appends
``(seq, type, from, to, day, height, timestamp, tx id, range, amount)``). ``_normalise`` applies
every transition the passage of time has made due -- maturity roll at the start of the maturity
day, with the exchange presenting a piece a financial institution holds at rest (row 18);
the exchange's payment answer for a bank or finance-company acceptor at the end of the
presentment day, unless the piece is frozen (B.2, B.7); clearing of requests past their time-out
(a presentment past its answer deadline becomes a refusal); rights expiry after maturity +
``rights_expiry_months`` -- using only the agreed block date and the genesis calendar. Each is
taken in the order it fell due and recorded as of its own day, so every replica computes the
same state whichever later block loads the piece. Writes go to the transaction's store and are
kept only if the operation succeeds.

State keys::

    bill/<package no>                       package record
    bill/<package no>/p/<start:012d>        piece record (zero-padded: scans return range order)
    breq/<request id hex>                   request record (request id = requesting tx id)
    bset/<request id hex>                   cash leg of a signed DVP request (B.6 step 3)
    idx/bp/<participant>/<package no>       sorted list of the participant's capacities
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from .args import Args, bad, day_to_iso
from .bill_records import (
    ChainEntry,
    Package,
    Params,
    Piece,
    Refusal,
    Request,
    RequestAnswer,
    Settlement,
)
from .calendar import (
    CALENDAR_KEY,
    PARAMS_KEY,
    BusinessCalendar,
    Parameters,
    add_months,
)
from .core import Env, Store
from .errors import ContractError
from .identifiers import (
    sub_range_bounds,
)
from .identity import load_participant
from .stored import StoredMap, StoredValue, text_list
from .vocabulary import (
    BillAction,
    BillFlag,
    BillKind,
    BillStatus,
    PresentmentType,
    RecourseGround,
    RequestStatus,
    Role,
    SettlementStatus,
    values,
)

__all__ = [
    "FLAG_CODES",
    "STATUS_CODES",
    "load_calendar",
    "load_parameters",
    "package_key",
    "piece_amount",
    "piece_range",
    "presentment_window_end",
    "request_expiry_day",
    "request_key",
    "request_timed_out",
    "settlement_key",
]

STATUS_CODES = {status.value: status.code for status in BillStatus}
FLAG_CODES = {flag.value: flag.code for flag in BillFlag}
BILL_KINDS = values(BillKind)
FI_ROLES = (Role.BANK, Role.CENTRAL_BANK)
RATE_PPM_MAX = 1_000_000  # 100 % a year
CLAIM_EXTRA_MAX = 10**12
_RECOURSE_GROUNDS = values(RecourseGround)
_REST = (BillFlag.NEGOTIABLE, BillFlag.NON_TRANSFERABLE)


# --- keys and small helpers ------------------------------------------------------------------


def package_key(package_no: str) -> bytes:
    return b"bill/" + package_no.encode()


def _piece_key(package_no: str, start: int) -> bytes:
    return f"bill/{package_no}/p/{start:012d}".encode()


def request_key(request_id: str) -> bytes:
    return b"breq/" + request_id.encode()


def settlement_key(request_id: str) -> bytes:
    return b"bset/" + request_id.encode()


def _involve_key(pid: str, package_no: str) -> bytes:
    return f"idx/bp/{pid}/{package_no}".encode()


def piece_amount(package: Package, piece: Piece) -> int:
    if piece.start == 0:
        return package.amount_fen
    return piece.end - piece.start + 1


def piece_range(piece: Piece) -> str:
    return "0" if piece.start == 0 else f"{piece.start}-{piece.end}"


def _rest_flag(piece: Piece) -> BillFlag:
    return BillFlag.NON_TRANSFERABLE if piece.nt else BillFlag.NEGOTIABLE


def load_calendar(store: Store) -> BusinessCalendar:
    return BusinessCalendar.from_stored(store.get_obj(CALENDAR_KEY))


def load_parameters(store: Store) -> Parameters:
    return Parameters.from_stored(store.get_obj(PARAMS_KEY))


def _cal(env: Env) -> BusinessCalendar:
    if env.calendar is None:
        env.calendar = load_calendar(env.store)
    return env.calendar


def _params(env: Env) -> Parameters:
    if env.params is None:
        env.params = load_parameters(env.store)
    return env.params


def request_expiry_day(env: Env) -> int:
    """The last day on which a request made today may be answered: ``request_ttl_business_days``
    business days on. From the next day on, time clears it (bills and asset requests alike)."""
    return _cal(env).add_business_days(env.today, _params(env).request_ttl_business_days)


def request_timed_out(env: Env, expires_day: int) -> bool:
    """Whether a request answerable until ``expires_day`` has timed out by the agreed date."""
    return env.today > expires_day


def presentment_window_end(package: Package, calendar: BusinessCalendar, params: Parameters) -> int:
    """Last day of the presentment window: maturity + N days, rolled to a business day (B.7)."""
    return calendar.roll_forward(package.maturity_date + params.presentment_window_days)


def _rights_expiry(package: Package, params: Parameters) -> int:
    return add_months(package.maturity_date, params.rights_expiry_months)


def _scope(package_no: str) -> list[str]:
    return [f"b/{package_no}"]


def _involve(store: Store, pid: str, package_no: str, capacity: str) -> None:
    key = _involve_key(pid, package_no)
    stored = store.get_obj(key)
    current = [] if stored is None else text_list(stored, "bill party index")
    if capacity not in current:
        store.put(key, sorted([*current, capacity]))


def _save_piece(store: Store, package_no: str, piece: Piece) -> None:
    store.put(_piece_key(package_no, piece.start), piece.to_stored())


def _save_package(store: Store, package: Package) -> None:
    store.put(package_key(package.package_no), package.to_stored())


def _save_request(store: Store, request: Request) -> None:
    store.put(request_key(request.id), request.to_stored())


def _chain(
    env: Env,
    package: Package,
    piece: Piece,
    kind: str,
    source: str | None,
    target: str | None,
    day: int | None = None,
    **extra: StoredValue,
) -> tuple[Piece, ChainEntry]:
    """``piece`` with one more chain entry (B.8), and that entry. ``day`` is the day a
    time-driven transition fell due, when a later block applies it; otherwise today."""
    entry = ChainEntry(
        seq=len(piece.chain) + 1,
        type=kind,
        source=source,
        target=target,
        day=env.today if day is None else day,
        height=env.ctx.height,
        timestamp_ms=env.ctx.timestamp_ms,
        tx_id=env.ctx.tx_id.hex(),
        range=piece_range(piece),
        amount_fen=piece_amount(package, piece),
        extra=dict(extra),
    )
    return replace(piece, chain=(*piece.chain, entry)), entry


def _attrs(package: Package, piece: Piece, **extra: StoredValue) -> StoredMap:
    return {
        "package_no": package.package_no,
        "range": piece_range(piece),
        "amount_fen": piece_amount(package, piece),
        **extra,
    }


def _emit_answer(
    env: Env, kind: str, package: Package, piece: Piece, request: Request, **extra: StoredValue
) -> None:
    """The event of an answered request (signed, refused, paid, awaiting settlement)."""
    env.store.emit(
        kind,
        _attrs(
            package,
            piece,
            request_id=request.id,
            action=request.action.value,
            initiator=request.initiator,
            counterparty=request.counterparty,
            **extra,
        ),
        _scope(package.package_no),
    )


# --- loading and the time-driven transitions -------------------------------------------------


def _load_package(store: Store, package_no: str) -> Package:
    record = store.get_obj(package_key(package_no))
    if record is None:
        raise ContractError("UNKNOWN_BILL", f"No bill package {package_no} is registered.")
    return Package.from_stored(record)


def _load_request(store: Store, request_id: str) -> Request:
    record = store.get_obj(request_key(request_id))
    if record is None:
        raise ContractError("UNKNOWN_REQUEST", f"There is no request {request_id}.")
    return Request.from_stored(record)


def _load_piece(store: Store, package_no: str, start: int) -> Piece | None:
    record = store.get_obj(_piece_key(package_no, start))
    return None if record is None else Piece.from_stored(record)


def _restore(
    env: Env,
    package: Package,
    piece: Piece,
    request: Request,
    status: RequestStatus,
    roll: bool = True,
) -> tuple[Piece, Request]:
    """Close ``request`` with ``status`` and give the piece back its exact previous state
    (rolled to MATURED if it is due, unless ``roll`` is false: the caller rolls it itself)."""
    request = replace(request, status=status, closed_day=env.today)
    piece = replace(piece, status=request.prev_status, flag=request.prev_flag, request=None)
    if roll and piece.status is BillStatus.RECEIVED and env.today >= package.maturity_date:
        piece = replace(piece, status=BillStatus.MATURED)
    return piece, request


def _record_refusal(
    env: Env,
    package: Package,
    piece: Piece,
    request: Request,
    reason: str,
    automatic: bool,
    day: int | None = None,
) -> Piece:
    refusal_type = PresentmentType(request.params.str_("presentment_type"))
    day = env.today if day is None else day
    piece = replace(piece, refusal=Refusal(refusal_type, day, reason))
    piece, _ = _chain(
        env,
        package,
        piece,
        "REFUSAL",
        package.acceptor,
        request.initiator,
        day,
        refusal_type=refusal_type.value,
        reason=reason,
        automatic=automatic,
    )
    env.store.emit(
        "bill.payment_refused",
        _attrs(
            package,
            piece,
            request_id=request.id,
            refusal_type=refusal_type.value,
            reason=reason,
            automatic=automatic,
        ),
        _scope(package.package_no),
    )
    return piece


def _pay(
    env: Env, package: Package, piece: Piece, request: Request, day: int | None = None
) -> Piece:
    """The effect of a payment answer (B.5 row 18): the piece is SETTLED and ENDED, all debtors
    discharged, and paid to whoever presented it."""
    piece = replace(
        piece,
        status=BillStatus.SETTLED,
        flag=BillFlag.ENDED,
        paid_to=request.initiator,
        request=None,
    )
    extra: dict[str, StoredValue] = {"presentment_type": request.params.str_("presentment_type")}
    if day is not None:
        extra["automatic"] = True
    piece, _ = _chain(
        env, package, piece, "PAYMENT", package.acceptor, request.initiator, day, **extra
    )
    return piece


def _is_fi(store: Store, pid: str | None) -> bool:
    party = None if pid is None else load_participant(store, pid)
    return party is not None and any(party.has(role) for role in FI_ROLES)


def _auto_presenter(env: Env, piece: Piece) -> str | None:
    """Who the exchange presents a piece for on its maturity day (B.5 row 18): the financial
    institution (bank or central bank) holding it at rest. A pledged piece is held by its
    pledgor, who (or whose pledgee) presents it; a piece under a repo awaits its second leg; a
    frozen, locked or refused piece is left alone."""
    if piece.frozen is not None or piece.request is not None or piece.repo is not None:
        return None
    if piece.refusal is not None and piece.refusal.type is not PresentmentType.EARLY:
        return None
    if piece.flag not in _REST or not _is_fi(env.store, piece.holder):
        return None
    return piece.holder


def _auto_present(env: Env, package: Package, piece: Piece, presenter: str) -> Piece:
    """Present ``piece`` for payment in the name of ``presenter`` on its maturity day.

    The request id is derived from the piece and the day, not from the transaction that happens
    to apply it, so every order of application gives the same state."""
    day = package.maturity_date
    seed = f"auto-present/{package.package_no}/{piece.start}/{piece.end}/{day}"
    request_id = hashlib.sha256(seed.encode()).hexdigest()
    assert env.store.get(request_key(request_id)) is None, "a piece matures once"
    request = Request(
        id=request_id,
        action=BillAction.PRESENT,
        package_no=package.package_no,
        start=piece.start,
        end=piece.end,
        initiator=presenter,
        counterparty=package.acceptor,
        params=Params({"presentment_type": PresentmentType.IN_WINDOW.value, "automatic": True}),
        status=RequestStatus.PENDING,
        prev_status=piece.status,
        prev_flag=piece.flag,
        created_day=day,
        expires_day=day + _params(env).payment_answer_days,
        height=env.ctx.height,
        closed_day=None,
        answer=None,
    )
    _save_request(env.store, request)
    _involve(env.store, package.acceptor, package.package_no, BillAction.PRESENT.lower())
    piece = replace(piece, request=request_id, flag=BillFlag.COLLECTION_IN_TRANSIT)
    env.store.emit(
        "bill.requested",
        _attrs(
            package,
            piece,
            request_id=request_id,
            action=BillAction.PRESENT.value,
            initiator=presenter,
            counterparty=package.acceptor,
            expires=day_to_iso(request.expires_day),
            automatic=True,
        ),
        _scope(package.package_no),
    )
    return piece


def auto_answer_day(package: Package, request: Request) -> int | None:
    """The day at whose end the exchange answers a presentment for the acceptor, or None if it
    never does.

    Bank and finance-company acceptances (B.2, B.7) are answered automatically at maturity: a
    presentment still unanswered at the end of the maturity day (for an early one) or of the
    presentment day (for one on or after maturity) is paid, unless the piece is frozen or
    stopped. Until then the acceptor may answer itself. A commercial acceptor always answers
    itself, or the presentment is refused when its answer is overdue."""
    if package.kind is BillKind.COMMERCIAL or request.action is not BillAction.PRESENT:
        return None
    return max(request.created_day, package.maturity_date)


def _auto_answer(env: Env, package: Package, piece: Piece, request: Request, day: int) -> Piece:
    """The exchange's payment answer for the acceptor, as of ``day``; with DVP settlement the
    payment then waits for its cash leg."""
    paid = _pay(env, package, piece, request, day)
    answer = RequestAnswer(package.acceptor, day, env.ctx.height, automatic=True)
    extra: dict[str, StoredValue] = {"automatic": True}
    if _params(env).dvp_settlement and needs_cash_leg(package, request, piece, paid):
        # Answered at the end of ``day``: the cash leg can settle from the next day on.
        piece = await_settlement(env, package, piece, paid, request, answer, day, day + 1)
        extra["awaiting_settlement"] = True
    else:
        piece = paid
        request = replace(request, status=RequestStatus.SIGNED, closed_day=day, answer=answer)
        _save_request(env.store, request)
    _emit_answer(env, "bill.present_signed", package, piece, request, **extra)
    return piece


# --- delivery versus payment (B.6 step 3) -----------------------------------------------------


def load_settlement(store: Store, request_id: str) -> Settlement:
    record = store.get_obj(settlement_key(request_id))
    if record is None:
        raise ContractError(
            "SETTLEMENT_NOT_PENDING", f"Request {request_id} has no cash leg to settle."
        )
    return Settlement.from_stored(record)


def _save_settlement(store: Store, settlement: Settlement) -> None:
    store.put(settlement_key(settlement.request_id), settlement.to_stored())


def _int_extra(entry: ChainEntry, key: str, default: int) -> int:
    value = entry.extra.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _cash_leg(
    package: Package, request: Request, before: Piece, after: Piece
) -> tuple[str, str, int]:
    """(payer, payee, amount in fen) of a signed DVP request, read from the chain entry the
    signature made. Prototype rules where the ledger holds no price: a pledge repo lends the
    face amount; a repo's second leg repays the first leg's cash plus the repo interest."""
    entry = after.chain[-1]
    face = piece_amount(package, before)
    action = request.action
    if action is BillAction.PRESENT:
        return package.acceptor, request.initiator, face
    if action is BillAction.RECOURSE:
        return request.counterparty, request.initiator, _int_extra(entry, "claim_fen", face)
    if action is BillAction.REDEEM:
        repo = before.repo
        assert repo is not None, "a redemption needs a repo, and the lock keeps it"
        first_leg = face
        for earlier in reversed(before.chain):  # its first leg: to the provider, same end date
            if (
                earlier.extra.get("end_date") == repo.end_date
                and earlier.target == repo.cash_provider
            ):
                first_leg = _int_extra(earlier, "proceeds_fen", face)
                break
        interest = _int_extra(entry, "repo_interest_fen", 0)
        return repo.cash_taker, repo.cash_provider, first_leg + interest
    # first legs: discount, rediscount, central-bank rediscount, both repos
    return request.counterparty, request.initiator, _int_extra(entry, "proceeds_fen", face)


def needs_cash_leg(package: Package, request: Request, before: Piece, after: Piece) -> bool:
    """Whether a signed DVP request moves cash: not when an acceptor holding its own bill is
    paid (payer and payee are one party), which settles at once."""
    payer, payee, _ = _cash_leg(package, request, before, after)
    return payer != payee


def await_settlement(
    env: Env,
    package: Package,
    piece: Piece,
    after: Piece,
    request: Request,
    answer: RequestAnswer,
    day: int,
    settle_from: int | None = None,
) -> Piece:
    """Record the signature of a DVP request and hold the piece until its cash leg settles.

    ``piece`` is the locked piece, ``after`` what the signature made of it. The piece keeps its
    status and holder and takes the AWAITING_SETTLEMENT flag; the request stays open. The cash
    leg must settle by the end of the ``settlement_ttl_business_days``-th business day after
    the business day it can first settle on (``settle_from``, by default the signing ``day``),
    or time restores the piece."""
    calendar = _cal(env)
    first = day if settle_from is None else settle_from
    deadline = calendar.add_business_days(
        calendar.roll_forward(first), _params(env).settlement_ttl_business_days
    )
    payer, payee, amount = _cash_leg(package, request, piece, after)
    settlement = Settlement(
        request_id=request.id,
        action=request.action,
        package_no=package.package_no,
        start=piece.start,
        end=piece.end,
        payer=payer,
        payee=payee,
        amount_fen=amount,
        signed_day=day,
        deadline_day=deadline,
        status=SettlementStatus.PENDING,
        after=after.to_stored(),
        closed_day=None,
        closed_by=None,
        reason=None,
    )
    assert env.store.get(settlement_key(request.id)) is None, "a request is signed once"
    _save_settlement(env.store, settlement)
    _save_request(
        env.store, replace(request, status=RequestStatus.AWAITING_SETTLEMENT, answer=answer)
    )
    piece = replace(piece, flag=BillFlag.AWAITING_SETTLEMENT, request=request.id)
    env.store.emit(
        "bill.settlement_pending",
        _attrs(
            package,
            piece,
            request_id=request.id,
            action=request.action.value,
            payer=payer,
            payee=payee,
            cash_fen=amount,
            deadline=day_to_iso(deadline),
        ),
        _scope(package.package_no),
    )
    return piece


def fail_settlement(
    env: Env,
    package: Package,
    piece: Piece,
    request: Request,
    status: SettlementStatus,
    day: int,
    roll: bool = True,
    reason: str | None = None,
) -> Piece:
    """Close a pending cash leg as failed (by the agent) or timed out, and restore the piece to
    its exact state before the request (B.6 step 3)."""
    settlement = load_settlement(env.store, request.id)
    piece, request = _restore(env, package, piece, request, RequestStatus.SETTLEMENT_FAILED, roll)
    by = env.sender.id if status is SettlementStatus.FAILED else None
    reason = reason or ("not settled in time" if status is SettlementStatus.TIMED_OUT else "failed")
    _save_request(env.store, replace(request, closed_day=day))
    _save_settlement(
        env.store,
        replace(settlement, status=status, closed_day=day, closed_by=by, reason=reason),
    )
    env.store.emit(
        "bill.settlement_failed",
        _attrs(
            package,
            piece,
            request_id=request.id,
            action=request.action.value,
            timed_out=status is SettlementStatus.TIMED_OUT,
            reason=reason,
        ),
        _scope(package.package_no),
    )
    return piece


def _request_due(env: Env, package: Package, piece: Piece, request: Request) -> int:
    """The first day on which time settles the open ``request``: the day after its settlement
    deadline if it awaits its cash leg; else the day after the exchange's automatic answer day,
    or else the day after its answer deadline."""
    if request.status is RequestStatus.AWAITING_SETTLEMENT:
        return load_settlement(env.store, request.id).deadline_day + 1
    answer_day = auto_answer_day(package, request)
    if answer_day is not None and piece.frozen is None and answer_day <= request.expires_day:
        return answer_day + 1
    return request.expires_day + 1


def _settle_request(
    env: Env, package: Package, piece: Piece, request: Request, roll: bool
) -> Piece:
    """Apply what time decided for the open ``request`` (its due day has come)."""
    if request.status is RequestStatus.AWAITING_SETTLEMENT:
        settlement = load_settlement(env.store, request.id)
        day = settlement.deadline_day + 1
        return fail_settlement(env, package, piece, request, SettlementStatus.TIMED_OUT, day, roll)
    answer_day = auto_answer_day(package, request)
    if answer_day is not None and _request_due(env, package, piece, request) == answer_day + 1:
        return _auto_answer(env, package, piece, request, answer_day)
    status = (
        RequestStatus.REJECTED if request.action is BillAction.PRESENT else RequestStatus.CLEARED
    )
    piece, request = _restore(env, package, piece, request, status, roll)
    if request.action is BillAction.PRESENT:
        reason = "not answered in time"
        piece = _record_refusal(env, package, piece, request, reason, True, request.expires_day + 1)
    else:
        env.store.emit(
            "bill.request_cleared",
            _attrs(package, piece, request_id=request.id, action=request.action.value),
            _scope(package.package_no),
        )
    _save_request(env.store, request)
    return piece


def _normalise(env: Env, package: Package, piece: Piece) -> Piece:
    """Apply every transition that the passage of time has made due (B.5 rows 4, 18, 23, 24).

    Transitions are applied in the order they fell due, each as of its own day, so the result
    does not depend on which later block applies them: every change of a piece (a freeze
    included) passes through here first, so the piece is now what it was on those days. A
    request that timed out before the maturity day is settled before the maturity roll, which
    then finds the piece at rest and may present it (row 18)."""
    start = piece
    package_no = package.package_no
    maturity = package.maturity_date
    if piece.request is not None and piece.status is BillStatus.RECEIVED:
        request = _load_request(env.store, piece.request)
        if _request_due(env, package, piece, request) <= min(env.today, maturity):
            piece = _settle_request(env, package, piece, request, roll=False)
    if piece.status is BillStatus.RECEIVED and env.today >= maturity:
        piece = replace(piece, status=BillStatus.MATURED)
        env.store.emit("bill.matured", _attrs(package, piece), _scope(package_no))
        presenter = _auto_presenter(env, piece)
        if presenter is not None:
            piece = _auto_present(env, package, piece, presenter)
    # A request may take two steps (answered, then its cash leg timed out); each step closes
    # the request or moves it on from PENDING, so two steps are the most there can be.
    for _ in range(2):
        if piece.request is None:
            break
        request = _load_request(env.store, piece.request)
        if env.today < _request_due(env, package, piece, request):
            break
        piece = _settle_request(env, package, piece, request, roll=True)
    if (
        piece.status in (BillStatus.RECEIVED, BillStatus.MATURED)
        and piece.flag is not BillFlag.ENDED
        and piece.request is None
        and env.today > _rights_expiry(package, _params(env))
    ):
        piece = replace(piece, flag=BillFlag.ENDED, rights_expired=True)
        env.store.emit("bill.rights_expired", _attrs(package, piece), _scope(package_no))
    if piece != start:
        _save_piece(env.store, package_no, piece)
    return piece


def _pieces(store: Store, package_no: str) -> list[Piece]:
    return [
        Piece.from_stored(record) for _, record in store.scan_objs(f"bill/{package_no}/p/".encode())
    ]


def _locate(env: Env, package_no: str, range_text: str | None) -> tuple[Package, Piece]:
    package = _load_package(env.store, package_no)
    if range_text is None:
        pieces = _pieces(env.store, package_no)
        if len(pieces) != 1:
            raise bad("range", f"is required: package {package_no} has {len(pieces)} pieces")
        piece = pieces[0]
    else:
        start, end = sub_range_bounds(range_text)
        found = _load_piece(env.store, package_no, start)
        if found is None or found.end != end:
            raise ContractError(
                "UNKNOWN_PIECE", f"Package {package_no} has no piece with range {range_text}."
            )
        piece = found
    return package, _normalise(env, package, piece)


def _piece_args(args: Args) -> tuple[str, str | None]:
    package_no: str = args.code_("package_no", "bill_no")
    range_text: str | None = args.code_("range", "bill_range", optional=True)
    return package_no, range_text
