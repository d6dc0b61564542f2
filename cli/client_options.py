"""What every client command shares: connection and identity flags, input parsing, output.

Flags (one helper adds them, so every command spells them the same way):

* ``--network DIR`` -- the network directory holding ``network.json`` (default
  ``$IBLEDGER_HOME/network``); ``--node HOST:PORT`` talks to one node instead of the manifest's
  list (with failover in manifest order otherwise);
* ``--as IDENTITY`` -- sign as one of the manifest's identities (default ``$IBLEDGER_AS``), or
  ``--key FILE --sender PARTICIPANT`` without a manifest;
* ``--json``; and for transactions ``--no-wait`` and ``--timeout S`` (how long to wait for the
  commit; for reads it bounds each call).

Exit statuses: 0 success; 1 the ledger refused (a status code, or a transaction that committed
with a failed result); 2 a usage error (argparse, or input refused before anything was sent:
a bad amount, date, JSON, missing identity); 3 no node reachable (UNAVAILABLE); 4 a deadline ran
out (DEADLINE_EXCEEDED).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from ibledger.contracts import ContractError, format_amount, parse_amount
from ibledger.node.addresses import parse_host_port
from ibledger.node.ports import DEFAULT_API_PORT

from .client import (
    DEFAULT_CALL_TIMEOUT_S,
    DEFAULT_WAIT_TIMEOUT_S,
    Client,
    ClientError,
    Submission,
    TxReceipt,
    load_keypair,
)
from .errors import EXIT_USAGE
from .manifest import MANIFEST_FILE, Manifest, load_manifest
from .output import CommandError, add_json_flag, display_width, emit, home, pad
from .passphrase import add_passphrase_flag

# Client-side codes that mean "the command was used wrongly", not "the ledger said no".
USAGE_CODES = frozenset(
    {
        "NO_NETWORK",
        "NO_IDENTITY",
        "UNKNOWN_IDENTITY",
        "BAD_TX_ID",
        "MANIFEST_INVALID",
        "NO_NODE",
        "NO_CA",
        "NODE_ADDRESS_INVALID",
    }
)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RATE = re.compile(r"(0|[1-9][0-9]{0,2})(?:\.([0-9]{1,4}))?")
RATE_PPM_MAX = 1_000_000

Handler = Callable[[argparse.Namespace], int]
ClientHandler = Callable[[argparse.Namespace, Client], int]


# --- flags ----------------------------------------------------------------------------------------


def add_client_flags(
    parser: argparse.ArgumentParser,
    *,
    identity: bool = True,
    transaction: bool = False,
    no_wait: bool = True,
    as_of: bool = False,
) -> None:
    """Add the connection, identity and output flags shared by the client commands; ``as_of``
    adds ``--height H`` to a read command (every query it runs answers as of block H)."""
    if as_of:
        add_height_flag(parser)
    connection = parser.add_argument_group("connection")
    connection.add_argument(
        "--network",
        type=Path,
        metavar="DIR",
        help="network directory holding network.json (default: $IBLEDGER_HOME/network)",
    )
    connection.add_argument(
        "--node",
        metavar="HOST[:PORT]",
        help="talk to this node only; without a port, the default API port "
        f"{DEFAULT_API_PORT} (default: the manifest's nodes, trying the next one when a node is "
        "unavailable)",
    )
    connection.add_argument(
        "--ca",
        type=Path,
        metavar="FILE",
        help="the consortium CA certificate to verify nodes against (default: the manifest's)",
    )
    connection.add_argument(
        "--insecure",
        action="store_true",
        help="talk to a node without TLS (only for a node configured with [api] tls = false)",
    )
    if transaction:
        # --timeout bounds the wait for the commit, not each call (open_client reads this).
        parser.set_defaults(waits=True)
        if no_wait:
            connection.add_argument(
                "--no-wait",
                action="store_true",
                help="return once a node admits the transaction, without waiting for the commit",
            )
        connection.add_argument(
            "--no-participant-check",
            action="store_true",
            help="sign without first asking the node whether the participants named exist (for "
            "one registered by a transaction that has not committed yet)",
        )
        connection.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_WAIT_TIMEOUT_S,
            metavar="S",
            help=f"seconds to wait for the commit (default {DEFAULT_WAIT_TIMEOUT_S:g})",
        )
    else:
        connection.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_CALL_TIMEOUT_S,
            metavar="S",
            help=f"seconds to wait for each answer (default {DEFAULT_CALL_TIMEOUT_S:g})",
        )
    if identity:
        who = parser.add_argument_group("identity")
        who.add_argument(
            "--as",
            dest="identity",
            metavar="IDENTITY",
            help="act as this identity of the network manifest, e.g. ICBC (default: $IBLEDGER_AS)",
        )
        who.add_argument(
            "--key",
            type=Path,
            metavar="FILE",
            help="private key file to sign with, when not using a manifest identity (needs "
            "--sender)",
        )
        who.add_argument(
            "--sender", metavar="PARTICIPANT", help="the participant id that --key belongs to"
        )
        add_passphrase_flag(who)
    add_json_flag(parser)


def block_height(text: str) -> int:
    """An argparse type: a block height, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a block height: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a block height is 0 or more, not {value}")
    return value


def add_height_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--height",
        dest="as_of_height",
        type=block_height,
        metavar="H",
        help="answer as the ledger stood at the end of block H, from genesis (0) to the "
        "current height (default: now)",
    )


def open_client(options: argparse.Namespace, *, need_identity: bool) -> Client:
    """A client for the flags of ``options``; raises ClientError for unusable settings."""
    network: Path | None = getattr(options, "network", None)
    node: str | None = getattr(options, "node", None)
    key: Path | None = getattr(options, "key", None)
    sender: str | None = getattr(options, "sender", None)
    identity: str | None = getattr(options, "identity", None)
    passphrase_file: Path | None = getattr(options, "passphrase_file", None)
    if identity is None and key is None and hasattr(options, "identity"):
        identity = os.environ.get("IBLEDGER_AS") or None
    default_dir = home() / "network"
    manifest: Manifest | None = None
    chain_id: str | None = None
    if network is not None or node is None:
        manifest = load_manifest(network or default_dir)
        chain_id = manifest.chain_id
    elif (default_dir / MANIFEST_FILE).exists():
        # --node alone: the default manifest still lends identities and the genesis file, but
        # the chain id comes from the node named, which may serve another network.
        manifest = load_manifest(default_dir)
    keypair = None
    if key is not None:
        if not sender:
            raise ClientError("NO_IDENTITY", "--key needs --sender PARTICIPANT")
        keypair = load_keypair(key, passphrase_file=passphrase_file)
    elif sender is not None:
        raise ClientError("NO_IDENTITY", "--sender needs --key FILE")
    elif identity is not None:
        if manifest is None:
            raise ClientError(
                "NO_NETWORK",
                "--as needs a network manifest: pass --network DIR, or sign with "
                "--key FILE --sender PARTICIPANT",
            )
        entry = manifest.identity(identity)
        keypair = load_keypair(
            entry.key_file,
            passphrase_file=passphrase_file,
            require_encrypted=manifest.keys_encrypted,
        )
        sender = entry.participant
    elif need_identity:
        known = ", ".join(sorted(manifest.identities)) if manifest else ""
        hint = f" (one of: {known})" if known else ""
        raise ClientError(
            "NO_IDENTITY",
            f"this command is signed: pass --as IDENTITY{hint}, or --key FILE --sender PARTICIPANT",
        )
    addresses = (
        [node_address(node)]
        if node
        else [str(entry.api) for entry in manifest.nodes]
        if manifest
        else []
    )
    ca_cert: Path | None = getattr(options, "ca", None)
    if getattr(options, "insecure", False):
        if ca_cert is not None:
            raise ClientError("BAD_ARGUMENT", "--insecure and --ca exclude each other")
    elif ca_cert is None and manifest is not None:
        ca_cert = manifest.ca_cert  # a manifest without one describes a plaintext network
    elif ca_cert is None:
        raise ClientError(
            "NO_CA",
            "no consortium CA to verify the node against: pass --ca FILE (the network's "
            "ca/ca.crt), or --network DIR",
        )
    # For transactions --timeout bounds the wait for the commit; for reads, each call.
    timeout_s = DEFAULT_CALL_TIMEOUT_S
    if not getattr(options, "waits", False) and getattr(options, "timeout", None):
        timeout_s = options.timeout
    return Client(
        addresses,
        chain_id=chain_id,
        keypair=keypair,
        sender=sender,
        timeout_s=timeout_s,
        manifest=manifest,
        ca_cert=ca_cert,
        node_ids={str(entry.api): entry.id for entry in manifest.processes} if manifest else None,
    )


def node_address(text: str) -> str:
    """``--node HOST[:PORT]`` as ``host:port``: a host alone (a name, an IPv4 address, an IPv6
    address with or without brackets) gets the documented default API port."""
    candidate = text
    bare_ipv6 = text.count(":") > 1 and not text.startswith("[")
    if bare_ipv6 or not re.search(r":[0-9]+$", text):
        host = f"[{text}]" if bare_ipv6 else text
        candidate = f"{host}:{DEFAULT_API_PORT}"
    try:
        parse_host_port(candidate)
    except ValueError as exc:
        raise ClientError("NODE_ADDRESS_INVALID", f"--node: {exc}") from None
    return candidate


def command_error(exc: ClientError) -> CommandError:
    exit_code = EXIT_USAGE if exc.code in USAGE_CODES else exc.exit_code
    return CommandError(exc.code, exc.message, exit_code)


def with_client(identity: bool) -> Callable[[ClientHandler], Handler]:
    """Decorate ``handler(options, client)``: open the client, map errors, close it."""

    def decorate(handler: ClientHandler) -> Handler:
        @functools.wraps(handler)
        def run(options: argparse.Namespace) -> int:
            try:
                client = open_client(options, need_identity=identity)
            except ClientError as exc:
                raise command_error(exc) from None
            client.as_of_height = getattr(options, "as_of_height", None)
            try:
                return handler(options, client)
            except ClientError as exc:
                raise command_error(exc) from None
            finally:
                client.close()

        return run

    return decorate


# --- input ----------------------------------------------------------------------------------------


def usage(code: str, message: str) -> CommandError:
    return CommandError(code, message, EXIT_USAGE)


def amount_arg(
    text: str,
    flag: str,
    currency: str = "CNY",
    *,
    code: str = "AMOUNT_INVALID",
    allow_zero: bool = False,
) -> int:
    """A decimal amount in major units ("1200000.00") -> integer minor units, never rounded."""
    try:
        minor = parse_amount(text, currency, code=code)
    except ContractError as exc:
        raise usage(exc.code, f"{flag}: {exc.message}") from None
    if minor == 0 and not allow_zero:
        raise usage(code, f"{flag}: the amount must be above zero")
    return minor


def show_amount(minor: int, currency: str = "CNY") -> str:
    try:
        return format_amount(minor, currency)
    except (ContractError, TypeError):
        return str(minor)


def date_arg(text: str, flag: str) -> str:
    """An ISO 8601 calendar date YYYY-MM-DD, checked to exist."""
    if _ISO_DATE.fullmatch(text):
        try:
            date.fromisoformat(text)
            return text
        except ValueError:
            pass
    raise usage("DATE_INVALID", f"{flag}: {text!r} is not a calendar date written YYYY-MM-DD")


def rate_arg(text: str, flag: str = "--rate") -> int:
    """An annual rate in percent with up to 4 decimals ("2.35") -> parts per million (23500)."""
    match = _RATE.fullmatch(text)
    if match is None:
        raise usage(
            "RATE_INVALID",
            f"{flag}: {text!r} is not a percentage such as 2.35 (at most 4 decimals, no sign)",
        )
    ppm = int(match.group(1)) * 10_000 + int((match.group(2) or "").ljust(4, "0"))
    if ppm > RATE_PPM_MAX:
        raise usage("RATE_INVALID", f"{flag}: a rate is at most 100 %")
    return ppm


def show_rate(ppm: int) -> str:
    return f"{Decimal(ppm) / Decimal(10_000):f} %"


SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def show_time(timestamp_ms: int) -> str:
    """An agreed block time as ISO 8601 in the business time zone (Asia/Shanghai, +08:00)."""
    moment = (_EPOCH + timedelta(milliseconds=timestamp_ms)).astimezone(SHANGHAI)
    return moment.isoformat(timespec="milliseconds")


def json_args(text: str, flag: str = "--args") -> dict[str, Any]:
    """A JSON object given inline or as @FILE."""
    source = text
    if text.startswith("@"):
        try:
            source = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise usage("BAD_JSON", f"{flag}: cannot read {text[1:]}: {exc}") from None
    try:
        value = json.loads(source, parse_float=_no_float)
    except ValueError as exc:
        raise usage("BAD_JSON", f"{flag}: {exc}") from None
    if not isinstance(value, dict):
        raise usage("BAD_JSON", f"{flag} must be a JSON object")
    return value


def _no_float(text: str) -> Any:
    raise ValueError(
        f"{text} is a fractional number; the ledger has no floats (write amounts as strings or "
        "integer minor units)"
    )


def tx_id_arg(text: str) -> bytes:
    if re.fullmatch(r"[0-9a-fA-F]{64}", text) is None:
        raise usage("BAD_TX_ID", f"{text!r} is not a transaction id (64 hexadecimal characters)")
    return bytes.fromhex(text)


# --- output ---------------------------------------------------------------------------------------

_QUANTITY_KEYS = frozenset({"quantity", "total", "available", "pledged", "frozen"})


def _amount_text(key: str, value: Any, currency: str | None) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if key.endswith("_fen"):
        return f"{show_amount(value, 'CNY')} CNY"
    if currency and (key.endswith("_minor") or key in _QUANTITY_KEYS):
        return f"{show_amount(value, currency)} {currency}"
    return None


def scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple) and all(
        not isinstance(v, dict | list | tuple) for v in value
    ):
        return ", ".join(scalar(v) for v in value) or "-"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=_hex)
    return str(value)


def _nested(item: Any) -> bool:
    if isinstance(item, dict):
        return bool(item)
    return isinstance(item, list | tuple) and any(isinstance(v, dict) for v in item)


def render(value: Any, indent: int = 0, currency: str | None = None) -> list[str]:
    """A readable, indented rendering of a query answer (amounts shown in major units)."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        currency = value.get("currency") if isinstance(value.get("currency"), str) else currency
        for key, item in value.items():
            amount = _amount_text(key, item, currency)
            if amount is not None:
                lines.append(f"{pad}{key}: {amount}")
            elif _nested(item):
                lines.append(f"{pad}{key}:")
                lines.extend(render(item, indent + 1, currency))
            else:
                lines.append(f"{pad}{key}: {scalar(item)}")
    elif isinstance(value, list | tuple):
        if not value:
            lines.append(f"{pad}(none)")
        for item in value:
            if isinstance(item, dict):
                inner = render(item, indent + 1, currency)
                if inner:
                    lines.append(f"{pad}- {inner[0].lstrip()}")
                    lines.extend(inner[1:])
                else:
                    lines.append(f"{pad}- {{}}")
            else:
                lines.append(f"{pad}- {scalar(item)}")
    else:
        lines.append(f"{pad}{scalar(value)}")
    return lines


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A plain text table of ``rows`` with ``(key, title)`` columns."""
    if not rows:
        return "(none)"
    cells = [[title for _, title in columns]]
    cells += [[scalar(row.get(key)) for key, _ in columns] for row in rows]
    # Measured in terminal columns: a Chinese name is twice as wide as its length, an accent
    # written as a combining mark adds a code point but no column.
    widths = [max(display_width(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(pad(cell, width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def format_attrs(attrs: Mapping[str, Any], currency: str | None = None) -> str:
    """Event attributes as key=value, amounts in major units of their currency."""
    if isinstance(attrs.get("currency"), str):
        currency = attrs["currency"]
    parts = []
    for key, value in attrs.items():
        amount = _amount_text(key, value, currency)
        if key == "allotments" and currency and isinstance(value, list):
            shown = ", ".join(
                f"{row[0]}={show_amount(row[1], currency)}"
                for row in value
                if isinstance(row, list) and len(row) == 2
            )
            parts.append(f"allotments=[{shown}]")
        elif amount is not None:
            parts.append(f"{key.removesuffix('_fen').removesuffix('_minor')}={amount}")
        elif isinstance(value, dict | list):
            parts.append(f"{key}={json.dumps(value, ensure_ascii=False, default=_hex)}")
        else:
            parts.append(f"{key}={scalar(value)}")
    return " ".join(parts)


def _hex(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(type(value).__name__)


def renamed(record: Any, names: Mapping[str, str]) -> Any:
    """``record`` (a query answer object) with its keys renamed by ``names``, in their order:
    the ledger stores an object's own identifier as ``id``; the CLI's JSON names it after what
    it identifies (see :mod:`cli.convention`)."""
    if not isinstance(record, Mapping):
        return record
    return {names.get(key, key): value for key, value in record.items()}


def _isins_without_currency(value: Any, found: set[str]) -> None:
    if isinstance(value, list | tuple):
        for item in value:
            _isins_without_currency(item, found)
    elif isinstance(value, Mapping):
        if isinstance(value.get("isin"), str) and not isinstance(value.get("currency"), str):
            found.add(value["isin"])
        for key, item in value.items():
            if key not in ("args", "params"):
                _isins_without_currency(item, found)


def instrument_currencies(
    client: Client, data: Any, known: dict[str, str] | None = None
) -> dict[str, str]:
    """The currency of each instrument that ``data`` names by ``isin`` without its currency,
    read once per ISIN (into ``known``, when given, so that a stream asks once). An instrument
    the viewer cannot read is left out: its amounts stay in minor units, as the node sent them."""
    currencies = known if known is not None else {}
    wanted: set[str] = set()
    _isins_without_currency(data, wanted)
    for isin in sorted(wanted - set(currencies)):
        try:
            record = client.query("instrument", {"isin": isin})
        except ClientError:
            continue
        if isinstance(record, Mapping) and isinstance(record.get("currency"), str):
            currencies[isin] = record["currency"]
    return currencies


def emit_ledger(
    options: argparse.Namespace,
    client: Client,
    data: Mapping[str, Any],
    text: str,
    *,
    currency: str | None = None,
) -> None:
    """``emit`` for data read from the ledger: under --json, amounts of instruments named only
    by ISIN are given in the instrument's currency, looked up here."""
    currencies = instrument_currencies(client, data) if getattr(options, "json", False) else None
    emit(options, data, text, currency=currency, currencies=currencies)


def json_line(data: Mapping[str, Any]) -> str:
    """One compact JSON object per line, for streams (bytes shown as hex)."""
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=_hex)


def history_lines(entries: Sequence[Mapping[str, Any]], currency: str | None = None) -> str:
    """One line per history entry: height, time, what happened, who signed, the details."""
    if not entries:
        return "(no history)"
    lines = []
    for entry in entries:
        when = show_time(entry["timestamp_ms"]) if "timestamp_ms" in entry else "-"
        lines.append(
            f"{entry.get('height', '-'):>8}  {when}  {entry.get('kind')} by "
            f"{entry.get('sender', '-')}: {format_attrs(entry.get('attrs', {}), currency)}"
        )
    return "\n".join(lines)


def receipt_lines(receipt: TxReceipt, currency: str | None = None) -> list[str]:
    tx = receipt.transaction
    what = f"{tx.operation} by {tx.sender}" if tx else "transaction"
    again = (
        " (already committed earlier: this is the original receipt)" if receipt.resubmitted else ""
    )
    lines = [
        f"committed: {what} at height {receipt.height}, index {receipt.index}{again}",
        f"  tx {receipt.tx_id.hex()}",
        "  result withheld: the node shows it to the transaction's parties (sign with --as)"
        if receipt.withheld
        else f"  result {receipt.code}: {receipt.message}",
    ]
    for event in receipt.events:
        lines.append(f"  event {event.kind}: {format_attrs(event.attrs, currency)}")
    return lines


Describe = Callable[[TxReceipt], tuple[dict[str, Any], list[str]]]


def submit(
    options: argparse.Namespace,
    client: Client,
    operation: str,
    args: Mapping[str, Any],
    *,
    describe: Describe | None = None,
    currency: str | None = None,
) -> int:
    """Submit one transaction for a command and report it; a failed result is exit 1. The
    participants the command names are checked first (``validate.check_participants``)."""
    from .validate import check_participants

    check_participants(options, client)
    result = client.submit(operation, args, wait=not options.no_wait, timeout_s=options.timeout)
    if isinstance(result, Submission):
        tx = result.tx_id.hex()
        emit(
            options,
            result.to_dict() | {"operation": operation},
            f"admitted: {operation} as tx {tx} ({result.status.lower()})\n"
            f"  not waiting for the commit; follow it with: ibledger tx wait {tx}",
        )
        return 0
    return report_receipt(options, result, client, describe=describe, currency=currency)


def report_receipt(
    options: argparse.Namespace,
    receipt: TxReceipt,
    client: Client,
    *,
    describe: Describe | None = None,
    currency: str | None = None,
) -> int:
    data = receipt.to_dict()
    # A withheld receipt is committed with a result only its parties see: not a failure.
    if not receipt.ok and not receipt.withheld:
        if getattr(options, "json", False):
            emit_ledger(options, client, data, "", currency=currency)
        raise CommandError(
            receipt.code,
            f"{receipt.message} (tx {receipt.tx_id.hex()}, height {receipt.height})",
            1,
        )
    extra: dict[str, Any] = {}
    lines = receipt_lines(receipt, currency)
    if describe is not None:
        extra, more = describe(receipt)
        lines += more
    emit_ledger(options, client, data | extra, "\n".join(lines), currency=currency)
    return 0


def subcommands(parser: argparse.ArgumentParser, title: str = "ACTION") -> Any:
    verbs = parser.add_subparsers(dest="verb", metavar=title)
    verbs.required = True
    return verbs


def one_of(values: Iterable[str]) -> str:
    return ", ".join(values)
