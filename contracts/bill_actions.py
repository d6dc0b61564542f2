"""The B.5 action table: one row per two-step action, with its guard and its effect.

Theory of operation
-------------------
Each ``Action`` names the statuses and flags it may start from, the flag that locks the piece
while the request is pending, whether it names an amount (and so may split the piece, B.9) and
whether it is barred on/after maturity. ``initiator`` checks who may ask (holder, drawer,
pledgee, repo cash taker ...), ``guard`` checks the action's own preconditions and returns the
counterparty who must answer, and ``on_sign`` applies the effect when that counterparty signs,
re-checking what time may have changed since the request (maturity, presentment window).
Effects append to the piece's chain; ``recourse`` reads that chain to decide liability.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .args import Args, bad, day_to_iso
from .bill_state import (
    _RECOURSE_GROUNDS,
    _REST,
    CLAIM_EXTRA_MAX,
    FI_ROLES,
    RATE_PPM_MAX,
    _cal,
    _chain,
    _params,
    _rest_flag,
    package_key,
    piece_amount,
    presentment_window_end,
)
from .core import Env
from .errors import ContractError
from .identity import load_participant, require_party
from .money import PPM, discount_interest, round_half_up_div
from .recourse import recourse_allowed

__all__ = ["ACTIONS", "Action"]

# --- the action table ------------------------------------------------------------------------

Params = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    operation: str
    statuses: frozenset[str]
    flags: frozenset[str]
    lock_flag: str
    partial: bool  # names an amount k and may split the piece (B.9)
    before_maturity: bool  # on/after maturity -> AFTER_MATURITY
    read: Callable[[Args], Params]
    initiator: Callable[[Env, dict[str, Any], dict[str, Any], Params], None]
    guard: Callable[[Env, dict[str, Any], dict[str, Any], Params], str]
    on_sign: Callable[[Env, dict[str, Any], dict[str, Any], dict[str, Any]], None]


def _no_params(args: Args) -> Params:
    return {}


def _is_drawer(env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params) -> None:
    if env.sender.id != package["drawer"]:
        raise ContractError(
            "FORBIDDEN", f"Only the drawer {package['drawer']} may do this for this bill."
        )


def _is_holder(env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params) -> None:
    if env.sender.id != piece["holder"]:
        holder = piece["holder"] or "nobody yet"
        raise ContractError(
            "NOT_HOLDER", f"{env.sender.id} is not the holder of this piece (holder: {holder})."
        )


def _is_pledgee(env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params) -> None:
    if piece["flag"] != "PLEDGED" or env.sender.id != piece["pledgee"]:
        raise ContractError("NOT_HOLDER", f"{env.sender.id} is not the pledgee of this piece.")


def _is_cash_taker(
    env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params
) -> None:
    repo = piece["repo"]
    if repo is None:
        raise ContractError("WRONG_STATE", "This piece is not in a repo or repo-type discount.")
    if env.sender.id != repo["cash_taker"]:
        raise ContractError(
            "NOT_HOLDER", f"Only {repo['cash_taker']}, who sold under repo, may redeem it."
        )


def _counterparty(env: Env, params: Params, field: str, holder: str | None) -> str:
    pid: str = params[field]
    require_party(env.store, pid, field)
    if pid == holder or pid == env.sender.id:
        raise ContractError("SELF_DEALING", f"The {field} must be another participant.")
    return pid


def _require_fi(env: Env, pid: str, roles: tuple[str, ...], what: str) -> None:
    party = load_participant(env.store, pid)
    if party is None or not any(party.has(role) for role in roles):
        raise ContractError(
            "COUNTERPARTY_TYPE",
            f"{pid} cannot act as {what}: it needs the role {' or '.join(roles)}.",
        )


def _require_disclosure(package: dict[str, Any]) -> None:
    if package["kind"] == "COMMERCIAL" and not package["disclosed"]:
        raise ContractError(
            "DISCLOSURE_MISSING",
            f"The acceptor of commercial bill {package['package_no']} has not disclosed the "
            "acceptance.",
        )


def _read_rate(args: Args) -> int:
    rate: int = args.int_("rate_ppm", maximum=RATE_PPM_MAX)
    return rate


def _read_trade(args: Args, counterparty: str, modes: tuple[str, ...]) -> Params:
    params: Params = {counterparty: args.id_(counterparty), "rate_ppm": _read_rate(args)}
    mode = args.str_("mode", optional=True, choices=modes) or modes[0]
    params["mode"] = mode
    params["end_date"] = args.date_("end_date", optional=mode == "outright")
    if mode == "outright" and params["end_date"] is not None:
        raise bad("end_date", "is only for repo-type trades")
    return params


def _check_repo_term(env: Env, package: dict[str, Any], params: Params) -> None:
    end = params.get("end_date")
    if end is None:
        return
    if end <= env.today:
        raise ContractError("REPO_TERM_INVALID", "The repo end date must be after today.")
    if end > package["maturity_date"]:
        raise ContractError(
            "REPO_TERM_INVALID",
            f"The repo ends {day_to_iso(end)}, after the bill matures on "
            f"{day_to_iso(package['maturity_date'])}.",
        )


# ACCEPTANCE (row 2) ---------------------------------------------------------------------------


def _guard_acceptance(
    env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params
) -> str:
    if env.today >= package["maturity_date"]:
        raise ContractError("AFTER_MATURITY", "A bill cannot be accepted on or after maturity.")
    require_party(env.store, package["acceptor"], "acceptor")
    return str(package["acceptor"])


def _sign_acceptance(
    env: Env, package: dict[str, Any], piece: dict[str, Any], request: dict[str, Any]
) -> None:
    if env.today >= package["maturity_date"]:
        raise ContractError("AFTER_MATURITY", "A bill cannot be accepted on or after maturity.")
    piece["status"], piece["flag"] = "ACCEPTED", "AWAITING_RECEIPT"
    package["acceptance_date"] = env.today
    env.store.put(package_key(package["package_no"]), package)
    _chain(env, package, piece, "ACCEPT", package["drawer"], package["acceptor"])


# RECEIPT (row 5) ------------------------------------------------------------------------------


def _guard_receipt(env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params) -> str:
    require_party(env.store, package["payee"], "payee")
    return str(package["payee"])


def _sign_receipt(
    env: Env, package: dict[str, Any], piece: dict[str, Any], request: dict[str, Any]
) -> None:
    piece["status"] = "MATURED" if env.today >= package["maturity_date"] else "RECEIVED"
    piece["holder"] = package["payee"]
    piece["flag"] = _rest_flag(piece)
    _chain(env, package, piece, "RECEIPT", package["drawer"], package["payee"])


# ENDORSE (row 6) ------------------------------------------------------------------------------


def _read_endorse(args: Args) -> Params:
    endorsee = args.any_("endorsee")
    if isinstance(endorsee, list | tuple):
        raise ContractError(
            "PARTIAL_ENDORSEMENT", "An endorsement names exactly one endorsee (art. 33)."
        )
    args.id_("endorsee")
    return {"endorsee": endorsee, "non_transferable": args.bool_("non_transferable")}


def _check_endorsable(env: Env, package: dict[str, Any], piece: dict[str, Any]) -> None:
    if piece["refusal"] is not None:
        raise ContractError(
            "WINDOW_CLOSED", "A bill cannot be endorsed after payment was refused (art. 36)."
        )
    if piece["status"] == "MATURED":
        end = presentment_window_end(package, _cal(env), _params(env))
        if env.today > end:
            raise ContractError(
                "WINDOW_CLOSED",
                f"The presentment window closed on {day_to_iso(end)}; the bill can no longer "
                "be endorsed (art. 36).",
            )


def _guard_endorse(env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params) -> str:
    _check_endorsable(env, package, piece)
    return _counterparty(env, params, "endorsee", piece["holder"])


def _sign_endorse(
    env: Env, package: dict[str, Any], piece: dict[str, Any], request: dict[str, Any]
) -> None:
    _check_endorsable(env, package, piece)
    endorser, endorsee = piece["holder"], request["counterparty"]
    nt = bool(request["params"]["non_transferable"])
    piece["holder"] = endorsee
    if nt:
        piece["nt"], piece["nt_setter"] = True, endorser
    piece["flag"] = _rest_flag(piece)
    entry = _chain(env, package, piece, "ENDORSE", endorser, endorsee, nt=nt)
    if nt:
        piece["nt_seq"] = entry["seq"]


# DISCOUNT family (rows 7, 8, 9, 11, 12) -------------------------------------------------------


def _discount_days(env: Env, package: Mapping[str, Any]) -> int:
    """Days from the discount date to maturity, holiday-rolled, plus the remote allowance."""
    maturity = _cal(env).roll_forward(package["maturity_date"])
    return maturity - env.today + _params(env).remote_allowance_days


def _guard_discount(
    env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params
) -> str:
    if any(env.sender.has(role) for role in FI_ROLES):
        raise ContractError(
            "COUNTERPARTY_TYPE",
            "A financial institution sells a discounted bill by rediscount, not discount.",
        )
    discounter = _counterparty(env, params, "discounter", piece["holder"])
    _require_fi(env, discounter, ("bank",), "discounting institution")
    _require_disclosure(package)
    _check_repo_term(env, package, params)
    return discounter


def _guard_rediscount(
    env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params
) -> str:
    _require_fi(env, env.sender.id, FI_ROLES, "rediscount seller")
    if not piece["discounted"]:
        raise ContractError(
            "WRONG_STATE", "Only a discounted bill can be rediscounted between institutions."
        )
    buyer = _counterparty(env, params, "buyer", piece["holder"])
    _require_fi(env, buyer, ("bank",), "rediscount buyer")
    _check_repo_term(env, package, params)
    return buyer


def _guard_cb_rediscount(
    env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params
) -> str:
    _require_fi(env, env.sender.id, ("bank",), "central-bank rediscount applicant")
    if not piece["discounted"]:
        raise ContractError("WRONG_STATE", "Only a discounted bill can go to central rediscount.")
    central_bank = _counterparty(env, params, "central_bank", piece["holder"])
    _require_fi(env, central_bank, ("central_bank",), "rediscounting central bank")
    _check_repo_term(env, package, params)
    return central_bank


def _guard_repo(env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params) -> str:
    _require_fi(env, env.sender.id, ("bank",), "repo cash taker")
    provider = _counterparty(env, params, "counterparty", piece["holder"])
    _require_fi(env, provider, ("bank",), "repo cash provider")
    _check_repo_term(env, package, params)
    return provider


def _sign_trade(
    env: Env, package: dict[str, Any], piece: dict[str, Any], request: dict[str, Any]
) -> None:
    """Shared effect of discount, rediscount, central rediscount and both repo kinds."""
    if env.today >= package["maturity_date"]:
        raise ContractError("AFTER_MATURITY", "The bill has matured; it can no longer be traded.")
    action, params = request["action"], request["params"]
    seller, buyer = request["initiator"], request["counterparty"]
    amount = piece_amount(package, piece)
    days = _discount_days(env, package)
    interest = discount_interest(amount, params["rate_ppm"], days)
    repo = params.get("end_date") is not None
    extra: dict[str, Any] = {"rate_ppm": params["rate_ppm"]}
    if action == "PLEDGE_REPO":
        piece["flag"], piece["pledgee"] = "PLEDGED", buyer
    else:
        piece["holder"] = buyer
        piece["flag"] = "AWAITING_REDEMPTION" if repo else _rest_flag(piece)
        extra.update(days=days, interest_fen=interest, proceeds_fen=amount - interest)
        if action in ("DISCOUNT", "REDISCOUNT", "CB_REDISCOUNT"):
            piece["discounted"] = True
    if repo:
        piece["repo"] = {
            "kind": "PLEDGE" if action == "PLEDGE_REPO" else "TRANSFER",
            "cash_taker": seller,
            "cash_provider": buyer,
            "start_day": env.today,
            "end_date": params["end_date"],
            "rate_ppm": params["rate_ppm"],
        }
        extra["end_date"] = params["end_date"]
    _chain(env, package, piece, action, seller, buyer, **extra)


# PLEDGE, RELEASE, REDEEM (rows 10, 11 second leg, 13, 14) -------------------------------------


def _guard_pledge(env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params) -> str:
    pledgee = _counterparty(env, params, "pledgee", piece["holder"])
    _require_disclosure(package)
    return pledgee


def _sign_pledge(
    env: Env, package: dict[str, Any], piece: dict[str, Any], request: dict[str, Any]
) -> None:
    if env.today >= package["maturity_date"]:
        raise ContractError("AFTER_MATURITY", "A bill cannot be pledged on or after maturity.")
    piece["flag"], piece["pledgee"] = "PLEDGED", request["counterparty"]
    _chain(env, package, piece, "PLEDGE", piece["holder"], request["counterparty"])


def _guard_release(env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params) -> str:
    if piece["repo"] is not None:
        raise ContractError("WRONG_STATE", "A repo pledge ends by redemption, not release.")
    return str(piece["holder"])


def _sign_release(
    env: Env, package: dict[str, Any], piece: dict[str, Any], request: dict[str, Any]
) -> None:
    pledgee = piece["pledgee"]
    piece["flag"], piece["pledgee"] = _rest_flag(piece), None
    _chain(env, package, piece, "RELEASE", pledgee, piece["holder"])


def _guard_redeem(env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params) -> str:
    repo = piece["repo"]
    if env.today < repo["end_date"]:
        raise ContractError(
            "WRONG_STATE", f"Redemption opens on the repo end date {day_to_iso(repo['end_date'])}."
        )
    return str(repo["cash_provider"])


def _sign_redeem(
    env: Env, package: dict[str, Any], piece: dict[str, Any], request: dict[str, Any]
) -> None:
    repo = piece["repo"]
    days = env.today - repo["start_day"]
    interest = round_half_up_div(
        piece_amount(package, piece) * repo["rate_ppm"] * days,
        _params(env).repo_day_count_basis * PPM,
    )
    if repo["kind"] == "TRANSFER":
        piece["holder"] = repo["cash_taker"]
        kind = "REDEEM_TRANSFER"
    else:
        piece["pledgee"] = None
        kind = "REDEEM_PLEDGE"
    piece["repo"] = None
    piece["flag"] = _rest_flag(piece)
    _chain(
        env,
        package,
        piece,
        kind,
        repo["cash_provider"],
        repo["cash_taker"],
        days=days,
        repo_interest_fen=interest,
    )


# GUARANTEE (row 15) ---------------------------------------------------------------------------


def _read_guarantee(args: Args) -> Params:
    return {
        "guarantor": args.id_("guarantor"),
        "capacity": args.str_("capacity", choices=("DRAWER", "ACCEPTOR", "ENDORSER")),
    }


def _guarantee_initiator(
    env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params
) -> None:
    capacity = params["capacity"]
    if capacity == "DRAWER":
        _is_drawer(env, package, piece, params)
    elif capacity == "ACCEPTOR":
        if env.sender.id != package["acceptor"] or package["acceptance_date"] is None:
            raise ContractError("FORBIDDEN", "Only the acceptor, after acceptance, may do this.")
    else:
        _is_holder(env, package, piece, params)


def _debtors(package: Mapping[str, Any], piece: Mapping[str, Any]) -> set[str]:
    debtors = {package["drawer"]}
    if package["acceptance_date"] is not None:
        debtors.add(package["acceptor"])
    if piece["holder"] is not None:
        debtors.add(piece["holder"])
    debtors.update(entry["from"] for entry in piece["chain"] if entry["from"] is not None)
    debtors.update(g["guarantor"] for g in piece["guarantees"])
    return debtors


def _guard_guarantee(
    env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params
) -> str:
    guarantor: str = params["guarantor"]
    require_party(env.store, guarantor, "guarantor")
    if guarantor in _debtors(package, piece):
        raise ContractError(
            "SELF_DEALING", f"{guarantor} is already liable on this bill and cannot guarantee it."
        )
    if package["acceptance_date"] is not None:
        _require_disclosure(package)
    return guarantor


def _sign_guarantee(
    env: Env, package: dict[str, Any], piece: dict[str, Any], request: dict[str, Any]
) -> None:
    piece["status"], piece["flag"] = request["prev_status"], request["prev_flag"]
    guarantor = request["counterparty"]
    piece["guarantees"] = [
        *piece["guarantees"],
        {
            "guarantor": guarantor,
            "guaranteed": request["initiator"],
            "capacity": request["params"]["capacity"],
            "day": env.today,
        },
    ]
    _chain(
        env,
        package,
        piece,
        "GUARANTEE",
        request["initiator"],
        guarantor,
        capacity=request["params"]["capacity"],
    )


# NT revoke (row 17) ---------------------------------------------------------------------------


def _guard_nt_revoke(
    env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params
) -> str:
    setter = piece["nt_setter"]
    if setter is None or setter == piece["holder"]:
        raise ContractError("SELF_DEALING", "The mark was not set by another party.")
    return str(setter)


def _sign_nt_revoke(
    env: Env, package: dict[str, Any], piece: dict[str, Any], request: dict[str, Any]
) -> None:
    setter, seq = piece["nt_setter"], piece.get("nt_seq", 0)
    piece["nt"], piece["nt_setter"], piece["nt_seq"] = False, None, None
    piece["flag"] = "NEGOTIABLE"
    _chain(env, package, piece, "NT_REVOKE", piece["holder"], setter, ref_seq=seq)


# PRESENT for payment (row 18) -----------------------------------------------------------------


def _present_initiator(
    env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params
) -> None:
    if piece["flag"] == "PLEDGED":
        _is_pledgee(env, package, piece, params)
    else:
        _is_holder(env, package, piece, params)


def _presentment_type(env: Env, package: Mapping[str, Any]) -> str:
    params = _params(env)
    if env.today < package["maturity_date"]:
        if not params.allow_early_presentment:
            raise ContractError("WINDOW_CLOSED", "Presentment before maturity is not allowed.")
        return "EARLY"
    end = presentment_window_end(package, _cal(env), params)
    if env.today <= end:
        return "IN_WINDOW"
    if not params.allow_overdue_presentment:
        raise ContractError("WINDOW_CLOSED", f"The presentment window closed on {day_to_iso(end)}.")
    return "OVERDUE"


def _guard_present(env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params) -> str:
    if piece["refusal"] is not None and piece["refusal"]["type"] != "EARLY":
        raise ContractError(
            "WRONG_STATE", "Payment of this piece was refused; pursue recourse instead."
        )
    params["presentment_type"] = _presentment_type(env, package)
    return str(package["acceptor"])


def _sign_present(
    env: Env, package: dict[str, Any], piece: dict[str, Any], request: dict[str, Any]
) -> None:
    piece["status"], piece["flag"] = "SETTLED", "ENDED"
    piece["paid_to"] = request["initiator"]
    _chain(
        env,
        package,
        piece,
        "PAYMENT",
        package["acceptor"],
        request["initiator"],
        presentment_type=request["params"]["presentment_type"],
    )


# RECOURSE (rows 19-21) ------------------------------------------------------------------------


def _read_recourse(args: Args) -> Params:
    return {
        "recoursee": args.id_("recoursee"),
        "ground": args.str_("ground", optional=True, choices=_RECOURSE_GROUNDS) or "REFUSAL",
        "interest_fen": args.int_("interest_fen", optional=True, maximum=CLAIM_EXTRA_MAX) or 0,
        "costs_fen": args.int_("costs_fen", optional=True, maximum=CLAIM_EXTRA_MAX) or 0,
    }


def _guard_recourse(
    env: Env, package: dict[str, Any], piece: dict[str, Any], params: Params
) -> str:
    recoursee: str = params["recoursee"]
    if params["ground"] == "REFUSAL":
        if piece["refusal"] is None:
            raise ContractError(
                "RECOURSE_NOT_ALLOWED", "No refusal of payment is recorded for this piece."
            )
        refusal_type: str | None = piece["refusal"]["type"]
    else:
        if piece["status"] != "RECEIVED":
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
    params["refusal_type"] = refusal_type
    return recoursee


def _sign_recourse(
    env: Env, package: dict[str, Any], piece: dict[str, Any], request: dict[str, Any]
) -> None:
    params = request["params"]
    holder, recoursee = request["initiator"], request["counterparty"]
    claim = piece_amount(package, piece) + params["interest_fen"] + params["costs_fen"]
    piece["holder"] = recoursee
    piece["recourse_paid_day"] = env.today
    acceptor_side = {package["acceptor"]} | {
        g["guarantor"] for g in piece["guarantees"] if g["guaranteed"] == package["acceptor"]
    }
    if recoursee in acceptor_side:
        piece["status"], piece["flag"] = "SETTLED", "ENDED"
    else:
        piece["status"], piece["flag"] = request["prev_status"], request["prev_flag"]
    _chain(
        env, package, piece, "RECOURSE", holder, recoursee, claim_fen=claim, ground=params["ground"]
    )


_TRANSFER_STATUSES = frozenset({"RECEIVED"})
_ALIVE = frozenset({"RECEIVED", "MATURED"})

ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Action(
            "ACCEPTANCE",
            "bill.request_acceptance",
            frozenset({"ISSUED"}),
            frozenset({"AWAITING_RECEIPT"}),
            "LOCKED",
            False,
            True,
            _no_params,
            _is_drawer,
            _guard_acceptance,
            _sign_acceptance,
        ),
        Action(
            "RECEIPT",
            "bill.request_receipt",
            frozenset({"ACCEPTED"}),
            frozenset({"AWAITING_RECEIPT"}),
            "LOCKED",
            False,
            False,
            _no_params,
            _is_drawer,
            _guard_receipt,
            _sign_receipt,
        ),
        Action(
            "ENDORSE",
            "bill.endorse",
            _ALIVE,
            frozenset({"NEGOTIABLE"}),
            "LOCKED",
            True,
            False,
            _read_endorse,
            _is_holder,
            _guard_endorse,
            _sign_endorse,
        ),
        Action(
            "DISCOUNT",
            "bill.discount",
            _TRANSFER_STATUSES,
            frozenset({"NEGOTIABLE"}),
            "LOCKED",
            True,
            True,
            lambda args: _read_trade(args, "discounter", ("outright", "repo")),
            _is_holder,
            _guard_discount,
            _sign_trade,
        ),
        Action(
            "REDISCOUNT",
            "bill.rediscount",
            _TRANSFER_STATUSES,
            frozenset({"NEGOTIABLE"}),
            "LOCKED",
            True,
            True,
            lambda args: _read_trade(args, "buyer", ("outright",)),
            _is_holder,
            _guard_rediscount,
            _sign_trade,
        ),
        Action(
            "CB_REDISCOUNT",
            "bill.central_bank_rediscount",
            _TRANSFER_STATUSES,
            frozenset({"NEGOTIABLE"}),
            "LOCKED",
            True,
            True,
            lambda args: _read_trade(args, "central_bank", ("outright", "repo")),
            _is_holder,
            _guard_cb_rediscount,
            _sign_trade,
        ),
        Action(
            "OUTRIGHT_REPO",
            "bill.outright_repo",
            _TRANSFER_STATUSES,
            frozenset({"NEGOTIABLE"}),
            "LOCKED",
            True,
            True,
            lambda args: _read_trade(args, "counterparty", ("repo",)),
            _is_holder,
            _guard_repo,
            _sign_trade,
        ),
        Action(
            "PLEDGE_REPO",
            "bill.pledge_repo",
            _TRANSFER_STATUSES,
            frozenset({"NEGOTIABLE"}),
            "LOCKED",
            True,
            True,
            lambda args: _read_trade(args, "counterparty", ("repo",)),
            _is_holder,
            _guard_repo,
            _sign_trade,
        ),
        Action(
            "PLEDGE",
            "bill.pledge",
            _TRANSFER_STATUSES,
            frozenset(_REST),
            "LOCKED",
            True,
            True,
            lambda args: {"pledgee": args.id_("pledgee")},
            _is_holder,
            _guard_pledge,
            _sign_pledge,
        ),
        Action(
            "RELEASE",
            "bill.release_pledge",
            _ALIVE,
            frozenset({"PLEDGED"}),
            "LOCKED",
            False,
            False,
            _no_params,
            _is_pledgee,
            _guard_release,
            _sign_release,
        ),
        Action(
            "REDEEM",
            "bill.redeem",
            _ALIVE,
            frozenset({"PLEDGED", "AWAITING_REDEMPTION"}),
            "LOCKED",
            False,
            False,
            _no_params,
            _is_cash_taker,
            _guard_redeem,
            _sign_redeem,
        ),
        Action(
            "GUARANTEE",
            "bill.guarantee",
            frozenset({"ISSUED", "ACCEPTED", "RECEIVED"}),
            frozenset({"AWAITING_RECEIPT", *_REST}),
            "LOCKED",
            False,
            True,
            _read_guarantee,
            _guarantee_initiator,
            _guard_guarantee,
            _sign_guarantee,
        ),
        Action(
            "NT_REVOKE",
            "bill.revoke_nt",
            _ALIVE,
            frozenset({"NON_TRANSFERABLE"}),
            "LOCKED",
            False,
            False,
            _no_params,
            _is_holder,
            _guard_nt_revoke,
            _sign_nt_revoke,
        ),
        Action(
            "PRESENT",
            "bill.present",
            _ALIVE,
            frozenset({*_REST, "PLEDGED", "AWAITING_REDEMPTION"}),
            "COLLECTION_IN_TRANSIT",
            True,
            False,
            _no_params,
            _present_initiator,
            _guard_present,
            _sign_present,
        ),
        Action(
            "RECOURSE",
            "bill.recourse",
            _ALIVE,
            frozenset(_REST),
            "RECOURSE",
            True,
            False,
            _read_recourse,
            _is_holder,
            _guard_recourse,
            _sign_recourse,
        ),
    )
}
