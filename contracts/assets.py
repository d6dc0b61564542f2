"""Asset registry (docs/domain.md Part C): instrument master, holdings and encumbrances.

Theory of operation
-------------------
An instrument is keyed by its ISIN and registered by a registrar participant, which then owns its
lifecycle (C.3). Its status follows a small table::

    REGISTERED --issue--> ACTIVE <--suspend/resume--> SUSPENDED
    ACTIVE | SUSPENDED --redeem--> MATURED (at maturity) | REDEEMED (early call)
    REGISTERED | MATURED | REDEEMED --deregister--> DEREGISTERED   (history kept)

Quantities are integer minor units of face value (for funds: units), positive multiples of the
instrument's denomination. A holding is ``available + pledged + frozen`` with each part >= 0, the
encumbered parts itemised (pledges by pledge id, freezes by case reference) and always summing to
the totals. Conservation (MUST): the sum of all holdings equals ``outstanding_minor``, which never
exceeds ``issue_size_minor``; allotment at issue must equal the issue size exactly.

Immutable after registration (C.3): ISIN, issuer LEI/USCC, CFI, currency, denomination, issue
size, issue/value/maturity dates, product registration code. ``asset.amend`` changes only the
descriptive fields and bumps ``version``; the previous values are kept in the history entry.

A holding's ``reserved`` part is what its pending transfer and pledge requests set aside
(``asset_requests``); a transfer or pledge takes the counterparty's signature (``asset_answers``)
and a request that is not answered in time is cleared here, by ``live_holding``, the first
time an operation loads the holding after its last day.

Prototype simplifications: transfers are free of payment; a non-trade transfer is requested by
the registrar (with a reason) and signed by the receiver; a pledge is released by the pledgee
alone; freezes are ordered by a regulator or the instrument's registrar.

State keys::

    asset/i/<ISIN>                instrument record
    asset/h/<ISIN>/<holder>       holding record
    asset/hh/<holder>/<ISIN>      ISIN (index: instruments held by a holder)
    asset/prc/<scheme>/<code>     ISIN (uniqueness of product registration codes)
    asset/hr/<ISIN>/<holder>/<last day:08d>/<request id>
                                  request id (a pending request's reservation, asset_requests)
    hist/a/<ISIN>/...             history entries (core.Store.emit)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from .args import Args, bad, day_to_iso
from .asset_requests import (
    AssetRequest,
    asset_request_key,
    drop_request_index,
    index_request,
    load_asset_request,
    save_asset_request,
)
from .bill_records import RequestAnswer
from .bill_state import request_expiry_day, request_timed_out
from .core import Env, Store
from .errors import ContractError, StoredFormError
from .identifiers import require_text
from .identity import require_party, require_role
from .nesting import require_holder
from .stored import Fields, StoredMap, StoredValue, text
from .vocabulary import (
    AssetAction,
    InstrumentStatus,
    ProductCategory,
    RequestStatus,
    Role,
    values,
)

__all__ = [
    "OPERATIONS",
    "PRODUCT_CODE_SCHEMES",
    "Encumbrance",
    "Holding",
    "Instrument",
    "close_request",
    "holding_key",
    "instrument_key",
    "live_holding",
    "load_holding",
    "load_instrument",
    "request_attrs",
    "reservation_key",
    "reservation_prefix",
    "save_holding",
    "take_reservation",
]

PRODUCT_CODE_SCHEMES: dict[str, re.Pattern[str]] = {
    "WM": re.compile(r"Z[0-9]{13}"),  # bank wealth-management product (A.9)
    "TRUST": re.compile(r"ZXD(?:[A-Z0-9]{18}|[A-Z0-9]{21})"),  # trust product (A.9)
    "OTHER": re.compile(r"[A-Z0-9]{4,32}"),  # other registrars' codes, format only
}
_MUTABLE = (
    "custodian_lei",
    "issuer_parent_leis",
    "local_codes",
    "name",
    "product_category",
    "risk_rating",
)
_IMMUTABLE = (
    "cfi",
    "currency",
    "denomination_minor",
    "issue_date",
    "issue_size_minor",
    "issuer_lei",
    "issuer_uscc",
    "maturity_date",
    "product_reg_code",
    "value_date",
)
_PRODUCT_CATEGORIES = values(ProductCategory)
_RISK = re.compile(r"P?R[1-5]")
_SCHEME = re.compile(r"[A-Z][A-Z0-9_]{1,15}")
_CASE_REF = re.compile(r"[A-Za-z0-9_.\-/]{1,64}")
QUANTITY_MAX = 10**17


def instrument_key(isin: str) -> bytes:
    return b"asset/i/" + isin.encode()


def holding_key(isin: str, holder: str) -> bytes:
    return b"asset/h/" + isin.encode() + b"/" + holder.encode()


def _index_key(holder: str, isin: str) -> bytes:
    return b"asset/hh/" + holder.encode() + b"/" + isin.encode()


def reservation_prefix(isin: str, holder: str) -> bytes:
    return b"asset/hr/" + isin.encode() + b"/" + holder.encode() + b"/"


def reservation_key(request: AssetRequest) -> bytes:
    """Ordered by the request's last day, so that the due time-outs are a scan's first keys."""
    suffix = f"{request.expires_day:08d}/{request.id}".encode()
    return reservation_prefix(request.isin, request.holder) + suffix


# --- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProductCode:
    """A product registration code (A.9): its scheme and the code itself."""

    scheme: str
    code: str

    def to_stored(self) -> StoredMap:
        return {"scheme": self.scheme, "code": self.code}

    @classmethod
    def from_stored(cls, value: object) -> ProductCode:
        f = Fields(value, "product registration code")
        record = cls(f.str_("scheme"), f.str_("code"))
        f.done()
        return record


def _local_code_pairs(f: Fields) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for item in f.list_("local_codes"):
        if not isinstance(item, list) or len(item) != 2:
            raise StoredFormError("instrument.local_codes must list [scheme, code] pairs")
        scheme, code = item
        if not isinstance(scheme, str) or not isinstance(code, str):
            raise StoredFormError("instrument.local_codes must list [scheme, code] pairs")
        pairs.append((scheme, code))
    return tuple(pairs)


@dataclass(frozen=True, slots=True)
class Instrument:
    """An instrument master record (``asset/i/<ISIN>``)."""

    isin: str
    name: str
    issuer_lei: str
    issuer_uscc: str | None
    cfi: str
    currency: str
    denomination_minor: int
    issue_size_minor: int
    issue_date: int
    value_date: int
    maturity_date: int | None
    product_reg_code: ProductCode | None
    registrar: str
    status: InstrumentStatus
    version: int
    outstanding_minor: int
    custodian_lei: str | None
    issuer_parent_leis: tuple[str, ...]
    local_codes: tuple[tuple[str, str], ...]
    product_category: ProductCategory | None
    risk_rating: str | None

    def to_stored(self) -> StoredMap:
        return {
            "isin": self.isin,
            "name": self.name,
            "issuer_lei": self.issuer_lei,
            "issuer_uscc": self.issuer_uscc,
            "cfi": self.cfi,
            "currency": self.currency,
            "denomination_minor": self.denomination_minor,
            "issue_size_minor": self.issue_size_minor,
            "issue_date": self.issue_date,
            "value_date": self.value_date,
            "maturity_date": self.maturity_date,
            "product_reg_code": (
                None if self.product_reg_code is None else self.product_reg_code.to_stored()
            ),
            "registrar": self.registrar,
            "status": self.status.value,
            "version": self.version,
            "outstanding_minor": self.outstanding_minor,
            "custodian_lei": self.custodian_lei,
            "issuer_parent_leis": list(self.issuer_parent_leis),
            "local_codes": [[scheme, code] for scheme, code in self.local_codes],
            "product_category": (
                None if self.product_category is None else self.product_category.value
            ),
            "risk_rating": self.risk_rating,
        }

    @classmethod
    def from_stored(cls, value: object) -> Instrument:
        f = Fields(value, "instrument")
        record = cls(
            isin=f.str_("isin"),
            name=f.str_("name"),
            issuer_lei=f.str_("issuer_lei"),
            issuer_uscc=f.opt_str("issuer_uscc"),
            cfi=f.str_("cfi"),
            currency=f.str_("currency"),
            denomination_minor=f.int_("denomination_minor"),
            issue_size_minor=f.int_("issue_size_minor"),
            issue_date=f.int_("issue_date"),
            value_date=f.int_("value_date"),
            maturity_date=f.opt_int("maturity_date"),
            product_reg_code=f.opt_record("product_reg_code", ProductCode.from_stored),
            registrar=f.str_("registrar"),
            status=f.enum_("status", InstrumentStatus),
            version=f.int_("version"),
            outstanding_minor=f.int_("outstanding_minor"),
            custodian_lei=f.opt_str("custodian_lei"),
            issuer_parent_leis=f.str_list("issuer_parent_leis"),
            local_codes=_local_code_pairs(f),
            product_category=f.opt_enum("product_category", ProductCategory),
            risk_rating=f.opt_str("risk_rating"),
        )
        f.done()
        return record


@dataclass(frozen=True, slots=True)
class Encumbrance:
    """A pledge (by pledge id, to ``party`` the pledgee) or a freeze (by case reference, by
    ``party`` the authority) of part of a holding."""

    party: str
    quantity: int


def _encumbrances(f: Fields, key: str, party_key: str) -> dict[str, Encumbrance]:
    result: dict[str, Encumbrance] = {}
    for ref, item in f.map_(key).items():
        entry = Fields(item, f"holding.{key}.{ref}")
        result[ref] = Encumbrance(entry.str_(party_key), entry.int_("quantity"))
        entry.done()
    return result


def _stored_encumbrances(items: Mapping[str, Encumbrance], party_key: str) -> StoredMap:
    return {ref: {party_key: e.party, "quantity": e.quantity} for ref, e in items.items()}


@dataclass(frozen=True, slots=True)
class Holding:
    """One holder's position in one instrument (``asset/h/<ISIN>/<holder>``)."""

    isin: str
    holder: str
    available: int = 0
    pledged: int = 0
    frozen: int = 0
    pledges: Mapping[str, Encumbrance] = field(default_factory=dict)  # pledge id -> pledgee
    freezes: Mapping[str, Encumbrance] = field(default_factory=dict)  # case ref -> authority
    # Set aside for pending transfer and pledge requests, itemised under asset/hr/ (not here,
    # so that a holding with many pending requests stays one small record).
    reserved: int = 0

    @property
    def total(self) -> int:
        return self.available + self.pledged + self.frozen + self.reserved

    def to_stored(self) -> StoredMap:
        stored: StoredMap = {
            "isin": self.isin,
            "holder": self.holder,
            "available": self.available,
            "pledged": self.pledged,
            "frozen": self.frozen,
            "pledges": _stored_encumbrances(self.pledges, "pledgee"),
            "freezes": _stored_encumbrances(self.freezes, "authority"),
        }
        # Only while a request is pending, so that a holding without one keeps its stored bytes.
        if self.reserved:
            stored["reserved"] = self.reserved
        return stored

    @classmethod
    def from_stored(cls, value: object) -> Holding:
        f = Fields(value, "holding")
        record = cls(
            isin=f.str_("isin"),
            holder=f.str_("holder"),
            available=f.int_("available"),
            pledged=f.int_("pledged"),
            frozen=f.int_("frozen"),
            pledges=_encumbrances(f, "pledges", "pledgee"),
            freezes=_encumbrances(f, "freezes", "authority"),
            reserved=f.int_("reserved") if f.has("reserved") else 0,
        )
        f.done()
        return record


def load_instrument(store: Store, isin: str) -> Instrument:
    record = store.get_obj(instrument_key(isin))
    if record is None:
        raise ContractError("UNKNOWN_INSTRUMENT", f"No instrument with ISIN {isin} is registered.")
    return Instrument.from_stored(record)


def load_holding(store: Store, isin: str, holder: str) -> Holding:
    record = store.get_obj(holding_key(isin, holder))
    return Holding(isin, holder) if record is None else Holding.from_stored(record)


def _save_instrument(store: Store, instrument: Instrument) -> None:
    store.put(instrument_key(instrument.isin), instrument.to_stored())


def save_holding(store: Store, holding: Holding) -> None:
    assert min(holding.available, holding.pledged, holding.frozen, holding.reserved) >= 0
    assert holding.pledged == sum(p.quantity for p in holding.pledges.values())
    assert holding.frozen == sum(f.quantity for f in holding.freezes.values())
    key = holding_key(holding.isin, holding.holder)
    index = _index_key(holding.holder, holding.isin)
    if holding.total == 0:
        store.delete(key)
        store.delete(index)
    else:
        store.put(key, holding.to_stored())
        store.put(index, holding.isin)


def _scope(isin: str) -> str:
    return f"a/{isin}"


def _registrar_of(env: Env, instrument: Instrument) -> None:
    if instrument.registrar != env.sender.id:
        raise ContractError(
            "FORBIDDEN",
            f"Only {instrument.registrar}, the registrar of {instrument.isin}, may do this.",
        )


def _require_status(instrument: Instrument, *statuses: InstrumentStatus) -> None:
    if instrument.status not in statuses:
        code = "INSTRUMENT_NOT_ACTIVE" if InstrumentStatus.ACTIVE in statuses else "WRONG_STATE"
        raise ContractError(
            code,
            f"Instrument {instrument.isin} is {instrument.status}; this needs "
            f"{' or '.join(statuses)}.",
        )


def _quantity(args: Args, instrument: Instrument, name: str = "quantity") -> int:
    quantity: int = args.int_(name, minimum=1, maximum=QUANTITY_MAX)
    if quantity % instrument.denomination_minor:
        raise ContractError(
            "QUANTITY_INVALID",
            f"Quantity {quantity} is not a whole number of denominations of "
            f"{instrument.denomination_minor}.",
        )
    return quantity


def _exceeds(what: str, quantity: int, available: int) -> ContractError:
    return ContractError(
        "QUANTITY_EXCEEDS_AVAILABLE",
        f"Cannot {what} {quantity}: only {available} is available (not pledged, frozen or "
        "reserved by a pending request).",
    )


def _lei_list(args: Args, name: str) -> list[str] | None:
    values = args.list_(name, optional=True, max_items=16)
    if values is None:
        return None
    leis: set[str] = set()
    for value in values:
        leis.add(require_text("lei", value, field=name))
    return sorted(leis)


def _local_codes(args: Args) -> list[list[str]] | None:
    values = args.list_("local_codes", optional=True, max_items=16)
    if values is None:
        return None
    codes: set[tuple[str, str]] = set()
    for value in values:
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(isinstance(part, str) for part in value)
            or _SCHEME.fullmatch(value[0]) is None
            or not 1 <= len(value[1]) <= 32
        ):
            raise bad("local_codes", "must list [scheme, code] pairs, e.g. [CFETS_BOND, 230015]")
        codes.add((value[0], value[1]))
    return [list(code) for code in sorted(codes)]


def _descriptive(args: Args) -> StoredMap:
    fields: StoredMap = {}
    name = args.str_("name", optional=True)
    if name is not None:
        fields["name"] = name
    rating = args.str_("risk_rating", optional=True, pattern=_RISK, max_len=3)
    if rating is not None:
        fields["risk_rating"] = rating
    category = args.str_("product_category", optional=True, choices=_PRODUCT_CATEGORIES)
    if category is not None:
        fields["product_category"] = category
    custodian = args.code_("custodian_lei", "lei", optional=True)
    if custodian is not None:
        fields["custodian_lei"] = custodian
    parents = _lei_list(args, "issuer_parent_leis")
    if parents is not None:
        fields["issuer_parent_leis"] = list[StoredValue](parents)
    local = _local_codes(args)
    if local is not None:
        fields["local_codes"] = [list[StoredValue](pair) for pair in local]
    return fields


def op_register(env: Env, args: Args) -> None:
    require_role(env, Role.REGISTRAR)
    isin = args.code_("isin", "isin")
    issuer_lei = args.code_("issuer_lei", "lei")
    issuer_uscc = args.code_("issuer_uscc", "uscc", optional=True)
    cfi = args.code_("cfi", "cfi")
    currency = args.code_("currency", "currency")
    denomination = args.int_("denomination_minor", minimum=1, maximum=QUANTITY_MAX)
    issue_size = args.int_("issue_size_minor", minimum=1, maximum=QUANTITY_MAX)
    issue_date = args.date_("issue_date")
    value_date = args.date_("value_date", optional=True)
    maturity_date = args.date_("maturity_date", optional=True)
    product = args.map_("product_reg_code", optional=True)
    descriptive = _descriptive(args)
    args.done()
    if "name" not in descriptive:
        raise bad("name", "is required")
    if issue_size % denomination:
        raise ContractError(
            "QUANTITY_INVALID", "The issue size must be a whole number of denominations."
        )
    if maturity_date is not None and maturity_date <= issue_date:
        raise bad("maturity_date", "must be after the issue date")
    if value_date is not None and value_date < issue_date:
        raise bad("value_date", "must not be before the issue date")
    product_code: ProductCode | None = None
    if product is not None:
        product_code = _product_code(product)
    elif cfi[0] == "C":
        raise bad("product_reg_code", "is required for collective investment products (CFI C)")
    if env.store.get(instrument_key(isin)) is not None:
        raise ContractError("DUPLICATE_INSTRUMENT", f"ISIN {isin} is already registered.")
    if product_code is not None:
        code_key = f"asset/prc/{product_code.scheme}/{product_code.code}".encode()
        if env.store.get(code_key) is not None:
            raise ContractError(
                "DUPLICATE_INSTRUMENT",
                f"Product registration code {product_code.code} is already registered.",
            )
        env.store.put(code_key, isin)
    record: StoredMap = {
        "isin": isin,
        "issuer_lei": issuer_lei,
        "issuer_uscc": issuer_uscc,
        "cfi": cfi,
        "currency": currency,
        "denomination_minor": denomination,
        "issue_size_minor": issue_size,
        "issue_date": issue_date,
        "value_date": value_date if value_date is not None else issue_date,
        "maturity_date": maturity_date,
        "product_reg_code": None if product_code is None else product_code.to_stored(),
        "registrar": env.sender.id,
        "status": "REGISTERED",
        "version": 1,
        "outstanding_minor": 0,
        "custodian_lei": None,
        "issuer_parent_leis": [],
        "local_codes": [],
        "product_category": None,
        "risk_rating": None,
        **descriptive,
    }
    _save_instrument(env.store, Instrument.from_stored(record))
    env.store.emit(
        "asset.registered",
        {
            "isin": isin,
            "issuer_lei": issuer_lei,
            "cfi": cfi,
            "currency": currency,
            "issue_size_minor": issue_size,
            "registrar": env.sender.id,
        },
        [_scope(isin)],
    )


def _product_code(product: Mapping[str, object]) -> ProductCode:
    if set(product) != {"scheme", "code"}:
        raise bad("product_reg_code", "must be a map with exactly scheme and code")
    scheme, code = product["scheme"], product["code"]
    if not isinstance(scheme, str) or scheme not in PRODUCT_CODE_SCHEMES:
        raise ContractError(
            "PRODUCT_CODE_INVALID",
            f"Product code scheme {scheme!r} is unknown; use {', '.join(PRODUCT_CODE_SCHEMES)}.",
        )
    if not isinstance(code, str) or PRODUCT_CODE_SCHEMES[scheme].fullmatch(code) is None:
        raise ContractError(
            "PRODUCT_CODE_INVALID", f"{code!r} is not a valid {scheme} product registration code."
        )
    return ProductCode(scheme, code)


def op_amend(env: Env, args: Args) -> None:
    isin = args.code_("isin", "isin")
    immutable = [name for name in _IMMUTABLE if args.has(name)]
    if immutable:
        raise ContractError(
            "IMMUTABLE_FIELD", f"Field '{immutable[0]}' cannot be changed after registration."
        )
    changes = _descriptive(args)
    args.done()
    instrument = load_instrument(env.store, isin)
    _registrar_of(env, instrument)
    if instrument.status is InstrumentStatus.DEREGISTERED:
        raise ContractError("WRONG_STATE", f"Instrument {isin} is deregistered.")
    if not changes:
        raise bad("name", "or another amendable field must be given")
    stored = instrument.to_stored()
    previous: StoredMap = {name: stored[name] for name in sorted(changes)}
    # The changes are in stored form already; re-reading the result checks them as a record.
    amended = Instrument.from_stored({**stored, **changes, "version": instrument.version + 1})
    _save_instrument(env.store, amended)
    env.store.emit(
        "asset.amended",
        {"isin": isin, "version": amended.version, "previous": previous, "changes": changes},
        [_scope(isin)],
    )


def op_issue(env: Env, args: Args) -> None:
    isin = args.code_("isin", "isin")
    allotments = args.list_("allotments", max_items=1000)
    args.done()
    instrument = load_instrument(env.store, isin)
    _registrar_of(env, instrument)
    _require_status(instrument, InstrumentStatus.REGISTERED)
    if not allotments:
        raise bad("allotments", "must list at least one holder")
    seen: set[str] = set()
    parsed: list[tuple[str, int]] = []
    for index, item in enumerate(allotments):
        where = f"allotments[{index}]"
        entry = Args(item) if isinstance(item, dict) else None
        if entry is None:
            raise bad(where, "must be a map with holder and quantity")
        holder: str = entry.id_("holder")
        quantity = _quantity(entry, instrument)
        entry.done()
        if holder in seen:
            raise bad(where, f"names holder {holder} a second time")
        seen.add(holder)
        require_holder(env.store, holder, isin, "holder")
        parsed.append((holder, quantity))
    total = sum(quantity for _, quantity in parsed)
    if total != instrument.issue_size_minor:
        raise ContractError(
            "SUM_MISMATCH",
            f"Allotments total {total} but the issue size is {instrument.issue_size_minor}.",
        )
    for holder, quantity in sorted(parsed):
        holding = load_holding(env.store, isin, holder)
        save_holding(env.store, replace(holding, available=holding.available + quantity))
    active = replace(instrument, status=InstrumentStatus.ACTIVE, outstanding_minor=total)
    _save_instrument(env.store, active)
    env.store.emit(
        "asset.issued",
        {"isin": isin, "allotments": [[h, q] for h, q in sorted(parsed)], "total": total},
        [_scope(isin)],
    )


# --- two-step transfers and pledges (C.3) ------------------------------------------------------


def request_attrs(request: AssetRequest, **extra: StoredValue) -> StoredMap:
    """The attributes of every event about ``request``: its parties under their generic names
    and, for the action, under the names of the one-step events (from/to, pledgor/pledgee)."""
    attrs: StoredMap = {
        "isin": request.isin,
        "request_id": request.id,
        "action": request.action.value,
        "holder": request.holder,
        "initiator": request.initiator,
        "counterparty": request.counterparty,
        "quantity": request.quantity,
    }
    if request.action is AssetAction.TRANSFER:
        attrs.update({"from": request.holder, "to": request.counterparty})
    else:
        attrs.update({"pledgor": request.holder, "pledgee": request.counterparty})
    if request.reason is not None:
        attrs["reason"] = request.reason
    attrs.update(extra)
    return attrs


def take_reservation(store: Store, holding: Holding, request: AssetRequest) -> Holding:
    """``holding`` without the quantity ``request`` reserved (signed for, it moves; otherwise
    the caller gives it back)."""
    key = reservation_key(request)
    assert store.get(key) is not None, "a pending request reserves its quantity"
    assert holding.reserved >= request.quantity
    store.delete(key)
    return replace(holding, reserved=holding.reserved - request.quantity)


def close_request(
    env: Env,
    holding: Holding,
    request: AssetRequest,
    status: RequestStatus,
    day: int,
    answer: RequestAnswer | None,
) -> Holding:
    """Close ``request`` as of ``day`` with ``status``, and (unless it was signed) give the
    reserved quantity back to the holder's available part exactly. Saves the request and drops
    its index entries; the caller saves the holding it returns."""
    if status is not RequestStatus.SIGNED:
        holding = take_reservation(env.store, holding, request)
        holding = replace(holding, available=holding.available + request.quantity)
    save_asset_request(env.store, replace(request, status=status, closed_day=day, answer=answer))
    drop_request_index(env.store, request)
    return holding


def live_holding(env: Env, isin: str, holder: str) -> Holding:
    """The holding as time has made it: every pending request on it whose answer window has
    passed is cleared as of the day after its last day (the bill requests' time-out rule), in
    the order of (last day, request id), so every replica computes the same state whichever
    block applies it."""
    holding = load_holding(env.store, isin, holder)
    if not holding.reserved:
        return holding
    start = holding
    prefix = reservation_prefix(isin, holder)
    due: list[str] = []
    for key, value in env.store.scan_objs(prefix):
        if not request_timed_out(env, int(key[len(prefix) : len(prefix) + 8])):
            break  # ordered by last day: the rest are not due either
        due.append(text(value, "reservation"))
    for request_id in due:
        request = load_asset_request(env.store, request_id)
        assert request.status is RequestStatus.PENDING, "a reservation names a pending request"
        holding = close_request(
            env, holding, request, RequestStatus.CLEARED, request.expires_day + 1, None
        )
        env.store.emit(
            "asset.request_cleared",
            request_attrs(request, expired=day_to_iso(request.expires_day)),
            [_scope(isin)],
        )
    if holding != start:
        save_holding(env.store, holding)
    return holding


def _request(
    env: Env,
    action: AssetAction,
    instrument: Instrument,
    holder: str,
    counterparty: str,
    quantity: int,
    reason: str | None,
) -> None:
    """Reserve ``quantity`` of ``holder``'s available holding for a request ``counterparty``
    must answer."""
    holding = live_holding(env, instrument.isin, holder)
    if quantity > holding.available:
        raise _exceeds(action.lower(), quantity, holding.available)
    request_id = env.ctx.tx_id.hex()
    if env.store.get(asset_request_key(request_id)) is not None:
        raise AssertionError("transaction ids are unique; a request id cannot repeat")
    request = AssetRequest(
        id=request_id,
        action=action,
        isin=instrument.isin,
        holder=holder,
        initiator=env.sender.id,
        counterparty=counterparty,
        quantity=quantity,
        reason=reason,
        status=RequestStatus.PENDING,
        created_day=env.today,
        expires_day=request_expiry_day(env),
        height=env.ctx.height,
        closed_day=None,
        answer=None,
    )
    holding = replace(
        holding, available=holding.available - quantity, reserved=holding.reserved + quantity
    )
    save_holding(env.store, holding)
    env.store.put(reservation_key(request), request_id)
    save_asset_request(env.store, request)
    index_request(env.store, request)
    env.store.emit(
        "asset.requested",
        request_attrs(request, expires=day_to_iso(request.expires_day)),
        [_scope(instrument.isin)],
    )


def op_transfer(env: Env, args: Args) -> None:
    """Request a transfer; the buyer (``to``) signs it with ``asset.sign``."""
    isin: str = args.code_("isin", "isin")
    to: str = args.id_("to")
    source: str | None = args.id_("from", optional=True)
    reason: str | None = args.str_("reason", optional=True, max_len=256)
    instrument = load_instrument(env.store, isin)
    quantity = _quantity(args, instrument)
    args.done()
    if source is None or source == env.sender.id:
        seller = env.sender.id
        if reason is not None:
            raise bad("reason", "is only for registrar (non-trade) transfers")
    else:
        _registrar_of(env, instrument)
        if reason is None:
            raise bad("reason", "is required for a non-trade transfer by the registrar")
        seller = source
    _require_status(instrument, InstrumentStatus.ACTIVE)
    if to == seller:
        raise ContractError("SELF_DEALING", "A holding cannot be transferred to its own holder.")
    require_holder(env.store, to, isin, "to")
    _request(env, AssetAction.TRANSFER, instrument, seller, to, quantity, reason)


def op_pledge(env: Env, args: Args) -> None:
    """Request a pledge; the pledgee signs it with ``asset.sign``."""
    isin: str = args.code_("isin", "isin")
    pledgee: str = args.id_("pledgee")
    instrument = load_instrument(env.store, isin)
    quantity = _quantity(args, instrument)
    args.done()
    _require_status(instrument, InstrumentStatus.ACTIVE)
    if pledgee == env.sender.id:
        raise ContractError("SELF_DEALING", "A holder cannot pledge to itself.")
    require_party(env.store, pledgee, "pledgee")
    _request(env, AssetAction.PLEDGE, instrument, env.sender.id, pledgee, quantity, None)


def op_release(env: Env, args: Args) -> None:
    isin: str = args.code_("isin", "isin")
    pledgor: str = args.id_("pledgor")
    pledge_id: str = args.str_("pledge_id", pattern=re.compile(r"[0-9a-f]{2,128}"), max_len=128)
    args.done()
    instrument = load_instrument(env.store, isin)
    _require_status(instrument, InstrumentStatus.ACTIVE, InstrumentStatus.SUSPENDED)
    holding = load_holding(env.store, isin, pledgor)
    pledge = holding.pledges.get(pledge_id)
    if pledge is None:
        raise ContractError("UNKNOWN_PLEDGE", f"{pledgor} has no pledge {pledge_id} on {isin}.")
    if pledge.party != env.sender.id:
        raise ContractError("FORBIDDEN", f"Only the pledgee {pledge.party} may release it.")
    holding = replace(
        holding,
        pledges={ref: p for ref, p in holding.pledges.items() if ref != pledge_id},
        pledged=holding.pledged - pledge.quantity,
        available=holding.available + pledge.quantity,
    )
    save_holding(env.store, holding)
    env.store.emit(
        "asset.released",
        {
            "isin": isin,
            "pledgor": pledgor,
            "pledgee": env.sender.id,
            "quantity": pledge.quantity,
            "pledge_id": pledge_id,
        },
        [_scope(isin)],
    )


def _freeze_authority(env: Env, instrument: Instrument) -> None:
    if not env.sender.has(Role.REGULATOR) and instrument.registrar != env.sender.id:
        raise ContractError(
            "FORBIDDEN", "Only a regulator or the instrument's registrar may freeze or unfreeze."
        )


def op_freeze(env: Env, args: Args) -> None:
    isin: str = args.code_("isin", "isin")
    holder: str = args.id_("holder")
    case_ref: str = args.str_("case_ref", pattern=_CASE_REF, max_len=64)
    instrument = load_instrument(env.store, isin)
    quantity = _quantity(args, instrument)
    args.done()
    _freeze_authority(env, instrument)
    _require_status(instrument, InstrumentStatus.ACTIVE, InstrumentStatus.SUSPENDED)
    holding = live_holding(env, isin, holder)
    if case_ref in holding.freezes:
        raise ContractError("DUPLICATE_CASE", f"Case {case_ref} already freezes this holding.")
    if quantity > holding.available:
        raise _exceeds("freeze", quantity, holding.available)
    holding = replace(
        holding,
        available=holding.available - quantity,
        frozen=holding.frozen + quantity,
        freezes={**holding.freezes, case_ref: Encumbrance(env.sender.id, quantity)},
    )
    save_holding(env.store, holding)
    env.store.emit(
        "asset.frozen",
        {"isin": isin, "holder": holder, "quantity": quantity, "case_ref": case_ref},
        [_scope(isin)],
    )


def op_unfreeze(env: Env, args: Args) -> None:
    isin: str = args.code_("isin", "isin")
    holder: str = args.id_("holder")
    case_ref: str = args.str_("case_ref", pattern=_CASE_REF, max_len=64)
    args.done()
    instrument = load_instrument(env.store, isin)
    _freeze_authority(env, instrument)
    holding = load_holding(env.store, isin, holder)
    freeze = holding.freezes.get(case_ref)
    if freeze is None:
        raise ContractError("UNKNOWN_CASE", f"No freeze under case {case_ref} on this holding.")
    holding = replace(
        holding,
        freezes={ref: f for ref, f in holding.freezes.items() if ref != case_ref},
        frozen=holding.frozen - freeze.quantity,
        available=holding.available + freeze.quantity,
    )
    save_holding(env.store, holding)
    env.store.emit(
        "asset.unfrozen",
        {"isin": isin, "holder": holder, "quantity": freeze.quantity, "case_ref": case_ref},
        [_scope(isin)],
    )


def _set_status(
    env: Env, args: Args, source: InstrumentStatus, target: InstrumentStatus, kind: str
) -> None:
    isin: str = args.code_("isin", "isin")
    args.done()
    instrument = load_instrument(env.store, isin)
    _registrar_of(env, instrument)
    _require_status(instrument, source)
    _save_instrument(env.store, replace(instrument, status=target))
    env.store.emit(kind, {"isin": isin, "status": target.value}, [_scope(isin)])


def op_suspend(env: Env, args: Args) -> None:
    S = InstrumentStatus
    _set_status(env, args, S.ACTIVE, S.SUSPENDED, "asset.suspended")


def op_resume(env: Env, args: Args) -> None:
    S = InstrumentStatus
    _set_status(env, args, S.SUSPENDED, S.ACTIVE, "asset.resumed")


def op_redeem(env: Env, args: Args) -> None:
    isin: str = args.code_("isin", "isin")
    early = args.bool_("early")
    args.done()
    instrument = load_instrument(env.store, isin)
    _registrar_of(env, instrument)
    _require_status(instrument, InstrumentStatus.ACTIVE, InstrumentStatus.SUSPENDED)
    maturity = instrument.maturity_date
    if not early and (maturity is None or env.today < maturity):
        when = "has no maturity date" if maturity is None else f"matures on {day_to_iso(maturity)}"
        raise ContractError(
            "NOT_MATURE", f"Instrument {isin} {when}; redeem before it only as an early call."
        )
    holders = [
        Holding.from_stored(record).holder
        for _, record in env.store.scan_objs(b"asset/h/" + isin.encode() + b"/")
    ]
    # Requests that timed out release their quantity first; one still pending blocks.
    holdings = [live_holding(env, isin, holder) for holder in holders]
    pending = [h for h in holdings if h.reserved]
    if pending:
        prefix = reservation_prefix(isin, pending[0].holder)
        first_key, _ = next(env.store.scan(prefix))
        request_id = first_key[len(prefix) + 9 :].decode()
        raise ContractError(
            "REQUEST_PENDING",
            f"Request {request_id} is pending on the holding of {pending[0].holder}; it must be "
            "answered, revoked or time out first.",
        )
    encumbered = [h.holder for h in holdings if h.pledged or h.frozen]
    if encumbered:
        raise ContractError(
            "ENCUMBERED", f"The holding of {encumbered[0]} is pledged or frozen; release it first."
        )
    total = 0
    for holding in holdings:
        total += holding.available
        env.store.delete(holding_key(isin, holding.holder))
        env.store.delete(_index_key(holding.holder, isin))
    assert total == instrument.outstanding_minor
    status = InstrumentStatus.REDEEMED if early else InstrumentStatus.MATURED
    _save_instrument(env.store, replace(instrument, status=status, outstanding_minor=0))
    env.store.emit(
        "asset.redeemed",
        {"isin": isin, "status": status.value, "redeemed_minor": total},
        [_scope(isin)],
    )


def op_deregister(env: Env, args: Args) -> None:
    isin: str = args.code_("isin", "isin")
    args.done()
    instrument = load_instrument(env.store, isin)
    _registrar_of(env, instrument)
    S = InstrumentStatus
    if instrument.status not in (S.REGISTERED, S.MATURED, S.REDEEMED):
        raise ContractError(
            "DEREGISTER_NOT_ALLOWED",
            f"Instrument {isin} is {instrument.status}; only an unissued, matured or "
            "redeemed instrument can be deregistered.",
        )
    if instrument.outstanding_minor or any(
        True for _ in env.store.scan(b"asset/h/" + isin.encode() + b"/")
    ):
        raise ContractError("DEREGISTER_NOT_ALLOWED", f"Instrument {isin} still has holdings.")
    _save_instrument(env.store, replace(instrument, status=S.DEREGISTERED))
    env.store.emit("asset.deregistered", {"isin": isin}, [_scope(isin)])


OPERATIONS: dict[str, Callable[[Env, Args], None]] = {
    "asset.register": op_register,
    "asset.amend": op_amend,
    "asset.issue": op_issue,
    "asset.transfer": op_transfer,
    "asset.pledge": op_pledge,
    "asset.release": op_release,
    "asset.freeze": op_freeze,
    "asset.unfreeze": op_unfreeze,
    "asset.suspend": op_suspend,
    "asset.resume": op_resume,
    "asset.redeem": op_redeem,
    "asset.deregister": op_deregister,
}
