"""``ibledger network drill site-loss``: a disaster-recovery drill on a fresh local network.

The network is laid out over three named sites, as "two sites, three centres" plans place a
consortium's validators: six validators, two per site (``a``: node0, node1; ``b``: node2,
node3; ``c``: node4, node5), and two observers at the recovery site ``c`` (``dr1``, ``dr2``)
that follow the chain without voting. Six validators tolerate one faulty one, and any four are
a quorum, so the loss of any one site leaves a quorum standing.

Under a steady client load the drill:

1. **loses site a**: both its validators are killed at once (``kill -9``);
2. measures the **seconds until commits resume** on the survivors (a view change when the
   primary was at site a);
3. **promotes the recovery site**, by governance, as an operator would: the two lost
   validators are removed (``membership.remove_validator``, one change at a time), then each
   observer at site c becomes a validator (``membership.add_validator`` with a new validator
   key; once its set takes over, the observer, which has followed the chain up to there, is
   stopped, given a validator certificate from the CA and a validator's node.toml, and started
   again on its own verified ledger) and the **seconds to promote** are measured;
4. checks that **nothing acknowledged was lost**: every transaction a client was told had
   committed is on every running validator exactly once, and they all hold the same blocks.

It prints the figures (``--json`` for the record) and stops the network; ``--keep DIR`` keeps
the network directory (with every node's log) there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ibledger.node.config import HostPort, format_toml
from ibledger.node.crypto import generate_keypair, write_private_key
from ibledger.node.jsonfile import read_json_object, update_genesis
from ibledger.node.pki import VALIDATOR_ROLE, issue_node_certificate, load_ca

from .client import Client, _transaction
from .errors import ClientError
from .manifest import Manifest, load_manifest
from .network_membership import _edit_manifest, _member_past, _propose, retire
from .network_observer import _replace_json
from .output import CommandError, emit, plain

SITES = {"a": ("node0", "node1"), "b": ("node2", "node3"), "c": ("node4", "node5")}
RECOVERY_OBSERVERS = ("dr1", "dr2")
LOST_SITE = "a"
RECOVERY_SITE = "c"
# Small checkpoints, so that a change takes effect within a second or two of load.
CONSENSUS = {"checkpoint_interval": 10, "watermark_window": 40, "view_change_timeout_ms": 1000}
LOAD_THREADS = 4
WARMUP_S = 5.0
DEADLINE_S = 180.0


def register(verbs: Any, add_dir: Any) -> None:
    drill = verbs.add_parser(
        "drill",
        help="run a disaster-recovery drill on a fresh local network",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = drill.add_subparsers(dest="drill", metavar="DRILL", required=True)
    site_loss = kinds.add_parser(
        "site-loss",
        help="lose one of three sites under load, promote the recovery site, check nothing is lost",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    site_loss.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep the drill's network (and its logs) in DIR"
    )
    site_loss.add_argument("--json", action="store_true", help="print the figures as JSON")
    site_loss.set_defaults(handler=site_loss_drill)


def _ibledger(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ibledger.cli.main", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    if result.returncode != 0:
        raise CommandError(
            "DRILL_FAILED",
            f"ibledger {' '.join(args)} failed: {(result.stderr or result.stdout).strip()}",
        )
    return result


def site_loss_drill(options: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="ibledger-drill-"))
    directory = workdir / "network"
    try:
        figures = _run(directory)
    finally:
        subprocess.run(
            [sys.executable, "-m", "ibledger.cli.main", "network", "down", "--dir", str(directory)],
            capture_output=True,
        )
        if options.keep is not None:
            shutil.copytree(
                directory,
                options.keep,
                dirs_exist_ok=True,
                symlinks=True,
                ignore=shutil.ignore_patterns("*.sock"),
            )
        shutil.rmtree(workdir, ignore_errors=True)
    text = "\n".join(
        [
            f"site-loss drill: lost site {LOST_SITE} ({', '.join(SITES[LOST_SITE])}) under load",
            f"  commits resumed after      {figures['seconds_to_resume']:.1f} s",
            f"  recovery site promoted in  {figures['seconds_to_promote']:.1f} s "
            f"({', '.join(RECOVERY_OBSERVERS)} now validators)",
            f"  transactions acknowledged  {figures['acknowledged']}",
            f"  transactions lost          {figures['lost']}",
            f"  validators now             {', '.join(figures['validators'])}",
        ]
    )
    emit(options, figures, text)
    return 0 if figures["lost"] == 0 and figures["forks"] == 0 else 1


def _run(directory: Path) -> dict[str, Any]:
    _ibledger("network", "init", "--nodes", "6", "--dir", str(directory))
    update_genesis(
        directory / "genesis.json",
        {
            "consensus": CONSENSUS,
            # The drill's load comes from one identity: lift its quota, as the benchmarks do.
            "admission": {
                "sender_pending_max": 1_000_000,
                "sender_rate_per_s": 1_000_000,
                "sender_burst": 1_000_000,
            },
        },
    )
    for name in RECOVERY_OBSERVERS:
        _ibledger("network", "add-observer", "--network", str(directory), "--name", name)
    sites = {site: list(nodes) for site, nodes in SITES.items()}
    sites[RECOVERY_SITE] += list(RECOVERY_OBSERVERS)
    _edit_manifest(directory, lambda raw: raw | {"sites": sites})
    _ibledger("network", "up", "--dir", str(directory), "--timeout", "60")
    manifest = load_manifest(directory)
    load = _Load(directory)
    load.start()
    try:
        time.sleep(WARMUP_S)
        survivors = [n for n in manifest.nodes if n.id not in SITES[LOST_SITE]]
        height_at_loss = max(_height(manifest, n.id) for n in survivors)
        lost_at = time.monotonic()
        for node_id in SITES[LOST_SITE]:
            _kill(directory / "nodes" / node_id)
        # Resumed: a transaction submitted after the loss has committed (blocks the lost
        # primary had already proposed may still commit without it).
        _wait(lambda: load.first_ack_after(lost_at) is not None, "commits to resume")
        seconds_to_resume = (load.first_ack_after(lost_at) or lost_at) - lost_at
        _wait(
            lambda: min(_height(manifest, n.id) for n in survivors) > height_at_loss + 1,
            "the survivors to commit on",
        )

        promote_began = time.monotonic()
        for node_id in SITES[LOST_SITE]:
            _remove_lost(directory, node_id)
        for name in RECOVERY_OBSERVERS:
            _promote(directory, name)
        seconds_to_promote = time.monotonic() - promote_began
        manifest = load_manifest(directory)
        top = max(_height(manifest, n.id) for n in manifest.nodes)
        _wait(
            lambda: min(_height(manifest, n.id) for n in manifest.nodes) >= top + 10,
            "every validator, the promoted ones too, to commit on",
        )
    finally:
        load.stop()
    check = _check(manifest, load.acked)
    return {
        "sites": sites,
        "lost_site": LOST_SITE,
        "seconds_to_resume": round(seconds_to_resume, 2),
        "seconds_to_promote": round(seconds_to_promote, 2),
        "acknowledged": len(load.acked),
        "lost": check["lost"],
        "duplicated": check["duplicated"],
        "forks": check["forks"],
        "height": check["height"],
        "validators": [n.id for n in manifest.nodes],
    }


# --- the steps -----------------------------------------------------------------------------------


def _kill(node_dir: Path) -> None:
    try:
        pid = int((node_dir / "node.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        raise CommandError("DRILL_FAILED", f"no running node in {node_dir}") from None
    os.kill(pid, signal.SIGKILL)


def _remove_lost(directory: Path, node_id: str) -> None:
    """Remove a validator of the lost site by governance: it is down, so nothing waits for it
    to leave; the change is in force once a survivor is past its height."""
    manifest = load_manifest(directory)
    receipt = _propose(
        directory, manifest, _as_admin(), None, "membership.remove_validator",
        {"validator": node_id},
    )  # fmt: skip
    scheduled = receipt.event("membership.scheduled")
    if scheduled is None:
        raise CommandError("DRILL_FAILED", f"removing {node_id} did not execute: {receipt.code}")
    others = [n for n in manifest.nodes if n.id not in SITES[LOST_SITE]]
    _member_past(manifest, int(scheduled.attrs["from_height"]), DEADLINE_S, None, "ADMIN", others)
    retire(directory, node_id)


def _promote(directory: Path, name: str) -> None:
    """Make the recovery-site observer ``name`` a validator, on the ledger it already holds."""
    from .network import free_ports, stop_node

    manifest = load_manifest(directory)
    observer = manifest.observer(name)
    assert observer is not None
    node_dir = Path(observer.dir)
    genesis = read_json_object(directory / "genesis.json")
    keypair = generate_keypair(str(genesis.get("crypto_suite", "ed25519-sha256")))
    owned = {a.port for p in manifest.processes for a in (p.api, p.metrics)} | {
        n.peer.port for n in manifest.nodes
    }
    peer = HostPort(observer.api.host, next(p for p in free_ports(8) if p not in owned))
    receipt = _propose(
        directory,
        manifest,
        _as_admin(),
        None,
        "membership.add_validator",
        {
            "validator": name,
            "public_key": keypair.public_key.hex(),
            "peer_address": str(peer),
            "api_address": str(observer.api),
        },
    )
    scheduled = receipt.event("membership.scheduled")
    if scheduled is None:
        raise CommandError("DRILL_FAILED", f"adding {name} did not execute: {receipt.code}")
    from_height = int(scheduled.attrs["from_height"])
    # The observer follows the chain up to the old set's end, so it starts on a ledger the new
    # set's replica can take over from.
    _wait(lambda: _height(manifest, name) >= from_height - 1, f"{name} to follow to the change")
    stop_node(observer)
    (node_dir / "keys").mkdir(mode=0o700, exist_ok=True)
    write_private_key(node_dir / "keys" / "validator.key.pem", keypair, None)
    ca = load_ca(directory / "ca", None)
    certificate = issue_node_certificate(ca, name, hosts=[observer.api.host], role=VALIDATOR_ROLE)
    for suffix in ("crt", "key"):
        (node_dir / "tls" / f"node.{suffix}").unlink()
    certificate.write(node_dir / "tls" / "node.crt", node_dir / "tls" / "node.key", None)
    # Its audit log's heads were signed with the observer's TLS key; a validator signs with its
    # validator key, so it starts a log of its own and keeps the observer's beside it.
    audit = node_dir / "data" / "audit"
    if audit.exists():
        audit.rename(audit.with_name("audit.observer"))
    _write_validator_toml(node_dir, name, observer.api, peer, observer.metrics)

    def to_validator(raw: dict[str, Any]) -> dict[str, Any]:
        entry = {
            "id": name,
            "api": str(observer.api),
            "peer": str(peer),
            "metrics": str(observer.metrics),
            "dir": f"nodes/{name}",
            "config": f"nodes/{name}/node.toml",
        }
        observers = [o for o in raw.get("observers", []) if o.get("id") != name]
        return raw | {"nodes": [*raw["nodes"], entry], "observers": observers}

    _edit_manifest(directory, to_validator)
    _retarget_prometheus(directory, name)
    _ibledger("network", "up", "--dir", str(directory), "--timeout", "60")


def _write_validator_toml(
    node_dir: Path, name: str, api: HostPort, peer: HostPort, metrics: HostPort
) -> None:
    from .network import node_toml

    path = node_dir / "node.toml"
    old = tomllib.loads(path.read_text(encoding="utf-8"))
    text = node_toml(name, api, peer, metrics, membership="governance")
    document = tomllib.loads(text)
    document["log"] = old.get("log", document["log"])
    staged = path.with_name("node.toml.new")
    staged.write_text(format_toml(document), encoding="utf-8")
    os.replace(staged, path)


def _retarget_prometheus(directory: Path, name: str) -> None:
    path = directory / "prometheus-targets.json"
    if not path.exists():
        return
    groups = json.loads(path.read_text(encoding="utf-8"))
    for group in groups:
        if group.get("labels", {}).get("node") == name:
            group["labels"]["role"] = "validator"
    _replace_json(path, groups)


def _as_admin() -> argparse.Namespace:
    return argparse.Namespace(identity="ADMIN")


# --- load and checks -----------------------------------------------------------------------------


class _Load:
    """Client threads submitting small transactions as ADMIN and keeping every acknowledged one
    (a receipt with code OK); a node that does not answer is skipped for the next."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self.acked: set[bytes] = set()
        self._acks: list[tuple[float, float]] = []  # (submitted, acknowledged), monotonic s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(LOAD_THREADS)
        ]
        for thread in self._threads:
            thread.start()

    def first_ack_after(self, moment: float) -> float | None:
        """When the first transaction submitted after ``moment`` was acknowledged."""
        with self._lock:
            times = [acked for submitted, acked in self._acks if submitted > moment]
        return min(times) if times else None

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self, index: int) -> None:
        count = 0
        while not self._stop.is_set():
            manifest = load_manifest(self._directory)
            nodes = [n for n in manifest.nodes if n.id not in SITES[LOST_SITE]]
            node = nodes[(index + count) % len(nodes)]
            count += 1
            try:
                with Client.from_network(
                    self._directory, identity="ADMIN", node=str(node.api), timeout_s=10
                ) as client:
                    for _ in range(20):
                        if self._stop.is_set():
                            return
                        submitted = time.monotonic()
                        receipt = client.submit(
                            "identity.update_details",
                            {"participant": "CSDC", "name": f"drill-{index}-{count}-{time.time()}"},
                            wait=True,
                            timeout_s=10,
                        )
                        if receipt.code == "OK":
                            with self._lock:
                                self.acked.add(receipt.tx_id)
                                self._acks.append((submitted, time.monotonic()))
            except ClientError:
                time.sleep(0.2)


def _height(manifest: Manifest, node_id: str) -> int:
    process = next(p for p in manifest.processes if p.id == node_id)
    try:
        with Client.from_network(manifest.directory, node=str(process.api), timeout_s=3) as client:
            return client.status().height
    except ClientError:
        return -1


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise CommandError("DRILL_FAILED", f"gave up waiting for {what} after {DEADLINE_S:g} s")
        time.sleep(0.2)


def _check(manifest: Manifest, acked: set[bytes]) -> dict[str, int]:
    """Every acknowledged transaction on every validator exactly once, and the same blocks."""
    heights: dict[str, int] = {}

    def level() -> bool:
        heights.update({n.id: _height(manifest, n.id) for n in manifest.nodes})
        return len(set(heights.values())) == 1

    _wait(level, "the validators to reach one height once the load stopped")
    height = min(heights.values())
    chains: dict[str, list[bytes]] = {}
    counts: dict[str, dict[bytes, int]] = {}
    for node in manifest.nodes:
        hashes: list[bytes] = []
        seen: dict[bytes, int] = {}
        with Client.from_network(
            manifest.directory, identity="ADMIN", node=str(node.api), timeout_s=30
        ) as client:
            stream = client.blocks(from_height=1)
            try:
                for block in stream:
                    hashes.append(block.block_hash)
                    for envelope, (code, _) in zip(block.txs, block.results, strict=True):
                        tx = _transaction(envelope, client.chain_hash)
                        if tx is not None and code != "DUPLICATE_TX":
                            seen[tx.tx_id] = seen.get(tx.tx_id, 0) + 1
                    if block.height >= height:
                        break
            finally:
                stream.close()
        chains[node.id], counts[node.id] = hashes, seen
    forks = sum(1 for h in range(height) if len({chain[h] for chain in chains.values()}) > 1)
    lost = sum(1 for t in acked if any(c.get(t, 0) == 0 for c in counts.values()))
    duplicated = sum(1 for t in acked if any(c.get(t, 0) > 1 for c in counts.values()))
    return {"lost": lost, "duplicated": duplicated, "forks": forks, "height": height}
