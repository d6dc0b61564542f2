"""Tables line up by terminal columns, not by code points."""

from __future__ import annotations

from ibledger.cli.client_options import table
from ibledger.cli.output import display_width, pad

# "中国工商银行" is six wide characters, twelve columns; "Société" below spells its é as an "e"
# followed by U+0301 COMBINING ACUTE ACCENT: eight code points, seven columns.
CJK = "中国工商银行"
COMBINING = "Socie\u0301te\u0301 Ge\u0301ne\u0301rale"


def test_display_width_counts_columns() -> None:
    assert display_width("bank-a") == 6
    assert display_width(CJK) == 12
    assert display_width(COMBINING) == len("Societe Generale")
    assert display_width("a\x07b") == 2  # a control character has no width, not -1
    assert pad(CJK, 14) == CJK + "  "
    assert pad(CJK, 4) == CJK  # never truncated


def _column_starts(line: str, values: list[str]) -> list[int]:
    """The terminal column at which each value of ``values`` starts in ``line``."""
    starts, offset = [], 0
    for value in values:
        index = line.index(value, offset)
        starts.append(display_width(line[:index]))
        offset = index + len(value)
    return starts


def test_table_aligns_cjk_and_combining_names() -> None:
    rows = [
        {"id": "icbc", "name": CJK, "role": "bank"},
        {"id": "socgen", "name": COMBINING, "role": "bank"},
        {"id": "acme", "name": "Acme Trading", "role": "enterprise"},
    ]
    text = table(rows, [("id", "ID"), ("name", "NAME"), ("role", "ROLE")])
    lines = text.splitlines()
    header = _column_starts(lines[0], ["ID", "NAME", "ROLE"])
    for line, row in zip(lines[1:], rows, strict=True):
        assert _column_starts(line, [row["id"], row["name"], row["role"]]) == header, text
    widest = max(display_width(row["name"]) for row in rows)
    assert header[2] - header[1] == widest + 2
