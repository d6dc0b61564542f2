"""A stand-in for ``ibledger node start`` used by the network command tests.

It reads ``node.toml`` through ``load_node_config`` (so a network that ``network up`` starts must
be valid), serves ``GetStatus`` on the node's API address with grpc.aio and answers ``/readyz``
on its metrics address until SIGTERM, and writes a JSON log line as a node does.
Environment switches, each naming one node id:

* ``FAKE_NODE_FAIL``: exit with status 3 right after printing a failure line;
* ``FAKE_NODE_FAIL_LOGGED``: log a start failure as a JSON line (as a node does), exit 2;
* ``FAKE_NODE_HANG``: run but never open the API or metrics port;
* ``FAKE_NODE_IGNORE_TERM``: ignore SIGTERM (``network down`` must SIGKILL it).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import sys
from pathlib import Path

import grpc

from ibledger.node import pki
from ibledger.node.config import NodeConfig, load_node_config
from ibledger.proto import ledger_pb2, ledger_pb2_grpc

FAKE_HEIGHT = 7


class FakeLedger(ledger_pb2_grpc.LedgerServicer):
    def __init__(self, config: NodeConfig) -> None:
        self.config = config

    async def GetStatus(
        self, request: ledger_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> ledger_pb2.NodeStatus:
        genesis = self.config.genesis
        peers = [
            ledger_pb2.PeerStatus(
                id=v.id, address=str(v.peer_address), connected=True, height=FAKE_HEIGHT
            )
            for v in genesis.validators
            if v.id != self.config.node_id
        ]
        return ledger_pb2.NodeStatus(
            node_id=self.config.node_id,
            chain_id=genesis.chain_id,
            height=FAKE_HEIGHT,
            view=0,
            primary=genesis.validators[0].id,
            tip_hash=hashlib.sha256(b"tip").digest(),
            state_root=hashlib.sha256(genesis.chain_id.encode()).digest(),
            peers=peers,
            version="fake",
        )


def _selected(variable: str, node_id: str) -> bool:
    return node_id in os.environ.get(variable, "").split(",")


def _log(config: NodeConfig, level: str, msg: str, **fields: object) -> None:
    if config.log.file is None:
        return
    entry = {"level": level, "node": config.node_id, "msg": msg, **fields}
    with config.log.file.open("a") as handle:
        handle.write(json.dumps(entry) + "\n")


async def _answer_probe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = await reader.readline()
    ok = request.split()[1:2] in ([b"/readyz"], [b"/healthz"])
    body = b'{"ok": true}\n' if ok else b"not found\n"
    status = b"200 OK" if ok else b"404 Not Found"
    writer.write(b"HTTP/1.0 " + status + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    await writer.drain()
    writer.close()


async def serve(config: NodeConfig) -> None:
    stop = asyncio.Event()
    if _selected("FAKE_NODE_IGNORE_TERM", config.node_id):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if _selected("FAKE_NODE_HANG", config.node_id):
        print(f"fake node {config.node_id}: hanging without an API", flush=True)
        await stop.wait()
        return
    server = grpc.aio.server()
    ledger_pb2_grpc.add_LedgerServicer_to_server(FakeLedger(config), server)
    if config.api.tls:  # as a real node does: the node's CA-issued certificate
        server.add_secure_port(str(config.api.listen), pki.api_server_credentials(config))
    else:
        server.add_insecure_port(str(config.api.listen))
    await server.start()
    probes = await asyncio.start_server(
        _answer_probe, config.metrics.listen.host, config.metrics.listen.port
    )
    print(f"fake node {config.node_id}: serving on {config.api.listen}", flush=True)
    _log(config, "info", "listening", event="listening")
    await stop.wait()
    print(f"fake node {config.node_id}: stopping", flush=True)
    _log(config, "info", "node stopped", event="stopped")
    probes.close()
    await server.stop(0.5)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    options = parser.parse_args()
    config = load_node_config(options.config)
    _log(config, "info", "node starting", event="starting", pid=os.getpid())
    if _selected("FAKE_NODE_FAIL_LOGGED", config.node_id):
        _log(config, "critical", "start failed", event="start-failed", reason="simulated bind")
        return 2
    if _selected("FAKE_NODE_FAIL", config.node_id):
        print(f"fake node {config.node_id}: simulated start failure", file=sys.stderr, flush=True)
        return 3
    asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
