"""Canonical MessagePack: encoding rules, strict decoding, and round trips (Hypothesis)."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibledger.contracts.codec import (
    INT_MAX,
    INT_MIN,
    CodecError,
    canonical_decode,
    canonical_encode,
)

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(INT_MIN, INT_MAX)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(database=None, derandomize=True, deadline=None, max_examples=300)
@given(values)
def test_round_trip_is_identity_and_stable(value: Any) -> None:
    encoded = canonical_encode(value)
    assert canonical_decode(encoded) == value
    assert canonical_encode(canonical_decode(encoded)) == encoded


@settings(database=None, derandomize=True, deadline=None, max_examples=300)
@given(st.dictionaries(st.text(max_size=6), st.integers(0, 9), max_size=6))
def test_insertion_order_does_not_matter(mapping: dict[str, int]) -> None:
    reversed_mapping = dict(reversed(list(mapping.items())))
    assert canonical_encode(mapping) == canonical_encode(reversed_mapping)


def test_keys_sort_by_utf8_bytes() -> None:
    encoded = canonical_encode({"b": 1, "a": 2, "é": 3, "Z": 4})
    assert list(canonical_decode(encoded)) == ["Z", "a", "b", "é"]


def _reference_encode(value: Any) -> bytes:
    """The canonical form by its definition: every map ordered by its keys' UTF-8 bytes."""

    def ordered(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: ordered(obj[k]) for k in sorted(obj, key=lambda k: k.encode("utf-8"))}
        if isinstance(obj, list):
            return [ordered(item) for item in obj]
        return obj

    packed = msgpack.packb(ordered(value), use_bin_type=True)
    assert isinstance(packed, bytes)
    return packed


@settings(database=None, derandomize=True, deadline=None, max_examples=500)
@given(values)
def test_encoding_equals_the_definition(value: Any) -> None:
    # The encoder sorts keys as Python strings (code points), which must equal UTF-8 byte
    # order for every valid string, including those outside the Basic Multilingual Plane.
    assert canonical_encode(value) == _reference_encode(value)


def test_astral_and_bmp_keys_sort_by_utf8_bytes() -> None:
    mapping = {"\uffff": 1, "\U0001f600": 2, "\u00e9": 3, "z": 4}
    assert canonical_encode(mapping) == _reference_encode(mapping)
    assert list(canonical_decode(canonical_encode(mapping))) == [
        "z",
        "\u00e9",
        "\uffff",
        "\U0001f600",
    ]


def test_enum_members_encode_as_their_values() -> None:
    import enum

    class Colour(enum.IntEnum):
        RED = 3

    class Code(enum.StrEnum):
        OK = "ok"

    assert canonical_encode({"a": Colour.RED, "b": Code.OK}) == canonical_encode(
        {"a": 3, "b": "ok"}
    )


def test_tuple_encodes_as_list() -> None:
    assert canonical_decode(canonical_encode((1, 2))) == [1, 2]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (1.5, "float"),
        (2**63, "too large"),
        (-(2**63) - 1, "too small"),
        ({1: "x"}, "int key"),
        ({b"k": 1}, "bytes key"),
        ("\ud800", "lone surrogate"),
        ({"x": {1, 2}}, "set"),
        (bytearray(b"x"), "bytearray"),
    ],
)
def test_encode_rejects_values_outside_the_domain(value: Any, why: str) -> None:
    with pytest.raises(CodecError):
        canonical_encode(value)


def _raw(obj: Any, **kwargs: Any) -> bytes:
    packed = msgpack.packb(obj, use_bin_type=True, **kwargs)
    assert isinstance(packed, bytes)
    return packed


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (_raw({"b": 1, "a": 2}), "unsorted keys"),
        (_raw({"\U0001f600": 1, "\uffff": 2}), "unsorted astral and BMP keys"),
        (_raw({"a": {"b": 1, "a": 2}}), "unsorted keys in a nested map"),
        (_raw([{"x": [1.5]}]), "a float deep in a list"),
        (_raw({"a": 2**63}), "a map value above the signed range"),
        (_raw({b"a": 1}), "a bytes key"),
        (b"\x82\xa1a\x01\xa1a\x02", "duplicate keys"),
        (_raw(1.0), "float64"),
        (b"\xca\x00\x00\x00\x00", "float32"),
        (_raw(msgpack.ExtType(1, b"x")), "ext type"),
        (canonical_encode(1) + b"\x00", "trailing bytes"),
        (b"\xd0\x01", "int8 header for a fixint"),
        (b"\xcd\x00\x01", "uint16 header for a fixint"),
        (b"\xd9\x01a", "str8 header for a short string"),
        (b"\xa1\xff", "invalid UTF-8"),
        (b"\xc4\x01", "truncated"),
        (b"", "empty"),
        (b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", "uint64 above the signed range"),
        (_raw({1: 2}), "int key"),
        (b"\xc1", "reserved byte"),
    ],
)
def test_decode_rejects_non_canonical_bytes(data: bytes, why: str) -> None:
    with pytest.raises(CodecError):
        canonical_decode(data)


def test_decode_rejects_deep_nesting() -> None:
    data = b"\x91" * 40 + b"\xc0"
    with pytest.raises(CodecError):
        canonical_decode(data)
