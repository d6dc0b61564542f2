"""Read side for the API and CLI, with look-through supervision (docs/domain.md C.4).

Theory of operation
-------------------
Queries are pure reads over a ``StateView``; they never write. ``viewer`` is the participant on
whose behalf the query runs (authenticated by the node); ``None`` is an anonymous reader who sees
only public reference data (participants directory, governance proposals, instruments, calendar,
parameters).

Visibility rules:

* A regulator (active participant with the ``regulator`` role) sees everything: any bill's full
  chain with heights and timestamps, any participant's positions and exposures, every history.
* A participant sees a bill package once it is involved in it (drawer, acceptor, payee, holder,
  counterparty of a request ...), its own positions and holdings, the holders of instruments it
  registered or issued (issuer matched by LEI), and its own row otherwise.

Results are plain msgpack-native structures with ISO dates (``YYYY-MM-DD``) instead of day
numbers and hex instead of bytes, ordered deterministically (state keys are scanned in order).
Failures raise ``QueryError(code, message)`` with codes BAD_ARGUMENT, UNKNOWN_QUERY, NOT_FOUND,
FORBIDDEN, NESTING_EXCEEDED (look-through over a state the contracts could not have written).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import lookthrough, membership
from .args import Args, day_to_iso
from .asset_requests import AssetRequest, asset_request_key, party_index_prefix
from .assets import Holding, Instrument, holding_key, instrument_key
from .bill_records import Package, Piece, Request
from .bills import (
    load_calendar,
    load_parameters,
    package_key,
    piece_amount,
    piece_range,
    presentment_window_end,
    request_key,
)
from .calendar import add_months
from .core import Participant, StateView, Store, business_day
from .errors import ContractError, QueryError
from .governance import OPEN_PREFIX, PROPOSAL_ID, PROPOSAL_PREFIX, Proposal, load_proposal
from .identifiers import IDENTIFIER_CODES, KINDS, validate
from .identity import (
    KeyRecord,
    ParticipantRecord,
    active_admins,
    load_admin_quorum,
    load_participant,
    load_participant_record,
)
from .recourse import liable_parties
from .stored import StoredFormError, StoredMap, stored_map, text, text_list
from .versions import AsOfView
from .vocabulary import BillFlag, BillStatus, ProposalStatus, values

__all__ = ["QUERIES", "run_query"]

_DATE_FIELDS = frozenset(
    {
        "acceptance_date",
        "closed_day",
        "created_day",
        "day",
        "end_date",
        "expires_day",
        "issue_date",
        "maturity_date",
        "recourse_paid_day",
        "start_day",
        "value_date",
    }
)


def _render(value: Any, key: str | None = None) -> Any:
    """Day numbers -> ISO dates (by field name), bytes -> hex, recursively."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {k: _render(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_render(item) for item in value]
    if key in _DATE_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        return day_to_iso(value)
    return value


class _Q:
    """One query's context: the store, the viewer and its arguments."""

    def __init__(
        self,
        state: StateView,
        args: Mapping[str, Any],
        viewer: str | None,
        authority: StateView | None = None,
    ) -> None:
        self.state = state
        self.store = Store(state)
        try:
            self.args = Args(args)
        except ContractError as exc:
            raise QueryError("BAD_ARGUMENT", exc.message) from None
        self.viewer: Participant | None = None
        if viewer is not None:
            # The viewer's record comes from ``authority`` (the current state when the data is
            # of a past height): what a viewer may see is decided by its role now.
            roles = self.store if authority is None else Store(authority)
            party = load_participant(roles, viewer)
            if party is not None and party.active:
                self.viewer = party

    @property
    def regulator(self) -> bool:
        return self.viewer is not None and self.viewer.has("regulator")

    def is_viewer(self, pid: str) -> bool:
        return self.viewer is not None and self.viewer.id == pid

    def require_self_or_regulator(self, pid: str) -> None:
        if not (self.regulator or self.is_viewer(pid)):
            raise QueryError("FORBIDDEN", f"Only {pid} itself or a regulator may see this.")

    def involved(self, package_no: str) -> list[str] | None:
        if self.viewer is None:
            return None
        roles = self.store.get_obj(f"idx/bp/{self.viewer.id}/{package_no}".encode())
        return None if roles is None else text_list(roles, "bill party index")

    def require_bill_access(self, package_no: str) -> None:
        if not self.regulator and self.involved(package_no) is None:
            raise QueryError("FORBIDDEN", f"Bill {package_no} does not concern the viewer.")


def _read(q: _Q, reader: Callable[[Args], Any]) -> Any:
    try:
        value = reader(q.args)
        q.args.done()
    except ContractError as exc:
        code = exc.code if exc.code in IDENTIFIER_CODES else "BAD_ARGUMENT"
        raise QueryError(code, exc.message) from None
    return value


# --- identity ------------------------------------------------------------------------------


def _participant_view(record: ParticipantRecord) -> dict[str, Any]:
    view: dict[str, Any] = _render(record.to_stored())
    return view


def _key_view(q: _Q, key_id: str) -> dict[str, Any]:
    stored = q.store.get_obj(f"id/k/{key_id}".encode())
    view: dict[str, Any] = (
        {} if stored is None else _render(KeyRecord.from_stored(stored).to_stored())
    )
    return view | {"key_id": key_id}


def q_participant(q: _Q) -> Any:
    pid = _read(q, lambda a: a.id_("id"))
    record = load_participant_record(q.store, pid)
    if record is None:
        raise QueryError("NOT_FOUND", f"Participant {pid} is not registered.")
    view = _participant_view(record)
    view["key_records"] = [_key_view(q, kid) for kid in record.keys]
    return view


def q_participants(q: _Q) -> Any:
    role = _read(q, lambda a: a.str_("role", optional=True))
    records = (ParticipantRecord.from_stored(value) for _, value in q.store.scan_objs(b"id/p/"))
    return [_participant_view(record) for record in records if role is None or role in record.roles]


# --- governance ----------------------------------------------------------------------------
# Proposals are public to every reader, like the participants directory they change: any bank
# can check which changes to which participant are pending and who approved them.

PROPOSAL_STATUSES = values(ProposalStatus)


def q_governance(q: _Q) -> Any:
    """The admin quorum and the admins whose approvals count now."""
    _read(q, lambda a: None)
    return {"admin_quorum": load_admin_quorum(q.store), "active_admins": active_admins(q.store)}


def q_membership(q: _Q) -> Any:
    """The validator sets by epoch (contracts/membership.py): each with the height it orders
    from; ``latest`` is the newest, in force or scheduled. Readable by anyone, like the
    participant directory: every party checks certificates against these sets."""
    _read(q, lambda a: None)
    epochs = []
    for _, raw in q.store.scan_objs(membership.EPOCH_PREFIX):
        epoch = membership.epoch_from_stored(raw)
        epochs.append(
            {
                "epoch": epoch.number,
                "from_height": epoch.from_height,
                "validators": [
                    {
                        "id": v.id,
                        "public_key": v.public_key.hex(),
                        "peer_address": v.peer_address,
                        "api_address": v.api_address,
                    }
                    for v in epoch.validators
                ],
            }
        )
    if not epochs:
        raise QueryError("NOT_FOUND", "This chain's genesis names no validators to change.")
    return {"epochs": epochs, "latest": epochs[-1]}


def q_governance_proposal(q: _Q) -> Any:
    proposal_id = _read(q, lambda a: a.str_("id", pattern=PROPOSAL_ID, max_len=64))
    record = load_proposal(q.store, proposal_id)
    if record is None:
        raise QueryError("NOT_FOUND", f"There is no proposal {proposal_id}.")
    return _render(record.to_stored())


def q_governance_proposals(q: _Q) -> Any:
    """Proposals with one status (default: open), oldest first. Open proposals whose expiry has
    passed stay "open" until the next governance transaction closes them; compare
    ``expires_at_ms`` with the current time."""
    status = _read(q, lambda a: a.str_("status", optional=True, choices=PROPOSAL_STATUSES))
    status = status or "open"
    if status == "open":
        ids = [key[len(OPEN_PREFIX) :].decode() for key, _ in q.store.scan(OPEN_PREFIX)]
        records = [load_proposal(q.store, pid) for pid in ids]
        proposals = [record for record in records if record is not None]
    else:
        every = (Proposal.from_stored(r) for _, r in q.store.scan_objs(PROPOSAL_PREFIX))
        proposals = [record for record in every if record.status == status]
    proposals.sort(key=lambda r: (r.created_height, r.id))
    return [_render(record.to_stored()) for record in proposals]


# --- assets --------------------------------------------------------------------------------


def _instrument(q: _Q, isin: str) -> Instrument:
    record = q.store.get_obj(instrument_key(isin))
    if record is None:
        raise QueryError("NOT_FOUND", f"No instrument with ISIN {isin}.")
    return Instrument.from_stored(record)


def _sees_all_holders(q: _Q, instrument: Instrument) -> bool:
    if q.viewer is None:
        return False
    return (
        q.regulator
        or instrument.registrar == q.viewer.id
        or (q.viewer.lei is not None and q.viewer.lei == instrument.issuer_lei)
    )


def q_instrument(q: _Q) -> Any:
    isin = _read(q, lambda a: a.code_("isin", "isin"))
    return _render(_instrument(q, isin).to_stored())


def q_instruments(q: _Q) -> Any:
    status = _read(q, lambda a: a.str_("status", optional=True))
    instruments = (Instrument.from_stored(r) for _, r in q.store.scan_objs(b"asset/i/"))
    return [
        _render(instrument.to_stored())
        for instrument in instruments
        if status is None or instrument.status == status
    ]


def _holding_view(holding: Holding) -> dict[str, Any]:
    view: dict[str, Any] = _render(holding.to_stored())
    view["quantity"] = holding.total
    view.setdefault("reserved", 0)  # stored only while a request is pending
    return view


def _load_holding(q: _Q, isin: str, holder: str) -> Holding:
    record = q.store.get_obj(holding_key(isin, holder))
    assert record is not None, "the holder index names only existing holdings"
    return Holding.from_stored(record)


def q_holdings(q: _Q) -> Any:
    holder = _read(q, lambda a: a.id_("holder"))
    result = []
    for _, stored in q.store.scan_objs(f"asset/hh/{holder}/".encode()):
        isin = text(stored, "holder index")
        if not (q.regulator or q.is_viewer(holder)):
            instrument = _instrument(q, isin)
            if not _sees_all_holders(q, instrument):
                continue
        result.append(_holding_view(_load_holding(q, isin, holder)))
    if not result and not (q.regulator or q.is_viewer(holder)):
        raise QueryError("FORBIDDEN", f"Only {holder} itself or a regulator may see this.")
    return result


def q_holders(q: _Q) -> Any:
    isin = _read(q, lambda a: a.code_("isin", "isin"))
    instrument = _instrument(q, isin)
    all_rows = _sees_all_holders(q, instrument)
    holdings = (Holding.from_stored(r) for _, r in q.store.scan_objs(f"asset/h/{isin}/".encode()))
    rows = [
        _holding_view(holding) for holding in holdings if all_rows or q.is_viewer(holding.holder)
    ]
    return {
        "isin": isin,
        "outstanding_minor": instrument.outstanding_minor,
        "complete": all_rows,
        "holders": rows,
    }


def _mentions(entry: Mapping[str, Any], pid: str) -> bool:
    attrs = entry["attrs"]
    if entry["sender"] == pid:
        return True
    for name in ("from", "to", "holder", "pledgor", "pledgee", "initiator", "counterparty"):
        if attrs.get(name) == pid:
            return True
    return any(pid == row[0] for row in attrs.get("allotments", []))


def _history(q: _Q, scope: str, since: int) -> list[dict[str, Any]]:
    entries = (
        stored_map(e, "history entry") for _, e in q.store.scan_objs(f"hist/{scope}/".encode())
    )
    return [_render(entry) for entry in entries if _height(entry) >= since]


def _height(entry: StoredMap) -> int:
    height = entry.get("height")
    if isinstance(height, bool) or not isinstance(height, int):
        raise StoredFormError("history entry.height must be an integer")
    return height


def q_asset_history(q: _Q) -> Any:
    isin, since = _read(
        q, lambda a: (a.code_("isin", "isin"), a.int_("from_height", optional=True) or 0)
    )
    instrument = _instrument(q, isin)
    entries = _history(q, f"a/{isin}", since)
    if _sees_all_holders(q, instrument):
        return entries
    if q.viewer is None:
        raise QueryError("FORBIDDEN", "Sign in to see the history of a holding.")
    viewer_id = q.viewer.id
    return [entry for entry in entries if _mentions(entry, viewer_id)]


def q_asset_request(q: _Q) -> Any:
    request_id = _read(q, lambda a: a.str_("request_id", max_len=128))
    record = q.store.get_obj(asset_request_key(request_id))
    if record is None:
        raise QueryError("NOT_FOUND", f"No asset request {request_id}.")
    request = AssetRequest.from_stored(record)
    if not (
        q.regulator
        or any(q.is_viewer(pid) for pid in request.parties)
        or _sees_all_holders(q, _instrument(q, request.isin))
    ):
        raise QueryError("FORBIDDEN", "Only a party to the request or a regulator may see it.")
    return _render(request.to_stored())


def q_asset_requests(q: _Q) -> Any:
    """Pending asset requests the participant has made, must answer or holds the quantity of."""
    pid = _read(q, lambda a: a.id_("participant"))
    q.require_self_or_regulator(pid)
    result = []
    for key, _ in q.store.scan(party_index_prefix(pid)):
        record = q.store.get_obj(asset_request_key(key[len(party_index_prefix(pid)) :].decode()))
        assert record is not None, "the request index names only existing requests"
        result.append(_render(AssetRequest.from_stored(record).to_stored()))
    return result


# --- bills ---------------------------------------------------------------------------------


def _package(q: _Q, package_no: str) -> Package:
    record = q.store.get_obj(package_key(package_no))
    if record is None:
        raise QueryError("NOT_FOUND", f"No bill package {package_no}.")
    return Package.from_stored(record)


def _pieces(q: _Q, package_no: str) -> list[Piece]:
    prefix = f"bill/{package_no}/p/".encode()
    return [Piece.from_stored(record) for _, record in q.store.scan_objs(prefix)]


def _request(q: _Q, request_id: str) -> Request | None:
    record = q.store.get_obj(request_key(request_id))
    return None if record is None else Request.from_stored(record)


def _piece_view(package: Package, piece: Piece, with_chain: bool) -> dict[str, Any]:
    view = {k: v for k, v in piece.to_stored().items() if with_chain or k != "chain"}
    view["range"] = piece_range(piece)
    view["amount_fen"] = piece_amount(package, piece)
    view["status_code"] = piece.status.code
    view["flag_code"] = piece.flag.code
    rendered: dict[str, Any] = _render(view)
    return rendered


def _bill(q: _Q, package_no: str, with_chain: bool) -> dict[str, Any]:
    package = _package(q, package_no)
    q.require_bill_access(package_no)
    view: dict[str, Any] = _render(package.to_stored())
    view["pieces"] = [_piece_view(package, p, with_chain) for p in _pieces(q, package_no)]
    view["viewer_capacities"] = q.involved(package_no) or []
    return view


def q_bill(q: _Q) -> Any:
    package_no = _read(q, lambda a: a.code_("package_no", "bill_no"))
    return _bill(q, package_no, with_chain=False)


def q_bill_chain(q: _Q) -> Any:
    package_no = _read(q, lambda a: a.code_("package_no", "bill_no"))
    view = _bill(q, package_no, with_chain=True)
    view["history"] = _history(q, f"b/{package_no}", 0)
    return view


def q_bill_history(q: _Q) -> Any:
    package_no, since = _read(
        q, lambda a: (a.code_("package_no", "bill_no"), a.int_("from_height", optional=True) or 0)
    )
    _package(q, package_no)
    q.require_bill_access(package_no)
    return _history(q, f"b/{package_no}", since)


def q_bills(q: _Q) -> Any:
    pid = _read(q, lambda a: a.id_("participant"))
    q.require_self_or_regulator(pid)
    prefix = f"idx/bp/{pid}/".encode()
    return [
        {
            "package_no": key[len(prefix) :].decode(),
            "capacities": text_list(capacities, "bill party index"),
        }
        for key, capacities in q.store.scan_objs(prefix)
    ]


def q_request(q: _Q) -> Any:
    request_id = _read(q, lambda a: a.str_("request_id", max_len=128))
    request = _request(q, request_id)
    if request is None:
        raise QueryError("NOT_FOUND", f"No request {request_id}.")
    q.require_bill_access(request.package_no)
    return _render(request.to_stored())


def q_pending_requests(q: _Q) -> Any:
    """Pending requests that the participant has made or must answer."""
    pid = _read(q, lambda a: a.id_("participant"))
    q.require_self_or_regulator(pid)
    result = []
    prefix = f"idx/bp/{pid}/".encode()
    for key, _ in q.store.scan(prefix):
        package_no = key[len(prefix) :].decode()
        for piece in _pieces(q, package_no):
            if piece.request is None:
                continue
            request = _request(q, piece.request)
            assert request is not None, "a piece's pending request exists"
            if pid in (request.initiator, request.counterparty):
                result.append(_render(request.to_stored()))
    return result


def _positions(q: _Q, pid: str) -> dict[str, Any]:
    held: list[dict[str, Any]] = []
    accepted: list[dict[str, Any]] = []
    guaranteed: list[dict[str, Any]] = []
    pledged_to: list[dict[str, Any]] = []
    drawn: list[dict[str, Any]] = []
    totals = {
        "held_fen": 0,
        "accepted_outstanding_fen": 0,
        "guaranteed_fen": 0,
        "pledged_to_fen": 0,
    }
    prefix = f"idx/bp/{pid}/".encode()
    for key, _ in q.store.scan(prefix):
        package_no = key[len(prefix) :].decode()
        package = _package(q, package_no)
        for piece in _pieces(q, package_no):
            live = piece.status not in (BillStatus.TERMINATED, BillStatus.SETTLED)
            amount = piece_amount(package, piece)
            row: dict[str, Any] = {
                "package_no": package_no,
                "range": piece_range(piece),
                "amount_fen": amount,
                "status": piece.status.value,
                "flag": piece.flag.value,
                "maturity_date": day_to_iso(package.maturity_date),
            }
            if live and piece.holder == pid:
                held.append(row)
                totals["held_fen"] += amount
            if live and package.acceptor == pid and package.acceptance_date is not None:
                accepted.append(row)
                totals["accepted_outstanding_fen"] += amount
            if live and any(g.guarantor == pid for g in piece.guarantees):
                guaranteed.append(row)
                totals["guaranteed_fen"] += amount
            if live and piece.flag is BillFlag.PLEDGED and piece.pledgee == pid:
                pledged_to.append(row)
                totals["pledged_to_fen"] += amount
            if package.drawer == pid:
                drawn.append(row)
    holdings = [
        _holding_view(_load_holding(q, text(isin, "holder index"), pid))
        for _, isin in q.store.scan_objs(f"asset/hh/{pid}/".encode())
    ]
    return {
        "participant": pid,
        "bills_held": held,
        "bills_accepted": accepted,
        "bills_guaranteed": guaranteed,
        "bills_pledged_to": pledged_to,
        "bills_drawn": drawn,
        "totals": totals,
        "holdings": holdings,
    }


def q_positions(q: _Q) -> Any:
    pid = _read(q, lambda a: a.id_("participant"))
    q.require_self_or_regulator(pid)
    return _positions(q, pid)


def q_acceptor_exposures(q: _Q) -> Any:
    """Regulator view: outstanding acceptances, refusals and settlements per acceptor (C.4)."""
    _read(q, lambda a: None)
    if not q.regulator:
        raise QueryError("FORBIDDEN", "Only a regulator may see market-wide exposures.")
    by_acceptor: dict[str, dict[str, int]] = {}
    for key, record in q.store.scan_objs(b"bill/"):
        if key.count(b"/") != 1:
            continue  # piece keys live under the package key
        package = Package.from_stored(record)
        stats = by_acceptor.setdefault(
            package.acceptor,
            {"outstanding_fen": 0, "settled_fen": 0, "refused_pieces": 0, "packages": 0},
        )
        stats["packages"] += 1
        for piece in _pieces(q, package.package_no):
            amount = piece_amount(package, piece)
            if piece.status is BillStatus.SETTLED:
                stats["settled_fen"] += amount
            elif piece.status is not BillStatus.TERMINATED and package.acceptance_date is not None:
                stats["outstanding_fen"] += amount
            if piece.refusal is not None:
                stats["refused_pieces"] += 1
    return [{"acceptor": acceptor, **stats} for acceptor, stats in sorted(by_acceptor.items())]


def q_recourse_parties(q: _Q) -> Any:
    package_no, range_text = _read(
        q, lambda a: (a.code_("package_no", "bill_no"), a.code_("range", "bill_range"))
    )
    package = _package(q, package_no)
    q.require_bill_access(package_no)
    piece = next((p for p in _pieces(q, package_no) if piece_range(p) == range_text), None)
    if piece is None:
        raise QueryError("NOT_FOUND", f"Package {package_no} has no piece {range_text}.")
    holder = piece.holder
    if holder is None:
        return {"holder": None, "parties": {}}
    refusal_type = None if piece.refusal is None else piece.refusal.type
    return {
        "holder": holder,
        "refusal_type": None if refusal_type is None else refusal_type.value,
        "parties": liable_parties(package, piece, holder, refusal_type),
    }


def q_events(q: _Q) -> Any:
    """History of one scope (``b/<package>``, ``a/<ISIN>``, ``p/<participant>``) from a height."""
    scope, since = _read(
        q, lambda a: (a.str_("scope", max_len=80), a.int_("from_height", optional=True) or 0)
    )
    if not q.regulator:
        raise QueryError("FORBIDDEN", "Only a regulator may read raw history by scope.")
    return _history(q, scope, since)


# --- look-through (C.4) ---------------------------------------------------------------------
# Regulator only, like the other market-wide views; ``height`` answers from the registry as it
# was at the end of that block (``versions``), the current state otherwise.


def _lookthrough_store(q: _Q, height: int | None) -> Store:
    if not q.regulator:
        raise QueryError("FORBIDDEN", "Only a regulator may see look-through views.")
    return q.store if height is None else Store(AsOfView(q.state, height))


def _as_of(answer: dict[str, Any], height: int | None) -> dict[str, Any]:
    return {"as_of_height": height, **answer}


def q_lookthrough_owners(q: _Q) -> Any:
    """Ultimate owners of an instrument through the products that hold it."""
    isin, height = _read(
        q, lambda a: (a.code_("isin", "isin"), a.int_("height", optional=True, minimum=0))
    )
    store = _lookthrough_store(q, height)
    limit = load_parameters(q.store).max_nesting_depth
    return _as_of(lookthrough.ultimate_owners(store, isin, limit), height)


def q_lookthrough_assets(q: _Q) -> Any:
    """What a holder (participant or product) ultimately holds through the products it holds."""
    holder, height = _read(
        q, lambda a: (a.id_("holder"), a.int_("height", optional=True, minimum=0))
    )
    store = _lookthrough_store(q, height)
    limit = load_parameters(q.store).max_nesting_depth
    return _as_of(lookthrough.underlying_assets(store, holder, limit), height)


def q_lookthrough_exposures(q: _Q) -> Any:
    """Sums by issuer, issuer group, CFI category and currency: of one holder's underlying
    assets, or (no holder) of every instrument's outstanding."""
    holder, height = _read(
        q,
        lambda a: (a.id_("holder", optional=True), a.int_("height", optional=True, minimum=0)),
    )
    store = _lookthrough_store(q, height)
    limit = load_parameters(q.store).max_nesting_depth
    return _as_of(lookthrough.exposures(store, holder, limit), height)


# --- reference data ------------------------------------------------------------------------


def q_calendar(q: _Q) -> Any:
    _read(q, lambda a: None)
    calendar = load_calendar(q.store)
    return {
        "holidays": [day_to_iso(day) for day in sorted(calendar.holidays)],
        "working_weekend_days": [day_to_iso(day) for day in sorted(calendar.working_weekend_days)],
    }


def q_parameters(q: _Q) -> Any:
    _read(q, lambda a: None)
    params = load_parameters(q.store)
    record: dict[str, Any] = params.to_stored()
    record["term_rules"] = [
        {"issued_from": day_to_iso(day), "months": months} for day, months in params.term_rules
    ]
    return record


def q_bill_dates(q: _Q) -> Any:
    """Key dates of a bill: maturity, presentment window end, rights expiry."""
    package_no = _read(q, lambda a: a.code_("package_no", "bill_no"))
    package = _package(q, package_no)
    q.require_bill_access(package_no)
    params = load_parameters(q.store)
    calendar = load_calendar(q.store)
    return {
        "issue_date": day_to_iso(package.issue_date),
        "maturity_date": day_to_iso(package.maturity_date),
        "presentment_window_end": day_to_iso(presentment_window_end(package, calendar, params)),
        "rights_expiry": day_to_iso(add_months(package.maturity_date, params.rights_expiry_months)),
    }


def q_business_date(q: _Q) -> Any:
    """The business date (Asia/Shanghai) of an agreed timestamp, and whether it is open."""
    timestamp_ms = _read(q, lambda a: a.int_("timestamp_ms"))
    day = business_day(timestamp_ms)
    return {"date": day_to_iso(day), "business_day": load_calendar(q.store).is_business_day(day)}


def q_validate(q: _Q) -> Any:
    kind, value = _read(q, lambda a: (a.str_("kind", choices=KINDS), a.str_("value")))
    result = validate(kind, value)
    return {
        "valid": result.valid,
        "kind": result.kind,
        "value": result.value,
        "rule": result.rule,
        "code": result.code,
        "warnings": list(result.warnings),
    }


QUERIES: dict[str, Callable[[_Q], Any]] = {
    "participant": q_participant,
    "participants": q_participants,
    "governance": q_governance,
    "governance_proposal": q_governance_proposal,
    "governance_proposals": q_governance_proposals,
    "membership": q_membership,
    "instrument": q_instrument,
    "instruments": q_instruments,
    "holdings": q_holdings,
    "holders": q_holders,
    "asset_history": q_asset_history,
    "asset_request": q_asset_request,
    "asset_requests": q_asset_requests,
    "bill": q_bill,
    "bill_chain": q_bill_chain,
    "bill_history": q_bill_history,
    "bill_dates": q_bill_dates,
    "bills": q_bills,
    "request": q_request,
    "pending_requests": q_pending_requests,
    "positions": q_positions,
    "acceptor_exposures": q_acceptor_exposures,
    "recourse_parties": q_recourse_parties,
    "lookthrough_owners": q_lookthrough_owners,
    "lookthrough_assets": q_lookthrough_assets,
    "lookthrough_exposures": q_lookthrough_exposures,
    "events": q_events,
    "calendar": q_calendar,
    "parameters": q_parameters,
    "business_date": q_business_date,
    "validate": q_validate,
}


# --- what a viewer may see of a committed transaction ----------------------------------------

# Event attributes that name a participant taking part in the transaction.
PARTY_FIELDS = frozenset(
    {
        "participant",
        "from",
        "to",
        "holder",
        "pledgor",
        "pledgee",
        "initiator",
        "counterparty",
        "drawer",
        "acceptor",
        "payee",
        "endorsee",
        "buyer",
        "seller",
        "proposer",
        "approver",
    }
)


def _names_party(attrs: Mapping[str, Any], pid: str) -> bool:
    if any(attrs.get(name) == pid for name in PARTY_FIELDS):
        return True
    return any(
        isinstance(row, list | tuple) and bool(row) and row[0] == pid
        for row in attrs.get("allotments", ())
    )


class TransactionVisibility:
    """What one viewer may see of committed transactions: its payloads, results and events.

    The regulator sees every transaction; a participant sees those it sent, those whose events
    name it as a party, those on a bill package it is involved in (the rule of ``bill``), and
    those on an instrument whose holders it may see (the rule of ``holders``).  An anonymous or
    inactive viewer sees none: it is shown only what proofs need.  Built once per read (a block,
    a receipt), so the viewer's record is loaded once, not once per transaction.
    """

    def __init__(self, state: StateView, viewer: str | None) -> None:
        self._q = _Q(state, {}, viewer)

    @property
    def everything(self) -> bool:
        """Whether the viewer is an active regulator."""
        return self._q.regulator

    def sees(self, sender: str, events: Sequence[Mapping[str, Any]]) -> bool:
        q = self._q
        if q.viewer is None:
            return False
        if q.regulator or q.viewer.id == sender:
            return True
        for event in events:
            attrs = event.get("attrs")
            if not isinstance(attrs, Mapping):
                continue
            if _names_party(attrs, q.viewer.id):
                return True
            package_no = attrs.get("package_no")
            if isinstance(package_no, str) and q.involved(package_no) is not None:
                return True
            isin = attrs.get("isin")
            if isinstance(isin, str):
                stored = q.store.get_obj(instrument_key(isin))
                instrument = None if stored is None else Instrument.from_stored(stored)
                if instrument is not None and _sees_all_holders(q, instrument):
                    return True
        return False


def transaction_visible(
    state: StateView, viewer: str | None, sender: str, events: Sequence[Mapping[str, Any]]
) -> bool:
    """Whether ``viewer`` may see one committed transaction (see ``TransactionVisibility``)."""
    return TransactionVisibility(state, viewer).sees(sender, events)


def run_query(
    state: StateView,
    name: str,
    args: Mapping[str, Any],
    viewer: str | None,
    authority: StateView | None = None,
) -> Any:
    """Answer ``name`` from ``state``. ``authority``, when given, is the state whose participant
    record of ``viewer`` decides what it may see (the current state, when ``state`` is a past
    height's); by default ``state`` itself."""
    handler = QUERIES.get(name)
    if handler is None:
        raise QueryError("UNKNOWN_QUERY", f"There is no query named {name!r}.")
    return handler(_Q(state, args, viewer, authority))
