"""A node process: wires ledger, consensus, admission, peers, API and metrics together.

Start-up order: bind the metrics listener (so probes answer, and a taken port fails the start
at once), open and verify the ledger (refusing a broken chain; only blocks not yet verified are
checked, see ``ledger.py``), restore the replica from its persisted consensus records and the
ledger tip, bind and start the peer server and outbound links, then the runtime and ticker, and
only then the public API (so nothing is admitted before the node can order it).  The node is
*ready* (``/readyz``) only once every listener is bound, it is not catching up, and a quorum of
validators is connected.  A start-up that fails logs why, as one JSON line, and exits non-zero.
``stop(grace)`` reverses the order: the API stops taking requests, in-flight calls get
``grace`` seconds, then peers, runtime and ledger are closed.

Once ready, the node re-verifies the blocks it trusted from its verified-height record in the
background, at a tenth of one core, then reads every stored record once so that LevelDB checks
the table files no other read has touched; a block that no longer verifies, or a record that
fails its checksum, stops the node.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from ibledger.consensus import (
    GENESIS_CHECKPOINT,
    CheckpointCertificate,
    CommittedBlock,
    FetchBlocks,
    PersistedState,
    Replica,
    ReplicaConfig,
    SignedMessage,
    encode_checkpoint_certificate,
)
from ibledger.proto import ledger_pb2, peer_pb2, types_pb2

from . import clock, gc_policy, pki, vote_log
from .admin import AdminServer
from .admission import Admission, SenderQuota
from .api import CommitFeed, LedgerService, NodeView, block_pb
from .audit import AuditLog, caller_of
from .config import NodeConfig, ObserverConfig
from .crypto import get_suite
from .epochs import EpochTable, ValidatorSet, certificate_check
from .governance_audit import GovernanceAudit
from .grpc_edge import RateLimitedLog, add_service
from .ledger import (
    AppliedBlock,
    CheckFromState,
    Ledger,
    LedgerCorruption,
    LedgerError,
    genesis_hash,
)
from .mempool import Mempool
from .metrics import MetricsServer, NodeMetrics
from .peer import PeerService, PeerTransport
from .phases import PhaseClock
from .read_access import LongCallLimits
from .revocations import RevocationList, revokes
from .runtime import ClientRequests, EndAt, PeerMessage, ReplicaRuntime, Tick
from .shutdown import ShutdownSteps, cancel_tasks, stop_serving
from .signing import ValidatorSigner
from .state_transfer import RANGE_BYTES_MAX, RANGE_MAX, StateTransfer
from .tx import ENVELOPE_SIZE_MAX, Transaction, TxError
from .vote_record import VoteRecord, VoteRecordError, default_path

log = logging.getLogger("ibledger.node")
_T = TypeVar("_T")

VERSION = "0.1.0"
STATUS_INTERVAL_MS = 200
MEMPOOL_SWEEP_S = 5.0
# Public API connections: the server pings an idle client every minute and drops it if the ping
# goes unanswered for 20 s; a client may not ping more often than every 10 s (two strikes and
# the connection closes); a connection with no call for five minutes is closed; one connection
# carries at most 32 calls at once, so one socket cannot take a node's whole call budget.
API_CONNECTION_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 2),
    ("grpc.max_connection_idle_ms", 300_000),
    ("grpc.max_concurrent_streams", 32),
)
PEER_SILENT_S = 5.0  # replicas send a status every 200 ms: this long without a frame means down
PEER_WATCH_S = 0.5
BACKGROUND_VERIFY_CHUNK = 32  # blocks per worker-thread call of the background verification
# The background check may use a tenth of one core: after each chunk it rests nine times as long
# as the chunk took, so re-checking a long chain never competes with ordering and execution.
BACKGROUND_VERIFY_DUTY = 0.1
BACKGROUND_SCAN_RECORDS = 20_000  # records per worker-thread call of the storage scan
HEALTH_PROBE_FILE = ".healthz"


@dataclass(frozen=True, slots=True)
class Endpoints:
    api_port: int
    peer_port: int
    metrics_port: int


def replica_config(
    config: NodeConfig,
    validator_set: ValidatorSet | None = None,
    base: CheckpointCertificate | None = None,
    vote_floor: int = 0,
) -> ReplicaConfig:
    """Translate genesis consensus parameters (milliseconds) into the core's logical ticks, for
    ``validator_set`` (the genesis validators by default) starting from ``base``, voting only
    above ``vote_floor`` (vote_record.py)."""
    params = config.genesis.consensus
    tick = params.tick_ms

    def ticks(ms: int) -> int:
        return max(1, -(-ms // tick))

    view_change = ticks(params.view_change_timeout_ms)
    return ReplicaConfig(
        members=(
            validator_set.members
            if validator_set
            else tuple(v.id for v in config.genesis.validators)
        ),
        batch_size_max=params.batch_size_max,
        batch_timeout_ticks=ticks(params.batch_timeout_ms),
        eager_blocks=params.eager_blocks,
        checkpoint_interval=params.checkpoint_interval,
        watermark_window=params.watermark_window,
        view_change_timeout_ticks=view_change,
        view_change_timeout_max_ticks=view_change * 32,
        status_interval_ticks=ticks(STATUS_INTERVAL_MS),
        retransmit_ticks=ticks(500),
        fetch_retry_ticks=ticks(2_000),
        timestamp_skew_ms=params.timestamp_skew_ms,
        pending_requests_max=max(config.mempool.size_max, 1),
        # Request ids, Merkle roots and block digests follow the genesis suite (SM3 on sm2-sm3).
        hash_fn=get_suite(config.genesis.crypto_suite).hash,
        base=base or GENESIS_CHECKPOINT,
        vote_floor=vote_floor,
    )


def now_ms() -> int:
    return clock.now_ms()


class Node:
    def __init__(self, config: NodeConfig, *, peer_tls: bool = True) -> None:
        self.config = config
        self._peer_tls = peer_tls
        genesis = config.genesis
        self.node_id = config.node_id
        self.suite = get_suite(genesis.crypto_suite)
        # What peers compare when they connect: the same digest the ledger anchors block 0 to.
        self.genesis_digest = genesis_hash(self.suite, genesis.raw)
        # The validator sets by height: the genesis one until the ledger, once open, says more.
        self.epochs = EpochTable.genesis(genesis.validators)
        self.validator_set = self.epochs.latest
        self.replica_config = replica_config(config)
        self.metrics = NodeMetrics(
            version=VERSION, node_id=self.node_id, crypto_suite=genesis.crypto_suite
        )
        self.phases = PhaseClock(self.metrics.registry, hash_fn=self.suite.hash)
        self.metrics_server = MetricsServer(
            self.metrics, config.metrics.listen.host, config.metrics.listen.port
        )
        self.metrics_server.health = self._health
        self.metrics_server.ready = self._readiness
        self.failure: str | None = None  # why the node stopped on its own, if it did
        self.background_verified = -1  # highest height the background pass has re-verified
        self._peers_live: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = False
        self._stopped = asyncio.Event()
        self.ledger: Ledger
        self.runtime: ReplicaRuntime
        self.transport: PeerTransport
        self.mempool = Mempool(config.mempool.size_max)
        self.feed = CommitFeed()
        self._admitting: set[asyncio.Task[object]] = set()  # keeps in-flight tasks referenced
        self.bad_input = RateLimitedLog(logging.getLogger("ibledger.edge"))
        self._peer_tx_bytes = 0  # relayed envelopes still in admission
        self._peer_tx_room = asyncio.Event()
        self._unstored_checkpoint: CheckpointCertificate | None = None

    # --- construction -----------------------------------------------------------------------

    def _certificate_check(self) -> Callable[..., bool]:
        """Commit certificates, by the validator set of each block's height."""
        return certificate_check(lambda: self.epochs, self.suite)

    # --- validator sets ------------------------------------------------------------------------

    def _load_epochs(self) -> None:
        self.epochs = self.ledger.validator_sets(self.config.genesis.validators)

    def _not_a_member(self, validator_set: ValidatorSet) -> str | None:
        """Why this node cannot vote in ``validator_set``, or None when it can."""
        entry = validator_set.validator(self.node_id)
        if entry is None:
            return (
                f"{self.node_id} is not a validator of epoch {validator_set.epoch} (from height "
                f"{validator_set.from_height}; validators: {', '.join(validator_set.members)}). "
                "A validator added by governance starts from a backup of a member taken at or "
                "after the height it joins (ibledger node restore)"
            )
        if entry.public_key != self.config.validator_keypair.public_key:
            return (
                f"{self.node_id}'s validator key {self.config.validator_key} is not the one "
                f"epoch {validator_set.epoch} lists for it ({entry.public_key.hex()[:16]}...): "
                "start the node with that key"
            )
        return None

    def _open_vote_record(self) -> VoteRecord:
        config = self.config
        path = config.vote_record or default_path(config.validator_key)
        try:
            record = VoteRecord.open(path, self.ledger, config.validator_keypair.public_key)
        except VoteRecordError as exc:
            raise StartupError(str(exc)) from None
        self.metrics.vote_floor.set(record.floor)
        return record

    def _replica_for(
        self, validator_set: ValidatorSet, records: PersistedState | None = None
    ) -> Replica:
        base = (
            self.ledger.base_checkpoint(validator_set.from_height - 1)
            if validator_set.epoch
            else None
        )
        self.validator_set = validator_set
        self.replica_config = replica_config(
            self.config, validator_set, base, self.vote_record.floor
        )
        return Replica(
            self.replica_config,
            self.node_id,
            ValidatorSigner(
                self.node_id, self.config.validator_keypair, self.suite, validator_set.epoch
            ),
            validator_set.verifier(self.suite),
            records
            if records is not None
            else PersistedState(self.ledger.load_consensus_records()),
            self.ledger.executed_tip(self.config.genesis.genesis_time_ms),
            request_validator=self._validate_request,
        )

    def _fetch_addresses(self) -> dict[str, str]:
        """Every validator of any set, newest address first: who state transfer may ask."""
        addresses: dict[str, str] = {}
        for validator_set in reversed(self.epochs.sets):
            for peer_id, address in validator_set.peer_addresses.items():
                addresses.setdefault(peer_id, address)
        return addresses

    def _fetchers(self) -> frozenset[str]:
        """Who may fetch blocks from this node: a validator of any set, to finish its own."""
        return frozenset(v.id for s in self.epochs.sets for v in s.validators)

    def _on_membership_scheduled(self) -> None:
        self._load_epochs()
        latest = self.epochs.latest
        log.info(
            "validator set change scheduled",
            extra={
                "event": "membership-scheduled",
                "epoch": latest.epoch,
                "from_height": latest.from_height,
                "members": list(latest.members),
            },
        )
        self.runtime.offer(EndAt(latest.from_height - 1))
        self.peer_service.set_members(frozenset(self.validator_set.members), self._fetchers())
        self.state_transfer.set_peers(self._fetch_addresses())

    def _hand_over(self, finished: Replica) -> Replica | None:
        """The current set executed its last block: the next set's replica, or None when this
        node is in no later set (it then stops)."""
        end = finished.end_seq
        assert end is not None
        following = self.epochs.at(end + 1)
        self.ledger.reset_consensus(following.epoch)
        refusal = self._not_a_member(following)
        if refusal is not None:
            self.failure = f"retired at height {end}: {refusal}"
            log.warning(
                "leaving: this node is not in the next validator set",
                extra={
                    "event": "retired",
                    "height": end,
                    "epoch": following.epoch,
                    "reason": refusal,
                },
            )
            self._stopped.set()
            return None
        replica = self._replica_for(following, PersistedState({}))
        self.transport.set_peers(following.peer_addresses)
        self.peer_service.set_members(frozenset(following.members), self._fetchers())
        self.state_transfer.set_peers(self._fetch_addresses())
        log.info(
            "validator set changed",
            extra={
                "event": "epoch",
                "epoch": following.epoch,
                "from_height": following.from_height,
                "members": list(following.members),
            },
        )
        pending = tuple(p.tx.envelope for p in self.mempool.oldest(len(self.mempool)))
        if pending:
            # What the old set left unordered is the new set's to order.
            self.runtime.offer(ClientRequests(pending, now_ms()))
        return replica

    def _open_channel(self, peer_id: str, address: str) -> grpc.aio.Channel:
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
            options=options + pki.channel_options(peer_id),
        )

    def _validate_request(self, request: bytes) -> bool:
        """Requests inside a pre-prepare: well formed and signed (usually a cache hit)."""
        try:
            tx = self.ledger.decoder.decode(request)
        except TxError:
            return False
        if self.ledger.verifier.is_cached(tx):
            return True
        return self.ledger.verifier.verify([tx])[0].ok

    def _on_admitted(self, txs: list[Transaction], relay: bool) -> None:
        envelopes = tuple(tx.envelope for tx in txs)
        self.phases.admitted(envelopes)
        self.runtime.offer(ClientRequests(envelopes, now_ms()))
        if relay:
            self.transport.relay_txs(list(envelopes))

    def _on_peer_txs(self, peer_id: str, envelopes: list[bytes]) -> None:
        size = sum(len(e) for e in envelopes)
        self._peer_tx_bytes += size
        task = asyncio.get_running_loop().create_task(
            self.admission.admit(envelopes, from_peer=True)
        )
        task.add_done_callback(lambda _: self._peer_txs_admitted(size))
        self._background(task)

    def _peer_txs_admitted(self, size: int) -> None:
        self._peer_tx_bytes -= size
        if self._peer_tx_bytes <= self.config.peer.inbound_bytes_max:
            self._peer_tx_room.set()

    def _background(self, task: asyncio.Task[object]) -> None:
        # The loop holds only weak references to tasks: keep one until the task is done.
        self._admitting.add(task)
        task.add_done_callback(self._admitting.discard)

    def _node_view(self) -> NodeView:
        status = self.runtime.replica.status()
        return NodeView(status.view, status.primary, status.catching_up)

    def _on_message(self, message: SignedMessage, size: int) -> None:
        self.metrics.peer_message_bytes.observe(size)
        if not self.runtime.offer(PeerMessage(message, size)):
            self.metrics.dropped.labels("inbox-full").inc()

    def _peer_refused(self, reason: str, caller: str, detail: str) -> None:
        self.bad_input.bad_input(reason, "peer connection refused", detail=detail)
        self.audit.refused("peer.refused", reason, caller_of(caller), detail=detail)

    def _peer_malformed(self, method: str, peer: str, size: int) -> None:
        self.audit.malformed("peer.refused", method, peer, size)

    def _client_malformed(self, method: str, peer: str, size: int) -> None:
        self.audit.malformed("client.refused", method, peer, size)

    def _client_refused(self, code: str, peer: str, details: Mapping[str, Any]) -> None:
        self.audit.client_refused(code, peer, details)

    async def _peer_room(self) -> None:
        # Inbound backpressure: consensus messages waiting for the replica, and relayed
        # transactions waiting for admission, each within the [peer] inbound byte budget.
        await self.runtime.room()
        while self._peer_tx_bytes > self.config.peer.inbound_bytes_max:
            self._peer_tx_room.clear()
            await self._peer_tx_room.wait()

    def _load_revocations(self) -> None:
        for fingerprint in sorted(self.revocations.load(self.ledger)):
            log.warning(
                "certificate revoked: its holder's peer calls are refused",
                extra={"event": "certificate-revoked", "certificate_sha256": fingerprint},
            )

    def _on_committed(self, applied: AppliedBlock, committed: CommittedBlock) -> None:
        self.governance_audit.record(
            applied.header.height, applied.events, committed.requests, senders=applied.senders
        )
        if revokes(applied.events):
            self._load_revocations()  # effective from this block on, as on every node
        if any(event["kind"] == "membership.scheduled" for event in applied.events):
            self._on_membership_scheduled()
        self.mempool.remove(applied.tx_ids)
        self.feed.committed(list(applied.tx_ids))
        m = self.metrics
        m.blocks.inc()
        m.txs.inc(len(applied.results))
        m.block_txs.observe(len(applied.results))
        # Blocks fetched while catching up were proposed long ago: not a commit latency.
        if committed.block.timestamp_ms and not self._catching_up():
            m.consensus_commit.observe(max(0.0, (now_ms() - committed.block.timestamp_ms) / 1000))
        failed = 0
        for result in applied.results:
            if not result.ok:
                failed += 1
                m.failed.labels(result.code).inc()
        log.debug(
            "block committed",
            extra={
                "event": "block",
                "height": applied.header.height,
                "view": committed.view,
                "txs": len(applied.results),
                "failed": failed,
                "block_hash": applied.block_hash.hex(),
            },
        )

    def _on_view_changed(self, view: int, primary: str, cause: str) -> None:
        self.metrics.view_changes.labels(cause).inc()

    def _on_fetch(self, fetch: FetchBlocks) -> None:
        self.metrics.fetches.inc()
        self.state_transfer.request(fetch)

    def _serve_blocks(self, first: int, last: int) -> list[types_pb2.Block]:
        top = min(self.ledger.height, last or self.ledger.height, first + RANGE_MAX - 1)
        blocks = []
        size = 0
        for height in range(max(first, 1), top + 1):
            block = self.ledger.get_block(height)
            if block is None:
                break
            blocks.append(block_pb(block, hash_fn=self.suite.hash))
            size += sum(len(tx) for tx in block.txs)
            if size >= RANGE_BYTES_MAX:
                break  # the fetcher asks again from the next height
        return blocks

    def _peer_statuses(self) -> list[ledger_pb2.PeerStatus]:
        return [
            ledger_pb2.PeerStatus(
                id=peer_id,
                address=link.address,
                connected=link.stats.connected,
                height=link.stats.height,
            )
            for peer_id, link in sorted(self.transport.links.items())
        ]

    def _register_metrics(self) -> None:
        m = self.metrics
        m.gauge("ibledger_height", "Last executed block height.", lambda: self.ledger.height)
        m.gauge("ibledger_view", "Current consensus view.", lambda: self.runtime.replica.view)
        m.gauge(
            "ibledger_execution_backlog",
            "Committed blocks handed to the executor whose state root consensus has not had.",
            lambda: float(self.runtime.execution_backlog),
        )
        m.gauge(
            "ibledger_ready", "1 while /readyz would answer 200.", lambda: float(self._is_ready())
        )
        m.gauge(
            "ibledger_catching_up",
            "1 while the node fetches blocks it is missing.",
            lambda: float(self._catching_up()),
        )
        m.gauge(
            "ibledger_mempool_size", "Pending admitted transactions.", lambda: len(self.mempool)
        )
        m.gauge(
            "ibledger_runtime_backlog",
            "Inputs waiting for the replica.",
            lambda: self.runtime.backlog,
        )
        m.gauge(
            "ibledger_peers_connected",
            "Peers that sent this node a frame within the last 5 s.",
            lambda: len(self._live_peers()),
        )
        m.gauge(
            "ibledger_ledger_verified_height",
            "Highest block the background pass has re-verified since start-up.",
            lambda: self.background_verified,
        )
        m.labelled(
            "ibledger_peer_queued_bytes",
            "Bytes queued for each peer.",
            ("peer",),
            lambda: [
                ({"peer": pid}, float(link.stats.queued_bytes))
                for pid, link in sorted(self.transport.links.items())
            ],
        )
        m.labelled(
            "ibledger_peer_queued_messages",
            "Messages and relayed transactions queued for each peer.",
            ("peer",),
            lambda: [
                ({"peer": pid}, float(link.stats.queued_messages))
                for pid, link in sorted(self.transport.links.items())
            ],
        )
        m.counter_from(
            "ibledger_peer_sent_bytes",
            "Message and transaction bytes sent to each peer.",
            ("peer",),
            lambda: [
                ({"peer": pid}, float(link.stats.bytes_sent))
                for pid, link in sorted(self.transport.links.items())
            ],
        )
        m.counter_from(
            "ibledger_peer_sent_frames",
            "Frames sent to each peer (each is one gRPC stream write; bytes / frames is the "
            "batching).",
            ("peer",),
            lambda: [
                ({"peer": pid}, float(link.stats.frames_sent))
                for pid, link in sorted(self.transport.links.items())
            ],
        )
        m.labelled(
            "ibledger_peer_height",
            "Height each peer last reported.",
            ("peer",),
            lambda: [
                ({"peer": pid}, float(link.stats.height))
                for pid, link in sorted(self.transport.links.items())
            ],
        )
        m.counter_from(
            "ibledger_peer_dropped_messages",
            "Messages dropped towards each peer, by kind (consensus, relay, oversize).",
            ("peer", "kind"),
            lambda: [
                ({"peer": pid, "kind": kind}, float(value))
                for pid, link in sorted(self.transport.links.items())
                for kind, value in (
                    ("consensus", link.stats.dropped_outbound),
                    ("relay", link.stats.dropped_relay),
                    ("oversize", link.stats.dropped_oversize),
                )
            ],
        )
        m.counter_from(
            "ibledger_peer_reconnects",
            "Outbound stream reconnections, by peer.",
            ("peer",),
            lambda: [
                ({"peer": pid}, float(link.stats.reconnects))
                for pid, link in sorted(self.transport.links.items())
            ],
        )
        m.counter_from(
            "ibledger_peer_calls",
            "Authenticated peer calls served, by caller (a validator or an observer) and method "
            "(Exchange, FetchBlocks, Tip).",
            ("caller", "method"),
            lambda: [
                ({"caller": caller, "method": method}, float(count))
                for (caller, method), count in sorted(self.peer_service.calls.items())
            ],
        )
        m.gauge(
            "ibledger_audit_broken",
            "1 once the audit log could not be written (the node runs on without it).",
            lambda: float(self.audit.broken),
        )
        m.counter_from(
            "ibledger_verifier_cache_hits",
            "Signature verifications skipped thanks to the verified cache.",
            (),
            lambda: [({}, float(self.ledger.verifier.stats.cache_hits))],
        )
        m.counter_from(
            "ibledger_verifier_rejected",
            "Transactions whose signature did not verify.",
            (),
            lambda: [({}, float(self.ledger.verifier.stats.rejected))],
        )
        m.counter_from(
            "ibledger_consensus_events",
            "Consensus core counters (drops, rejections, view-change causes), by name.",
            ("name",),
            lambda: [
                ({"name": k}, float(v)) for k, v in sorted(self.runtime.replica.counters.items())
            ],
        )
        m.counter_from(
            "ibledger_admission_rejected",
            "Transactions refused at admission, by code.",
            ("code",),
            lambda: [
                ({"code": k}, float(v)) for k, v in sorted(self.admission.rejected_by_code.items())
            ],
        )
        self.ledger.verifier.on_batch = self._observe_verify
        self.ledger.on_block = self._observe_block
        self.admission.on_verify_wait = m.verify_wait.observe
        self.state_transfer.on_batch = m.state_transfer_batch.observe

    def _observe_block(self, execute_s: float, write_s: float) -> None:
        self.metrics.block_execute.observe(execute_s)
        self.metrics.block_write.observe(write_s)

    def _observe_verify(self, seconds: float, size: int) -> None:
        self.metrics.verify_batch.observe(seconds)
        self.metrics.verify_batch_size.observe(size)

    # --- health ---------------------------------------------------------------------------------

    def _live_peers(self) -> set[str]:
        now = time.monotonic()
        return {
            peer_id
            for peer_id, link in self.transport.links.items()
            if link.stats.last_received is not None
            and now - link.stats.last_received <= PEER_SILENT_S
        }

    def _catching_up(self) -> bool:
        return bool(self.runtime.replica.catching_up or self.state_transfer.active)

    def _is_ready(self) -> bool:
        return self._ready_detail()[0]

    def _ready_detail(self) -> tuple[bool, dict[str, Any]]:
        if not self._ready:
            return False, {"reason": "starting: not every listener is bound yet"}
        if self.failure is not None or self.runtime.failure is not None:
            return False, {"reason": f"stopped: {self.failure or self.runtime.failure}"}
        needed = len(self.replica_config.members) - self.replica_config.f - 1
        live = len(self._live_peers())
        detail: dict[str, Any] = {
            "height": self.ledger.height,
            "peers_connected": live,
            "peers_needed": needed,
            "catching_up": self._catching_up(),
        }
        if live < needed:
            detail["reason"] = f"{live} of the {needed} peers a quorum needs are connected"
            return False, detail
        if detail["catching_up"]:
            heights = sorted(self.transport.peer_heights().values(), reverse=True)
            target = heights[self.replica_config.f] if len(heights) > self.replica_config.f else 0
            detail["reason"] = f"catching up: height {self.ledger.height} of {target}"
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
        runtime = getattr(self, "runtime", None)
        if runtime is not None and runtime.failure is not None:
            return False, {"reason": f"replica stopped: {runtime.failure}"}
        try:
            await asyncio.wait_for(asyncio.to_thread(self._storage_writable), timeout=5)
        except (OSError, TimeoutError) as exc:
            return False, {"reason": f"data directory not writable: {exc}"}
        return True, {"pid": os.getpid()}

    def _fetch_when_left_behind(self) -> None:
        """Fetch blocks directly when f+1 peers are past this node and its replica cannot see it.

        Across a change of validator set the others sign for the next set, which this node's
        replica cannot read until it has executed the block that scheduled the change and the
        old set's end: their STATUS messages mean nothing to it. The heights their frames carry
        still count (f+1 of them include a correct peer): up to the set's end once it is known,
        and otherwise when they are more than a watermark window ahead (a smaller lag the core
        catches up itself). Blocks past the end do not verify for the old set, so a fetch never
        executes more than its part."""
        replica = self.runtime.replica
        if self.runtime.retired or replica.finished or self.state_transfer.active:
            return
        executed = self.ledger.height
        heights = sorted(self.transport.peer_heights().items(), key=lambda item: -item[1])
        f = self.replica_config.f
        if len(heights) <= f:
            return
        claimed = heights[f][1]
        end = replica.end_seq
        if end is not None:
            target = min(claimed, end)
        elif claimed > executed + self.replica_config.watermark_window:
            target = claimed
        else:
            return
        if target > executed:
            ahead = tuple(peer for peer, height in heights if height >= claimed)
            self.state_transfer.request(FetchBlocks(executed + 1, target, ahead))

    async def _peer_watch(self) -> None:
        """Log each peer going up or down (with why), as seen from frames it sends us."""
        while True:
            await asyncio.sleep(PEER_WATCH_S)
            self._fetch_when_left_behind()
            live = self._live_peers()
            for peer_id in sorted(live - self._peers_live):
                log.info(
                    "peer up",
                    extra={
                        "event": "peer-up",
                        "peer": peer_id,
                        "address": self.transport.links[peer_id].address,
                    },
                )
                self.metrics.peer_transitions.labels(peer_id, "up").inc()
            for peer_id in sorted(self._peers_live - live):
                link = self.transport.links.get(peer_id)
                reason = f"no frame for {PEER_SILENT_S:g} s"
                if link is None:
                    reason = "no longer a validator of this node's set"
                elif link.stats.last_error:
                    reason += f"; last send error: {link.stats.last_error}"
                log.warning(
                    "peer down",
                    extra={
                        "event": "peer-down",
                        "peer": peer_id,
                        "address": link.address if link is not None else None,
                        "reason": reason,
                    },
                )
                self.metrics.peer_transitions.labels(peer_id, "down").inc()
            self._peers_live = live

    async def _verify_in_background(self, through: int) -> None:
        """Re-check blocks 0..``through`` (trusted at open from the verified-height record),
        then every stored record's checksums."""
        check = self._certificate_check()
        began = time.monotonic()
        log.info("background verification started", extra={"through": through})
        first = 0
        cursor: bytes | None = b""
        try:
            while first <= through:
                last = min(through, first + BACKGROUND_VERIFY_CHUNK - 1)
                await self._at_background_duty(self.ledger.verify_range, first, last, check)
                self.background_verified = last
                first = last + 1
            while cursor is not None:
                cursor = await self._at_background_duty(
                    self.ledger.scan_records, cursor, BACKGROUND_SCAN_RECORDS
                )
        except LedgerCorruption as exc:
            self.failure = f"the stored ledger is damaged: {exc}"
            log.critical(
                "stopping: the stored ledger no longer verifies",
                extra={"height": exc.height, "reason": str(exc)},
            )
            self._stopped.set()
            return
        log.info(
            "background verification finished",
            extra={"through": through, "seconds": round(time.monotonic() - began, 3)},
        )

    async def _at_background_duty(self, work: Callable[..., _T], *args: Any) -> _T:
        """Run ``work`` on a worker thread, then rest so it takes BACKGROUND_VERIFY_DUTY of a
        core."""
        began = time.monotonic()
        result = await asyncio.to_thread(work, *args)
        spent = time.monotonic() - began
        await asyncio.sleep(spent * (1 - BACKGROUND_VERIFY_DUTY) / BACKGROUND_VERIFY_DUTY)
        return result

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> Endpoints:
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
            # Blocks verified at open are checked against the sets the ledger itself records.
            certificate_check=CheckFromState(
                lambda state: certificate_check(
                    EpochTable.from_state(state, genesis.validators), self.suite
                )
            ),
        )
        open_seconds = time.monotonic() - opened
        self.metrics.ledger_open.set(open_seconds)
        record = self.ledger.verified_record()
        trusted_through = record[0] - 1 if record is not None else -1
        log.info(
            "ledger opened",
            extra={
                "height": self.ledger.height,
                "state_root": self.ledger.state_root.hex(),
                "seconds": round(open_seconds, 3),
            },
        )
        self.audit = await asyncio.to_thread(
            AuditLog.open,
            config.data_dir / "audit",
            self.node_id,
            config.validator_keypair.sign,
            config.audit,
        )
        self.governance_audit = GovernanceAudit(self.audit, self.ledger)
        self.revocations = RevocationList()
        self._load_revocations()
        await asyncio.to_thread(self.governance_audit.replay)
        self._load_epochs()
        current = self.epochs.at(self.ledger.height + 1)
        refusal = self._not_a_member(current)
        if refusal is not None:
            raise StartupError(refusal)
        self.vote_record = await asyncio.to_thread(self._open_vote_record)
        if self.ledger.consensus_epoch() != current.epoch:
            # The records of an older set (the node stopped between its end and the hand-over).
            await asyncio.to_thread(self.ledger.reset_consensus, current.epoch)
        replica = self._replica_for(current)
        self.transport = PeerTransport(
            node_id=self.node_id,
            peers=current.peer_addresses,
            channel_factory=self._open_channel,
            on_message=self._on_message,
            on_txs=self._on_peer_txs,
            height=lambda: self.ledger.height,
            outbound_queue_max=config.peer.outbound_queue_max,
            consensus_queue_bytes_max=config.peer.consensus_queue_bytes_max,
            relay_queue_bytes_max=config.peer.relay_queue_bytes_max,
            offline_queue_bytes_max=config.peer.offline_queue_bytes_max,
            genesis_digest=self.genesis_digest,
            crypto_suite=self.suite.name,
            hash_fn=self.suite.hash,
            room=self._peer_room,
            # Room for the frame's own fields: a message alone in a frame must still fit.
            message_bytes_max=config.peer.max_message_bytes - 64 * 1024,
        )
        self.runtime = ReplicaRuntime(
            replica,
            self.ledger,
            self.transport,
            on_committed=self._on_committed,
            on_fetch=self._on_fetch,
            on_stable=self._on_stable_checkpoint,
            vote_log=vote_log.from_environment(self.node_id),
            vote_record=self.vote_record,
            on_view_changed=self._on_view_changed,
            hand_over=self._hand_over,
            inbox_peer_bytes_max=config.peer.inbound_bytes_max,
            metrics=self.metrics,
            phases=self.phases,
        )
        self.admission = Admission(
            chain_id=genesis.chain_id,
            ledger=self.ledger,
            mempool=self.mempool,
            clock_ms=now_ms,
            on_admitted=self._on_admitted,
            envelope_size_max=ENVELOPE_SIZE_MAX,
            quota=SenderQuota(
                pending_max=genesis.admission.sender_pending_max,
                rate_per_s=genesis.admission.sender_rate_per_s,
                burst=genesis.admission.sender_burst,
            ),
        )
        self.state_transfer = StateTransfer(
            node_id=self.node_id,
            ledger=self.ledger,
            runtime=self.runtime,
            peers=self._fetch_addresses(),
            channel_factory=self._open_channel,
            peer_heights=self.transport.peer_heights,
            genesis_time_ms=genesis.genesis_time_ms,
            metadata=self.transport.call_metadata,
        )
        self._register_metrics()

        members = frozenset(current.members)
        self.peer_server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", config.peer.max_message_bytes),
                ("grpc.max_send_message_length", config.peer.max_message_bytes),
            ]
        )
        self.peer_service = PeerService(
            self.transport,
            members,
            self._serve_blocks,
            identify=pki.peer_node_id,
            require_tls_identity=self._peer_tls,
            genesis_digest=self.genesis_digest,
            crypto_suite=self.suite.name,
            on_refused=self._peer_refused,
            role_of=pki.peer_node_role,
            tip=lambda: self.ledger.height,
            node_id=self.node_id,
            certificate_of=pki.peer_certificate_sha256,
            revoked=self.revocations,
            fetchers=self._fetchers(),
        )
        add_service(
            self.peer_server,
            self.peer_service,
            peer_pb2.DESCRIPTOR.services_by_name["Peer"],
            self.bad_input,
            self._peer_malformed,
        )
        peer_address = f"{config.peer.listen.host}:{config.peer.listen.port}"
        try:
            if self._peer_tls:
                peer_port = self.peer_server.add_secure_port(
                    peer_address, pki.server_credentials(config)
                )
            else:
                peer_port = self.peer_server.add_insecure_port(peer_address)
        except RuntimeError as exc:
            raise StartupError(f"cannot listen for peers on {peer_address}: {exc}") from exc
        if not peer_port:
            raise StartupError(f"cannot listen for peers on {peer_address}: address in use?")
        await self.peer_server.start()
        await self.transport.start()
        self._tasks.append(asyncio.create_task(self.runtime.run(), name="replica-runtime"))
        latest = self.epochs.latest
        if latest.epoch > current.epoch:
            # A change scheduled before the node stopped: the current set still ends there.
            self.runtime.offer(EndAt(latest.from_height - 1))
        self._tasks.append(asyncio.create_task(self._ticker(), name="ticker"))
        self._tasks.append(asyncio.create_task(self._sweeper(), name="mempool-sweeper"))
        self._tasks.append(asyncio.create_task(self._peer_watch(), name="peer-watch"))

        self.api_server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", config.api.max_message_bytes),
                ("grpc.max_send_message_length", 16 * 1024 * 1024),
                *API_CONNECTION_OPTIONS,
            ],
            maximum_concurrent_rpcs=config.api.max_concurrent_rpcs,
        )
        ledger_service = LedgerService(
            node_id=self.node_id,
            ledger=self.ledger,
            admission=self.admission,
            feed=self.feed,
            node_view=self._node_view,
            mempool_size=lambda: len(self.mempool),
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
            ledger_service,
            ledger_pb2.DESCRIPTOR.services_by_name["Ledger"],
            self.bad_input,
            self._client_malformed,
            ledger_service.refused,
        )
        api_port = bind_api(self.api_server, config, tls=self._peer_tls and config.api.tls)
        await self.api_server.start()
        self.admin = AdminServer(config.data_dir, self.ledger, self.node_id)  # backups
        await self.admin.start()
        self._ready = True
        log.info(
            "listening",
            extra={
                "api_port": api_port,
                "peer_port": peer_port,
                "metrics_port": self.metrics_server.port,
                "members": len(members),
            },
        )
        self._tasks.append(
            asyncio.create_task(
                self._verify_in_background(trusted_through), name="background-verify"
            )
        )
        return Endpoints(api_port, peer_port, self.metrics_server.port)

    async def _ticker(self) -> None:
        interval = self.config.genesis.consensus.tick_ms / 1000
        while True:
            await asyncio.sleep(interval)
            if self.runtime.failure is not None:
                log.critical("stopping: the replica runtime failed")
                self._stopped.set()
                return
            self.runtime.offer(Tick(now_ms()))
            self._store_stable_checkpoint()  # a retry after a failed write, if any

    def _on_stable_checkpoint(self, certificate: CheckpointCertificate) -> None:
        """Store a stable checkpoint certificate the core handed out: receipts prove results
        with it. A failed write is logged and retried on the next tick: an error escaping here
        would stop the replica runtime for a record that is unsynced by design."""
        self._unstored_checkpoint = certificate
        self._store_stable_checkpoint()

    def _store_stable_checkpoint(self) -> None:
        certificate = self._unstored_checkpoint
        if certificate is None:
            return
        try:
            self.ledger.store_checkpoint(
                certificate.seq, encode_checkpoint_certificate(certificate)
            )
        except OSError as exc:
            log.error("storing a checkpoint certificate failed: %s", exc)
            return
        self._unstored_checkpoint = None

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(MEMPOOL_SWEEP_S)
            expired = self.mempool.expire(now_ms())
            if expired:
                log.info("expired pending transactions dropped", extra={"count": len(expired)})

    async def stop(self, grace: float = 2.0) -> None:
        """Stop listening, then the runtime, then close the audit log and the ledger.

        Every step runs whatever an earlier one raised: a failure in, say, a peer listener's
        stop must not leave the audit log without its closing signed head or the ledger open.
        """
        self._ready = False
        steps = ShutdownSteps()
        await stop_serving(steps, self, grace)
        await steps.run("tasks", cancel_tasks(self._tasks))
        if hasattr(self, "transport"):
            await steps.run("transport", self.transport.stop())
        if hasattr(self, "peer_server"):
            await steps.run("peer", self.peer_server.stop(0.5))
        if hasattr(self, "audit"):
            # The runtime has stopped: no block commits after the closing head.
            await steps.run("audit", asyncio.to_thread(self.audit.close))
        if hasattr(self, "ledger"):
            await steps.run("ledger", asyncio.to_thread(self.ledger.close))
        log.info("node stopped", extra={"event": "stopped", "steps_ms": steps.durations_ms})

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def request_stop(self) -> None:
        self._stopped.set()


class StartupError(Exception):
    """The node cannot start (a listener cannot bind, ...); the text says which and why."""


def bind_api(server: grpc.aio.Server, config: NodeConfig | ObserverConfig, *, tls: bool) -> int:
    """Bind the public API listener of a validator or an observer; the port it bound."""
    api_address = f"{config.api.listen.host}:{config.api.listen.port}"
    try:
        if tls:
            port = server.add_secure_port(api_address, pki.api_server_credentials(config))
        else:
            port = server.add_insecure_port(api_address)
    except RuntimeError as exc:
        raise StartupError(f"cannot listen for clients on {api_address}: {exc}") from exc
    if not port:
        raise StartupError(f"cannot listen for clients on {api_address}: address in use?")
    return port


START_FAILED_EXIT = 2


async def serve(config: NodeConfig) -> int:
    """Run a node until SIGTERM/SIGINT (or a fatal failure); the exit status says which."""
    node = Node(config)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, node.request_stop)
    log.info("node starting", extra={"event": "starting", "pid": os.getpid(), "version": VERSION})
    try:
        try:
            await node.start()
        except (StartupError, LedgerError, OSError) as exc:
            # One JSON line that names the reason: `network up` reports it as the cause.
            log.critical("start failed", extra={"event": "start-failed", "reason": str(exc)})
            return START_FAILED_EXIT
        node.metrics.gc_pauses.install()
        gc_policy.freeze_startup()
        await node.wait_stopped()
    finally:
        node.metrics.gc_pauses.remove()
        await node.stop()
    runtime = getattr(node, "runtime", None)
    return 1 if node.failure is not None or (runtime and runtime.failure is not None) else 0


def run(
    config_path: Path,
    *,
    passphrase: bytes | None = None,
    ask_passphrase: Callable[[Path], bytes | None] | None = None,
) -> int:
    from .config import ObserverConfig, load_config
    from .logs import configure

    gc_policy.configure_process()
    config = load_config(config_path, passphrase=passphrase, ask_passphrase=ask_passphrase)
    log_config = config.log
    configure(
        config.node_id,
        log_config.level,
        file=log_config.file,
        max_bytes=log_config.max_bytes,
        backups=log_config.backups,
    )
    try:
        import uvloop

        runner: Callable[..., int] = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        if isinstance(config, ObserverConfig):
            from . import observer  # it builds on this module

            return runner(observer.serve(config))
        return runner(serve(config))
    except Exception:
        # The traceback goes into the JSON log too, so the log says why the process ended.
        log.critical("node crashed", extra={"event": "crashed"}, exc_info=True)
        raise
