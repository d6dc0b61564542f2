"""Asset registry (docs/domain.md Part C): each lifecycle transition of C.3, each rejection of C.5
(plus identifier errors from Part A), conservation of holdings, and holder/registrar/regulator
visibility of holdings and history."""

from __future__ import annotations

from typing import Any

import pytest

from ibledger.contracts.testing import fabricate_lei

ISIN = "CND10006PJH0"  # Treasury bond 230015
ISSUER = fabricate_lei(50)


def register_args(**override: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "isin": ISIN,
        "name": "Treasury bond 230015",
        "issuer_lei": ISSUER,
        "cfi": "DBFTFB",
        "currency": "CNY",
        "denomination_minor": 10_000,
        "issue_size_minor": 1_000_000,
        "issue_date": "2024-03-01",
        "maturity_date": "2025-03-01",
        "local_codes": [["CFETS_BOND", "230015"]],
    }
    args.update(override)
    return args


def active(w: Any) -> None:
    w.ok("REGISTRAR", "asset.register", **register_args())
    w.ok(
        "REGISTRAR",
        "asset.issue",
        isin=ISIN,
        allotments=[
            {"holder": "BANK_A", "quantity": 600_000},
            {"holder": "BANK_B", "quantity": 400_000},
        ],
    )


def holding(w: Any, holder: str) -> dict[str, Any]:
    rows = w.ledger.query("holders", {"isin": ISIN}, "REGULATOR")["holders"]
    found = [row for row in rows if row["holder"] == holder]
    return found[0] if found else {"available": 0, "pledged": 0, "frozen": 0, "quantity": 0}


def status(w: Any) -> str:
    return str(w.ledger.query("instrument", {"isin": ISIN})["status"])


def test_register_and_issue(world: Any) -> None:
    world.ok("REGISTRAR", "asset.register", **register_args())
    instrument = world.ledger.query("instrument", {"isin": ISIN})
    assert instrument["status"] == "REGISTERED" and instrument["maturity_date"] == "2025-03-01"
    assert instrument["local_codes"] == [["CFETS_BOND", "230015"]]
    world.ok(
        "REGISTRAR",
        "asset.issue",
        isin=ISIN,
        allotments=[
            {"holder": "BANK_A", "quantity": 600_000},
            {"holder": "BANK_B", "quantity": 400_000},
        ],
    )
    assert status(world) == "ACTIVE"
    assert holding(world, "BANK_A")["available"] == 600_000


def test_transfer_pledge_release_freeze_unfreeze(world: Any) -> None:
    active(world)
    world.ok("BANK_A", "asset.transfer", isin=ISIN, to="BANK_C", quantity=100_000)
    assert (holding(world, "BANK_A")["quantity"], holding(world, "BANK_C")["quantity"]) == (
        500_000,
        100_000,
    )
    out = world.ok("BANK_A", "asset.pledge", isin=ISIN, pledgee="BANK_B", quantity=200_000)
    pledge_id = out.events[0].attrs["pledge_id"]
    assert holding(world, "BANK_A")["pledged"] == 200_000
    world.fails(
        "QUANTITY_EXCEEDS_AVAILABLE",
        "BANK_A",
        "asset.transfer",
        isin=ISIN,
        to="BANK_C",
        quantity=400_000,
    )
    world.fails(
        "FORBIDDEN", "BANK_C", "asset.release", isin=ISIN, pledgor="BANK_A", pledge_id=pledge_id
    )
    world.ok("BANK_B", "asset.release", isin=ISIN, pledgor="BANK_A", pledge_id=pledge_id)
    world.fails(
        "UNKNOWN_PLEDGE",
        "BANK_B",
        "asset.release",
        isin=ISIN,
        pledgor="BANK_A",
        pledge_id=pledge_id,
    )
    world.fails(
        "FORBIDDEN",
        "BANK_C",
        "asset.freeze",
        isin=ISIN,
        holder="BANK_A",
        quantity=10_000,
        case_ref="COURT/2024/1",
    )
    world.ok(
        "REGULATOR",
        "asset.freeze",
        isin=ISIN,
        holder="BANK_A",
        quantity=500_000,
        case_ref="COURT/2024/1",
    )
    world.fails(
        "DUPLICATE_CASE",
        "REGULATOR",
        "asset.freeze",
        isin=ISIN,
        holder="BANK_A",
        quantity=10_000,
        case_ref="COURT/2024/1",
    )
    world.fails(
        "QUANTITY_EXCEEDS_AVAILABLE",
        "BANK_A",
        "asset.pledge",
        isin=ISIN,
        pledgee="BANK_B",
        quantity=10_000,
    )
    world.ok("REGISTRAR", "asset.unfreeze", isin=ISIN, holder="BANK_A", case_ref="COURT/2024/1")
    world.fails(
        "UNKNOWN_CASE",
        "REGISTRAR",
        "asset.unfreeze",
        isin=ISIN,
        holder="BANK_A",
        case_ref="COURT/2024/1",
    )
    assert holding(world, "BANK_A")["available"] == 500_000


def test_registrar_non_trade_transfer_needs_a_reason(world: Any) -> None:
    active(world)
    world.fails(
        "BAD_ARGUMENT",
        "REGISTRAR",
        "asset.transfer",
        **{"isin": ISIN, "from": "BANK_A", "to": "ENT_A", "quantity": 10_000},
    )
    world.ok(
        "REGISTRAR",
        "asset.transfer",
        **{
            "isin": ISIN,
            "from": "BANK_A",
            "to": "ENT_A",
            "quantity": 10_000,
            "reason": "court order 7",
        },
    )
    world.fails(
        "FORBIDDEN",
        "BANK_B",
        "asset.transfer",
        **{"isin": ISIN, "from": "BANK_A", "to": "ENT_A", "quantity": 10_000, "reason": "x"},
    )


def test_amend_keeps_history_and_refuses_immutable_fields(world: Any) -> None:
    active(world)
    world.ok("REGISTRAR", "asset.amend", isin=ISIN, name="23 附息国债 15", risk_rating="R1")
    instrument = world.ledger.query("instrument", {"isin": ISIN})
    assert instrument["version"] == 2 and instrument["risk_rating"] == "R1"
    history = world.ledger.query("asset_history", {"isin": ISIN}, "REGISTRAR")
    assert [e["kind"] for e in history] == ["asset.registered", "asset.issued", "asset.amended"]
    assert history[-1]["attrs"]["previous"]["name"] == "Treasury bond 230015"
    assert all(entry["height"] > 0 and entry["timestamp_ms"] > 0 for entry in history)
    for field, value in [
        ("currency", "USD"),
        ("issuer_lei", fabricate_lei(51)),
        ("maturity_date", "2026-03-01"),
        ("denomination_minor", 1),
    ]:
        world.fails("IMMUTABLE_FIELD", "REGISTRAR", "asset.amend", isin=ISIN, **{field: value})


def test_lifecycle_suspend_redeem_deregister(world: Any) -> None:
    active(world)
    world.ok("REGISTRAR", "asset.suspend", isin=ISIN)
    world.fails(
        "INSTRUMENT_NOT_ACTIVE", "BANK_A", "asset.transfer", isin=ISIN, to="BANK_C", quantity=10_000
    )
    world.ok("REGISTRAR", "asset.resume", isin=ISIN)
    world.fails("NOT_MATURE", "REGISTRAR", "asset.redeem", isin=ISIN)
    world.fails("DEREGISTER_NOT_ALLOWED", "REGISTRAR", "asset.deregister", isin=ISIN)
    world.ok("BANK_A", "asset.pledge", isin=ISIN, pledgee="BANK_B", quantity=10_000)
    world.ledger.set_date("2025-03-01")
    world.fails("ENCUMBERED", "REGISTRAR", "asset.redeem", isin=ISIN)
    pledge = world.ledger.query("holdings", {"holder": "BANK_A"}, "BANK_A")[0]["pledges"]
    (pledge_id,) = pledge
    world.ok("BANK_B", "asset.release", isin=ISIN, pledgor="BANK_A", pledge_id=pledge_id)
    world.ok("REGISTRAR", "asset.redeem", isin=ISIN)
    assert status(world) == "MATURED"
    assert world.ledger.query("holders", {"isin": ISIN}, "REGULATOR")["holders"] == []
    world.ok("REGISTRAR", "asset.deregister", isin=ISIN)
    assert status(world) == "DEREGISTERED"
    world.fails("WRONG_STATE", "REGISTRAR", "asset.amend", isin=ISIN, name="x")


def test_early_call_redeems(world: Any) -> None:
    active(world)
    world.ok("REGISTRAR", "asset.redeem", isin=ISIN, early=True)
    assert status(world) == "REDEEMED"


def test_wealth_management_product_needs_its_registration_code(world: Any) -> None:
    body = "CNE00000001"
    from ibledger.contracts.identifiers import isin_check_digit

    isin = body + str(isin_check_digit(body))
    args = register_args(isin=isin, cfi="CIOGEU", name="WM product")
    world.fails("BAD_ARGUMENT", "REGISTRAR", "asset.register", **args)
    world.fails(
        "PRODUCT_CODE_INVALID",
        "REGISTRAR",
        "asset.register",
        **args,
        product_reg_code={"scheme": "WM", "code": "Z70010250012"},
    )
    world.fails(
        "PRODUCT_CODE_INVALID",
        "REGISTRAR",
        "asset.register",
        **args,
        product_reg_code={"scheme": "XX", "code": "Z7001025001218"},
    )
    world.ok(
        "REGISTRAR",
        "asset.register",
        **args,
        product_reg_code={"scheme": "WM", "code": "Z7001025001218"},
        product_category="FIXED_INCOME",
        risk_rating="PR2",
    )
    world.fails(
        "DUPLICATE_INSTRUMENT",
        "REGISTRAR",
        "asset.register",
        **register_args(product_reg_code={"scheme": "WM", "code": "Z7001025001218"}),
    )


REJECTIONS: list[tuple[str, str, str, str, dict[str, Any]]] = [
    (
        "ISIN with a bad check digit",
        "ISIN_INVALID",
        "REGISTRAR",
        "asset.register",
        register_args(isin="CND10006PJH1"),
    ),
    (
        "ISIN with a pseudo-prefix",
        "ISIN_INVALID",
        "REGISTRAR",
        "asset.register",
        register_args(isin="XF0000000006"),
    ),
    (
        "LEI with a bad check digit",
        "LEI_INVALID",
        "REGISTRAR",
        "asset.register",
        register_args(issuer_lei="5493002ERZU2K9PZDL41"),
    ),
    (
        "USCC with a bad check character",
        "USCC_INVALID",
        "REGISTRAR",
        "asset.register",
        register_args(issuer_uscc="911000001000044477"),
    ),
    (
        "CFI group outside its category",
        "CFI_INVALID",
        "REGISTRAR",
        "asset.register",
        register_args(cfi="DZXXXX"),
    ),
    (
        "unknown currency",
        "CURRENCY_INVALID",
        "REGISTRAR",
        "asset.register",
        register_args(currency="RMB"),
    ),
    (
        "maturity before issue",
        "BAD_ARGUMENT",
        "REGISTRAR",
        "asset.register",
        register_args(maturity_date="2024-02-01"),
    ),
    (
        "issue size not in denominations",
        "QUANTITY_INVALID",
        "REGISTRAR",
        "asset.register",
        register_args(issue_size_minor=1_000_001),
    ),
    ("register by a bank", "FORBIDDEN", "BANK_A", "asset.register", register_args()),
    (
        "transfer of an unknown instrument",
        "UNKNOWN_INSTRUMENT",
        "BANK_A",
        "asset.transfer",
        {"isin": "US0378331005", "to": "BANK_B", "quantity": 10_000},
    ),
]


@pytest.mark.parametrize(
    ("name", "code", "sender", "operation", "args"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
def test_register_rejections(
    world: Any, name: str, code: str, sender: str, operation: str, args: dict[str, Any]
) -> None:
    world.fails(code, sender, operation, **args)


ACTIVE_REJECTIONS: list[tuple[str, str, str, str, dict[str, Any]]] = [
    ("duplicate ISIN", "DUPLICATE_INSTRUMENT", "REGISTRAR", "asset.register", register_args()),
    (
        "issue twice",
        "WRONG_STATE",
        "REGISTRAR",
        "asset.issue",
        {"isin": ISIN, "allotments": [{"holder": "BANK_A", "quantity": 1_000_000}]},
    ),
    (
        "transfer more than held",
        "QUANTITY_EXCEEDS_AVAILABLE",
        "BANK_B",
        "asset.transfer",
        {"isin": ISIN, "to": "BANK_C", "quantity": 410_000},
    ),
    (
        "transfer by a non-holder",
        "QUANTITY_EXCEEDS_AVAILABLE",
        "BANK_C",
        "asset.transfer",
        {"isin": ISIN, "to": "BANK_A", "quantity": 10_000},
    ),
    (
        "quantity not in denominations",
        "QUANTITY_INVALID",
        "BANK_A",
        "asset.transfer",
        {"isin": ISIN, "to": "BANK_C", "quantity": 5},
    ),
    (
        "negative quantity",
        "BAD_ARGUMENT",
        "BANK_A",
        "asset.transfer",
        {"isin": ISIN, "to": "BANK_C", "quantity": -10_000},
    ),
    (
        "transfer to oneself",
        "SELF_DEALING",
        "BANK_A",
        "asset.transfer",
        {"isin": ISIN, "to": "BANK_A", "quantity": 10_000},
    ),
    (
        "transfer to an unregistered party",
        "PARTY_NOT_REGISTERED",
        "BANK_A",
        "asset.transfer",
        {"isin": ISIN, "to": "GHOST", "quantity": 10_000},
    ),
    (
        "amend by another registrar",
        "FORBIDDEN",
        "ADMIN",
        "asset.amend",
        {"isin": ISIN, "name": "x"},
    ),
    (
        "deregister while outstanding",
        "DEREGISTER_NOT_ALLOWED",
        "REGISTRAR",
        "asset.deregister",
        {"isin": ISIN},
    ),
]


@pytest.mark.parametrize(
    ("name", "code", "sender", "operation", "args"),
    ACTIVE_REJECTIONS,
    ids=[r[0] for r in ACTIVE_REJECTIONS],
)
def test_active_instrument_rejections(
    world: Any, name: str, code: str, sender: str, operation: str, args: dict[str, Any]
) -> None:
    active(world)
    world.fails(code, sender, operation, **args)


def test_issue_must_allot_the_whole_issue(world: Any) -> None:
    world.ok("REGISTRAR", "asset.register", **register_args())
    world.fails(
        "SUM_MISMATCH",
        "REGISTRAR",
        "asset.issue",
        isin=ISIN,
        allotments=[{"holder": "BANK_A", "quantity": 900_000}],
    )
    world.fails(
        "INSTRUMENT_NOT_ACTIVE", "BANK_A", "asset.transfer", isin=ISIN, to="BANK_C", quantity=10_000
    )
    world.fails(
        "BAD_ARGUMENT",
        "REGISTRAR",
        "asset.issue",
        isin=ISIN,
        allotments=[
            {"holder": "BANK_A", "quantity": 500_000},
            {"holder": "BANK_A", "quantity": 500_000},
        ],
    )


def test_holdings_visibility(world: Any) -> None:
    active(world)
    world.ok("BANK_A", "asset.transfer", isin=ISIN, to="ENT_A", quantity=10_000)
    query = world.ledger.query
    assert query("holders", {"isin": ISIN}, "REGISTRAR")["complete"]
    mine = query("holders", {"isin": ISIN}, "ENT_A")
    assert not mine["complete"] and [r["holder"] for r in mine["holders"]] == ["ENT_A"]
    assert [r["holder"] for r in query("holders", {"isin": ISIN}, None)["holders"]] == []
    assert [h["isin"] for h in query("holdings", {"holder": "ENT_A"}, "ENT_A")] == [ISIN]
    assert len(query("holdings", {"holder": "ENT_A"}, "REGISTRAR")) == 1
    from ibledger.contracts.errors import QueryError

    with pytest.raises(QueryError) as raised:
        query("holdings", {"holder": "ENT_A"}, "ENT_B")
    assert raised.value.code == "FORBIDDEN"
    history = query("asset_history", {"isin": ISIN}, "ENT_A")
    assert [e["kind"] for e in history] == ["asset.transferred"]
