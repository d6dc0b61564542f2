"""Bill pieces in state: codes, keys, loading and the time-driven transitions (B.4, B.5 rows
4, 23, 24, B.7).

Theory of operation
-------------------
A package record holds the bill-level attributes; each piece record holds its (status, flag),
holder, encumbrances, guarantees and the chain of completed actions (B.8: every transfer appends
``(seq, type, from, to, day, height, timestamp, tx id, range, amount)``). ``_normalise`` applies
every transition the passage of time has made due -- maturity roll at the start of the maturity
day, clearing of requests past their time-out (a presentment past its answer deadline becomes a
refusal), rights expiry after maturity + ``rights_expiry_months`` -- using only the agreed block
date and the genesis calendar, so that every replica computes the same state whenever a piece is
loaded. Writes go to the transaction's store and are kept only if the operation succeeds.

State keys::

    bill/<package no>                       package record
    bill/<package no>/p/<start:012d>        piece record (zero-padded: scans return range order)
    breq/<request id hex>                   request record (request id = requesting tx id)
    idx/bp/<participant>/<package no>       sorted list of the participant's capacities
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .args import Args, bad
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
    require,
    sub_range_bounds,
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


def _chain(
    env: Env,
    package: Mapping[str, Any],
    piece: dict[str, Any],
    kind: str,
    source: str | None,
    target: str | None,
    **extra: Any,
) -> dict[str, Any]:
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


def _restore(
    env: Env,
    package: Mapping[str, Any],
    piece: dict[str, Any],
    request: dict[str, Any],
    status: str,
) -> None:
    """Close ``request`` with ``status`` and give the piece back its exact previous state."""
    request["status"] = status
    request["closed_day"] = env.today
    piece["status"] = request["prev_status"]
    piece["flag"] = request["prev_flag"]
    piece["request"] = None
    if piece["status"] == "RECEIVED" and env.today >= package["maturity_date"]:
        piece["status"] = "MATURED"


def _record_refusal(
    env: Env,
    package: Mapping[str, Any],
    piece: dict[str, Any],
    request: Mapping[str, Any],
    reason: str,
    automatic: bool,
) -> None:
    refusal_type = request["params"]["presentment_type"]
    piece["refusal"] = {"type": refusal_type, "day": env.today, "reason": reason}
    _chain(
        env,
        package,
        piece,
        "REFUSAL",
        package["acceptor"],
        request["initiator"],
        refusal_type=refusal_type,
        reason=reason,
        automatic=automatic,
    )
    env.store.emit(
        "bill.payment_refused",
        _attrs(
            package,
            piece,
            request_id=request["id"],
            refusal_type=refusal_type,
            reason=reason,
            automatic=automatic,
        ),
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


def _locate(
    env: Env, package_no: str, range_text: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
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
