"""Products holding products (docs/domain.md C.4): who may be a holder, and how deep nesting goes.

Theory of operation
-------------------
A holding's holder is either a participant (its id) or a *product*: an instrument registered on
the ledger, named by its ISIN, that has a product registration code (A.9; registration requires
one of every collective investment vehicle, CFI category ``C``). Participant ids may not be
ISINs (identity refuses them), so a holder id that is a valid ISIN always names an instrument,
on every replica and at every height.

Nesting is counted in product-in-product layers: a product holding another product is one
layer, a chain P0 holds P1 holds ... Pk is k layers. Holding a non-product (a bond) adds no
layer. The genesis parameter ``max_nesting_depth`` (default 1, the rule of the asset-management
guidance: a product may invest in products that hold no further products) bounds the longest
chain. It is enforced where a holding is created (``asset.issue`` allotments and
``asset.transfer`` receivers, through ``require_holder``): a holding that would make a chain
longer, or make a product hold itself directly or through others (a cycle, i.e. unbounded
nesting), is refused with ``NESTING_EXCEEDED``. Because every edge of the graph passed this check
when it was made, the graph is acyclic and its chains are bounded, so the walks below stop.

This module reads stored instrument maps directly instead of ``assets.Instrument`` because
``assets`` calls it: only the fields named here are read.
"""

from __future__ import annotations

from collections.abc import Mapping

from .calendar import PARAMS_KEY, Parameters
from .core import Store
from .errors import ContractError
from .identifiers import validate
from .identity import require_party
from .stored import as_map

__all__ = [
    "held_products",
    "is_product",
    "names_instrument",
    "product_holders",
    "require_holder",
]

_INSTRUMENT = b"asset/i/"
_HOLDING = b"asset/h/"
_HELD_BY = b"asset/hh/"
_HOLDER_STATUSES = ("ACTIVE",)


def names_instrument(holder: str) -> bool:
    """Whether a holder id is an ISIN (and so names a product, never a participant)."""
    return validate("isin", holder).valid


def _instrument_map(store: Store, isin: str) -> Mapping[str, object] | None:
    stored = store.get_obj(_INSTRUMENT + isin.encode())
    return None if stored is None else as_map(stored, "instrument")


def is_product(instrument: Mapping[str, object]) -> bool:
    """A stored instrument map is a product: it has a product registration code."""
    return instrument.get("product_reg_code") is not None


def product_holders(store: Store, isin: str) -> list[str]:
    """The products holding ``isin`` (by ISIN, sorted)."""
    prefix = _HOLDING + isin.encode() + b"/"
    holders = (key[len(prefix) :].decode() for key, _ in store.scan(prefix))
    return [holder for holder in holders if names_instrument(holder)]


def held_products(store: Store, isin: str) -> list[str]:
    """The products that the product ``isin`` holds (by ISIN, sorted)."""
    prefix = _HELD_BY + isin.encode() + b"/"
    held = []
    for key, _ in store.scan(prefix):
        child = key[len(prefix) :].decode()
        record = _instrument_map(store, child)
        if record is not None and is_product(record):
            held.append(child)
    return held


def _exceeded(message: str) -> ContractError:
    return ContractError("NESTING_EXCEEDED", message)


def _layers_above(store: Store, product: str, forbidden: str, limit: int, depth: int = 0) -> int:
    """Longest chain of products holding ``product``, in layers; a cycle through ``forbidden``
    or more than ``limit`` layers is refused."""
    if depth > limit:
        raise _exceeded(f"Products hold {product} through more than {limit} layers.")
    best = 0
    for holder in product_holders(store, product):
        if holder == forbidden:
            raise _exceeded(f"{forbidden} already holds {product}: the holding would be a cycle.")
        best = max(best, 1 + _layers_above(store, holder, forbidden, limit, depth + 1))
    return best


def _layers_below(store: Store, product: str, forbidden: str, limit: int, depth: int = 0) -> int:
    """Longest chain of products that ``product`` holds, in layers (as ``_layers_above``)."""
    if depth > limit:
        raise _exceeded(f"{product} holds products through more than {limit} layers.")
    best = 0
    for child in held_products(store, product):
        if child == forbidden:
            raise _exceeded(f"{product} already holds {forbidden}: the holding would be a cycle.")
        best = max(best, 1 + _layers_below(store, child, forbidden, limit, depth + 1))
    return best


def _check_nesting(store: Store, holder: str, held: str, limit: int) -> None:
    """``holder`` (a product) is to hold the product ``held``."""
    if holder == held:
        raise _exceeded(f"Product {held} cannot hold its own units.")
    above = _layers_above(store, holder, held, limit)
    below = _layers_below(store, held, holder, limit)
    layers = above + 1 + below
    if layers > limit:
        raise _exceeded(
            f"{holder} holding {held} would nest products {layers} layers deep; "
            f"the limit (parameter max_nesting_depth) is {limit}."
        )


def require_holder(store: Store, holder: str, isin: str, field: str) -> None:
    """The holder of a new or growing holding of ``isin``: a registered, active participant
    (``require_party``) or an active product within the nesting limit (module docstring)."""
    if not names_instrument(holder):
        require_party(store, holder, field)
        return
    record = _instrument_map(store, holder)
    if record is None:
        raise ContractError(
            "PARTY_NOT_REGISTERED", f"The {field} {holder} is not a registered instrument."
        )
    if not is_product(record):
        raise ContractError(
            "NOT_A_PRODUCT",
            f"The {field} {holder} is an instrument but not a product (it has no product "
            "registration code); only products hold assets.",
        )
    if record.get("status") not in _HOLDER_STATUSES:
        raise ContractError(
            "INSTRUMENT_NOT_ACTIVE",
            f"The {field} {holder} is {record.get('status')}; a product holds assets only "
            "while ACTIVE.",
        )
    held = _instrument_map(store, isin)
    if held is not None and is_product(held):
        limit = Parameters.from_stored(store.get_obj(PARAMS_KEY)).max_nesting_depth
        _check_nesting(store, holder, isin, limit)
