"""``ibledger query`` (any read-side query) and ``ibledger supervise`` (look-through views).

Queries are signed by the chosen identity: the ledger answers what that participant may see.
A regulator sees everything (穿透式监管): any participant's positions, exposures by acceptor,
the raw history of any bill, instrument or participant, and the live stream of events; and the
look-through views (owners, underlying, aggregates), through products held by products and,
with --height, as of a past block.
"""

from __future__ import annotations

import argparse
from collections.abc import Generator
from typing import Any

from ibledger.contracts import QUERIES

from .client import Client, LedgerEvent
from .client_options import (
    add_client_flags,
    emit_ledger,
    format_attrs,
    history_lines,
    instrument_currencies,
    json_args,
    render,
    show_amount,
    show_time,
    subcommands,
    table,
    usage,
    with_client,
)
from .output import json_text, plain


def register(commands: Any) -> None:
    query = commands.add_parser(
        "query",
        help="run any read-side query with JSON arguments",
        description="Run the query NAME with --args JSON as the chosen identity and print the "
        "answer. Queries: " + ", ".join(sorted(QUERIES)) + ". Example: ibledger query holdings "
        '--args \'{"holder": "ICBC"}\' --as ICBC',
    )
    query.add_argument("name", metavar="NAME", help="query name, e.g. instrument, bill, positions")
    query.add_argument(
        "--args",
        default="{}",
        metavar="JSON",
        help="the query's arguments as a JSON object, or @FILE (default {})",
    )
    add_client_flags(query, as_of=True)
    query.set_defaults(handler=run_query)

    supervise = commands.add_parser(
        "supervise",
        help="regulator views: positions, exposures, histories, the live event stream",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    views = subcommands(supervise, "VIEW")

    positions = views.add_parser(
        "positions",
        help="a participant's bills held, accepted, guaranteed, pledged to it, and holdings",
    )
    positions.add_argument("participant", metavar="PARTICIPANT")
    add_client_flags(positions, as_of=True)
    positions.set_defaults(handler=show_positions)

    exposures = views.add_parser(
        "exposures", help="per acceptor: outstanding acceptances, settled, refusals"
    )
    add_client_flags(exposures, as_of=True)
    exposures.set_defaults(handler=show_exposures)

    history = views.add_parser(
        "history", help="the recorded history of one bill, instrument or participant"
    )
    target = history.add_mutually_exclusive_group(required=True)
    target.add_argument("--bill", metavar="PACKAGE_NO")
    target.add_argument("--asset", metavar="ISIN")
    target.add_argument("--participant", metavar="ID")
    history.add_argument(
        "--from",
        dest="from_height",
        type=int,
        metavar="H",
        help="only entries from block height H on",
    )
    add_client_flags(history, as_of=True)
    history.set_defaults(handler=show_scope_history)

    events = views.add_parser(
        "events",
        help="contract events up to the current height, or as they commit with --follow",
        description="Print every contract event from height --from on up to the current "
        "height, then exit. With --follow, keep printing new events as blocks commit, until "
        "Ctrl-C or --count. Events are shown to the parties of their transactions and to the "
        "regulator, so the stream is signed: pass --as. --json prints one JSON object per line.",
    )
    events.add_argument(
        "--from",
        dest="from_height",
        type=int,
        metavar="H",
        help="first block height (default: 1, or the next block with --follow)",
    )
    events.add_argument(
        "--kind",
        dest="kinds",
        action="append",
        default=[],
        metavar="KIND",
        help="only this event kind, e.g. bill.payment_refused (repeatable)",
    )
    events.add_argument("--count", type=int, metavar="N", help="stop after N events")
    events.add_argument(
        "--follow",
        action="store_true",
        help="keep following new events after the current height (until Ctrl-C or --count)",
    )
    add_client_flags(events)
    events.set_defaults(handler=follow_events)

    owners = views.add_parser(
        "owners",
        help="look-through: the ultimate owners of an instrument through the products holding it",
    )
    owners.add_argument("isin", metavar="ISIN")
    add_client_flags(owners, as_of=True)
    owners.set_defaults(handler=show_owners)

    underlying = views.add_parser(
        "underlying",
        help="look-through: what a participant or product ultimately holds through products",
    )
    underlying.add_argument("holder", metavar="HOLDER", help="a participant id or a product ISIN")
    add_client_flags(underlying, as_of=True)
    underlying.set_defaults(handler=show_underlying)

    aggregates = views.add_parser(
        "aggregates",
        help="look-through sums by issuer, issuer group, CFI category and currency",
        description="Sum the underlying assets of --holder (or, without it, every "
        "instrument's outstanding) by issuer, issuer group (parent LEIs), CFI category and "
        "currency. Quantities are exact fractions of minor units.",
    )
    aggregates.add_argument("--holder", metavar="HOLDER", help="a participant id or product ISIN")
    add_client_flags(aggregates, as_of=True)
    aggregates.set_defaults(handler=show_aggregates)


def _lookthrough_args(options: argparse.Namespace, **args: Any) -> dict[str, Any]:
    # The look-through queries also name the height themselves, so that their answers say
    # ``as_of_height``; the node answers them, like every query, from the state at --height.
    args["height"] = options.as_of_height
    return {name: value for name, value in args.items() if value is not None}


def _as_of(answer: dict[str, Any], client: Client) -> str:
    height = answer.get("as_of_height")
    return f"height {client.last_query_height}" if height is None else f"height {height}"


def owners_text(answer: dict[str, Any], where: str) -> str:
    """The ultimate owners table of a ``lookthrough_owners`` answer."""
    head = (
        f"ultimate owners of {answer['isin']} at {where}: outstanding "
        f"{answer['outstanding_minor']} minor units of {answer['currency']}, "
        f"{answer['depth']} product layer(s)" + (" (nested)" if answer["nested"] else "")
    )
    rows = [
        row | {"via": "; ".join(" > ".join(p["via"]) or "direct" for p in row["paths"])}
        for row in answer["owners"]
    ]
    columns = [
        ("owner", "OWNER"),
        ("kind", "KIND"),
        ("quantity_exact", "QUANTITY"),
        ("share", "SHARE"),
        ("depth", "DEPTH"),
        ("via", "VIA"),
    ]
    return head + "\n" + table(rows, columns)


def underlying_text(answer: dict[str, Any], where: str) -> str:
    """The underlying assets table of a ``lookthrough_assets`` answer."""
    head = f"underlying assets of {answer['holder']} at {where}, {answer['depth']} layer(s)"
    columns = [
        ("isin", "ISIN"),
        ("issuer_lei", "ISSUER"),
        ("cfi", "CFI"),
        ("currency", "CCY"),
        ("maturity_date", "MATURITY"),
        ("quantity_exact", "QUANTITY"),
        ("depth", "DEPTH"),
    ]
    return head + "\n" + table(answer["assets"], columns)


def aggregates_text(answer: dict[str, Any], where: str) -> str:
    """The four sums of a ``lookthrough_exposures`` answer."""
    whose = answer["holder"] or "all instruments (outstanding)"
    lines = [f"look-through sums of {whose} at {where}"]
    for key, column, title in (
        ("by_issuer", "issuer_lei", "by issuer"),
        ("by_issuer_group", "group_lei", "by issuer group"),
        ("by_cfi_category", "cfi_category", "by CFI category"),
        ("by_currency", None, "by currency"),
    ):
        columns = [] if column is None else [(column, title.removeprefix("by ").upper())]
        columns += [("currency", "CCY"), ("quantity_exact", "QUANTITY")]
        lines += [f"{title}:", table(answer[key], columns)]
    return "\n".join(lines)


@with_client(identity=True)
def show_owners(options: argparse.Namespace, client: Client) -> int:
    answer = client.query("lookthrough_owners", _lookthrough_args(options, isin=options.isin))
    emit_ledger(options, client, answer, owners_text(answer, _as_of(answer, client)))
    return 0


@with_client(identity=True)
def show_underlying(options: argparse.Namespace, client: Client) -> int:
    args = _lookthrough_args(options, holder=options.holder)
    answer = client.query("lookthrough_assets", args)
    emit_ledger(options, client, answer, underlying_text(answer, _as_of(answer, client)))
    return 0


@with_client(identity=True)
def show_aggregates(options: argparse.Namespace, client: Client) -> int:
    args = _lookthrough_args(options, holder=options.holder)
    answer = client.query("lookthrough_exposures", args)
    emit_ledger(options, client, answer, aggregates_text(answer, _as_of(answer, client)))
    return 0


@with_client(identity=True)
def run_query(options: argparse.Namespace, client: Client) -> int:
    answer = client.query(options.name, json_args(options.args))
    # ``height`` is the height answered for: the tip's, or --height's.
    data = {"query": options.name, "height": client.last_query_height, "result": answer}
    emit_ledger(options, client, data, "\n".join(render(answer)))
    return 0


def _bill_rows(rows: list[dict[str, Any]]) -> str:
    shown = [row | {"amount": show_amount(row["amount_fen"])} for row in rows]
    return table(
        shown,
        [
            ("package_no", "PACKAGE NO"),
            ("range", "RANGE"),
            ("amount", "AMOUNT"),
            ("status", "STATUS"),
            ("flag", "FLAG"),
            ("maturity_date", "MATURITY"),
        ],
    )


@with_client(identity=True)
def show_positions(options: argparse.Namespace, client: Client) -> int:
    answer = client.query("positions", {"participant": options.participant})
    totals = answer["totals"]
    lines = [
        f"positions of {answer['participant']} at height {client.last_query_height}",
        f"  bills held {show_amount(totals['held_fen'])}  accepted outstanding "
        f"{show_amount(totals['accepted_outstanding_fen'])}  guaranteed "
        f"{show_amount(totals['guaranteed_fen'])}  pledged to it "
        f"{show_amount(totals['pledged_to_fen'])} (CNY)",
    ]
    for key, title in (
        ("bills_held", "bills held"),
        ("bills_accepted", "acceptances outstanding"),
        ("bills_guaranteed", "guarantees given"),
        ("bills_pledged_to", "bills pledged to it"),
        ("bills_drawn", "bills drawn"),
    ):
        if answer[key]:
            lines += [f"{title}:", _bill_rows(answer[key])]
    if answer["holdings"]:
        currencies = {row["isin"]: row["currency"] for row in client.query("instruments")}
        rows = []
        for row in answer["holdings"]:
            currency = currencies.get(row["isin"], "")
            rows.append(
                row
                | {"currency": currency}
                | {
                    name: show_amount(row[name], currency) if currency else row[name]
                    for name in ("quantity", "available", "pledged", "frozen")
                }
            )
        lines.append("holdings:")
        lines.append(
            table(
                rows,
                [
                    ("isin", "ISIN"),
                    ("currency", "CCY"),
                    ("quantity", "TOTAL"),
                    ("available", "AVAILABLE"),
                    ("pledged", "PLEDGED"),
                    ("frozen", "FROZEN"),
                ],
            )
        )
    emit_ledger(options, client, answer | {"height": client.last_query_height}, "\n".join(lines))
    return 0


@with_client(identity=True)
def show_exposures(options: argparse.Namespace, client: Client) -> int:
    rows = client.query("acceptor_exposures")
    shown = [
        row
        | {
            "outstanding": show_amount(row["outstanding_fen"]),
            "settled": show_amount(row["settled_fen"]),
        }
        for row in rows
    ]
    text = table(
        shown,
        [
            ("acceptor", "ACCEPTOR"),
            ("packages", "BILLS"),
            ("outstanding", "OUTSTANDING CNY"),
            ("settled", "SETTLED CNY"),
            ("refused_pieces", "REFUSALS"),
        ],
    )
    emit_ledger(options, client, {"height": client.last_query_height, "acceptors": rows}, text)
    return 0


@with_client(identity=True)
def show_scope_history(options: argparse.Namespace, client: Client) -> int:
    if options.bill:
        scope = f"b/{options.bill}"
    elif options.asset:
        scope = f"a/{options.asset}"
    else:
        scope = f"p/{options.participant}"
    args: dict[str, Any] = {"scope": scope}
    if options.from_height is not None:
        args["from_height"] = options.from_height
    entries = client.query("events", args)
    emit_ledger(options, client, {"scope": scope, "history": entries}, history_lines(entries))
    return 0


@with_client(identity=False)
def follow_events(options: argparse.Namespace, client: Client) -> int:
    start = options.from_height
    head = client.status().height
    if start is None:
        start = head + 1 if options.follow else 1
    if start < 0 or (options.count is not None and options.count < 1):
        raise usage("BAD_ARGUMENT", "--from must be 0 or more and --count at least 1")
    printed = 0
    known: dict[str, str] = {}
    stream = (
        client.events(start, options.kinds)
        if options.follow
        else _events_to(client, start, head, options.kinds)
    )
    try:
        for event in stream:
            if options.json:
                data = event.to_dict()
                currencies = instrument_currencies(client, data, known)
                print(json_text(data, currencies=currencies, indent=None), flush=True)
            else:
                print(
                    f"{event.height:>8}  {show_time(event.timestamp_ms)}  {event.kind}: "
                    f"{format_attrs(event.attrs)}  (tx {event.tx_id.hex()[:16]})",
                    flush=True,
                )
            printed += 1
            if options.count is not None and printed >= options.count:
                break
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()
    return 0


def _events_to(
    client: Client, start: int, head: int, kinds: list[str]
) -> Generator[LedgerEvent, None, None]:
    """The events of heights ``start`` to ``head`` the viewer may see, read from the blocks.

    The event stream gives no sign that it has passed a height, so a bounded read walks the
    blocks instead (each block carries the events of the transactions shown to the viewer).
    """
    if start > head:
        return
    blocks = client.blocks(start)
    try:
        for block in blocks:
            for event in block.events:
                if not kinds or event.kind in kinds:
                    yield event
            if block.height >= head:
                return
    finally:
        blocks.close()
