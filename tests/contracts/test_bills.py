"""Bill lifecycle (docs/domain.md Part B), table-driven: every two-step action of B.5 is requested,
rejected, revoked and signed with its exact (status, flag) before and after; the unilateral and
time-driven rows; and one row per rejection code of B.12 (and the runtime's own codes), each
checked to write nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

PKG_DIGITS = "102100099996"


# --- scenarios: put a bill in a state and name the request to test ---------------------------


@dataclass
class Step:
    sender: str
    operation: str
    signer: str
    args: dict[str, Any]
    before: tuple[str, str]
    lock: str
    after: tuple[str, str]
    check: Callable[[Any, str], None] | None = None


def _holder(expected: str) -> Callable[[Any, str], None]:
    def check(world: Any, package_no: str) -> None:
        assert world.piece(package_no, _first_range(world, package_no))["holder"] == expected

    return check


def _first_range(world: Any, package_no: str) -> str:
    return str(world.pieces(package_no)[0]["range"])


def s_acceptance(w: Any) -> tuple[str, Step]:
    p = w.issue()
    return p, Step(
        "ENT_A",
        "bill.request_acceptance",
        "BANK_A",
        {"package_no": p},
        ("ISSUED", "AWAITING_RECEIPT"),
        "LOCKED",
        ("ACCEPTED", "AWAITING_RECEIPT"),
    )


def s_receipt(w: Any) -> tuple[str, Step]:
    p = w.accepted()
    return p, Step(
        "ENT_A",
        "bill.request_receipt",
        "ENT_B",
        {"package_no": p},
        ("ACCEPTED", "AWAITING_RECEIPT"),
        "LOCKED",
        ("RECEIVED", "NEGOTIABLE"),
        _holder("ENT_B"),
    )


def s_receipt_nt(w: Any) -> tuple[str, Step]:
    p = w.accepted(nt=True)
    return p, Step(
        "ENT_A",
        "bill.request_receipt",
        "ENT_B",
        {"package_no": p},
        ("ACCEPTED", "AWAITING_RECEIPT"),
        "LOCKED",
        ("RECEIVED", "NON_TRANSFERABLE"),
    )


def s_endorse(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False)
    return p, Step(
        "ENT_B",
        "bill.endorse",
        "ENT_C",
        {"package_no": p, "endorsee": "ENT_C"},
        ("RECEIVED", "NEGOTIABLE"),
        "LOCKED",
        ("RECEIVED", "NEGOTIABLE"),
        _holder("ENT_C"),
    )


def s_endorse_nt(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False)
    return p, Step(
        "ENT_B",
        "bill.endorse",
        "ENT_C",
        {"package_no": p, "endorsee": "ENT_C", "non_transferable": True},
        ("RECEIVED", "NEGOTIABLE"),
        "LOCKED",
        ("RECEIVED", "NON_TRANSFERABLE"),
    )


def s_endorse_in_window(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False)
    w.at("2024-09-02", p)
    return p, Step(
        "ENT_B",
        "bill.endorse",
        "ENT_C",
        {"package_no": p, "endorsee": "ENT_C"},
        ("MATURED", "NEGOTIABLE"),
        "LOCKED",
        ("MATURED", "NEGOTIABLE"),
        _holder("ENT_C"),
    )


def s_discount(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False)
    return p, Step(
        "ENT_B",
        "bill.discount",
        "BANK_B",
        {"package_no": p, "discounter": "BANK_B", "rate_ppm": 15_000},
        ("RECEIVED", "NEGOTIABLE"),
        "LOCKED",
        ("RECEIVED", "NEGOTIABLE"),
        _holder("BANK_B"),
    )


def s_repo_discount(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False)
    return p, Step(
        "ENT_B",
        "bill.discount",
        "BANK_B",
        {
            "package_no": p,
            "discounter": "BANK_B",
            "rate_ppm": 15_000,
            "mode": "repo",
            "end_date": "2024-06-01",
        },
        ("RECEIVED", "NEGOTIABLE"),
        "LOCKED",
        ("RECEIVED", "AWAITING_REDEMPTION"),
        _holder("BANK_B"),
    )


def _discounted(w: Any) -> str:
    p = w.received(splittable=False)
    w.two_step(
        "ENT_B", "bill.discount", "BANK_B", package_no=p, discounter="BANK_B", rate_ppm=15_000
    )
    return str(p)


def s_rediscount(w: Any) -> tuple[str, Step]:
    p = _discounted(w)
    return p, Step(
        "BANK_B",
        "bill.rediscount",
        "BANK_C",
        {"package_no": p, "buyer": "BANK_C", "rate_ppm": 14_000},
        ("RECEIVED", "NEGOTIABLE"),
        "LOCKED",
        ("RECEIVED", "NEGOTIABLE"),
        _holder("BANK_C"),
    )


def s_cb_rediscount(w: Any) -> tuple[str, Step]:
    p = _discounted(w)
    return p, Step(
        "BANK_B",
        "bill.central_bank_rediscount",
        "PBOC",
        {"package_no": p, "central_bank": "PBOC", "rate_ppm": 20_000},
        ("RECEIVED", "NEGOTIABLE"),
        "LOCKED",
        ("RECEIVED", "NEGOTIABLE"),
        _holder("PBOC"),
    )


def s_cb_rediscount_repo(w: Any) -> tuple[str, Step]:
    p = _discounted(w)
    return p, Step(
        "BANK_B",
        "bill.central_bank_rediscount",
        "PBOC",
        {
            "package_no": p,
            "central_bank": "PBOC",
            "rate_ppm": 20_000,
            "mode": "repo",
            "end_date": "2024-05-06",
        },
        ("RECEIVED", "NEGOTIABLE"),
        "LOCKED",
        ("RECEIVED", "AWAITING_REDEMPTION"),
        _holder("PBOC"),
    )


def s_outright_repo(w: Any) -> tuple[str, Step]:
    p = _discounted(w)
    return p, Step(
        "BANK_B",
        "bill.outright_repo",
        "BANK_C",
        {"package_no": p, "counterparty": "BANK_C", "rate_ppm": 18_000, "end_date": "2024-04-01"},
        ("RECEIVED", "NEGOTIABLE"),
        "LOCKED",
        ("RECEIVED", "AWAITING_REDEMPTION"),
        _holder("BANK_C"),
    )


def s_pledge_repo(w: Any) -> tuple[str, Step]:
    p = _discounted(w)
    return p, Step(
        "BANK_B",
        "bill.pledge_repo",
        "BANK_C",
        {"package_no": p, "counterparty": "BANK_C", "rate_ppm": 18_000, "end_date": "2024-04-01"},
        ("RECEIVED", "NEGOTIABLE"),
        "LOCKED",
        ("RECEIVED", "PLEDGED"),
        _holder("BANK_B"),
    )


def s_redeem_outright(w: Any) -> tuple[str, Step]:
    p = _discounted(w)
    w.two_step(
        "BANK_B",
        "bill.outright_repo",
        "BANK_C",
        package_no=p,
        counterparty="BANK_C",
        rate_ppm=18_000,
        end_date="2024-04-01",
    )
    w.at("2024-04-01", p)
    return p, Step(
        "BANK_B",
        "bill.redeem",
        "BANK_C",
        {"package_no": p},
        ("RECEIVED", "AWAITING_REDEMPTION"),
        "LOCKED",
        ("RECEIVED", "NEGOTIABLE"),
        _holder("BANK_B"),
    )


def s_redeem_pledge(w: Any) -> tuple[str, Step]:
    p = _discounted(w)
    w.two_step(
        "BANK_B",
        "bill.pledge_repo",
        "BANK_C",
        package_no=p,
        counterparty="BANK_C",
        rate_ppm=18_000,
        end_date="2024-04-01",
    )
    w.at("2024-04-02", p)
    return p, Step(
        "BANK_B",
        "bill.redeem",
        "BANK_C",
        {"package_no": p},
        ("RECEIVED", "PLEDGED"),
        "LOCKED",
        ("RECEIVED", "NEGOTIABLE"),
        _holder("BANK_B"),
    )


def s_pledge(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False)
    return p, Step(
        "ENT_B",
        "bill.pledge",
        "BANK_A",
        {"package_no": p, "pledgee": "BANK_A"},
        ("RECEIVED", "NEGOTIABLE"),
        "LOCKED",
        ("RECEIVED", "PLEDGED"),
        _holder("ENT_B"),
    )


def s_pledge_nt(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False, nt=True)
    return p, Step(
        "ENT_B",
        "bill.pledge",
        "BANK_A",
        {"package_no": p, "pledgee": "BANK_A"},
        ("RECEIVED", "NON_TRANSFERABLE"),
        "LOCKED",
        ("RECEIVED", "PLEDGED"),
    )


def s_release(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False, nt=True)
    w.two_step("ENT_B", "bill.pledge", "BANK_A", package_no=p, pledgee="BANK_A")
    return p, Step(
        "BANK_A",
        "bill.release_pledge",
        "ENT_B",
        {"package_no": p},
        ("RECEIVED", "PLEDGED"),
        "LOCKED",
        ("RECEIVED", "NON_TRANSFERABLE"),
    )


def s_release_after_maturity(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False)
    w.two_step("ENT_B", "bill.pledge", "BANK_A", package_no=p, pledgee="BANK_A")
    w.at("2024-09-20", p)
    return p, Step(
        "BANK_A",
        "bill.release_pledge",
        "ENT_B",
        {"package_no": p},
        ("MATURED", "PLEDGED"),
        "LOCKED",
        ("MATURED", "NEGOTIABLE"),
    )


def s_guarantee_drawer(w: Any) -> tuple[str, Step]:
    p = w.issue()
    return p, Step(
        "ENT_A",
        "bill.guarantee",
        "BANK_C",
        {"package_no": p, "guarantor": "BANK_C", "capacity": "DRAWER"},
        ("ISSUED", "AWAITING_RECEIPT"),
        "LOCKED",
        ("ISSUED", "AWAITING_RECEIPT"),
    )


def s_guarantee_acceptor(w: Any) -> tuple[str, Step]:
    p = w.accepted(kind="COMMERCIAL", acceptor="ENT_D")
    return p, Step(
        "ENT_D",
        "bill.guarantee",
        "BANK_C",
        {"package_no": p, "guarantor": "BANK_C", "capacity": "ACCEPTOR"},
        ("ACCEPTED", "AWAITING_RECEIPT"),
        "LOCKED",
        ("ACCEPTED", "AWAITING_RECEIPT"),
    )


def s_guarantee_endorser(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False)
    return p, Step(
        "ENT_B",
        "bill.guarantee",
        "BANK_C",
        {"package_no": p, "guarantor": "BANK_C", "capacity": "ENDORSER"},
        ("RECEIVED", "NEGOTIABLE"),
        "LOCKED",
        ("RECEIVED", "NEGOTIABLE"),
    )


def s_revoke_nt(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False)
    w.two_step(
        "ENT_B", "bill.endorse", "ENT_C", package_no=p, endorsee="ENT_C", non_transferable=True
    )
    return p, Step(
        "ENT_C",
        "bill.revoke_nt",
        "ENT_B",
        {"package_no": p},
        ("RECEIVED", "NON_TRANSFERABLE"),
        "LOCKED",
        ("RECEIVED", "NEGOTIABLE"),
    )


def s_present(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False)
    w.at("2024-08-30", p)
    return p, Step(
        "ENT_B",
        "bill.present",
        "BANK_A",
        {"package_no": p},
        ("MATURED", "NEGOTIABLE"),
        "COLLECTION_IN_TRANSIT",
        ("SETTLED", "ENDED"),
    )


def s_present_early(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False)
    return p, Step(
        "ENT_B",
        "bill.present",
        "BANK_A",
        {"package_no": p},
        ("RECEIVED", "NEGOTIABLE"),
        "COLLECTION_IN_TRANSIT",
        ("SETTLED", "ENDED"),
    )


def s_present_overdue(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False)
    w.at("2025-01-06", p)
    return p, Step(
        "ENT_B",
        "bill.present",
        "BANK_A",
        {"package_no": p},
        ("MATURED", "NEGOTIABLE"),
        "COLLECTION_IN_TRANSIT",
        ("SETTLED", "ENDED"),
    )


def s_present_by_pledgee(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False)
    w.two_step("ENT_B", "bill.pledge", "BANK_C", package_no=p, pledgee="BANK_C")
    w.at("2024-08-30", p)
    return p, Step(
        "BANK_C",
        "bill.present",
        "BANK_A",
        {"package_no": p},
        ("MATURED", "PLEDGED"),
        "COLLECTION_IN_TRANSIT",
        ("SETTLED", "ENDED"),
    )


def _refused(w: Any, **kwargs: Any) -> str:
    p = w.received(splittable=False, **kwargs)
    w.two_step("ENT_B", "bill.endorse", "ENT_C", package_no=p, endorsee="ENT_C")
    w.at("2024-08-30", p)
    rid = w.request("ENT_C", "bill.present", package_no=p)
    w.ok("BANK_A", "bill.reject", request_id=rid, reason="insufficient funds")
    return str(p)


def s_recourse_endorser(w: Any) -> tuple[str, Step]:
    p = _refused(w)
    return p, Step(
        "ENT_C",
        "bill.recourse",
        "ENT_B",
        {"package_no": p, "recoursee": "ENT_B"},
        ("MATURED", "NEGOTIABLE"),
        "RECOURSE",
        ("MATURED", "NEGOTIABLE"),
        _holder("ENT_B"),
    )


def s_recourse_acceptor(w: Any) -> tuple[str, Step]:
    p = _refused(w)
    return p, Step(
        "ENT_C",
        "bill.recourse",
        "BANK_A",
        {"package_no": p, "recoursee": "BANK_A"},
        ("MATURED", "NEGOTIABLE"),
        "RECOURSE",
        ("SETTLED", "ENDED"),
    )


def s_recourse_non_refusal(w: Any) -> tuple[str, Step]:
    p = w.received(splittable=False)
    w.two_step("ENT_B", "bill.endorse", "ENT_C", package_no=p, endorsee="ENT_C")
    return p, Step(
        "ENT_C",
        "bill.recourse",
        "ENT_A",
        {"package_no": p, "recoursee": "ENT_A", "ground": "ACCEPTOR_BANKRUPT"},
        ("RECEIVED", "NEGOTIABLE"),
        "RECOURSE",
        ("RECEIVED", "NEGOTIABLE"),
        _holder("ENT_A"),
    )


SCENARIOS = [
    s_acceptance,
    s_receipt,
    s_receipt_nt,
    s_endorse,
    s_endorse_nt,
    s_endorse_in_window,
    s_discount,
    s_repo_discount,
    s_rediscount,
    s_cb_rediscount,
    s_cb_rediscount_repo,
    s_outright_repo,
    s_pledge_repo,
    s_redeem_outright,
    s_redeem_pledge,
    s_pledge,
    s_pledge_nt,
    s_release,
    s_release_after_maturity,
    s_guarantee_drawer,
    s_guarantee_acceptor,
    s_guarantee_endorser,
    s_revoke_nt,
    s_present,
    s_present_early,
    s_present_overdue,
    s_present_by_pledgee,
    s_recourse_endorser,
    s_recourse_acceptor,
    s_recourse_non_refusal,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__[2:])
def test_two_step_action_request_reject_revoke_sign(world: Any, scenario: Any) -> None:
    package_no, step = scenario(world)
    assert world.state_of(package_no) == step.before
    # reject restores the exact previous state
    rid = world.request(step.sender, step.operation, **step.args)
    assert world.state_of(package_no) == (step.before[0], step.lock)
    world.fails("SIGNATURE_INVALID", "ENT_D", "bill.sign", request_id=rid)
    world.fails("PIECE_LOCKED", step.sender, step.operation, **step.args)
    world.ok(step.signer, "bill.reject", request_id=rid, reason="not agreed")
    assert world.state_of(package_no)[1] == step.before[1]
    world.fails("DUPLICATE_ANSWER", step.signer, "bill.sign", request_id=rid)
    if step.operation == "bill.present":
        return  # a refusal is not a plain restore: covered by the refusal tests
    assert world.state_of(package_no) == step.before
    # revoke restores it too
    rid = world.request(step.sender, step.operation, **step.args)
    world.fails("SIGNATURE_INVALID", step.signer, "bill.revoke", request_id=rid)
    world.ok(step.sender, "bill.revoke", request_id=rid)
    assert world.state_of(package_no) == step.before
    world.fails("REQUEST_NOT_PENDING", step.signer, "bill.sign", request_id=rid)
    # sign applies the effect
    rid = world.request(step.sender, step.operation, **step.args)
    world.sign(step.signer, rid)
    assert world.state_of(package_no) == step.after
    world.fails("DUPLICATE_ANSWER", step.signer, "bill.sign", request_id=rid)
    world.fails("DUPLICATE_ANSWER", step.signer, "bill.reject", request_id=rid)
    if step.check is not None:
        step.check(world, package_no)


@pytest.mark.parametrize(
    "scenario", [s_present, s_present_early, s_present_by_pledgee], ids=lambda s: s.__name__[2:]
)
def test_present_and_pay_settles(world: Any, scenario: Any) -> None:
    package_no, step = scenario(world)
    world.two_step(step.sender, step.operation, step.signer, **step.args)
    piece = world.piece(package_no)
    assert (piece["status_code"], piece["flag_code"]) == ("CS06", "TF0501")
    assert piece["paid_to"] == step.sender
    world.fails("WRONG_STATE", step.sender, "bill.present", **step.args)


# --- unilateral and time-driven rows ---------------------------------------------------------


def test_issue_creates_one_piece_awaiting_receipt(world: Any) -> None:
    p = world.issue()
    piece = world.piece(p)
    assert piece["range"] == "1-120000000" and piece["amount_fen"] == 120_000_000
    assert (piece["status_code"], piece["flag_code"]) == ("CS01", "TF0101")
    q = world.issue(splittable=False, amount="0.01")
    assert world.piece(q)["range"] == "0" and world.piece(q)["amount_fen"] == 1


@pytest.mark.parametrize("stage", ["issue", "accepted"])
def test_withdraw_and_cleanup_before_receipt(world: Any, stage: str) -> None:
    p = world.issue() if stage == "issue" else world.accepted()
    world.fails("FORBIDDEN", "ENT_B", "bill.withdraw", package_no=p)
    world.ok("ENT_A", "bill.withdraw", package_no=p)
    assert world.state_of(p) == ("TERMINATED", "ENDED")
    q = world.issue() if stage == "issue" else world.accepted()
    world.fails("FORBIDDEN", "ENT_C", "bill.cleanup", package_no=q)
    world.ok("BANK_A", "bill.cleanup", package_no=q)
    assert world.state_of(q) == ("TERMINATED", "ENDED")
    r = world.issue()
    world.ok("ADMIN", "bill.cleanup", package_no=r)


def test_maturity_roll_and_rights_expiry_follow_the_agreed_date(world: Any) -> None:
    p = world.received(splittable=False)
    world.ledger.set_date("2024-08-29")
    world.ok("ADMIN", "bill.sweep", package_no=p)
    assert world.state_of(p) == ("RECEIVED", "NEGOTIABLE")
    world.ledger.set_date("2024-08-30")
    out = world.ok("ENT_B", "bill.sweep", package_no=p)
    assert [e.kind for e in out.events] == ["bill.matured"]
    assert world.state_of(p) == ("MATURED", "NEGOTIABLE")
    world.ledger.set_date("2026-08-30")
    world.ok("ADMIN", "bill.sweep", package_no=p)
    assert world.state_of(p) == ("MATURED", "NEGOTIABLE")
    world.ledger.set_date("2026-08-31")
    out = world.ok("ADMIN", "bill.sweep", package_no=p)
    assert [e.kind for e in out.events] == ["bill.rights_expired"]
    assert world.state_of(p) == ("MATURED", "ENDED")
    world.fails("FORBIDDEN", "ENT_D", "bill.sweep", package_no=p)


def test_request_time_out_clears_and_restores(world: Any) -> None:
    p = world.issue()
    rid = world.request("ENT_A", "bill.request_acceptance", package_no=p)
    world.fails("WRONG_STATE", "ADMIN", "bill.clear_request", request_id=rid)
    world.ledger.set_date("2024-03-06")  # 3 business days after Fri 2024-03-01 = Wed 03-06
    world.fails("WRONG_STATE", "ADMIN", "bill.clear_request", request_id=rid)
    world.ledger.set_date("2024-03-07")
    world.fails("REQUEST_NOT_PENDING", "BANK_A", "bill.sign", request_id=rid)
    world.fails("FORBIDDEN", "ENT_D", "bill.clear_request", request_id=rid)
    out = world.ok("ADMIN", "bill.clear_request", request_id=rid)
    assert "bill.request_cleared" in [e.kind for e in out.events]
    assert world.state_of(p) == ("ISSUED", "AWAITING_RECEIPT")
    world.fails("REQUEST_NOT_PENDING", "ADMIN", "bill.clear_request", request_id=rid)
    assert world.ledger.query("request", {"request_id": rid}, "ENT_A")["status"] == "CLEARED"


def test_stale_request_is_cleared_lazily_by_the_next_action(world: Any) -> None:
    p = world.received(splittable=False)
    world.request("ENT_B", "bill.endorse", package_no=p, endorsee="ENT_C")
    world.ledger.set_date("2024-03-20")
    world.two_step("ENT_B", "bill.endorse", "ENT_D", package_no=p, endorsee="ENT_D")
    assert world.piece(p)["holder"] == "ENT_D"


def test_unanswered_commercial_presentment_is_refused_automatically(world: Any) -> None:
    # A commercial acceptor answers itself; the exchange answers only for bank acceptances
    # (test_exchange_answers.py).
    p = world.received(splittable=False, kind="COMMERCIAL", acceptor="ENT_D")
    world.ledger.set_date("2024-08-30")
    rid = world.request("ENT_B", "bill.present", package_no=p)
    world.ledger.set_date("2024-09-03")  # answer deadline 2024-09-02 has passed
    world.fails("REQUEST_NOT_PENDING", "ENT_D", "bill.sign", request_id=rid)
    out = world.ok("ENT_B", "bill.clear_request", request_id=rid)
    assert "bill.payment_refused" in [e.kind for e in out.events]
    piece = world.piece(p)
    assert piece["refusal"]["type"] == "IN_WINDOW" and piece["refusal"]["day"] == "2024-09-03"
    assert world.state_of(p) == ("MATURED", "NEGOTIABLE")
    world.two_step("ENT_B", "bill.recourse", "ENT_A", package_no=p, recoursee="ENT_A")


def test_early_refusal_allows_representment_but_no_recourse(world: Any) -> None:
    p = world.received(splittable=False)
    rid = world.request("ENT_B", "bill.present", package_no=p)
    world.ok("BANK_A", "bill.reject", request_id=rid, reason="not due")
    assert world.piece(p)["refusal"]["type"] == "EARLY"
    world.fails("RECOURSE_NOT_ALLOWED", "ENT_B", "bill.recourse", package_no=p, recoursee="ENT_A")
    world.ledger.set_date("2024-08-30")
    world.two_step("ENT_B", "bill.present", "BANK_A", package_no=p)
    assert world.state_of(p) == ("SETTLED", "ENDED")


def test_freeze_blocks_everything_but_unfreeze(world: Any) -> None:
    p = world.received(splittable=False)
    rid = world.request("ENT_B", "bill.endorse", package_no=p, endorsee="ENT_C")
    world.fails("FORBIDDEN", "ENT_A", "bill.freeze", package_no=p, case_ref="COURT-1")
    world.ok("REGULATOR", "bill.freeze", package_no=p, case_ref="COURT-1")
    world.fails("FROZEN", "REGULATOR", "bill.freeze", package_no=p, case_ref="COURT-2")
    world.fails("FROZEN", "ENT_C", "bill.sign", request_id=rid)
    world.fails("FROZEN", "ENT_C", "bill.reject", request_id=rid)
    world.fails("FROZEN", "ENT_B", "bill.revoke", request_id=rid)
    world.fails("BAD_ARGUMENT", "ADMIN", "bill.unfreeze", package_no=p, case_ref="COURT-2")
    world.ok("ADMIN", "bill.unfreeze", package_no=p, case_ref="COURT-1")
    world.fails("WRONG_STATE", "ADMIN", "bill.unfreeze", package_no=p, case_ref="COURT-1")
    world.sign("ENT_C", rid)


def test_split_follows_the_b9_example(world: Any) -> None:
    p = world.received()
    out = world.two_step(
        "ENT_B",
        "bill.endorse",
        "ENT_C",
        package_no=p,
        range="1-120000000",
        amount_fen=30_000_000,
        endorsee="ENT_C",
    )
    assert out
    moved, retained = world.piece(p, "1-30000000"), world.piece(p, "30000001-120000000")
    assert (moved["holder"], retained["holder"]) == ("ENT_C", "ENT_B")
    assert [e["type"] for e in moved["chain"]][-1] == "ENDORSE"
    chain = world.chain(p)
    chains = {piece["range"]: piece["chain"] for piece in chain["pieces"]}
    assert [e["type"] for e in chains["1-30000000"]] == ["ISSUE", "ACCEPT", "RECEIPT", "ENDORSE"]
    assert [e["type"] for e in chains["30000001-120000000"]] == ["ISSUE", "ACCEPT", "RECEIPT"]
    # pieces act independently: pledge one while the other is endorsed on
    world.two_step(
        "ENT_B",
        "bill.pledge",
        "BANK_A",
        package_no=p,
        range="30000001-120000000",
        amount_fen=10_000_000,
        pledgee="BANK_A",
    )
    ranges = sorted((x["range"], x["holder"], x["flag"]) for x in world.pieces(p))
    assert ranges == [
        ("1-30000000", "ENT_C", "NEGOTIABLE"),
        ("30000001-40000000", "ENT_B", "PLEDGED"),
        ("40000001-120000000", "ENT_B", "NEGOTIABLE"),
    ]


def test_a_split_by_a_rejected_request_keeps_both_pieces(world: Any) -> None:
    p = world.received()
    rid = world.request(
        "ENT_B", "bill.endorse", package_no=p, range="1-120000000", amount_fen=5, endorsee="ENT_C"
    )
    world.ok("ENT_C", "bill.reject", request_id=rid)
    assert sorted(x["range"] for x in world.pieces(p)) == ["1-5", "6-120000000"]
    assert {(x["status"], x["flag"], x["holder"]) for x in world.pieces(p)} == {
        ("RECEIVED", "NEGOTIABLE", "ENT_B")
    }


def test_discount_interest_is_the_b10_worked_example(world: Any) -> None:
    p = world.received(amount="1000000.00", splittable=False, maturity="2024-08-30")
    world.two_step(
        "ENT_B", "bill.discount", "BANK_B", package_no=p, discounter="BANK_B", rate_ppm=15_000
    )
    (entry,) = [e for e in world.piece(p)["chain"] if e["type"] == "DISCOUNT"]
    assert (entry["days"], entry["interest_fen"], entry["proceeds_fen"]) == (
        182,
        758_333,
        99_241_667,
    )
    q = world.received(amount="1000000.00", splittable=False, maturity="2024-08-31")
    world.two_step(
        "ENT_B", "bill.discount", "BANK_B", package_no=q, discounter="BANK_B", rate_ppm=15_000
    )
    (entry,) = [e for e in world.piece(q)["chain"] if e["type"] == "DISCOUNT"]
    assert (entry["days"], entry["interest_fen"]) == (185, 770_833)


def test_repo_second_leg_records_interest(world: Any) -> None:
    p = _discounted(world)
    world.two_step(
        "BANK_B",
        "bill.outright_repo",
        "BANK_C",
        package_no=p,
        counterparty="BANK_C",
        rate_ppm=18_250,
        end_date="2024-04-01",
    )
    world.fails("WRONG_STATE", "BANK_B", "bill.redeem", package_no=p)  # before the end date
    world.fails("NOT_HOLDER", "BANK_C", "bill.redeem", package_no=p)
    world.ledger.set_date("2024-04-01")
    world.two_step("BANK_B", "bill.redeem", "BANK_C", package_no=p)
    (entry,) = [e for e in world.piece(p)["chain"] if e["type"] == "REDEEM_TRANSFER"]
    # 1,200,000.00 yuan at 1.825 % for 31 days ACT/365 = 1,860.00 yuan
    assert (entry["days"], entry["repo_interest_fen"]) == (31, 186_000)


def test_guarantor_becomes_liable_and_listed(world: Any) -> None:
    p = world.received(splittable=False)
    world.two_step(
        "ENT_B", "bill.guarantee", "BANK_C", package_no=p, guarantor="BANK_C", capacity="ENDORSER"
    )
    guarantees = world.piece(p)["guarantees"]
    assert [(g["guarantor"], g["guaranteed"], g["capacity"]) for g in guarantees] == [
        ("BANK_C", "ENT_B", "ENDORSER")
    ]
    positions = world.ledger.query("positions", {"participant": "BANK_C"}, "REGULATOR")
    assert positions["totals"]["guaranteed_fen"] == 120_000_000


# --- rejection table (B.12 and runtime codes) ------------------------------------------------

Case = Callable[[Any], tuple[str, str, dict[str, Any]]]


def issue_args(w: Any, **override: Any) -> dict[str, Any]:
    args = {
        "package_no": w.package_no(),
        "kind": "BANK",
        "amount": "1000.00",
        "currency": "CNY",
        "maturity_date": "2024-08-30",
        "acceptor": "BANK_A",
        "payee": "ENT_B",
        "splittable": True,
    }
    args.update(override)
    return args


REJECTIONS: list[tuple[str, str, Case]] = [
    (
        "term over six months",
        "BILL_TERM_EXCEEDED",
        lambda w: ("ENT_A", "bill.issue", issue_args(w, maturity_date="2024-09-02")),
    ),
    (
        "maturity on the issue date",
        "BILL_TERM_EXCEEDED",
        lambda w: ("ENT_A", "bill.issue", issue_args(w, maturity_date="2024-03-01")),
    ),
    (
        "amount with fractional fen",
        "BILL_AMOUNT_INVALID",
        lambda w: ("ENT_A", "bill.issue", issue_args(w, amount="100.001")),
    ),
    (
        "zero amount",
        "BILL_AMOUNT_INVALID",
        lambda w: ("ENT_A", "bill.issue", issue_args(w, amount="0.00")),
    ),
    (
        "amount above 10^11 fen",
        "BILL_AMOUNT_INVALID",
        lambda w: ("ENT_A", "bill.issue", issue_args(w, amount="1000000000.01")),
    ),
    (
        "non-CNY currency",
        "BILL_AMOUNT_INVALID",
        lambda w: ("ENT_A", "bill.issue", issue_args(w, currency="USD")),
    ),
    (
        "unknown currency",
        "CURRENCY_INVALID",
        lambda w: ("ENT_A", "bill.issue", issue_args(w, currency="RMB")),
    ),
    (
        "bad package number",
        "BILL_NO_INVALID",
        lambda w: ("ENT_A", "bill.issue", issue_args(w, package_no="5" * 29)),
    ),
    (
        "kind digit does not match",
        "BILL_NO_INVALID",
        lambda w: ("ENT_A", "bill.issue", issue_args(w, kind="COMMERCIAL", acceptor="ENT_D")),
    ),
    (
        "registration date is not today",
        "BILL_NO_INVALID",
        lambda w: (
            "ENT_A",
            "bill.issue",
            issue_args(w, package_no="5" + PKG_DIGITS + "20240229" + "00000001" + "0"),
        ),
    ),
    ("drawer is not an enterprise", "FORBIDDEN", lambda w: ("BANK_B", "bill.issue", issue_args(w))),
    (
        "payee not registered",
        "PARTY_NOT_REGISTERED",
        lambda w: ("ENT_A", "bill.issue", issue_args(w, payee="GHOST")),
    ),
    (
        "bank bill accepted by an enterprise",
        "COUNTERPARTY_TYPE",
        lambda w: ("ENT_A", "bill.issue", issue_args(w, acceptor="ENT_D")),
    ),
    (
        "duplicate package",
        "DUPLICATE_BILL",
        lambda w: (
            (
                "ENT_A",
                "bill.issue",
                issue_args(
                    w,
                    package_no=w.ledger.query("bills", {"participant": "ENT_A"}, "ENT_A")[0][
                        "package_no"
                    ],
                ),
            )
            if w.issue()
            else ("", "", {})
        ),
    ),
    (
        "endorse before receipt",
        "WRONG_STATE",
        lambda w: ("ENT_B", "bill.endorse", {"package_no": w.accepted(), "endorsee": "ENT_C"}),
    ),
    (
        "receipt before acceptance",
        "WRONG_STATE",
        lambda w: ("ENT_A", "bill.request_receipt", {"package_no": w.issue()}),
    ),
    (
        "withdraw after receipt",
        "WRONG_STATE",
        lambda w: ("ENT_A", "bill.withdraw", {"package_no": w.received()}),
    ),
    (
        "endorse a non-transferable bill",
        "NON_TRANSFERABLE",
        lambda w: (
            "ENT_B",
            "bill.endorse",
            {"package_no": w.received(nt=True), "endorsee": "ENT_C"},
        ),
    ),
    (
        "discount a non-transferable bill",
        "NON_TRANSFERABLE",
        lambda w: (
            "ENT_B",
            "bill.discount",
            {"package_no": w.received(nt=True), "discounter": "BANK_B", "rate_ppm": 1},
        ),
    ),
    (
        "endorse by a non-holder",
        "NOT_HOLDER",
        lambda w: ("ENT_C", "bill.endorse", {"package_no": w.received(), "endorsee": "ENT_D"}),
    ),
    (
        "release by a non-pledgee",
        "NOT_HOLDER",
        lambda w: ("ENT_B", "bill.release_pledge", {"package_no": _pledged(w)}),
    ),
    (
        "partial endorsement of a non-splittable bill",
        "PARTIAL_ENDORSEMENT",
        lambda w: (
            "ENT_B",
            "bill.endorse",
            {"package_no": w.received(splittable=False), "endorsee": "ENT_C", "amount_fen": 100},
        ),
    ),
    (
        "endorsement to two endorsees",
        "PARTIAL_ENDORSEMENT",
        lambda w: (
            "ENT_B",
            "bill.endorse",
            {"package_no": w.received(), "endorsee": ["ENT_C", "ENT_D"]},
        ),
    ),
    (
        "split with k > held",
        "SPLIT_INVALID",
        lambda w: (
            "ENT_B",
            "bill.endorse",
            {"package_no": w.received(), "endorsee": "ENT_C", "amount_fen": 120_000_001},
        ),
    ),
    (
        "split with k = 0",
        "SPLIT_INVALID",
        lambda w: (
            "ENT_B",
            "bill.endorse",
            {"package_no": w.received(), "endorsee": "ENT_C", "amount_fen": 0},
        ),
    ),
    (
        "malformed range",
        "SPLIT_INVALID",
        lambda w: (
            "ENT_B",
            "bill.endorse",
            {"package_no": w.received(), "endorsee": "ENT_C", "range": "5-1"},
        ),
    ),
    (
        "endorse a pledged piece",
        "PLEDGED",
        lambda w: ("ENT_B", "bill.endorse", {"package_no": _pledged(w), "endorsee": "ENT_C"}),
    ),
    (
        "endorse a frozen piece",
        "FROZEN",
        lambda w: ("ENT_B", "bill.endorse", {"package_no": _frozen(w), "endorsee": "ENT_C"}),
    ),
    (
        "endorse a locked piece",
        "PIECE_LOCKED",
        lambda w: ("ENT_B", "bill.pledge", {"package_no": _locked(w), "pledgee": "BANK_A"}),
    ),
    (
        "discount after maturity",
        "AFTER_MATURITY",
        lambda w: (
            "ENT_B",
            "bill.discount",
            {"package_no": _matured(w), "discounter": "BANK_B", "rate_ppm": 15_000},
        ),
    ),
    (
        "pledge after maturity",
        "AFTER_MATURITY",
        lambda w: ("ENT_B", "bill.pledge", {"package_no": _matured(w), "pledgee": "BANK_B"}),
    ),
    (
        "acceptance after maturity",
        "AFTER_MATURITY",
        lambda w: ("ENT_A", "bill.request_acceptance", {"package_no": _unaccepted_matured(w)}),
    ),
    (
        "present for payment outside the window",
        "WINDOW_CLOSED",
        lambda w: ("ENT_B", "bill.present", {"package_no": _expired(w)}),
    ),
    (
        "endorse after the presentment window",
        "WINDOW_CLOSED",
        lambda w: ("ENT_B", "bill.endorse", {"package_no": _overdue(w), "endorsee": "ENT_C"}),
    ),
    (
        "endorse after refusal",
        "WINDOW_CLOSED",
        lambda w: ("ENT_C", "bill.endorse", {"package_no": _refused(w), "endorsee": "ENT_D"}),
    ),
    (
        "present again after an in-window refusal",
        "WRONG_STATE",
        lambda w: ("ENT_C", "bill.present", {"package_no": _refused(w)}),
    ),
    (
        "recourse against a party outside the allowed set",
        "RECOURSE_NOT_ALLOWED",
        lambda w: ("ENT_C", "bill.recourse", {"package_no": _refused(w), "recoursee": "ENT_D"}),
    ),
    (
        "recourse without refusal",
        "RECOURSE_NOT_ALLOWED",
        lambda w: ("ENT_B", "bill.recourse", {"package_no": _matured(w), "recoursee": "ENT_A"}),
    ),
    (
        "recourse after the limitation period",
        "RECOURSE_NOT_ALLOWED",
        lambda w: (
            "ENT_C",
            "bill.recourse",
            {"package_no": _refused_long_ago(w), "recoursee": "ENT_B"},
        ),
    ),
    (
        "endorse to oneself",
        "SELF_DEALING",
        lambda w: ("ENT_B", "bill.endorse", {"package_no": w.received(), "endorsee": "ENT_B"}),
    ),
    (
        "guarantor already a debtor",
        "SELF_DEALING",
        lambda w: (
            "ENT_B",
            "bill.guarantee",
            {"package_no": w.received(), "guarantor": "ENT_A", "capacity": "ENDORSER"},
        ),
    ),
    (
        "discount to a non-bank",
        "COUNTERPARTY_TYPE",
        lambda w: (
            "ENT_B",
            "bill.discount",
            {"package_no": w.received(), "discounter": "ENT_C", "rate_ppm": 15_000},
        ),
    ),
    (
        "central rediscount to a commercial bank",
        "COUNTERPARTY_TYPE",
        lambda w: (
            "BANK_B",
            "bill.central_bank_rediscount",
            {"package_no": _discounted(w), "central_bank": "BANK_C", "rate_ppm": 1},
        ),
    ),
    (
        "repo with an enterprise",
        "COUNTERPARTY_TYPE",
        lambda w: (
            "BANK_B",
            "bill.pledge_repo",
            {
                "package_no": _discounted(w),
                "counterparty": "ENT_C",
                "rate_ppm": 1,
                "end_date": "2024-04-01",
            },
        ),
    ),
    (
        "rediscount before discount",
        "WRONG_STATE",
        lambda w: (
            "BANK_A",
            "bill.rediscount",
            {"package_no": w.received(payee="BANK_A"), "buyer": "BANK_C", "rate_ppm": 1},
        ),
    ),
    (
        "commercial bill discounted without disclosure",
        "DISCLOSURE_MISSING",
        lambda w: (
            "ENT_B",
            "bill.discount",
            {"package_no": _undisclosed(w), "discounter": "BANK_B", "rate_ppm": 15_000},
        ),
    ),
    (
        "repo ending after maturity",
        "REPO_TERM_INVALID",
        lambda w: (
            "BANK_B",
            "bill.outright_repo",
            {
                "package_no": _discounted(w),
                "counterparty": "BANK_C",
                "rate_ppm": 1,
                "end_date": "2024-08-31",
            },
        ),
    ),
    (
        "double answer to one request",
        "DUPLICATE_ANSWER",
        lambda w: ("BANK_A", "bill.sign", {"request_id": _answered(w)}),
    ),
    (
        "answer to a revoked request",
        "REQUEST_NOT_PENDING",
        lambda w: ("BANK_A", "bill.sign", {"request_id": _revoked(w)}),
    ),
    (
        "answer by the wrong party",
        "SIGNATURE_INVALID",
        lambda w: ("BANK_B", "bill.sign", {"request_id": _pending(w)}),
    ),
    (
        "unknown request",
        "UNKNOWN_REQUEST",
        lambda w: ("BANK_B", "bill.sign", {"request_id": "00" * 32}),
    ),
    (
        "unknown bill",
        "UNKNOWN_BILL",
        lambda w: ("ENT_B", "bill.endorse", {"package_no": w.package_no(), "endorsee": "ENT_C"}),
    ),
    (
        "unknown piece",
        "UNKNOWN_PIECE",
        lambda w: (
            "ENT_B",
            "bill.endorse",
            {"package_no": w.received(), "range": "1-5", "endorsee": "ENT_C"},
        ),
    ),
    (
        "endorsee not registered",
        "PARTY_NOT_REGISTERED",
        lambda w: ("ENT_B", "bill.endorse", {"package_no": w.received(), "endorsee": "GHOST"}),
    ),
    ("unknown operation", "UNKNOWN_OPERATION", lambda w: ("ENT_B", "bill.teleport", {})),
    (
        "unknown argument",
        "BAD_ARGUMENT",
        lambda w: (
            "ENT_B",
            "bill.endorse",
            {"package_no": w.received(), "endorsee": "ENT_C", "condition": "only if it rains"},
        ),
    ),
    ("unknown sender", "UNKNOWN_SENDER", lambda w: ("GHOST", "bill.sweep", {})),
]


def _pledged(w: Any) -> str:
    p = w.received(splittable=False)
    w.two_step("ENT_B", "bill.pledge", "BANK_A", package_no=p, pledgee="BANK_A")
    return str(p)


def _frozen(w: Any) -> str:
    p = w.received()
    w.ok("REGULATOR", "bill.freeze", package_no=p, case_ref="C-1")
    return str(p)


def _locked(w: Any) -> str:
    p = w.received()
    w.request("ENT_B", "bill.endorse", package_no=p, endorsee="ENT_C")
    return str(p)


def _matured(w: Any) -> str:
    p = w.received()
    w.at("2024-08-30", p)
    return str(p)


def _unaccepted_matured(w: Any) -> str:
    p = w.issue()
    w.at("2024-08-30", p)
    return str(p)


def _overdue(w: Any) -> str:
    p = w.received()
    w.at("2024-09-10", p)  # window 2024-08-30 .. 2024-09-09
    return str(p)


def _expired(w: Any) -> str:
    p = w.received()
    w.at("2026-08-31", p)
    return str(p)


def _refused_long_ago(w: Any) -> str:
    p = _refused(w)
    w.at("2025-03-01", p)  # six months after the refusal of 2024-08-30
    return p


def _undisclosed(w: Any) -> str:
    p = w.issue(kind="COMMERCIAL", acceptor="ENT_D")
    w.two_step("ENT_A", "bill.request_acceptance", "ENT_D", package_no=p)
    w.two_step("ENT_A", "bill.request_receipt", "ENT_B", package_no=p)
    return str(p)


def _pending(w: Any) -> str:
    return str(w.request("ENT_A", "bill.request_acceptance", package_no=w.issue()))


def _answered(w: Any) -> str:
    rid = _pending(w)
    w.sign("BANK_A", rid)
    return rid


def _revoked(w: Any) -> str:
    rid = _pending(w)
    w.ok("ENT_A", "bill.revoke", request_id=rid)
    return rid


@pytest.mark.parametrize(("name", "code", "case"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_rejections(world: Any, name: str, code: str, case: Case) -> None:
    sender, operation, args = case(world)
    outcome = world.fails(code, sender, operation, **args)
    assert outcome.message[0].isupper()


B12_CODES = {
    "BILL_TERM_EXCEEDED",
    "BILL_AMOUNT_INVALID",
    "PARTY_NOT_REGISTERED",
    "NOT_HOLDER",
    "PIECE_LOCKED",
    "WRONG_STATE",
    "NON_TRANSFERABLE",
    "PLEDGED",
    "FROZEN",
    "AFTER_MATURITY",
    "WINDOW_CLOSED",
    "PARTIAL_ENDORSEMENT",
    "SPLIT_INVALID",
    "SELF_DEALING",
    "COUNTERPARTY_TYPE",
    "DISCLOSURE_MISSING",
    "RECOURSE_NOT_ALLOWED",
    "DUPLICATE_ANSWER",
    "REQUEST_NOT_PENDING",
    "SIGNATURE_INVALID",
    "REPO_TERM_INVALID",
    "CURRENCY_INVALID",
}


def test_every_b12_code_has_a_row() -> None:
    covered = {code for _, code, _ in REJECTIONS}
    assert covered >= B12_CODES


def test_rejections_are_identical_on_two_replicas(world: Any) -> None:
    outcomes = []
    for w in (world, type(world)()):
        sender, operation, args = REJECTIONS[0][2](w)
        outcomes.append(w.call(sender, operation, **args))
        package_no = _refused(w)
        outcomes.append(w.call("ENT_C", "bill.recourse", package_no=package_no, recoursee="ENT_D"))
    assert outcomes[0] == outcomes[2] and outcomes[1] == outcomes[3]
    assert outcomes[1].code == "RECOURSE_NOT_ALLOWED"
