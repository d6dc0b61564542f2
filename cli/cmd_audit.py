"""``ibledger audit``: check and read a node's audit log (refused peers, refused client requests,
governance actions), offline, from its files in ``<data_dir>/audit``.

``verify`` follows the hash chain through every segment and stops at the first entry that was
altered, removed, reordered or cut; with ``--genesis`` it also checks the signed heads against
the node's validator key, which catches a rewrite of the whole chain.
"""

from __future__ import annotations

import argparse
import json
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ibledger.node.audit import Report, expand_paths, read_records, verify
from ibledger.node.config import ConfigError, load_genesis
from ibledger.node.crypto import get_suite
from ibledger.node.pki import (
    PkiError,
    certificate_verifier,
    node_id_from_certificate,
    read_certificate,
)

from .client_options import subcommands, table, usage
from .output import add_json_flag, emit, fail, plain


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "audit",
        help="verify and show a node's audit log",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = subcommands(parser)

    check = verbs.add_parser(
        "verify",
        help="check the hash chain (and head signatures) of an audit log",
        description="Check an audit log: a directory (all its segments, oldest first) or "
        "segment files in order. Exits 0 when intact; otherwise non-zero, naming the first "
        "entry that was altered, removed, reordered or cut (sequence number, file and line).",
    )
    check.add_argument("paths", metavar="PATH", nargs="+", type=Path)
    check.add_argument(
        "--genesis",
        type=Path,
        help="the network's genesis.json: check head signatures with the node's validator key",
    )
    check.add_argument("--public-key", help="check head signatures with this key (hex)")
    check.add_argument(
        "--certificate",
        type=Path,
        help="an observer's TLS certificate (nodes/NAME/tls/node.crt): check head signatures "
        "with its key (an observer signs with its TLS key, holding no validator key)",
    )
    check.add_argument("--node", help="the node whose log this is (default: as its heads say)")
    check.add_argument(
        "--require-signed",
        action="store_true",
        help="fail if records follow the last signed head (right for a stopped node's log)",
    )
    check.add_argument(
        "--anchor",
        metavar="SEQ:HASH",
        help="a record an earlier verify reported as the head: it must still be there",
    )
    add_json_flag(check)
    check.set_defaults(handler=run_verify)

    show = verbs.add_parser(
        "show",
        help="list audit records, newest last",
        description="List records of an audit log, newest last. Each line is checked on its own "
        "(PROBLEM says why one is not a valid record); the chain is checked by verify.",
    )
    show.add_argument("paths", metavar="PATH", nargs="+", type=Path)
    show.add_argument("--kind", help="only records whose kind starts with this")
    show.add_argument("--last", type=int, default=50, help="at most this many (default 50)")
    add_json_flag(show)
    show.set_defaults(handler=run_show)


def _signature_check(options: argparse.Namespace) -> Callable[[str, bytes, bytes], bool] | None:
    given = [o for o in (options.genesis, options.public_key, options.certificate) if o is not None]
    if len(given) > 1:
        raise usage("BAD_ARGUMENT", "give one of --genesis, --public-key and --certificate")
    if options.certificate is not None:
        return _certificate_check(options.certificate)
    if options.public_key is not None:
        try:
            key = bytes.fromhex(options.public_key)
        except ValueError:
            raise usage("BAD_ARGUMENT", "--public-key must be hexadecimal") from None
        # The key's form names its suite: a 65-byte uncompressed point is SM2, else Ed25519.
        suite = get_suite("sm2-sm3" if len(key) == 65 and key[0] == 0x04 else "ed25519-sha256")
        return lambda node, message, signature: suite.verify(key, message, signature)
    if options.genesis is None:
        return None
    try:
        genesis = load_genesis(options.genesis)
    except ConfigError as exc:
        raise usage("BAD_GENESIS", str(exc)) from None
    keys = {v.id: v.public_key for v in genesis.validators}
    chain_suite = get_suite(genesis.crypto_suite)
    if options.node is not None and options.node not in keys:
        raise usage("UNKNOWN_NODE", f"{options.node} is not a validator in {options.genesis}")

    def check(node: str, message: bytes, signature: bytes) -> bool:
        key = keys.get(node)
        return key is not None and chain_suite.verify(key, message, signature)

    return check


def _certificate_check(path: Path) -> Callable[[str, bytes, bytes], bool]:
    try:
        certificate = read_certificate(path)
        owner = node_id_from_certificate(certificate)
        verify = certificate_verifier(certificate)
    except PkiError as exc:
        raise usage("BAD_CERTIFICATE", f"{path}: {exc}") from None
    # A head names its node: only the certificate's owner may have signed it.
    return lambda node, message, signature: node == owner and verify(message, signature)


def _anchor(text: str | None) -> tuple[int, str] | None:
    if text is None:
        return None
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise usage("BAD_ARGUMENT", "--anchor is SEQ:HASH, e.g. 42: and 64 hexadecimal digits")
    return int(seq), digest


def _summary(report: Report) -> str:
    span = f"seq {report.first_seq}-{report.last_seq}" if report.records else "no records"
    lines = [
        f"{report.records} records ({span}) in {len(report.files)} file(s)"
        + (f", node {report.node}" if report.node else ""),
        "  kinds: " + (", ".join(f"{k} {n}" for k, n in sorted(report.kinds.items())) or "-"),
    ]
    if report.last_seq is not None:
        lines.append(f"  head: --anchor {report.last_seq}:{report.last_hash}")
    if report.starts_mid_chain:
        lines.append(f"  the chain starts at seq {report.first_seq}: earlier segments are absent")
    if report.signatures_checked and report.signed_through_seq is None:
        lines.append(f"  no signed head: {report.unsigned_records} record(s) vouched for by none")
    elif report.signatures_checked:
        lines.append(
            f"  {report.heads} signed head(s) verified, signed through seq "
            f"{report.signed_through_seq}; {report.unsigned_records} record(s) after the last"
        )
    else:
        lines.append(f"  {report.heads} head(s); signatures not checked (give --genesis)")
    for torn in report.torn_tails:
        lines.append(
            f"  a torn last line ({torn['bytes']} bytes at {torn['segment']} offset "
            f"{torn['offset']}) was cut at a restart, recorded at seq {torn['recorded_at_seq']}"
        )
    if report.problem is None:
        lines.insert(0, "intact: " + lines.pop(0))
    else:
        problem = report.problem
        where = f"{problem.file} line {problem.line}" if problem.line else problem.file
        lines.insert(0, f"BROKEN at seq {problem.seq} ({where}): {problem.message}")
    return "\n".join(lines)


def _check_paths(paths: list[Path]) -> None:
    for path in paths:
        if not path.exists():
            raise usage("NOT_FOUND", f"{path} does not exist")
        if path.is_dir() and not expand_paths([path]):
            raise usage(
                "NOT_FOUND",
                f"{path} holds no audit segments (audit-NNNNNNNN.jsonl); a node keeps them in "
                "<data_dir>/audit",
            )


def _report_json(data: dict[str, Any]) -> dict[str, Any]:
    """The verification report in the JSON convention: the node as ``node_id``, the count of
    records of each kind as ``records_by_kind``."""
    names = {"node": "node_id", "kinds": "records_by_kind"}
    return {names.get(key, key): value for key, value in data.items()}


def run_verify(options: argparse.Namespace) -> int:
    _check_paths(options.paths)
    report = verify(
        options.paths,
        verify_signature=_signature_check(options),
        node_id=options.node,
        require_signed=options.require_signed,
        anchor=_anchor(options.anchor),
    )
    emit(options, _report_json(report.to_dict()), _summary(report))
    if report.problem is None:
        return 0
    problem = report.problem
    where = f"{problem.file} line {problem.line}" if problem.line else problem.file
    return fail(options, "AUDIT_BROKEN", f"seq {problem.seq} ({where}): {problem.message}")


def run_show(options: argparse.Namespace) -> int:
    _check_paths(options.paths)
    if options.last < 1:
        raise usage("BAD_ARGUMENT", "--last must be at least 1")
    rows: deque[dict[str, Any]] = deque(maxlen=options.last)
    for file, line, record, problem in read_records(options.paths):
        if record is None:
            record = {"kind": "(unreadable line)", "fields": {}}
        elif options.kind is not None and not str(record.get("kind")).startswith(options.kind):
            continue
        rows.append(record | {"file": file, "line": line, "problem": problem})
    text = table(
        [
            row
            | {
                "fields": json.dumps(
                    {k: v for k, v in row["fields"].items() if k != "signature"},
                    sort_keys=True,
                )[:120]
            }
            for row in rows
        ],
        [
            ("seq", "SEQ"),
            ("time_ms", "TIME_MS"),
            ("kind", "KIND"),
            ("fields", "FIELDS"),
            ("problem", "PROBLEM"),
        ],
    )
    emit(options, {"records": list(rows)}, text)
    return 0
