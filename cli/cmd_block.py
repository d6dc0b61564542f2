"""``ibledger block``: read committed blocks, or follow the chain as it grows."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .client import Client, LedgerBlock
from .client_options import (
    add_client_flags,
    emit_ledger,
    instrument_currencies,
    scalar,
    show_time,
    subcommands,
    table,
    usage,
    with_client,
)
from .client_verify import verify_block
from .cmd_tx import validators_for, verification_lines
from .output import CommandError, json_text


def register(commands: Any) -> None:
    parser = commands.add_parser("block", help="show a block, or follow new blocks as they commit")
    verbs = subcommands(parser)

    show = verbs.add_parser(
        "show",
        help="show one block: header, transactions and their results",
        description="Show the block at HEIGHT: its hash, time, consensus view, the "
        "transactions it orders and each one's result. With --verify, check the header, the "
        "transactions and the commit certificate against the genesis validator keys.",
    )
    show.add_argument("height", type=int, metavar="HEIGHT")
    show.add_argument("--verify", action="store_true", help="check the block offline")
    show.add_argument("--genesis", type=Path, metavar="FILE", help="genesis file (for --verify)")
    add_client_flags(show)  # optional --as: a party sees the payload, others what proofs need
    show.set_defaults(handler=show_block)

    tail = verbs.add_parser(
        "tail",
        help="print the blocks up to the tip, or as they commit with --follow",
        description="Print each block (one line per block, and one per transaction) from "
        "--from (default: the current tip) up to the current tip, then exit. With --follow, "
        "keep printing blocks as they commit, until Ctrl-C or --count. With --json, print one "
        "JSON object per line.",
    )
    tail.add_argument(
        "--from",
        dest="from_height",
        type=int,
        metavar="H",
        help="first height to print (default: the current tip)",
    )
    tail.add_argument("--count", type=int, metavar="N", help="stop after N blocks")
    tail.add_argument(
        "--follow",
        action="store_true",
        help="keep following new blocks after the tip (until Ctrl-C or --count)",
    )
    add_client_flags(tail)
    tail.set_defaults(handler=tail_blocks)


def _block_text(block: LedgerBlock, data: dict[str, Any]) -> list[str]:
    lines = [
        f"block {block.height}  {show_time(block.header.timestamp_ms)}  view {block.view}"
        f"  {block.header.tx_count} transaction(s)",
        f"  hash       {block.block_hash.hex()}",
        f"  parent     {block.header.parent_hash.hex()}",
        f"  txs root   {block.header.txs_root.hex()}",
        f"  state root {block.state_root.hex() or '-'}",
        f"  certificate {'present' if block.certificate else 'none'}",
    ]
    if data.get("transactions"):
        lines.append(
            table(
                data["transactions"],
                [
                    ("index", "#"),
                    ("tx_id", "TX"),
                    ("operation", "OPERATION"),
                    ("sender", "SENDER"),
                    ("code", "RESULT"),
                ],
            )
        )
    return lines


@with_client(identity=False)
def show_block(options: argparse.Namespace, client: Client) -> int:
    if options.height < 0:
        raise usage("BAD_HEIGHT", "a height is 0 or more")
    validators = validators_for(options, client) if options.verify else None
    block = client.block(options.height)
    data = block.to_dict()
    lines = _block_text(block, data)
    if validators is None:
        emit_ledger(options, client, data, "\n".join(lines))
        return 0
    report = verify_block(block, validators)
    data["verification"] = report.to_dict()
    emit_ledger(options, client, data, "\n".join(lines + verification_lines(report)))
    if not report.ok:
        failed = ", ".join(check.name for check in report.failed)
        raise CommandError(
            "VERIFICATION_FAILED", f"block {options.height} does not verify ({failed})"
        )
    return 0


def _tail_line(block: LedgerBlock, data: dict[str, Any]) -> str:
    lines = [
        f"{block.height:>8}  {show_time(block.header.timestamp_ms)}  "
        f"{block.header.tx_count:>4} tx  {block.block_hash.hex()[:16]}  view {block.view}"
    ]
    for row in data.get("transactions", []):
        tx = scalar(row["tx_id"])
        lines.append(
            f"          {tx[:16]}  {scalar(row['operation'])} by {scalar(row['sender'])}: "
            f"{row['code']}"
        )
    return "\n".join(lines)


@with_client(identity=False)
def tail_blocks(options: argparse.Namespace, client: Client) -> int:
    head = client.status().height
    start = head if options.from_height is None else options.from_height
    if start < 0 or (options.count is not None and options.count < 1):
        raise usage("BAD_ARGUMENT", "--from must be 0 or more and --count at least 1")
    if start > head and not options.follow:
        return 0
    printed = 0
    stream = client.blocks(start)
    known: dict[str, str] = {}
    try:
        for block in stream:
            data = block.to_dict()
            if options.json:
                currencies = instrument_currencies(client, data, known)
                print(json_text(data, currencies=currencies, indent=None), flush=True)
            else:
                print(_tail_line(block, data), flush=True)
            printed += 1
            if options.count is not None and printed >= options.count:
                break
            if block.height >= head and not options.follow:
                break
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a followed tail ends
    finally:
        stream.close()
    return 0
