"""Asset registry (docs/domain.md Part C): each lifecycle transition of C.3, each rejection of C.5
(plus identifier errors from Part A), conservation of holdings, and holder/registrar/regulator
visibility of holdings and history.

Two-step transfers and pledges (C.3): request, sign, reject, revoke and time-out; the reserved
quantity cannot be used twice while a request is pending, and every path that does not sign
gives back exactly what it reserved."""

from __future__ import annotations

from typing import Any

import pytest

from ibledger.contracts.args import day_to_iso, parse_iso_date
from ibledger.contracts.errors import QueryError
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
    empty = {"available": 0, "pledged": 0, "frozen": 0, "reserved": 0, "quantity": 0}
    return found[0] if found else empty


def ask(w: Any, sender: str, operation: str, **args: Any) -> str:
    """Make a transfer or pledge request; its id."""
    outcome = w.ok(sender, operation, isin=ISIN, **args)
    (event,) = [e for e in outcome.events if e.kind == "asset.requested"]
    return str(event.attrs["request_id"])


def transfer(w: Any, sender: str, to: str, quantity: int, **extra: Any) -> str:
    """A transfer, requested and signed by the buyer; the request id."""
    request_id = ask(w, sender, "asset.transfer", to=to, quantity=quantity, **extra)
    w.ok(to, "asset.sign", request_id=request_id)
    return request_id


def pledge(w: Any, pledgor: str, pledgee: str, quantity: int) -> str:
    """A pledge, requested and signed by the pledgee; the pledge id (= the request id)."""
    request_id = ask(w, pledgor, "asset.pledge", pledgee=pledgee, quantity=quantity)
    outcome = w.ok(pledgee, "asset.sign", request_id=request_id)
    (event,) = [e for e in outcome.events if e.kind == "asset.pledged"]
    assert event.attrs["pledge_id"] == request_id
    return request_id


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
    transfer(world, "BANK_A", "BANK_C", 100_000)
    assert (holding(world, "BANK_A")["quantity"], holding(world, "BANK_C")["quantity"]) == (
        500_000,
        100_000,
    )
    pledge_id = pledge(world, "BANK_A", "BANK_B", 200_000)
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
    request_id = ask(
        world,
        "REGISTRAR",
        "asset.transfer",
        to="ENT_A",
        quantity=10_000,
        reason="court order 7",
        **{"from": "BANK_A"},
    )
    assert holding(world, "BANK_A")["reserved"] == 10_000
    world.fails("SIGNATURE_INVALID", "BANK_A", "asset.revoke", request_id=request_id)
    out = world.ok("ENT_A", "asset.sign", request_id=request_id)
    (moved,) = [e for e in out.events if e.kind == "asset.transferred"]
    assert moved.attrs["reason"] == "court order 7" and moved.attrs["initiator"] == "REGISTRAR"
    assert (holding(world, "BANK_A")["quantity"], holding(world, "ENT_A")["quantity"]) == (
        590_000,
        10_000,
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
    pledge_id = pledge(world, "BANK_A", "BANK_B", 10_000)
    world.ledger.set_date("2025-03-01")
    world.fails("ENCUMBERED", "REGISTRAR", "asset.redeem", isin=ISIN)
    pledges = world.ledger.query("holdings", {"holder": "BANK_A"}, "BANK_A")[0]["pledges"]
    assert list(pledges) == [pledge_id]
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
    transfer(world, "BANK_A", "ENT_A", 10_000)
    query = world.ledger.query
    assert query("holders", {"isin": ISIN}, "REGISTRAR")["complete"]
    mine = query("holders", {"isin": ISIN}, "ENT_A")
    assert not mine["complete"] and [r["holder"] for r in mine["holders"]] == ["ENT_A"]
    assert [r["holder"] for r in query("holders", {"isin": ISIN}, None)["holders"]] == []
    assert [h["isin"] for h in query("holdings", {"holder": "ENT_A"}, "ENT_A")] == [ISIN]
    assert len(query("holdings", {"holder": "ENT_A"}, "REGISTRAR")) == 1
    with pytest.raises(QueryError) as raised:
        query("holdings", {"holder": "ENT_A"}, "ENT_B")
    assert raised.value.code == "FORBIDDEN"
    history = query("asset_history", {"isin": ISIN}, "ENT_A")
    assert [e["kind"] for e in history] == ["asset.requested", "asset.transferred"]


# --- two-step transfers and pledges -----------------------------------------------------------


def asked(w: Any, sender: str, operation: str, **args: Any) -> tuple[str, str]:
    """Make a request; its id and its last day."""
    outcome = w.ok(sender, operation, isin=ISIN, **args)
    (event,) = [e for e in outcome.events if e.kind == "asset.requested"]
    return str(event.attrs["request_id"]), str(event.attrs["expires"])


def parts(w: Any, holder: str) -> tuple[int, int, int, int]:
    row = holding(w, holder)
    return row["available"], row["reserved"], row["pledged"], row["frozen"]


def ledger_state(w: Any) -> list[tuple[bytes, bytes]]:
    """Every state entry but the history, the nonces, the request records and the registry's
    versions (all of which grow with each transaction)."""
    return [
        (key, value)
        for key, value in w.ledger.state.items()
        if not key.startswith((b"hist/", b"nonce/", b"areq/", b"ver/"))
    ]


def request_record(w: Any, request_id: str) -> dict[str, Any]:
    result: dict[str, Any] = w.ledger.query("asset_request", {"request_id": request_id}, "BANK_A")
    return result


def test_transfer_signed_by_the_buyer_moves_the_quantity(world: Any) -> None:
    active(world)
    request_id, _ = asked(world, "BANK_A", "asset.transfer", to="BANK_C", quantity=100_000)
    assert parts(world, "BANK_A") == (500_000, 100_000, 0, 0)
    assert holding(world, "BANK_A")["quantity"] == 600_000  # still the seller's until signed
    assert holding(world, "BANK_C")["quantity"] == 0
    pending = world.ledger.query("asset_requests", {"participant": "BANK_C"}, "BANK_C")
    assert [(r["id"], r["status"], r["action"]) for r in pending] == [
        (request_id, "PENDING", "TRANSFER")
    ]
    out = world.ok("BANK_C", "asset.sign", request_id=request_id)
    (event,) = out.events
    assert event.kind == "asset.transferred"
    assert (event.attrs["from"], event.attrs["to"], event.attrs["quantity"]) == (
        "BANK_A",
        "BANK_C",
        100_000,
    )
    assert parts(world, "BANK_A") == (500_000, 0, 0, 0)
    assert parts(world, "BANK_C") == (100_000, 0, 0, 0)
    assert request_record(world, request_id)["status"] == "SIGNED"
    assert world.ledger.query("asset_requests", {"participant": "BANK_A"}, "BANK_A") == []
    world.fails("DUPLICATE_ANSWER", "BANK_C", "asset.sign", request_id=request_id)
    world.fails("DUPLICATE_ANSWER", "BANK_C", "asset.reject", request_id=request_id)
    world.fails("DUPLICATE_ANSWER", "BANK_A", "asset.revoke", request_id=request_id)


def test_pledge_signed_by_the_pledgee_becomes_a_pledge(world: Any) -> None:
    active(world)
    request_id, _ = asked(world, "BANK_A", "asset.pledge", pledgee="BANK_B", quantity=200_000)
    assert parts(world, "BANK_A") == (400_000, 200_000, 0, 0)
    world.fails(
        "UNKNOWN_PLEDGE",
        "BANK_B",
        "asset.release",
        isin=ISIN,
        pledgor="BANK_A",
        pledge_id=request_id,
    )
    out = world.ok("BANK_B", "asset.sign", request_id=request_id)
    assert [e.kind for e in out.events] == ["asset.pledged"]
    assert out.events[0].attrs["pledge_id"] == request_id
    assert parts(world, "BANK_A") == (400_000, 0, 200_000, 0)
    assert holding(world, "BANK_A")["pledges"] == {
        request_id: {"pledgee": "BANK_B", "quantity": 200_000}
    }
    world.ok("BANK_B", "asset.release", isin=ISIN, pledgor="BANK_A", pledge_id=request_id)
    assert parts(world, "BANK_A") == (600_000, 0, 0, 0)


@pytest.mark.parametrize("operation", ["asset.transfer", "asset.pledge"])
@pytest.mark.parametrize("answer", ["reject", "revoke"])
def test_reject_and_revoke_restore_the_holding_exactly(
    world: Any, operation: str, answer: str
) -> None:
    active(world)
    before = ledger_state(world)
    counterparty = {"to": "BANK_C"} if operation == "asset.transfer" else {"pledgee": "BANK_C"}
    request_id, _ = asked(world, "BANK_A", operation, quantity=100_000, **counterparty)
    assert ledger_state(world) != before
    if answer == "reject":
        out = world.ok("BANK_C", "asset.reject", request_id=request_id, reason="no mandate")
        assert out.events[0].attrs["answer"] == "no mandate"
        expected = "REJECTED"
    else:
        out = world.ok("BANK_A", "asset.revoke", request_id=request_id)
        expected = "REVOKED"
    assert [e.kind for e in out.events] == [f"asset.request_{expected.lower()}"]
    assert ledger_state(world) == before
    assert request_record(world, request_id)["status"] == expected
    again = "DUPLICATE_ANSWER" if answer == "reject" else "REQUEST_NOT_PENDING"
    world.fails(again, "BANK_C", "asset.sign", request_id=request_id)


@pytest.mark.parametrize("operation", ["asset.transfer", "asset.pledge"])
def test_time_out_restores_the_holding_exactly(world: Any, operation: str) -> None:
    active(world)
    before = ledger_state(world)
    counterparty = {"to": "BANK_C"} if operation == "asset.transfer" else {"pledgee": "BANK_C"}
    request_id, expires = asked(world, "BANK_A", operation, quantity=100_000, **counterparty)
    last_day = parse_iso_date(expires)
    assert last_day is not None and expires > "2024-03-01"
    world.ledger.set_date(expires)
    world.ok("ADMIN", "asset.sweep", isin=ISIN)  # nothing is due on the last day
    assert parts(world, "BANK_A") == (500_000, 100_000, 0, 0)
    world.ledger.set_date(day_to_iso(last_day + 1))
    # An answer after the last day finds the request cleared (and, refused, writes nothing).
    world.fails("REQUEST_NOT_PENDING", "BANK_C", "asset.sign", request_id=request_id)
    world.fails("REQUEST_NOT_PENDING", "BANK_A", "asset.revoke", request_id=request_id)
    out = world.ok("BANK_B", "asset.sweep", isin=ISIN)  # a holder may sweep
    (event,) = out.events
    assert event.kind == "asset.request_cleared" and event.attrs["request_id"] == request_id
    assert ledger_state(world) == before
    cleared = request_record(world, request_id)
    assert cleared["status"] == "CLEARED"
    assert cleared["closed_day"] == day_to_iso(last_day + 1)
    world.fails("REQUEST_NOT_PENDING", "BANK_C", "asset.sign", request_id=request_id)


def test_a_due_time_out_is_applied_by_the_next_operation_on_the_holding(world: Any) -> None:
    active(world)
    request_id, expires = asked(world, "BANK_A", "asset.transfer", to="BANK_C", quantity=600_000)
    world.fails(
        "QUANTITY_EXCEEDS_AVAILABLE",
        "BANK_A",
        "asset.transfer",
        isin=ISIN,
        to="BANK_B",
        quantity=10_000,
    )
    last_day = parse_iso_date(expires)
    assert last_day is not None
    world.ledger.set_date(day_to_iso(last_day + 5))
    out = world.ok("BANK_A", "asset.transfer", isin=ISIN, to="BANK_B", quantity=600_000)
    assert [e.kind for e in out.events] == ["asset.request_cleared", "asset.requested"]
    assert request_record(world, request_id)["closed_day"] == day_to_iso(last_day + 1)
    assert parts(world, "BANK_A") == (0, 600_000, 0, 0)


def test_the_reserved_quantity_cannot_be_used_twice(world: Any) -> None:
    active(world)
    request_id, _ = asked(world, "BANK_A", "asset.transfer", to="BANK_C", quantity=500_000)
    for operation, args in [
        ("asset.transfer", {"to": "ENT_A", "quantity": 200_000}),
        ("asset.pledge", {"pledgee": "BANK_B", "quantity": 200_000}),
    ]:
        world.fails("QUANTITY_EXCEEDS_AVAILABLE", "BANK_A", operation, isin=ISIN, **args)
    world.fails(
        "QUANTITY_EXCEEDS_AVAILABLE",
        "REGULATOR",
        "asset.freeze",
        isin=ISIN,
        holder="BANK_A",
        quantity=200_000,
        case_ref="CASE-1",
    )
    # A registrar's non-trade transfer cannot take the reserved quantity either.
    world.fails(
        "QUANTITY_EXCEEDS_AVAILABLE",
        "REGISTRAR",
        "asset.transfer",
        **{"isin": ISIN, "from": "BANK_A", "to": "ENT_A", "quantity": 200_000, "reason": "order"},
    )
    # What is still available can be requested, frozen, and the freeze does not touch the
    # reservation: the pending transfer still signs for exactly its quantity.
    second, _ = asked(world, "BANK_A", "asset.pledge", pledgee="BANK_B", quantity=50_000)
    world.ok(
        "REGULATOR",
        "asset.freeze",
        isin=ISIN,
        holder="BANK_A",
        quantity=50_000,
        case_ref="CASE-1",
    )
    assert parts(world, "BANK_A") == (0, 550_000, 0, 50_000)
    world.ok("REGISTRAR", "asset.unfreeze", isin=ISIN, holder="BANK_A", case_ref="CASE-1")
    world.ok("BANK_C", "asset.sign", request_id=request_id)
    world.ok("BANK_B", "asset.reject", request_id=second)
    assert parts(world, "BANK_A") == (100_000, 0, 0, 0)
    assert parts(world, "BANK_C") == (500_000, 0, 0, 0)


def test_redemption_waits_for_pending_requests(world: Any) -> None:
    active(world)
    request_id, expires = asked(world, "BANK_B", "asset.pledge", pledgee="BANK_A", quantity=10_000)
    world.fails("REQUEST_PENDING", "REGISTRAR", "asset.redeem", isin=ISIN, early=True)
    world.fails("DEREGISTER_NOT_ALLOWED", "REGISTRAR", "asset.deregister", isin=ISIN)
    last_day = parse_iso_date(expires)
    assert last_day is not None
    world.ledger.set_date(day_to_iso(last_day + 1))
    out = world.ok("REGISTRAR", "asset.redeem", isin=ISIN, early=True)
    assert [e.kind for e in out.events] == ["asset.request_cleared", "asset.redeemed"]
    assert out.events[1].attrs["redeemed_minor"] == 1_000_000
    world.fails("REQUEST_NOT_PENDING", "BANK_A", "asset.sign", request_id=request_id)


def test_wrong_signer_and_unknown_request(world: Any) -> None:
    active(world)
    transfer_id, _ = asked(world, "BANK_A", "asset.transfer", to="BANK_C", quantity=10_000)
    pledge_id, _ = asked(world, "BANK_A", "asset.pledge", pledgee="BANK_B", quantity=10_000)
    for sender in ("BANK_A", "BANK_B", "REGISTRAR", "REGULATOR"):
        world.fails("SIGNATURE_INVALID", sender, "asset.sign", request_id=transfer_id)
        world.fails("SIGNATURE_INVALID", sender, "asset.reject", request_id=transfer_id)
    world.fails("SIGNATURE_INVALID", "BANK_C", "asset.sign", request_id=pledge_id)
    world.fails("SIGNATURE_INVALID", "BANK_B", "asset.revoke", request_id=pledge_id)
    world.fails("SIGNATURE_INVALID", "BANK_C", "asset.revoke", request_id=transfer_id)
    world.fails("UNKNOWN_REQUEST", "BANK_C", "asset.sign", request_id="ab" * 32)
    world.fails("UNKNOWN_REQUEST", "BANK_C", "asset.reject", request_id="ab" * 32)
    world.fails("UNKNOWN_REQUEST", "BANK_A", "asset.revoke", request_id="ab" * 32)
    world.fails("BAD_ARGUMENT", "BANK_C", "asset.sign", request_id=transfer_id, quantity=1)
    world.fails("BAD_ARGUMENT", "BANK_C", "asset.sign")
    # A bill's request id names no asset request.
    world.fails("UNKNOWN_REQUEST", "BANK_C", "bill.sign", request_id=transfer_id)


def test_requests_on_a_suspended_instrument_or_a_frozen_holding(world: Any) -> None:
    active(world)
    world.ok(
        "REGULATOR",
        "asset.freeze",
        isin=ISIN,
        holder="BANK_B",
        quantity=400_000,
        case_ref="CASE-9",
    )
    for operation, args in [
        ("asset.transfer", {"to": "BANK_C", "quantity": 10_000}),
        ("asset.pledge", {"pledgee": "BANK_C", "quantity": 10_000}),
    ]:
        world.fails("QUANTITY_EXCEEDS_AVAILABLE", "BANK_B", operation, isin=ISIN, **args)
    signed, _ = asked(world, "BANK_A", "asset.transfer", to="BANK_C", quantity=10_000)
    rejected, _ = asked(world, "BANK_A", "asset.pledge", pledgee="BANK_C", quantity=10_000)
    revoked, _ = asked(world, "BANK_A", "asset.transfer", to="ENT_A", quantity=10_000)
    world.ok("REGISTRAR", "asset.suspend", isin=ISIN)
    for operation, args in [
        ("asset.transfer", {"to": "BANK_C", "quantity": 10_000}),
        ("asset.pledge", {"pledgee": "BANK_C", "quantity": 10_000}),
    ]:
        world.fails("INSTRUMENT_NOT_ACTIVE", "BANK_A", operation, isin=ISIN, **args)
    world.fails("INSTRUMENT_NOT_ACTIVE", "BANK_C", "asset.sign", request_id=signed)
    # Releasing a reservation moves nothing to anyone: allowed while suspended.
    world.ok("BANK_C", "asset.reject", request_id=rejected)
    world.ok("BANK_A", "asset.revoke", request_id=revoked)
    world.ok("REGISTRAR", "asset.resume", isin=ISIN)
    world.ok("BANK_C", "asset.sign", request_id=signed)
    assert parts(world, "BANK_A") == (590_000, 0, 0, 0)


def test_sweep_permissions_and_request_visibility(world: Any) -> None:
    active(world)
    request_id, _ = asked(world, "BANK_A", "asset.transfer", to="BANK_C", quantity=10_000)
    world.fails("FORBIDDEN", "ENT_A", "asset.sweep", isin=ISIN)
    world.fails("UNKNOWN_INSTRUMENT", "ADMIN", "asset.sweep", isin="US0378331005")
    world.ok("REGISTRAR", "asset.sweep", isin=ISIN)
    query = world.ledger.query
    for viewer in ("BANK_A", "BANK_C", "REGULATOR", "REGISTRAR"):
        assert query("asset_request", {"request_id": request_id}, viewer)["quantity"] == 10_000
    for viewer in ("ENT_A", None):
        with pytest.raises(QueryError) as raised:
            query("asset_request", {"request_id": request_id}, viewer)
        assert raised.value.code == "FORBIDDEN"
    with pytest.raises(QueryError) as raised:
        query("asset_request", {"request_id": "ab" * 32}, "BANK_A")
    assert raised.value.code == "NOT_FOUND"
    with pytest.raises(QueryError) as raised:
        query("asset_requests", {"participant": "BANK_A"}, "BANK_C")
    assert raised.value.code == "FORBIDDEN"
    assert [r["id"] for r in query("asset_requests", {"participant": "BANK_A"}, "REGULATOR")] == [
        request_id
    ]
    history = query("asset_history", {"isin": ISIN}, "BANK_C")
    assert [e["kind"] for e in history] == ["asset.requested"]
    assert query("asset_history", {"isin": ISIN}, "ENT_A") == []


def test_conservation_across_every_path(world: Any) -> None:
    """Total quantity stays the outstanding amount through sign, reject, revoke and time-out."""
    world.ok("REGISTRAR", "asset.register", **register_args())
    active_ids = []
    world.ok(
        "REGISTRAR",
        "asset.issue",
        isin=ISIN,
        allotments=[{"holder": "BANK_A", "quantity": 1_000_000}],
    )
    for to in ("BANK_B", "BANK_C", "ENT_A", "ENT_B"):
        active_ids.append(asked(world, "BANK_A", "asset.transfer", to=to, quantity=100_000)[0])
    world.ok("BANK_B", "asset.sign", request_id=active_ids[0])
    world.ok("BANK_C", "asset.reject", request_id=active_ids[1])
    world.ok("BANK_A", "asset.revoke", request_id=active_ids[2])
    world.ledger.advance_days(30)
    world.ok("ADMIN", "asset.sweep", isin=ISIN)
    rows = world.ledger.query("holders", {"isin": ISIN}, "REGULATOR")
    assert sum(r["quantity"] for r in rows["holders"]) == rows["outstanding_minor"] == 1_000_000
    assert {r["holder"]: r["available"] for r in rows["holders"]} == {
        "BANK_A": 900_000,
        "BANK_B": 100_000,
    }
    statuses = [request_record(world, i)["status"] for i in active_ids]
    assert statuses == ["SIGNED", "REJECTED", "REVOKED", "CLEARED"]
