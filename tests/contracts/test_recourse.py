"""Recourse (docs/domain.md B.11): who may be pursued after an in-window, overdue or early refusal,
art. 69 (drawer-holder; endorser-holder vs its later parties), art. 34 (NT endorser), guarantors
following their guaranteed party, re-recourse after paying, and the limitation periods."""

from __future__ import annotations

from typing import Any

import pytest

from ibledger.contracts.args import parse_iso_date
from ibledger.contracts.calendar import Parameters
from ibledger.contracts.recourse import liable_parties, recourse_allowed


def _chain_to_d(w: Any) -> str:
    """ENT_A draws on BANK_A to ENT_B; ENT_B -> ENT_C -> ENT_D; guarantees on ENT_B and BANK_A."""
    p = str(w.received(splittable=False))
    w.two_step(
        "BANK_A", "bill.guarantee", "BANK_B", package_no=p, guarantor="BANK_B", capacity="ACCEPTOR"
    )
    w.two_step(
        "ENT_B", "bill.guarantee", "BANK_C", package_no=p, guarantor="BANK_C", capacity="ENDORSER"
    )
    w.two_step("ENT_B", "bill.endorse", "ENT_C", package_no=p, endorsee="ENT_C")
    w.two_step("ENT_C", "bill.endorse", "ENT_D", package_no=p, endorsee="ENT_D")
    return p


def _refuse(w: Any, p: str, presenter: str, date: str) -> None:
    w.at(date, p)
    rid = w.request(presenter, "bill.present", package_no=p)
    w.ok("BANK_A", "bill.reject", request_id=rid, reason="account frozen")


def parties(w: Any, p: str) -> set[str]:
    rng = w.pieces(p)[0]["range"]
    result = w.ledger.query("recourse_parties", {"package_no": p, "range": rng}, "REGULATOR")
    return set(result["parties"])


ALL = {"BANK_A", "BANK_B", "ENT_A", "ENT_B", "BANK_C", "ENT_C"}


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("2024-08-30", ALL),  # in window: everyone before the holder
        ("2024-09-09", ALL),  # last day of the window (maturity + 10 = Mon 09-09)
        ("2024-09-10", {"BANK_A", "BANK_B", "ENT_A"}),  # overdue: drawer, acceptor, guarantors
        ("2024-03-15", set()),  # early presentment refusal: no recourse
    ],
)
def test_allowed_set_by_refusal_type(world: Any, date: str, expected: set[str]) -> None:
    p = _chain_to_d(world)
    _refuse(world, p, "ENT_D", date)
    assert parties(world, p) == expected
    for recoursee in sorted({"BANK_A", "BANK_B", "ENT_A", "ENT_B", "BANK_C", "ENT_C"} - expected):
        world.fails(
            "RECOURSE_NOT_ALLOWED", "ENT_D", "bill.recourse", package_no=p, recoursee=recoursee
        )
    for recoursee in sorted(expected):
        rid = world.request("ENT_D", "bill.recourse", package_no=p, recoursee=recoursee)
        world.ok("ENT_D", "bill.revoke", request_id=rid)


def test_re_recourse_excludes_later_parties_and_settles_at_the_acceptor(world: Any) -> None:
    p = _chain_to_d(world)
    _refuse(world, p, "ENT_D", "2024-08-30")
    world.two_step(
        "ENT_D",
        "bill.recourse",
        "ENT_C",
        package_no=p,
        recoursee="ENT_C",
        interest_fen=1000,
        costs_fen=50,
    )
    piece = world.piece(p)
    assert piece["holder"] == "ENT_C" and piece["chain"][-1]["claim_fen"] == 120_000_000 + 1050
    assert parties(world, p) == ALL - {"ENT_C"}
    world.fails("RECOURSE_NOT_ALLOWED", "ENT_C", "bill.recourse", package_no=p, recoursee="ENT_D")
    world.two_step("ENT_C", "bill.recourse", "BANK_C", package_no=p, recoursee="BANK_C")
    assert parties(world, p) == {"BANK_A", "BANK_B", "ENT_A", "ENT_B"}  # BANK_C stands for ENT_B
    world.two_step("BANK_C", "bill.recourse", "BANK_B", package_no=p, recoursee="BANK_B")
    assert world.state_of(p) == ("SETTLED", "ENDED")
    world.fails("WRONG_STATE", "BANK_B", "bill.recourse", package_no=p, recoursee="ENT_A")


def test_re_recourse_limitation_is_three_months_from_payment(world: Any) -> None:
    p = _chain_to_d(world)
    _refuse(world, p, "ENT_D", "2024-08-30")
    world.at("2024-09-02", p)
    world.two_step("ENT_D", "bill.recourse", "ENT_C", package_no=p, recoursee="ENT_C")
    world.at("2024-12-03", p)
    world.fails("RECOURSE_NOT_ALLOWED", "ENT_C", "bill.recourse", package_no=p, recoursee="ENT_B")
    # the drawer and acceptor sides stay liable until the rights expire
    world.two_step("ENT_C", "bill.recourse", "ENT_A", package_no=p, recoursee="ENT_A")
    assert world.piece(p)["holder"] == "ENT_A"
    assert parties(world, p) == {"BANK_A", "BANK_B"}  # a drawer-holder pursues the acceptor side


def test_bill_returning_to_an_earlier_endorser(world: Any) -> None:
    p = str(world.received(splittable=False))
    world.two_step("ENT_B", "bill.endorse", "ENT_C", package_no=p, endorsee="ENT_C")
    world.two_step("ENT_C", "bill.endorse", "ENT_B", package_no=p, endorsee="ENT_B")
    _refuse(world, p, "ENT_B", "2024-08-30")
    assert parties(world, p) == {"BANK_A", "ENT_A"}  # ENT_C is a later party of ENT_B


def test_partial_recourse_on_a_splittable_piece(world: Any) -> None:
    p = str(world.received())
    _refuse(world, p, "ENT_B", "2024-08-30")
    world.two_step(
        "ENT_B",
        "bill.recourse",
        "ENT_A",
        package_no=p,
        range="1-120000000",
        amount_fen=20_000_000,
        recoursee="ENT_A",
    )
    holders = sorted((x["range"], x["holder"]) for x in world.pieces(p))
    assert holders == [("1-20000000", "ENT_A"), ("20000001-120000000", "ENT_B")]


# --- unit tests of the rule functions on synthetic chains ------------------------------------


def _entry(seq: int, kind: str, source: str, target: str, nt: bool = False) -> dict[str, Any]:
    return {"seq": seq, "type": kind, "from": source, "to": target, "nt": nt}


PACKAGE = {"drawer": "D", "acceptor": "X", "acceptance_date": 1, "maturity_date": 19_965}


def _piece(
    chain: list[dict[str, Any]],
    guarantees: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "chain": chain,
        "guarantees": guarantees or [],
        "refusal": None,
        "recourse_paid_day": None,
    }


def test_nt_endorser_is_liable_only_to_its_immediate_endorsee() -> None:
    chain = [
        _entry(1, "RECEIPT", "D", "P"),
        _entry(2, "ENDORSE", "P", "E1", nt=True),
        _entry(3, "ENDORSE", "E1", "E2"),
    ]
    assert set(liable_parties(PACKAGE, _piece(chain[:2]), "E1", "IN_WINDOW")) == {"X", "D", "P"}
    assert set(liable_parties(PACKAGE, _piece(chain), "E2", "IN_WINDOW")) == {"X", "D", "E1"}
    revoked = [
        *chain[:2],
        _entry(3, "NT_REVOKE", "E1", "P") | {"ref_seq": 2},
        _entry(4, "ENDORSE", "E1", "E2"),
    ]
    assert set(liable_parties(PACKAGE, _piece(revoked), "E2", "IN_WINDOW")) == {"X", "D", "P", "E1"}


def test_guarantor_follows_the_guaranteed_party() -> None:
    chain = [
        _entry(1, "RECEIPT", "D", "P"),
        _entry(2, "DISCOUNT", "P", "B1"),
        _entry(3, "REDISCOUNT", "B1", "B2"),
    ]
    guarantees = [
        {"guarantor": "G1", "guaranteed": "P"},
        {"guarantor": "G2", "guaranteed": "B2"},
        {"guarantor": "G3", "guaranteed": "X"},
    ]
    result = liable_parties(PACKAGE, _piece(chain, guarantees), "B2", "IN_WINDOW")
    assert set(result) == {"X", "G3", "D", "P", "G1", "B1"}  # not G2: it guarantees the holder
    assert result["G1"] == "guarantor of endorser" and result["G3"] == "guarantor of acceptor"
    overdue = liable_parties(PACKAGE, _piece(chain, guarantees), "B2", "OVERDUE")
    assert set(overdue) == {"X", "G3", "D"}


def test_limitation_periods() -> None:
    params = Parameters()
    chain = [_entry(1, "RECEIPT", "D", "P"), _entry(2, "ENDORSE", "P", "H")]
    piece = _piece(chain)
    refusal_day = parse_iso_date("2024-09-01")
    assert refusal_day is not None
    piece["refusal"] = {"type": "IN_WINDOW", "day": refusal_day}
    within = parse_iso_date("2025-03-01")
    after = parse_iso_date("2025-03-02")
    assert within is not None and after is not None
    assert recourse_allowed(PACKAGE, piece, "H", "P", "IN_WINDOW", within, params) is None
    assert "limitation" in (
        recourse_allowed(PACKAGE, piece, "H", "P", "IN_WINDOW", after, params) or ""
    )
    assert recourse_allowed(PACKAGE, piece, "H", "D", "IN_WINDOW", after, params) is None
    expired = PACKAGE["maturity_date"] + 800
    assert "expired" in (
        recourse_allowed(PACKAGE, piece, "H", "D", "IN_WINDOW", expired, params) or ""
    )
