"""Governance: changes to other participants' identities, approved by M of N consortium admins.

Theory of operation
-------------------
Genesis sets ``governance.admin_quorum`` (M), 1 <= M <= the number of genesis consortium admins;
it is stored at ``cfg/governance`` so every replica reads the same M. A consortium admin proposes
one of the ``identity.GOVERNED_ACTIONS`` (add or revoke another participant's key, change roles,
deactivate, reactivate, register a participant with a governed role) or a new admin quorum
(``governance.set_admin_quorum``, 1 to the number of active admins) or the revocation of a TLS
certificate (``pki.revoke_certificate``, see ``revocations``) with its arguments and an expiry;
other admins approve or reject it; the proposer may withdraw it. All are ordinary signed
transactions.

Rules:

* The proposal id is the proposing transaction's id (hex), so it is known before it commits and
  equal on every replica.
* Proposing counts as the proposer's approval. An admin votes once per proposal, approve or
  reject (``ALREADY_VOTED``).
* Only approvals of admins that are active consortium admins *at the moment of counting* count;
  an admin deactivated or stripped of the role after voting no longer counts.
* When the counted approvals reach M, the action executes in the same transaction, through the
  same identity code as a direct operation, so every identity rule holds (``LAST_ADMIN``,
  ``KEY_LAST_ACTIVE``, ...). If the action is refused then, the whole transaction is refused and
  the vote is not recorded; the proposal stays open until it expires or is withdrawn.
* A proposal is checked when it is made: the action runs against a scratch copy of the state and
  its refusal refuses the proposal, so a proposal that could not execute is not put to a vote.
* When so many active admins have rejected that M approvals are no longer possible, the proposal
  closes as ``rejected``.
* A proposal expires at ``expires_at_ms`` (agreed block time; at most ``PROPOSAL_LIFETIME_MAX_MS``
  ahead). Votes on a closed or expired proposal are refused (``PROPOSAL_CLOSED``,
  ``PROPOSAL_EXPIRED``); every governance transaction first closes the open proposals that have
  expired, with a ``governance.expired`` event.
* An admin has at most ``OPEN_PROPOSALS_MAX`` open proposals (``PROPOSAL_LIMIT``), so the open
  index, scanned by every governance transaction, stays bounded.

Events ``governance.proposed``, ``.approved``, ``.rejected``, ``.executed``, ``.withdrawn``,
``.expired`` are recorded in the history of ``g/<proposal id>`` and of the target participant
(``p/<id>``); the proposal record itself keeps every vote with its height and time.

State keys::

    gov/p/<proposal id>     proposal record
    gov/o/<proposal id>     proposer id, while the proposal is open
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from . import membership, revocations
from .args import Args, bad
from .core import Env, Store
from .errors import ContractError, GenesisError
from .identity import (
    GOVERNANCE_KEY,
    GOVERNED_ACTIONS,
    active_admins,
    governance_record,
    load_admin_quorum,
    require_role,
)
from .stored import Fields, StoredMap, StoredValue, stored_map
from .vocabulary import ProposalStatus, Role

__all__ = [
    "ACTIONS",
    "OPEN_PREFIX",
    "OPERATIONS",
    "PROPOSAL_ID",
    "PROPOSAL_LIFETIME_MAX_MS",
    "PROPOSAL_PREFIX",
    "Proposal",
    "Vote",
    "governance_from_genesis",
    "load_proposal",
    "proposal_key",
]

PROPOSAL_PREFIX = b"gov/p/"
OPEN_PREFIX = b"gov/o/"
PROPOSAL_LIFETIME_MAX_MS = 30 * 24 * 3600 * 1000
OPEN_PROPOSALS_MAX = 32
PROPOSAL_ID = re.compile(r"[0-9a-f]{64}")
_GENESIS_FIELDS = ("admin_quorum",)


@dataclass(frozen=True, slots=True)
class Vote:
    admin: str
    height: int
    timestamp_ms: int

    def to_stored(self) -> StoredMap:
        return {"admin": self.admin, "height": self.height, "timestamp_ms": self.timestamp_ms}

    @classmethod
    def from_stored(cls, value: object) -> Vote:
        f = Fields(value, "governance vote")
        record = cls(f.str_("admin"), f.int_("height"), f.int_("timestamp_ms"))
        f.done()
        return record


@dataclass(frozen=True, slots=True)
class Proposal:
    """A governance proposal (``gov/p/<id>``); ``closed_height`` is stored once it closes."""

    id: str
    action: str
    args: StoredMap
    proposer: str
    created_height: int
    created_timestamp_ms: int
    expires_at_ms: int
    status: ProposalStatus
    approvals: tuple[Vote, ...]
    rejections: tuple[Vote, ...]
    closed_height: int | None = None

    def closed(self, status: ProposalStatus, height: int) -> Proposal:
        return replace(self, status=status, closed_height=height)

    def to_stored(self) -> StoredMap:
        stored: StoredMap = {
            "id": self.id,
            "action": self.action,
            "args": dict(self.args),
            "proposer": self.proposer,
            "created_height": self.created_height,
            "created_timestamp_ms": self.created_timestamp_ms,
            "expires_at_ms": self.expires_at_ms,
            "status": self.status.value,
            "approvals": [vote.to_stored() for vote in self.approvals],
            "rejections": [vote.to_stored() for vote in self.rejections],
        }
        if self.closed_height is not None:
            stored["closed_height"] = self.closed_height
        return stored

    @classmethod
    def from_stored(cls, value: object) -> Proposal:
        f = Fields(value, "governance proposal")
        record = cls(
            id=f.str_("id"),
            action=f.str_("action"),
            args=f.map_("args"),
            proposer=f.str_("proposer"),
            created_height=f.int_("created_height"),
            created_timestamp_ms=f.int_("created_timestamp_ms"),
            expires_at_ms=f.int_("expires_at_ms"),
            status=f.enum_("status", ProposalStatus),
            approvals=f.records("approvals", Vote.from_stored),
            rejections=f.records("rejections", Vote.from_stored),
            closed_height=f.int_("closed_height") if f.has("closed_height") else None,
        )
        f.done()
        return record

    def voters(self, kind: str) -> list[str]:
        votes = self.approvals if kind == "approvals" else self.rejections
        return [vote.admin for vote in votes]


def governance_from_genesis(section: object, admins: int) -> StoredMap:
    """The ``cfg/governance`` record from the genesis ``governance`` section; ``admins`` is the
    number of genesis consortium admins."""
    if not isinstance(section, Mapping):
        raise GenesisError("genesis 'governance' must be a map with admin_quorum")
    unknown = sorted(set(section) - set(_GENESIS_FIELDS))
    if unknown:
        raise GenesisError(
            f"governance.{unknown[0]} is not a governance parameter (known: admin_quorum)"
        )
    quorum = section.get("admin_quorum")
    if isinstance(quorum, bool) or not isinstance(quorum, int) or not 1 <= quorum <= admins:
        raise GenesisError(
            f"governance.admin_quorum must be an integer from 1 to {admins} (the number of "
            f"genesis consortium admins), got {quorum!r}"
        )
    return governance_record(quorum)


def proposal_key(proposal_id: str) -> bytes:
    return PROPOSAL_PREFIX + proposal_id.encode()


def _open_key(proposal_id: str) -> bytes:
    return OPEN_PREFIX + proposal_id.encode()


def _target(action_args: Mapping[str, StoredValue]) -> StoredValue:
    # identity.register names its participant "id"; every other action "participant".
    return action_args.get("participant", action_args.get("id"))


def _scopes(record: Proposal) -> list[str]:
    target = _target(record.args)
    return [f"g/{record.id}", *([f"p/{target}"] if isinstance(target, str) else [])]


def _save(env: Env, record: Proposal) -> None:
    env.store.put(proposal_key(record.id), record.to_stored())
    if record.status is ProposalStatus.OPEN:
        env.store.put(_open_key(record.id), record.proposer)
    else:
        env.store.delete(_open_key(record.id))


def load_proposal(store: Store, proposal_id: str) -> Proposal | None:
    stored = store.get_obj(proposal_key(proposal_id))
    return None if stored is None else Proposal.from_stored(stored)


def _expire_due(env: Env) -> None:
    now = env.ctx.timestamp_ms
    due = [key for key, _ in env.store.scan(OPEN_PREFIX)]
    for key in due:
        record = load_proposal(env.store, key[len(OPEN_PREFIX) :].decode())
        assert record is not None, "an open marker names an existing proposal"
        if now >= record.expires_at_ms:
            record = record.closed(ProposalStatus.EXPIRED, env.ctx.height)
            _save(env, record)
            env.store.emit(
                "governance.expired",
                {"proposal": record.id, "action": record.action},
                _scopes(record),
            )


def _vote(env: Env) -> Vote:
    return Vote(env.sender.id, env.ctx.height, env.ctx.timestamp_ms)


def gov_set_admin_quorum(env: Env, args: Args) -> None:
    """A new admin quorum, from 1 to the number of active admins."""
    quorum = args.int_("admin_quorum", minimum=1)
    args.done()
    admins = active_admins(env.store)
    if quorum > len(admins):
        raise ContractError(
            "ADMIN_QUORUM_UNREACHABLE",
            f"An admin quorum of {quorum} is more than the {len(admins)} active consortium "
            "admin(s); no proposal could pass again.",
        )
    previous = load_admin_quorum(env.store)
    if quorum == previous:
        raise bad("admin_quorum", f"is already {previous}")
    env.store.put(GOVERNANCE_KEY, governance_record(quorum))
    env.store.emit(
        "governance.quorum_changed",
        {"admin_quorum": quorum, "previous_admin_quorum": previous},
        ["g/quorum"],
    )


# Identity changes, certificate revocations, and the quorum itself (changed by the quorum in
# force).
_ACTIONS: dict[str, Callable[[Env, Args], None]] = {
    **GOVERNED_ACTIONS,
    **revocations.GOVERNED_ACTIONS,
    **membership.GOVERNED_ACTIONS,
    "governance.set_admin_quorum": gov_set_admin_quorum,
}
ACTIONS: tuple[str, ...] = tuple(sorted(_ACTIONS))


def _run_action(env: Env, store: Store, record: Proposal) -> None:
    handler = _ACTIONS[record.action]
    handler(Env(store, env.ctx, env.sender, env.today, env.calendar, env.params), Args(record.args))


def _execute_if_approved(env: Env, record: Proposal) -> None:
    quorum = load_admin_quorum(env.store)
    admins = set(active_admins(env.store))
    counted = [pid for pid in record.voters("approvals") if pid in admins]
    if len(counted) < quorum:
        return
    try:
        _run_action(env, env.store, record)
    except ContractError as refusal:
        raise ContractError(
            refusal.code,
            f"Proposal {record.id} has its approvals but {record.action} is refused: "
            f"{refusal.message}",
        ) from None
    record = record.closed(ProposalStatus.EXECUTED, env.ctx.height)
    _save(env, record)
    env.store.emit(
        "governance.executed",
        {
            "proposal": record.id,
            "action": record.action,
            "participant": _target(record.args),
            "approvals": sorted(counted),
            "quorum": quorum,
        },
        _scopes(record),
    )


def _open_proposal(env: Env, args: Args) -> Proposal:
    proposal_id: str = args.str_("proposal", pattern=PROPOSAL_ID, max_len=64)
    args.done()
    _expire_due(env)
    record = load_proposal(env.store, proposal_id)
    if record is None:
        raise ContractError("PROPOSAL_NOT_FOUND", f"There is no proposal {proposal_id}.")
    if record.status is ProposalStatus.EXPIRED or (
        record.status is ProposalStatus.OPEN and env.ctx.timestamp_ms >= record.expires_at_ms
    ):
        raise ContractError("PROPOSAL_EXPIRED", f"Proposal {proposal_id} has expired.")
    if record.status is not ProposalStatus.OPEN:
        raise ContractError(
            "PROPOSAL_CLOSED", f"Proposal {proposal_id} is closed: it was {record.status}."
        )
    return record


def _check_first_vote(env: Env, record: Proposal) -> None:
    if env.sender.id in record.voters("approvals") + record.voters("rejections"):
        raise ContractError(
            "ALREADY_VOTED", f"{env.sender.id} has already voted on proposal {record.id}."
        )


def op_propose(env: Env, args: Args) -> None:
    require_role(env, Role.CONSORTIUM_ADMIN)
    action: str = args.str_("action", choices=ACTIONS)
    action_args = stored_map(args.map_("args"), "args")
    expires_at_ms: int = args.int_("expires_at_ms")
    args.done()
    now = env.ctx.timestamp_ms
    if not now < expires_at_ms <= now + PROPOSAL_LIFETIME_MAX_MS:
        raise bad(
            "expires_at_ms",
            f"must lie after the block time and at most {PROPOSAL_LIFETIME_MAX_MS // 86_400_000} "
            "days ahead",
        )
    _expire_due(env)
    mine = [key for key, proposer in env.store.scan_objs(OPEN_PREFIX) if proposer == env.sender.id]
    if len(mine) >= OPEN_PROPOSALS_MAX:
        raise ContractError(
            "PROPOSAL_LIMIT",
            f"{env.sender.id} already has {OPEN_PROPOSALS_MAX} open proposals; withdraw one or "
            "let it expire.",
        )
    record = Proposal(
        id=env.ctx.tx_id.hex(),
        action=action,
        args=action_args,
        proposer=env.sender.id,
        created_height=env.ctx.height,
        created_timestamp_ms=now,
        expires_at_ms=expires_at_ms,
        status=ProposalStatus.OPEN,
        approvals=(_vote(env),),
        rejections=(),
    )
    # Dry run on a scratch store: bad arguments or an action the state refuses fail the proposal.
    _run_action(env, Store(env.store), record)
    _save(env, record)
    env.store.emit(
        "governance.proposed",
        {
            "proposal": record.id,
            "action": action,
            "participant": _target(action_args),
            "proposer": env.sender.id,
            "expires_at_ms": expires_at_ms,
            "quorum": load_admin_quorum(env.store),
        },
        _scopes(record),
    )
    _execute_if_approved(env, record)


def op_approve(env: Env, args: Args) -> None:
    require_role(env, Role.CONSORTIUM_ADMIN)
    record = _open_proposal(env, args)
    _check_first_vote(env, record)
    record = replace(record, approvals=(*record.approvals, _vote(env)))
    _save(env, record)
    env.store.emit(
        "governance.approved",
        {"proposal": record.id, "admin": env.sender.id, "action": record.action},
        _scopes(record),
    )
    _execute_if_approved(env, record)


def op_reject(env: Env, args: Args) -> None:
    require_role(env, Role.CONSORTIUM_ADMIN)
    record = _open_proposal(env, args)
    _check_first_vote(env, record)
    record = replace(record, rejections=(*record.rejections, _vote(env)))
    admins = active_admins(env.store)
    rejecting = set(record.voters("rejections"))
    could_approve = [pid for pid in admins if pid not in rejecting]
    if len(could_approve) < load_admin_quorum(env.store):
        record = record.closed(ProposalStatus.REJECTED, env.ctx.height)
    _save(env, record)
    env.store.emit(
        "governance.rejected",
        {
            "proposal": record.id,
            "admin": env.sender.id,
            "action": record.action,
            "closed": record.status is ProposalStatus.REJECTED,
        },
        _scopes(record),
    )


def op_withdraw(env: Env, args: Args) -> None:
    record = _open_proposal(env, args)
    if record.proposer != env.sender.id:
        raise ContractError(
            "FORBIDDEN",
            f"Only the proposer {record.proposer} may withdraw proposal {record.id}.",
        )
    record = record.closed(ProposalStatus.WITHDRAWN, env.ctx.height)
    _save(env, record)
    env.store.emit(
        "governance.withdrawn",
        {"proposal": record.id, "action": record.action},
        _scopes(record),
    )


OPERATIONS: dict[str, Callable[[Env, Args], None]] = {
    "governance.propose": op_propose,
    "governance.approve": op_approve,
    "governance.reject": op_reject,
    "governance.withdraw": op_withdraw,
}
