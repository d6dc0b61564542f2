"""Who can be pursued in recourse (docs/domain.md B.11) and until when (B.7 limitation periods).

Theory of operation
-------------------
A piece's chain records every completed action in order. Entries whose type is in
``ENDORSING_TYPES`` are endorsements in law (a transfer signed by ``from``), so ``from`` becomes
liable as an endorser (票据法 art. 37/68). Liable parties of a piece are: the drawer, the acceptor
(once accepted), each endorser, and each guarantor of any of them (art. 50: jointly liable with
the guaranteed party).

For a holder H pursuing after a refusal of type T:

* T = EARLY: nobody (an early-presentment refusal gives no recourse; re-present at maturity).
* T = OVERDUE: only the drawer, the acceptor and their guarantors (ECDS 200312 / 210312).
* T = IN_WINDOW or a non-refusal ground (art. 61): all liable parties, except that
  - H itself and its own guarantors are never pursued;
  - a drawer-holder has no recourse against its prior parties: only acceptor side (art. 69);
  - an endorser-holder has none against its later parties: endorsers after H's first
    endorsement, and their guarantors, are excluded (art. 69);
  - an endorser who wrote "not transferable" is liable only to its immediate endorsee (art. 34),
    unless it later agreed to revoke the mark (an ``NT_REVOKE`` entry it countersigned);
  - a guarantor of X that paid and holds the piece takes over X's rights (art. 52): it pursues
    X and X's prior parties, never X's later parties.

Limitation (art. 17): against the drawer and acceptor sides until the rights expire (maturity +
``rights_expiry_months``); against endorsers (and their guarantors) within
``recourse_limitation_months`` of the refusal, or ``re_recourse_limitation_months`` of the day H
paid a recourse claim itself (re-recourse).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .calendar import Parameters, add_months

__all__ = ["ENDORSING_TYPES", "liable_parties", "recourse_allowed"]

ENDORSING_TYPES = frozenset(
    {"ENDORSE", "DISCOUNT", "REDISCOUNT", "CB_REDISCOUNT", "OUTRIGHT_REPO", "REDEEM_TRANSFER"}
)


def _guarantors_of(piece: Mapping[str, Any], party: str, holder: str) -> list[str]:
    return sorted(
        {
            g["guarantor"]
            for g in piece["guarantees"]
            if g["guaranteed"] == party and g["guarantor"] != holder
        }
    )


def _stand_in(piece: Mapping[str, Any], holder: str, transfers: list[Any]) -> str | None:
    """The party whose rights a paying guarantor took over (art. 52), if the holder is one."""
    if any(entry["from"] == holder for entry in transfers):
        return None
    for guarantee in piece["guarantees"]:
        if guarantee["guarantor"] == holder:
            return str(guarantee["guaranteed"])
    return None


def liable_parties(
    package: Mapping[str, Any], piece: Mapping[str, Any], holder: str, refusal_type: str | None
) -> dict[str, str]:
    """Parties ``holder`` may pursue, mapped to their capacity (drawer, acceptor, endorser ...).

    ``refusal_type`` is EARLY, IN_WINDOW, OVERDUE, or None for a non-refusal ground.
    """
    if refusal_type == "EARLY":
        return {}
    chain = piece["chain"]
    transfers = [entry for entry in chain if entry["type"] in ENDORSING_TYPES]
    stand_in = _stand_in(piece, holder, transfers)
    result: dict[str, str] = {}
    acceptor = package["acceptor"] if package["acceptance_date"] is not None else None
    if acceptor is not None and acceptor != holder:
        result[acceptor] = "acceptor"
        for guarantor in _guarantors_of(piece, acceptor, holder):
            result.setdefault(guarantor, "guarantor of acceptor")
    if holder == package["drawer"] or (stand_in is not None and stand_in == acceptor):
        return result  # art. 69: a drawer-holder pursues only the acceptor side
    result.setdefault(package["drawer"], "drawer")
    for guarantor in _guarantors_of(piece, package["drawer"], holder):
        result.setdefault(guarantor, "guarantor of drawer")
    if refusal_type == "OVERDUE" or stand_in == package["drawer"]:
        return result
    anchor = holder if stand_in is None else stand_in
    first_own = next(
        (i for i, entry in enumerate(transfers) if entry["from"] == anchor), len(transfers)
    )
    # art. 69: the holder's later parties are excluded; a paying guarantor of X keeps X itself
    limit = first_own if stand_in is None else first_own + 1
    revoked_nt = {
        (entry["to"], entry["ref_seq"]) for entry in chain if entry["type"] == "NT_REVOKE"
    }
    for entry in transfers[:limit]:
        endorser = entry["from"]
        if endorser == holder:
            continue
        if entry.get("nt") and entry["to"] != holder and (endorser, entry["seq"]) not in revoked_nt:
            continue  # art. 34: an NT endorser answers only to its immediate endorsee
        result.setdefault(endorser, "endorser")
        for guarantor in _guarantors_of(piece, endorser, holder):
            result.setdefault(guarantor, "guarantor of endorser")
    return result


def recourse_allowed(
    package: Mapping[str, Any],
    piece: Mapping[str, Any],
    holder: str,
    recoursee: str,
    refusal_type: str | None,
    today: int,
    params: Parameters,
) -> str | None:
    """None if ``holder`` may pursue ``recoursee`` today, else the reason it may not."""
    parties = liable_parties(package, piece, holder, refusal_type)
    if recoursee not in parties:
        if refusal_type == "EARLY":
            return "a refusal of an early presentment gives no right of recourse"
        allowed = ", ".join(sorted(parties)) or "nobody"
        return f"{recoursee} is not liable to {holder} on this piece (liable: {allowed})"
    capacity = parties[recoursee]
    if capacity in ("drawer", "acceptor", "guarantor of drawer", "guarantor of acceptor"):
        expiry = add_months(package["maturity_date"], params.rights_expiry_months)
        if today > expiry:
            return "the rights against the drawer and acceptor have expired"
        return None
    if piece["recourse_paid_day"] is not None:
        limit = add_months(piece["recourse_paid_day"], params.re_recourse_limitation_months)
        if today > limit:
            return "the re-recourse limitation period after paying a recourse claim has passed"
    elif piece["refusal"] is not None and refusal_type is not None:
        limit = add_months(piece["refusal"]["day"], params.recourse_limitation_months)
        if today > limit:
            return "the recourse limitation period after the refusal has passed"
    return None
