"""The partition campaign: four validators on separate hosts (one network namespace each,
``tests.netns.hosts``), partitioned with nftables under client load: an isolated primary (N2),
an isolated backup (N1), a 2-2 split (N3), an asymmetric partition where one host sends but
receives nothing (N5), and swizzle-clog (N4: two or three hosts cut off one by one a second
apart, then healed in random order a second apart, ten times over).

The client load, the faults and the checks run in one process inside the lab's client
namespace (``python -m tests.chaos.partitions``), so every socket the gRPC client opens is on
the lab's network; the faults are rules in the hosts' namespaces, which that process changes by
name. The parent sets the lab up, starts the nodes, and removes everything afterwards."""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from ibledger.cli.manifest import load_manifest
from ibledger.node.crypto import load_private_key
from ibledger.node.jsonfile import update_genesis

from ..integration.cluster import Cluster
from ..netns import hosts
from . import harness

NODES = 4
HOLD_S = 5.0  # a partition lasts longer than the view-change timeout
SWIZZLE_ROUNDS = 10
SWIZZLE_STEP_S = 1.0


def unavailable_reason() -> str | None:
    return hosts.unavailable_reason()


def _start_network(lab: hosts.Lab, root: Path) -> Path:
    """``network init --hosts`` with the campaign's consensus and admission settings in every
    copy of the genesis (before any node starts), each bundle started on its host."""
    directory = root / "operator" / "network"
    subprocess.run(
        [*hosts.CLI, "network", "init", "--dir", str(directory), "--hosts", ",".join(lab.hosts)],
        check=True, capture_output=True, timeout=hosts.COMMAND_TIMEOUT_S,
    )  # fmt: skip
    changes = {
        "consensus": {
            "view_change_timeout_ms": harness.VIEW_CHANGE_TIMEOUT_MS,
            "checkpoint_interval": harness.CHECKPOINT_INTERVAL,
            "watermark_window": 4 * harness.CHECKPOINT_INTERVAL,
        },
        "admission": harness.LOAD_ADMISSION,
    }
    for genesis in directory.rglob("genesis.json"):
        update_genesis(genesis, changes)
    for index, host in enumerate(lab.hosts):
        node_id = f"node{index}"
        home = root / "hosts" / host / node_id
        shutil.copytree(directory / "bundles" / node_id, home)
        lab.start_node(node_id, host, home)
    return directory


def run(root: Path, kinds: list[str], rounds: int, seed: int, say: Any) -> list[dict[str, Any]]:
    lab = hosts.Lab(NODES)
    lab.create()
    try:
        directory = _start_network(lab, root)
        out = root / "rows.json"
        argv = [
            "ip", "netns", "exec", lab.client, sys.executable, "-m", "tests.chaos.partitions",
            "--network", str(directory), "--run-id", lab.run_id, "--kinds", ",".join(kinds),
            "--rounds", str(rounds), "--seed", str(seed), "--out", str(out),
        ]  # fmt: skip
        child = subprocess.run(argv, timeout=3600, check=False)
        if child.returncode != 0 or not out.exists():
            raise harness.CampaignError(f"the partition campaign failed ({child.returncode})")
        rows: list[dict[str, Any]] = json.loads(out.read_text())
        return rows
    finally:
        lab.destroy()


def _cluster(directory: Path) -> Cluster:
    cluster = Cluster(directory)
    cluster.manifest = load_manifest(directory)
    cluster.admin = load_private_key(cluster.manifest.identities["ADMIN"].key_file)
    return cluster


def _wait_ready(cluster: Cluster) -> None:
    deadline = time.monotonic() + harness.HANG_S
    while True:
        try:
            for node_id in cluster.node_ids:
                cluster.status(node_id)
            return
        except grpc.RpcError:
            pass  # not every node answers yet
        if time.monotonic() > deadline:
            raise harness.CampaignError("the validators did not answer")
        time.sleep(0.5)


def child(options: argparse.Namespace) -> int:
    lab = hosts.Lab(NODES, run_id=options.run_id)  # names only: the parent owns the lab
    cluster = _cluster(options.network)
    _wait_ready(cluster)
    rng = random.Random(options.seed)
    load = harness.Load(cluster, threads=2, seed=options.seed)
    began = time.monotonic()

    def say(text: str) -> None:
        print(f"[netns {time.monotonic() - began:6.1f} s] {text}", flush=True)

    campaign = harness.Campaign(cluster, load, rng, log=say)
    host_of = {f"node{i}": host for i, host in enumerate(lab.hosts)}

    def swizzle(kind: str) -> harness.Fault:
        chosen = rng.sample(cluster.node_ids, rng.choice((2, 3)))
        target = "+".join(chosen)
        for node in chosen:
            load.down(node)
        for _ in range(SWIZZLE_ROUNDS):
            for node in chosen:
                lab.isolate(host_of[node])
                time.sleep(SWIZZLE_STEP_S)
            for node in rng.sample(chosen, len(chosen)):
                lab.heal(host_of[node])
                time.sleep(SWIZZLE_STEP_S)
        healed = time.monotonic()
        for node in chosen:
            load.up(node)
        detail = f"cut one by one, healed in random order, {SWIZZLE_ROUNDS} times"
        return harness.Fault(kind, target, detail, recover_s=campaign.recover(chosen[0], healed))

    def partition(kind: str) -> harness.Fault:
        if kind == "swizzle-clog":
            return swizzle(kind)
        primary = campaign.primary()
        backups = [n for n in cluster.node_ids if n != primary]
        cut_off: list[str] = []
        if kind == "partition-primary":
            target, detail = primary, "isolated"
            lab.isolate(host_of[primary])
            cut_off = [primary]
        elif kind == "partition-backup":
            target, detail = rng.choice(backups), "isolated"
            lab.isolate(host_of[target])
            cut_off = [target]
        elif kind == "split-2-2":
            half = [primary, rng.choice(backups)]
            other = [n for n in cluster.node_ids if n not in half]
            target, detail = "+".join(half), f"{'+'.join(half)} | {'+'.join(other)}"
            for mine, theirs in ((half, other), (other, half)):
                for node in mine:
                    lab.cut(host_of[node], [host_of[peer] for peer in theirs])
        else:  # asymmetric
            target = rng.choice(cluster.node_ids)
            detail = "sends, receives nothing"
            lab.deafen(host_of[target])
            cut_off = [target]
        for node in cut_off:
            load.down(node)
        time.sleep(HOLD_S)
        lab.heal_all()
        healed = time.monotonic()
        for node in cut_off:
            load.up(node)
        faulted = cut_off[0] if cut_off else ""
        return harness.Fault(kind, target, detail, recover_s=campaign.recover(faulted, healed))

    kinds = options.kinds.split(",")
    campaign.custom = dict.fromkeys(kinds, partition)
    rows = []
    load.start()
    try:
        for kind in kinds:
            say(f"{kind}:")
            rows.append(campaign.run(kind, options.rounds))
            say("  " + json.dumps(rows[-1]))
        rows.append(campaign.check_row("all partitions", campaign.faults,
                                       sum(r["faults_injected"] for r in rows),
                                       None))  # fmt: skip
    finally:
        load.stop()
        lab.heal_all()
    options.out.write_text(json.dumps(rows))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.partitions")
    parser.add_argument("--network", type=Path, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--kinds", required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    return child(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
