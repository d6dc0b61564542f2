"""Validator membership by epoch, changed by M-of-N governance (contracts/membership.py).

Covers epoch 0 from genesis (and a genesis without validators, which has no membership), the
height a change takes effect at, adding, removing and rotating through proposals that execute
only with their approvals, one pending change at a time, the set's floor, distinct ids, keys and
addresses, no reuse of a retired key, argument checks before a vote, and the audit trail.
"""

from __future__ import annotations

from typing import Any

import pytest

from ibledger.contracts import membership
from ibledger.contracts.core import Store
from ibledger.contracts.errors import GenesisError
from ibledger.contracts.runtime import genesis_writes
from ibledger.contracts.testing import (
    Consortium,
    TestLedger,
    consortium_genesis,
    demo_public_key,
    kinds,
)

CHECKPOINT_INTERVAL = 10
WATERMARK_WINDOW = 40


def validator_entry(n: int) -> dict[str, Any]:
    return {
        "id": f"node{n}",
        "public_key": demo_public_key(500 + n).hex(),
        "peer_address": f"10.0.0.{n + 1}:7100",
        "api_address": f"10.0.0.{n + 1}:7200",
    }


def validators_genesis(count: int = 4) -> dict[str, Any]:
    genesis = consortium_genesis(quorum=2)
    genesis["validators"] = [validator_entry(n) for n in range(count)]
    genesis["consensus"] = {
        "checkpoint_interval": CHECKPOINT_INTERVAL,
        "watermark_window": WATERMARK_WINDOW,
    }
    return genesis


class Members(Consortium):
    def __init__(self, count: int = 4) -> None:
        self.ledger = TestLedger(validators_genesis(count))

    def store(self) -> Store:
        return Store(self.ledger.state)

    def config(self) -> membership.MembershipConfig:
        config = membership.load_config(self.store())
        assert config is not None
        return config

    def change(self, action: str, **args: Any) -> Any:
        """Propose as ADMIN, approve as ADMIN2 (M = 2): the approving outcome."""
        proposal = self.proposal_id(self.propose("ADMIN", action, **args))
        return self.vote("ADMIN2", "approve", proposal)

    def epoch(self, number: int) -> membership.Epoch:
        epoch = membership.load_epoch(self.store(), number)
        assert epoch is not None
        return epoch

    def latest(self) -> membership.Epoch:
        epoch = membership.load_latest_epoch(self.store())
        assert epoch is not None
        return epoch


def test_genesis_writes_epoch_zero_with_the_genesis_validators() -> None:
    members = Members()
    epoch = members.latest()
    assert (epoch.number, epoch.from_height) == (0, 0)
    assert [v.id for v in epoch.validators] == ["node0", "node1", "node2", "node3"]
    assert epoch.validators[1].public_key == demo_public_key(501)
    assert epoch.validators[1].peer_address == "10.0.0.2:7100"


def test_a_genesis_without_validators_has_no_membership_to_change() -> None:
    consortium = Consortium()
    assert not any(k.startswith(b"membership/") for k, _ in consortium.ledger.state.items())
    consortium.propose(
        "ADMIN", "membership.remove_validator", code="MEMBERSHIP_UNAVAILABLE", validator="node0"
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda g: g["validators"][1].update(id="-bad"), r"validators\[1\]: must be a validator"),
        (lambda g: g["validators"][2].update(public_key="ab"), r"validators\[2\]: must be a 32"),
        (lambda g: g["validators"][0].update(peer_address="x:0"), r"port from 1 to 65535"),
        (lambda g: g["validators"][3].update(id="node0"), "Validator node0 is listed twice"),
        (lambda g: g.update(consensus=[]), "genesis 'consensus' must be a map"),
        (lambda g: g["consensus"].update(watermark_window=0), "watermark_window must be a pos"),
        (lambda g: g.update(validators=[]), "validators must be a list of 1 to 256"),
    ],
)
def test_genesis_validators_are_checked(mutate: Any, message: str) -> None:
    genesis = validators_genesis()
    mutate(genesis)
    with pytest.raises(GenesisError, match=message):
        genesis_writes(genesis)


@pytest.mark.parametrize(
    ("height", "expected"),
    [(0, 40), (1, 50), (9, 50), (10, 50), (11, 60), (57, 100)],
)
def test_the_old_set_ends_at_the_first_checkpoint_a_window_ahead(
    height: int, expected: int
) -> None:
    config = membership.MembershipConfig("ed25519-sha256", CHECKPOINT_INTERVAL, WATERMARK_WINDOW)
    assert membership.schedule_height(height, config) == expected
    assert expected >= height + WATERMARK_WINDOW and expected % CHECKPOINT_INTERVAL == 0


def test_adding_a_validator_schedules_the_next_epoch_once_approved() -> None:
    members = Members()
    new = validator_entry(4)
    proposal = members.proposal_id(
        members.propose(
            "ADMIN",
            "membership.add_validator",
            validator=new["id"],
            public_key=new["public_key"],
            peer_address=new["peer_address"],
            api_address=new["api_address"],
        )
    )
    assert members.latest().number == 0  # proposed, not yet approved
    outcome = members.vote("ADMIN2", "approve", proposal)
    assert kinds(outcome) == ["governance.approved", "membership.scheduled", "governance.executed"]
    executed_at = members.ledger.height
    epoch = members.latest()
    expected_from = membership.schedule_height(executed_at, members.config()) + 1
    assert (epoch.number, epoch.from_height) == (1, expected_from)
    assert [v.id for v in epoch.validators] == ["node0", "node1", "node2", "node3", "node4"]
    assert epoch.validator("node4") == membership.ValidatorEntry(
        "node4", bytes.fromhex(new["public_key"]), new["peer_address"], new["api_address"]
    )
    # The set in force until then is untouched.
    assert [v.id for v in members.epoch(0).validators] == ["node0", "node1", "node2", "node3"]
    (event,) = [e for e in outcome.events if e.kind == "membership.scheduled"]
    assert event.attrs == {
        "epoch": 1,
        "from_height": expected_from,
        "change": {"add": "node4"},
        "validators": ["node0", "node1", "node2", "node3", "node4"],
    }
    history = [k for k, _ in members.ledger.state.items() if k.startswith(b"hist/membership/")]
    assert len(history) == 1, history


def test_one_change_at_a_time_until_the_scheduled_epoch_is_in_force() -> None:
    members = Members(count=5)
    members.change("membership.remove_validator", validator="node4")
    from_height = members.latest().from_height
    members.propose(
        "ADMIN", "membership.remove_validator", code="MEMBERSHIP_CHANGE_PENDING", validator="node3"
    )
    members.ledger.height = from_height - 2  # the next transaction is at from_height - 1
    members.propose(
        "ADMIN", "membership.remove_validator", code="MEMBERSHIP_CHANGE_PENDING", validator="node3"
    )
    members.ledger.height = from_height - 1
    # Epoch 1 has four validators: the floor now refuses a removal, on the new set.
    members.propose(
        "ADMIN", "membership.remove_validator", code="MEMBERSHIP_TOO_SMALL", validator="node3"
    )
    members.change("membership.rotate_validator_key", validator="node3",
                   public_key=demo_public_key(600).hex())  # fmt: skip
    assert members.latest().number == 2
    assert members.latest().validator("node3").public_key == demo_public_key(600)  # type: ignore[union-attr]
    assert members.epoch(1).validator("node3").public_key == demo_public_key(503)  # type: ignore[union-attr]


def test_a_change_executes_only_with_its_approvals() -> None:
    members = Members(count=5)
    proposal = members.proposal_id(
        members.propose("ADMIN", "membership.remove_validator", validator="node2")
    )
    members.vote("ADMIN3", "reject", proposal)
    assert members.latest().number == 0
    outcome = members.vote("ADMIN2", "approve", proposal)
    assert "membership.scheduled" in kinds(outcome)
    assert [v.id for v in members.latest().validators] == ["node0", "node1", "node3", "node4"]
    # Only consortium admins propose.
    members.propose("ENT_D", "membership.remove_validator", code="FORBIDDEN", validator="node1")


@pytest.mark.parametrize(
    ("action", "args", "code"),
    [
        ("membership.remove_validator", {"validator": "node9"}, "VALIDATOR_UNKNOWN"),
        ("membership.remove_validator", {}, "BAD_ARGUMENT"),
        ("membership.remove_validator", {"validator": "node1", "why": "x"}, "BAD_ARGUMENT"),
        (
            "membership.rotate_validator_key",
            {"validator": "node9", "public_key": demo_public_key(1).hex()},
            "VALIDATOR_UNKNOWN",
        ),
        (
            "membership.rotate_validator_key",
            {"validator": "node1", "public_key": "00" * 32},
            "BAD_ARGUMENT",
        ),  # fmt: skip  (a small-order key)
        ("membership.add_validator", {**validator_entry(1), "validator": "node1"}, "BAD_ARGUMENT"),
    ],
)
def test_a_change_with_bad_arguments_is_not_put_to_a_vote(
    action: str, args: dict[str, Any], code: str
) -> None:
    Members(count=5).propose("ADMIN", action, code=code, **args)


def _add_args(n: int, **changes: str) -> dict[str, str]:
    entry = validator_entry(n)
    entry["validator"] = entry.pop("id")
    return {**entry, **changes}


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (_add_args(4, validator="node1"), "VALIDATOR_EXISTS"),
        (_add_args(4, public_key=validator_entry(2)["public_key"]), "KEY_IN_USE"),
        (_add_args(4, peer_address="10.0.0.2:7100"), "ADDRESS_IN_USE"),
        (_add_args(4, api_address="10.0.0.3:7100"), "ADDRESS_IN_USE"),
        (_add_args(4, peer_address="10.0.0.300:7100"), "BAD_ARGUMENT"),
        (_add_args(4, api_address="[::1]:7300"), "OK"),
        (_add_args(4, peer_address="bank-e.example:7100"), "OK"),
    ],
)
def test_an_added_validator_is_distinct_from_the_set(args: dict[str, str], code: str) -> None:
    Members().propose("ADMIN", "membership.add_validator", code=code, **args)


def test_a_retired_validator_key_is_never_used_again() -> None:
    members = Members()
    old_key = validator_entry(3)["public_key"]
    members.change("membership.rotate_validator_key", validator="node3",
                   public_key=demo_public_key(600).hex())  # fmt: skip
    members.ledger.height = members.latest().from_height
    members.propose("ADMIN", "membership.rotate_validator_key", code="KEY_ALREADY_USED",
                    validator="node3", public_key=old_key)  # fmt: skip
    members.propose("ADMIN", "membership.add_validator", code="KEY_ALREADY_USED",
                    **_add_args(4, public_key=old_key))  # fmt: skip


def test_the_membership_query_lists_every_epoch_for_anyone() -> None:
    members = Members(count=5)
    members.change("membership.remove_validator", validator="node4")
    answer = members.ledger.query("membership", {}, viewer="ENT_D")
    assert [e["epoch"] for e in answer["epochs"]] == [0, 1]
    assert answer["latest"]["from_height"] == members.latest().from_height
    assert [v["id"] for v in answer["latest"]["validators"]] == ["node0", "node1", "node2", "node3"]
    assert answer["epochs"][0]["validators"][0]["public_key"] == demo_public_key(500).hex()
