"""``ibledger asset``: the standardized asset registry (instrument master, holdings, encumbrances).

An instrument is registered by its registrar (e.g. CSDC) under its ISIN, with its issuer's LEI,
CFI code, currency, denomination and issue size; it becomes ACTIVE when the issue is allotted to
holders. Quantities are face value in the instrument's currency, written in major units exactly
as on a statement ("5000000.00"): they must be whole multiples of the denomination and are never
rounded. A holder transfers and pledges its own holdings; the pledgee releases a pledge; a
regulator or the registrar freezes and unfreezes under a case reference.
"""

from __future__ import annotations

import argparse
from typing import Any

from ibledger.contracts.vocabulary import InstrumentStatus, ProductCategory, values

from .client import Client, TxReceipt
from .client_options import (
    add_client_flags,
    amount_arg,
    date_arg,
    history_lines,
    render,
    show_amount,
    subcommands,
    submit,
    table,
    usage,
    with_client,
)
from .output import emit, plain

PRODUCT_CATEGORIES = values(ProductCategory)
STATUSES = values(InstrumentStatus)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "asset",
        help="register instruments, allot, transfer, pledge, freeze, redeem; holdings",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = subcommands(parser)

    reg = verbs.add_parser(
        "register",
        help="register a new instrument (registrar) -- status REGISTERED",
        description="Register an instrument (初始登记). ISIN, issuer, CFI, currency, "
        "denomination, issue size and dates cannot be changed afterwards.",
    )
    reg.add_argument("isin", metavar="ISIN", help="12-character ISIN, e.g. CND10006PJH0")
    reg.add_argument("--name", required=True, help="instrument name")
    reg.add_argument("--issuer-lei", required=True, metavar="LEI")
    reg.add_argument("--issuer-uscc", metavar="USCC", help="issuer's USCC (domestic issuers)")
    reg.add_argument("--cfi", required=True, help="6-letter CFI code, e.g. DBFTFB for a bond")
    reg.add_argument("--currency", default="CNY", help="ISO 4217 currency (default CNY)")
    reg.add_argument(
        "--denomination",
        required=True,
        metavar="AMOUNT",
        help="face value of one unit, e.g. 100.00",
    )
    reg.add_argument(
        "--issue-size",
        required=True,
        metavar="AMOUNT",
        help="total face value to be issued, e.g. 10000000000.00",
    )
    reg.add_argument("--issue-date", required=True, metavar="YYYY-MM-DD")
    reg.add_argument("--value-date", metavar="YYYY-MM-DD", help="interest start date (起息日)")
    reg.add_argument(
        "--maturity-date", metavar="YYYY-MM-DD", help="omit for perpetual or open-ended products"
    )
    reg.add_argument(
        "--product-code",
        metavar="SCHEME:CODE",
        help="product registration code, e.g. WM:Z7001025001218 (required for "
        "funds and wealth-management products)",
    )
    _descriptive_flags(reg)
    add_client_flags(reg, transaction=True)
    reg.set_defaults(handler=register_instrument)

    amend = verbs.add_parser(
        "amend", help="change descriptive fields of an instrument (registrar) -- 变更登记"
    )
    amend.add_argument("isin", metavar="ISIN")
    amend.add_argument("--name")
    _descriptive_flags(amend)
    add_client_flags(amend, transaction=True)
    amend.set_defaults(handler=amend_instrument)

    issue = verbs.add_parser(
        "issue",
        help="allot the whole issue to holders (registrar) -- status ACTIVE",
        description="Allot the issue (发行分配). The allotments must add up to the issue size "
        "exactly.",
    )
    issue.add_argument("isin", metavar="ISIN")
    issue.add_argument(
        "--allot",
        action="append",
        required=True,
        metavar="HOLDER=AMOUNT",
        help="a holder and the face value allotted to it, e.g. "
        "ICBC=6000000000.00; repeat for each holder",
    )
    add_client_flags(issue, transaction=True)
    issue.set_defaults(handler=issue_instrument)

    transfer = verbs.add_parser(
        "transfer",
        help="transfer a holding to another participant (过户)",
        description="Transfer free (not pledged or frozen) holdings to another participant. A "
        "registrar may move another holder's position (non-trade transfer, e.g. a court "
        "order) with --from and --reason.",
    )
    transfer.add_argument("isin", metavar="ISIN")
    transfer.add_argument("--to", required=True, metavar="PARTICIPANT")
    transfer.add_argument("--quantity", required=True, metavar="AMOUNT", help="face value")
    transfer.add_argument(
        "--from",
        dest="source",
        metavar="PARTICIPANT",
        help="registrar only: the holder to move from",
    )
    transfer.add_argument("--reason", help="registrar only: why (non-trade transfer)")
    add_client_flags(transfer, transaction=True)
    transfer.set_defaults(handler=transfer_holding)

    pledge = verbs.add_parser(
        "pledge", help="pledge part of your holding to a pledgee (质押登记); prints the pledge id"
    )
    pledge.add_argument("isin", metavar="ISIN")
    pledge.add_argument("--pledgee", required=True, metavar="PARTICIPANT")
    pledge.add_argument("--quantity", required=True, metavar="AMOUNT", help="face value")
    add_client_flags(pledge, transaction=True)
    pledge.set_defaults(handler=pledge_holding)

    release = verbs.add_parser("release", help="release a pledge (the pledgee) -- 解除质押")
    release.add_argument("isin", metavar="ISIN")
    release.add_argument("--pledgor", required=True, metavar="PARTICIPANT")
    release.add_argument(
        "--pledge-id",
        required=True,
        metavar="ID",
        help="as printed by 'asset pledge' (see 'asset holdings')",
    )
    add_client_flags(release, transaction=True)
    release.set_defaults(handler=release_pledge)

    freeze = verbs.add_parser(
        "freeze", help="freeze part of a holding under a case reference (regulator/registrar)"
    )
    freeze.add_argument("isin", metavar="ISIN")
    freeze.add_argument("--holder", required=True, metavar="PARTICIPANT")
    freeze.add_argument("--quantity", required=True, metavar="AMOUNT", help="face value")
    freeze.add_argument("--case", required=True, metavar="REF", help="case reference")
    add_client_flags(freeze, transaction=True)
    freeze.set_defaults(handler=freeze_holding)

    unfreeze = verbs.add_parser("unfreeze", help="lift the freeze of one case (解冻)")
    unfreeze.add_argument("isin", metavar="ISIN")
    unfreeze.add_argument("--holder", required=True, metavar="PARTICIPANT")
    unfreeze.add_argument("--case", required=True, metavar="REF")
    add_client_flags(unfreeze, transaction=True)
    unfreeze.set_defaults(handler=unfreeze_holding)

    for verb, operation, text in (
        ("suspend", "asset.suspend", "suspend an active instrument (registrar)"),
        ("resume", "asset.resume", "resume a suspended instrument (registrar)"),
        (
            "deregister",
            "asset.deregister",
            "deregister an unissued, matured or redeemed instrument (注销, registrar)",
        ),
    ):
        sub = verbs.add_parser(verb, help=text)
        sub.add_argument("isin", metavar="ISIN")
        add_client_flags(sub, transaction=True)
        sub.set_defaults(handler=_status_handler(operation))

    redeem = verbs.add_parser(
        "redeem",
        help="redeem the instrument at maturity, or early with --early (兑付, registrar)",
        description="Redeem: every holding goes to zero. Pledged or frozen holdings must be "
        "released first.",
    )
    redeem.add_argument("isin", metavar="ISIN")
    redeem.add_argument("--early", action="store_true", help="an early call before maturity")
    add_client_flags(redeem, transaction=True)
    redeem.set_defaults(handler=redeem_instrument)

    show = verbs.add_parser("show", help="show an instrument's registry entry")
    show.add_argument("isin", metavar="ISIN")
    add_client_flags(show)
    show.set_defaults(handler=show_instrument)

    listing = verbs.add_parser("list", help="list registered instruments")
    listing.add_argument("--status", choices=STATUSES)
    add_client_flags(listing)
    listing.set_defaults(handler=list_instruments)

    holdings = verbs.add_parser(
        "holdings", help="a participant's holdings: available, pledged, frozen"
    )
    holdings.add_argument(
        "holder", nargs="?", metavar="PARTICIPANT", help="whose holdings (default: your own)"
    )
    add_client_flags(holdings)
    holdings.set_defaults(handler=show_holdings)

    holders = verbs.add_parser(
        "holders",
        help="who holds an instrument (issuer, registrar, regulator; others see their own row)",
    )
    holders.add_argument("isin", metavar="ISIN")
    add_client_flags(holders)
    holders.set_defaults(handler=show_holders)

    history = verbs.add_parser("history", help="an instrument's history of changes")
    history.add_argument("isin", metavar="ISIN")
    history.add_argument(
        "--from",
        dest="from_height",
        type=int,
        metavar="H",
        help="only entries from block height H on",
    )
    add_client_flags(history)
    history.set_defaults(handler=show_history)


def _descriptive_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--risk-rating", metavar="R", help="R1-R5 or PR1-PR5")
    parser.add_argument("--product-category", choices=PRODUCT_CATEGORIES)
    parser.add_argument("--custodian-lei", metavar="LEI", help="custodian (托管人) LEI")
    parser.add_argument(
        "--parent-lei",
        dest="parent_leis",
        action="append",
        metavar="LEI",
        help="issuer's parent LEI (repeatable)",
    )
    parser.add_argument(
        "--local-code",
        dest="local_codes",
        action="append",
        metavar="SCHEME:CODE",
        help="a local code, e.g. CFETS_BOND:230015 (repeatable)",
    )


def _pair(text: str, flag: str, separator: str = ":") -> tuple[str, str]:
    left, found, right = text.partition(separator)
    if not found or not left or not right:
        raise usage("BAD_ARGUMENT", f"{flag} {text!r} must be written LEFT{separator}RIGHT")
    return left, right


def _descriptive(options: argparse.Namespace) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if options.name is not None:
        args["name"] = options.name
    if options.risk_rating is not None:
        args["risk_rating"] = options.risk_rating
    if options.product_category is not None:
        args["product_category"] = options.product_category
    if options.custodian_lei is not None:
        args["custodian_lei"] = options.custodian_lei
    if options.parent_leis:
        args["issuer_parent_leis"] = list(options.parent_leis)
    if options.local_codes:
        args["local_codes"] = [list(_pair(code, "--local-code")) for code in options.local_codes]
    return args


def _currency(client: Client, isin: str) -> str:
    instrument = client.query("instrument", {"isin": isin})
    return str(instrument["currency"])


@with_client(identity=True)
def register_instrument(options: argparse.Namespace, client: Client) -> int:
    currency = options.currency
    args: dict[str, Any] = {
        "isin": options.isin,
        "issuer_lei": options.issuer_lei,
        "cfi": options.cfi,
        "currency": currency,
        "denomination_minor": amount_arg(options.denomination, "--denomination", currency),
        "issue_size_minor": amount_arg(options.issue_size, "--issue-size", currency),
        "issue_date": date_arg(options.issue_date, "--issue-date"),
        **_descriptive(options),
    }
    if options.issuer_uscc is not None:
        args["issuer_uscc"] = options.issuer_uscc
    if options.value_date is not None:
        args["value_date"] = date_arg(options.value_date, "--value-date")
    if options.maturity_date is not None:
        args["maturity_date"] = date_arg(options.maturity_date, "--maturity-date")
    if options.product_code is not None:
        scheme, code = _pair(options.product_code, "--product-code")
        args["product_reg_code"] = {"scheme": scheme, "code": code}
    return submit(options, client, "asset.register", args, currency=currency)


@with_client(identity=True)
def amend_instrument(options: argparse.Namespace, client: Client) -> int:
    changes = _descriptive(options)
    if not changes:
        raise usage("NOTHING_TO_CHANGE", "give at least one field to amend, e.g. --name")
    return submit(options, client, "asset.amend", {"isin": options.isin, **changes})


@with_client(identity=True)
def issue_instrument(options: argparse.Namespace, client: Client) -> int:
    currency = _currency(client, options.isin)
    allotments = []
    for text in options.allot:
        holder, amount = _pair(text, "--allot", "=")
        allotments.append(
            {"holder": holder, "quantity": amount_arg(amount, f"--allot {holder}", currency)}
        )
    args = {"isin": options.isin, "allotments": allotments}
    return submit(options, client, "asset.issue", args, currency=currency)


@with_client(identity=True)
def transfer_holding(options: argparse.Namespace, client: Client) -> int:
    currency = _currency(client, options.isin)
    args: dict[str, Any] = {
        "isin": options.isin,
        "to": options.to,
        "quantity": amount_arg(options.quantity, "--quantity", currency),
    }
    if options.source is not None:
        args["from"] = options.source
    if options.reason is not None:
        args["reason"] = options.reason
    return submit(options, client, "asset.transfer", args, currency=currency)


def _pledge_id(receipt: TxReceipt) -> tuple[dict[str, Any], list[str]]:
    event = receipt.event("asset.pledged")
    if event is None:
        return {}, []
    pledge_id = event.attrs.get("pledge_id")
    return {"pledge_id": pledge_id}, [
        f"  pledge id {pledge_id} (the pledgee releases it with: ibledger asset release "
        f"{event.attrs.get('isin')} --pledgor {event.attrs.get('pledgor')} --pledge-id "
        f"{pledge_id})"
    ]


@with_client(identity=True)
def pledge_holding(options: argparse.Namespace, client: Client) -> int:
    currency = _currency(client, options.isin)
    args = {
        "isin": options.isin,
        "pledgee": options.pledgee,
        "quantity": amount_arg(options.quantity, "--quantity", currency),
    }
    return submit(options, client, "asset.pledge", args, describe=_pledge_id, currency=currency)


@with_client(identity=True)
def release_pledge(options: argparse.Namespace, client: Client) -> int:
    args = {"isin": options.isin, "pledgor": options.pledgor, "pledge_id": options.pledge_id}
    return submit(options, client, "asset.release", args, currency=_currency(client, options.isin))


@with_client(identity=True)
def freeze_holding(options: argparse.Namespace, client: Client) -> int:
    currency = _currency(client, options.isin)
    args = {
        "isin": options.isin,
        "holder": options.holder,
        "case_ref": options.case,
        "quantity": amount_arg(options.quantity, "--quantity", currency),
    }
    return submit(options, client, "asset.freeze", args, currency=currency)


@with_client(identity=True)
def unfreeze_holding(options: argparse.Namespace, client: Client) -> int:
    args = {"isin": options.isin, "holder": options.holder, "case_ref": options.case}
    return submit(options, client, "asset.unfreeze", args, currency=_currency(client, options.isin))


def _status_handler(operation: str) -> Any:
    @with_client(identity=True)
    def run(options: argparse.Namespace, client: Client) -> int:
        return submit(options, client, operation, {"isin": options.isin})

    return run


@with_client(identity=True)
def redeem_instrument(options: argparse.Namespace, client: Client) -> int:
    args: dict[str, Any] = {"isin": options.isin}
    if options.early:
        args["early"] = True
    return submit(options, client, "asset.redeem", args, currency=_currency(client, options.isin))


@with_client(identity=True)
def show_instrument(options: argparse.Namespace, client: Client) -> int:
    record = client.query("instrument", {"isin": options.isin})
    emit(options, record, "\n".join(render(record)))
    return 0


@with_client(identity=True)
def list_instruments(options: argparse.Namespace, client: Client) -> int:
    rows = client.query("instruments", {"status": options.status} if options.status else {})
    shown = [
        row | {"size": f"{show_amount(row['issue_size_minor'], row['currency'])} {row['currency']}"}
        for row in rows
    ]
    text = table(
        shown,
        [
            ("isin", "ISIN"),
            ("name", "NAME"),
            ("status", "STATUS"),
            ("cfi", "CFI"),
            ("size", "ISSUE SIZE"),
            ("maturity_date", "MATURITY"),
            ("registrar", "REGISTRAR"),
        ],
    )
    emit(options, {"instruments": rows}, text)
    return 0


def _holding_rows(rows: list[dict[str, Any]], currencies: dict[str, str]) -> str:
    shown = []
    for row in rows:
        currency = currencies.get(row["isin"], "")
        shown.append(
            row
            | {
                name: show_amount(row[name], currency) if currency else row[name]
                for name in ("available", "pledged", "frozen", "quantity")
            }
            | {"currency": currency}
        )
    return table(
        shown,
        [
            ("isin", "ISIN"),
            ("holder", "HOLDER"),
            ("currency", "CCY"),
            ("quantity", "TOTAL"),
            ("available", "AVAILABLE"),
            ("pledged", "PLEDGED"),
            ("frozen", "FROZEN"),
        ],
    )


@with_client(identity=True)
def show_holdings(options: argparse.Namespace, client: Client) -> int:
    holder = options.holder or client.sender
    rows = client.query("holdings", {"holder": holder})
    currencies = {row["isin"]: row["currency"] for row in client.query("instruments")}
    lines = [_holding_rows(rows, currencies)]
    for row in rows:
        for pledge_id, pledge in row.get("pledges", {}).items():
            lines.append(
                f"  pledge {pledge_id} on {row['isin']} to {pledge['pledgee']}: "
                f"{show_amount(pledge['quantity'], currencies.get(row['isin'], ''))}"
            )
        for case_ref, freeze in row.get("freezes", {}).items():
            lines.append(
                f"  frozen {row['isin']} under case {case_ref} by "
                f"{freeze['authority']}: "
                f"{show_amount(freeze['quantity'], currencies.get(row['isin'], ''))}"
            )
    emit(
        options,
        {"holder": holder, "holdings": [_holding_json(row, currencies) for row in rows]},
        "\n".join(lines),
    )
    return 0


def _holding_json(row: dict[str, Any], currencies: dict[str, str]) -> dict[str, Any]:
    """A holding in the JSON convention: its currency, and its pledges (keyed by pledge id)
    and freezes (keyed by case reference) as lists of objects that name the key."""
    shown = dict(row)
    if row["isin"] in currencies:
        shown["currency"] = currencies[row["isin"]]
    if isinstance(row.get("pledges"), dict):
        shown["pledges"] = [
            {"pledge_id": pledge_id, **pledge} for pledge_id, pledge in row["pledges"].items()
        ]
    if isinstance(row.get("freezes"), dict):
        shown["freezes"] = [
            {"case_ref": case_ref, **freeze} for case_ref, freeze in row["freezes"].items()
        ]
    return shown


@with_client(identity=True)
def show_holders(options: argparse.Namespace, client: Client) -> int:
    answer = client.query("holders", {"isin": options.isin})
    currency = _currency(client, options.isin)
    head = (
        f"{answer['isin']}: outstanding {show_amount(answer['outstanding_minor'], currency)} "
        f"{currency}" + ("" if answer["complete"] else " (you see only your own holding)")
    )
    currencies = {options.isin: currency}
    text = head + "\n" + _holding_rows(answer["holders"], currencies)
    shown = answer | {
        "currency": currency,
        "holders": [_holding_json(row, currencies) for row in answer["holders"]],
    }
    emit(options, shown, text)
    return 0


@with_client(identity=True)
def show_history(options: argparse.Namespace, client: Client) -> int:
    args: dict[str, Any] = {"isin": options.isin}
    if options.from_height is not None:
        args["from_height"] = options.from_height
    entries = client.query("asset_history", args)
    currency = _currency(client, options.isin)
    emit(
        options,
        {"isin": options.isin, "history": entries},
        history_lines(entries, currency),
        currency=currency,
    )
    return 0
