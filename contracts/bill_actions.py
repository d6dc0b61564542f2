"""The B.5 action table: one row per two-step action, with its guard and its effect.

Theory of operation
-------------------
``ACTIONS`` is declarative: each row names the statuses and flags the action may start from,
who may ask (``actor``), the flag that locks the piece while the request is pending, the status
the piece takes when the counterparty signs (``target``; None keeps the status), whether it names
an amount (and so may split the piece, B.9) and whether it is barred on/after maturity. Three
functions complete a row: ``read`` takes the action's own arguments, ``guard`` checks its
preconditions and returns the counterparty who must answer (with the parameters to record), and
``on_sign`` applies the rest of the effect (holder, flag, encumbrances, chain entry) when that
counterparty signs, re-checking what time may have changed since the request (maturity,
presentment window). A signed target of RECEIVED on or after maturity is MATURED, the same roll
``bill_state`` applies to every piece. ``dvp`` marks the rows with a cash leg (discounts,
rediscounts, both repo legs, payment, recourse settlement): with the genesis switch
``dvp_settlement`` their signature holds the piece AWAITING_SETTLEMENT until the settlement
agent confirms (the effect is written) or fails (the piece is restored), or time restores it.

Effects append to the piece's chain; ``recourse`` reads that chain to decide liability.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace

from .args import Args, bad, day_to_iso
from .bill_records import Guarantee, Package, Params, Piece, Repo, Request
from .bill_state import (
    _RECOURSE_GROUNDS,
    _REST,
    CLAIM_EXTRA_MAX,
    FI_ROLES,
    RATE_PPM_MAX,
    _cal,
    _chain,
    _params,
    _pay,
    _rest_flag,
    _save_package,
    piece_amount,
    presentment_window_end,
)
from .core import Env
from .errors import ContractError
from .identity import load_participant, require_party
from .money import PPM, discount_interest, round_half_up_div
from .recourse import recourse_allowed
from .stored import StoredValue
from .vocabulary import (
    BillAction,
    BillFlag,
    BillKind,
    BillStatus,
    GuaranteeCapacity,
    PresentmentType,
    RecourseGround,
    RepoKind,
    Role,
    TradeMode,
    values,
)

__all__ = ["ACTIONS", "Action", "Actor"]


class Actor(enum.Enum):
    """Who may ask for an action (checked after the status, before the flag)."""

    DRAWER = "drawer"
    HOLDER = "holder"
    PLEDGEE = "pledgee"
    REPO_CASH_TAKER = "repo cash taker"
    GUARANTEED_PARTY = "drawer, acceptor or holder, by capacity"
    HOLDER_OR_PLEDGEE = "holder, or the pledgee of a pledged piece"


Guard = Callable[[Env, Package, Piece, Params], tuple[str, Params]]
Effect = Callable[[Env, Package, Piece, Request], Piece]


@dataclass(frozen=True, slots=True)
class Action:
    name: BillAction
    operation: str
    statuses: frozenset[BillStatus]  # required status
    flags: frozenset[BillFlag]  # required flag
    actor: Actor
    lock_flag: BillFlag
    target: BillStatus | None  # status once signed; None keeps it
    partial: bool  # names an amount k and may split the piece (B.9)
    before_maturity: bool  # on/after maturity -> AFTER_MATURITY
    read: Callable[[Args], Params]
    guard: Guard
    on_sign: Effect
    # Delivery versus payment (B.6 step 3): with ``parameters.dvp_settlement`` the signature
    # waits for the cash leg before its effect is written.
    dvp: bool = False


def _no_params(args: Args) -> Params:
    return Params()


def _is_drawer(env: Env, package: Package, piece: Piece, params: Params) -> None:
    if env.sender.id != package.drawer:
        raise ContractError(
            "FORBIDDEN", f"Only the drawer {package.drawer} may do this for this bill."
        )


def _is_holder(env: Env, package: Package, piece: Piece, params: Params) -> None:
    if env.sender.id != piece.holder:
        holder = piece.holder or "nobody yet"
        raise ContractError(
            "NOT_HOLDER", f"{env.sender.id} is not the holder of this piece (holder: {holder})."
        )


def _is_pledgee(env: Env, package: Package, piece: Piece, params: Params) -> None:
    if piece.flag is not BillFlag.PLEDGED or env.sender.id != piece.pledgee:
        raise ContractError("NOT_HOLDER", f"{env.sender.id} is not the pledgee of this piece.")


def _is_cash_taker(env: Env, package: Package, piece: Piece, params: Params) -> None:
    repo = piece.repo
    if repo is None:
        raise ContractError("WRONG_STATE", "This piece is not in a repo or repo-type discount.")
    if env.sender.id != repo.cash_taker:
        raise ContractError(
            "NOT_HOLDER", f"Only {repo.cash_taker}, who sold under repo, may redeem it."
        )


def _guarantee_initiator(env: Env, package: Package, piece: Piece, params: Params) -> None:
    capacity = params.str_("capacity")
    if capacity == GuaranteeCapacity.DRAWER:
        _is_drawer(env, package, piece, params)
    elif capacity == GuaranteeCapacity.ACCEPTOR:
        if env.sender.id != package.acceptor or package.acceptance_date is None:
            raise ContractError("FORBIDDEN", "Only the acceptor, after acceptance, may do this.")
    else:
        _is_holder(env, package, piece, params)


def _present_initiator(env: Env, package: Package, piece: Piece, params: Params) -> None:
    if piece.flag is BillFlag.PLEDGED:
        _is_pledgee(env, package, piece, params)
    else:
        _is_holder(env, package, piece, params)


ACTOR_CHECKS: dict[Actor, Callable[[Env, Package, Piece, Params], None]] = {
    Actor.DRAWER: _is_drawer,
    Actor.HOLDER: _is_holder,
    Actor.PLEDGEE: _is_pledgee,
    Actor.REPO_CASH_TAKER: _is_cash_taker,
    Actor.GUARANTEED_PARTY: _guarantee_initiator,
    Actor.HOLDER_OR_PLEDGEE: _present_initiator,
}


def _counterparty(env: Env, params: Params, field: str, holder: str | None) -> str:
    pid = params.str_(field)
    require_party(env.store, pid, field)
    if pid == holder or pid == env.sender.id:
        raise ContractError("SELF_DEALING", f"The {field} must be another participant.")
    return pid


def _require_fi(env: Env, pid: str, roles: tuple[Role, ...], what: str) -> None:
    party = load_participant(env.store, pid)
    if party is None or not any(party.has(role) for role in roles):
        raise ContractError(
            "COUNTERPARTY_TYPE",
            f"{pid} cannot act as {what}: it needs the role {' or '.join(roles)}.",
        )


def _require_disclosure(package: Package) -> None:
    if package.kind is BillKind.COMMERCIAL and not package.disclosed:
        raise ContractError(
            "DISCLOSURE_MISSING",
            f"The acceptor of commercial bill {package.package_no} has not disclosed the "
            "acceptance.",
        )


def _read_rate(args: Args) -> int:
    rate: int = args.int_("rate_ppm", maximum=RATE_PPM_MAX)
    return rate


def _read_trade(args: Args, counterparty: str, modes: tuple[TradeMode, ...]) -> Params:
    values_: dict[str, StoredValue] = {
        counterparty: args.id_(counterparty),
        "rate_ppm": _read_rate(args),
    }
    choices = tuple(mode.value for mode in modes)
    mode: str = args.str_("mode", optional=True, choices=choices) or choices[0]
    values_["mode"] = mode
    end_date: int | None = args.date_("end_date", optional=mode == TradeMode.OUTRIGHT)
    values_["end_date"] = end_date
    if mode == TradeMode.OUTRIGHT and end_date is not None:
        raise bad("end_date", "is only for repo-type trades")
    return Params(values_)


def _check_repo_term(env: Env, package: Package, params: Params) -> None:
    end = params.opt_int("end_date")
    if end is None:
        return
    if end <= env.today:
        raise ContractError("REPO_TERM_INVALID", "The repo end date must be after today.")
    if end > package.maturity_date:
        raise ContractError(
            "REPO_TERM_INVALID",
            f"The repo ends {day_to_iso(end)}, after the bill matures on "
            f"{day_to_iso(package.maturity_date)}.",
        )


# ACCEPTANCE (row 2) ---------------------------------------------------------------------------


def _guard_acceptance(
    env: Env, package: Package, piece: Piece, params: Params
) -> tuple[str, Params]:
    if env.today >= package.maturity_date:
        raise ContractError("AFTER_MATURITY", "A bill cannot be accepted on or after maturity.")
    require_party(env.store, package.acceptor, "acceptor")
    return package.acceptor, params


def _sign_acceptance(env: Env, package: Package, piece: Piece, request: Request) -> Piece:
    if env.today >= package.maturity_date:
        raise ContractError("AFTER_MATURITY", "A bill cannot be accepted on or after maturity.")
    piece = replace(piece, flag=BillFlag.AWAITING_RECEIPT)
    package = replace(package, acceptance_date=env.today)
    _save_package(env.store, package)
    piece, _ = _chain(env, package, piece, "ACCEPT", package.drawer, package.acceptor)
    return piece


# RECEIPT (row 5) ------------------------------------------------------------------------------


def _guard_receipt(env: Env, package: Package, piece: Piece, params: Params) -> tuple[str, Params]:
    require_party(env.store, package.payee, "payee")
    return package.payee, params


def _sign_receipt(env: Env, package: Package, piece: Piece, request: Request) -> Piece:
    piece = replace(piece, holder=package.payee)
    piece = replace(piece, flag=_rest_flag(piece))
    piece, _ = _chain(env, package, piece, "RECEIPT", package.drawer, package.payee)
    return piece


# ENDORSE (row 6) ------------------------------------------------------------------------------


def _read_endorse(args: Args) -> Params:
    endorsee = args.any_("endorsee")
    if isinstance(endorsee, list | tuple):
        raise ContractError(
            "PARTIAL_ENDORSEMENT", "An endorsement names exactly one endorsee (art. 33)."
        )
    checked: str = args.id_("endorsee")
    return Params({"endorsee": checked, "non_transferable": args.bool_("non_transferable")})


def _check_endorsable(env: Env, package: Package, piece: Piece) -> None:
    if piece.refusal is not None:
        raise ContractError(
            "WINDOW_CLOSED", "A bill cannot be endorsed after payment was refused (art. 36)."
        )
    if piece.status is BillStatus.MATURED:
        end = presentment_window_end(package, _cal(env), _params(env))
        if env.today > end:
            raise ContractError(
                "WINDOW_CLOSED",
                f"The presentment window closed on {day_to_iso(end)}; the bill can no longer "
                "be endorsed (art. 36).",
            )


def _guard_endorse(env: Env, package: Package, piece: Piece, params: Params) -> tuple[str, Params]:
    _check_endorsable(env, package, piece)
    return _counterparty(env, params, "endorsee", piece.holder), params


def _sign_endorse(env: Env, package: Package, piece: Piece, request: Request) -> Piece:
    _check_endorsable(env, package, piece)
    endorser, endorsee = piece.holder, request.counterparty
    nt = request.params.bool_("non_transferable")
    piece = replace(piece, holder=endorsee)
    if nt:
        piece = replace(piece, nt=True, nt_setter=endorser)
    piece = replace(piece, flag=_rest_flag(piece))
    piece, entry = _chain(env, package, piece, "ENDORSE", endorser, endorsee, nt=nt)
    if nt:
        piece = replace(piece, nt_seq=entry.seq)
    return piece


# DISCOUNT family (rows 7, 8, 9, 11, 12) -------------------------------------------------------


def _discount_days(env: Env, package: Package) -> int:
    """Days from the discount date to maturity, holiday-rolled, plus the remote allowance."""
    maturity = _cal(env).roll_forward(package.maturity_date)
    return maturity - env.today + _params(env).remote_allowance_days


def _guard_discount(env: Env, package: Package, piece: Piece, params: Params) -> tuple[str, Params]:
    if any(env.sender.has(role) for role in FI_ROLES):
        raise ContractError(
            "COUNTERPARTY_TYPE",
            "A financial institution sells a discounted bill by rediscount, not discount.",
        )
    discounter = _counterparty(env, params, "discounter", piece.holder)
    _require_fi(env, discounter, (Role.BANK,), "discounting institution")
    _require_disclosure(package)
    _check_repo_term(env, package, params)
    return discounter, params


def _guard_rediscount(
    env: Env, package: Package, piece: Piece, params: Params
) -> tuple[str, Params]:
    _require_fi(env, env.sender.id, FI_ROLES, "rediscount seller")
    if not piece.discounted:
        raise ContractError(
            "WRONG_STATE", "Only a discounted bill can be rediscounted between institutions."
        )
    buyer = _counterparty(env, params, "buyer", piece.holder)
    _require_fi(env, buyer, (Role.BANK,), "rediscount buyer")
    _check_repo_term(env, package, params)
    return buyer, params


def _guard_cb_rediscount(
    env: Env, package: Package, piece: Piece, params: Params
) -> tuple[str, Params]:
    _require_fi(env, env.sender.id, (Role.BANK,), "central-bank rediscount applicant")
    if not piece.discounted:
        raise ContractError("WRONG_STATE", "Only a discounted bill can go to central rediscount.")
    central_bank = _counterparty(env, params, "central_bank", piece.holder)
    _require_fi(env, central_bank, (Role.CENTRAL_BANK,), "rediscounting central bank")
    _check_repo_term(env, package, params)
    return central_bank, params


def _guard_repo(env: Env, package: Package, piece: Piece, params: Params) -> tuple[str, Params]:
    _require_fi(env, env.sender.id, (Role.BANK,), "repo cash taker")
    provider = _counterparty(env, params, "counterparty", piece.holder)
    _require_fi(env, provider, (Role.BANK,), "repo cash provider")
    _check_repo_term(env, package, params)
    return provider, params


def _sign_trade(env: Env, package: Package, piece: Piece, request: Request) -> Piece:
    """Shared effect of discount, rediscount, central rediscount and both repo kinds."""
    if env.today >= package.maturity_date:
        raise ContractError("AFTER_MATURITY", "The bill has matured; it can no longer be traded.")
    action, params = request.action, request.params
    seller, buyer = request.initiator, request.counterparty
    rate_ppm = params.int_("rate_ppm")
    amount = piece_amount(package, piece)
    days = _discount_days(env, package)
    interest = discount_interest(amount, rate_ppm, days)
    end_date = params.opt_int("end_date")
    extra: dict[str, StoredValue] = {"rate_ppm": rate_ppm}
    if action is BillAction.PLEDGE_REPO:
        piece = replace(piece, flag=BillFlag.PLEDGED, pledgee=buyer)
    else:
        piece = replace(piece, holder=buyer)
        flag = BillFlag.AWAITING_REDEMPTION if end_date is not None else _rest_flag(piece)
        piece = replace(piece, flag=flag)
        extra.update(days=days, interest_fen=interest, proceeds_fen=amount - interest)
        if action in (BillAction.DISCOUNT, BillAction.REDISCOUNT, BillAction.CB_REDISCOUNT):
            piece = replace(piece, discounted=True)
    if end_date is not None:
        repo = Repo(
            kind=RepoKind.PLEDGE if action is BillAction.PLEDGE_REPO else RepoKind.TRANSFER,
            cash_taker=seller,
            cash_provider=buyer,
            start_day=env.today,
            end_date=end_date,
            rate_ppm=rate_ppm,
        )
        piece = replace(piece, repo=repo)
        extra["end_date"] = end_date
    piece, _ = _chain(env, package, piece, action.value, seller, buyer, None, **extra)
    return piece


# PLEDGE, RELEASE, REDEEM (rows 10, 11 second leg, 13, 14) -------------------------------------


def _read_pledge(args: Args) -> Params:
    pledgee: str = args.id_("pledgee")
    return Params({"pledgee": pledgee})


def _guard_pledge(env: Env, package: Package, piece: Piece, params: Params) -> tuple[str, Params]:
    pledgee = _counterparty(env, params, "pledgee", piece.holder)
    _require_disclosure(package)
    return pledgee, params


def _sign_pledge(env: Env, package: Package, piece: Piece, request: Request) -> Piece:
    if env.today >= package.maturity_date:
        raise ContractError("AFTER_MATURITY", "A bill cannot be pledged on or after maturity.")
    piece = replace(piece, flag=BillFlag.PLEDGED, pledgee=request.counterparty)
    piece, _ = _chain(env, package, piece, "PLEDGE", piece.holder, request.counterparty)
    return piece


def _guard_release(env: Env, package: Package, piece: Piece, params: Params) -> tuple[str, Params]:
    if piece.repo is not None:
        raise ContractError("WRONG_STATE", "A repo pledge ends by redemption, not release.")
    return str(piece.holder), params


def _sign_release(env: Env, package: Package, piece: Piece, request: Request) -> Piece:
    pledgee = piece.pledgee
    piece = replace(piece, flag=_rest_flag(piece), pledgee=None)
    piece, _ = _chain(env, package, piece, "RELEASE", pledgee, piece.holder)
    return piece


def _guard_redeem(env: Env, package: Package, piece: Piece, params: Params) -> tuple[str, Params]:
    repo = piece.repo
    assert repo is not None, "the actor check found the repo"
    if env.today < repo.end_date:
        raise ContractError(
            "WRONG_STATE", f"Redemption opens on the repo end date {day_to_iso(repo.end_date)}."
        )
    return repo.cash_provider, params


def _sign_redeem(env: Env, package: Package, piece: Piece, request: Request) -> Piece:
    repo = piece.repo
    assert repo is not None, "a redemption request needs a repo, and the lock keeps it"
    days = env.today - repo.start_day
    interest = round_half_up_div(
        piece_amount(package, piece) * repo.rate_ppm * days,
        _params(env).repo_day_count_basis * PPM,
    )
    if repo.kind is RepoKind.TRANSFER:
        piece = replace(piece, holder=repo.cash_taker)
        kind = "REDEEM_TRANSFER"
    else:
        piece = replace(piece, pledgee=None)
        kind = "REDEEM_PLEDGE"
    piece = replace(piece, repo=None)
    piece = replace(piece, flag=_rest_flag(piece))
    piece, _ = _chain(
        env,
        package,
        piece,
        kind,
        repo.cash_provider,
        repo.cash_taker,
        days=days,
        repo_interest_fen=interest,
    )
    return piece


# GUARANTEE (row 15) ---------------------------------------------------------------------------


def _read_guarantee(args: Args) -> Params:
    guarantor: str = args.id_("guarantor")
    capacity: str = args.str_("capacity", choices=values(GuaranteeCapacity))
    return Params({"guarantor": guarantor, "capacity": capacity})


def _debtors(package: Package, piece: Piece) -> set[str]:
    debtors = {package.drawer}
    if package.acceptance_date is not None:
        debtors.add(package.acceptor)
    if piece.holder is not None:
        debtors.add(piece.holder)
    debtors.update(entry.source for entry in piece.chain if entry.source is not None)
    debtors.update(g.guarantor for g in piece.guarantees)
    return debtors


def _guard_guarantee(
    env: Env, package: Package, piece: Piece, params: Params
) -> tuple[str, Params]:
    guarantor = params.str_("guarantor")
    require_party(env.store, guarantor, "guarantor")
    if guarantor in _debtors(package, piece):
        raise ContractError(
            "SELF_DEALING", f"{guarantor} is already liable on this bill and cannot guarantee it."
        )
    if package.acceptance_date is not None:
        _require_disclosure(package)
    return guarantor, params


def _sign_guarantee(env: Env, package: Package, piece: Piece, request: Request) -> Piece:
    piece = piece.with_state(request.prev_status, request.prev_flag)
    guarantor = request.counterparty
    capacity = GuaranteeCapacity(request.params.str_("capacity"))
    guarantee = Guarantee(guarantor, request.initiator, capacity, env.today)
    piece = replace(piece, guarantees=(*piece.guarantees, guarantee))
    piece, _ = _chain(
        env,
        package,
        piece,
        "GUARANTEE",
        request.initiator,
        guarantor,
        capacity=capacity.value,
    )
    return piece


# NT revoke (row 17) ---------------------------------------------------------------------------


def _guard_nt_revoke(
    env: Env, package: Package, piece: Piece, params: Params
) -> tuple[str, Params]:
    setter = piece.nt_setter
    if setter is None or setter == piece.holder:
        raise ContractError("SELF_DEALING", "The mark was not set by another party.")
    return setter, params


def _sign_nt_revoke(env: Env, package: Package, piece: Piece, request: Request) -> Piece:
    setter, seq = piece.nt_setter, piece.nt_seq
    piece = replace(piece, nt=False, nt_setter=None, nt_seq=None, flag=BillFlag.NEGOTIABLE)
    piece, _ = _chain(env, package, piece, "NT_REVOKE", piece.holder, setter, ref_seq=seq)
    return piece


# PRESENT for payment (row 18) -----------------------------------------------------------------


def _presentment_type(env: Env, package: Package) -> PresentmentType:
    params = _params(env)
    if env.today < package.maturity_date:
        if not params.allow_early_presentment:
            raise ContractError("WINDOW_CLOSED", "Presentment before maturity is not allowed.")
        return PresentmentType.EARLY
    end = presentment_window_end(package, _cal(env), params)
    if env.today <= end:
        return PresentmentType.IN_WINDOW
    if not params.allow_overdue_presentment:
        raise ContractError("WINDOW_CLOSED", f"The presentment window closed on {day_to_iso(end)}.")
    return PresentmentType.OVERDUE


def _guard_present(env: Env, package: Package, piece: Piece, params: Params) -> tuple[str, Params]:
    if piece.refusal is not None and piece.refusal.type is not PresentmentType.EARLY:
        raise ContractError(
            "WRONG_STATE", "Payment of this piece was refused; pursue recourse instead."
        )
    kind = _presentment_type(env, package)
    return package.acceptor, params.with_(presentment_type=kind.value)


def _sign_present(env: Env, package: Package, piece: Piece, request: Request) -> Piece:
    return _pay(env, package, piece, request)


# RECOURSE (rows 19-21) ------------------------------------------------------------------------


def _read_recourse(args: Args) -> Params:
    recoursee: str = args.id_("recoursee")
    ground: str = args.str_("ground", optional=True, choices=_RECOURSE_GROUNDS) or "REFUSAL"
    interest: int = args.int_("interest_fen", optional=True, maximum=CLAIM_EXTRA_MAX) or 0
    costs: int = args.int_("costs_fen", optional=True, maximum=CLAIM_EXTRA_MAX) or 0
    return Params(
        {"recoursee": recoursee, "ground": ground, "interest_fen": interest, "costs_fen": costs}
    )


def _guard_recourse(env: Env, package: Package, piece: Piece, params: Params) -> tuple[str, Params]:
    recoursee = params.str_("recoursee")
    refusal_type: PresentmentType | None
    if params.str_("ground") == RecourseGround.REFUSAL:
        if piece.refusal is None:
            raise ContractError(
                "RECOURSE_NOT_ALLOWED", "No refusal of payment is recorded for this piece."
            )
        refusal_type = piece.refusal.type
    else:
        if piece.status is not BillStatus.RECEIVED:
            raise ContractError(
                "RECOURSE_NOT_ALLOWED",
                "Recourse without a refusal is only possible before maturity (art. 61).",
            )
        refusal_type = None
    require_party(env.store, recoursee, "recoursee")
    reason = recourse_allowed(
        package, piece, env.sender.id, recoursee, refusal_type, env.today, _params(env)
    )
    if reason is not None:
        raise ContractError("RECOURSE_NOT_ALLOWED", f"Recourse refused: {reason}.")
    stored_type = None if refusal_type is None else refusal_type.value
    return recoursee, params.with_(refusal_type=stored_type)


def _sign_recourse(env: Env, package: Package, piece: Piece, request: Request) -> Piece:
    params = request.params
    holder, recoursee = request.initiator, request.counterparty
    claim = piece_amount(package, piece) + params.int_("interest_fen") + params.int_("costs_fen")
    piece = replace(piece, holder=recoursee, recourse_paid_day=env.today)
    acceptor_side = {package.acceptor} | {
        g.guarantor for g in piece.guarantees if g.guaranteed == package.acceptor
    }
    if recoursee in acceptor_side:
        piece = piece.with_state(BillStatus.SETTLED, BillFlag.ENDED)
    else:
        piece = piece.with_state(request.prev_status, request.prev_flag)
    piece, _ = _chain(
        env,
        package,
        piece,
        "RECOURSE",
        holder,
        recoursee,
        claim_fen=claim,
        ground=params.str_("ground"),
    )
    return piece


def _trade_reader(counterparty: str, *modes: TradeMode) -> Callable[[Args], Params]:
    def read(args: Args) -> Params:
        return _read_trade(args, counterparty, modes)

    return read


_S = BillStatus
_F = BillFlag
_TRANSFER_STATUSES = frozenset({_S.RECEIVED})
_ALIVE = frozenset({_S.RECEIVED, _S.MATURED})
_NEGOTIABLE = frozenset({_F.NEGOTIABLE})
_OUT, _REPO = TradeMode.OUTRIGHT, TradeMode.REPO
_LOCKED = _F.LOCKED
A = BillAction

# fmt: off
_TABLE: tuple[Action, ...] = (
    # name, operation, required status, required flag, actor, lock flag, target status,
    # partial, before maturity, read, guard, effect, [dvp]
    Action(A.ACCEPTANCE, "bill.request_acceptance", frozenset({_S.ISSUED}),
           frozenset({_F.AWAITING_RECEIPT}), Actor.DRAWER, _LOCKED, _S.ACCEPTED,
           False, True, _no_params, _guard_acceptance, _sign_acceptance),
    Action(A.RECEIPT, "bill.request_receipt", frozenset({_S.ACCEPTED}),
           frozenset({_F.AWAITING_RECEIPT}), Actor.DRAWER, _LOCKED, _S.RECEIVED,
           False, False, _no_params, _guard_receipt, _sign_receipt),
    Action(A.ENDORSE, "bill.endorse", _ALIVE, _NEGOTIABLE, Actor.HOLDER, _LOCKED, None,
           True, False, _read_endorse, _guard_endorse, _sign_endorse),
    Action(A.DISCOUNT, "bill.discount", _TRANSFER_STATUSES, _NEGOTIABLE, Actor.HOLDER, _LOCKED,
           None, True, True, _trade_reader("discounter", _OUT, _REPO), _guard_discount,
           _sign_trade, dvp=True),
    Action(A.REDISCOUNT, "bill.rediscount", _TRANSFER_STATUSES, _NEGOTIABLE, Actor.HOLDER,
           _LOCKED, None, True, True, _trade_reader("buyer", _OUT), _guard_rediscount,
           _sign_trade, dvp=True),
    Action(A.CB_REDISCOUNT, "bill.central_bank_rediscount", _TRANSFER_STATUSES, _NEGOTIABLE,
           Actor.HOLDER, _LOCKED, None, True, True, _trade_reader("central_bank", _OUT, _REPO),
           _guard_cb_rediscount, _sign_trade, dvp=True),
    Action(A.OUTRIGHT_REPO, "bill.outright_repo", _TRANSFER_STATUSES, _NEGOTIABLE, Actor.HOLDER,
           _LOCKED, None, True, True, _trade_reader("counterparty", _REPO), _guard_repo,
           _sign_trade, dvp=True),
    Action(A.PLEDGE_REPO, "bill.pledge_repo", _TRANSFER_STATUSES, _NEGOTIABLE, Actor.HOLDER,
           _LOCKED, None, True, True, _trade_reader("counterparty", _REPO), _guard_repo,
           _sign_trade, dvp=True),
    Action(A.PLEDGE, "bill.pledge", _TRANSFER_STATUSES, frozenset(_REST), Actor.HOLDER, _LOCKED,
           None, True, True, _read_pledge, _guard_pledge, _sign_pledge),
    Action(A.RELEASE, "bill.release_pledge", _ALIVE, frozenset({_F.PLEDGED}), Actor.PLEDGEE,
           _LOCKED, None, False, False, _no_params, _guard_release, _sign_release),
    Action(A.REDEEM, "bill.redeem", _ALIVE, frozenset({_F.PLEDGED, _F.AWAITING_REDEMPTION}),
           Actor.REPO_CASH_TAKER, _LOCKED, None, False, False, _no_params, _guard_redeem,
           _sign_redeem, dvp=True),
    Action(A.GUARANTEE, "bill.guarantee", frozenset({_S.ISSUED, _S.ACCEPTED, _S.RECEIVED}),
           frozenset({_F.AWAITING_RECEIPT, *_REST}), Actor.GUARANTEED_PARTY, _LOCKED, None,
           False, True, _read_guarantee, _guard_guarantee, _sign_guarantee),
    Action(A.NT_REVOKE, "bill.revoke_nt", _ALIVE, frozenset({_F.NON_TRANSFERABLE}), Actor.HOLDER,
           _LOCKED, None, False, False, _no_params, _guard_nt_revoke, _sign_nt_revoke),
    Action(A.PRESENT, "bill.present", _ALIVE,
           frozenset({*_REST, _F.PLEDGED, _F.AWAITING_REDEMPTION}), Actor.HOLDER_OR_PLEDGEE,
           _F.COLLECTION_IN_TRANSIT, _S.SETTLED, True, False, _no_params, _guard_present,
           _sign_present, dvp=True),
    # RECOURSE settles the piece only when the recoursee is on the acceptor side; its effect
    # decides, so the table leaves the status to it.
    Action(A.RECOURSE, "bill.recourse", _ALIVE, frozenset(_REST), Actor.HOLDER, _F.RECOURSE,
           None, True, False, _read_recourse, _guard_recourse, _sign_recourse, dvp=True),
)
# fmt: on

ACTIONS: dict[BillAction, Action] = {action.name: action for action in _TABLE}
assert set(ACTIONS) == set(BillAction), "every bill action has exactly one row"
