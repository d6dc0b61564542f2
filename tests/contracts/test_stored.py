"""The storage boundary (``contracts.stored`` and the record types): every state value a rich
scenario writes parses into its record and re-encodes to the very same bytes, and a malformed
stored value raises ``StoredFormError`` naming the record and the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ibledger.contracts.assets import Holding, Instrument
from ibledger.contracts.bill_records import Package, Piece, Request, Settlement
from ibledger.contracts.calendar import BusinessCalendar, Parameters
from ibledger.contracts.codec import canonical_decode, canonical_encode
from ibledger.contracts.errors import StoredFormError
from ibledger.contracts.governance import Proposal
from ibledger.contracts.identity import KeyRecord, ParticipantRecord
from ibledger.contracts.testing import fabricate_lei

Parser = Callable[[object], Any]


def _parser(key: bytes) -> Parser | None:
    if key.startswith(b"bill/"):
        return Piece.from_stored if b"/p/" in key else Package.from_stored
    table: list[tuple[bytes, Parser]] = [
        (b"breq/", Request.from_stored),
        (b"bset/", Settlement.from_stored),
        (b"id/p/", ParticipantRecord.from_stored),
        (b"id/k/", KeyRecord.from_stored),
        (b"cfg/calendar", BusinessCalendar.from_stored),
        (b"cfg/params", Parameters.from_stored),
        (b"asset/i/", Instrument.from_stored),
        (b"asset/h/", Holding.from_stored),
        (b"gov/p/", Proposal.from_stored),
    ]
    for prefix, parse in table:
        if key.startswith(prefix):
            return parse
    return None


def _rich_world(world: Any) -> None:
    """Bills through most actions, an asset with pledges and freezes, governance proposals."""
    p = world.received()
    world.two_step(
        "BANK_A", "bill.guarantee", "BANK_C", package_no=p, guarantor="BANK_C", capacity="ACCEPTOR"
    )
    world.two_step(
        "ENT_B",
        "bill.endorse",
        "ENT_C",
        package_no=p,
        range="1-120000000",
        amount_fen=5_000,
        endorsee="ENT_C",
        non_transferable=True,
    )
    world.two_step(
        "ENT_B",
        "bill.discount",
        "BANK_B",
        package_no=p,
        range="5001-120000000",
        amount_fen=1_000_000,
        discounter="BANK_B",
        rate_ppm=15_000,
        mode="repo",
        end_date="2024-05-01",
    )
    world.request("ENT_B", "bill.pledge", package_no=p, range="1005001-120000000", pledgee="BANK_C")
    world.ok("REGULATOR", "bill.freeze", package_no=p, range="1-5000", case_ref="CASE-9")
    q = world.received(splittable=False)
    world.at("2024-08-30")
    rid = world.request("ENT_B", "bill.present", package_no=q)
    world.ok("BANK_A", "bill.reject", request_id=rid, reason="no funds")
    isin = "CND10006PJH0"
    world.ok(
        "REGISTRAR",
        "asset.register",
        isin=isin,
        name="Treasury bond",
        issuer_lei=fabricate_lei(50),
        cfi="DBFTFB",
        currency="CNY",
        denomination_minor=100,
        issue_size_minor=1_000_000,
        issue_date="2024-03-01",
        maturity_date="2025-03-01",
        local_codes=[["CFETS_BOND", "230015"]],
        product_category="FIXED_INCOME",
    )
    world.ok(
        "REGISTRAR",
        "asset.issue",
        isin=isin,
        allotments=[
            {"holder": "BANK_A", "quantity": 600_000},
            {"holder": "BANK_B", "quantity": 400_000},
        ],
    )
    world.ok("BANK_A", "asset.pledge", isin=isin, pledgee="BANK_B", quantity=1_000)
    world.ok(
        "REGULATOR", "asset.freeze", isin=isin, holder="BANK_B", quantity=2_000, case_ref="F-1"
    )
    world.ok("REGISTRAR", "asset.amend", isin=isin, risk_rating="R2")
    roles = ["enterprise", "regulator"]
    assert world.propose("ADMIN", "identity.update_roles", participant="ENT_C", roles=roles).ok
    world.ok("ADMIN", "identity.update_details", participant="ENT_B", lei_status="ISSUED")


def test_every_stored_record_round_trips_to_the_same_bytes(world: Any) -> None:
    _rich_world(world)
    parsed: dict[str, int] = {}
    for key, value in world.ledger.state.items():
        parse = _parser(key)
        if parse is None:
            continue
        record = parse(canonical_decode(value))
        assert canonical_encode(record.to_stored()) == value, key
        parsed[type(record).__name__] = parsed.get(type(record).__name__, 0) + 1
    assert set(parsed) == {
        "BusinessCalendar",
        "Holding",
        "Instrument",
        "KeyRecord",
        "Package",
        "Parameters",
        "ParticipantRecord",
        "Piece",
        "Proposal",
        "Request",
    }


def _piece_key(world: Any) -> bytes:
    return next(k for k, _ in world.ledger.state.items() if k.startswith(b"bill/") and b"/p/" in k)


@pytest.mark.parametrize(
    ("corrupt", "fragment"),
    [
        (lambda r: r.pop("holder"), "bill piece.holder is missing"),
        (lambda r: r.update(colour="red"), "bill piece.colour is not a field"),
        (lambda r: r.update(status="PAID"), "bill piece.status must be one of"),
        (lambda r: r.update(start="1"), "bill piece.start must be an integer"),
        (lambda r: r.update(nt=1), "bill piece.nt must be true or false"),
        (lambda r: r.update(chain=[{"seq": 1}]), "bill chain entry.type is missing"),
    ],
)
def test_a_malformed_piece_raises_stored_form_error(
    world: Any, corrupt: Callable[[dict[str, Any]], object], fragment: str
) -> None:
    p = world.received()
    key = _piece_key(world)
    record = canonical_decode(world.ledger.state.get(key))
    corrupt(record)
    world.ledger.state.set(key, canonical_encode(record))
    with pytest.raises(StoredFormError, match=fragment):
        world.call("ADMIN", "bill.sweep", package_no=p)


def test_stored_form_error_is_not_a_business_rejection() -> None:
    from ibledger.contracts.errors import ContractError

    assert not issubclass(StoredFormError, ContractError)
    with pytest.raises(StoredFormError, match="participant: the stored value is not a map"):
        ParticipantRecord.from_stored([1, 2])
