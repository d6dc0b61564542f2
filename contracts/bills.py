"""Electronic commercial bills (DOMAIN.md Part B): a table-driven state machine over bill pieces.

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

Time-driven transitions (maturity roll, rights expiry, request time-outs, unanswered presentment
auto-refusal) depend only on the agreed block date and the genesis calendar. They are applied
lazily whenever a piece is loaded by an operation (and by ``bill.sweep``), so every replica
computes them identically and nothing needs a clock.

Prototype simplifications (documented in the report): payment and DVP cash legs are not
modelled (a signed payment answer settles); a recourse notice is a request whose acceptance by the
recoursee is the settlement (rows 19 + 20 collapsed); repo interest is recorded, not paid; the
access institution answering on an acceptor's behalf and SHCPE auto-answers are not modelled.

State keys::

    bill/<package no>                       package record (bill-level attributes)
    bill/<package no>/p/<start:012d>        piece record (state, holder, chain, guarantees)
    breq/<request id hex>                   request record (request id = requesting tx id)
    idx/bp/<participant>/<package no>       sorted list of the participant's capacities
    hist/b/<package no>/...                 history entries (core.Store.emit)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .args import Args, bad, day_to_iso
from .calendar import (
    CALENDAR_KEY,
    PARAMS_KEY,
    BusinessCalendar,
    Parameters,
    add_months,
)
from .codec import INT_MIN
from .core import Env, Store
from .errors import ContractError
from .identifiers import (
    BILL_KIND_DIGITS_BANK,
    BILL_KIND_DIGITS_COMMERCIAL,
    PACKAGE_AMOUNT_MAX_FEN,
    require,
    sub_range_bounds,
)
from .identity import load_participant, require_party
from .money import PPM, discount_interest, parse_amount, round_half_up_div
from .recourse import recourse_allowed

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

STATUS_CODES = {
    "ISSUED": "CS01",
    "ACCEPTED": "CS02",
    "RECEIVED": "CS03",
    "MATURED": "CS04",
    "TERMINATED": "CS05",
    "SETTLED": "CS06",
}
FLAG_CODES = {
    "AWAITING_RECEIPT": "TF0101",
    "NEGOTIABLE": "TF0301",
    "LOCKED": "TF0302",
    "NON_TRANSFERABLE": "TF0303",
    "PLEDGED": "TF0304",
    "AWAITING_REDEMPTION": "TF0305",
    "COLLECTION_IN_TRANSIT": "TF0401",
    "RECOURSE": "TF0402",
    "ENDED": "TF0501",
}
BILL_KINDS = ("BANK", "FINANCE", "COMMERCIAL")
FI_ROLES = ("bank", "central_bank")
RATE_PPM_MAX = 1_000_000  # 100 % a year
CLAIM_EXTRA_MAX = 10**12
_RECOURSE_GROUNDS = (
    "REFUSAL",
    "ACCEPTOR_BANKRUPT",
    "ACCEPTOR_CEASED_BUSINESS",
    "ACCEPTOR_DECEASED_OR_ABSCONDED",
)
_REST = ("NEGOTIABLE", "NON_TRANSFERABLE")


# --- keys and small helpers ------------------------------------------------------------------


def package_key(package_no: str) -> bytes:
    return b"bill/" + package_no.encode()


def _piece_key(package_no: str, start: int) -> bytes:
    return f"bill/{package_no}/p/{start:012d}".encode()


def request_key(request_id: str) -> bytes:
    return b"breq/" + request_id.encode()


def _involve_key(pid: str, package_no: str) -> bytes:
    return f"idx/bp/{pid}/{package_no}".encode()


def piece_amount(package: Mapping[str, Any], piece: Mapping[str, Any]) -> int:
    if piece["start"] == 0:
        return int(package["amount_fen"])
    return int(piece["end"]) - int(piece["start"]) + 1


def piece_range(piece: Mapping[str, Any]) -> str:
    return "0" if piece["start"] == 0 else f"{piece['start']}-{piece['end']}"


def _rest_flag(piece: Mapping[str, Any]) -> str:
    return "NON_TRANSFERABLE" if piece["nt"] else "NEGOTIABLE"


def load_calendar(store: Store) -> BusinessCalendar:
    return BusinessCalendar.from_record(store.get_obj(CALENDAR_KEY))


def load_parameters(store: Store) -> Parameters:
    return Parameters.from_record(store.get_obj(PARAMS_KEY))


def _cal(env: Env) -> BusinessCalendar:
    if "calendar" not in env.extra:
        env.extra["calendar"] = load_calendar(env.store)
    calendar: BusinessCalendar = env.extra["calendar"]
    return calendar


def _params(env: Env) -> Parameters:
    if "params" not in env.extra:
        env.extra["params"] = load_parameters(env.store)
    params: Parameters = env.extra["params"]
    return params


def presentment_window_end(
    package: Mapping[str, Any], calendar: BusinessCalendar, params: Parameters
) -> int:
    """Last day of the presentment window: maturity + N days, rolled to a business day (B.7)."""
    return calendar.roll_forward(package["maturity_date"] + params.presentment_window_days)


def _rights_expiry(package: Mapping[str, Any], params: Parameters) -> int:
    return add_months(package["maturity_date"], params.rights_expiry_months)


def _scope(package_no: str) -> list[str]:
    return [f"b/{package_no}"]


def _involve(store: Store, pid: str, package_no: str, capacity: str) -> None:
    key = _involve_key(pid, package_no)
    current = store.get_obj(key) or []
    if capacity not in current:
        store.put(key, sorted([*current, capacity]))


def _save_piece(store: Store, package_no: str, piece: dict[str, Any]) -> None:
    store.put(_piece_key(package_no, piece["start"]), piece)


def _chain(env: Env, package: Mapping[str, Any], piece: dict[str, Any], kind: str,
           source: str | None, target: str | None, **extra: Any) -> dict[str, Any]:
    entry = {
        "seq": len(piece["chain"]) + 1,
        "type": kind,
        "from": source,
        "to": target,
        "day": env.today,
        "height": env.ctx.height,
        "timestamp_ms": env.ctx.timestamp_ms,
        "tx_id": env.ctx.tx_id.hex(),
        "range": piece_range(piece),
        "amount_fen": piece_amount(package, piece),
        **extra,
    }
    piece["chain"] = [*piece["chain"], entry]
    return entry


def _attrs(package: Mapping[str, Any], piece: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "package_no": package["package_no"],
        "range": piece_range(piece),
        "amount_fen": piece_amount(package, piece),
        **extra,
    }


# --- loading and the time-driven transitions -------------------------------------------------


def _load_package(store: Store, package_no: str) -> dict[str, Any]:
    record = store.get_obj(package_key(package_no))
    if record is None:
        raise ContractError("UNKNOWN_BILL", f"No bill package {package_no} is registered.")
    return dict(record)


def _load_request(store: Store, request_id: str) -> dict[str, Any]:
    record = store.get_obj(request_key(request_id))
    if record is None:
        raise ContractError("UNKNOWN_REQUEST", f"There is no request {request_id}.")
    return dict(record)


def _restore(env: Env, package: Mapping[str, Any], piece: dict[str, Any],
             request: dict[str, Any], status: str) -> None:
    """Close ``request`` with ``status`` and give the piece back its exact previous state."""
    request["status"] = status
    request["closed_day"] = env.today
    piece["status"] = request["prev_status"]
    piece["flag"] = request["prev_flag"]
    piece["request"] = None
    if piece["status"] == "RECEIVED" and env.today >= package["maturity_date"]:
        piece["status"] = "MATURED"


def _record_refusal(env: Env, package: Mapping[str, Any], piece: dict[str, Any],
                    request: Mapping[str, Any], reason: str, automatic: bool) -> None:
    refusal_type = request["params"]["presentment_type"]
    piece["refusal"] = {"type": refusal_type, "day": env.today, "reason": reason}
    _chain(env, package, piece, "REFUSAL", package["acceptor"], request["initiator"],
           refusal_type=refusal_type, reason=reason, automatic=automatic)
    env.store.emit(
        "bill.payment_refused",
        _attrs(package, piece, request_id=request["id"], refusal_type=refusal_type,
               reason=reason, automatic=automatic),
        _scope(package["package_no"]),
    )


def _normalise(env: Env, package: Mapping[str, Any], piece: dict[str, Any]) -> dict[str, Any]:
    """Apply every transition that the passage of time has made due (B.5 rows 4, 23, 24)."""
    changed = False
    package_no = package["package_no"]
    if piece["status"] == "RECEIVED" and env.today >= package["maturity_date"]:
        piece["status"] = "MATURED"
        changed = True
        env.store.emit("bill.matured", _attrs(package, piece), _scope(package_no))
    if piece["request"] is not None:
        request = _load_request(env.store, piece["request"])
        if env.today > request["expires_day"]:
            if request["action"] == "PRESENT":
                _restore(env, package, piece, request, "REJECTED")
                _record_refusal(env, package, piece, request, "not answered in time", True)
            else:
                _restore(env, package, piece, request, "CLEARED")
                env.store.emit(
                    "bill.request_cleared",
                    _attrs(package, piece, request_id=request["id"], action=request["action"]),
                    _scope(package_no),
                )
            env.store.put(request_key(request["id"]), request)
            changed = True
    if (
        piece["status"] in ("RECEIVED", "MATURED")
        and piece["flag"] != "ENDED"
        and piece["request"] is None
        and env.today > _rights_expiry(package, _params(env))
    ):
        piece["flag"] = "ENDED"
        piece["rights_expired"] = True
        changed = True
        env.store.emit("bill.rights_expired", _attrs(package, piece), _scope(package_no))
    if changed:
        _save_piece(env.store, package_no, piece)
    return piece


def _pieces(store: Store, package_no: str) -> list[dict[str, Any]]:
    return [dict(record) for _, record in store.scan_objs(f"bill/{package_no}/p/".encode())]


def _locate(env: Env, package_no: str, range_text: str | None) -> tuple[dict[str, Any],
                                                                      dict[str, Any]]:
    package = _load_package(env.store, package_no)
    if range_text is None:
        pieces = _pieces(env.store, package_no)
        if len(pieces) != 1:
            raise bad("range", f"is required: package {package_no} has {len(pieces)} pieces")
        piece = pieces[0]
    else:
        start, end = sub_range_bounds(range_text)
        record = env.store.get_obj(_piece_key(package_no, start))
        if record is None or record["end"] != end:
            raise ContractError(
                "UNKNOWN_PIECE", f"Package {package_no} has no piece with range {range_text}."
            )
        piece = dict(record)
    return package, _normalise(env, package, piece)


def _piece_args(args: Args) -> tuple[str, str | None]:
    package_no = args.str_("package_no", max_len=30)
    require("bill_no", package_no, field="package_no")
    range_text = args.str_("range", optional=True, max_len=25)
    return package_no, range_text


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


def _is_cash_taker(env: Env, package: dict[str, Any], piece: dict[str, Any],
                   params: Params) -> None:
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
            "COUNTERPARTY_TYPE", f"{pid} cannot act as {what}: it needs the role "
            f"{' or '.join(roles)}."
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


def _guard_acceptance(env: Env, package: dict[str, Any], piece: dict[str, Any],
                      params: Params) -> str:
    if env.today >= package["maturity_date"]:
        raise ContractError("AFTER_MATURITY", "A bill cannot be accepted on or after maturity.")
    require_party(env.store, package["acceptor"], "acceptor")
    return str(package["acceptor"])


def _sign_acceptance(env: Env, package: dict[str, Any], piece: dict[str, Any],
                     request: dict[str, Any]) -> None:
    if env.today >= package["maturity_date"]:
        raise ContractError("AFTER_MATURITY", "A bill cannot be accepted on or after maturity.")
    piece["status"], piece["flag"] = "ACCEPTED", "AWAITING_RECEIPT"
    package["acceptance_date"] = env.today
    env.store.put(package_key(package["package_no"]), package)
    _chain(env, package, piece, "ACCEPT", package["drawer"], package["acceptor"])


# RECEIPT (row 5) ------------------------------------------------------------------------------


def _guard_receipt(env: Env, package: dict[str, Any], piece: dict[str, Any],
                   params: Params) -> str:
    require_party(env.store, package["payee"], "payee")
    return str(package["payee"])


def _sign_receipt(env: Env, package: dict[str, Any], piece: dict[str, Any],
                  request: dict[str, Any]) -> None:
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


def _guard_endorse(env: Env, package: dict[str, Any], piece: dict[str, Any],
                   params: Params) -> str:
    _check_endorsable(env, package, piece)
    return _counterparty(env, params, "endorsee", piece["holder"])


def _sign_endorse(env: Env, package: dict[str, Any], piece: dict[str, Any],
                  request: dict[str, Any]) -> None:
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


def _guard_discount(env: Env, package: dict[str, Any], piece: dict[str, Any],
                    params: Params) -> str:
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


def _guard_rediscount(env: Env, package: dict[str, Any], piece: dict[str, Any],
                      params: Params) -> str:
    _require_fi(env, env.sender.id, FI_ROLES, "rediscount seller")
    if not piece["discounted"]:
        raise ContractError(
            "WRONG_STATE", "Only a discounted bill can be rediscounted between institutions."
        )
    buyer = _counterparty(env, params, "buyer", piece["holder"])
    _require_fi(env, buyer, ("bank",), "rediscount buyer")
    _check_repo_term(env, package, params)
    return buyer


def _guard_cb_rediscount(env: Env, package: dict[str, Any], piece: dict[str, Any],
                         params: Params) -> str:
    _require_fi(env, env.sender.id, ("bank",), "central-bank rediscount applicant")
    if not piece["discounted"]:
        raise ContractError("WRONG_STATE", "Only a discounted bill can go to central rediscount.")
    central_bank = _counterparty(env, params, "central_bank", piece["holder"])
    _require_fi(env, central_bank, ("central_bank",), "rediscounting central bank")
    _check_repo_term(env, package, params)
    return central_bank


def _guard_repo(env: Env, package: dict[str, Any], piece: dict[str, Any],
                params: Params) -> str:
    _require_fi(env, env.sender.id, ("bank",), "repo cash taker")
    provider = _counterparty(env, params, "counterparty", piece["holder"])
    _require_fi(env, provider, ("bank",), "repo cash provider")
    _check_repo_term(env, package, params)
    return provider


def _sign_trade(env: Env, package: dict[str, Any], piece: dict[str, Any],
                request: dict[str, Any]) -> None:
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


def _guard_pledge(env: Env, package: dict[str, Any], piece: dict[str, Any],
                  params: Params) -> str:
    pledgee = _counterparty(env, params, "pledgee", piece["holder"])
    _require_disclosure(package)
    return pledgee


def _sign_pledge(env: Env, package: dict[str, Any], piece: dict[str, Any],
                 request: dict[str, Any]) -> None:
    if env.today >= package["maturity_date"]:
        raise ContractError("AFTER_MATURITY", "A bill cannot be pledged on or after maturity.")
    piece["flag"], piece["pledgee"] = "PLEDGED", request["counterparty"]
    _chain(env, package, piece, "PLEDGE", piece["holder"], request["counterparty"])


def _guard_release(env: Env, package: dict[str, Any], piece: dict[str, Any],
                   params: Params) -> str:
    if piece["repo"] is not None:
        raise ContractError("WRONG_STATE", "A repo pledge ends by redemption, not release.")
    return str(piece["holder"])


def _sign_release(env: Env, package: dict[str, Any], piece: dict[str, Any],
                  request: dict[str, Any]) -> None:
    pledgee = piece["pledgee"]
    piece["flag"], piece["pledgee"] = _rest_flag(piece), None
    _chain(env, package, piece, "RELEASE", pledgee, piece["holder"])


def _guard_redeem(env: Env, package: dict[str, Any], piece: dict[str, Any],
                  params: Params) -> str:
    repo = piece["repo"]
    if env.today < repo["end_date"]:
        raise ContractError(
            "WRONG_STATE", f"Redemption opens on the repo end date {day_to_iso(repo['end_date'])}."
        )
    return str(repo["cash_provider"])


def _sign_redeem(env: Env, package: dict[str, Any], piece: dict[str, Any],
                 request: dict[str, Any]) -> None:
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
    _chain(env, package, piece, kind, repo["cash_provider"], repo["cash_taker"],
           days=days, repo_interest_fen=interest)


# GUARANTEE (row 15) ---------------------------------------------------------------------------


def _read_guarantee(args: Args) -> Params:
    return {
        "guarantor": args.id_("guarantor"),
        "capacity": args.str_("capacity", choices=("DRAWER", "ACCEPTOR", "ENDORSER")),
    }


def _guarantee_initiator(env: Env, package: dict[str, Any], piece: dict[str, Any],
                         params: Params) -> None:
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


def _guard_guarantee(env: Env, package: dict[str, Any], piece: dict[str, Any],
                     params: Params) -> str:
    guarantor: str = params["guarantor"]
    require_party(env.store, guarantor, "guarantor")
    if guarantor in _debtors(package, piece):
        raise ContractError(
            "SELF_DEALING", f"{guarantor} is already liable on this bill and cannot guarantee it."
        )
    if package["acceptance_date"] is not None:
        _require_disclosure(package)
    return guarantor


def _sign_guarantee(env: Env, package: dict[str, Any], piece: dict[str, Any],
                    request: dict[str, Any]) -> None:
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
    _chain(env, package, piece, "GUARANTEE", request["initiator"], guarantor,
           capacity=request["params"]["capacity"])


# NT revoke (row 17) ---------------------------------------------------------------------------


def _guard_nt_revoke(env: Env, package: dict[str, Any], piece: dict[str, Any],
                     params: Params) -> str:
    setter = piece["nt_setter"]
    if setter is None or setter == piece["holder"]:
        raise ContractError("SELF_DEALING", "The mark was not set by another party.")
    return str(setter)


def _sign_nt_revoke(env: Env, package: dict[str, Any], piece: dict[str, Any],
                    request: dict[str, Any]) -> None:
    setter, seq = piece["nt_setter"], piece.get("nt_seq", 0)
    piece["nt"], piece["nt_setter"], piece["nt_seq"] = False, None, None
    piece["flag"] = "NEGOTIABLE"
    _chain(env, package, piece, "NT_REVOKE", piece["holder"], setter, ref_seq=seq)


# PRESENT for payment (row 18) -----------------------------------------------------------------


def _present_initiator(env: Env, package: dict[str, Any], piece: dict[str, Any],
                       params: Params) -> None:
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
        raise ContractError(
            "WINDOW_CLOSED", f"The presentment window closed on {day_to_iso(end)}."
        )
    return "OVERDUE"


def _guard_present(env: Env, package: dict[str, Any], piece: dict[str, Any],
                   params: Params) -> str:
    if piece["refusal"] is not None and piece["refusal"]["type"] != "EARLY":
        raise ContractError(
            "WRONG_STATE", "Payment of this piece was refused; pursue recourse instead."
        )
    params["presentment_type"] = _presentment_type(env, package)
    return str(package["acceptor"])


def _sign_present(env: Env, package: dict[str, Any], piece: dict[str, Any],
                  request: dict[str, Any]) -> None:
    piece["status"], piece["flag"] = "SETTLED", "ENDED"
    piece["paid_to"] = request["initiator"]
    _chain(env, package, piece, "PAYMENT", package["acceptor"], request["initiator"],
           presentment_type=request["params"]["presentment_type"])


# RECOURSE (rows 19-21) ------------------------------------------------------------------------


def _read_recourse(args: Args) -> Params:
    return {
        "recoursee": args.id_("recoursee"),
        "ground": args.str_("ground", optional=True, choices=_RECOURSE_GROUNDS) or "REFUSAL",
        "interest_fen": args.int_("interest_fen", optional=True, maximum=CLAIM_EXTRA_MAX) or 0,
        "costs_fen": args.int_("costs_fen", optional=True, maximum=CLAIM_EXTRA_MAX) or 0,
    }


def _guard_recourse(env: Env, package: dict[str, Any], piece: dict[str, Any],
                    params: Params) -> str:
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
                "RECOURSE_NOT_ALLOWED", "Recourse without a refusal is only possible before "
                "maturity (art. 61)."
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


def _sign_recourse(env: Env, package: dict[str, Any], piece: dict[str, Any],
                   request: dict[str, Any]) -> None:
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
    _chain(env, package, piece, "RECOURSE", holder, recoursee, claim_fen=claim,
           ground=params["ground"])


_TRANSFER_STATUSES = frozenset({"RECEIVED"})
_ALIVE = frozenset({"RECEIVED", "MATURED"})

ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        Action("ACCEPTANCE", "bill.request_acceptance", frozenset({"ISSUED"}),
               frozenset({"AWAITING_RECEIPT"}), "LOCKED", False, True, _no_params,
               _is_drawer, _guard_acceptance, _sign_acceptance),
        Action("RECEIPT", "bill.request_receipt", frozenset({"ACCEPTED"}),
               frozenset({"AWAITING_RECEIPT"}), "LOCKED", False, False, _no_params,
               _is_drawer, _guard_receipt, _sign_receipt),
        Action("ENDORSE", "bill.endorse", _ALIVE, frozenset({"NEGOTIABLE"}), "LOCKED", True,
               False, _read_endorse, _is_holder, _guard_endorse, _sign_endorse),
        Action("DISCOUNT", "bill.discount", _TRANSFER_STATUSES, frozenset({"NEGOTIABLE"}),
               "LOCKED", True, True,
               lambda args: _read_trade(args, "discounter", ("outright", "repo")),
               _is_holder, _guard_discount, _sign_trade),
        Action("REDISCOUNT", "bill.rediscount", _TRANSFER_STATUSES, frozenset({"NEGOTIABLE"}),
               "LOCKED", True, True, lambda args: _read_trade(args, "buyer", ("outright",)),
               _is_holder, _guard_rediscount, _sign_trade),
        Action("CB_REDISCOUNT", "bill.central_bank_rediscount", _TRANSFER_STATUSES,
               frozenset({"NEGOTIABLE"}), "LOCKED", True, True,
               lambda args: _read_trade(args, "central_bank", ("outright", "repo")),
               _is_holder, _guard_cb_rediscount, _sign_trade),
        Action("OUTRIGHT_REPO", "bill.outright_repo", _TRANSFER_STATUSES,
               frozenset({"NEGOTIABLE"}), "LOCKED", True, True,
               lambda args: _read_trade(args, "counterparty", ("repo",)),
               _is_holder, _guard_repo, _sign_trade),
        Action("PLEDGE_REPO", "bill.pledge_repo", _TRANSFER_STATUSES,
               frozenset({"NEGOTIABLE"}), "LOCKED", True, True,
               lambda args: _read_trade(args, "counterparty", ("repo",)),
               _is_holder, _guard_repo, _sign_trade),
        Action("PLEDGE", "bill.pledge", _TRANSFER_STATUSES, frozenset(_REST), "LOCKED", True,
               True, lambda args: {"pledgee": args.id_("pledgee")}, _is_holder, _guard_pledge,
               _sign_pledge),
        Action("RELEASE", "bill.release_pledge", _ALIVE, frozenset({"PLEDGED"}), "LOCKED",
               False, False, _no_params, _is_pledgee, _guard_release, _sign_release),
        Action("REDEEM", "bill.redeem", _ALIVE, frozenset({"PLEDGED", "AWAITING_REDEMPTION"}),
               "LOCKED", False, False, _no_params, _is_cash_taker, _guard_redeem,
               _sign_redeem),
        Action("GUARANTEE", "bill.guarantee", frozenset({"ISSUED", "ACCEPTED", "RECEIVED"}),
               frozenset({"AWAITING_RECEIPT", *_REST}), "LOCKED", False, True,
               _read_guarantee, _guarantee_initiator, _guard_guarantee, _sign_guarantee),
        Action("NT_REVOKE", "bill.revoke_nt", _ALIVE, frozenset({"NON_TRANSFERABLE"}),
               "LOCKED", False, False, _no_params, _is_holder, _guard_nt_revoke,
               _sign_nt_revoke),
        Action("PRESENT", "bill.present", _ALIVE,
               frozenset({*_REST, "PLEDGED", "AWAITING_REDEMPTION"}), "COLLECTION_IN_TRANSIT",
               True, False, _no_params, _present_initiator, _guard_present, _sign_present),
        Action("RECOURSE", "bill.recourse", _ALIVE, frozenset(_REST), "RECOURSE", True, False,
               _read_recourse, _is_holder, _guard_recourse, _sign_recourse),
    )
}


# --- generic request / answer machinery ------------------------------------------------------


def _check_open(piece: Mapping[str, Any]) -> None:
    if piece["frozen"] is not None:
        raise ContractError(
            "FROZEN", f"This piece is frozen under case {piece['frozen']['case_ref']}."
        )
    if piece["request"] is not None:
        raise ContractError(
            "PIECE_LOCKED", f"Request {piece['request']} is pending on this piece."
        )


def _check_status(env: Env, package: Mapping[str, Any], piece: Mapping[str, Any],
                  action: Action) -> None:
    status, flag = piece["status"], piece["flag"]
    what = action.name.replace("_", " ").capitalize()
    if status in ("TERMINATED", "SETTLED"):
        raise ContractError("WRONG_STATE", f"This piece is {status.lower()}.")
    if flag == "ENDED":
        raise ContractError(
            "WINDOW_CLOSED",
            f"The rights on this bill expired after "
            f"{day_to_iso(_rights_expiry(package, _params(env)))}.",
        )
    if status not in action.statuses:
        if status == "MATURED" and action.before_maturity:
            raise ContractError(
                "AFTER_MATURITY",
                f"The bill matured on {day_to_iso(package['maturity_date'])}; "
                f"{what.lower()} is only possible before maturity.",
            )
        raise ContractError(
            "WRONG_STATE",
            f"{what} is not possible while the piece is {status} ({STATUS_CODES[status]}).",
        )


def _check_flag(piece: Mapping[str, Any], action: Action) -> None:
    flag = piece["flag"]
    if flag in action.flags:
        return
    if flag == "NON_TRANSFERABLE":
        raise ContractError(
            "NON_TRANSFERABLE",
            f"This piece is marked not transferable by {piece['nt_setter']}.",
        )
    if flag == "PLEDGED":
        raise ContractError("PLEDGED", f"This piece is pledged to {piece['pledgee']}.")
    what = action.name.replace("_", " ").capitalize()
    raise ContractError(
        "WRONG_STATE", f"{what} is not possible while the piece is {flag} ({FLAG_CODES[flag]})."
    )


def _take(env: Env, package: dict[str, Any], piece: dict[str, Any],
          amount: int | None) -> dict[str, Any]:
    """The piece of ``amount`` fen to act on; splits a splittable piece (B.9)."""
    held = piece_amount(package, piece)
    if amount is None or amount == held:
        return piece
    if amount <= 0 or amount > held:
        raise ContractError(
            "SPLIT_INVALID", f"The amount must be between 1 and the {held} fen held."
        )
    if piece["start"] == 0:
        raise ContractError(
            "PARTIAL_ENDORSEMENT",
            f"This bill is not splittable: the whole {held} fen must move together.",
        )
    start, end = piece["start"], piece["end"]
    retained = {**piece, "start": start + amount - 1}
    moved = {**piece, "end": start + amount - 1}
    _save_piece(env.store, package["package_no"], retained)
    env.store.emit(
        "bill.split",
        {
            "package_no": package["package_no"],
            "from_range": f"{start}-{end}",
            "moved_range": piece_range(moved),
            "retained_range": piece_range(retained),
        },
        _scope(package["package_no"]),
    )
    return moved


def _request_ttl_end(env: Env, package: Mapping[str, Any], action: Action) -> int:
    params = _params(env)
    if action.name == "PRESENT":
        return max(env.today, int(package["maturity_date"])) + params.payment_answer_days
    return _cal(env).add_business_days(env.today, params.request_ttl_business_days)


def _request_handler(action: Action) -> Callable[[Env, Args], None]:
    def handler(env: Env, args: Args) -> None:
        package_no, range_text = _piece_args(args)
        amount = (
            args.int_("amount_fen", optional=True, minimum=INT_MIN) if action.partial else None
        )
        params = action.read(args)
        args.done()
        package, piece = _locate(env, package_no, range_text)
        _check_open(piece)
        _check_status(env, package, piece, action)
        action.initiator(env, package, piece, params)
        _check_flag(piece, action)
        counterparty = action.guard(env, package, piece, params)
        piece = _take(env, package, piece, amount)
        request_id = env.ctx.tx_id.hex()
        request = {
            "id": request_id,
            "action": action.name,
            "package_no": package_no,
            "start": piece["start"],
            "end": piece["end"],
            "initiator": env.sender.id,
            "counterparty": counterparty,
            "params": params,
            "status": "PENDING",
            "prev_status": piece["status"],
            "prev_flag": piece["flag"],
            "created_day": env.today,
            "expires_day": _request_ttl_end(env, package, action),
            "height": env.ctx.height,
            "closed_day": None,
            "answer": None,
        }
        if env.store.get(request_key(request_id)) is not None:
            raise AssertionError("transaction ids are unique; a request id cannot repeat")
        piece["request"], piece["flag"] = request_id, action.lock_flag
        env.store.put(request_key(request_id), request)
        _save_piece(env.store, package_no, piece)
        _involve(env.store, counterparty, package_no, action.name.lower())
        env.store.emit(
            "bill.requested",
            _attrs(package, piece, request_id=request_id, action=action.name,
                   initiator=env.sender.id, counterparty=counterparty,
                   expires=day_to_iso(request["expires_day"])),
            _scope(package_no),
        )

    handler.__name__ = f"op_{action.name.lower()}"
    return handler


def _answer_target(env: Env, args: Args) -> tuple[dict[str, Any], dict[str, Any],
                                                    dict[str, Any]]:
    """Load a request to answer, revoke or clear, with its package and (normalised) piece."""
    request = _load_request(env.store, args.str_("request_id", max_len=128))
    package = _load_package(env.store, request["package_no"])
    record = env.store.get_obj(_piece_key(request["package_no"], request["start"]))
    assert record is not None, "a request always points at an existing piece"
    piece = dict(record)
    if request["status"] in ("SIGNED", "REJECTED"):
        raise ContractError(
            "DUPLICATE_ANSWER", f"Request {request['id']} was already answered "
            f"({request['status'].lower()})."
        )
    if request["status"] != "PENDING":
        raise ContractError(
            "REQUEST_NOT_PENDING", f"Request {request['id']} is {request['status'].lower()}."
        )
    if env.today > request["expires_day"]:
        raise ContractError(
            "REQUEST_NOT_PENDING",
            f"Request {request['id']} expired after {day_to_iso(request['expires_day'])}.",
        )
    piece = _normalise(env, package, piece)
    assert piece["request"] == request["id"]
    return request, package, piece


def _finish(env: Env, package: dict[str, Any], piece: dict[str, Any],
            request: dict[str, Any], status: str, kind: str, **extra: Any) -> None:
    request["status"] = status
    request["closed_day"] = env.today
    request["answer"] = {"by": env.sender.id, "day": env.today, "height": env.ctx.height, **extra}
    env.store.put(request_key(request["id"]), request)
    _save_piece(env.store, package["package_no"], piece)
    env.store.emit(
        kind,
        _attrs(package, piece, request_id=request["id"], action=request["action"],
               initiator=request["initiator"], counterparty=request["counterparty"], **extra),
        _scope(package["package_no"]),
    )


def op_sign(env: Env, args: Args) -> None:
    request, package, piece = _answer_target(env, args)
    args.done()
    if env.sender.id != request["counterparty"]:
        raise ContractError(
            "SIGNATURE_INVALID", f"Only {request['counterparty']} may answer this request."
        )
    if piece["frozen"] is not None:
        raise ContractError("FROZEN", "This piece is frozen; it cannot be signed for.")
    action = ACTIONS[request["action"]]
    piece["request"] = None
    action.on_sign(env, package, piece, request)
    if piece.get("holder") is not None:
        _involve(env.store, piece["holder"], package["package_no"], "holder")
    _finish(env, package, piece, request, "SIGNED", f"bill.{action.name.lower()}_signed")


def op_reject(env: Env, args: Args) -> None:
    request, package, piece = _answer_target(env, args)
    reason = args.str_("reason", optional=True) or "refused"
    args.done()
    if env.sender.id != request["counterparty"]:
        raise ContractError(
            "SIGNATURE_INVALID", f"Only {request['counterparty']} may answer this request."
        )
    if piece["frozen"] is not None:
        raise ContractError("FROZEN", "This piece is frozen; it cannot be answered.")
    _restore(env, package, piece, request, "REJECTED")
    if request["action"] == "PRESENT":
        _record_refusal(env, package, piece, request, reason, False)
    _finish(env, package, piece, request, "REJECTED", "bill.request_rejected", reason=reason)


def op_revoke(env: Env, args: Args) -> None:
    request, package, piece = _answer_target(env, args)
    args.done()
    if env.sender.id != request["initiator"]:
        raise ContractError(
            "SIGNATURE_INVALID", f"Only {request['initiator']}, who asked, may revoke it."
        )
    if piece["frozen"] is not None:
        raise ContractError("FROZEN", "This piece is frozen; the request cannot be revoked.")
    _restore(env, package, piece, request, "REVOKED")
    _finish(env, package, piece, request, "REVOKED", "bill.request_revoked")


def op_clear_request(env: Env, args: Args) -> None:
    request = _load_request(env.store, args.str_("request_id", max_len=128))
    args.done()
    if not env.sender.has("consortium_admin") and env.sender.id not in (
        request["initiator"], request["counterparty"]
    ):
        raise ContractError("FORBIDDEN", "Only the operator or a party may clear a request.")
    if request["status"] != "PENDING":
        raise ContractError(
            "REQUEST_NOT_PENDING", f"Request {request['id']} is {request['status'].lower()}."
        )
    if env.today <= request["expires_day"]:
        raise ContractError(
            "WRONG_STATE",
            f"Request {request['id']} runs until {day_to_iso(request['expires_day'])}.",
        )
    package = _load_package(env.store, request["package_no"])
    record = env.store.get_obj(_piece_key(request["package_no"], request["start"]))
    assert record is not None
    _normalise(env, package, dict(record))  # clears (or auto-refuses) and saves


# --- unilateral operations -------------------------------------------------------------------


def op_issue(env: Env, args: Args) -> None:
    package_no = args.str_("package_no", max_len=30)
    kind = args.str_("kind", choices=BILL_KINDS)
    amount_text = args.str_("amount", max_len=32)
    currency = args.str_("currency", max_len=8)
    maturity = args.date_("maturity_date")
    acceptor = args.id_("acceptor")
    payee = args.id_("payee")
    splittable = args.bool_("splittable")
    nt = args.bool_("non_transferable")
    args.done()
    if not env.sender.has("enterprise"):
        raise ContractError("FORBIDDEN", "Only an enterprise participant may draw a bill.")
    require_party(env.store, env.sender.id, "drawer")
    require("bill_no", package_no, field="package_no")
    digits = BILL_KIND_DIGITS_COMMERCIAL if kind == "COMMERCIAL" else BILL_KIND_DIGITS_BANK
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
    require("currency", currency, field="currency")
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
    needed = "enterprise" if kind == "COMMERCIAL" else "bank"
    if not accepting.has(needed):
        raise ContractError(
            "COUNTERPARTY_TYPE", f"The acceptor of a {kind.lower()} acceptance bill must be a "
            f"{needed} participant."
        )
    require_party(env.store, payee, "payee")
    if env.store.get(package_key(package_no)) is not None:
        raise ContractError("DUPLICATE_BILL", f"Bill package {package_no} already exists.")
    package = {
        "package_no": package_no,
        "kind": kind,
        "currency": currency,
        "amount_fen": amount,
        "splittable": splittable,
        "drawer": env.sender.id,
        "acceptor": acceptor,
        "payee": payee,
        "issue_date": env.today,
        "maturity_date": maturity,
        "acceptance_date": None,
        "drawer_nt": nt,
        "disclosed": False,
        "height": env.ctx.height,
    }
    piece: dict[str, Any] = {
        "start": 1 if splittable else 0,
        "end": amount if splittable else 0,
        "status": "ISSUED",
        "flag": "AWAITING_RECEIPT",
        "holder": None,
        "nt": nt,
        "nt_setter": env.sender.id if nt else None,
        "nt_seq": 0 if nt else None,
        "pledgee": None,
        "repo": None,
        "frozen": None,
        "request": None,
        "discounted": False,
        "refusal": None,
        "recourse_paid_day": None,
        "rights_expired": False,
        "paid_to": None,
        "guarantees": [],
        "chain": [],
    }
    env.store.put(package_key(package_no), package)
    _chain(env, package, piece, "ISSUE", env.sender.id, payee, non_transferable=nt)
    _save_piece(env.store, package_no, piece)
    for pid, capacity in ((env.sender.id, "drawer"), (acceptor, "acceptor"), (payee, "payee")):
        _involve(env.store, pid, package_no, capacity)
    env.store.emit(
        "bill.issued",
        _attrs(package, piece, kind=kind, drawer=env.sender.id, acceptor=acceptor, payee=payee,
               maturity_date=day_to_iso(maturity), non_transferable=nt),
        _scope(package_no),
    )


def _unused_piece(env: Env, args: Args) -> tuple[dict[str, Any], dict[str, Any]]:
    package_no, range_text = _piece_args(args)
    args.done()
    package, piece = _locate(env, package_no, range_text)
    _check_open(piece)
    if piece["status"] not in ("ISSUED", "ACCEPTED") or piece["flag"] != "AWAITING_RECEIPT":
        raise ContractError(
            "WRONG_STATE", "Only a bill not yet received by the payee can be withdrawn."
        )
    return package, piece


def op_withdraw(env: Env, args: Args) -> None:
    package, piece = _unused_piece(env, args)
    _is_drawer(env, package, piece, {})
    piece["status"], piece["flag"] = "TERMINATED", "ENDED"
    _chain(env, package, piece, "WITHDRAW", env.sender.id, None)
    _save_piece(env.store, package["package_no"], piece)
    env.store.emit("bill.withdrawn", _attrs(package, piece), _scope(package["package_no"]))


def op_cleanup(env: Env, args: Args) -> None:
    package, piece = _unused_piece(env, args)
    if not env.sender.has("consortium_admin") and env.sender.id != package["acceptor"]:
        raise ContractError("FORBIDDEN", "Only the operator or the acceptor may clean up a bill.")
    piece["status"], piece["flag"] = "TERMINATED", "ENDED"
    _chain(env, package, piece, "CLEANUP", env.sender.id, None)
    _save_piece(env.store, package["package_no"], piece)
    env.store.emit("bill.cleaned_up", _attrs(package, piece), _scope(package["package_no"]))


def op_disclose(env: Env, args: Args) -> None:
    package_no = args.str_("package_no", max_len=30)
    args.done()
    package = _load_package(env.store, package_no)
    if env.sender.id != package["acceptor"]:
        raise ContractError("FORBIDDEN", "Only the acceptor discloses its acceptance.")
    if package["kind"] != "COMMERCIAL":
        raise ContractError("WRONG_STATE", "Only commercial acceptances are disclosed.")
    if package["acceptance_date"] is None or package["disclosed"]:
        raise ContractError("WRONG_STATE", "The bill is not accepted, or already disclosed.")
    package["disclosed"] = True
    env.store.put(package_key(package_no), package)
    env.store.emit("bill.disclosed", {"package_no": package_no}, _scope(package_no))


def _freeze_target(env: Env, args: Args) -> tuple[dict[str, Any], dict[str, Any], str]:
    package_no, range_text = _piece_args(args)
    case_ref = args.str_("case_ref", max_len=64)
    args.done()
    if not env.sender.has("regulator") and not env.sender.has("consortium_admin"):
        raise ContractError("FORBIDDEN", "Only an authority (regulator or operator) may freeze.")
    package, piece = _locate(env, package_no, range_text)
    return package, piece, case_ref


def op_freeze(env: Env, args: Args) -> None:
    package, piece, case_ref = _freeze_target(env, args)
    if piece["frozen"] is not None:
        raise ContractError("FROZEN", f"Already frozen under case {piece['frozen']['case_ref']}.")
    if piece["status"] in ("TERMINATED", "SETTLED"):
        raise ContractError("WRONG_STATE", "A terminated or settled piece cannot be frozen.")
    piece["frozen"] = {"case_ref": case_ref, "by": env.sender.id, "day": env.today}
    _save_piece(env.store, package["package_no"], piece)
    env.store.emit("bill.frozen", _attrs(package, piece, case_ref=case_ref),
                   _scope(package["package_no"]))


def op_unfreeze(env: Env, args: Args) -> None:
    package, piece, case_ref = _freeze_target(env, args)
    if piece["frozen"] is None:
        raise ContractError("WRONG_STATE", "This piece is not frozen.")
    if piece["frozen"]["case_ref"] != case_ref:
        raise bad("case_ref", f"does not match the freezing case {piece['frozen']['case_ref']}")
    piece["frozen"] = None
    _save_piece(env.store, package["package_no"], piece)
    env.store.emit("bill.unfrozen", _attrs(package, piece, case_ref=case_ref),
                   _scope(package["package_no"]))


def op_sweep(env: Env, args: Args) -> None:
    package_no = args.str_("package_no", max_len=30)
    args.done()
    package = _load_package(env.store, package_no)
    if not env.sender.has("consortium_admin") and env.store.get(
        _involve_key(env.sender.id, package_no)
    ) is None:
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
    "bill.withdraw": op_withdraw,
    "bill.cleanup": op_cleanup,
    "bill.disclose": op_disclose,
    "bill.freeze": op_freeze,
    "bill.unfreeze": op_unfreeze,
    "bill.sweep": op_sweep,
}
