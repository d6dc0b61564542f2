"""Metrics (on ``prometheus_client``) and the health endpoints, served on the metrics address.

Counters and histograms are updated where things happen; gauges and the counters the node
already keeps elsewhere (consensus core, admission, verifier cache) are read when scraped by
callback collectors, so they can never drift from the state they describe.  Counters are typed
as counters (``_total``), durations are histograms in seconds, sizes histograms in bytes.

The HTTP endpoint on the node's metrics address answers three paths:

* ``GET /metrics`` — the Prometheus text exposition;
* ``GET /healthz`` — 200 while the process runs and its data directory takes a synced write;
  503 otherwise (a liveness probe: restart the node when it fails);
* ``GET /readyz`` — 200 once every listener is bound, the node is not catching up, and it has a
  quorum of validators (itself and 2f peers) connected; 503 otherwise (a readiness probe: do not
  send clients here yet).  Both answer a JSON body that says why.

Anything else answers 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .gc_policy import GCPauses

# Latencies from a fraction of a millisecond (a cached verification) to tens of seconds (a
# view change under load, a large catch-up batch).
SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
BYTES_BUCKETS = (256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
COUNT_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)

Sample = tuple[dict[str, str], float]

# The ``*_created`` series double every counter and histogram for a timestamp that the process
# start time already gives (process_start_time_seconds).
disable_created_metrics()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class CallbackMetric:
    """A metric family whose samples are read from the node at scrape time."""

    name: str
    help: str
    kind: str  # "gauge" or "counter"
    labels: tuple[str, ...]
    samples: Callable[[], Iterable[Sample]]


@dataclass(eq=False)  # registries key collectors by identity
class _CallbackCollector(Collector):
    metrics: list[CallbackMetric] = field(default_factory=list)

    def collect(self) -> Iterator[Metric]:
        for metric in self.metrics:
            family: GaugeMetricFamily | CounterMetricFamily
            if metric.kind == "counter":
                family = CounterMetricFamily(metric.name, metric.help, labels=metric.labels)
            else:
                family = GaugeMetricFamily(metric.name, metric.help, labels=metric.labels)
            try:
                samples = list(metric.samples())
            except AttributeError:
                continue  # the part of the node it reads is not built yet (start-up)
            for labels, value in samples:
                family.add_metric([labels[name] for name in metric.labels], value)
            yield family


class NodeMetrics:
    """Every metric a node exports, on its own registry (several nodes may share a process)."""

    def __init__(self, *, version: str, node_id: str, crypto_suite: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        # Registered always, observing only once the node's process installs it (gc_policy).
        self.gc_pauses = GCPauses(r)
        build = Info("ibledger_build", "Software version and chain settings.", registry=r)
        build.info({"version": version, "node": node_id, "crypto_suite": crypto_suite})
        self._callbacks = _CallbackCollector()
        r.register(self._callbacks)

        # Counters.
        self.blocks = Counter(
            "ibledger_blocks_committed", "Blocks executed and stored.", registry=r
        )
        self.txs = Counter(
            "ibledger_txs_committed", "Transactions in committed blocks.", registry=r
        )
        self.failed = Counter(
            "ibledger_txs_failed",
            "Committed transactions with a failed result, by code.",
            ["code"],
            registry=r,
        )
        self.view_changes = Counter(
            "ibledger_view_changes", "Views entered, by cause.", ["cause"], registry=r
        )
        self.fetches = Counter(
            "ibledger_state_transfer_requests", "Block fetches started.", registry=r
        )
        self.dropped = Counter(
            "ibledger_dropped_inputs", "Inputs dropped, by reason.", ["reason"], registry=r
        )
        self.peer_transitions = Counter(
            "ibledger_peer_link_transitions",
            "Outbound peer links going up or down, by peer and direction.",
            ["peer", "to"],
            registry=r,
        )

        # Histograms: consensus.
        self.consensus_commit = Histogram(
            "ibledger_consensus_commit_latency_seconds",
            "From the primary's proposal time to this node executing the block (pre-prepare, "
            "prepare and commit phases together, as this node saw them).",
            registry=r,
            buckets=SECONDS_BUCKETS,
        )
        self.consensus_step = Histogram(
            "ibledger_consensus_step_seconds",
            "Time the consensus core takes for one input, by input kind.",
            ["input"],
            registry=r,
            buckets=SECONDS_BUCKETS,
        )
        self.view_change_duration = Histogram(
            "ibledger_consensus_view_change_seconds",
            "From the last block executed in the old view to entering the new view.",
            registry=r,
            buckets=SECONDS_BUCKETS,
        )
        self.block_txs = Histogram(
            "ibledger_block_transactions",
            "Transactions per committed block.",
            registry=r,
            buckets=COUNT_BUCKETS,
        )
        # Execution and storage.
        self.execution = Histogram(
            "ibledger_execution_seconds",
            "Executing one committed block and writing it (one synced batch).",
            registry=r,
            buckets=SECONDS_BUCKETS,
        )
        self.block_execute = Histogram(
            "ibledger_block_execute_seconds",
            "Executing one committed block's transactions and staging its batch.",
            registry=r,
            buckets=SECONDS_BUCKETS,
        )
        self.block_write = Histogram(
            "ibledger_block_write_seconds",
            "Writing one committed block's batch to LevelDB (synced).",
            registry=r,
            buckets=SECONDS_BUCKETS,
        )
        self.storage = Histogram(
            "ibledger_storage_write_seconds",
            "Synced LevelDB writes of consensus records, by what was written.",
            ["what"],
            registry=r,
            buckets=SECONDS_BUCKETS,
        )
        self.ledger_open = Gauge(
            "ibledger_ledger_open_seconds",
            "How long opening and verifying the ledger took at start-up.",
            registry=r,
        )
        self.vote_floor = Gauge(
            "ibledger_vote_floor_height",
            "This validator votes only above this block: it lost the consensus records of "
            "votes it may have signed up to it (0: nothing forgotten).",
            registry=r,
        )
        # Verifier.
        self.verify_batch = Histogram(
            "ibledger_verifier_batch_seconds",
            "Verifying one batch of transaction signatures.",
            registry=r,
            buckets=SECONDS_BUCKETS,
        )
        self.verify_batch_size = Histogram(
            "ibledger_verifier_batch_size",
            "Transactions per verified batch.",
            registry=r,
            buckets=COUNT_BUCKETS,
        )
        self.verify_wait = Histogram(
            "ibledger_verifier_wait_seconds",
            "From admission handing a batch to the verifier's thread to its verification "
            "starting (time queued behind other work).",
            registry=r,
            buckets=SECONDS_BUCKETS,
        )
        # Peers.
        self.peer_message_bytes = Histogram(
            "ibledger_peer_message_bytes",
            "Size of consensus messages received from peers.",
            registry=r,
            buckets=BYTES_BUCKETS,
        )
        self.state_transfer_batch = Histogram(
            "ibledger_state_transfer_batch_seconds",
            "One batch of blocks from a peer while catching up: waiting for its download (which "
            "overlaps the batch before) and applying it.",
            registry=r,
            buckets=SECONDS_BUCKETS,
        )

    def gauge(self, name: str, help: str, value: Callable[[], float]) -> None:
        self.labelled(name, help, (), lambda: [({}, float(value()))])

    def labelled(
        self,
        name: str,
        help: str,
        labels: tuple[str, ...],
        samples: Callable[[], Iterable[Sample]],
        *,
        kind: str = "gauge",
    ) -> None:
        self._callbacks.metrics.append(CallbackMetric(name, help, kind, labels, samples))

    def counter_from(
        self,
        name: str,
        help: str,
        labels: tuple[str, ...],
        samples: Callable[[], Iterable[Sample]],
    ) -> None:
        """A counter the node keeps itself (monotonic), exported as a counter."""
        self.labelled(name, help, labels, samples, kind="counter")

    def render(self) -> bytes:
        return generate_latest(self.registry)


@contextlib.contextmanager
def timed(observe: Callable[[float], None]) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        observe(time.perf_counter() - start)


Probe = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]


async def _not_yet() -> tuple[bool, dict[str, Any]]:
    return False, {"reason": "starting"}


class MetricsServer:
    """A minimal HTTP/1.0 endpoint for scrapers and probes; one request per connection."""

    def __init__(self, metrics: NodeMetrics, host: str, port: int) -> None:
        self._metrics = metrics
        self._host, self._port = host, port
        self._server: asyncio.Server | None = None
        self.health: Probe = _not_yet
        self.ready: Probe = _not_yet

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _answer(self, path: str) -> tuple[str, str, bytes]:
        if path == "/metrics":
            body = await asyncio.to_thread(self._metrics.render)
            return "200 OK", CONTENT_TYPE_LATEST, body
        if path in ("/healthz", "/readyz"):
            probe = self.health if path == "/healthz" else self.ready
            try:
                ok, detail = await probe()
            except Exception as exc:  # a probe that fails says so rather than hanging up
                ok, detail = False, {"reason": f"probe failed: {exc}"}
            body = json.dumps({"ok": ok, **detail}, sort_keys=True).encode() + b"\n"
            status = "200 OK" if ok else "503 Service Unavailable"
            return status, "application/json", body
        return "404 Not Found", "text/plain", b"not found\n"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            parts = request_line.decode("latin-1").split()
            if len(parts) >= 2 and parts[0] == "GET":
                status, content_type, body = await self._answer(parts[1].split("?")[0])
            else:
                status, content_type, body = "404 Not Found", "text/plain", b"not found\n"
            head = f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\n"
            writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
