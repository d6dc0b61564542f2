"""Regulator look-through (docs/domain.md C.4): ultimate owners, underlying assets, exposures.

Theory of operation
-------------------
Holdings form a graph: a holder (participant or product, ``nesting``) holds instruments, and a
product is itself held by its unit holders. The views here expand that graph with exact
arithmetic (``fractions.Fraction``; no rounding anywhere):

* ``ultimate_owners(store, isin)`` -- upward. Each holding of ``isin`` is a share
  ``quantity / outstanding`` of it; a holder that is a product with unit holders is replaced by
  them, each taking the product's share times its own share of the product's units, recursively.
  A product without unit holders (redeemed while still holding) is reported as an owner itself.
  Every owner row carries its look-through quantity (share x outstanding of ``isin``), its share,
  the deepest path that reached it (``depth``: products traversed) and each path.
* ``underlying_assets(store, holder)`` -- downward. Each instrument the holder holds is kept as
  it is unless it is a product that holds instruments itself; then the holder's share of its
  units is carried into what the product holds, recursively.
* ``exposures(store, holder)`` -- the underlying assets of one holder (or, without a holder,
  every instrument's outstanding, each counted once) summed by issuer, issuer group (each parent
  LEI of C.1; an issuer without parents is its own group), CFI category and currency. Sums are
  per currency: quantities of different currencies are never added.

Quantities are the instrument's own unit (minor units of face value, or fund units), rendered as
exact fractions in text under ``quantity_exact`` (``"999/10"``, or ``"100"`` when whole; not
``quantity``, which is an integer everywhere else). Rows are sorted by their key.

The walks trust the nesting bound of ``nesting`` (enforced at write), but check it again: a path
longer than ``max_nesting_depth + 1`` products or a cycle means the state is not one the
contracts wrote, and the query fails with ``NESTING_EXCEEDED`` instead of looping.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .args import day_to_iso
from .assets import Holding, Instrument, instrument_key
from .core import Store
from .errors import QueryError
from .nesting import is_product, names_instrument
from .stored import text

__all__ = ["exposures", "fraction_text", "ultimate_owners", "underlying_assets"]


def fraction_text(value: Fraction) -> str:
    return str(value)


def _instrument(store: Store, isin: str) -> Instrument | None:
    stored = store.get_obj(instrument_key(isin))
    return None if stored is None else Instrument.from_stored(stored)


def _require_instrument(store: Store, isin: str) -> Instrument:
    instrument = _instrument(store, isin)
    if instrument is None:
        raise QueryError("NOT_FOUND", f"No instrument with ISIN {isin}.")
    return instrument


def _holdings_of(store: Store, isin: str) -> Iterator[Holding]:
    for _, stored in store.scan_objs(b"asset/h/" + isin.encode() + b"/"):
        yield Holding.from_stored(stored)


def _held_by(store: Store, holder: str) -> Iterator[Holding]:
    for _, stored in store.scan_objs(b"asset/hh/" + holder.encode() + b"/"):
        isin = text(stored, "holder index")
        record = store.get_obj(b"asset/h/" + isin.encode() + b"/" + holder.encode())
        assert record is not None, "the holder index names only existing holdings"
        yield Holding.from_stored(record)


def _guard(path: tuple[str, ...], next_isin: str, limit: int) -> None:
    if next_isin in path:
        raise QueryError(
            "NESTING_EXCEEDED", f"Products hold each other in a cycle through {next_isin}."
        )
    if len(path) > limit + 1:
        raise QueryError(
            "NESTING_EXCEEDED",
            f"Products nest deeper than the limit of {limit} layers under {path[0]}.",
        )


@dataclass(slots=True)
class _Row:
    quantity: Fraction = Fraction(0)
    depth: int = 0
    paths: list[tuple[tuple[str, ...], Fraction]] = field(default_factory=list)

    def add(self, via: tuple[str, ...], quantity: Fraction) -> None:
        self.quantity += quantity
        self.depth = max(self.depth, len(via))
        self.paths.append((via, quantity))


def _paths_view(paths: list[tuple[tuple[str, ...], Fraction]]) -> list[dict[str, Any]]:
    merged: dict[tuple[str, ...], Fraction] = {}
    for via, quantity in paths:
        merged[via] = merged.get(via, Fraction(0)) + quantity
    return [
        {"via": list(via), "quantity_exact": fraction_text(quantity)}
        for via, quantity in sorted(merged.items())
    ]


def ultimate_owners(store: Store, isin: str, limit: int) -> dict[str, Any]:
    root = _require_instrument(store, isin)
    owners: dict[str, tuple[str, _Row]] = {}

    def expand(current: str, outstanding: int, amount: Fraction, path: tuple[str, ...]) -> None:
        """Distribute ``amount`` (of ``isin``) over the holders of ``current``."""
        for holding in _holdings_of(store, current):
            part = amount * holding.total / outstanding
            holder = holding.holder
            product = _instrument(store, holder) if names_instrument(holder) else None
            if product is not None and product.outstanding_minor > 0:
                _guard(path, holder, limit)
                expand(holder, product.outstanding_minor, part, (*path, holder))
                continue
            kind = "participant" if product is None else "product"
            owners.setdefault(holder, (kind, _Row()))[1].add(path[1:], part)

    outstanding = root.outstanding_minor
    if outstanding > 0:
        expand(isin, outstanding, Fraction(outstanding), (isin,))
    rows = []
    for owner, (kind, row) in sorted(owners.items()):
        rows.append(
            {
                "owner": owner,
                "kind": kind,
                "quantity_exact": fraction_text(row.quantity),
                "share": fraction_text(row.quantity / outstanding),
                "depth": row.depth,
                "paths": _paths_view(row.paths),
            }
        )
    assert sum((row.quantity for _, row in owners.values()), Fraction(0)) == outstanding
    depth = max((row.depth for _, row in owners.values()), default=0)
    return {
        "isin": isin,
        "currency": root.currency,
        "outstanding_minor": outstanding,
        "depth": depth,
        "nested": depth > 1,
        "owners": rows,
    }


@dataclass(frozen=True, slots=True)
class _Asset:
    instrument: Instrument
    quantity: Fraction
    depth: int


def _underlying(store: Store, holder: str, limit: int) -> list[_Asset]:
    found: dict[str, tuple[Instrument, _Row]] = {}

    def expand(current: str, factor: Fraction, path: tuple[str, ...]) -> None:
        for holding in _held_by(store, current):
            instrument = _instrument(store, holding.isin)
            assert instrument is not None, "a holding is of a registered instrument"
            part = factor * holding.total
            stored = instrument.to_stored()
            if is_product(stored) and any(True for _ in _held_by(store, instrument.isin)):
                _guard(path, instrument.isin, limit)
                share = part / instrument.outstanding_minor
                expand(instrument.isin, share, (*path, instrument.isin))
                continue
            found.setdefault(instrument.isin, (instrument, _Row()))[1].add(path[1:], part)

    expand(holder, Fraction(1), (holder,))
    return [
        _Asset(instrument, row.quantity, row.depth)
        for _, (instrument, row) in sorted(found.items())
    ]


def _holder_exists(store: Store, holder: str) -> None:
    if names_instrument(holder):
        _require_instrument(store, holder)
    elif store.get(b"id/p/" + holder.encode()) is None:
        raise QueryError("NOT_FOUND", f"{holder} is neither a participant nor an instrument.")


def underlying_assets(store: Store, holder: str, limit: int) -> dict[str, Any]:
    _holder_exists(store, holder)
    assets = _underlying(store, holder, limit)
    return {
        "holder": holder,
        "depth": max((asset.depth for asset in assets), default=0),
        "assets": [
            {
                "isin": asset.instrument.isin,
                "name": asset.instrument.name,
                "issuer_lei": asset.instrument.issuer_lei,
                "issuer_parent_leis": list(asset.instrument.issuer_parent_leis),
                "cfi": asset.instrument.cfi,
                "currency": asset.instrument.currency,
                "maturity_date": (
                    None
                    if asset.instrument.maturity_date is None
                    else day_to_iso(asset.instrument.maturity_date)
                ),
                "quantity_exact": fraction_text(asset.quantity),
                "depth": asset.depth,
            }
            for asset in assets
        ],
    }


def _groups(instrument: Instrument) -> tuple[str, ...]:
    return instrument.issuer_parent_leis or (instrument.issuer_lei,)


def _sum_rows(totals: dict[tuple[str, str], Fraction], name: str) -> list[dict[str, Any]]:
    return [
        {name: key, "currency": currency, "quantity_exact": fraction_text(quantity)}
        for (key, currency), quantity in sorted(totals.items())
    ]


def exposures(store: Store, holder: str | None, limit: int) -> dict[str, Any]:
    if holder is None:
        instruments = (Instrument.from_stored(r) for _, r in store.scan_objs(b"asset/i/"))
        items = [(i, Fraction(i.outstanding_minor)) for i in instruments if i.outstanding_minor]
    else:
        _holder_exists(store, holder)
        items = [(asset.instrument, asset.quantity) for asset in _underlying(store, holder, limit)]
    by_issuer: dict[tuple[str, str], Fraction] = {}
    by_group: dict[tuple[str, str], Fraction] = {}
    by_category: dict[tuple[str, str], Fraction] = {}
    by_currency: dict[str, Fraction] = {}

    def add(table: dict[tuple[str, str], Fraction], key: str, currency: str, q: Fraction) -> None:
        table[(key, currency)] = table.get((key, currency), Fraction(0)) + q

    for instrument, quantity in items:
        currency = instrument.currency
        add(by_issuer, instrument.issuer_lei, currency, quantity)
        for group in _groups(instrument):
            add(by_group, group, currency, quantity)
        add(by_category, instrument.cfi[0], currency, quantity)
        by_currency[currency] = by_currency.get(currency, Fraction(0)) + quantity
    return {
        "holder": holder,
        "by_issuer": _sum_rows(by_issuer, "issuer_lei"),
        "by_issuer_group": _sum_rows(by_group, "group_lei"),
        "by_cfi_category": _sum_rows(by_category, "cfi_category"),
        "by_currency": [
            {"currency": currency, "quantity_exact": fraction_text(quantity)}
            for currency, quantity in sorted(by_currency.items())
        ],
    }
