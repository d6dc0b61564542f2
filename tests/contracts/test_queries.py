"""Read side: regulator look-through (full chain with heights and timestamps, positions and
exposures of any participant, raw history by scope), participants' own views, anonymous public
reference data, and typed QueryErrors."""

from __future__ import annotations

from typing import Any

import pytest

from ibledger.contracts import QUERIES, QueryError
from ibledger.contracts.queries import TransactionVisibility, transaction_visible


def _busy_bill(w: Any) -> str:
    p = str(w.received())
    w.two_step(
        "ENT_B",
        "bill.endorse",
        "ENT_C",
        package_no=p,
        range="1-120000000",
        amount_fen=30_000_000,
        endorsee="ENT_C",
    )
    w.two_step(
        "ENT_C",
        "bill.discount",
        "BANK_B",
        package_no=p,
        range="1-30000000",
        discounter="BANK_B",
        rate_ppm=15_000,
    )
    w.two_step(
        "ENT_B", "bill.pledge", "BANK_C", package_no=p, range="30000001-120000000", pledgee="BANK_C"
    )
    return p


def test_regulator_sees_the_full_chain_with_heights_and_timestamps(world: Any) -> None:
    p = _busy_bill(world)
    view = world.ledger.query("bill_chain", {"package_no": p}, "REGULATOR")
    chains = {piece["range"]: piece["chain"] for piece in view["pieces"]}
    assert [e["type"] for e in chains["1-30000000"]] == [
        "ISSUE",
        "ACCEPT",
        "RECEIPT",
        "ENDORSE",
        "DISCOUNT",
    ]
    assert [e["type"] for e in chains["30000001-120000000"]] == [
        "ISSUE",
        "ACCEPT",
        "RECEIPT",
        "PLEDGE",
    ]
    for entry in chains["1-30000000"]:
        assert entry["height"] > 0 and entry["timestamp_ms"] > 0 and len(entry["tx_id"]) == 64
        assert entry["day"] == "2024-03-01"
    kinds = [h["kind"] for h in view["history"]]
    assert kinds[0] == "bill.issued" and "bill.split" in kinds
    heights = [h["height"] for h in view["history"]]
    assert heights == sorted(heights)


def test_positions_and_exposures(world: Any) -> None:
    p = _busy_bill(world)
    assert p
    positions = world.ledger.query("positions", {"participant": "ENT_B"}, "REGULATOR")
    assert positions["totals"]["held_fen"] == 90_000_000
    assert (
        world.ledger.query("positions", {"participant": "BANK_C"}, "BANK_C")["totals"][
            "pledged_to_fen"
        ]
        == 90_000_000
    )
    acceptor = world.ledger.query("positions", {"participant": "BANK_A"}, "REGULATOR")
    assert acceptor["totals"]["accepted_outstanding_fen"] == 120_000_000
    exposures = world.ledger.query("acceptor_exposures", {}, "REGULATOR")
    assert exposures == [
        {
            "acceptor": "BANK_A",
            "outstanding_fen": 120_000_000,
            "settled_fen": 0,
            "refused_pieces": 0,
            "packages": 1,
        }
    ]
    with pytest.raises(QueryError) as raised:
        world.ledger.query("positions", {"participant": "ENT_B"}, "ENT_C")
    assert raised.value.code == "FORBIDDEN"
    with pytest.raises(QueryError):
        world.ledger.query("acceptor_exposures", {}, "BANK_A")


def test_participants_see_only_bills_that_concern_them(world: Any) -> None:
    p = _busy_bill(world)
    bills = world.ledger.query("bills", {"participant": "ENT_C"}, "ENT_C")
    assert bills == [{"package_no": p, "capacities": ["endorse", "holder"]}]
    assert world.ledger.query("bill", {"package_no": p}, "BANK_C")["viewer_capacities"] == [
        "pledge"
    ]
    for viewer in ("ENT_D", None):
        with pytest.raises(QueryError) as raised:
            world.ledger.query("bill", {"package_no": p}, viewer)
        assert raised.value.code == "FORBIDDEN"
    with pytest.raises(QueryError):
        world.ledger.query("bills", {"participant": "ENT_C"}, "ENT_D")


def test_pending_requests_and_request_lookup(world: Any) -> None:
    p = str(world.received())
    rid = world.request("ENT_B", "bill.endorse", package_no=p, endorsee="ENT_C")
    pending = world.ledger.query("pending_requests", {"participant": "ENT_C"}, "ENT_C")
    assert [r["id"] for r in pending] == [rid]
    request = world.ledger.query("request", {"request_id": rid}, "ENT_C")
    assert request["status"] == "PENDING" and request["expires_day"] == "2024-03-06"


def test_events_feed_by_scope_is_regulator_only(world: Any) -> None:
    p = _busy_bill(world)
    entries = world.ledger.query("events", {"scope": f"b/{p}", "from_height": 5}, "REGULATOR")
    assert entries and all(e["height"] >= 5 for e in entries)
    with pytest.raises(QueryError):
        world.ledger.query("events", {"scope": f"b/{p}"}, "ENT_B")


def test_public_reference_queries(world: Any) -> None:
    assert world.ledger.query("calendar")["holidays"][0] == "2024-01-01"
    params = world.ledger.query("parameters")
    assert params["term_rules"][-1] == {"issued_from": "2023-01-01", "months": 6}
    assert world.ledger.query("business_date", {"timestamp_ms": 1727712000000}) == {
        "date": "2024-10-01",
        "business_day": False,
    }
    result = world.ledger.query("validate", {"kind": "lei", "value": "5493002ERZU2K9PZDL40"})
    assert result["valid"] is True
    assert len(world.ledger.query("participants", {"role": "bank"})) == 3


def test_bill_dates(world: Any) -> None:
    p = str(world.received(maturity="2024-08-31"))
    dates = world.ledger.query("bill_dates", {"package_no": p}, "ENT_B")
    assert dates["presentment_window_end"] == "2024-09-10"
    assert dates["rights_expiry"] == "2026-08-31"


@pytest.mark.parametrize(
    ("name", "args", "code"),
    [
        ("nope", {}, "UNKNOWN_QUERY"),
        ("participant", {"id": "GHOST"}, "NOT_FOUND"),
        ("participant", {}, "BAD_ARGUMENT"),
        ("instrument", {"isin": "US0378331005"}, "NOT_FOUND"),
        ("bill", {"package_no": "5102100099996202403010000009" + "90"}, "NOT_FOUND"),
        # An identifier argument gets its identifier's code whatever is wrong with it.
        ("bill", {"package_no": "5" * 30}, "BILL_NO_INVALID"),
        ("bill", {"package_no": "5" * 31}, "BILL_NO_INVALID"),
        ("instrument", {"isin": "US03783310051"}, "ISIN_INVALID"),
        ("instrument", {"isin": "US0378331006"}, "ISIN_INVALID"),
        ("holders", {"isin": 12}, "ISIN_INVALID"),
        ("calendar", {"extra": 1}, "BAD_ARGUMENT"),
    ],
)
def test_query_errors(world: Any, name: str, args: dict[str, Any], code: str) -> None:
    with pytest.raises(QueryError) as raised:
        world.ledger.query(name, args, "REGULATOR")
    assert raised.value.code == code


def test_query_names() -> None:
    assert {
        "instrument",
        "holdings",
        "holders",
        "asset_history",
        "bill",
        "bill_chain",
        "bill_history",
        "bills",
        "participant",
        "positions",
    } <= set(QUERIES)


def _events(outcome: Any) -> list[dict[str, Any]]:
    return [{"kind": e.kind, "attrs": dict(e.attrs), "tx_index": 0} for e in outcome.events]


def test_a_transaction_is_visible_to_its_parties_and_the_regulator(world: Any) -> None:
    p = str(world.received())
    request_id = world.request(
        "ENT_B",
        "bill.endorse",
        package_no=p,
        range="1-120000000",
        amount_fen=120_000_000,
        endorsee="ENT_D",
    )
    outcome = world.ledger.submit("ENT_D", "bill.sign", {"request_id": request_id})
    events = _events(outcome)
    assert outcome.code == "OK" and events
    state = world.ledger.state
    # The signer, the endorser and the package's earlier parties (drawer ENT_A, acceptor
    # BANK_A) see it, and so does the regulator; a bank with no part in the bill does not.
    for pid in ("ENT_D", "ENT_B", "ENT_A", "BANK_A", "REGULATOR"):
        assert transaction_visible(state, pid, "ENT_D", events), pid
    for pid in ("BANK_C", "ENT_C", "NOBODY", None):
        assert not transaction_visible(state, pid, "ENT_D", events), pid


def test_identity_events_are_visible_to_the_participant_named(world: Any) -> None:
    outcome = world.ok("ADMIN", "identity.update_details", participant="BANK_C", name="SPDB 2")
    events = _events(outcome)
    state = world.ledger.state
    assert transaction_visible(state, "BANK_C", "ADMIN", events)
    assert transaction_visible(state, "ADMIN", "ADMIN", events)
    assert not transaction_visible(state, "BANK_A", "ADMIN", events)
    assert TransactionVisibility(state, "REGULATOR").everything
    assert not TransactionVisibility(state, "BANK_A").everything
