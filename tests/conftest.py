"""Every ``--json`` output a test makes in-process is held to the CLI's JSON convention
(``ibledger.cli.convention``): a command whose JSON breaks it fails the test that ran it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def json_output_follows_the_convention(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from ibledger.cli import convention

    normalize = convention.normalize

    def checked(
        value: Any, currency: str | None = None, currencies: Mapping[str, str] | None = None
    ) -> Any:
        shaped = normalize(value, currency, currencies)
        problems = convention.violations(shaped)
        assert not problems, "JSON output breaks the convention:\n  " + "\n  ".join(problems)
        return shaped

    monkeypatch.setattr(convention, "normalize", checked)
    yield
