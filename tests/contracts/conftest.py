"""Fixtures for the contract tests: an in-memory ledger over the demo consortium and helpers that
read like the bill action table. (Hypothesis settings are set per test, database-less and
derandomised, so that this directory does not change other suites' profiles.)"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest

from ibledger.contracts.core import Outcome
from ibledger.contracts.testing import TestLedger, demo_genesis


def _import_every_project_module() -> None:
    """Hypothesis biases some draws towards the literals of every project module loaded so far
    (its "local constants") and widens that pool whenever another module is imported. Which
    examples a derandomised test generates then depends on what other tests imported first, or
    what a test imports part-way through the run: outside state. Loading every module before the
    first example fixes the pool for a given source tree."""
    for package in ("consensus", "contracts", "node", "cli", "proto"):
        root = importlib.import_module(f"ibledger.{package}")
        for info in pkgutil.walk_packages(root.__path__, f"ibledger.{package}."):
            importlib.import_module(info.name)


_import_every_project_module()


class World:
    """A ledger plus shortcuts that read like the B.5 action table."""

    def __init__(self, start_date: str = "2024-03-01") -> None:
        self.ledger = TestLedger(demo_genesis(), start_date)
        self._serial = 0

    # -- raw calls ------------------------------------------------------------------------
    def call(self, sender: str, operation: str, **args: Any) -> Outcome:
        return self.ledger.submit(sender, operation, args)

    def ok(self, sender: str, operation: str, **args: Any) -> Outcome:
        outcome = self.call(sender, operation, **args)
        assert outcome.code == "OK", (outcome.code, outcome.message)
        return outcome

    def fails(self, code: str, sender: str, operation: str, **args: Any) -> Outcome:
        before = self.ledger.state.items()
        outcome = self.call(sender, operation, **args)
        assert outcome.code == code, (outcome.code, outcome.message)
        assert outcome.writes == () and outcome.events == ()
        assert self.ledger.state.items() == before
        assert outcome.message.endswith(".")
        return outcome

    def propose(self, sender: str, action: str, **args: Any) -> Outcome:
        """A governance proposal expiring in a day (with the demo quorum of 1 it executes)."""
        expires_at_ms = self.ledger.timestamp_ms + 86_400_000
        return self.call(
            sender, "governance.propose", action=action, args=args, expires_at_ms=expires_at_ms
        )

    def request(self, sender: str, operation: str, **args: Any) -> str:
        outcome = self.ok(sender, operation, **args)
        (event,) = [e for e in outcome.events if e.kind == "bill.requested"]
        return str(event.attrs["request_id"])

    def sign(self, sender: str, request_id: str) -> Outcome:
        return self.ok(sender, "bill.sign", request_id=request_id)

    def two_step(self, sender: str, operation: str, signer: str, **args: Any) -> str:
        request_id = self.request(sender, operation, **args)
        self.sign(signer, request_id)
        return request_id

    def at(self, iso_date: str, *package_nos: str) -> None:
        """Move the agreed clock and materialise time-driven transitions for queries."""
        self.ledger.set_date(iso_date)
        for package_no in package_nos:
            self.ok("ADMIN", "bill.sweep", package_no=package_no)

    # -- bills ----------------------------------------------------------------------------
    def package_no(self, kind_digit: str = "5") -> str:
        self._serial += 1
        return f"{kind_digit}102100099996{self.ledger.today.replace('-', '')}{self._serial:08d}0"

    def issue(
        self,
        *,
        kind: str = "BANK",
        amount: str = "1200000.00",
        splittable: bool = True,
        maturity: str = "2024-08-30",
        drawer: str = "ENT_A",
        acceptor: str = "BANK_A",
        payee: str = "ENT_B",
        nt: bool = False,
    ) -> str:
        package_no = self.package_no("6" if kind == "COMMERCIAL" else "5")
        self.ok(
            drawer,
            "bill.issue",
            package_no=package_no,
            kind=kind,
            amount=amount,
            currency="CNY",
            maturity_date=maturity,
            acceptor=acceptor,
            payee=payee,
            splittable=splittable,
            non_transferable=nt,
        )
        return package_no

    def accepted(self, **kwargs: Any) -> str:
        package_no = self.issue(**kwargs)
        package = self.bill(package_no)
        self.two_step(
            package["drawer"], "bill.request_acceptance", package["acceptor"], package_no=package_no
        )
        if package["kind"] == "COMMERCIAL":
            self.ok(package["acceptor"], "bill.disclose", package_no=package_no)
        return package_no

    def received(self, **kwargs: Any) -> str:
        package_no = self.accepted(**kwargs)
        package = self.bill(package_no)
        self.two_step(
            package["drawer"], "bill.request_receipt", package["payee"], package_no=package_no
        )
        return package_no

    def bill(self, package_no: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ledger.query(
            "bill_chain", {"package_no": package_no}, "REGULATOR"
        )
        return result

    def pieces(self, package_no: str) -> list[dict[str, Any]]:
        return list(self.bill(package_no)["pieces"])

    def piece(self, package_no: str, range_text: str | None = None) -> dict[str, Any]:
        pieces = self.pieces(package_no)
        if range_text is None:
            assert len(pieces) == 1
            return pieces[0]
        (piece,) = [p for p in pieces if p["range"] == range_text]
        return piece

    def state_of(self, package_no: str, range_text: str | None = None) -> tuple[str, str]:
        piece = self.piece(package_no, range_text)
        return piece["status"], piece["flag"]

    def chain(self, package_no: str) -> dict[str, Any]:
        result: dict[str, Any] = self.ledger.query(
            "bill_chain", {"package_no": package_no}, "REGULATOR"
        )
        return result


@pytest.fixture
def world() -> Iterator[World]:
    yield World()
