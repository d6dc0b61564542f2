"""Long-call limits: a share per viewer, and an anonymous pool that identified callers never
draw from, so that callers who prove no identity cannot lock out those who do."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from ibledger.node.errors import NodeError
from ibledger.node.read_access import ANONYMOUS, LongCallLimits, Viewer


def _limits() -> LongCallLimits:
    return LongCallLimits(per_viewer=2, anonymous_per_address=2, anonymous_max=3)


def test_each_viewer_has_its_own_share() -> None:
    limits = _limits()
    with ExitStack() as held:
        for _ in range(2):
            held.enter_context(limits.hold(Viewer("ICBC"), "ipv4:10.0.0.1:1000"))
        with pytest.raises(NodeError) as refused:
            held.enter_context(limits.hold(Viewer("ICBC"), "ipv4:10.0.0.9:1000"))
        assert refused.value.code == "STREAM_LIMIT"
        held.enter_context(limits.hold(Viewer("CIB"), "ipv4:10.0.0.1:1000"))  # not ICBC's share
    with limits.hold(Viewer("ICBC"), "ipv4:10.0.0.1:1000"):  # released on exit
        pass


def test_anonymous_callers_share_a_pool_per_address_and_in_all() -> None:
    limits = _limits()
    with ExitStack() as held:
        held.enter_context(limits.hold(ANONYMOUS, "ipv4:10.0.0.1:1000"))
        held.enter_context(limits.hold(ANONYMOUS, "ipv4:10.0.0.1:1001"))
        with pytest.raises(NodeError):  # a third from the same address, on another port
            held.enter_context(limits.hold(ANONYMOUS, "ipv4:10.0.0.1:1002"))
        held.enter_context(limits.hold(ANONYMOUS, "ipv6:[::1]:5000"))
        with pytest.raises(NodeError) as full:  # the pool is full, whatever the address
            held.enter_context(limits.hold(ANONYMOUS, "ipv4:10.0.0.7:1000"))
        assert "sign the request" in full.value.message
        # A viewer who signs is untouched by the full anonymous pool.
        held.enter_context(limits.hold(Viewer("ICBC"), "ipv4:10.0.0.1:1003"))
        assert limits.anonymous_held == 3
    assert limits.anonymous_held == 0
