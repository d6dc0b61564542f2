"""Look-through supervision (docs/domain.md C.4): products holding products, the nesting limit
and cycles, ultimate owners with exact shares, underlying assets, exposures by issuer group, CFI
category and currency, answers as of a past height, and who may ask."""

from __future__ import annotations

from typing import Any

import pytest

from ibledger.contracts.codec import canonical_encode
from ibledger.contracts.errors import GenesisError, QueryError
from ibledger.contracts.identifiers import isin_check_digit
from ibledger.contracts.nesting import names_instrument
from ibledger.contracts.runtime import genesis_writes
from ibledger.contracts.testing import TestLedger, demo_genesis, fabricate_lei

# The ``world`` fixture (conftest.py): a test ledger with shortcuts.
World = Any

ISSUER = fabricate_lei(60)
PARENT = fabricate_lei(61)
OTHER_ISSUER = fabricate_lei(62)
BOND = "CND10006PJH0"  # treasury bond 230015
FUND_CFI = "CIOGSU"  # C = collective investment vehicle, I = standard fund


def isin(serial: int) -> str:
    body = f"CN{serial:09d}"
    return body + str(isin_check_digit(body))


F1, F2, F3, F4, F5 = (isin(n) for n in range(101, 106))


def make_world(world: World, max_nesting_depth: int | None = None) -> World:
    """``world`` on a fresh ledger whose genesis sets ``max_nesting_depth``."""
    genesis = demo_genesis()
    if max_nesting_depth is not None:
        genesis["parameters"] = {"max_nesting_depth": max_nesting_depth}
    world.ledger = TestLedger(genesis)
    return world


def register(
    w: World,
    code: str,
    *,
    cfi: str = FUND_CFI,
    size: int = 3,
    denomination: int = 1,
    issuer: str = ISSUER,
    currency: str = "CNY",
    parents: list[str] | None = None,
) -> None:
    args: dict[str, Any] = {
        "isin": code,
        "name": f"Instrument {code}",
        "issuer_lei": issuer,
        "cfi": cfi,
        "currency": currency,
        "denomination_minor": denomination,
        "issue_size_minor": size,
        "issue_date": "2024-03-01",
        "maturity_date": "2026-03-01",
    }
    if parents is not None:
        args["issuer_parent_leis"] = parents
    if cfi.startswith("C"):  # a collective investment vehicle needs its registration code
        args["product_reg_code"] = {"scheme": "WM", "code": f"Z7{code[2:11]}000"}
    w.ok("REGISTRAR", "asset.register", **args)


def issue(w: World, code: str, allotments: dict[str, int]) -> None:
    rows = [{"holder": holder, "quantity": q} for holder, q in allotments.items()]
    w.ok("REGISTRAR", "asset.issue", isin=code, allotments=rows)


def fund(w: World, code: str, allotments: dict[str, int] | None = None, **kw: Any) -> None:
    allotments = allotments or {"BANK_A": 3}
    register(w, code, size=sum(allotments.values()), **kw)
    issue(w, code, allotments)


def bond(w: World, allotments: dict[str, int], **kw: Any) -> None:
    register(w, BOND, cfi="DBFTFB", size=sum(allotments.values()), denomination=10_000, **kw)
    issue(w, BOND, allotments)


def transfer(w: World, sender: str, *, to: str, **args: Any) -> str:
    """A transfer request and its signature: by the receiver, or for a product by its registrar
    (a product cannot sign; docs/domain.md C.4). Returns the request id."""
    outcome = w.ok(sender, "asset.transfer", to=to, **args)
    request_id = str(
        next(e.attrs["request_id"] for e in outcome.events if e.kind == "asset.requested")
    )
    w.ok("REGISTRAR" if names_instrument(to) else to, "asset.sign", request_id=request_id)
    return request_id


def owners(w: World, code: str, **args: Any) -> dict[str, Any]:
    answer: dict[str, Any] = w.ledger.query(
        "lookthrough_owners", {"isin": code, **args}, "REGULATOR"
    )
    return answer


def owner_rows(answer: dict[str, Any]) -> dict[str, tuple[str, str, int]]:
    return {r["owner"]: (r["quantity_exact"], r["share"], r["depth"]) for r in answer["owners"]}


# --- holders that are products --------------------------------------------------------------


def test_a_fund_of_funds_has_exact_fractional_look_through_shares(world: World) -> None:
    fund(world, F1, {"BANK_B": 1, "BANK_C": 2})
    bond(world, {F1: 10_000, "BANK_A": 20_000})
    answer = owners(world, BOND)
    assert answer["depth"] == 1 and answer["nested"] is False
    assert answer["outstanding_minor"] == 30_000
    assert owner_rows(answer) == {
        "BANK_A": ("20000", "2/3", 0),
        "BANK_B": ("10000/3", "1/9", 1),
        "BANK_C": ("20000/3", "2/9", 1),
    }
    bank_b = next(r for r in answer["owners"] if r["owner"] == "BANK_B")
    assert bank_b["kind"] == "participant"
    assert bank_b["paths"] == [{"via": [F1], "quantity_exact": "10000/3"}]
    # Owners are sorted by id and their quantities add up to the outstanding exactly.
    assert [r["owner"] for r in answer["owners"]] == ["BANK_A", "BANK_B", "BANK_C"]


def test_one_owner_reached_by_two_paths_is_summed(world: World) -> None:
    fund(world, F1, {"BANK_B": 1, "BANK_C": 1})
    fund(world, F2, {"BANK_B": 3})
    bond(world, {F1: 10_000, F2: 10_000, "BANK_B": 10_000})
    row = next(r for r in owners(world, BOND)["owners"] if r["owner"] == "BANK_B")
    assert (row["quantity_exact"], row["share"]) == ("25000", "5/6")
    assert row["paths"] == [
        {"via": [], "quantity_exact": "10000"},
        {"via": [F1], "quantity_exact": "5000"},
        {"via": [F2], "quantity_exact": "10000"},
    ]


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_nesting_up_to_the_limit_then_nesting_exceeded(world: World, limit: int) -> None:
    w = make_world(world, limit)
    chain = [F1, F2, F3, F4, F5][: limit + 2]
    for code in chain:
        fund(w, code, {"BANK_A": 3})
    bond(w, {chain[0]: 10_000})
    # chain[k] holds chain[k-1]: k layers of products holding products.
    for depth in range(1, limit + 1):
        transfer(w, "BANK_A", isin=chain[depth - 1], to=chain[depth], quantity=3)
        answer = owners(w, BOND)
        assert answer["depth"] == depth + 1
        assert owner_rows(answer) == {"BANK_A": ("10000", "1", depth + 1)}
        assert owners(w, chain[0])["depth"] == depth
    failure = w.fails(
        "NESTING_EXCEEDED",
        "BANK_A",
        "asset.transfer",
        isin=chain[limit],
        to=chain[limit + 1],
        quantity=1,
    )
    assert f"limit (parameter max_nesting_depth) is {limit}" in failure.message


def test_the_limit_counts_layers_below_the_new_holding_too(world: World) -> None:
    w = make_world(world, 2)
    for code in (F1, F2, F3, F4):
        fund(w, code)
    transfer(w, "BANK_A", isin=F1, to=F2, quantity=1)  # F2 holds F1
    transfer(w, "BANK_A", isin=F3, to=F4, quantity=1)  # F4 holds F3
    # F3 holding F2 would make F4 > F3 > F2 > F1: three layers.
    w.fails("NESTING_EXCEEDED", "BANK_A", "asset.transfer", isin=F2, to=F3, quantity=1)
    # The default limit (one layer) refuses a second layer at issue as well.
    d = make_world(w)
    fund(d, F1)
    fund(d, F2)
    transfer(d, "BANK_A", isin=F1, to=F2, quantity=1)
    register(d, F3, size=3)
    d.fails(
        "NESTING_EXCEEDED",
        "REGISTRAR",
        "asset.issue",
        isin=F3,
        allotments=[{"holder": F1, "quantity": 3}],
    )


def test_holding_a_bond_adds_no_layer(world: World) -> None:
    w = world
    fund(w, F1)
    fund(w, F2)
    transfer(w, "BANK_A", isin=F1, to=F2, quantity=3)  # one layer: the limit
    bond(w, {F1: 10_000})  # a bond under it is not a product layer
    assert owners(w, BOND)["depth"] == 2 and owners(w, BOND)["nested"] is True


def test_cycles_are_refused(world: World) -> None:
    w = make_world(world, 5)
    for code in (F1, F2, F3):
        fund(w, code)
    w.fails("NESTING_EXCEEDED", "BANK_A", "asset.transfer", isin=F1, to=F1, quantity=1)
    transfer(w, "BANK_A", isin=F1, to=F2, quantity=1)  # F2 holds F1
    transfer(w, "BANK_A", isin=F2, to=F3, quantity=1)  # F3 holds F2
    failure = w.fails("NESTING_EXCEEDED", "BANK_A", "asset.transfer", isin=F3, to=F1, quantity=1)
    assert "cycle" in failure.message


def test_only_active_registered_products_hold(world: World) -> None:
    w = world
    fund(w, F1)
    bond(w, {"BANK_A": 10_000})
    one = {"isin": F1, "quantity": 1}
    w.fails("NOT_A_PRODUCT", "BANK_A", "asset.transfer", to=BOND, **one)
    w.fails("PARTY_NOT_REGISTERED", "BANK_A", "asset.transfer", to=F5, **one)
    register(w, F2)  # registered, not issued
    w.fails("INSTRUMENT_NOT_ACTIVE", "BANK_A", "asset.transfer", to=F2, **one)
    # A product registration code makes a product whatever its CFI.
    w.ok(
        "REGISTRAR",
        "asset.register",
        isin=F3,
        name="WM product",
        issuer_lei=ISSUER,
        cfi="DBFTFB",
        currency="CNY",
        denomination_minor=1,
        issue_size_minor=3,
        issue_date="2024-03-01",
        maturity_date="2026-03-01",
        product_reg_code={"scheme": "WM", "code": "Z7001025001218"},
    )
    issue(w, F3, {"BANK_B": 3})
    transfer(w, "BANK_A", to=F3, **one)
    assert owner_rows(owners(w, F1))["BANK_B"] == ("1", "1/3", 1)


def test_a_participant_id_may_not_be_an_isin() -> None:
    genesis = demo_genesis()
    genesis["participants"][-1]["id"] = BOND
    with pytest.raises(GenesisError, match="must not be an ISIN"):
        genesis_writes(genesis)


def test_max_nesting_depth_is_validated_at_genesis() -> None:
    for bad in (0, 9, True, "2"):
        genesis = demo_genesis()
        genesis["parameters"] = {"max_nesting_depth": bad}
        with pytest.raises(GenesisError, match="max_nesting_depth"):
            genesis_writes(genesis)


def test_a_product_without_unit_holders_is_an_owner_itself(world: World) -> None:
    fund(world, F1)
    bond(world, {F1: 10_000, "BANK_A": 10_000})
    world.ok("REGISTRAR", "asset.redeem", isin=F1, early=True)
    rows = {r["owner"]: r for r in owners(world, BOND)["owners"]}
    assert rows[F1]["kind"] == "product" and rows[F1]["quantity_exact"] == "10000"


# --- downward and aggregates ----------------------------------------------------------------


def test_underlying_assets_go_down_through_products(world: World) -> None:
    fund(world, F1, {"BANK_B": 1, "BANK_C": 2})
    bond(world, {F1: 10_000, "BANK_A": 20_000})
    answer = world.ledger.query("lookthrough_assets", {"holder": "BANK_B"}, "REGULATOR")
    assert answer["depth"] == 1
    [row] = answer["assets"]
    assert (row["isin"], row["quantity_exact"], row["depth"]) == (BOND, "10000/3", 1)
    assert (row["cfi"], row["currency"], row["maturity_date"]) == ("DBFTFB", "CNY", "2026-03-01")
    # What a product itself holds.
    product = world.ledger.query("lookthrough_assets", {"holder": F1}, "REGULATOR")
    assert [(r["isin"], r["quantity_exact"]) for r in product["assets"]] == [(BOND, "10000")]
    with pytest.raises(QueryError) as missing:
        world.ledger.query("lookthrough_assets", {"holder": "NOBODY"}, "REGULATOR")
    assert missing.value.code == "NOT_FOUND"


def test_exposures_by_issuer_group_cfi_category_and_currency(world: World) -> None:
    fund(world, F1, {"BANK_B": 1, "BANK_C": 1}, parents=[PARENT])
    bond(world, {F1: 10_000, "BANK_B": 20_000}, parents=[PARENT])
    register(world, F2, size=5, issuer=OTHER_ISSUER, currency="USD")
    issue(world, F2, {"BANK_B": 5})
    answer = world.ledger.query("lookthrough_exposures", {"holder": "BANK_B"}, "REGULATOR")
    assert answer["by_issuer"] == [
        {"issuer_lei": ISSUER, "currency": "CNY", "quantity_exact": "25000"},
        {"issuer_lei": OTHER_ISSUER, "currency": "USD", "quantity_exact": "5"},
    ]
    assert answer["by_issuer_group"] == [
        {"group_lei": PARENT, "currency": "CNY", "quantity_exact": "25000"},
        {"group_lei": OTHER_ISSUER, "currency": "USD", "quantity_exact": "5"},
    ]
    assert answer["by_cfi_category"] == [
        {"cfi_category": "C", "currency": "USD", "quantity_exact": "5"},
        {"cfi_category": "D", "currency": "CNY", "quantity_exact": "25000"},
    ]
    assert answer["by_currency"] == [
        {"currency": "CNY", "quantity_exact": "25000"},
        {"currency": "USD", "quantity_exact": "5"},
    ]
    market = world.ledger.query("lookthrough_exposures", {}, "REGULATOR")
    assert market["holder"] is None
    assert market["by_cfi_category"] == [
        {"cfi_category": "C", "currency": "CNY", "quantity_exact": "2"},
        {"cfi_category": "C", "currency": "USD", "quantity_exact": "5"},
        {"cfi_category": "D", "currency": "CNY", "quantity_exact": "30000"},
    ]


# --- as of a past height --------------------------------------------------------------------


def test_answers_as_of_a_past_height_differ_from_now(world: World) -> None:
    fund(world, F1, {"BANK_B": 1, "BANK_C": 2})
    register(world, BOND, cfi="DBFTFB", size=30_000, denomination=10_000, parents=[PARENT])
    before_issue = world.ledger.height
    issue(world, BOND, {F1: 10_000, "BANK_A": 20_000})
    issued = world.ledger.height
    transfer(world, "BANK_A", isin=BOND, to=F1, quantity=20_000)
    transfer(world, "BANK_C", isin=F1, to="BANK_B", quantity=2)
    world.ok("REGISTRAR", "asset.amend", isin=BOND, issuer_parent_leis=[OTHER_ISSUER])
    now = owners(world, BOND)
    assert owner_rows(now) == {"BANK_B": ("30000", "1", 1)}
    assert now["as_of_height"] is None
    then = owners(world, BOND, height=issued)
    assert then["as_of_height"] == issued
    assert owner_rows(then) == {
        "BANK_A": ("20000", "2/3", 0),
        "BANK_B": ("10000/3", "1/9", 1),
        "BANK_C": ("20000/3", "2/9", 1),
    }
    # Registered but not issued yet: no owners; before registration: not found.
    assert owners(world, BOND, height=before_issue)["owners"] == []
    with pytest.raises(QueryError) as missing:
        owners(world, BOND, height=1)
    assert missing.value.code == "NOT_FOUND"
    # The amended issuer group and the holdings of a past height.
    query = world.ledger.query
    past = query("lookthrough_exposures", {"holder": "BANK_C", "height": issued}, "REGULATOR")
    assert past["by_issuer_group"] == [
        {"group_lei": PARENT, "currency": "CNY", "quantity_exact": "20000/3"}
    ]
    assert query("lookthrough_exposures", {"holder": "BANK_C"}, "REGULATOR")["by_issuer"] == []
    current = query("lookthrough_exposures", {"holder": "BANK_B"}, "REGULATOR")
    assert current["by_issuer_group"] == [
        {"group_lei": OTHER_ISSUER, "currency": "CNY", "quantity_exact": "30000"}
    ]
    assets = query("lookthrough_assets", {"holder": "BANK_A", "height": issued}, "REGULATOR")
    assert [(r["isin"], r["quantity_exact"]) for r in assets["assets"]] == [(BOND, "20000")]
    assert query("lookthrough_assets", {"holder": "BANK_A"}, "REGULATOR")["assets"] == []


def test_the_state_of_a_block_is_its_last_write(world: World) -> None:
    bond(world, {"BANK_A": 30_000})
    ledger = world.ledger
    first = world.ok("BANK_A", "asset.transfer", isin=BOND, to="BANK_B", quantity=10_000)
    request_id = next(e.attrs["request_id"] for e in first.events if e.kind == "asset.requested")
    outcomes = ledger.block(
        [
            ("BANK_B", "asset.sign", {"request_id": request_id}),
            ("BANK_B", "asset.transfer", {"isin": BOND, "to": "BANK_C", "quantity": 10_000}),
            ("BANK_B", "asset.transfer", {"isin": BOND, "to": "BANK_C", "quantity": 10_000}),
        ]
    )
    assert [o.code for o in outcomes] == ["OK", "OK", "QUANTITY_EXCEEDS_AVAILABLE"]
    assert not any(key.startswith(b"ver/") for key, _ in outcomes[2].writes)
    assert any(key.startswith(b"ver/asset/h/") for key, _ in outcomes[0].writes)
    block = ledger.height
    pending = next(e.attrs["request_id"] for e in outcomes[1].events if e.kind == "asset.requested")
    world.ok("BANK_C", "asset.sign", request_id=pending)
    transfer(world, "BANK_C", isin=BOND, to="BANK_A", quantity=10_000)
    # At the end of that block BANK_B still held what it had offered (reserved, not yet moved).
    assert owner_rows(owners(world, BOND, height=block)) == {
        "BANK_A": ("20000", "2/3", 0),
        "BANK_B": ("10000", "1/3", 0),
    }
    assert owner_rows(owners(world, BOND)) == {"BANK_A": ("30000", "1", 0)}


# --- who may ask, bad arguments, corrupt state ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("lookthrough_owners", {"isin": BOND}),
        ("lookthrough_assets", {"holder": "BANK_A"}),
        ("lookthrough_exposures", {}),
    ],
)
@pytest.mark.parametrize("viewer", [None, "BANK_A", "ADMIN", "REGISTRAR"])
def test_only_a_regulator_may_look_through(
    world: World, name: str, args: dict[str, Any], viewer: str | None
) -> None:
    bond(world, {"BANK_A": 10_000})
    with pytest.raises(QueryError) as refused:
        world.ledger.query(name, args, viewer)
    assert refused.value.code == "FORBIDDEN"
    assert world.ledger.query(name, args, "REGULATOR") is not None


@pytest.mark.parametrize("height", [-1, "3", True])
def test_a_height_is_a_non_negative_integer(world: World, height: object) -> None:
    with pytest.raises(QueryError) as refused:
        owners(world, BOND, height=height)
    assert refused.value.code == "BAD_ARGUMENT"


def test_a_cycle_in_a_corrupt_state_fails_instead_of_looping(world: World) -> None:
    fund(world, F1)
    fund(world, F2)
    transfer(world, "BANK_A", isin=F1, to=F2, quantity=1)
    state = world.ledger.state
    holding = {
        "isin": F2,
        "holder": F1,
        "available": 1,
        "pledged": 0,
        "frozen": 0,
        "pledges": {},
        "freezes": {},
    }
    state.set(f"asset/h/{F2}/{F1}".encode(), canonical_encode(holding))
    state.set(f"asset/hh/{F1}/{F2}".encode(), canonical_encode(F2))
    for name, args in (
        ("lookthrough_owners", {"isin": F1}),
        ("lookthrough_assets", {"holder": F1}),
    ):
        with pytest.raises(QueryError) as refused:
            world.ledger.query(name, args, "REGULATOR")
        assert refused.value.code == "NESTING_EXCEEDED"


def test_a_product_receiving_a_transfer_is_answered_for_by_its_registrar(world: World) -> None:
    w = make_world(world, max_nesting_depth=1)
    fund(w, F1, {"BANK_A": 3})
    fund(w, F2, {"BANK_A": 3})
    fund(w, F3, {"BANK_A": 3})
    asked = w.ok("BANK_A", "asset.transfer", isin=F1, to=F2, quantity=1)
    request_id = next(e.attrs["request_id"] for e in asked.events if e.kind == "asset.requested")
    refused = w.fails("SIGNATURE_INVALID", "BANK_A", "asset.sign", request_id=request_id)
    assert "REGISTRAR (for the product)" in refused.message
    # While the request waits, F3 comes to hold F2: signing now would nest F1 two layers deep.
    transfer(w, "BANK_A", isin=F2, to=F3, quantity=1)
    w.fails("NESTING_EXCEEDED", "REGISTRAR", "asset.sign", request_id=request_id)
    w.ok("BANK_A", "asset.revoke", request_id=request_id)
