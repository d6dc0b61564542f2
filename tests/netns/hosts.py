"""Validators on separate hosts, on one machine: one Linux network namespace per host.

A *lab* is a set of namespaces made for one test run (their names carry a random run id, so
parallel runs and leftovers of a killed run never clash):

* a hub namespace holding a bridge, so the addresses below exist only inside this lab and never
  in the machine's own routing table;
* one namespace per validator host, ``10.77.0.11``, ``10.77.0.12``, ... on a /24, joined to the
  bridge by a veth pair (``eth0`` inside);
* a client namespace, ``10.77.0.2``, where the operator's commands run (the CLI, HTTP probes).

Faults are nftables rules in a host's namespace on its ``eth0`` only: dropping everything,
dropping traffic to and from given peer addresses, or dropping a random share of outgoing
packets (``numgen random mod 100 < P``). A host's loopback is never filtered, so its metrics
endpoint (read on ``127.0.0.1`` inside its namespace) still tells its height and view while it
is cut off. ``heal`` removes the rules.

Nodes run as ``ip netns exec NS python -m ibledger.cli.main node start --config node.toml`` from
their bundle directory, as an operator starts one on its host.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..process_group import stop_process_group

SUBNET = "10.77.0."
PREFIX_LENGTH = 24
HOST_FIRST = 11  # the first host is 10.77.0.11
CLIENT_ADDRESS = SUBNET + "2"
DEVICE = "eth0"
FAULT_TABLE = "ibledger_fault"
METRICS_PORT_OFFSET = 2  # base port + 2 (cli/deploy.py)
CLI = [sys.executable, "-m", "ibledger.cli.main"]
COMMAND_TIMEOUT_S = 180  # bounds a hung command only
LAB_PREFIX = "ibllab-"
_LAB_NAME = re.compile(rf"^{LAB_PREFIX}(\d+)-[0-9a-f]{{6}}-\w+$")
_CLONE_NEWNET = 0x40000000
_T = TypeVar("_T")


class LabError(RuntimeError):
    """A namespace, link or rule that could not be set up; the text holds the command's error."""


def _run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _table(chains: dict[str, list[str]]) -> str:
    """The fault table in nft's file syntax: a filter chain per hook with its rules."""
    lines = [f"table inet {FAULT_TABLE} {{"]
    for hook, rules in chains.items():
        lines += [f"  chain {hook} {{", f"    type filter hook {hook} priority 0; policy accept;"]
        lines += [f"    {rule}" for rule in rules]
        lines.append("  }")
    return "\n".join([*lines, "}", ""])


def _nft(namespace: str, text: str) -> subprocess.CompletedProcess[str]:
    """``nft -f -`` reading ``text``, inside ``namespace``."""
    return subprocess.run(
        ["ip", "netns", "exec", namespace, "nft", "-f", "-"],
        input=text,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )


@functools.cache
def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here (not root, no ``ip`` or ``nft``, no netns support), or
    None when they can: a throwaway namespace is made, filtered and removed to find out."""
    if os.geteuid() != 0:
        return "network namespace tests need root (ip netns, nftables)"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"network namespace tests need the {tool} command (package {package})"
    # Named like a lab's namespaces, so that one left by a killed run is removed like theirs.
    probe = f"{LAB_PREFIX}{os.getpid()}-{secrets.token_hex(3)}-probe"
    added = _run(["ip", "netns", "add", probe], check=False)
    if added.returncode != 0:
        return f"ip netns add does not work here: {added.stderr.strip()}"
    try:
        nft = _nft(probe, _table({"output": []}))
        if nft.returncode != 0:
            return f"nft does not work in a namespace here: {nft.stderr.strip()}"
    finally:
        _run(["ip", "netns", "del", probe], check=False)
    return None


def in_namespace(namespace: str, function: Callable[[], _T]) -> _T:
    """``function()`` run on a thread that has entered ``namespace``'s network namespace, so the
    sockets it opens live there (this process and its other threads stay where they are)."""
    outcome: list[_T] = []
    failure: list[BaseException] = []

    def enter_and_run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns into {namespace}: {os.strerror(errno)}")
            finally:
                os.close(fd)
            outcome.append(function())
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=enter_and_run, name=f"netns-{namespace}", daemon=True)
    thread.start()
    thread.join(timeout=COMMAND_TIMEOUT_S)
    if failure:
        raise failure[0]
    if not outcome:
        raise LabError(f"a call inside {namespace} did not return")
    return outcome[0]


def http_get(url: str, timeout_s: float = 3) -> tuple[int, str]:
    """(status, body) of a plain HTTP GET, no proxy; (0, reason) when nothing answered."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def parse_metrics(text: str) -> dict[str, float]:
    """The unlabelled samples of a Prometheus exposition: ``{name: value}``."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or "{" in line or " " not in line:
            continue
        name, _, value = line.partition(" ")
        samples[name] = float(value.split()[0])
    return samples


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float) -> None:
    """Poll ``condition`` until it holds; the deadline only bounds a hang."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.25)


def remove_leftovers() -> list[str]:
    """Remove the labs of test runs that were killed before their teardown (their process is
    gone): stop the node processes still running in their namespaces, then delete the
    namespaces. Returns the namespaces removed."""
    listed = _run(["ip", "netns", "list"], check=False).stdout.split()
    removed = []
    for name in listed:
        match = _LAB_NAME.match(name)
        if match is None or Path(f"/proc/{match.group(1)}").exists():
            continue
        pids = _run(["ip", "netns", "pids", name], check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        _run(["ip", "netns", "del", name], check=False)
        removed.append(name)
    return removed


@dataclass
class Node:
    """A validator process started in its host's namespace from its bundle directory."""

    node_id: str
    host: str
    bundle: Path
    process: subprocess.Popen[bytes]

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        stop_process_group(self.process, 20)


@dataclass
class Lab:
    """The namespaces of one run: ``hosts`` validator hosts and a client, joined by a bridge."""

    host_count: int
    # The creating process's id and a random part: unique among parallel runs, and a lab whose
    # process is gone is known to be a leftover (``remove_leftovers``).
    run_id: str = field(default_factory=lambda: f"{os.getpid()}-{secrets.token_hex(3)}")
    created: list[str] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)

    # --- names -----------------------------------------------------------------------------

    @property
    def hosts(self) -> list[str]:
        return [f"{SUBNET}{HOST_FIRST + index}" for index in range(self.host_count)]

    def _name(self, label: str) -> str:
        return f"{LAB_PREFIX}{self.run_id}-{label}"

    @property
    def hub(self) -> str:
        return self._name("hub")

    @property
    def client(self) -> str:
        return self._name("client")

    def namespace(self, host: str) -> str:
        """The namespace of a validator host (``10.77.0.12`` -> ``ibllab-<run>-h12``)."""
        if host not in self.hosts:
            raise LabError(f"{host} is not a host of this lab ({', '.join(self.hosts)})")
        return self._name(f"h{host.rpartition('.')[2]}")

    def in_host(self, host: str) -> list[str]:
        """The command prefix that runs a program on ``host`` (in its namespace)."""
        return ["ip", "netns", "exec", self.namespace(host)]

    # --- set-up and teardown ---------------------------------------------------------------

    def create(self) -> None:
        """Make every namespace, link and address; on a failure, remove what was made."""
        remove_leftovers()
        try:
            self._add_namespace(self.hub)
            _run(["ip", "-n", self.hub, "link", "add", "br0", "type", "bridge"])
            _run(["ip", "-n", self.hub, "link", "set", "br0", "up"])
            _run(["ip", "-n", self.hub, "link", "set", "lo", "up"])
            members = [(self.client, CLIENT_ADDRESS)]
            members += [(self.namespace(host), host) for host in self.hosts]
            for index, (namespace, address) in enumerate(members):
                self._add_namespace(namespace)
                port = f"p{index}"
                _run(["ip", "-n", self.hub, "link", "add", port, "type", "veth",
                      "peer", "name", DEVICE, "netns", namespace])  # fmt: skip
                _run(["ip", "-n", self.hub, "link", "set", port, "master", "br0", "up"])
                _run(["ip", "-n", namespace, "addr", "add", f"{address}/{PREFIX_LENGTH}",
                      "dev", DEVICE])  # fmt: skip
                _run(["ip", "-n", namespace, "link", "set", DEVICE, "up"])
                _run(["ip", "-n", namespace, "link", "set", "lo", "up"])
        except BaseException:
            self.destroy()
            raise

    def _add_namespace(self, namespace: str) -> None:
        _run(["ip", "netns", "add", namespace])
        self.created.append(namespace)

    def destroy(self) -> None:
        """Stop every node, then remove the namespaces (their links and rules go with them)."""
        for node in self.nodes:
            node.stop()
        self.nodes.clear()
        for namespace in reversed(self.created):
            _run(["ip", "netns", "del", namespace], check=False)
        self.created.clear()

    # --- processes -------------------------------------------------------------------------

    def start_node(self, node_id: str, host: str, bundle: Path) -> Node:
        """``node start --config node.toml`` from ``bundle``, inside ``host``'s namespace."""
        with (bundle / "node.out").open("wb") as log:
            process = subprocess.Popen(
                [*self.in_host(host), *CLI, "node", "start", "--config", "node.toml"],
                cwd=bundle,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as one
            )
        node = Node(node_id, host, bundle, process)
        self.nodes.append(node)
        return node

    def cli(
        self, *args: str, namespace: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``ibledger ARGS`` in the client namespace (or ``namespace``)."""
        where = namespace or self.client
        env = {k: v for k, v in os.environ.items() if not k.startswith("IBLEDGER_")}
        result = subprocess.run(
            ["ip", "netns", "exec", where, *CLI, *args],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"ibledger {' '.join(args)} in {where} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    # --- observing -------------------------------------------------------------------------

    def get_from_client(self, url: str) -> tuple[int, str]:
        """An HTTP GET from the client namespace."""
        return in_namespace(self.client, lambda: http_get(url))

    def metrics(self, host: str, base_port: int) -> dict[str, float]:
        """The host's node metrics, read on its own loopback (faults never filter it)."""
        url = f"http://127.0.0.1:{base_port + METRICS_PORT_OFFSET}/metrics"
        status, body = in_namespace(self.namespace(host), lambda: http_get(url))
        if status != 200:
            raise AssertionError(f"metrics of {host}: {status} {body}")
        return parse_metrics(body)

    def statuses(self, network: Path) -> list[dict[str, Any]]:
        """``ibledger status --all --json`` from the client: one row per node."""
        result = self.cli("status", "--all", "--network", str(network), "--json",
                          "--timeout", "5", check=False)  # fmt: skip
        if result.returncode not in (0, 3):  # 3: no node answered (every row says why)
            raise AssertionError(f"status --all failed:\n{result.stdout}\n{result.stderr}")
        rows: list[dict[str, Any]] = json.loads(result.stdout)["nodes"]
        return rows

    # --- faults ----------------------------------------------------------------------------

    def _rules(self, host: str, input_rules: list[str], output_rules: list[str]) -> None:
        """Replace the host's fault table with one holding these rules (on eth0 only)."""
        self.heal(host)
        namespace = self.namespace(host)
        result = _nft(namespace, _table({"input": input_rules, "output": output_rules}))
        if result.returncode != 0:
            raise LabError(f"nft in {namespace}: {result.stderr.strip()}")

    def isolate(self, host: str) -> None:
        """Drop everything the host sends or receives on its network link."""
        self._rules(host, [f'iifname "{DEVICE}" drop'], [f'oifname "{DEVICE}" drop'])

    def deafen(self, host: str) -> None:
        """Drop everything the host receives on its link; what it sends still leaves (an
        asymmetric partition: the others hear it, it hears no one)."""
        self._rules(host, [f'iifname "{DEVICE}" drop'], [])

    def cut(self, host: str, peers: Sequence[str]) -> None:
        """Drop the host's traffic to and from each of ``peers`` (others still reach it)."""
        self._rules(
            host,
            [f'iifname "{DEVICE}" ip saddr {peer} drop' for peer in peers],
            [f'oifname "{DEVICE}" ip daddr {peer} drop' for peer in peers],
        )

    def lose(self, host: str, percent: int) -> None:
        """Drop ``percent`` % of the packets the host sends, at random."""
        if not 0 < percent < 100:
            raise LabError(f"a loss rate is 1 to 99 %, got {percent}")
        self._rules(host, [], [f'oifname "{DEVICE}" numgen random mod 100 < {percent} drop'])

    def heal(self, host: str) -> None:
        """Remove the host's fault rules (nothing to do when it has none)."""
        namespace = self.namespace(host)
        listed = _run(["ip", "netns", "exec", namespace, "nft", "list", "tables"])
        if f"inet {FAULT_TABLE}" in listed.stdout:
            _run(["ip", "netns", "exec", namespace, "nft", "delete", "table", "inet", FAULT_TABLE])

    def heal_all(self) -> None:
        for host in self.hosts:
            self.heal(host)
