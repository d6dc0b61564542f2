"""Governance of identity changes: M-of-N admin approval (contracts/governance.py).

Covers the genesis quorum (validation and storage), the direct operations refusing changes to
others with GOVERNANCE_REQUIRED, quorum arithmetic with M = 2 of 3 admins, votes that do not
count (double votes, non-admins, deactivated admins), expiry, withdrawal, rejection, LAST_ADMIN
and the quorum floor kept through governance, the audit trail (events, history, proposal
record, queries), and a Hypothesis state machine over random vote sequences checking that a
proposal executes exactly when the approvals of currently active admins reach M.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from ibledger.contracts.core import Outcome
from ibledger.contracts.errors import GenesisError
from ibledger.contracts.governance import OPEN_PROPOSALS_MAX, PROPOSAL_LIFETIME_MAX_MS
from ibledger.contracts.runtime import genesis_writes
from ibledger.contracts.testing import (
    DAY_MS,
    Consortium,
    consortium_genesis,
    demo_public_key,
    kinds,
)

ADMINS = ("ADMIN", "ADMIN2", "ADMIN3")


NEW_KEY = {"suite": "ed25519-sha256", "public_key": demo_public_key(777)}


@pytest.fixture
def consortium() -> Consortium:
    return Consortium()


# --- genesis ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (None, "genesis 'governance' must be a map with admin_quorum"),
        ({}, r"governance.admin_quorum must be an integer from 1 to 3 .*got None"),
        ({"admin_quorum": 0}, r"from 1 to 3 \(the number of genesis consortium admins\), got 0"),
        ({"admin_quorum": 4}, r"from 1 to 3 .*got 4"),
        ({"admin_quorum": True}, r"got True"),
        ({"admin_quorum": "2"}, r"got '2'"),
        ({"admin_quorum": 2, "quorum": 2}, r"governance.quorum is not a governance parameter"),
    ],
)
def test_genesis_quorum_is_validated(section: Any, message: str) -> None:
    genesis = consortium_genesis()
    if section is None:
        del genesis["governance"]
    else:
        genesis["governance"] = section
    with pytest.raises(GenesisError, match=message):
        genesis_writes(genesis)


def test_genesis_quorum_is_stored_and_queryable(consortium: Consortium) -> None:
    assert consortium.ledger.query("governance") == {
        "admin_quorum": 2,
        "active_admins": ["ADMIN", "ADMIN2", "ADMIN3"],
    }


# --- the direct route is closed for changes to others ------------------------------------------


def test_an_admin_cannot_take_over_another_bank_directly(consortium: Consortium) -> None:
    before = consortium.keys_of("BANK_A")
    out = consortium.expect(
        "GOVERNANCE_REQUIRED", "ADMIN", "identity.add_key", participant="BANK_A", **NEW_KEY
    )
    assert "2 consortium admin(s)" in out.message and "governance.propose" in out.message
    consortium.expect(
        "GOVERNANCE_REQUIRED",
        "ADMIN",
        "identity.revoke_key",
        participant="BANK_A",
        key_id=before[0],
    )
    for operation, args in (
        ("identity.deactivate", {"participant": "BANK_A"}),
        ("identity.reactivate", {"participant": "BANK_A"}),
        ("identity.update_roles", {"participant": "BANK_A", "roles": ["bank", "regulator"]}),
    ):
        consortium.expect("GOVERNANCE_REQUIRED", "ADMIN", operation, **args)
    assert consortium.keys_of("BANK_A") == before
    # A participant still manages its own keys alone.
    consortium.expect("OK", "BANK_A", "identity.add_key", **NEW_KEY)
    assert len(consortium.keys_of("BANK_A")) == 2


# --- quorum arithmetic ------------------------------------------------------------------------


def test_two_of_three_approvals_execute_the_change(consortium: Consortium) -> None:
    before = consortium.keys_of("BANK_A")
    proposed = consortium.propose("ADMIN", "identity.add_key", participant="BANK_A", **NEW_KEY)
    assert kinds(proposed) == ["governance.proposed"]
    proposal = consortium.proposal_id(proposed)
    assert len(proposal) == 64  # the proposing transaction's id
    assert consortium.keys_of("BANK_A") == before  # one approval of two: nothing yet
    record = consortium.show(proposal)
    assert (record["status"], record["proposer"], record["action"]) == (
        "open",
        "ADMIN",
        "identity.add_key",
    )
    assert [vote["admin"] for vote in record["approvals"]] == ["ADMIN"]
    assert [p["id"] for p in consortium.ledger.query("governance_proposals")] == [proposal]

    consortium.vote("ADMIN", "approve", proposal, "ALREADY_VOTED")
    consortium.vote("BANK_B", "approve", proposal, "FORBIDDEN")  # not an admin
    approved = consortium.vote("ADMIN3", "approve", proposal)
    assert kinds(approved) == ["governance.approved", "identity.key_added", "governance.executed"]
    executed = approved.events[-1].attrs
    assert executed["approvals"] == ["ADMIN", "ADMIN3"] and executed["quorum"] == 2
    assert len(consortium.keys_of("BANK_A")) == 2
    assert consortium.show(proposal)["status"] == "executed"
    assert consortium.ledger.query("governance_proposals") == []
    assert [
        p["id"] for p in consortium.ledger.query("governance_proposals", {"status": "executed"})
    ] == [proposal]
    consortium.vote("ADMIN2", "approve", proposal, "PROPOSAL_CLOSED")
    consortium.vote("ADMIN2", "reject", proposal, "PROPOSAL_CLOSED")
    # The audit trail: the target's history holds the proposal, the vote and the change.
    history = consortium.ledger.query("events", {"scope": "p/BANK_A"}, viewer="REGULATOR")
    assert [entry["kind"] for entry in history] == [
        "governance.proposed",
        "governance.approved",
        "identity.key_added",
        "governance.executed",
    ]


def test_quorum_of_one_executes_at_once() -> None:
    consortium = Consortium(quorum=1)
    out = consortium.propose("ADMIN2", "identity.deactivate", participant="ENT_D")
    assert kinds(out) == ["governance.proposed", "identity.deactivated", "governance.executed"]


def test_unanimity_needs_every_admin() -> None:
    consortium = Consortium(quorum=3)
    proposal = consortium.proposal_id(
        consortium.propose("ADMIN", "identity.deactivate", participant="ENT_D")
    )
    assert "governance.executed" not in kinds(consortium.vote("ADMIN2", "approve", proposal))
    assert "governance.executed" in kinds(consortium.vote("ADMIN3", "approve", proposal))


def test_a_deactivated_admins_approval_no_longer_counts() -> None:
    consortium = Consortium(quorum=2, admins=4)
    proposal = consortium.proposal_id(
        consortium.propose("ADMIN4", "identity.deactivate", participant="ENT_D")
    )
    # ADMIN, ADMIN2 deactivate ADMIN4, the proposer, through governance.
    removal = consortium.proposal_id(
        consortium.propose("ADMIN", "identity.deactivate", participant="ADMIN4")
    )
    consortium.vote("ADMIN2", "approve", removal)
    assert consortium.ledger.query("participant", {"id": "ADMIN4"})["active"] is False
    # ADMIN4's approval is on record but does not count: one more approval is not enough ...
    first = consortium.vote("ADMIN3", "approve", proposal)
    assert "governance.executed" not in kinds(first)
    assert [v["admin"] for v in consortium.show(proposal)["approvals"]] == ["ADMIN4", "ADMIN3"]
    # ... a second active admin's is.
    assert "governance.executed" in kinds(consortium.vote("ADMIN", "approve", proposal))


def test_an_admin_stripped_of_the_role_no_longer_counts(consortium: Consortium) -> None:
    proposal = consortium.proposal_id(
        consortium.propose("ADMIN3", "identity.deactivate", participant="ENT_D")
    )
    demote = consortium.proposal_id(
        consortium.propose(
            "ADMIN", "identity.update_roles", participant="ADMIN3", roles=["regulator"]
        )
    )
    consortium.vote("ADMIN2", "approve", demote)
    # ADMIN3 is no admin any more: its approval is void and it may not vote.
    consortium.vote("ADMIN3", "approve", proposal, "FORBIDDEN")
    assert "governance.executed" not in kinds(consortium.vote("ADMIN", "approve", proposal))
    assert "governance.executed" in kinds(consortium.vote("ADMIN2", "approve", proposal))


# --- expiry, withdrawal, rejection -----------------------------------------------------------


def test_expired_proposals_cannot_be_approved(consortium: Consortium) -> None:
    proposal = consortium.proposal_id(
        consortium.propose("ADMIN", "identity.deactivate", participant="ENT_D", lifetime_ms=1_000)
    )
    consortium.ledger.timestamp_ms += 1_000
    consortium.vote("ADMIN2", "approve", proposal, "PROPOSAL_EXPIRED")
    assert consortium.ledger.query("participant", {"id": "ENT_D"})["active"] is True
    # The next governance transaction closes it, with an event.
    other = consortium.propose("ADMIN2", "identity.deactivate", participant="ENT_C")
    assert kinds(other)[0] == "governance.expired"
    assert consortium.show(proposal)["status"] == "expired"
    consortium.vote("ADMIN3", "approve", proposal, "PROPOSAL_EXPIRED")


# The test ledger moves its clock 1 ms per transaction: lifetime_ms is counted from 1 ms before
# the block time, so 1 is the block time itself and PROPOSAL_LIFETIME_MAX_MS + 2 one ms too far.
@pytest.mark.parametrize("lifetime_ms", [1, 0, -1, PROPOSAL_LIFETIME_MAX_MS + 2])
def test_expiry_must_be_in_the_future_and_bounded(consortium: Consortium, lifetime_ms: int) -> None:
    out = consortium.propose(
        "ADMIN",
        "identity.deactivate",
        participant="ENT_D",
        code="BAD_ARGUMENT",
        lifetime_ms=lifetime_ms,
    )
    assert "expires_at_ms" in out.message


def test_expiry_may_be_the_longest_lifetime(consortium: Consortium) -> None:
    consortium.propose(
        "ADMIN",
        "identity.deactivate",
        participant="ENT_D",
        lifetime_ms=PROPOSAL_LIFETIME_MAX_MS + 1,
    )


def test_withdrawal_by_the_proposer_only(consortium: Consortium) -> None:
    proposal = consortium.proposal_id(
        consortium.propose("ADMIN", "identity.deactivate", participant="ENT_D")
    )
    consortium.vote("ADMIN2", "withdraw", proposal, "FORBIDDEN")
    assert kinds(consortium.vote("ADMIN", "withdraw", proposal)) == ["governance.withdrawn"]
    consortium.vote("ADMIN2", "approve", proposal, "PROPOSAL_CLOSED")
    consortium.vote("ADMIN", "withdraw", proposal, "PROPOSAL_CLOSED")
    assert consortium.ledger.query("participant", {"id": "ENT_D"})["active"] is True


def test_enough_rejections_close_a_proposal(consortium: Consortium) -> None:
    proposal = consortium.proposal_id(
        consortium.propose("ADMIN", "identity.deactivate", participant="ENT_D")
    )
    first = consortium.vote("ADMIN2", "reject", proposal)
    assert first.events[0].attrs["closed"] is False  # ADMIN and ADMIN3 could still approve
    consortium.vote("ADMIN2", "approve", proposal, "ALREADY_VOTED")
    second = consortium.vote("ADMIN3", "reject", proposal)
    assert second.events[0].attrs["closed"] is True
    assert consortium.show(proposal)["status"] == "rejected"
    consortium.vote("ADMIN", "withdraw", proposal, "PROPOSAL_CLOSED")


def test_unknown_proposals_and_malformed_ids(consortium: Consortium) -> None:
    consortium.vote("ADMIN", "approve", "ab" * 32, "PROPOSAL_NOT_FOUND")
    consortium.vote("ADMIN", "approve", "not-an-id", "BAD_ARGUMENT")
    consortium.propose("ADMIN", "identity.update_details", code="BAD_ARGUMENT", participant="X")
    consortium.expect(
        "BAD_ARGUMENT",
        "ADMIN",
        "governance.propose",
        action="identity.deactivate",
        args=["ENT_D"],
        expires_at_ms=consortium.ledger.timestamp_ms + DAY_MS,
    )
    # A non-admin cannot propose.
    consortium.propose("BANK_A", "identity.deactivate", code="FORBIDDEN", participant="ENT_D")


def test_proposals_are_checked_when_made(consortium: Consortium) -> None:
    consortium.propose("ADMIN", "identity.deactivate", code="UNKNOWN_PARTICIPANT", participant="X")
    consortium.propose(
        "ADMIN", "identity.add_key", code="BAD_ARGUMENT", participant="BANK_A", colour="red"
    )
    consortium.propose(
        "ADMIN",
        "identity.revoke_key",
        code="KEY_LAST_ACTIVE",
        participant="BANK_A",
        key_id=consortium.keys_of("BANK_A")[0],
    )


def test_open_proposals_per_admin_are_bounded(consortium: Consortium) -> None:
    for n in range(OPEN_PROPOSALS_MAX):
        consortium.propose(
            "ADMIN", "identity.deactivate", participant="ENT_D", lifetime_ms=DAY_MS + n
        )
    consortium.propose("ADMIN", "identity.deactivate", code="PROPOSAL_LIMIT", participant="ENT_D")
    consortium.propose("ADMIN2", "identity.deactivate", participant="ENT_D")  # others may
    consortium.ledger.timestamp_ms += 2 * DAY_MS  # they expire and free the slots
    out = consortium.propose("ADMIN", "identity.deactivate", participant="ENT_D")
    assert kinds(out).count("governance.expired") == OPEN_PROPOSALS_MAX + 1


# --- identity rules hold through governance ---------------------------------------------------


def test_last_admin_and_quorum_floor_through_governance() -> None:
    consortium = Consortium(quorum=2)
    # Two of three admins may remove the third: two remain, the quorum is still reachable.
    removal = consortium.proposal_id(
        consortium.propose("ADMIN", "identity.deactivate", participant="ADMIN3")
    )
    consortium.vote("ADMIN2", "approve", removal)
    # Removing one more would leave one admin, below the quorum of two.
    proposed = consortium.propose(
        "ADMIN",
        "identity.update_roles",
        code="ADMIN_QUORUM_UNREACHABLE",
        participant="ADMIN2",
        roles=["regulator"],
    )
    assert "quorum of 2" in proposed.message
    single = Consortium(quorum=1, admins=1)
    single.propose("ADMIN", "identity.deactivate", code="LAST_ADMIN", participant="ADMIN")


def test_a_change_the_state_refuses_by_then_is_not_executed(consortium: Consortium) -> None:
    proposal = consortium.proposal_id(
        consortium.propose("ADMIN", "identity.add_key", participant="BANK_A", **NEW_KEY)
    )
    # Meanwhile the key gets registered to ENT_A, by ENT_A itself.
    consortium.expect("OK", "ENT_A", "identity.add_key", **NEW_KEY)
    out = consortium.vote("ADMIN2", "approve", proposal, "KEY_ALREADY_REGISTERED")
    assert proposal in out.message
    assert consortium.show(proposal)["status"] == "open"


def test_registering_an_admin_needs_the_quorum(consortium: Consortium) -> None:
    admin = {
        "id": "ADMIN9",
        "name": "Puppet",
        "roles": ["consortium_admin"],
        "keys": [{"suite": "ed25519-sha256", "public_key": demo_public_key(999)}],
    }
    consortium.expect("GOVERNANCE_REQUIRED", "ADMIN", "identity.register", **admin)
    proposal = consortium.proposal_id(consortium.propose("ADMIN", "identity.register", **admin))
    out = consortium.vote("ADMIN2", "approve", proposal)
    assert "identity.registered" in kinds(out)
    assert "ADMIN9" in consortium.ledger.query("governance")["active_admins"]


def test_a_targets_own_key_change_by_governance_key_signs(consortium: Consortium) -> None:
    """After an approved key replacement the new key signs for the bank, the old one does not."""
    old = consortium.keys_of("BANK_A")[0]
    proposal = consortium.proposal_id(
        consortium.propose("ADMIN", "identity.add_key", participant="BANK_A", **NEW_KEY)
    )
    consortium.vote("ADMIN2", "approve", proposal)
    revoke = consortium.proposal_id(
        consortium.propose("ADMIN", "identity.revoke_key", participant="BANK_A", key_id=old)
    )
    consortium.vote("ADMIN3", "approve", revoke)
    assert consortium.call("BANK_A", "identity.add_key", **NEW_KEY).code == "SIGNER_NOT_SENDER"


# --- model: random vote sequences -------------------------------------------------------------

VOTERS = ("ADMIN", "ADMIN2", "ADMIN3", "ADMIN4", "BANK_A")


@settings(max_examples=150, stateful_step_count=25, deadline=None, database=None, derandomize=True)
class GovernanceModel(RuleBasedStateMachine):
    """Votes, withdrawals, admin deactivations and time on one proposal at a time (4 admins,
    quorum 2 or 3). The model predicts every outcome code; the ledger must agree."""

    def __init__(self) -> None:
        super().__init__()
        self.quorum = 2
        self.reset(2)

    def reset(self, quorum: int) -> None:
        self.quorum = quorum
        self.c = Consortium(quorum=quorum, admins=4)
        self.active = {"ADMIN", "ADMIN2", "ADMIN3", "ADMIN4"}
        self.proposal: str | None = None
        self.status = "none"
        self.approvals: list[str] = []
        self.rejections: list[str] = []
        self.expires_at_ms = 0
        self.target_active = True

    @rule(quorum=st.sampled_from([2, 3]))
    def restart(self, quorum: int) -> None:
        self.reset(quorum)

    def _expired(self) -> bool:
        return self.c.ledger.timestamp_ms + 1 >= self.expires_at_ms  # submit moves the clock 1 ms

    def _counted(self) -> int:
        return len([pid for pid in self.approvals if pid in self.active])

    @rule(proposer=st.sampled_from(VOTERS), lifetime_ms=st.sampled_from([5, 50, DAY_MS]))
    def propose(self, proposer: str, lifetime_ms: int) -> None:
        if self.status == "open" and not self._expired():
            return  # one proposal at a time keeps the model small
        action = "identity.deactivate" if self.target_active else "identity.reactivate"
        if proposer not in self.active:
            code = "FORBIDDEN" if proposer == "BANK_A" else "SENDER_INACTIVE"
            self.c.propose(proposer, action, code=code, participant="ENT_D")
            return
        out = self.c.propose(proposer, action, lifetime_ms=lifetime_ms, participant="ENT_D")
        self.proposal = self.c.proposal_id(out)
        (event,) = [e for e in out.events if e.kind == "governance.proposed"]
        self.expires_at_ms = int(event.attrs["expires_at_ms"])
        self.approvals, self.rejections, self.status = [proposer], [], "open"
        self._settle(out)

    def _settle(self, out: Outcome) -> None:
        executed = "governance.executed" in kinds(out)
        assert executed == (self._counted() >= self.quorum), (self._counted(), self.quorum)
        if executed:
            self.status = "executed"
            self.target_active = not self.target_active

    def _closed_code(self) -> str | None:
        if self.status == "expired" or (self.status == "open" and self._expired()):
            return "PROPOSAL_EXPIRED"
        if self.status != "open":
            return "PROPOSAL_CLOSED"
        return None

    @rule(voter=st.sampled_from(VOTERS), approve=st.booleans())
    def vote(self, voter: str, approve: bool) -> None:
        if self.proposal is None:
            return
        verb = "approve" if approve else "reject"
        if voter == "BANK_A":
            code: str | None = "FORBIDDEN"
        elif voter not in self.active:
            code = "SENDER_INACTIVE"
        else:
            code = self._closed_code()
            if code is None and voter in self.approvals + self.rejections:
                code = "ALREADY_VOTED"
        if code is not None:
            if code == "PROPOSAL_EXPIRED":
                self.status = "expired"
            self.c.vote(voter, verb, self.proposal, code)
            return
        out = self.c.vote(voter, verb, self.proposal)
        if approve:
            self.approvals.append(voter)
            self._settle(out)
        else:
            self.rejections.append(voter)
            could = [pid for pid in self.active if pid not in self.rejections]
            if len(could) < self.quorum:
                self.status = "rejected"

    @rule(admin=st.sampled_from(["ADMIN3", "ADMIN4"]))
    def deactivate_admin(self, admin: str) -> None:
        """ADMIN and ADMIN2 (never deactivated) remove an admin with a proposal of their own."""
        if admin not in self.active or len(self.active) - 1 < self.quorum:
            return
        # The open proposal stays open: approvals the removed admin gave it must stop counting.
        out = self.c.propose("ADMIN", "identity.deactivate", participant=admin)
        removal = self.c.proposal_id(out)
        for voter in ("ADMIN2", "ADMIN3", "ADMIN4"):
            if "governance.executed" in kinds(out):
                break
            if voter in self.active:
                out = self.c.vote(voter, "approve", removal)
        assert "governance.executed" in kinds(out)
        self.active.discard(admin)

    @rule(ms=st.sampled_from([1, 10, 100]))
    def wait(self, ms: int) -> None:
        self.c.ledger.timestamp_ms += ms

    @invariant()
    def record_matches(self) -> None:
        if self.proposal is None:
            return
        record = self.c.show(self.proposal)
        assert [v["admin"] for v in record["approvals"]] == self.approvals
        assert [v["admin"] for v in record["rejections"]] == self.rejections
        if self.status in ("executed", "rejected"):
            assert record["status"] == self.status
        active = self.c.ledger.query("participant", {"id": "ENT_D"})["active"]
        assert active is self.target_active


TestGovernanceModel = GovernanceModel.TestCase


def test_the_quorum_itself_changes_by_the_quorum_in_force(consortium: Consortium) -> None:
    consortium.propose(
        "ADMIN", "governance.set_admin_quorum", code="ADMIN_QUORUM_UNREACHABLE", admin_quorum=4
    )
    consortium.propose("ADMIN", "governance.set_admin_quorum", code="BAD_ARGUMENT", admin_quorum=2)
    consortium.propose("ADMIN", "governance.set_admin_quorum", code="BAD_ARGUMENT", admin_quorum=0)
    raise_to_three = consortium.proposal_id(
        consortium.propose("ADMIN", "governance.set_admin_quorum", admin_quorum=3)
    )
    out = consortium.vote("ADMIN2", "approve", raise_to_three)
    assert kinds(out) == [
        "governance.approved",
        "governance.quorum_changed",
        "governance.executed",
    ]
    assert consortium.ledger.query("governance")["admin_quorum"] == 3
    # Now two approvals are no longer enough.
    proposal = consortium.proposal_id(
        consortium.propose("ADMIN", "identity.deactivate", participant="ENT_D")
    )
    assert "governance.executed" not in kinds(consortium.vote("ADMIN2", "approve", proposal))
    assert "governance.executed" in kinds(consortium.vote("ADMIN3", "approve", proposal))
    # With a quorum of three, no admin may leave (two would remain).
    consortium.propose(
        "ADMIN", "identity.deactivate", code="ADMIN_QUORUM_UNREACHABLE", participant="ADMIN3"
    )


# --- certificate revocation -----------------------------------------------------------------

FINGERPRINT = "ab" * 32


def test_a_certificate_is_revoked_by_the_quorum_at_the_executing_height() -> None:
    consortium = Consortium(quorum=2)
    proposal = consortium.proposal_id(
        consortium.propose(
            "ADMIN", "pki.revoke_certificate", certificate_sha256=FINGERPRINT, reason="key leaked"
        )
    )
    assert not any(k.startswith(b"pki/revoked/") for k, _ in consortium.ledger.state.items())
    out = consortium.vote("ADMIN2", "approve", proposal)
    assert kinds(out) == [
        "governance.approved",
        "governance.certificate_revoked",
        "governance.executed",
    ]
    (revoked,) = [e for e in out.events if e.kind == "governance.certificate_revoked"]
    assert revoked.attrs == {"certificate_sha256": FINGERPRINT, "reason": "key leaked"}
    key = ("pki/revoked/" + FINGERPRINT).encode()
    assert any(k == key for k, _ in consortium.ledger.state.items())


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ({"certificate_sha256": "AB" * 32, "reason": "x"}, "BAD_ARGUMENT"),  # upper case
        ({"certificate_sha256": "ab" * 31, "reason": "x"}, "BAD_ARGUMENT"),  # 31 bytes
        ({"certificate_sha256": FINGERPRINT}, "BAD_ARGUMENT"),  # no reason
        ({"certificate_sha256": FINGERPRINT, "reason": "x", "extra": 1}, "BAD_ARGUMENT"),
    ],
)
def test_a_revocation_with_bad_arguments_is_not_put_to_a_vote(
    args: dict[str, Any], code: str
) -> None:
    Consortium(quorum=2).propose("ADMIN", "pki.revoke_certificate", code=code, **args)


def test_a_certificate_is_revoked_once_and_only_on_an_admins_proposal() -> None:
    consortium = Consortium(quorum=1)
    consortium.propose("ADMIN", "pki.revoke_certificate", certificate_sha256=FINGERPRINT,
                       reason="key leaked")  # fmt: skip
    consortium.propose("ADMIN2", "pki.revoke_certificate", code="CERTIFICATE_ALREADY_REVOKED",
                       certificate_sha256=FINGERPRINT, reason="again")  # fmt: skip
    # Only consortium admins propose, whatever the quorum.
    consortium.propose("ENT_D", "pki.revoke_certificate", code="FORBIDDEN",
                       certificate_sha256="cd" * 32, reason="x")  # fmt: skip
