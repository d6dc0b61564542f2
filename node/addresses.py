"""``host:port`` network addresses, as node.toml, genesis and the network manifest write them.

Pure parsing (no name resolution, no sockets): a client reading the manifest and a node reading
its configuration accept exactly the same addresses.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["HostPort", "describe_value", "parse_host_port"]

_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def describe_value(value: Any) -> str:
    """A short description of a wrong value for error messages."""
    kinds = {bool: "a boolean", float: "a number with a fraction", list: "a list", dict: "a table"}
    for kind, name in kinds.items():
        if isinstance(value, kind):
            text = json.dumps(value, default=str)
            return f"{name} ({text[:40]})" if kind in (bool, float) else name
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"the text {value[:60]!r}"
    return repr(value)[:60]


def parse_host_port(text: Any, *, allow_zero: bool = False) -> HostPort:
    """Parse ``host:port`` (IPv4, host name, or ``[IPv6]``); raise ValueError with a sentence."""
    if not isinstance(text, str):
        raise ValueError(f'must be a "host:port" string, got {describe_value(text)}')
    match = re.fullmatch(r"(\[[^\]]*\]|[^:\[\]]*):([0-9]{1,5})", text)
    if match is None:
        raise ValueError(f"must be host:port, e.g. 127.0.0.1:7100, got {text!r}")
    host, port = match.group(1), int(match.group(2))
    low = 0 if allow_zero else 1
    if not low <= port <= 65535:
        raise ValueError(f"port {port} is out of range {low}-65535")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{host} is not an IPv6 address") from None
        return HostPort(host[1:-1], port)
    if not host:
        raise ValueError(f"the host is missing in {text!r}")
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv4 address") from None
        return HostPort(host, port)
    if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
        raise ValueError(f"{host!r} is not a valid host name")
    return HostPort(host, port)
