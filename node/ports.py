"""The fixed port layout of a deployed node.

A node placed on its own host (``network init --hosts``, compose, Kubernetes) listens on three
ports counted from one base: peers, the client API and metrics/health. Operators open the same
three ports on every host, and a client given ``--node HOST`` without a port reaches the API.
A local network on one machine (plain ``network init``) still takes free ports at random so that
several networks can run side by side.
"""

from __future__ import annotations

from typing import Final

DEFAULT_BASE_PORT: Final = 7050
PEER_OFFSET: Final = 0
API_OFFSET: Final = 1
METRICS_OFFSET: Final = 2

DEFAULT_PEER_PORT: Final = DEFAULT_BASE_PORT + PEER_OFFSET
DEFAULT_API_PORT: Final = DEFAULT_BASE_PORT + API_OFFSET
DEFAULT_METRICS_PORT: Final = DEFAULT_BASE_PORT + METRICS_OFFSET


def node_ports(base: int = DEFAULT_BASE_PORT) -> tuple[int, int, int]:
    """The (peer, api, metrics) ports of a node whose layout starts at ``base``."""
    if not 1 <= base <= 65535 - METRICS_OFFSET:
        raise ValueError(f"base port {base} leaves no room for three ports below 65536")
    return base + PEER_OFFSET, base + API_OFFSET, base + METRICS_OFFSET
