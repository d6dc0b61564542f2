"""Fault campaigns against four real node processes: client load that keeps a history of what
was acknowledged, faults from a fixed menu (failpoint crashes and I/O errors, ``kill -9`` of the
primary or a backup, ``SIGSTOP``/``SIGCONT``), and a check of the replicas' chains afterwards.

What is checked comes from the client history and the replicas' stored blocks, never from what a
node says about itself: every acknowledged transaction is in every replica's chain exactly once
(I3), all replicas hold the same block at every height (I1) and the same state root after it
(I6). Every node records each vote it sends (``IBLEDGER_VOTE_LOG_DIR``, `node/vote_log.py`),
across all its restarts, and no node may have signed two digests for one view and sequence
number, or two checkpoints for one sequence number (C7). Recovery is measured from the end of a
fault (the restart, or ``SIGCONT``) until a probe transaction has committed and every replica has
reached its height (I8).

Every wait is for an event with a deadline that only bounds a hang; nothing here asserts how much
happens in a given time, so a slow machine runs fewer transactions, never a failing check."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from ibledger.node import failpoints, vote_log
from ibledger.node.tx import build_transaction
from ibledger.proto import ledger_pb2, ledger_pb2_grpc

from ..integration.cluster import CLI, Cluster

HANG_S = 120  # bounds a wait that should end on an event; never a performance target
CHECKPOINT_INTERVAL = 8  # small, so checkpoint failpoints are reached within a few blocks
VIEW_CHANGE_TIMEOUT_MS = 1_000
LOAD_ADMISSION = {"sender_pending_max": 1_000_000, "sender_burst": 1_000_000}


class CampaignError(AssertionError):
    """A fault run that could not go on (a node that never came back, a hung wait)."""


def create_cluster(directory: Path) -> Cluster:
    return Cluster.create(
        directory,
        view_change_timeout_ms=VIEW_CHANGE_TIMEOUT_MS,
        checkpoint_interval=CHECKPOINT_INTERVAL,
        admission=LOAD_ADMISSION,
    )


# --- processes ---------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def node_pid(cluster: Cluster, node_id: str) -> int | None:
    try:
        return cluster.pid(node_id)
    except (FileNotFoundError, ValueError):
        return None


def wait_dead(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill9(cluster: Cluster, node_id: str) -> None:
    pid = node_pid(cluster, node_id)
    if pid is None or not alive(pid):
        return
    os.kill(pid, signal.SIGKILL)
    if not wait_dead(pid, HANG_S):
        raise CampaignError(f"{node_id} (pid {pid}) outlived SIGKILL")


def vote_log_dir(cluster: Cluster) -> Path:
    return cluster.directory / "votes"


def network_up(cluster: Cluster, extra_env: dict[str, str] | None = None) -> bool:
    """``network up`` (it starts only the nodes that are not running), with every node recording
    its votes; True when every node came up. ``extra_env`` reaches the nodes it starts, and only
    them."""
    env = {k: v for k, v in os.environ.items() if k != failpoints.ENVIRONMENT_VARIABLE}
    env[vote_log.ENVIRONMENT_VARIABLE] = str(vote_log_dir(cluster))
    env.update(extra_env or {})
    result = subprocess.run(
        [*CLI, "network", "up", "--dir", str(cluster.directory), "--timeout", "60"],
        capture_output=True, text=True, timeout=HANG_S + 60, env=env,
    )  # fmt: skip
    return result.returncode == 0


def start(cluster: Cluster) -> None:
    """Start a campaign's network (``network_up``), or stop what came up and fail."""
    if not network_up(cluster):
        cluster.down()
        raise CampaignError("the network did not come up")


def vote_conflicts(cluster: Cluster) -> tuple[int, list[str]]:
    """Votes recorded by all nodes, and every pair of conflicting ones (``node: what``)."""
    recorded, found = 0, []
    for path in sorted(vote_log_dir(cluster).glob("*.jsonl")):
        lines = path.read_text(errors="replace").splitlines()
        recorded += len(lines)
        found += [f"{path.stem}: {text}" for text in vote_log.conflicts(lines)]
    return recorded, found


def assert_row_clean(cluster: Cluster, row: dict[str, Any]) -> None:
    """A campaign row that acknowledged something and found each of it once on every replica,
    with no fork, no state-root mismatch and no conflicting votes."""
    assert row["acknowledged"] > 0, row
    assert row["found_exactly_once"] == row["acknowledged"], row
    assert row["forks"] == 0 and row["state_root_mismatches"] == 0, row
    assert row["conflicting_votes"] == 0, vote_conflicts(cluster)[1]


def log_mentions_failpoint(cluster: Cluster, node_id: str, name: str, since: int) -> bool:
    """The node's log has a ``failpoint`` line for ``name`` after byte offset ``since``."""
    path = cluster.directory / "nodes" / node_id / "node.log"
    with path.open("rb") as log:
        log.seek(since)
        tail = log.read().decode(errors="replace")
    return f'"failpoint": "{name}"' in tail


def log_size(cluster: Cluster, node_id: str) -> int:
    path = cluster.directory / "nodes" / node_id / "node.log"
    return path.stat().st_size if path.exists() else 0


# --- client load ------------------------------------------------------------------------------


class Load:
    """Client threads that submit signed transactions to the nodes marked up and wait for each
    to commit there; ``acked`` is every transaction whose receipt said OK."""

    def __init__(self, cluster: Cluster, *, threads: int = 3, batch: int = 4, seed: int = 0):
        self.cluster = cluster
        self.threads = threads
        self.batch = batch
        self.acked: dict[bytes, str] = {}
        self.submitted = 0
        self.errors = 0
        self._up = set(cluster.node_ids)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._random = random.Random(seed)
        self._nonce = 10_000_000  # apart from the nonces the cluster helper hands out

    def start(self) -> None:
        self._stop.clear()
        self._workers = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(HANG_S)
        self._workers = []

    def down(self, node_id: str) -> None:
        with self._lock:
            self._up.discard(node_id)

    def up(self, node_id: str) -> None:
        with self._lock:
            self._up.add(node_id)

    def envelope(self, tag: str) -> bytes:
        with self._lock:
            self._nonce += 1
            nonce = self._nonce
        return build_transaction(
            self.cluster.admin,
            chain_id=self.cluster.manifest.chain_id,
            sender="ADMIN",
            operation="identity.update_details",
            args={"participant": "CSDC", "name": f"{tag}-{nonce}"},
            nonce=nonce,
        )

    def _pick(self) -> str | None:
        with self._lock:
            up = sorted(self._up)
            return self._random.choice(up) if up else None

    def _run(self, worker: int) -> None:
        stubs: dict[str, ledger_pb2_grpc.LedgerStub] = {}
        while not self._stop.is_set():
            node_id = self._pick()
            if node_id is None:
                time.sleep(0.1)
                continue
            stub = stubs.get(node_id)
            if stub is None:
                stub = stubs[node_id] = self.cluster.stub(node_id)
            envelopes = [self.envelope(f"load{worker}") for _ in range(self.batch)]
            try:
                self.commit(stub, node_id, envelopes)
            except grpc.RpcError:
                self.errors += 1
                time.sleep(0.1)  # a node being faulted: try another

    def commit(self, stub: ledger_pb2_grpc.LedgerStub, node_id: str, envelopes: list[bytes]) -> int:
        """Submit and wait for every admitted one; the highest height seen (0 if none)."""
        response = stub.SubmitBatch(ledger_pb2.SubmitBatchRequest(envelopes=envelopes), timeout=10)
        with self._lock:
            self.submitted += len(envelopes)
        viewer = self.cluster.session(node_id)
        height = 0
        for result in response.results:
            if result.status == ledger_pb2.REJECTED:
                continue
            receipt = stub.WaitForCommit(
                ledger_pb2.WaitForCommitRequest(tx_id=result.tx_id, timeout_ms=20_000,
                                                viewer=viewer),
                timeout=30,
            )  # fmt: skip
            if receipt.result.code == "OK":
                with self._lock:
                    self.acked[receipt.tx_id] = node_id
                height = max(height, receipt.height)
        return height

    def acked_ids(self) -> set[bytes]:
        with self._lock:
            return set(self.acked)

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)


# --- checks -------------------------------------------------------------------------------------


@dataclass
class ChainCheck:
    height: int
    acked: int
    found_exactly_once: int
    lost: int
    duplicated: int
    forks: int
    state_root_mismatches: int

    @property
    def ok(self) -> bool:
        return (
            self.found_exactly_once == self.acked
            and self.forks == 0
            and self.state_root_mismatches == 0
        )


class ChainReader:
    """Blocks read from every replica, kept: a committed block never changes, so each height is
    fetched once per replica however often the chains are checked."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.blocks: dict[str, list[tuple[bytes, bytes, list[bytes]]]] = {
            n: [] for n in cluster.node_ids
        }

    def _extend(self, node_id: str, height: int) -> None:
        have = self.blocks.setdefault(node_id, [])  # a validator added since
        if len(have) > height:
            return
        stub = self.cluster.stub(node_id)
        request = ledger_pb2.StreamBlocksRequest(
            from_height=len(have), viewer=self.cluster.session(node_id)
        )
        call = stub.StreamBlocks(request, timeout=HANG_S)
        try:
            for block in call:
                tx_ids = [
                    self.cluster.decode(envelope).tx_id
                    for envelope, result in zip(block.txs, block.results, strict=True)
                    if result.code != "DUPLICATE_TX"
                ]
                have.append((block.block_hash, block.state_root, tx_ids))
                if len(have) > height:
                    break
        finally:
            call.cancel()  # the stream would wait for the next block

    def check(self, acked: Iterable[bytes], nodes: Sequence[str] | None = None) -> ChainCheck:
        """Wait until the replicas (``nodes``, default all) agree on their height (bounded),
        read them, compare."""
        node_ids = list(nodes) if nodes is not None else self.cluster.node_ids
        height = self.cluster.wait_heights_equal(node_ids, HANG_S)
        for node_id in node_ids:
            self._extend(node_id, height)
        forks = mismatches = 0
        for h in range(height + 1):
            hashes = {self.blocks[n][h][0] for n in node_ids}
            roots = {self.blocks[n][h][1] for n in node_ids}
            forks += len(hashes) > 1
            mismatches += len(roots) > 1
        counts: dict[str, dict[bytes, int]] = {}
        for node_id in node_ids:
            per_node: dict[bytes, int] = {}
            for _, _, tx_ids in self.blocks[node_id][: height + 1]:
                for tx_id in tx_ids:
                    per_node[tx_id] = per_node.get(tx_id, 0) + 1
            counts[node_id] = per_node
        acked_ids = list(acked)
        once = lost = duplicated = 0
        for tx_id in acked_ids:
            seen = [counts[n].get(tx_id, 0) for n in node_ids]
            once += all(c == 1 for c in seen)
            lost += any(c == 0 for c in seen)
            duplicated += any(c > 1 for c in seen)
        return ChainCheck(height, len(acked_ids), once, lost, duplicated, forks, mismatches)


# --- faults -------------------------------------------------------------------------------------


@dataclass
class Fault:
    kind: str
    target: str
    detail: str = ""
    fired: bool = True  # a failpoint that was never reached injected nothing
    recover_s: float | None = None


@dataclass
class Campaign:
    cluster: Cluster
    load: Load
    rng: random.Random
    faults: list[Fault] = field(default_factory=list)
    log: Callable[[str], None] = print
    # More fault kinds by name (the partition campaign's): kind -> inject, heal, return the fault
    custom: dict[str, Callable[[str], Fault]] = field(default_factory=dict)
    reader: ChainReader = field(init=False)

    def __post_init__(self) -> None:
        self.reader = ChainReader(self.cluster)

    def primary(self) -> str:
        for node_id in self.cluster.node_ids:
            try:
                return self.cluster.status(node_id).primary
            except grpc.RpcError:
                continue
        raise CampaignError("no node answered GetStatus")

    def recover(self, faulted: str, began: float) -> float:
        """Seconds from ``began`` (the fault's end: a restart began, or ``SIGCONT``) until a
        probe committed through a node other than ``faulted`` and every replica reached its
        height."""
        deadline = began + HANG_S
        others = [n for n in self.cluster.node_ids if n != faulted]
        height = 0
        while height == 0:
            via = self.rng.choice(others)
            with contextlib.suppress(grpc.RpcError):
                height = self.load.commit(
                    self.cluster.stub(via), via, [self.load.envelope("probe")]
                )
            if time.monotonic() > deadline:
                raise CampaignError("no probe transaction committed after the fault ended")
        self.cluster.wait_heights_at_least(self.cluster.node_ids, height, HANG_S)
        return time.monotonic() - began

    def restart(self, node_id: str, extra_env: dict[str, str] | None = None) -> None:
        network_up(self.cluster, extra_env)
        pid = node_pid(self.cluster, node_id)
        if extra_env is None and (pid is None or not alive(pid)):
            raise CampaignError(f"{node_id} did not come back up")

    def _backup(self) -> str:
        primary = self.primary()
        return self.rng.choice([n for n in self.cluster.node_ids if n != primary])

    def kill(self, kind: str, down_s: float = 3.0) -> Fault:
        target = self.primary() if kind == "kill-primary" else self._backup()
        self.load.down(target)
        kill9(self.cluster, target)
        time.sleep(down_s)  # the others run on without it (a view change for a primary)
        began = time.monotonic()
        self.restart(target)
        self.load.up(target)
        return Fault(kind, target, recover_s=self.recover(target, began))

    def pause(self, kind: str, paused_s: float = 4.0) -> Fault:
        target = self.primary() if kind == "pause-primary" else self._backup()
        pid = node_pid(self.cluster, target)
        assert pid is not None
        self.load.down(target)
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(paused_s)  # longer than the view-change timeout
        finally:
            os.kill(pid, signal.SIGCONT)
        began = time.monotonic()
        self.load.up(target)
        return Fault(kind, target, recover_s=self.recover(target, began))

    def failpoint(self, point: str, action: str = "crash", lag_s: float = 2.0) -> Fault:
        """Stop a random node, let it fall behind (so its restart catches up by state transfer),
        restart it with ``point`` armed, wait until the point ends it, restart it plainly."""
        kind = f"failpoint-{action}"
        target = self.rng.choice(self.cluster.node_ids)
        on_hit = self.rng.randint(1, 3)
        self.load.down(target)
        kill9(self.cluster, target)
        time.sleep(lag_s)
        since = log_size(self.cluster, target)
        spec = f"{point}={action}@{on_hit}"
        self.restart(target, {failpoints.ENVIRONMENT_VARIABLE: spec})
        self.load.up(target)
        pid = node_pid(self.cluster, target)
        # The deadlines bound a point that is never reached, and a node that hangs.
        deadline = time.monotonic() + 60
        fired = False
        while pid is not None and alive(pid) and time.monotonic() < deadline:
            fired = log_mentions_failpoint(self.cluster, target, point, since)
            if fired:
                break
            time.sleep(0.1)
        # A crash ends the process; an I/O error stops the node (its runtime fails) or leaves it
        # running where the write may fail (a checkpoint certificate is stored again later).
        ended = pid is None or wait_dead(pid, HANG_S if action == "crash" else 10)
        fired = fired or log_mentions_failpoint(self.cluster, target, point, since)
        ran_on = ""
        if not ended and fired:
            # It ran on: it must keep up with the others (no task of it died with the error).
            height = max(self.cluster.status(n).height for n in self.cluster.node_ids)
            self.cluster.wait_heights_at_least([target], height, HANG_S)
            ran_on = ": the node ran on and kept committing"
        self.load.down(target)
        if not ended:
            kill9(self.cluster, target)
        began = time.monotonic()
        self.restart(target)
        self.load.up(target)
        detail = spec if fired else f"{spec} (not reached)"
        if fired and action == "error":
            detail += ran_on or ": the node stopped"
        return Fault(kind, target, detail, fired=fired, recover_s=self.recover(target, began))

    def run(self, kind: str, count: int, points: list[str] | None = None) -> dict[str, Any]:
        """``count`` faults of one kind under load, then the chain check of what was
        acknowledged meanwhile: the kind's row of the summary."""
        before = self.load.acked_ids()
        injected = 0
        faults = []
        for i in range(count):
            if kind.startswith("failpoint-"):
                assert points
                fault = self.failpoint(points[i % len(points)], kind.removeprefix("failpoint-"))
            elif kind.startswith("kill-"):
                fault = self.kill(kind)
            elif kind.startswith("pause-"):
                fault = self.pause(kind)
            elif kind in self.custom:
                fault = self.custom[kind](kind)
            else:
                raise ValueError(f"unknown fault kind {kind!r}")
            faults.append(fault)
            injected += fault.fired
            self.log(
                f"  {fault.kind} {fault.target} {fault.detail} recovered in "
                f"{fault.recover_s:.2f} s; {self.load.acked_count()} acknowledged so far"
            )
        self.faults.extend(faults)
        return self.check_row(kind, faults, injected, before)

    def check_row(
        self,
        kind: str,
        faults: list[Fault],
        injected: int,
        before: set[bytes] | None = None,
        nodes: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Pause the load, compare the chains of ``nodes`` (default all) against what was
        acknowledged since ``before`` (everything when ``None``), and resume the load."""
        self.load.stop()
        try:
            acked = [t for t in self.load.acked_ids() if before is None or t not in before]
            check = self.reader.check(acked, nodes)
        finally:
            self.load.start()
        times = [f.recover_s for f in faults if f.recover_s is not None]
        votes, conflicting = vote_conflicts(self.cluster)
        for text in conflicting:
            self.log(f"  conflicting votes: {text}")
        return {
            "fault_kind": kind,
            "faults_injected": injected,
            "acknowledged": check.acked,
            "found_exactly_once": check.found_exactly_once,
            "lost": check.lost,
            "duplicated": check.duplicated,
            "forks": check.forks,
            "state_root_mismatches": check.state_root_mismatches,
            "votes_checked": votes,
            # None (shown "-") where no node recorded its votes, as in the partition campaign.
            "conflicting_votes": len(conflicting) if votes else None,
            "recover_median_s": round(statistics.median(times), 2) if times else None,
            "recover_max_s": round(max(times), 2) if times else None,
            "height": check.height,
        }
