"""The load engine of ``ibledger bench``: client processes, commit streams, faults.

One run: ``P`` client processes (``multiprocessing``, spawned so no gRPC state is inherited)
each connect to every target node, open a block stream and wait for a common start time.  For
``warmup + duration`` seconds they offer load, closed loop (``clients`` coroutines per run,
each sending one transaction and waiting for its commit notification before the next) or open
loop (``rate`` tx/s per run, arrivals constant or Poisson, sent every few milliseconds through
``SubmitBatch`` without waiting for earlier answers).  A commit is timed when a block holding
the transaction's request id arrives on the process's own ``StreamBlocks`` (an anonymous stream
still lists every request id; a broken stream reconnects to the next node from the next
height).  After the load stops the processes wait a bounded time for the last commits and send
back one record per transaction.  The parent process meanwhile shows progress and injects the
faults; it never offers load itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

from ibledger.cli.client import api_channel, api_credentials
from ibledger.cli.manifest import Manifest, load_manifest
from ibledger.consensus import request_id
from ibledger.node.crypto import ED25519_SHA256, KeyPair, get_suite, load_private_key
from ibledger.node.tx import (
    READ_SESSION_OP,
    READ_SESSION_TTL_MAX_MS,
    READ_SIGNING_DOMAIN,
    build_transaction,
)
from ibledger.proto import ledger_pb2, ledger_pb2_grpc

from . import stats
from .workloads import Builder, WorkloadSpec

SEND_INTERVAL_S = 0.005  # open loop: how often due arrivals are sent, as one SubmitBatch
SEND_BATCH_MAX = 500
COMMIT_TIMEOUT_S = 30.0  # closed loop: a client gives up on one transaction after this
RESEND_S = 3.0  # closed loop: resend to the next node when no commit came in this long
INFLIGHT_MAX = 2000  # open loop: SubmitBatch calls awaiting an answer, per process
READY_TIMEOUT_S = 120.0
SUBMIT_TIMEOUT_S = 5.0  # a node that answers no submission in this long counts as stalled
DOWN_S = 2.0  # an unreachable or stalled node is tried last for this long


@dataclass(frozen=True, slots=True)
class Target:
    """Where the load goes: the manifest's directory and the ids of the nodes to submit to."""

    directory: Path
    node_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LoadSpec:
    clients: int | None  # closed loop when set
    rate: float | None  # open loop when set (tx/s over all processes)
    arrival: str  # constant | poisson
    duration: float
    warmup: float
    processes: int
    drain: float
    seed: int


@dataclass
class FaultSpec:
    kind: str  # kill-primary | kill-backup | pause-primary | restart
    at: float  # seconds into the measured window
    length: float | None = None  # pause and restart: seconds until SIGCONT / the new start
    node: str | None = None
    struck_at: float | None = None  # filled in: seconds into the window it really struck
    recovery_s: float | None = None

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """``KIND@Ts`` or ``KIND@Ts+Ls`` (pause and restart: L seconds, default 5 and 2)."""
        kind, sep, when = text.partition("@")
        if not sep or kind not in FAULT_KINDS:
            raise ValueError(
                f"{text!r}: write KIND@SECONDS with KIND one of {', '.join(FAULT_KINDS)}"
            )
        at_text, _, length_text = when.partition("+")
        try:
            at = float(at_text.rstrip("s"))
            length = float(length_text.rstrip("s")) if length_text else None
        except ValueError:
            raise ValueError(f"{text!r}: the time is not a number of seconds") from None
        if kind == "pause-primary" and length is None:
            length = 5.0
        if kind == "restart" and length is None:
            length = 2.0
        if at < 0 or (length is not None and length < 0):
            raise ValueError(f"{text!r}: times must not be negative")
        return cls(kind, at, length)

    def label(self) -> str:
        extra = f"+{self.length:g}s" if self.length is not None else ""
        return f"{self.kind}@{self.at:g}s{extra}" + (f" ({self.node})" if self.node else "")


FAULT_KINDS = ("kill-primary", "kill-backup", "pause-primary", "restart")


@dataclass
class RunResult:
    records: list[stats.TxRecord]
    window_start: float
    window_end: float
    faults: list[FaultSpec] = field(default_factory=list)
    start_height: int = 0
    end_height: int = 0
    # Per client process: the share of one core it used while offering load; near 1.0 the
    # clients, not the network, may have set the pace.
    client_busy: list[float] = field(default_factory=list)


# --- networks ---


def ibledger(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """An ``ibledger`` command in a child process (``network up`` detaches the nodes)."""
    return subprocess.run(
        [sys.executable, "-m", "ibledger.cli.main", *args],
        check=check,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )


@contextlib.contextmanager
def fresh_network(
    nodes: int, consensus: dict[str, int], keep: Path | None = None
) -> Iterator[Path]:
    """A new network in a temporary directory, up for the block, stopped and removed after.
    Every sender's admission quota is lifted: the load comes from few identities, and the
    quota would otherwise measure the admission policy instead of consensus."""
    workdir = Path(tempfile.mkdtemp(prefix="ibledger-bench-"))
    directory = workdir / "network"
    try:
        ibledger("network", "init", "--nodes", str(nodes), "--dir", str(directory))
        genesis_path = directory / "genesis.json"
        genesis = json.loads(genesis_path.read_text())
        genesis["admission"].update(
            sender_pending_max=10_000_000, sender_rate_per_s=1_000_000, sender_burst=10_000_000
        )
        genesis["consensus"].update(consensus)
        genesis_path.write_text(json.dumps(genesis, indent=2))
        up = ibledger("network", "up", "--dir", str(directory), check=False)
        if up.returncode != 0:
            raise RuntimeError(f"the fresh network did not come up:\n{up.stdout}{up.stderr}")
        yield directory
    finally:
        ibledger("network", "down", "--dir", str(directory), check=False)
        if keep is not None:
            # The node logs help explain a bad run; the databases are not worth keeping.
            keep.mkdir(parents=True, exist_ok=True)
            for log in directory.glob("nodes/*/node.log"):
                shutil.copy2(log, keep / f"{log.parent.name}.log")
        shutil.rmtree(workdir, ignore_errors=True)


def _stub(manifest: Manifest, node_id: str) -> tuple[grpc.Channel, ledger_pb2_grpc.LedgerStub]:
    node = manifest.node(node_id)
    assert node is not None
    channel = api_channel(str(node.api), manifest.ca_cert, node.id)
    return channel, ledger_pb2_grpc.LedgerStub(channel)


def chain_hash(manifest: Manifest) -> Callable[[bytes], bytes]:
    """The hash of the manifest's chain (its genesis suite), which request ids are taken with."""
    return get_suite(str(manifest.genesis().get("crypto_suite", ED25519_SHA256))).hash


def node_status(manifest: Manifest, node_ids: tuple[str, ...]) -> ledger_pb2.NodeStatus:
    """The first answering node's status."""
    last: Exception | None = None
    for node_id in node_ids:
        channel, stub = _stub(manifest, node_id)
        try:
            status: ledger_pb2.NodeStatus = stub.GetStatus(ledger_pb2.GetStatusRequest(), timeout=5)
            return status
        except grpc.RpcError as exc:
            last = exc
        finally:
            channel.close()
    raise RuntimeError(f"no node answered GetStatus: {last}")


def node_pid(manifest: Manifest, node_id: str) -> int:
    node = manifest.node(node_id)
    assert node is not None
    try:
        return int((node.dir / "node.pid").read_text().strip())
    except (OSError, ValueError):
        raise RuntimeError(
            f"{node_id} has no pid file in {node.dir}: faults need a local network "
            "(started by `ibledger network up` on this machine, or --fresh)"
        ) from None


def _signal_node(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signum)
                return
        except ProcessLookupError:
            return
        os.kill(pid, signum)


# --- client processes ---


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    index: int
    target: Target
    load: LoadSpec
    workload: WorkloadSpec


def _client_counts(total: int, processes: int, index: int) -> int:
    return total // processes + (1 if index < total % processes else 0)


def _arrivals(rate: float, arrival: str, start: float, end: float, seed: int) -> Iterator[float]:
    if rate <= 0:
        return
    rng = random.Random(seed)
    t = start
    n = 0
    while True:
        if arrival == "poisson":
            t += rng.expovariate(rate)
        else:
            n += 1
            t = start + n / rate
        if t >= end:
            return
        yield t


class _Worker:
    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.manifest = load_manifest(spec.target.directory)
        self.builder = Builder(spec.workload, self.manifest, spec.index, spec.load.processes)
        # Request ids are the chain's hash of the envelope (SM3 on an sm2-sm3 chain).
        self.hash_fn = chain_hash(self.manifest)
        # rid -> [due, sent, committed, admission code, result code]
        self.records: dict[bytes, list[float | str]] = {}
        self.viewer_key: KeyPair | None = None
        self.busy = 0.0
        self.waiters: dict[bytes, asyncio.Future[float]] = {}
        self.channels: list[grpc.aio.Channel] = []
        self.stubs: list[ledger_pb2_grpc.LedgerAsyncStub] = []
        self.stopping = False
        self.down_until: list[float] = []

    def connect(self) -> None:
        credentials = (
            api_credentials(self.manifest.ca_cert) if self.manifest.ca_cert is not None else None
        )
        for node_id in self.spec.target.node_ids:
            node = self.manifest.node(node_id)
            assert node is not None
            options = [("grpc.ssl_target_name_override", node.id), ("grpc.enable_http_proxy", 0)]
            if credentials is None:
                channel = grpc.aio.insecure_channel(str(node.api), options=options[1:])
            else:
                channel = grpc.aio.secure_channel(str(node.api), credentials, options=options)
            self.channels.append(channel)
            self.stubs.append(ledger_pb2_grpc.LedgerStub(channel))
            self.down_until.append(0.0)

    def _viewer(self, node_id: str) -> bytes:
        """A read session as the regulator, who is shown every transaction, so the stream
        carries each result code (b"" for noop, whose result is known, or without one)."""
        identity = self.manifest.identities.get("REGULATOR")
        if self.spec.workload.name == "noop" or identity is None:
            return b""
        if self.viewer_key is None:
            self.viewer_key = load_private_key(identity.key_file)
        return build_transaction(
            self.viewer_key,
            chain_id=self.manifest.chain_id,
            sender=identity.participant,
            operation=READ_SESSION_OP,
            args={"node": node_id},
            expires_at_ms=int(time.time() * 1000) + READ_SESSION_TTL_MAX_MS - 60_000,
            domain=READ_SIGNING_DOMAIN,
        )

    async def follow(self, from_height: int) -> None:
        index = self.spec.index
        height = from_height
        while not self.stopping:
            node = index % len(self.stubs)
            try:
                request = ledger_pb2.StreamBlocksRequest(
                    from_height=height, viewer=self._viewer(self.spec.target.node_ids[node])
                )
                async for block in self.stubs[node].StreamBlocks(request):
                    now = time.monotonic()
                    height = block.header.height + 1
                    for i, rid in enumerate(block.request_ids):
                        record = self.records.get(rid)
                        if record is None or not math.isnan(float(record[2])):
                            continue
                        record[2] = now
                        if i < len(block.results) and block.txs[i]:
                            record[4] = block.results[i].code or "OK"
                        waiter = self.waiters.pop(rid, None)
                        if waiter is not None and not waiter.done():
                            waiter.set_result(now)
            except grpc.aio.AioRpcError:
                pass
            if not self.stopping:
                index += 1  # that node is gone or stalled: follow the next one
                await asyncio.sleep(0.2)

    def _live(self, preferred: int) -> list[int]:
        """Node indexes to try, from ``preferred`` on, those recently unreachable last."""
        n = len(self.stubs)
        order = [(preferred + k) % n for k in range(n)]
        now = time.monotonic()
        return [i for i in order if self.down_until[i] <= now] + [
            i for i in order if self.down_until[i] > now
        ]

    async def _send(self, preferred: int, envelopes: list[bytes]) -> bool:
        """SubmitBatch to one node, failing over to the next on an unreachable or stalled
        one (as a client would: the request id makes a resubmission harmless)."""
        rids = [request_id(e, self.hash_fn) for e in envelopes]
        failure = ""
        for index in self._live(preferred):
            try:
                response = await self.stubs[index].SubmitBatch(
                    ledger_pb2.SubmitBatchRequest(envelopes=envelopes), timeout=SUBMIT_TIMEOUT_S
                )
            except grpc.aio.AioRpcError as exc:
                failure = exc.code().name
                self.down_until[index] = time.monotonic() + DOWN_S
                continue
            for rid, result in zip(rids, response.results, strict=True):
                if result.status == ledger_pb2.REJECTED:
                    self.records[rid][3] = result.code or "REJECTED"
                    self.waiters.pop(rid, None)
            return True
        for rid in rids:
            self.records[rid][3] = failure or "UNAVAILABLE"
            self.waiters.pop(rid, None)
        return False

    async def closed_client(self, client: int, end: float) -> None:
        loop = asyncio.get_running_loop()
        node = client
        while time.monotonic() < end:
            envelope = self.builder.build(client)
            rid = request_id(envelope, self.hash_fn)
            now = time.monotonic()
            self.records[rid] = [now, now, math.nan, "", ""]
            waiter: asyncio.Future[float] = loop.create_future()
            self.waiters[rid] = waiter
            if not await self._send(node % len(self.stubs), [envelope]) or self.records[rid][3]:
                node += 1  # refused or unreachable: the next node, after a pause
                await asyncio.sleep(0.1)
                continue
            # Not committed in RESEND_S: the node may have lost it (a killed or paused
            # primary); the next node gets the same envelope, as a client would resend it.
            given_up = time.monotonic() + COMMIT_TIMEOUT_S
            while not waiter.done() and time.monotonic() < given_up:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiter), RESEND_S)
                if not waiter.done():
                    node += 1
                    await self._send(node % len(self.stubs), [envelope])
            if not waiter.done():
                self.waiters.pop(rid, None)
                waiter.cancel()

    async def open_loop(self, start: float, end: float) -> None:
        load = self.spec.load
        assert load.rate is not None
        rate = load.rate / load.processes
        arrivals = _arrivals(rate, load.arrival, start, end, load.seed * 1000 + self.spec.index)
        pending: set[asyncio.Task[bool]] = set()
        due: list[float] = []
        batch = 0
        nxt = next(arrivals, None)
        while nxt is not None or due:
            now = time.monotonic()
            while nxt is not None and nxt <= now and len(due) < SEND_BATCH_MAX:
                due.append(nxt)
                nxt = next(arrivals, None)
            if due and len(pending) < INFLIGHT_MAX:
                envelopes = []
                sent = time.monotonic()
                for when in due:
                    envelope = self.builder.build(batch)
                    self.records[request_id(envelope, self.hash_fn)] = [
                        when,
                        sent,
                        math.nan,
                        "",
                        "",
                    ]
                    envelopes.append(envelope)
                due = []
                preferred = (batch * load.processes + self.spec.index) % len(self.stubs)
                task = asyncio.create_task(self._send(preferred, envelopes))
                pending.add(task)
                task.add_done_callback(pending.discard)
                batch += 1
            if nxt is None and not due:
                break
            wake = SEND_INTERVAL_S if nxt is None else max(0.0, min(SEND_INTERVAL_S, nxt - now))
            await asyncio.sleep(wake)
        if pending:
            await asyncio.wait(pending, timeout=15)

    async def run(self, ready: Any, go: Any, start_at: Any) -> list[tuple[Any, ...]]:
        self.connect()
        first = self.stubs[self.spec.index % len(self.stubs)]
        status = await first.GetStatus(ledger_pb2.GetStatusRequest(), timeout=10)
        follower = asyncio.create_task(self.follow(status.height + 1))
        ready.put(self.spec.index)
        while not go.is_set():
            await asyncio.sleep(0.01)
        start = float(start_at.value)
        load = self.spec.load
        end = start + load.warmup + load.duration
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        cpu0, wall0 = time.process_time(), time.monotonic()
        if load.clients is not None:
            count = _client_counts(load.clients, load.processes, self.spec.index)
            clients = [
                self.closed_client(c * load.processes + self.spec.index, end) for c in range(count)
            ]
            await asyncio.gather(*clients)
        else:
            await self.open_loop(start, end)
        self.busy = (time.process_time() - cpu0) / max(1e-9, time.monotonic() - wall0)
        drain_until = time.monotonic() + load.drain
        while time.monotonic() < drain_until and any(
            not r[3] and math.isnan(float(r[2])) for r in self.records.values()
        ):
            await asyncio.sleep(0.1)
        self.stopping = True
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        for channel in self.channels:
            await channel.close()
        return [tuple(r) for r in self.records.values()]


def _worker_main(spec: WorkerSpec, ready: Any, go: Any, start_at: Any, results: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a run ends
    try:
        worker = _Worker(spec)
        records = asyncio.run(worker.run(ready, go, start_at))
        results.put((spec.index, records, "", worker.busy))
    except Exception as exc:  # reported by the parent, which fails the run
        ready.put(spec.index)
        results.put((spec.index, [], f"{type(exc).__name__}: {exc}", 0.0))


# --- the parent ---


class Progress:
    """A live line on a terminal: seconds, committed tx/s over the last second, height."""

    def __init__(self, manifest: Manifest, node_ids: tuple[str, ...], enabled: bool) -> None:
        self.manifest = manifest
        self.node_ids = node_ids
        self.enabled = enabled
        self.counts: list[tuple[float, int]] = []
        self.height = 0
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.label = ""

    def start(self, t0: float, label: Callable[[float], str]) -> None:
        if not self.enabled:
            return
        self.thread = threading.Thread(target=self._run, args=(t0, label), daemon=True)
        self.thread.start()

    def _run(self, t0: float, label: Callable[[float], str]) -> None:
        committed = 0
        height = 0
        index = 0
        last = (time.monotonic(), 0)
        while not self.stop.is_set():
            channel, stub = _stub(self.manifest, self.node_ids[index % len(self.node_ids)])
            try:
                if height == 0:
                    height = stub.GetStatus(ledger_pb2.GetStatusRequest(), timeout=5).height + 1
                call = stub.StreamBlocks(ledger_pb2.StreamBlocksRequest(from_height=height))
                self._call = call
                for block in call:
                    committed += len(block.request_ids)
                    height = block.header.height + 1
                    now = time.monotonic()
                    if now - last[0] >= 1.0:
                        rate = (committed - last[1]) / (now - last[0])
                        last = (now, committed)
                        sys.stdout.write(
                            f"\r  {label(now - t0):<22} height {height - 1:>7}  "
                            f"committed {rate:8.1f} tx/s  total {committed:>8}   "
                        )
                        sys.stdout.flush()
                    if self.stop.is_set():
                        break
            except grpc.RpcError:
                index += 1
                time.sleep(0.2)
            finally:
                channel.close()

    def close(self) -> None:
        self.stop.set()
        call = getattr(self, "_call", None)
        if call is not None:
            call.cancel()
        if self.thread is not None:
            self.thread.join(timeout=5)
            sys.stdout.write("\n")
            sys.stdout.flush()


def _inject(
    manifest: Manifest,
    node_ids: tuple[str, ...],
    faults: list[FaultSpec],
    window_start: float,
    stop: threading.Event,
) -> None:
    """Strike each fault at its time (seconds into the measured window)."""
    for fault in sorted(faults, key=lambda f: f.at):
        if stop.wait(max(0.0, window_start + fault.at - time.monotonic())):
            return
        status = node_status(manifest, node_ids)
        primary = status.primary
        if fault.kind == "kill-backup":
            backups = [n.id for n in manifest.nodes if n.id != primary]
            fault.node = backups[-1]
        else:
            fault.node = primary
        pid = node_pid(manifest, fault.node)
        fault.struck_at = time.monotonic() - window_start
        if fault.kind in ("kill-primary", "kill-backup", "restart"):
            _signal_node(pid, signal.SIGKILL)
        elif fault.kind == "pause-primary":
            _signal_node(pid, signal.SIGSTOP)
        if fault.kind == "pause-primary" and fault.length is not None:
            stop.wait(fault.length)
            _signal_node(pid, signal.SIGCONT)
        elif fault.kind == "restart" and fault.length is not None:
            stop.wait(fault.length)
            ibledger("network", "up", "--dir", str(manifest.directory), check=False)


def run_load(
    target: Target,
    load: LoadSpec,
    workload: WorkloadSpec,
    faults: list[FaultSpec],
    progress: bool,
    label: str = "",
) -> RunResult:
    """One run; the records of every process, merged, and the window in their clock."""
    manifest = load_manifest(target.directory)
    context = multiprocessing.get_context("spawn")
    ready, results = context.Queue(), context.Queue()
    go = context.Event()
    start_at = context.Value("d", 0.0)
    start_height = node_status(manifest, target.node_ids).height
    workers = [
        context.Process(
            target=_worker_main,
            args=(WorkerSpec(i, target, load, workload), ready, go, start_at, results),
            daemon=True,
        )
        for i in range(load.processes)
    ]
    for worker in workers:
        worker.start()
    stop_faults = threading.Event()
    injector: threading.Thread | None = None
    live = Progress(manifest, target.node_ids, progress)
    try:
        try:
            for _ in workers:
                ready.get(timeout=READY_TIMEOUT_S)
        except queue.Empty:
            raise RuntimeError(
                f"the client processes were not ready within {READY_TIMEOUT_S:g} s"
            ) from None
        start = time.monotonic() + 0.5
        start_at.value = start
        go.set()
        window_start = start + load.warmup
        window_end = window_start + load.duration

        def phase(elapsed: float) -> str:
            if elapsed < load.warmup:
                return f"{label}warm-up {elapsed:5.1f} s"
            return f"{label}{elapsed - load.warmup:5.1f}/{load.duration:g} s"

        live.start(start, phase)
        if faults:
            injector = threading.Thread(
                target=_inject,
                args=(manifest, target.node_ids, faults, window_start, stop_faults),
                daemon=True,
            )
            injector.start()
        merged: list[stats.TxRecord] = []
        client_busy: list[float] = []
        errors = []
        deadline = window_end + load.drain + 60
        for _ in workers:
            try:
                index, records, error, busy = results.get(
                    timeout=max(1.0, deadline - time.monotonic())
                )
            except queue.Empty:
                raise RuntimeError(
                    "a client process sent no results (see its error above)"
                ) from None
            if error:
                errors.append(f"client process {index}: {error}")
            merged.extend(stats.TxRecord(*r) for r in records)
            client_busy.append(busy)
        if errors:
            raise RuntimeError("; ".join(errors))
    finally:
        stop_faults.set()
        live.close()
        if injector is not None:
            injector.join(timeout=30)
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    end_height = 0
    with contextlib.suppress(RuntimeError):
        end_height = node_status(manifest, target.node_ids).height
    merged.sort(key=lambda r: r.submitted)
    return RunResult(
        merged, window_start, window_end, faults, start_height, end_height, client_busy
    )


def fault_dicts(faults: list[FaultSpec]) -> list[dict[str, Any]]:
    return [asdict(f) | {"label": f.label()} for f in faults]
