"""An observer node: a non-voting copy of the ledger that follows the validators.

Theory of operation
-------------------
An observer (a regulator's look-through copy, an auditor, a disaster-recovery site) is not in
the genesis validator list and holds no validator key, so it has nothing to sign a consensus
message with; it builds no ``Replica`` and opens no ``Exchange`` stream. What it does:

* **Follow.** Every ``[observer] poll_interval_ms`` it asks each validator it follows for its
  committed height (``Peer.Tip``, over mutual TLS with its observer certificate). The height it
  aims for is the (f+1)-th highest answer, which at least one honest validator vouches for, so a
  single validator claiming a height that does not exist cannot send it chasing blocks nor
  inflate its lag. When behind, it hands a ``FetchBlocks`` to the same ``StateTransfer`` a
  lagging validator uses (ranges of blocks with their commit certificates from one validator at
  a time, a peer whose blocks do not verify skipped for a while).
* **Verify.** Fetched blocks come back to ``Follower.offer``, which keeps the run that extends
  its chain and whose commit proof holds (``consensus.transfer_run`` with
  ``consensus.check_commit_proof``: a quorum of distinct genesis validators' valid COMMIT
  signatures over the block digest, exactly the check a replica makes on state transfer). The
  block's agreed time is recomputed from its parent (``consensus.agreed_timestamp``), never
  taken from the serving validator.
* **Execute.** Each accepted block is executed into the observer's own LevelDB ledger by
  ``Ledger.apply_committed``, which stores the certificate with it; the ledger re-verifies
  stored certificates at open like a validator's. The block hashes and state roots therefore
  equal the validators' at every height, or the block is refused.
* **Serve.** The public API answers every read (blocks, receipts, queries, streams, status) from
  its ledger under the same read-access rules; ``Submit`` and ``SubmitBatch`` answer
  ``OBSERVER_READ_ONLY``, naming a validator to send to.
* **Lag.** ``ibledger_observer_lag_blocks`` (the validators' height minus its own),
  ``ibledger_observer_seconds_since_block`` and ``ibledger_observer_validators_height`` are on
  its metrics endpoint; ``/readyz`` answers 200 once it is within ``READY_LAG_BLOCKS`` of the
  validators' height (and 503 again beyond ``BEHIND_LAG_BLOCKS``), and
  ``ibledger_consensus_messages_sent`` stays 0 by construction.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from ibledger.consensus import (
    CommittedBlock,
    FetchBlocks,
    agreed_timestamp,
    check_commit_proof,
    quorum_size,
    transfer_run,
)
from ibledger.proto import ledger_pb2, peer_pb2, peer_pb2_grpc

from . import gc_policy, pki
from .admin import AdminServer
from .api import CommitFeed, LedgerService, NodeView, certificate_view
from .audit import AuditLog, AuditSettings
from .config import ObserverConfig
from .crypto import CryptoSuite, get_suite
from .epochs import EpochTable, certificate_check
from .governance_audit import GovernanceAudit
from .grpc_edge import RateLimitedLog, add_service
from .ledger import (
    AppliedBlock,
    CheckFromState,
    Ledger,
    LedgerError,
    genesis_hash,
)
from .metrics import MetricsServer, NodeMetrics
from .peer import GENESIS_METADATA, SUITE_METADATA
from .read_access import LongCallLimits
from .runtime import TransferredBlocks
from .server import (
    API_CONNECTION_OPTIONS,
    HEALTH_PROBE_FILE,
    START_FAILED_EXIT,
    VERSION,
    StartupError,
    bind_api,
)
from .shutdown import ShutdownSteps, cancel_tasks, stop_serving
from .signing import ValidatorVerifier
from .state_transfer import StateTransfer

log = logging.getLogger("ibledger.observer")

TIP_TIMEOUT_S = 2.0
VALIDATOR_SILENT_S = 5.0  # no Tip answer for this long: shown as not connected
TRANSFER_LIMIT = 1024  # blocks judged per batch (state transfer serves at most RANGE_MAX)
# Readiness with hysteresis: the follow loop polls, so under load an observer that is current is
# always a few blocks behind the height it was just told. It becomes ready once within
# READY_LAG_BLOCKS of the validators, and is catching up again only beyond BEHIND_LAG_BLOCKS.
READY_LAG_BLOCKS = 4
BEHIND_LAG_BLOCKS = 64


@dataclass(slots=True)
class ValidatorTip:
    address: str
    height: int = 0
    answered_at: float | None = None  # monotonic time of the last Tip answer
    last_error: str = ""


class Follower:
    """Judges and executes fetched blocks, one batch at a time, in order.

    ``StateTransfer`` offers it ``TransferredBlocks``; a single task checks each batch with the
    consensus core's own state-transfer check and executes the accepted run into the ledger.
    """

    def __init__(
        self,
        *,
        ledger: Ledger,
        validator_sets: Callable[[], EpochTable],
        suite: CryptoSuite,
        genesis_time_ms: int,
        on_applied: Any,
        queue_max: int = 16,
    ) -> None:
        self._ledger = ledger
        self._validator_sets = validator_sets
        self._suite = suite
        self._verifiers: dict[int, ValidatorVerifier] = {}
        self._genesis_time_ms = genesis_time_ms
        self._on_applied = on_applied
        self._inbox: asyncio.Queue[TransferredBlocks] = asyncio.Queue(maxsize=queue_max)
        self.counters: Counter[str] = Counter()
        self.failure: BaseException | None = None

    def offer(self, item: TransferredBlocks) -> bool:
        try:
            self._inbox.put_nowait(item)
        except asyncio.QueueFull:
            self.counters["inbox-full"] += 1
            return False
        return True

    def _valid(self, block: Any, certificate: Any) -> bool:
        # Certified by the validator set of the block's height, under that set's domain.
        validator_set = self._validator_sets().at(block.seq)
        verifier = self._verifiers.get(validator_set.epoch)
        if verifier is None:
            verifier = self._verifiers[validator_set.epoch] = validator_set.verifier(self._suite)
        quorum = quorum_size(len(validator_set.members), validator_set.f)
        return check_commit_proof(
            frozenset(validator_set.members), quorum, block, certificate, verifier.verify
        )

    async def run(self) -> None:
        try:
            while True:
                item = await self._inbox.get()
                try:
                    await self._judge(item.blocks)
                finally:
                    if item.done is not None and not item.done.done():
                        item.done.set_result(None)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            # A block with a valid certificate that does not execute into this ledger: stop
            # rather than serve a chain that is not the validators'.
            self.failure = exc
            log.critical("observer stopped: %s", exc, exc_info=True)

    async def _judge(self, blocks: tuple[CommittedBlock, ...]) -> None:
        run, stopped = transfer_run(blocks, self._ledger.height, TRANSFER_LIMIT, self._valid)
        if stopped is not None:
            self.counters[stopped] += 1
        for fetched in run:
            tip = self._ledger.executed_tip(self._genesis_time_ms)
            committed = CommittedBlock(
                block=fetched.block,
                certificate=fetched.certificate,
                parent_digest=tip.digest,
                timestamp_ms=agreed_timestamp(tip.timestamp_ms, fetched.block),
            )
            applied = await asyncio.to_thread(self._ledger.apply_committed, committed)
            self.counters["blocks-applied"] += 1
            self._on_applied(applied, committed)


class ObserverNode:
    """An observer process: ledger, follower, state transfer, public API (reads) and metrics."""

    def __init__(self, config: ObserverConfig, *, peer_tls: bool = True) -> None:
        self.config = config
        self._peer_tls = peer_tls
        genesis = config.genesis
        self.node_id = config.node_id
        self.suite = get_suite(genesis.crypto_suite)
        self.genesis_digest = genesis_hash(self.suite, genesis.raw)
        # The validator sets by height: the genesis one until the ledger, once open, says more.
        self.epochs = EpochTable.genesis(genesis.validators)
        self.f = self.epochs.latest.f
        self.tips: dict[str, ValidatorTip] = {}
        for validator_id in config.observer.validators:
            info = genesis.validator(validator_id)
            assert info is not None  # checked at load
            address = f"{info.peer_address.host}:{info.peer_address.port}"
            self.tips[validator_id] = ValidatorTip(address)
        self.metrics = NodeMetrics(
            version=VERSION, node_id=self.node_id, crypto_suite=genesis.crypto_suite
        )
        self.metrics_server = MetricsServer(
            self.metrics, config.metrics.listen.host, config.metrics.listen.port
        )
        self.metrics_server.health = self._health
        self.metrics_server.ready = self._readiness
        self.feed = CommitFeed()
        self.bad_input = RateLimitedLog(logging.getLogger("ibledger.edge"))
        self.refused: Counter[str] = Counter()
        self.validators_height = 0
        self._last_block_at = time.monotonic()
        self._reached_validators = False
        self._ready = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self.failure: str | None = None
        self.ledger: Ledger
        self.follower: Follower
        self.state_transfer: StateTransfer
        self.call_metadata = (
            (GENESIS_METADATA, self.genesis_digest.hex()),
            (SUITE_METADATA, self.suite.name),
        )

    # --- peers ----------------------------------------------------------------------------------

    def _open_channel(self, validator_id: str, address: str) -> grpc.aio.Channel:
        options = [
            ("grpc.max_receive_message_length", self.config.peer.max_message_bytes),
            ("grpc.max_send_message_length", self.config.peer.max_message_bytes),
            ("grpc.keepalive_time_ms", 10_000),
        ]
        if not self._peer_tls:
            return grpc.aio.insecure_channel(address, options=options)
        return grpc.aio.secure_channel(
            address,
            pki.channel_credentials(self.config),
            options=options + pki.channel_options(validator_id),
        )

    async def _ask_tip(self, validator_id: str, tip: ValidatorTip) -> None:
        channel = self._open_channel(validator_id, tip.address)
        try:
            reply = await peer_pb2_grpc.PeerStub(channel).Tip(
                peer_pb2.TipRequest(), timeout=TIP_TIMEOUT_S, metadata=self.call_metadata
            )
        except grpc.aio.AioRpcError as exc:
            error = f"{exc.code().name}: {exc.details()}"
            if error != tip.last_error:
                log.warning(
                    "validator does not answer",
                    extra={"event": "validator-down", "peer": validator_id, "detail": error},
                )
            tip.last_error = error
            return
        finally:
            await channel.close(grace=None)
        if reply.node_id and reply.node_id != validator_id:
            tip.last_error = f"answered as {reply.node_id[:64]!r}"
            return
        if tip.last_error:
            log.info("validator answers", extra={"event": "validator-up", "peer": validator_id})
        tip.last_error = ""
        tip.height = reply.height
        tip.answered_at = time.monotonic()

    def _live_tips(self) -> dict[str, int]:
        now = time.monotonic()
        return {
            validator_id: tip.height
            for validator_id, tip in self.tips.items()
            if tip.answered_at is not None and now - tip.answered_at <= VALIDATOR_SILENT_S
        }

    def vouched_height(self, heights: Mapping[str, int]) -> int:
        """The (f+1)-th highest height among the answers (or the lowest, with fewer answers):
        at least one honest validator has executed that far."""
        ordered = sorted(heights.values(), reverse=True)
        if not ordered:
            return 0
        return ordered[min(self.f, len(ordered) - 1)]

    async def _follow(self) -> None:
        interval = self.config.observer.poll_interval_ms / 1000
        while True:
            await asyncio.gather(
                *(self._ask_tip(validator_id, tip) for validator_id, tip in self.tips.items())
            )
            if self.follower.failure is not None:
                self.failure = f"follower stopped: {self.follower.failure}"
                self._stopped.set()
                return
            heights = self._live_tips()
            target = self.vouched_height(heights)
            self.validators_height = max(self.validators_height, target)
            height = self.ledger.height
            if heights and height + READY_LAG_BLOCKS >= target:
                self._reached_validators = True
            elif target - height > BEHIND_LAG_BLOCKS:
                self._reached_validators = False
            if target > height and not self.state_transfer.active:
                # The validators that reached the target first, the highest first.
                reached = [v for v in heights if heights[v] >= target]
                hint = tuple(sorted(reached, key=lambda v: -heights[v]))
                self.metrics.fetches.inc()
                self.state_transfer.request(FetchBlocks(height + 1, target, hint))
            await asyncio.sleep(interval)

    def _load_epochs(self) -> None:
        self.epochs = self.ledger.validator_sets(self.config.genesis.validators)
        self.f = self.epochs.latest.f

    def _on_applied(self, applied: AppliedBlock, committed: CommittedBlock) -> None:
        self.governance_audit.record(
            applied.header.height, applied.events, committed.requests, senders=applied.senders
        )
        self._last_block_at = time.monotonic()
        if any(event["kind"] == "membership.scheduled" for event in applied.events):
            self._load_epochs()
        self.feed.committed(list(applied.tx_ids))
        m = self.metrics
        m.blocks.inc()
        m.txs.inc(len(applied.results))
        m.block_txs.observe(len(applied.results))
        for result in applied.results:
            if not result.ok:
                m.failed.labels(result.code).inc()
        log.debug(
            "block applied",
            extra={
                "event": "block",
                "height": applied.header.height,
                "txs": len(applied.results),
                "block_hash": applied.block_hash.hex(),
            },
        )

    # --- API ------------------------------------------------------------------------------------

    def lag_blocks(self) -> int:
        return max(0, self.validators_height - self.ledger.height)

    def _node_view(self) -> NodeView:
        block = self.ledger.get_block(self.ledger.height) if self.ledger.height else None
        view = certificate_view(block.certificate) if block is not None else 0
        return NodeView(view, "", self.lag_blocks() > 0 or self.state_transfer.active)

    def _peer_statuses(self) -> list[ledger_pb2.PeerStatus]:
        live = self._live_tips()
        return [
            ledger_pb2.PeerStatus(
                id=validator_id,
                address=tip.address,
                connected=validator_id in live,
                height=tip.height,
            )
            for validator_id, tip in sorted(self.tips.items())
        ]

    def _read_only_sentence(self) -> str:
        live = self._live_tips()
        chosen = next((v for v in self.config.observer.validators if v in live), None)
        chosen = chosen or self.config.observer.validators[0]
        info = self.config.genesis.validator(chosen)
        assert info is not None
        return (
            f"{self.node_id} is an observer and serves reads only; send transactions to a "
            f"validator, e.g. {chosen} at {info.api_address}"
        )

    def _client_refused(self, code: str, peer: str, details: Mapping[str, Any]) -> None:
        self.refused[code] += 1
        self.audit.client_refused(code, peer, details)

    def _client_malformed(self, method: str, peer: str, size: int) -> None:
        self.refused["MALFORMED_REQUEST"] += 1
        self.audit.malformed("client.refused", method, peer, size)

    # --- health ---------------------------------------------------------------------------------

    def _ready_detail(self) -> tuple[bool, dict[str, Any]]:
        if not self._ready:
            return False, {"reason": "starting: not every listener is bound yet"}
        if self.failure is not None or self.follower.failure is not None:
            return False, {"reason": f"stopped: {self.failure or self.follower.failure}"}
        live = self._live_tips()
        detail: dict[str, Any] = {
            "role": "observer",
            "height": self.ledger.height,
            "validators_height": self.validators_height,
            "lag_blocks": self.lag_blocks(),
            "validators_connected": len(live),
        }
        if not live:
            detail["reason"] = "no validator it follows answers"
            return False, detail
        if not self._reached_validators:
            detail["reason"] = (
                f"catching up: height {self.ledger.height} of {self.validators_height}"
            )
            return False, detail
        return True, detail

    async def _readiness(self) -> tuple[bool, dict[str, Any]]:
        return self._ready_detail()

    def _storage_writable(self) -> None:
        probe = self.config.data_dir / HEALTH_PROBE_FILE
        with probe.open("wb") as handle:
            handle.write(str(time.time()).encode())
            handle.flush()
            os.fsync(handle.fileno())

    async def _health(self) -> tuple[bool, dict[str, Any]]:
        if self.failure is not None:
            return False, {"reason": f"stopped: {self.failure}"}
        try:
            await asyncio.wait_for(asyncio.to_thread(self._storage_writable), timeout=5)
        except (OSError, TimeoutError) as exc:
            return False, {"reason": f"data directory not writable: {exc}"}
        return True, {"pid": os.getpid()}

    def _register_metrics(self) -> None:
        m = self.metrics
        m.gauge("ibledger_height", "Last executed block height.", lambda: self.ledger.height)
        m.gauge(
            "ibledger_ready", "1 while /readyz would answer 200.", lambda: float(self._is_ready())
        )
        m.gauge(
            "ibledger_audit_broken",
            "1 once the audit log could not be written (the node runs on without it).",
            lambda: float(self.audit.broken),
        )
        m.gauge(
            "ibledger_observer_validators_height",
            "The validators' committed height, as f+1 of those it follows vouch for.",
            lambda: self.validators_height,
        )
        m.gauge(
            "ibledger_observer_lag_blocks",
            "The validators' committed height minus this observer's height.",
            self.lag_blocks,
        )
        m.gauge(
            "ibledger_observer_seconds_since_block",
            "Seconds since this observer last applied a block (or started).",
            lambda: time.monotonic() - self._last_block_at,
        )
        m.gauge(
            "ibledger_observer_validators_connected",
            "Validators it follows that answered within the last 5 s.",
            lambda: len(self._live_tips()),
        )
        m.labelled(
            "ibledger_peer_height",
            "Height each validator it follows last reported.",
            ("peer",),
            lambda: [({"peer": v}, float(t.height)) for v, t in sorted(self.tips.items())],
        )
        m.counter_from(
            "ibledger_consensus_messages_sent",
            "Consensus messages this node signed and sent: an observer holds no key and opens "
            "no consensus stream, so this stays 0.",
            (),
            lambda: [({}, 0.0)],
        )
        m.counter_from(
            "ibledger_observer_events",
            "Follower counters (blocks applied, batches that stopped at a gap or a bad proof).",
            ("name",),
            lambda: [({"name": k}, float(v)) for k, v in sorted(self.follower.counters.items())],
        )
        m.counter_from(
            "ibledger_api_refused",
            "Public API calls refused, by code (OBSERVER_READ_ONLY for every write).",
            ("code",),
            lambda: [({"code": k}, float(v)) for k, v in sorted(self.refused.items())],
        )
        m.counter_from(
            "ibledger_state_transfer_blocks",
            "Blocks fetched from validators and applied.",
            (),
            lambda: [({}, float(self.state_transfer.blocks_fetched))],
        )
        self.ledger.on_block = self._observe_block
        self.state_transfer.on_batch = m.state_transfer_batch.observe

    def _observe_block(self, execute_s: float, write_s: float) -> None:
        self.metrics.block_execute.observe(execute_s)
        self.metrics.block_write.observe(write_s)

    def _is_ready(self) -> bool:
        return self._ready_detail()[0]

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> tuple[int, int]:
        """Bind metrics, open the ledger, start following, then serve the API; returns the API
        and metrics ports."""
        config, genesis = self.config, self.config.genesis
        try:
            await self.metrics_server.start()
        except OSError as exc:
            raise StartupError(
                f"cannot listen for metrics on {config.metrics.listen}: {exc.strerror or exc}"
            ) from exc
        opened = time.monotonic()
        self.ledger = await asyncio.to_thread(
            Ledger.open,
            config.data_dir / "ledger",
            genesis.raw,
            verify="recorded",
            certificate_check=CheckFromState(
                lambda state: certificate_check(
                    EpochTable.from_state(state, genesis.validators), self.suite
                )
            ),
        )
        self._load_epochs()
        self.metrics.ledger_open.set(time.monotonic() - opened)
        log.info(
            "ledger opened",
            extra={"height": self.ledger.height, "state_root": self.ledger.state_root.hex()},
        )
        # Its own audit log, as every node keeps: refused calls and the governance it executes.
        # Heads are signed with the TLS key (an observer holds no consensus key); `ibledger
        # audit verify --certificate` checks them against its certificate.
        self.audit = await asyncio.to_thread(
            AuditLog.open,
            config.data_dir / "audit",
            self.node_id,
            pki.tls_key_signer(config.tls_key_pem),
            AuditSettings(),
        )
        self.governance_audit = GovernanceAudit(self.audit, self.ledger)
        await asyncio.to_thread(self.governance_audit.replay)
        self.follower = Follower(
            ledger=self.ledger,
            validator_sets=lambda: self.epochs,
            suite=self.suite,
            genesis_time_ms=genesis.genesis_time_ms,
            on_applied=self._on_applied,
        )
        self.state_transfer = StateTransfer(
            node_id=self.node_id,
            ledger=self.ledger,
            runtime=self.follower,
            peers={validator_id: tip.address for validator_id, tip in self.tips.items()},
            channel_factory=self._open_channel,
            peer_heights=lambda: {v: t.height for v, t in self.tips.items()},
            genesis_time_ms=genesis.genesis_time_ms,
            metadata=self.call_metadata,
        )
        self._register_metrics()
        self._tasks.append(asyncio.create_task(self.follower.run(), name="observer-follower"))
        self._tasks.append(asyncio.create_task(self._follow(), name="observer-follow"))

        self.api_server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", config.api.max_message_bytes),
                ("grpc.max_send_message_length", 16 * 1024 * 1024),
                *API_CONNECTION_OPTIONS,
            ],
            maximum_concurrent_rpcs=config.api.max_concurrent_rpcs,
        )
        service = LedgerService(
            node_id=self.node_id,
            ledger=self.ledger,
            admission=None,
            read_only=self._read_only_sentence(),
            feed=self.feed,
            node_view=self._node_view,
            mempool_size=lambda: 0,
            peers=self._peer_statuses,
            version=VERSION,
            ready=lambda: self._ready,
            limits=LongCallLimits(
                per_viewer=config.api.streams_per_viewer,
                anonymous_per_address=config.api.anonymous_streams_per_address,
                anonymous_max=config.api.anonymous_streams_max,
            ),
            on_refused=self._client_refused,
        )
        add_service(
            self.api_server,
            service,
            ledger_pb2.DESCRIPTOR.services_by_name["Ledger"],
            self.bad_input,
            self._client_malformed,
            service.refused,
        )
        api_port = bind_api(self.api_server, config, tls=self._peer_tls and config.api.tls)
        await self.api_server.start()
        self.admin = AdminServer(config.data_dir, self.ledger, self.node_id)  # backups
        await self.admin.start()
        self._ready = True
        log.info(
            "listening",
            extra={
                "role": "observer",
                "api_port": api_port,
                "metrics_port": self.metrics_server.port,
                "validators": list(self.tips),
            },
        )
        return api_port, self.metrics_server.port

    async def stop(self, grace: float = 2.0) -> None:
        """Stop listening and following, then close the ledger; every step runs whatever an
        earlier one raised."""
        self._ready = False
        steps = ShutdownSteps()
        await stop_serving(steps, self, grace)
        await steps.run("tasks", cancel_tasks(self._tasks))
        if hasattr(self, "audit"):
            # The follower has stopped: no block is applied after the closing head.
            await steps.run("audit", asyncio.to_thread(self.audit.close))
        if hasattr(self, "ledger"):
            await steps.run("ledger", asyncio.to_thread(self.ledger.close))
        log.info("node stopped", extra={"event": "stopped", "steps_ms": steps.durations_ms})

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def request_stop(self) -> None:
        self._stopped.set()


async def serve(config: ObserverConfig) -> int:
    """Run an observer until SIGTERM/SIGINT (or a fatal failure); the exit status says which."""
    node = ObserverNode(config)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, node.request_stop)
    log.info(
        "node starting",
        extra={"event": "starting", "pid": os.getpid(), "version": VERSION, "role": "observer"},
    )
    try:
        try:
            await node.start()
        except (StartupError, LedgerError, OSError) as exc:
            log.critical("start failed", extra={"event": "start-failed", "reason": str(exc)})
            return START_FAILED_EXIT
        node.metrics.gc_pauses.install()
        gc_policy.freeze_startup()
        await node.wait_stopped()
    finally:
        node.metrics.gc_pauses.remove()
        await node.stop()
    return 1 if node.failure is not None else 0
