"""The ibledger Python client: sign, submit, wait for, read and follow a ledger over gRPC.

Theory of operation
-------------------
A :class:`Client` talks to one node at a time through the public API (``proto/ledger.proto``).
It knows a list of node addresses, in order; a call that fails with ``UNAVAILABLE`` (the node is
down, starting or catching up) is retried on the next node, so a client built from a network
manifest keeps working while any node answers.  Every other failure is final and surfaces as a
:class:`ClientError` whose ``code`` is the ledger's stable code, parsed from the status details
("CODE: sentence"), or the gRPC status name when a status carries no code.

Transactions are built and signed here (``node.tx.build_transaction``), so the node never sees a
private key.  Resubmitting an envelope is safe: a transaction id commits once, and a node answers
a duplicate with the original receipt (``COMMITTED``) or ``PENDING``.  That is what makes the
failover of ``submit`` harmless.

A committed transaction can still have failed: order-then-execute records a rejected business
rule (e.g. ``NOT_HOLDER``) in the block with its code and message.  ``submit`` returns that receipt
(``receipt.ok`` is false); ``receipt.raise_for_result()`` turns it into :class:`TransactionFailed`.

Queries are signed envelopes too (op ``query.<name>``, a 60-second expiry): the node learns and
authenticates the viewer, whose rights decide what the answer may show.  Reads of receipts,
blocks and events carry a *read session* (op ``read.session`` for one node, signed once and
reused for five minutes): a client with an identity sees the full payloads of the transactions
it is a party to; without one, a node shows only what proofs need (``withheld``).

Nodes serve the API over TLS with certificates from the consortium CA.  A client given the CA
(``ca_cert`` in the manifest, or ``ca_cert=``) verifies every node against it, and against the
node's id where the manifest names it.

A network manifest (``network.json``, written by ``ibledger network init``, read by
``cli.manifest``) names the chain, the genesis file, the nodes and the local identities
(participant id and key file).
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, overload

import grpc

from ibledger.contracts import CodecError, canonical_decode
from ibledger.node import clock
from ibledger.node.blocks import BlockFormatError, BlockHeader
from ibledger.node.crypto import CryptoError, KeyPair, get_suite, load_private_key
from ibledger.node.tx import (
    QUERY_SIGNING_DOMAIN,
    READ_SESSION_OP,
    READ_SIGNING_DOMAIN,
    SIGNING_DOMAIN,
    HashFn,
    Transaction,
    TxError,
    build_transaction,
    decode_envelope,
    sha256,
)
from ibledger.proto import ledger_pb2, ledger_pb2_grpc, types_pb2

from .errors import ClientError, exit_code_for
from .manifest import Manifest, load_manifest
from .output import home
from .passphrase import PassphraseForKeys

__all__ = [
    "DEFAULT_CALL_TIMEOUT_S",
    "DEFAULT_WAIT_TIMEOUT_S",
    "Client",
    "ClientError",
    "LedgerBlock",
    "LedgerEvent",
    "NodeStatus",
    "PeerInfo",
    "Submission",
    "TransactionFailed",
    "TxReceipt",
    "api_channel",
    "api_credentials",
    "exit_code_for",
    "parse_tx_id",
]

DEFAULT_CALL_TIMEOUT_S = 10.0
DEFAULT_WAIT_TIMEOUT_S = 30.0
QUERY_TTL_MS = 60_000
READ_SESSION_TTL_MS = 5 * 60_000
WAIT_TIMEOUT_MS_MAX = 2**32 - 1  # WaitForCommitRequest.timeout_ms is a uint32
WAIT_RENEW_MARGIN_S = 0.05
MESSAGE_BYTES_MAX = 64 * 1024 * 1024
_DETAILS = re.compile(r"([A-Z][A-Z0-9_]*): (.*)", re.DOTALL)
_TX_ID = re.compile(r"[0-9a-fA-F]{64}")


class TransactionFailed(ClientError):
    """A transaction that committed with a failed result: it is in a block but changed nothing."""

    def __init__(self, receipt: TxReceipt) -> None:
        super().__init__(receipt.code, receipt.message)
        self.receipt = receipt


def parse_tx_id(value: bytes | str) -> bytes:
    """A transaction id given as 32 bytes or 64 hexadecimal characters."""
    if isinstance(value, bytes) and len(value) == 32:
        return value
    if isinstance(value, str) and _TX_ID.fullmatch(value):
        return bytes.fromhex(value)
    raise ClientError("BAD_TX_ID", "a transaction id is 64 hexadecimal characters")


def _error_from_rpc(error: grpc.RpcError, address: str) -> ClientError:
    status: grpc.StatusCode = error.code()
    details = error.details() or ""
    match = _DETAILS.fullmatch(details.strip())
    if match is not None:
        return ClientError(match.group(1), match.group(2), status)
    if status == grpc.StatusCode.UNAVAILABLE:
        reason = f" ({details})" if details else ""
        return ClientError("UNAVAILABLE", f"cannot reach the node at {address}{reason}", status)
    if status == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ClientError(
            "DEADLINE_EXCEEDED", details or f"{address} did not answer in time", status
        )
    return ClientError(
        status.name, details or f"the node at {address} answered {status.name}", status
    )


# --- values returned by the client ----------------------------------------------------------------


def _decode_attrs(data: bytes) -> dict[str, Any]:
    if not data:
        return {}
    try:
        value = canonical_decode(data)
    except CodecError:
        return {"undecodable": data}
    return value if isinstance(value, dict) else {"value": value}


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """A contract event (e.g. ``bill.requested``) with its decoded attributes."""

    height: int
    timestamp_ms: int
    tx_index: int
    tx_id: bytes
    kind: str
    attrs: dict[str, Any]

    @classmethod
    def from_proto(cls, event: types_pb2.Event) -> LedgerEvent:
        return cls(
            height=event.height,
            timestamp_ms=event.timestamp_ms,
            tx_index=event.tx_index,
            tx_id=event.tx_id,
            kind=event.kind,
            attrs=_decode_attrs(event.attrs),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "timestamp_ms": self.timestamp_ms,
            "tx_index": self.tx_index,
            "tx_id": self.tx_id.hex(),
            "kind": self.kind,
            "attrs": self.attrs,
        }


def header_from_proto(header: types_pb2.BlockHeader) -> BlockHeader:
    """The header from its canonical bytes when present, else from the display fields."""
    if header.encoded:
        try:
            return BlockHeader.from_dict(canonical_decode(header.encoded))
        except (CodecError, BlockFormatError, TypeError):
            pass
    return BlockHeader(
        height=header.height,
        parent_hash=header.parent_hash,
        timestamp_ms=header.timestamp_ms,
        tx_count=header.tx_count,
        txs_root=header.txs_root,
        proposal_ms=header.proposal_ms,
    )


def _transaction(envelope: bytes, hash_fn: HashFn = sha256) -> Transaction | None:
    try:
        return decode_envelope(envelope, hash_fn=hash_fn)
    except TxError:
        return None


@dataclass(frozen=True)
class TxReceipt:
    """The receipt of a committed transaction: where it is, how it ended, and the evidence."""

    tx_id: bytes
    height: int
    index: int
    code: str
    message: str
    header: BlockHeader
    block_hash: bytes
    envelope: bytes
    proof: tuple[bytes, ...]
    certificate: bytes
    events: tuple[LedgerEvent, ...]
    proto: types_pb2.Receipt = field(repr=False, compare=False)
    resubmitted: bool = False  # the node answered COMMITTED: this is the original receipt
    withheld: bool = False  # the viewer is not a party: no envelope, result or events
    hash_fn: HashFn = field(default=sha256, repr=False, compare=False)  # the chain's hash

    @classmethod
    def from_proto(
        cls, receipt: types_pb2.Receipt, *, resubmitted: bool = False, hash_fn: HashFn = sha256
    ) -> TxReceipt:
        return cls(
            tx_id=receipt.tx_id,
            height=receipt.height,
            index=receipt.index,
            code=receipt.result.code,
            message=receipt.result.message,
            header=header_from_proto(receipt.header),
            block_hash=receipt.block_hash,
            envelope=receipt.envelope,
            proof=tuple(receipt.proof),
            certificate=receipt.certificate,
            events=tuple(LedgerEvent.from_proto(e) for e in receipt.events),
            proto=receipt,
            resubmitted=resubmitted,
            withheld=receipt.withheld,
            hash_fn=hash_fn,
        )

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    @property
    def status(self) -> str:
        return "COMMITTED"

    @property
    def timestamp_ms(self) -> int:
        return self.header.timestamp_ms

    @property
    def transaction(self) -> Transaction | None:
        """The decoded envelope (operation, sender, args), or None if it does not decode."""
        return _transaction(self.envelope, self.hash_fn)

    def event(self, kind: str) -> LedgerEvent | None:
        return next((e for e in self.events if e.kind == kind), None)

    def raise_for_result(self) -> TxReceipt:
        if not self.ok:
            raise TransactionFailed(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        tx = self.transaction
        return {
            "tx_id": self.tx_id.hex(),
            "status": self.status,
            "height": self.height,
            "index": self.index,
            "code": self.code,
            "message": self.message,
            "ok": self.ok,
            "block_hash": self.block_hash.hex(),
            "timestamp_ms": self.timestamp_ms,
            "operation": tx.operation if tx else None,
            "sender": tx.sender if tx else None,
            "args": dict(tx.args) if tx else None,
            "events": [event.to_dict() for event in self.events],
            "resubmitted": self.resubmitted,
            "withheld": self.withheld,
        }


@dataclass(frozen=True)
class Submission:
    """What the node said about one submitted envelope, and its receipt once committed."""

    tx_id: bytes
    status: str  # ADMITTED, PENDING, COMMITTED or REJECTED
    code: str = ""
    message: str = ""
    receipt: TxReceipt | None = None

    @property
    def ok(self) -> bool:
        return self.receipt is not None and self.receipt.ok

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"tx_id": self.tx_id.hex(), "status": self.status}
        if self.code:
            data.update(code=self.code, message=self.message)
        if self.receipt is not None:
            data["receipt"] = self.receipt.to_dict()
        return data


@dataclass(frozen=True)
class LedgerBlock:
    height: int
    header: BlockHeader
    block_hash: bytes
    txs: tuple[bytes, ...]
    results: tuple[tuple[str, str], ...]
    state_root: bytes
    certificate: bytes
    events: tuple[LedgerEvent, ...]
    proto: types_pb2.Block = field(repr=False, compare=False)
    withheld: frozenset[int] = frozenset()  # positions whose payload the viewer may not see
    hash_fn: HashFn = field(default=sha256, repr=False, compare=False)  # the chain's hash

    @property
    def view(self) -> int:
        """The view of the serving node's commit certificate for this block (not in the hashed
        header: replicas may certify one block in different views)."""
        return int(self.proto.header.view)

    @classmethod
    def from_proto(cls, block: types_pb2.Block, hash_fn: HashFn = sha256) -> LedgerBlock:
        header = header_from_proto(block.header)
        return cls(
            height=header.height,
            header=header,
            block_hash=block.block_hash,
            txs=tuple(block.txs),
            results=tuple((r.code, r.message) for r in block.results),
            state_root=block.state_root,
            certificate=block.certificate,
            events=tuple(LedgerEvent.from_proto(e) for e in block.events),
            proto=block,
            withheld=frozenset(block.withheld),
            hash_fn=hash_fn,
        )

    def to_dict(self, *, with_txs: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "height": self.height,
            "block_hash": self.block_hash.hex(),
            "parent_hash": self.header.parent_hash.hex(),
            "timestamp_ms": self.header.timestamp_ms,
            "proposal_ms": self.header.proposal_ms,
            "view": self.view,
            "tx_count": self.header.tx_count,
            "txs_root": self.header.txs_root.hex(),
            "state_root": self.state_root.hex(),
            "has_certificate": bool(self.certificate),
        }
        if with_txs:
            rows = []
            request_ids = list(self.proto.request_ids)
            for index, envelope in enumerate(self.txs):
                tx = None if index in self.withheld else _transaction(envelope, self.hash_fn)
                code, message = self.results[index] if index < len(self.results) else ("", "")
                rows.append(
                    {
                        "index": index,
                        "tx_id": tx.tx_id.hex() if tx else None,
                        "request_id": request_ids[index].hex()
                        if index < len(request_ids)
                        else None,
                        "withheld": index in self.withheld,
                        "operation": tx.operation if tx else None,
                        "sender": tx.sender if tx else None,
                        "code": code,
                        "message": message,
                    }
                )
            data["transactions"] = rows
            data["events"] = [event.to_dict() for event in self.events]
        return data


@dataclass(frozen=True, slots=True)
class PeerInfo:
    id: str
    address: str
    connected: bool
    height: int


@dataclass(frozen=True)
class NodeStatus:
    address: str
    node_id: str
    chain_id: str
    height: int
    view: int
    primary: str
    tip_hash: bytes
    state_root: bytes
    mempool_size: int
    peers: tuple[PeerInfo, ...]
    version: str
    catching_up: bool

    @classmethod
    def from_proto(cls, status: ledger_pb2.NodeStatus, address: str) -> NodeStatus:
        return cls(
            address=address,
            node_id=status.node_id,
            chain_id=status.chain_id,
            height=status.height,
            view=status.view,
            primary=status.primary,
            tip_hash=status.tip_hash,
            state_root=status.state_root,
            mempool_size=status.mempool_size,
            peers=tuple(PeerInfo(p.id, p.address, p.connected, p.height) for p in status.peers),
            version=status.version,
            catching_up=status.catching_up,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "node_id": self.node_id,
            "chain_id": self.chain_id,
            "height": self.height,
            "view": self.view,
            "primary_node_id": self.primary,
            "tip_hash": self.tip_hash.hex(),
            "state_root": self.state_root.hex(),
            "mempool_size": self.mempool_size,
            "peers": [
                {
                    "node_id": p.id,
                    "address": p.address,
                    "connected": p.connected,
                    "height": p.height,
                }
                for p in self.peers
            ],
            "version": self.version,
            "catching_up": self.catching_up,
        }


def api_credentials(ca_cert: str | Path) -> grpc.ChannelCredentials:
    """TLS credentials that trust only the consortium CA in ``ca_cert``."""
    try:
        pem = Path(ca_cert).read_bytes()
    except OSError as exc:
        raise ClientError(
            "NO_CA", f"cannot read the consortium CA certificate {ca_cert}: {exc}"
        ) from None
    if b"BEGIN CERTIFICATE" not in pem:
        raise ClientError("NO_CA", f"{ca_cert} is not a PEM certificate")
    return grpc.ssl_channel_credentials(root_certificates=pem)


def api_channel(
    address: str,
    ca_cert: str | Path | None,
    node_id: str | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A channel to a node's public API: TLS verified against the consortium CA (and the node's
    id, when known) if ``ca_cert`` is given, else plaintext."""
    opts = list(options)
    if ca_cert is None:
        return grpc.insecure_channel(address, options=opts)
    if node_id is not None:
        opts.append(("grpc.ssl_target_name_override", node_id))
    return grpc.secure_channel(address, api_credentials(ca_cert), options=opts)


def load_keypair(
    path: str | Path,
    *,
    passphrase: bytes | None = None,
    passphrase_file: Path | None = None,
    require_encrypted: bool = False,
) -> KeyPair:
    """A private key file, decrypted once (the key derivation is slow by design).

    An encrypted key's passphrase is ``passphrase``, else the sources of ``cli.passphrase``:
    ``passphrase_file``, ``$IBLEDGER_PASSPHRASE``, or a prompt in a terminal.
    """
    key_file = Path(path)
    try:
        if passphrase is None:
            passphrase = PassphraseForKeys(passphrase_file).for_key(
                key_file, required=require_encrypted
            )
        return load_private_key(key_file, passphrase, require_encrypted=require_encrypted)
    except CryptoError as exc:
        raise ClientError(exc.code, exc.message) from None


# --- the client -----------------------------------------------------------------------------------


class Client:
    """A connection to an ibledger network (one node at a time, failing over in order)."""

    def __init__(
        self,
        address: str | Sequence[str],
        chain_id: str | None = None,
        keypair: KeyPair | None = None,
        sender: str | None = None,
        timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        manifest: Manifest | None = None,
        ca_cert: str | Path | None = None,
        node_ids: Mapping[str, str] | None = None,
    ) -> None:
        addresses = [address] if isinstance(address, str) else list(address)
        if not addresses:
            raise ClientError("NO_NODE", "no node address to connect to")
        if (keypair is None) != (sender is None):
            raise ClientError("NO_IDENTITY", "a signing client needs both a key and a sender id")
        self.addresses: tuple[str, ...] = tuple(addresses)
        self.keypair = keypair
        self.sender = sender
        self.timeout_s = timeout_s
        self.manifest = manifest
        self.last_query_height: int | None = None
        # Every query answers as of this block height when set (``--height``); None: the tip.
        self.as_of_height: int | None = None
        self._chain_id = chain_id
        if credentials is None and ca_cert is not None:
            credentials = api_credentials(ca_cert)
        self._credentials = credentials
        # address -> node id: the name a node's certificate must carry, and whom a read
        # session is for (asked of the node when the manifest does not say).
        self._node_ids: dict[str, str] = dict(node_ids or {})
        self._sessions: dict[str, tuple[bytes, float]] = {}  # address -> (session, renew at)
        self._current = 0
        self._channels: dict[str, grpc.Channel] = {}

    @classmethod
    def from_network(
        cls,
        directory: str | Path | None = None,
        identity: str | None = None,
        *,
        timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        node: str | None = None,
        passphrase: bytes | None = None,
    ) -> Client:
        """A client for the network described by ``directory/network.json``.

        ``directory`` defaults to ``$IBLEDGER_HOME/network`` (``~/.ibledger/network``), where
        ``ibledger network init`` writes, and a leading ``~`` is expanded. ``identity`` names
        one of the manifest's identities (its key signs transactions and queries); ``node``
        pins one address instead of the manifest's node list; ``passphrase`` decrypts the
        identity's key when the network's keys are encrypted.
        """
        path = home() / "network" if directory is None else Path(directory).expanduser()
        manifest = load_manifest(path)
        keypair = sender = None
        if identity is not None:
            entry = manifest.identity(identity)
            keypair = load_keypair(
                entry.key_file, passphrase=passphrase, require_encrypted=manifest.keys_encrypted
            )
            sender = entry.participant
        addresses = [node] if node else [str(n.api) for n in manifest.nodes]
        return cls(
            addresses,
            chain_id=manifest.chain_id,
            keypair=keypair,
            sender=sender,
            timeout_s=timeout_s,
            manifest=manifest,
            ca_cert=manifest.ca_cert,
            node_ids={str(n.api): n.id for n in manifest.processes},
        )

    def pinned(self, address: str) -> Client:
        """A client for the node at ``address`` alone, with this client's credentials, chain,
        identity and manifest (the TLS name a node must carry is kept too)."""
        return Client(
            address,
            chain_id=self._chain_id,
            keypair=self.keypair,
            sender=self.sender,
            timeout_s=self.timeout_s,
            credentials=self._credentials,
            manifest=self.manifest,
            node_ids=self._node_ids,
        )

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """The node currently in use."""
        return self.addresses[self._current]

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _stub(self, address: str) -> ledger_pb2_grpc.LedgerStub:
        channel = self._channels.get(address)
        if channel is None:
            options: list[tuple[str, Any]] = [
                ("grpc.max_receive_message_length", MESSAGE_BYTES_MAX),
                ("grpc.max_send_message_length", MESSAGE_BYTES_MAX),
            ]
            if self._credentials is not None:
                node_id = self._node_ids.get(address)
                if node_id is not None:
                    options.append(("grpc.ssl_target_name_override", node_id))
                channel = grpc.secure_channel(address, self._credentials, options=options)
            else:
                channel = grpc.insecure_channel(address, options=options)
            self._channels[address] = channel
        return ledger_pb2_grpc.LedgerStub(channel)

    def _session(self, address: str) -> bytes:
        """This client's read session for the node at ``address`` (b"" without an identity)."""
        if self.keypair is None:
            return b""
        cached = self._sessions.get(address)
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        node_id = self._node_ids.get(address)
        if node_id is None:
            status = self._stub(address).GetStatus(
                ledger_pb2.GetStatusRequest(), timeout=self.timeout_s
            )
            node_id = self._node_ids[address] = status.node_id
        session = self.build(
            READ_SESSION_OP,
            {"node": node_id},
            expires_at_ms=clock.now_ms() + READ_SESSION_TTL_MS,
            domain=READ_SIGNING_DOMAIN,
        )
        # Renewed well before it expires, so clock skew and a slow call never present a dead one.
        self._sessions[address] = (session, time.monotonic() + READ_SESSION_TTL_MS / 2000)
        return session

    def _with_session(self, request: Any, address: str) -> Any:
        """``request`` naming this client as viewer to the node at ``address``."""
        if self.keypair is None or "viewer" not in request.DESCRIPTOR.fields_by_name:
            return request
        signed = type(request)()
        signed.CopyFrom(request)
        signed.viewer = self._session(address)
        return signed

    def _order(self) -> list[int]:
        count = len(self.addresses)
        return [(self._current + step) % count for step in range(count)]

    def _call(self, method: str, request: Any, timeout_s: float | None = None) -> Any:
        """One unary call, moving to the next node while the current one is UNAVAILABLE."""
        failures: list[ClientError] = []
        for index in self._order():
            address = self.addresses[index]
            try:
                response = getattr(self._stub(address), method)(
                    self._with_session(request, address), timeout=timeout_s or self.timeout_s
                )
            except grpc.RpcError as exc:
                error = _error_from_rpc(exc, address)
                if error.grpc_status != grpc.StatusCode.UNAVAILABLE:
                    self._current = index
                    raise error from None
                failures.append(error)
                continue
            self._current = index
            return response
        raise self._all_unavailable(failures)

    def _all_unavailable(self, failures: list[ClientError]) -> ClientError:
        if len(failures) == 1:
            return failures[0]
        tried = ", ".join(self.addresses)
        return ClientError(
            failures[-1].code if failures else "UNAVAILABLE",
            f"no node answered (tried {tried}); last: {failures[-1].message if failures else ''}",
            grpc.StatusCode.UNAVAILABLE,
        )

    # -- identity and chain -----------------------------------------------------------------

    @property
    def chain_id(self) -> str:
        """The chain id, from the manifest or the constructor, else asked of the node once."""
        if self._chain_id is None:
            self._chain_id = self.status().chain_id
        return self._chain_id

    def _signer(self) -> tuple[KeyPair, str]:
        if self.keypair is None or self.sender is None:
            raise ClientError(
                "NO_IDENTITY",
                "this needs a signing identity (a manifest identity, or a key "
                "file and a sender id)",
            )
        return self.keypair, self.sender

    def build(
        self,
        operation: str,
        args: Mapping[str, Any],
        *,
        nonce: int | None = None,
        expires_at_ms: int | None = None,
        domain: bytes = SIGNING_DOMAIN,
    ) -> bytes:
        """A signed envelope for ``operation(args)`` from this client's identity."""
        keypair, sender = self._signer()
        try:
            return build_transaction(
                keypair,
                chain_id=self.chain_id,
                sender=sender,
                operation=operation,
                args=args,
                nonce=nonce,
                expires_at_ms=expires_at_ms,
                domain=domain,
            )
        except TxError as exc:
            raise ClientError(exc.code, exc.message) from None
        except CodecError as exc:
            raise ClientError("BAD_ARGUMENT", f"the arguments cannot be encoded: {exc}") from None

    # -- transactions -----------------------------------------------------------------------

    @overload
    def submit(
        self,
        operation: str,
        args: Mapping[str, Any],
        *,
        wait: Literal[True] = ...,
        timeout_s: float = ...,
    ) -> TxReceipt: ...

    @overload
    def submit(
        self,
        operation: str,
        args: Mapping[str, Any],
        *,
        wait: Literal[False],
        timeout_s: float = ...,
    ) -> Submission: ...

    @overload
    def submit(
        self, operation: str, args: Mapping[str, Any], *, wait: bool, timeout_s: float = ...
    ) -> TxReceipt | Submission: ...

    def submit(
        self,
        operation: str,
        args: Mapping[str, Any],
        *,
        wait: bool = True,
        timeout_s: float = DEFAULT_WAIT_TIMEOUT_S,
    ) -> TxReceipt | Submission:
        """Sign and submit one transaction.

        With ``wait`` (the default) block until it commits and return its receipt, which may
        carry a failed result code; otherwise return the node's admission answer.  Raises
        :class:`ClientError` when the node refuses the envelope or the wait runs out.
        """
        return self.submit_envelope(self.build(operation, args), wait=wait, timeout_s=timeout_s)

    def submit_envelope(
        self, envelope: bytes, *, wait: bool = True, timeout_s: float = DEFAULT_WAIT_TIMEOUT_S
    ) -> TxReceipt | Submission:
        response = self._call("Submit", ledger_pb2.SubmitRequest(envelope=envelope))
        submission = self._submission(response, envelope)
        if submission.status == "REJECTED":
            raise ClientError(submission.code or "REJECTED", submission.message)
        if submission.receipt is not None:
            if submission.receipt.withheld and self.keypair is not None:
                # A resubmission is answered anonymously; ask as ourselves for the full one.
                return replace(self.receipt(submission.tx_id), resubmitted=True)
            return submission.receipt
        if not wait:
            return submission
        return self.wait(submission.tx_id, timeout_s)

    def _submission(self, response: ledger_pb2.SubmitResponse, envelope: bytes) -> Submission:
        status = ledger_pb2.SubmitStatus.Name(response.status)
        tx_id = response.tx_id or decode_envelope(envelope, hash_fn=self.chain_hash).tx_id
        receipt = None
        if status == "COMMITTED":
            receipt = TxReceipt.from_proto(
                response.receipt, resubmitted=True, hash_fn=self.chain_hash
            )
        elif status not in ("ADMITTED", "PENDING", "REJECTED"):
            raise ClientError("BAD_RESPONSE", f"the node answered submit with status {status}")
        return Submission(tx_id, status, response.code, response.message, receipt)

    def submit_many(
        self,
        calls: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        wait: bool = True,
        timeout_s: float = DEFAULT_WAIT_TIMEOUT_S,
    ) -> list[Submission]:
        """Sign and submit many transactions in one SubmitBatch call; one result per call.

        A refused envelope comes back with status REJECTED (its code and message) instead of
        raising; with ``wait`` every admitted one is waited for and carries its receipt.
        """
        envelopes = [self.build(operation, args) for operation, args in calls]
        response = self._call("SubmitBatch", ledger_pb2.SubmitBatchRequest(envelopes=envelopes))
        if len(response.results) != len(envelopes):
            raise ClientError(
                "BAD_RESPONSE",
                f"the node answered {len(response.results)} results for {len(envelopes)} envelopes",
            )
        submissions = [
            self._submission(result, envelope)
            for result, envelope in zip(response.results, envelopes, strict=True)
        ]
        if not wait:
            return submissions
        deadline = time.monotonic() + timeout_s
        finished = []
        for submission in submissions:
            if submission.status in ("ADMITTED", "PENDING"):
                remaining = max(0.001, deadline - time.monotonic())
                receipt = self.wait(submission.tx_id, remaining)
                submission = Submission(submission.tx_id, "COMMITTED", receipt=receipt)
            finished.append(submission)
        return finished

    def receipt(self, tx_id: bytes | str) -> TxReceipt:
        """The receipt of a committed transaction (``NOT_FOUND`` while it is not committed)."""
        request = ledger_pb2.GetReceiptRequest(tx_id=parse_tx_id(tx_id))
        return TxReceipt.from_proto(self._call("GetReceipt", request), hash_fn=self.chain_hash)

    def wait(self, tx_id: bytes | str, timeout_s: float = DEFAULT_WAIT_TIMEOUT_S) -> TxReceipt:
        """Block until the transaction commits; a DEADLINE_EXCEEDED error after ``timeout_s``.

        A node may cap how long one WaitForCommit lasts; the wait is renewed until ``timeout_s``
        has passed.  If the node becomes unavailable, the wait continues on the next node with
        the time that is left.
        """
        raw_id = parse_tx_id(tx_id)
        deadline = time.monotonic() + timeout_s
        order = self._order()
        position = 0
        failures: list[ClientError] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClientError(
                    "DEADLINE_EXCEEDED",
                    f"transaction {raw_id.hex()} did not commit within {timeout_s:g} s",
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                )
            index = order[position]
            address = self.addresses[index]
            timeout_ms = min(WAIT_TIMEOUT_MS_MAX, max(1, int(remaining * 1000)))
            request = ledger_pb2.WaitForCommitRequest(tx_id=raw_id, timeout_ms=timeout_ms)
            try:
                # A little slack over the node's own timeout, so that its answer (with a
                # sentence) arrives before our transport deadline fires.
                response = self._stub(address).WaitForCommit(
                    self._with_session(request, address), timeout=remaining + 2.0
                )
            except grpc.RpcError as exc:
                error = _error_from_rpc(exc, address)
                if error.grpc_status == grpc.StatusCode.UNAVAILABLE:
                    failures.append(error)
                    position += 1
                    if position == len(order):
                        raise self._all_unavailable(failures) from None
                    continue
                self._current = index
                early = deadline - time.monotonic() > WAIT_RENEW_MARGIN_S
                if error.grpc_status == grpc.StatusCode.DEADLINE_EXCEEDED and early:
                    continue  # the node's own limit, not ours: ask again
                raise error from None
            self._current = index
            return TxReceipt.from_proto(response, hash_fn=self.chain_hash)

    # -- reading ----------------------------------------------------------------------------

    def query(
        self, name: str, args: Mapping[str, Any] | None = None, *, height: int | None = None
    ) -> Any:
        """Run the read-side query ``name`` as this client's identity; the decoded answer.

        With ``height`` (or, without it, ``as_of_height``) the answer is the one the query gave
        at that block height: the node refuses a height above its tip (``HEIGHT_IN_FUTURE``) or
        one it has not indexed (``HEIGHT_UNAVAILABLE``). The committed height the answer
        reflects is left in ``last_query_height``.
        """
        as_of = self.as_of_height if height is None else height
        if as_of is not None and (isinstance(as_of, bool) or not 0 <= as_of < 2**64):
            raise ClientError("BAD_ARGUMENT", f"a height is a block height, 0 or more: {as_of!r}")
        envelope = self.build(
            "query." + name,
            args or {},
            expires_at_ms=clock.now_ms() + QUERY_TTL_MS,
            domain=QUERY_SIGNING_DOMAIN,
        )
        request = ledger_pb2.QueryRequest(envelope=envelope, as_of_height=as_of)
        response = self._call("Query", request)
        self.last_query_height = response.height
        try:
            return canonical_decode(response.result)
        except CodecError as exc:
            raise ClientError("BAD_RESPONSE", f"the query answer does not decode: {exc}") from None

    @functools.cached_property
    def chain_hash(self) -> HashFn:
        """The chain's hash (transaction ids): the signing key's suite, else the manifest's
        genesis, else SHA-256."""
        if self.keypair is not None:
            return get_suite(self.keypair.suite).hash
        if self.manifest is not None and self.manifest.genesis_file is not None:
            with contextlib.suppress(ClientError, CryptoError):
                return get_suite(str(self.manifest.genesis().get("crypto_suite"))).hash
        return sha256

    def status(self) -> NodeStatus:
        response = self._call("GetStatus", ledger_pb2.GetStatusRequest())
        return NodeStatus.from_proto(response, self.address)

    def block(self, height: int) -> LedgerBlock:
        return LedgerBlock.from_proto(
            self._call("GetBlock", ledger_pb2.GetBlockRequest(height=height)), self.chain_hash
        )

    def blocks(self, from_height: int = 1) -> Generator[LedgerBlock, None, None]:
        """Committed blocks from ``from_height`` on, then each new block as it commits.

        The iterator never ends by itself; close it (or break out of the loop) to stop.  A
        stream cut by an unavailable node resumes on the next node after the last block seen.
        """
        next_height = from_height

        def open_stream(stub: ledger_pb2_grpc.LedgerStub, address: str) -> Any:
            request = ledger_pb2.StreamBlocksRequest(from_height=next_height)
            return stub.StreamBlocks(self._with_session(request, address))

        for item in self._follow(open_stream):
            if item is _RESUMED:
                continue
            block = LedgerBlock.from_proto(item, self.chain_hash)
            if block.height < next_height:
                continue  # a resumed stream may repeat a block
            next_height = block.height + 1
            yield block

    def events(
        self, from_height: int = 1, kinds: Sequence[str] = ()
    ) -> Generator[LedgerEvent, None, None]:
        """Contract events from ``from_height`` on (only ``kinds`` if given), then new ones."""
        current = from_height
        yielded_here = 0  # events of height ``current`` already handed out
        skip = 0

        def open_stream(stub: ledger_pb2_grpc.LedgerStub, address: str) -> Any:
            request = ledger_pb2.StreamEventsRequest(from_height=current, kinds=list(kinds))
            return stub.StreamEvents(self._with_session(request, address))

        for item in self._follow(open_stream):
            if item is _RESUMED:
                # The new stream starts again at ``current``: its first events are repeats.
                skip = yielded_here
                continue
            event = LedgerEvent.from_proto(item)
            if event.height < current:
                continue
            if event.height > current:
                current, yielded_here, skip = event.height, 0, 0
            if skip:
                skip -= 1
                continue
            yielded_here += 1
            yield event

    def _follow(self, open_stream: Any) -> Iterator[Any]:
        """Items of a server stream, reopened on the next node while nodes are UNAVAILABLE.

        ``_RESUMED`` is yielded before the items of every reopened stream.
        """
        failures: list[ClientError] = []
        while len(failures) < len(self.addresses):
            if failures:
                yield _RESUMED
            address = self.address
            call = None
            try:
                call = open_stream(self._stub(address), address)
                for item in call:
                    failures.clear()
                    yield item
                return
            except grpc.RpcError as exc:
                error = _error_from_rpc(exc, address)
                if error.grpc_status != grpc.StatusCode.UNAVAILABLE:
                    raise error from None
                failures.append(error)
                self._current = (self._current + 1) % len(self.addresses)
            finally:
                if call is not None:
                    call.cancel()
        raise self._all_unavailable(failures)


_RESUMED = object()
