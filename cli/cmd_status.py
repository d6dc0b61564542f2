"""``ibledger status``: is the ledger up, how tall is the chain, who leads consensus."""

from __future__ import annotations

import argparse
from typing import Any

import grpc

from .client import Client, ClientError, NodeStatus
from .client_options import add_client_flags, command_error, open_client, table
from .output import emit


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "status",
        help="show a node's height, view, primary, peers and mempool",
        description="Ask a node how far the chain has grown (height), which consensus view it is "
        "in and which validator leads it (primary), how many transactions wait in its mempool, "
        "and which peers it is connected to. With --all, ask every node of the network.",
    )
    parser.add_argument(
        "--all", action="store_true", help="ask every node of the network manifest, one by one"
    )
    add_client_flags(parser, identity=False)
    parser.set_defaults(handler=run)


def _lines(status: NodeStatus) -> list[str]:
    lines = [
        f"node {status.node_id or '?'} at {status.address}, chain {status.chain_id}"
        + (f", version {status.version}" if status.version else ""),
        f"  height {status.height}  view {status.view}  primary {status.primary or '-'}  "
        f"mempool {status.mempool_size}" + ("  (catching up)" if status.catching_up else ""),
        f"  tip {status.tip_hash.hex() or '-'}",
        f"  state root {status.state_root.hex() or '-'}",
    ]
    if status.peers:
        lines.append("  peers:")
        for peer in status.peers:
            state = "connected" if peer.connected else "disconnected"
            lines.append(f"    {peer.id} {peer.address} {state}, height {peer.height}")
    return lines


def run(options: argparse.Namespace) -> int:
    try:
        client = open_client(options, need_identity=False)
    except ClientError as exc:
        raise command_error(exc) from None
    try:
        if options.all:
            return _run_all(options, client)
        try:
            status = client.status()
        except ClientError as exc:
            raise command_error(exc) from None
        emit(options, status.to_dict(), "\n".join(_lines(status)))
        return 0
    finally:
        client.close()


def _run_all(options: argparse.Namespace, client: Client) -> int:
    rows: list[dict[str, Any]] = []
    names = {str(n.api): n.id for n in client.manifest.processes} if client.manifest else {}
    for address in client.addresses:
        with Client(address, timeout_s=client.timeout_s) as one:
            try:
                rows.append(one.status().to_dict() | {"up": True})
            except ClientError as exc:
                rows.append(
                    {
                        "address": address,
                        "node_id": names.get(address, ""),
                        "up": False,
                        "code": exc.code,
                        "message": exc.message,
                    }
                )
    up = [row for row in rows if row["up"]]
    text = table(
        [
            row if row["up"] else row | {"node_id": row["node_id"] or "-", "height": "down"}
            for row in rows
        ],
        [
            ("node_id", "NODE"),
            ("address", "ADDRESS"),
            ("height", "HEIGHT"),
            ("view", "VIEW"),
            ("primary_node_id", "PRIMARY"),
            ("mempool_size", "MEMPOOL"),
        ],
    )
    emit(options, {"nodes": rows}, text)
    if not up:
        first = rows[0]
        raise command_error(
            ClientError(first["code"], "no node answered", grpc.StatusCode.UNAVAILABLE)
        )
    return 0
