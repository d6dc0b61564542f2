"""``ibledger tx``: look up, wait for, verify and submit raw transactions.

``tx show ID --verify`` checks the receipt offline against the genesis validator keys (the
serving node is not trusted): the transaction is in the block the header describes, the header
is the one whose hash the node named, and a quorum of validators signed that block.
``tx submit OP --args JSON`` is the escape hatch for any operation the other commands do not
cover; its arguments are exactly the contract's (amounts in minor units, dates as YYYY-MM-DD).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .client import Client, TxReceipt
from .client_options import (
    add_client_flags,
    emit_ledger,
    json_args,
    json_line,
    receipt_lines,
    report_receipt,
    show_time,
    subcommands,
    submit,
    tx_id_arg,
    usage,
    with_client,
)
from .client_verify import ValidatorSet, VerificationReport, verify_receipt
from .manifest import read_genesis
from .output import CommandError, plain


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "tx",
        help="show, wait for, verify or submit transactions",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = subcommands(parser)

    show = verbs.add_parser(
        "show",
        help="show a committed transaction: block, result, events (--verify: check the proof)",
        description="Show the receipt of a committed transaction: its block and position, the "
        "operation and its arguments, the result code and the events it caused. With --verify, "
        "check the receipt against the validators' keys from the genesis file.",
    )
    show.add_argument("tx_id", metavar="TX_ID", help="transaction id (64 hex characters)")
    show.add_argument(
        "--verify",
        action="store_true",
        help="check the inclusion proof, block header and commit certificate offline",
    )
    show.add_argument(
        "--genesis",
        type=Path,
        metavar="FILE",
        help="genesis file with the validator keys (default: the manifest's genesis)",
    )
    add_client_flags(show)  # optional --as: a party sees the payload, others what proofs need
    show.set_defaults(handler=show_tx)

    wait = verbs.add_parser(
        "wait",
        help="wait until a submitted transaction commits and show its result",
        description="Wait until the transaction commits (exit 4 if --timeout passes first).",
    )
    wait.add_argument("tx_id", metavar="TX_ID")
    add_client_flags(wait, transaction=True, no_wait=False)
    wait.set_defaults(handler=wait_tx)

    raw = verbs.add_parser(
        "submit",
        help="sign and submit any operation with JSON arguments",
        description="Sign OPERATION with ARGS as the chosen identity and submit it, e.g.\n"
        '  ibledger tx submit asset.suspend --args \'{"isin": "CND10006PJH0"}\' --as CSDC\n'
        "Arguments are the contract's own: amounts in minor units (integers) or decimal "
        "strings where the contract says so, dates YYYY-MM-DD. JSON numbers with a fraction "
        "are refused (the ledger has no floats).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    raw.add_argument("operation", metavar="OPERATION", help="e.g. asset.transfer, bill.sign")
    raw.add_argument(
        "--args",
        default="{}",
        metavar="JSON",
        help="the operation's arguments as a JSON object, or @FILE (default {})",
    )
    add_client_flags(raw, transaction=True)
    raw.set_defaults(handler=submit_tx)


def validators_for(options: argparse.Namespace, client: Client) -> ValidatorSet:
    """The validator set from --genesis or the manifest's genesis file (never from a node)."""
    path: Path | None = getattr(options, "genesis", None)
    if path is not None:
        return ValidatorSet.from_genesis(read_genesis(path))
    if client.manifest is not None:
        return ValidatorSet.from_genesis(client.manifest.genesis())
    raise usage(
        "GENESIS_REQUIRED",
        "--verify needs the genesis file with the validator keys: pass --genesis FILE or "
        "--network DIR",
    )


SUITE_ALGORITHMS = {
    "ed25519-sha256": "Ed25519 signatures, SHA-256 hashes",
    "sm2-sm3": "SM2 signatures, SM3 hashes",
}


def verification_lines(report: VerificationReport) -> list[str]:
    verdict = "VERIFIED" if report.ok else "NOT VERIFIED"
    suite = f" ({report.suite}: {SUITE_ALGORITHMS.get(report.suite, report.suite)})"
    lines = [f"verification of {report.subject}: {verdict}{suite if report.suite else ''}"]
    for check in report.checks:
        mark = "ok  " if check.ok else "FAIL"
        lines.append(f"  [{mark}] {check.name:<12} {check.detail}")
    return lines


def _show_lines(receipt: TxReceipt) -> list[str]:
    lines = receipt_lines(receipt)
    lines.insert(1, f"  block {receipt.block_hash.hex()} at {show_time(receipt.timestamp_ms)}")
    tx = receipt.transaction
    if tx is not None:
        lines.append(f"  args {json_line(dict(tx.args))}")
    return lines


@with_client(identity=False)
def show_tx(options: argparse.Namespace, client: Client) -> int:
    tx_id = tx_id_arg(options.tx_id)
    validators = validators_for(options, client) if options.verify else None
    receipt = client.receipt(tx_id)
    data = receipt.to_dict()
    lines = _show_lines(receipt)
    if validators is None:
        emit_ledger(options, client, data, "\n".join(lines))
        return 0
    report = verify_receipt(receipt, validators, expected_tx_id=tx_id)
    data["verification"] = report.to_dict()
    emit_ledger(options, client, data, "\n".join(lines + verification_lines(report)))
    if not report.ok:
        failed = ", ".join(check.name for check in report.failed)
        raise CommandError(
            "VERIFICATION_FAILED", f"the receipt of {tx_id.hex()} does not verify ({failed})"
        )
    return 0


@with_client(identity=False)
def wait_tx(options: argparse.Namespace, client: Client) -> int:
    receipt = client.wait(tx_id_arg(options.tx_id), options.timeout)
    return report_receipt(options, receipt, client)


@with_client(identity=True)
def submit_tx(options: argparse.Namespace, client: Client) -> int:
    return submit(options, client, options.operation, json_args(options.args))
