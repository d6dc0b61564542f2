"""Delivery versus payment (docs/domain.md B.6 step 3): with the genesis switch `dvp_settlement`
the signature of a discount, rediscount, central-bank rediscount, repo leg, payment or recourse
settlement holds the piece AWAITING_SETTLEMENT; the settlement agent's confirmation moves it
exactly as the signature decided, its failure or the time-out restores it exactly, and a cash
leg settles at most once. Without the switch nothing changes (every other bill test)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from ibledger.contracts.bill_records import Request, Settlement
from ibledger.contracts.calendar import Parameters, parameters_from_genesis
from ibledger.contracts.codec import canonical_decode, canonical_encode
from ibledger.contracts.errors import GenesisError
from ibledger.contracts.testing import (
    SETTLEMENT_AGENT_ID,
    TestLedger,
    demo_genesis,
    with_dvp_settlement,
)

World = Any  # the fixture's type (conftest.World)
AGENT = SETTLEMENT_AGENT_ID


def dvp_genesis(**parameters: Any) -> dict[str, Any]:
    return with_dvp_settlement(demo_genesis(), **parameters)


@pytest.fixture
def dvp(world: World) -> World:
    world.ledger = TestLedger(dvp_genesis())
    return world


def _pending(outcome: Any) -> dict[str, Any]:
    (event,) = [e for e in outcome.events if e.kind == "bill.settlement_pending"]
    return dict(event.attrs)


def signed(w: World, sender: str, operation: str, signer: str, **args: Any) -> tuple[str, Any]:
    """Request and sign: the request id and the signing outcome."""
    rid = w.request(sender, operation, **args)
    return rid, w.sign(signer, rid)


def settled(w: World, sender: str, operation: str, signer: str, **args: Any) -> str:
    rid, _ = signed(w, sender, operation, signer, **args)
    w.ok(AGENT, "bill.settle_confirm", request_id=rid)
    return rid


def _discounted(w: World) -> str:
    p = w.received(splittable=False)
    settled(
        w, "ENT_B", "bill.discount", "BANK_B", package_no=p, discounter="BANK_B", rate_ppm=15_000
    )
    return str(p)


def _outright_repo(w: World) -> str:
    p = _discounted(w)
    settled(
        w,
        "BANK_B",
        "bill.outright_repo",
        "BANK_C",
        package_no=p,
        counterparty="BANK_C",
        rate_ppm=18_250,
        end_date="2024-04-01",
    )
    w.ledger.set_date("2024-04-01")
    return p


def _received_on_maturity(w: World) -> str:
    p = w.received(splittable=False)
    w.at("2024-08-30", p)
    return str(p)


def _refused(w: World) -> str:
    p = w.received(splittable=False)
    w.ledger.set_date("2024-08-30")
    rid = w.request("ENT_B", "bill.present", package_no=p)
    w.ok("BANK_A", "bill.reject", request_id=rid, reason="insufficient funds")
    return str(p)


@dataclass
class Leg:
    setup: Callable[[World], str]
    sender: str
    operation: str
    signer: str
    args: dict[str, Any]
    cash: tuple[str, str, int]  # payer, payee, amount in fen
    after: tuple[str, str, str]  # status, flag, holder


LEGS = {
    "discount": Leg(
        lambda w: w.received(splittable=False),
        "ENT_B",
        "bill.discount",
        "BANK_B",
        {"discounter": "BANK_B", "rate_ppm": 15_000},
        # 1,200,000.00 yuan at 1.5 % for 182 days / 360 = 9,100.00 yuan of interest
        ("BANK_B", "ENT_B", 120_000_000 - 910_000),
        ("RECEIVED", "NEGOTIABLE", "BANK_B"),
    ),
    "rediscount": Leg(
        _discounted,
        "BANK_B",
        "bill.rediscount",
        "BANK_C",
        {"buyer": "BANK_C", "rate_ppm": 14_000},
        ("BANK_C", "BANK_B", 120_000_000 - 849_333),
        ("RECEIVED", "NEGOTIABLE", "BANK_C"),
    ),
    "central bank rediscount": Leg(
        _discounted,
        "BANK_B",
        "bill.central_bank_rediscount",
        "PBOC",
        {"central_bank": "PBOC", "rate_ppm": 20_000},
        ("PBOC", "BANK_B", 120_000_000 - 1_213_333),
        ("RECEIVED", "NEGOTIABLE", "PBOC"),
    ),
    "outright repo": Leg(
        _discounted,
        "BANK_B",
        "bill.outright_repo",
        "BANK_C",
        {"counterparty": "BANK_C", "rate_ppm": 18_250, "end_date": "2024-04-01"},
        ("BANK_C", "BANK_B", 120_000_000 - 1_107_167),
        ("RECEIVED", "AWAITING_REDEMPTION", "BANK_C"),
    ),
    "pledge repo": Leg(
        _discounted,
        "BANK_B",
        "bill.pledge_repo",
        "BANK_C",
        {"counterparty": "BANK_C", "rate_ppm": 18_250, "end_date": "2024-04-01"},
        ("BANK_C", "BANK_B", 120_000_000),  # prototype rule: a pledge repo lends the face
        ("RECEIVED", "PLEDGED", "BANK_B"),
    ),
    "repo second leg": Leg(
        _outright_repo,
        "BANK_B",
        "bill.redeem",
        "BANK_C",
        {},
        # the first leg's cash back, plus 1.825 % for 31 days ACT/365 on the face (1,860.00)
        ("BANK_B", "BANK_C", 120_000_000 - 1_107_167 + 186_000),
        ("RECEIVED", "NEGOTIABLE", "BANK_B"),
    ),
    "payment at maturity": Leg(
        _received_on_maturity,
        "ENT_B",
        "bill.present",
        "BANK_A",
        {},
        ("BANK_A", "ENT_B", 120_000_000),
        ("SETTLED", "ENDED", "ENT_B"),
    ),
    "recourse settlement": Leg(
        _refused,
        "ENT_B",
        "bill.recourse",
        "ENT_A",
        {"recoursee": "ENT_A", "interest_fen": 1_000, "costs_fen": 500},
        ("ENT_A", "ENT_B", 120_001_500),
        ("MATURED", "NEGOTIABLE", "ENT_A"),
    ),
}


@pytest.mark.parametrize("name", list(LEGS))
def test_signature_waits_for_the_cash_leg_then_confirmation_moves_it(dvp: World, name: str) -> None:
    leg = LEGS[name]
    p = leg.setup(dvp)
    before = dvp.piece(p)
    rid, out = signed(dvp, leg.sender, leg.operation, leg.signer, package_no=p, **leg.args)
    pending = _pending(out)
    assert (pending["payer"], pending["payee"], pending["cash_fen"]) == leg.cash
    waiting = dvp.piece(p)
    assert (waiting["status"], waiting["flag"], waiting["flag_code"]) == (
        before["status"],
        "AWAITING_SETTLEMENT",
        "IB0303",
    )
    assert (waiting["holder"], waiting["chain"]) == (before["holder"], before["chain"])
    assert dvp.ledger.query("request", {"request_id": rid}, "REGULATOR")["status"] == (
        "AWAITING_SETTLEMENT"
    )
    # while the cash leg is pending the piece is locked and the request answered
    dvp.fails("DUPLICATE_ANSWER", leg.signer, "bill.sign", request_id=rid)
    dvp.fails("DUPLICATE_ANSWER", leg.signer, "bill.reject", request_id=rid)
    dvp.fails("DUPLICATE_ANSWER", leg.sender, "bill.revoke", request_id=rid)
    dvp.fails("PIECE_LOCKED", leg.sender, leg.operation, package_no=p, **leg.args)
    dvp.fails("FORBIDDEN", leg.signer, "bill.settle_confirm", request_id=rid)
    out = dvp.ok(AGENT, "bill.settle_confirm", request_id=rid)
    assert [e.kind for e in out.events] == ["bill.settled"]
    piece = dvp.piece(p)
    assert (piece["status"], piece["flag"], piece["holder"]) == leg.after
    assert piece["chain"][-1]["tx_id"] != before["chain"][-1]["tx_id"]
    assert dvp.ledger.query("request", {"request_id": rid}, "REGULATOR")["status"] == "SIGNED"
    # no double settlement, whatever the agent sends next
    dvp.fails("DUPLICATE_SETTLEMENT", AGENT, "bill.settle_confirm", request_id=rid)
    dvp.fails("DUPLICATE_SETTLEMENT", AGENT, "bill.settle_fail", request_id=rid)


@pytest.mark.parametrize("name", list(LEGS))
def test_failed_cash_leg_restores_the_piece_exactly(dvp: World, name: str) -> None:
    leg = LEGS[name]
    p = leg.setup(dvp)
    before = dvp.piece(p)
    rid, _ = signed(dvp, leg.sender, leg.operation, leg.signer, package_no=p, **leg.args)
    out = dvp.ok(AGENT, "bill.settle_fail", request_id=rid, reason="insufficient reserves")
    (failed,) = [e for e in out.events if e.kind == "bill.settlement_failed"]
    assert (failed.attrs["timed_out"], failed.attrs["reason"]) == (False, "insufficient reserves")
    assert dvp.piece(p) == before
    request = dvp.ledger.query("request", {"request_id": rid}, "REGULATOR")
    assert request["status"] == "SETTLEMENT_FAILED"
    dvp.fails("DUPLICATE_SETTLEMENT", AGENT, "bill.settle_confirm", request_id=rid)
    dvp.fails("DUPLICATE_ANSWER", leg.signer, "bill.sign", request_id=rid)
    # the parties may trade again, and this time it settles
    rid = settled(dvp, leg.sender, leg.operation, leg.signer, package_no=p, **leg.args)
    piece = dvp.piece(p)
    assert (piece["status"], piece["flag"], piece["holder"]) == leg.after


@pytest.mark.parametrize("name", list(LEGS))
def test_unsettled_cash_leg_times_out_and_restores_the_piece_exactly(dvp: World, name: str) -> None:
    leg = LEGS[name]
    p = leg.setup(dvp)
    before = dvp.piece(p)
    rid, out = signed(dvp, leg.sender, leg.operation, leg.signer, package_no=p, **leg.args)
    deadline = _pending(out)["deadline"]
    assert deadline == dvp.ledger.today  # the default: by the end of the signing business day
    dvp.ledger.advance_days(1)
    dvp.fails("DUPLICATE_SETTLEMENT", AGENT, "bill.settle_confirm", request_id=rid)
    out = dvp.ok("ADMIN", "bill.clear_request", request_id=rid)
    (failed,) = [e for e in out.events if e.kind == "bill.settlement_failed"]
    assert (failed.attrs["timed_out"], failed.attrs["reason"]) == (True, "not settled in time")
    assert dvp.piece(p) == before
    assert dvp.ledger.query("request", {"request_id": rid}, "REGULATOR")["status"] == (
        "SETTLEMENT_FAILED"
    )


def test_a_cash_leg_settles_once_even_twice_in_one_block(dvp: World) -> None:
    p = dvp.received(splittable=False)
    rid, _ = signed(
        dvp, "ENT_B", "bill.discount", "BANK_B", package_no=p, discounter="BANK_B", rate_ppm=1
    )
    confirm = (AGENT, "bill.settle_confirm", {"request_id": rid})
    fail = (AGENT, "bill.settle_fail", {"request_id": rid})
    outcomes = dvp.ledger.block([confirm, confirm, fail])
    assert [o.code for o in outcomes] == ["OK", "DUPLICATE_SETTLEMENT", "DUPLICATE_SETTLEMENT"]
    assert dvp.piece(p)["holder"] == "BANK_B"


def test_a_frozen_piece_is_not_settled_but_may_fail(dvp: World) -> None:
    p = dvp.received(splittable=False)
    rid, _ = signed(
        dvp, "ENT_B", "bill.discount", "BANK_B", package_no=p, discounter="BANK_B", rate_ppm=1
    )
    dvp.ok("REGULATOR", "bill.freeze", package_no=p, case_ref="COURT-1")
    dvp.fails("FROZEN", AGENT, "bill.settle_confirm", request_id=rid)
    dvp.ok(AGENT, "bill.settle_fail", request_id=rid)
    piece = dvp.piece(p)
    assert (piece["status"], piece["flag"], piece["holder"]) == ("RECEIVED", "NEGOTIABLE", "ENT_B")
    assert piece["frozen"]["case_ref"] == "COURT-1"


def test_only_dvp_actions_wait_and_unknown_cash_legs_are_refused(dvp: World) -> None:
    p = dvp.received(splittable=False)
    rid, out = signed(dvp, "ENT_B", "bill.endorse", "ENT_C", package_no=p, endorsee="ENT_C")
    assert "bill.settlement_pending" not in [e.kind for e in out.events]
    assert dvp.piece(p)["holder"] == "ENT_C"
    dvp.fails("SETTLEMENT_NOT_PENDING", AGENT, "bill.settle_confirm", request_id=rid)
    dvp.fails("UNKNOWN_REQUEST", AGENT, "bill.settle_confirm", request_id="00" * 32)


def test_the_time_out_follows_the_genesis_parameter(world: World) -> None:
    w = world
    w.ledger = TestLedger(dvp_genesis(settlement_ttl_business_days=2))
    p = w.received(splittable=False)
    w.ledger.set_date("2024-03-08")  # a Friday
    _, out = signed(
        w, "ENT_B", "bill.discount", "BANK_B", package_no=p, discounter="BANK_B", rate_ppm=1
    )
    assert _pending(out)["deadline"] == "2024-03-12"  # two business days after: Tuesday
    w.ledger.set_date("2024-03-12")
    w.ok("ADMIN", "bill.sweep", package_no=p)
    assert w.piece(p)["flag"] == "AWAITING_SETTLEMENT"
    w.ledger.set_date("2024-03-13")
    w.ok("ADMIN", "bill.sweep", package_no=p)
    assert w.piece(p)["flag"] == "NEGOTIABLE"


def test_exchange_answer_at_maturity_waits_for_its_cash_leg(dvp: World) -> None:
    p = dvp.received(splittable=False)
    q = dvp.received(splittable=False)
    dvp.ledger.set_date("2024-08-30")  # a Friday
    rid = dvp.request("ENT_B", "bill.present", package_no=p)
    rid_q = dvp.request("ENT_B", "bill.present", package_no=q)
    dvp.ledger.set_date("2024-08-31")
    out = dvp.ok("ADMIN", "bill.sweep", package_no=p)
    assert [e.kind for e in out.events] == ["bill.settlement_pending", "bill.present_signed"]
    pending = _pending(out)
    assert (pending["payer"], pending["payee"], pending["cash_fen"]) == (
        "BANK_A",
        "ENT_B",
        120_000_000,
    )
    assert pending["deadline"] == "2024-09-02"  # the next business day after the answer day
    assert dvp.state_of(p) == ("MATURED", "AWAITING_SETTLEMENT")
    dvp.ledger.set_date("2024-09-02")
    dvp.ok(AGENT, "bill.settle_confirm", request_id=rid)
    assert dvp.state_of(p) == ("SETTLED", "ENDED")
    # the other one is not settled in time: restored, not refused, and may be presented again
    dvp.ledger.set_date("2024-09-03")
    dvp.fails("DUPLICATE_SETTLEMENT", AGENT, "bill.settle_confirm", request_id=rid_q)
    dvp.ok("ADMIN", "bill.sweep", package_no=q)
    piece = dvp.piece(q)
    assert (piece["status"], piece["flag"], piece["refusal"]) == ("MATURED", "NEGOTIABLE", None)
    rid_q = dvp.request("ENT_B", "bill.present", package_no=q)
    dvp.ledger.set_date("2024-09-04")
    dvp.ok("ADMIN", "bill.sweep", package_no=q)
    dvp.ok(AGENT, "bill.settle_confirm", request_id=rid_q)
    assert dvp.state_of(q) == ("SETTLED", "ENDED")


def test_dvp_switch_and_time_out_parameters() -> None:
    assert "dvp_settlement" not in Parameters().to_stored()  # default chains keep their bytes
    params = parameters_from_genesis({"dvp_settlement": True, "settlement_ttl_business_days": 3})
    assert Parameters.from_stored(params.to_stored()) == params
    for bad in ({"dvp_settlement": 1}, {"settlement_ttl_business_days": 11}):
        with pytest.raises(GenesisError):
            parameters_from_genesis(bad)


def test_settlement_state_round_trips_to_the_same_bytes(dvp: World) -> None:
    q = dvp.received(splittable=False)
    rid, _ = signed(
        dvp, "ENT_B", "bill.discount", "BANK_B", package_no=q, discounter="BANK_B", rate_ppm=1
    )
    dvp.ok(AGENT, "bill.settle_fail", request_id=rid)
    for name in ("discount", "payment at maturity"):
        leg = LEGS[name]
        p = leg.setup(dvp)
        settled(dvp, leg.sender, leg.operation, leg.signer, package_no=p, **leg.args)
    parsers = {
        b"bset/": Settlement.from_stored,
        b"breq/": Request.from_stored,
        b"cfg/params": Parameters.from_stored,
    }
    seen = set()
    for key, raw in dvp.ledger.state.items():
        for prefix, parse in parsers.items():
            if key.startswith(prefix):
                assert canonical_encode(parse(canonical_decode(raw)).to_stored()) == raw, key
                seen.add(prefix)
    assert seen == set(parsers)
