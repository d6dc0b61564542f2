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

Prototype simplifications: transfers are free of payment and signed by the seller alone (or by
the registrar for non-trade transfers, with a reason); a pledge is signed by the pledgor and
released by the pledgee; freezes are ordered by a regulator or the instrument's registrar.

State keys::

    asset/i/<ISIN>                instrument record
    asset/h/<ISIN>/<holder>       holding record
    asset/hh/<holder>/<ISIN>      ISIN (index: instruments held by a holder)
    asset/prc/<scheme>/<code>     ISIN (uniqueness of product registration codes)
    hist/a/<ISIN>/...             history entries (core.Store.emit)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .args import Args, bad, day_to_iso
from .core import Env, Store
from .errors import ContractError
from .identifiers import require
from .identity import require_party, require_role

__all__ = [
    "OPERATIONS",
    "PRODUCT_CODE_SCHEMES",
    "holding_key",
    "instrument_key",
    "load_holding",
    "load_instrument",
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
_PRODUCT_CATEGORIES = ("FIXED_INCOME", "EQUITY", "COMMODITY_DERIVATIVE", "MIXED")
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


def load_instrument(store: Store, isin: str) -> dict[str, Any]:
    record = store.get_obj(instrument_key(isin))
    if record is None:
        raise ContractError("UNKNOWN_INSTRUMENT", f"No instrument with ISIN {isin} is registered.")
    return dict(record)


def load_holding(store: Store, isin: str, holder: str) -> dict[str, Any]:
    record = store.get_obj(holding_key(isin, holder))
    if record is None:
        return {
            "isin": isin,
            "holder": holder,
            "available": 0,
            "pledged": 0,
            "frozen": 0,
            "pledges": {},
            "freezes": {},
        }
    return {**record, "pledges": dict(record["pledges"]), "freezes": dict(record["freezes"])}


def _save_holding(store: Store, holding: dict[str, Any]) -> None:
    assert min(holding["available"], holding["pledged"], holding["frozen"]) >= 0
    assert holding["pledged"] == sum(p["quantity"] for p in holding["pledges"].values())
    assert holding["frozen"] == sum(f["quantity"] for f in holding["freezes"].values())
    key = holding_key(holding["isin"], holding["holder"])
    index = _index_key(holding["holder"], holding["isin"])
    if holding["available"] + holding["pledged"] + holding["frozen"] == 0:
        store.delete(key)
        store.delete(index)
    else:
        store.put(key, holding)
        store.put(index, holding["isin"])


def _scope(isin: str) -> str:
    return f"a/{isin}"


def _registrar_of(env: Env, instrument: dict[str, Any]) -> None:
    if instrument["registrar"] != env.sender.id:
        raise ContractError(
            "FORBIDDEN",
            f"Only {instrument['registrar']}, the registrar of {instrument['isin']}, may do this.",
        )


def _require_status(instrument: dict[str, Any], *statuses: str) -> None:
    if instrument["status"] not in statuses:
        code = "INSTRUMENT_NOT_ACTIVE" if "ACTIVE" in statuses else "WRONG_STATE"
        raise ContractError(
            code,
            f"Instrument {instrument['isin']} is {instrument['status']}; this needs "
            f"{' or '.join(statuses)}.",
        )


def _quantity(args: Args, instrument: dict[str, Any], name: str = "quantity") -> int:
    quantity: int = args.int_(name, minimum=1, maximum=QUANTITY_MAX)
    if quantity % instrument["denomination_minor"]:
        raise ContractError(
            "QUANTITY_INVALID",
            f"Quantity {quantity} is not a whole number of denominations of "
            f"{instrument['denomination_minor']}.",
        )
    return quantity


def _exceeds(what: str, quantity: int, available: int) -> ContractError:
    return ContractError(
        "QUANTITY_EXCEEDS_AVAILABLE",
        f"Cannot {what} {quantity}: only {available} is available (not pledged or frozen).",
    )


def _lei_list(args: Args, name: str) -> list[str] | None:
    values = args.list_(name, optional=True, max_items=16)
    if values is None:
        return None
    for value in values:
        if not isinstance(value, str):
            raise bad(name, "must list LEIs as text")
        require("lei", value, field=name)
    return sorted(set(values))


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


def _descriptive(args: Args) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    name = args.str_("name", optional=True)
    if name is not None:
        fields["name"] = name
    rating = args.str_("risk_rating", optional=True, pattern=_RISK, max_len=3)
    if rating is not None:
        fields["risk_rating"] = rating
    category = args.str_("product_category", optional=True, choices=_PRODUCT_CATEGORIES)
    if category is not None:
        fields["product_category"] = category
    custodian = args.str_("custodian_lei", optional=True)
    if custodian is not None:
        require("lei", custodian, field="custodian_lei")
        fields["custodian_lei"] = custodian
    parents = _lei_list(args, "issuer_parent_leis")
    if parents is not None:
        fields["issuer_parent_leis"] = parents
    local = _local_codes(args)
    if local is not None:
        fields["local_codes"] = local
    return fields


def op_register(env: Env, args: Args) -> None:
    require_role(env, "registrar")
    isin = args.str_("isin", max_len=12)
    require("isin", isin)
    issuer_lei = args.str_("issuer_lei")
    require("lei", issuer_lei, field="issuer_lei")
    issuer_uscc = args.str_("issuer_uscc", optional=True)
    if issuer_uscc is not None:
        require("uscc", issuer_uscc, field="issuer_uscc")
    cfi = args.str_("cfi")
    require("cfi", cfi)
    currency = args.str_("currency")
    require("currency", currency)
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
    product_code = None
    if product is not None:
        product_code = _product_code(product)
    elif cfi[0] == "C":
        raise bad("product_reg_code", "is required for collective investment products (CFI C)")
    if env.store.get(instrument_key(isin)) is not None:
        raise ContractError("DUPLICATE_INSTRUMENT", f"ISIN {isin} is already registered.")
    if product_code is not None:
        code_key = f"asset/prc/{product_code['scheme']}/{product_code['code']}".encode()
        if env.store.get(code_key) is not None:
            raise ContractError(
                "DUPLICATE_INSTRUMENT",
                f"Product registration code {product_code['code']} is already registered.",
            )
        env.store.put(code_key, isin)
    record = {
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
        "product_reg_code": product_code,
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
    env.store.put(instrument_key(isin), record)
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


def _product_code(product: Any) -> dict[str, str]:
    if set(product) != {"scheme", "code"}:
        raise bad("product_reg_code", "must be a map with exactly scheme and code")
    scheme, code = product["scheme"], product["code"]
    if scheme not in PRODUCT_CODE_SCHEMES:
        raise ContractError(
            "PRODUCT_CODE_INVALID",
            f"Product code scheme {scheme!r} is unknown; use {', '.join(PRODUCT_CODE_SCHEMES)}.",
        )
    if not isinstance(code, str) or PRODUCT_CODE_SCHEMES[scheme].fullmatch(code) is None:
        raise ContractError(
            "PRODUCT_CODE_INVALID", f"{code!r} is not a valid {scheme} product registration code."
        )
    return {"scheme": scheme, "code": code}


def op_amend(env: Env, args: Args) -> None:
    isin = args.str_("isin", max_len=12)
    immutable = [name for name in _IMMUTABLE if args.has(name)]
    if immutable:
        raise ContractError(
            "IMMUTABLE_FIELD", f"Field '{immutable[0]}' cannot be changed after registration."
        )
    changes = _descriptive(args)
    args.done()
    instrument = load_instrument(env.store, isin)
    _registrar_of(env, instrument)
    if instrument["status"] == "DEREGISTERED":
        raise ContractError("WRONG_STATE", f"Instrument {isin} is deregistered.")
    if not changes:
        raise bad("name", "or another amendable field must be given")
    previous = {name: instrument[name] for name in sorted(changes)}
    instrument.update(changes)
    instrument["version"] += 1
    env.store.put(instrument_key(isin), instrument)
    env.store.emit(
        "asset.amended",
        {"isin": isin, "version": instrument["version"], "previous": previous, "changes": changes},
        [_scope(isin)],
    )


def op_issue(env: Env, args: Args) -> None:
    isin = args.str_("isin", max_len=12)
    allotments = args.list_("allotments", max_items=1000)
    args.done()
    instrument = load_instrument(env.store, isin)
    _registrar_of(env, instrument)
    _require_status(instrument, "REGISTERED")
    if not allotments:
        raise bad("allotments", "must list at least one holder")
    seen: set[str] = set()
    parsed: list[tuple[str, int]] = []
    for index, item in enumerate(allotments):
        where = f"allotments[{index}]"
        entry = Args(item) if isinstance(item, dict) else None
        if entry is None:
            raise bad(where, "must be a map with holder and quantity")
        holder = entry.id_("holder")
        quantity = _quantity(entry, instrument)
        entry.done()
        if holder in seen:
            raise bad(where, f"names holder {holder} a second time")
        seen.add(holder)
        require_party(env.store, holder, "holder")
        parsed.append((holder, quantity))
    total = sum(quantity for _, quantity in parsed)
    if total != instrument["issue_size_minor"]:
        raise ContractError(
            "SUM_MISMATCH",
            f"Allotments total {total} but the issue size is {instrument['issue_size_minor']}.",
        )
    for holder, quantity in sorted(parsed):
        holding = load_holding(env.store, isin, holder)
        holding["available"] += quantity
        _save_holding(env.store, holding)
    instrument["status"] = "ACTIVE"
    instrument["outstanding_minor"] = total
    env.store.put(instrument_key(isin), instrument)
    env.store.emit(
        "asset.issued",
        {"isin": isin, "allotments": [[h, q] for h, q in sorted(parsed)], "total": total},
        [_scope(isin)],
    )


def op_transfer(env: Env, args: Args) -> None:
    isin = args.str_("isin", max_len=12)
    to = args.id_("to")
    source = args.id_("from", optional=True)
    reason = args.str_("reason", optional=True)
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
    _require_status(instrument, "ACTIVE")
    if to == seller:
        raise ContractError("SELF_DEALING", "A holding cannot be transferred to its own holder.")
    require_party(env.store, to, "to")
    holding = load_holding(env.store, isin, seller)
    if quantity > holding["available"]:
        raise _exceeds("transfer", quantity, holding["available"])
    holding["available"] -= quantity
    _save_holding(env.store, holding)
    receiver = load_holding(env.store, isin, to)
    receiver["available"] += quantity
    _save_holding(env.store, receiver)
    attrs: dict[str, Any] = {"isin": isin, "from": seller, "to": to, "quantity": quantity}
    if reason is not None:
        attrs["reason"] = reason
    env.store.emit("asset.transferred", attrs, [_scope(isin)])


def op_pledge(env: Env, args: Args) -> None:
    isin = args.str_("isin", max_len=12)
    pledgee = args.id_("pledgee")
    instrument = load_instrument(env.store, isin)
    quantity = _quantity(args, instrument)
    args.done()
    _require_status(instrument, "ACTIVE")
    if pledgee == env.sender.id:
        raise ContractError("SELF_DEALING", "A holder cannot pledge to itself.")
    require_party(env.store, pledgee, "pledgee")
    holding = load_holding(env.store, isin, env.sender.id)
    if quantity > holding["available"]:
        raise _exceeds("pledge", quantity, holding["available"])
    pledge_id = env.ctx.tx_id.hex()
    holding["available"] -= quantity
    holding["pledged"] += quantity
    holding["pledges"][pledge_id] = {"pledgee": pledgee, "quantity": quantity}
    _save_holding(env.store, holding)
    env.store.emit(
        "asset.pledged",
        {
            "isin": isin,
            "pledgor": env.sender.id,
            "pledgee": pledgee,
            "quantity": quantity,
            "pledge_id": pledge_id,
        },
        [_scope(isin)],
    )


def op_release(env: Env, args: Args) -> None:
    isin = args.str_("isin", max_len=12)
    pledgor = args.id_("pledgor")
    pledge_id = args.str_("pledge_id", pattern=re.compile(r"[0-9a-f]{2,128}"), max_len=128)
    args.done()
    instrument = load_instrument(env.store, isin)
    _require_status(instrument, "ACTIVE", "SUSPENDED")
    holding = load_holding(env.store, isin, pledgor)
    pledge = holding["pledges"].get(pledge_id)
    if pledge is None:
        raise ContractError("UNKNOWN_PLEDGE", f"{pledgor} has no pledge {pledge_id} on {isin}.")
    if pledge["pledgee"] != env.sender.id:
        raise ContractError("FORBIDDEN", f"Only the pledgee {pledge['pledgee']} may release it.")
    del holding["pledges"][pledge_id]
    holding["pledged"] -= pledge["quantity"]
    holding["available"] += pledge["quantity"]
    _save_holding(env.store, holding)
    env.store.emit(
        "asset.released",
        {
            "isin": isin,
            "pledgor": pledgor,
            "pledgee": env.sender.id,
            "quantity": pledge["quantity"],
            "pledge_id": pledge_id,
        },
        [_scope(isin)],
    )


def _freeze_authority(env: Env, instrument: dict[str, Any]) -> None:
    if not env.sender.has("regulator") and instrument["registrar"] != env.sender.id:
        raise ContractError(
            "FORBIDDEN", "Only a regulator or the instrument's registrar may freeze or unfreeze."
        )


def op_freeze(env: Env, args: Args) -> None:
    isin = args.str_("isin", max_len=12)
    holder = args.id_("holder")
    case_ref = args.str_("case_ref", pattern=_CASE_REF, max_len=64)
    instrument = load_instrument(env.store, isin)
    quantity = _quantity(args, instrument)
    args.done()
    _freeze_authority(env, instrument)
    _require_status(instrument, "ACTIVE", "SUSPENDED")
    holding = load_holding(env.store, isin, holder)
    if case_ref in holding["freezes"]:
        raise ContractError("DUPLICATE_CASE", f"Case {case_ref} already freezes this holding.")
    if quantity > holding["available"]:
        raise _exceeds("freeze", quantity, holding["available"])
    holding["available"] -= quantity
    holding["frozen"] += quantity
    holding["freezes"][case_ref] = {"authority": env.sender.id, "quantity": quantity}
    _save_holding(env.store, holding)
    env.store.emit(
        "asset.frozen",
        {"isin": isin, "holder": holder, "quantity": quantity, "case_ref": case_ref},
        [_scope(isin)],
    )


def op_unfreeze(env: Env, args: Args) -> None:
    isin = args.str_("isin", max_len=12)
    holder = args.id_("holder")
    case_ref = args.str_("case_ref", pattern=_CASE_REF, max_len=64)
    args.done()
    instrument = load_instrument(env.store, isin)
    _freeze_authority(env, instrument)
    holding = load_holding(env.store, isin, holder)
    freeze = holding["freezes"].get(case_ref)
    if freeze is None:
        raise ContractError("UNKNOWN_CASE", f"No freeze under case {case_ref} on this holding.")
    del holding["freezes"][case_ref]
    holding["frozen"] -= freeze["quantity"]
    holding["available"] += freeze["quantity"]
    _save_holding(env.store, holding)
    env.store.emit(
        "asset.unfrozen",
        {"isin": isin, "holder": holder, "quantity": freeze["quantity"], "case_ref": case_ref},
        [_scope(isin)],
    )


def _set_status(env: Env, args: Args, source: str, target: str, kind: str) -> None:
    isin = args.str_("isin", max_len=12)
    args.done()
    instrument = load_instrument(env.store, isin)
    _registrar_of(env, instrument)
    _require_status(instrument, source)
    instrument["status"] = target
    env.store.put(instrument_key(isin), instrument)
    env.store.emit(kind, {"isin": isin, "status": target}, [_scope(isin)])


def op_suspend(env: Env, args: Args) -> None:
    _set_status(env, args, "ACTIVE", "SUSPENDED", "asset.suspended")


def op_resume(env: Env, args: Args) -> None:
    _set_status(env, args, "SUSPENDED", "ACTIVE", "asset.resumed")


def op_redeem(env: Env, args: Args) -> None:
    isin = args.str_("isin", max_len=12)
    early = args.bool_("early")
    args.done()
    instrument = load_instrument(env.store, isin)
    _registrar_of(env, instrument)
    _require_status(instrument, "ACTIVE", "SUSPENDED")
    maturity = instrument["maturity_date"]
    if not early and (maturity is None or env.today < maturity):
        when = "has no maturity date" if maturity is None else f"matures on {day_to_iso(maturity)}"
        raise ContractError(
            "NOT_MATURE", f"Instrument {isin} {when}; redeem before it only as an early call."
        )
    holdings = [record for _, record in env.store.scan_objs(b"asset/h/" + isin.encode() + b"/")]
    encumbered = [h["holder"] for h in holdings if h["pledged"] or h["frozen"]]
    if encumbered:
        raise ContractError(
            "ENCUMBERED", f"The holding of {encumbered[0]} is pledged or frozen; release it first."
        )
    total = 0
    for holding in holdings:
        total += holding["available"]
        env.store.delete(holding_key(isin, holding["holder"]))
        env.store.delete(_index_key(holding["holder"], isin))
    assert total == instrument["outstanding_minor"]
    instrument["status"] = "REDEEMED" if early else "MATURED"
    instrument["outstanding_minor"] = 0
    env.store.put(instrument_key(isin), instrument)
    env.store.emit(
        "asset.redeemed",
        {"isin": isin, "status": instrument["status"], "redeemed_minor": total},
        [_scope(isin)],
    )


def op_deregister(env: Env, args: Args) -> None:
    isin = args.str_("isin", max_len=12)
    args.done()
    instrument = load_instrument(env.store, isin)
    _registrar_of(env, instrument)
    if instrument["status"] not in ("REGISTERED", "MATURED", "REDEEMED"):
        raise ContractError(
            "DEREGISTER_NOT_ALLOWED",
            f"Instrument {isin} is {instrument['status']}; only an unissued, matured or "
            "redeemed instrument can be deregistered.",
        )
    if instrument["outstanding_minor"] or any(
        True for _ in env.store.scan(b"asset/h/" + isin.encode() + b"/")
    ):
        raise ContractError("DEREGISTER_NOT_ALLOWED", f"Instrument {isin} still has holdings.")
    instrument["status"] = "DEREGISTERED"
    env.store.put(instrument_key(isin), instrument)
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
