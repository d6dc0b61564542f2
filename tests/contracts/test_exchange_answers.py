"""The exchange's automatic answers and automatic presentment at maturity (docs/domain.md B.2,
B.5 row 18, B.7): a bank or finance-company acceptance left unanswered at the end of the
presentment day is paid, not refused, unless the piece is frozen (stopped); a piece held by a
financial institution is presented on its maturity day; both are taken as of the day they fell
due, whichever later block applies them."""

from __future__ import annotations

from typing import Any

import pytest

World = Any  # the fixture's type (conftest.World)


def _kinds() -> list[dict[str, str]]:
    return [{"kind": "BANK"}, {"kind": "FINANCE"}]


def _request(world: World, rid: str) -> dict[str, Any]:
    result: dict[str, Any] = world.ledger.query("request", {"request_id": rid}, "REGULATOR")
    return result


@pytest.mark.parametrize("kind", _kinds(), ids=lambda k: k["kind"])
def test_unanswered_bank_acceptance_at_maturity_is_paid_not_refused(
    world: World, kind: dict[str, str]
) -> None:
    p = world.received(splittable=False, **kind)
    world.ledger.set_date("2024-08-30")
    rid = world.request("ENT_B", "bill.present", package_no=p)
    world.ok("ADMIN", "bill.sweep", package_no=p)  # the acceptor may answer all this day
    assert world.state_of(p) == ("MATURED", "COLLECTION_IN_TRANSIT")
    world.ledger.set_date("2024-09-03")  # the old rule refused it here, "not answered in time"
    world.fails("DUPLICATE_ANSWER", "BANK_A", "bill.reject", request_id=rid)
    world.ok("ADMIN", "bill.sweep", package_no=p)
    piece = world.piece(p)
    assert (piece["status_code"], piece["flag_code"]) == ("CS06", "TF0501")
    assert piece["paid_to"] == "ENT_B" and piece["refusal"] is None
    payment = piece["chain"][-1]
    assert (payment["type"], payment["day"], payment["automatic"]) == (
        "PAYMENT",
        "2024-08-30",
        True,
    )
    request = _request(world, rid)
    assert request["status"] == "SIGNED"
    assert request["answer"] == {
        "by": "BANK_A",
        "day": "2024-08-30",
        "height": request["answer"]["height"],
        "automatic": True,
    }
    world.fails("WRONG_STATE", "ENT_B", "bill.recourse", package_no=p, recoursee="ENT_A")


def test_the_automatic_answer_is_applied_by_the_first_later_block(world: World) -> None:
    p = world.received(splittable=False)
    world.ledger.set_date("2024-08-30")
    world.request("ENT_B", "bill.present", package_no=p)
    world.ledger.set_date("2024-08-31")
    out = world.ok("ENT_B", "bill.sweep", package_no=p)
    (signed,) = [e for e in out.events if e.kind == "bill.present_signed"]
    assert signed.attrs["automatic"] is True
    assert "bill.payment_refused" not in [e.kind for e in out.events]


def test_the_acceptor_bank_may_still_answer_on_the_presentment_day(world: World) -> None:
    p = world.received(splittable=False)
    world.ledger.set_date("2024-08-30")
    rid = world.request("ENT_B", "bill.present", package_no=p)
    world.ok("BANK_A", "bill.reject", request_id=rid, reason="payment stopped by court order")
    assert world.piece(p)["refusal"]["reason"] == "payment stopped by court order"
    world.at("2024-09-02", p)
    assert world.state_of(p) == ("MATURED", "NEGOTIABLE")


def test_an_early_presentment_left_pending_is_paid_at_the_end_of_the_maturity_day(
    world: World,
) -> None:
    p = world.received(splittable=False)
    world.ledger.set_date("2024-08-26")
    rid = world.request("ENT_B", "bill.present", package_no=p)
    assert _request(world, rid)["params"]["presentment_type"] == "EARLY"
    world.at("2024-08-30", p)
    assert world.state_of(p) == ("MATURED", "COLLECTION_IN_TRANSIT")
    world.at("2024-08-31", p)
    assert world.state_of(p) == ("SETTLED", "ENDED")
    assert world.piece(p)["chain"][-1]["day"] == "2024-08-30"


def test_a_frozen_bank_acceptance_is_not_answered_and_times_out_as_refused(world: World) -> None:
    p = world.received(splittable=False)
    world.ledger.set_date("2024-08-30")
    world.request("ENT_B", "bill.present", package_no=p)
    world.ok("REGULATOR", "bill.freeze", package_no=p, case_ref="STOP-1")
    world.at("2024-09-02", p)  # the answer deadline: still frozen, nobody answers
    assert world.state_of(p) == ("MATURED", "COLLECTION_IN_TRANSIT")
    world.at("2024-09-03", p)
    piece = world.piece(p)
    assert piece["refusal"]["reason"] == "not answered in time"
    assert world.state_of(p) == ("MATURED", "NEGOTIABLE")


def test_unfreezing_before_the_deadline_lets_the_exchange_answer_in_that_block(
    world: World,
) -> None:
    p = world.received(splittable=False)
    world.ledger.set_date("2024-08-30")
    world.request("ENT_B", "bill.present", package_no=p)
    world.ok("REGULATOR", "bill.freeze", package_no=p, case_ref="STOP-1")
    world.ledger.set_date("2024-09-01")
    out = world.ok("REGULATOR", "bill.unfreeze", package_no=p, case_ref="STOP-1")
    assert [e.kind for e in out.events] == ["bill.unfrozen", "bill.present_signed"]
    assert world.state_of(p) == ("SETTLED", "ENDED")


def test_a_freeze_after_the_answer_day_comes_too_late(world: World) -> None:
    p = world.received(splittable=False)
    world.ledger.set_date("2024-08-30")
    world.request("ENT_B", "bill.present", package_no=p)
    world.ledger.set_date("2024-08-31")
    world.fails("WRONG_STATE", "REGULATOR", "bill.freeze", package_no=p, case_ref="STOP-1")
    world.ok("ADMIN", "bill.sweep", package_no=p)
    assert world.state_of(p) == ("SETTLED", "ENDED")


def _bank_held(world: World, **kwargs: Any) -> str:
    p = world.received(splittable=False, **kwargs)
    world.two_step(
        "ENT_B", "bill.discount", "BANK_B", package_no=p, discounter="BANK_B", rate_ppm=15_000
    )
    return p


def test_a_bank_held_piece_is_presented_and_paid_at_maturity(world: World) -> None:
    p = _bank_held(world)
    world.ledger.set_date("2024-08-30")
    out = world.ok("ADMIN", "bill.sweep", package_no=p)
    assert [e.kind for e in out.events] == ["bill.matured", "bill.requested"]
    requested = out.events[1].attrs
    assert (requested["initiator"], requested["counterparty"], requested["automatic"]) == (
        "BANK_B",
        "BANK_A",
        True,
    )
    assert world.state_of(p) == ("MATURED", "COLLECTION_IN_TRANSIT")
    world.at("2024-08-31", p)
    piece = world.piece(p)
    assert (piece["status"], piece["flag"], piece["paid_to"]) == ("SETTLED", "ENDED", "BANK_B")


def test_a_bank_held_commercial_bill_is_presented_and_its_acceptor_answers(world: World) -> None:
    p = _bank_held(world, kind="COMMERCIAL", acceptor="ENT_D")
    q = _bank_held(world, kind="COMMERCIAL", acceptor="ENT_D")
    world.at("2024-08-30", p)
    (pending,) = world.ledger.query("pending_requests", {"participant": "ENT_D"}, "ENT_D")
    assert (pending["initiator"], pending["params"]["automatic"]) == ("BANK_B", True)
    world.at("2024-09-02", p)
    assert world.state_of(p) == ("MATURED", "COLLECTION_IN_TRANSIT")  # no answer for it
    world.sign("ENT_D", pending["id"])
    assert world.piece(p)["paid_to"] == "BANK_B"
    world.at("2024-09-03", q)
    assert world.piece(q)["refusal"]["reason"] == "not answered in time"


@pytest.mark.parametrize(
    "setup",
    ["enterprise holder", "pledged", "frozen", "locked"],
)
def test_what_the_exchange_does_not_present(world: World, setup: str) -> None:
    p = world.received(splittable=False) if setup == "enterprise holder" else _bank_held(world)
    if setup == "pledged":
        world.two_step("BANK_B", "bill.pledge", "BANK_C", package_no=p, pledgee="BANK_C")
    if setup == "frozen":
        world.ok("REGULATOR", "bill.freeze", package_no=p, case_ref="CASE-1")
    if setup == "locked":  # a request pending over the maturity day
        world.ledger.set_date("2024-08-29")
        world.request("BANK_B", "bill.endorse", package_no=p, endorsee="ENT_C")
    world.at("2024-09-05", p)
    piece = world.piece(p)
    assert piece["status"] == "MATURED" and piece["paid_to"] is None
    assert piece["flag"] != "COLLECTION_IN_TRANSIT"


def _comparable(world: World, p: str) -> list[dict[str, Any]]:
    """The pieces without what names the applying block (height, time, transaction)."""
    result = []
    for piece in world.pieces(p):
        chain = [
            {k: v for k, v in entry.items() if k not in ("height", "timestamp_ms", "tx_id")}
            for entry in piece["chain"]
        ]
        result.append({**piece, "chain": chain})
    return result


@pytest.mark.parametrize("kind", ["BANK", "COMMERCIAL"])
def test_transitions_do_not_depend_on_when_a_block_applies_them(world: World, kind: str) -> None:
    acceptor = {"acceptor": "ENT_D"} if kind == "COMMERCIAL" else {}
    daily, late = world, type(world)()
    packages = []
    for w in (daily, late):
        packages.append(_bank_held(w, kind=kind, **acceptor))
    for day in range(29, 32):
        daily.at(f"2024-08-{day}", packages[0])
    for day in range(1, 10):
        daily.at(f"2024-09-{day:02d}", packages[0])
    late.at("2024-09-09", packages[1])
    assert _comparable(daily, packages[0]) == _comparable(late, packages[1])
