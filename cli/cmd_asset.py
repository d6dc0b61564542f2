"""``ibledger asset``: the standardized asset registry (instrument master, holdings, encumbrances).

An instrument is registered by its registrar (e.g. CSDC) under its ISIN, with its issuer's LEI,
CFI code, currency, denomination and issue size; it becomes ACTIVE when the issue is allotted to
holders. Quantities are face value in the instrument's currency, written in major units exactly
as on a statement ("5000000.00"): they must be whole multiples of the denomination and are never
rounded. A transfer or a pledge takes two signatures, as for bills: the holder *requests* it
(the quantity is reserved), the counterparty -- the buyer, or the pledgee -- *signs* or
*rejects* it, and until then the holder may *revoke* it; unanswered, it times out after the
genesis request time-out (business days) and the quantity is free again::

    ibledger asset transfer ISIN --to BUYER --quantity AMOUNT   (prints the request id)
    ibledger asset sign REQUEST_ID                              (as the buyer / pledgee)
    ibledger asset reject REQUEST_ID --reason "..."
    ibledger asset revoke REQUEST_ID                            (as the requester)

The pledgee releases a pledge; a regulator or the registrar freezes and unfreezes under a case
reference.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

from ibledger.contracts.vocabulary import InstrumentStatus, ProductCategory, values

from .client import Client, TxReceipt
from .client_options import (
    add_client_flags,
    amount_arg,
    date_arg,
    history_lines,
    renamed,
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
ID_KEY = {"id": "request_id"}
# A request id is the hex transaction id of the request (what 'asset transfer' prints).
REQUEST_ID = re.compile(r"[0-9a-f]{16,128}")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "asset",
        help="register instruments, allot, transfer, pledge (requested, then signed), freeze, "
        "redeem; holdings",
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
        help="request a transfer of a holding to another participant (过户); prints the request id",
        description="Request a transfer of free (not pledged, frozen or reserved) holdings to "
        "another participant; the quantity is reserved until the buyer answers with 'ibledger "
        "asset sign REQUEST_ID' or 'ibledger asset reject REQUEST_ID'. A registrar may move "
        "another holder's position (non-trade transfer, e.g. a court order) with --from and "
        "--reason.",
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
        "pledge",
        help="request a pledge of part of your holding to a pledgee (质押登记); prints the "
        "request id, which becomes the pledge id once the pledgee signs",
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
        help="the id of the signed pledge request (see 'asset holdings')",
    )
    add_client_flags(release, transaction=True)
    release.set_defaults(handler=release_pledge)

    for verb, operation, text in (
        ("sign", "asset.sign", "buyer or pledgee: sign (签收) a pending transfer or pledge"),
        ("reject", "asset.reject", "buyer or pledgee: reject (驳回) a pending transfer or pledge"),
        ("revoke", "asset.revoke", "requester: withdraw (撤回) your own pending request"),
    ):
        sub = verbs.add_parser(
            verb,
            help=text,
            description=text[0].upper() + text[1:] + ". Name the request by its id, or by the "
            "instrument it is pending on.",
        )
        sub.add_argument(
            "request_id",
            nargs="?",
            metavar="REQUEST_ID",
            help="as printed by 'asset transfer|pledge'",
        )
        sub.add_argument(
            "--isin",
            metavar="ISIN",
            help="answer your one request pending on this instrument instead",
        )
        if verb == "reject":
            sub.add_argument("--reason", help="why (shown to the requester)")
        add_client_flags(sub, transaction=True)
        sub.set_defaults(handler=_answer_handler(operation))

    sweep = verbs.add_parser(
        "sweep", help="clear the requests on an instrument whose time-out has passed"
    )
    sweep.add_argument("isin", metavar="ISIN")
    add_client_flags(sweep, transaction=True)
    sweep.set_defaults(handler=_status_handler("asset.sweep"))

    pending = verbs.add_parser(
        "requests", help="pending transfer and pledge requests you made, hold or must answer"
    )
    pending.add_argument(
        "--participant", metavar="PARTICIPANT", help="whose (default: you; others: regulator)"
    )
    add_client_flags(pending, as_of=True)
    pending.set_defaults(handler=pending_requests)

    one = verbs.add_parser("request", help="show one transfer or pledge request")
    one.add_argument("request_id", metavar="REQUEST_ID")
    add_client_flags(one, as_of=True)
    one.set_defaults(handler=show_request)

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
    add_client_flags(show, as_of=True)
    show.set_defaults(handler=show_instrument)

    listing = verbs.add_parser("list", help="list registered instruments")
    listing.add_argument("--status", choices=STATUSES)
    add_client_flags(listing, as_of=True)
    listing.set_defaults(handler=list_instruments)

    holdings = verbs.add_parser(
        "holdings", help="a participant's holdings: available, pledged, frozen"
    )
    holdings.add_argument(
        "holder", nargs="?", metavar="PARTICIPANT", help="whose holdings (default: your own)"
    )
    add_client_flags(holdings, as_of=True)
    holdings.set_defaults(handler=show_holdings)

    holders = verbs.add_parser(
        "holders",
        help="who holds an instrument (issuer, registrar, regulator; others see their own row)",
    )
    holders.add_argument("isin", metavar="ISIN")
    add_client_flags(holders, as_of=True)
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
    add_client_flags(history, as_of=True)
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
    return submit(options, client, "asset.transfer", args, describe=_requested, currency=currency)


def _requested(receipt: TxReceipt) -> tuple[dict[str, Any], list[str]]:
    event = receipt.event("asset.requested")
    if event is None:
        return {}, []
    attrs = event.attrs
    request_id = attrs.get("request_id")
    return {"request_id": request_id, "counterparty": attrs.get("counterparty")}, [
        f"  request {request_id}",
        f"  waiting for {attrs.get('counterparty')} to sign by {attrs.get('expires')}: "
        f"ibledger asset sign {request_id}",
    ]


def _signed(receipt: TxReceipt) -> tuple[dict[str, Any], list[str]]:
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
    return submit(options, client, "asset.pledge", args, describe=_requested, currency=currency)


def _request_id(text: str) -> str:
    if REQUEST_ID.fullmatch(text) is None:
        raise usage(
            "BAD_ARGUMENT",
            f"REQUEST_ID {text!r} is not a request id (hex, as printed by 'asset transfer')",
        )
    return text


def _pending_request_id(client: Client, isin: str, operation: str) -> str:
    """The one request pending on ``isin`` that the sender may answer (or, to revoke, made)."""
    party = "initiator" if operation == "asset.revoke" else "counterparty"
    rows = [
        row
        for row in client.query("asset_requests", {"participant": client.sender})
        if row["isin"] == isin and row[party] == client.sender
    ]
    if not rows:
        raise usage("NO_PENDING_REQUEST", f"no request on {isin} is waiting for {client.sender}")
    if len(rows) > 1:
        ids = ", ".join(str(row["id"]) for row in rows)
        raise usage(
            "REQUEST_ID_REQUIRED", f"several requests on {isin} are pending ({ids}); name one"
        )
    return str(rows[0]["id"])


def _answer_handler(operation: str) -> Callable[[argparse.Namespace], int]:
    @with_client(identity=True)
    def run(options: argparse.Namespace, client: Client) -> int:
        if (options.request_id is None) == (options.isin is None):
            raise usage("BAD_ARGUMENT", "name the request: REQUEST_ID or --isin ISIN")
        if options.request_id is not None:
            request_id = _request_id(options.request_id)
        else:
            request_id = _pending_request_id(client, options.isin, operation)
        args: dict[str, Any] = {"request_id": request_id}
        if getattr(options, "reason", None):
            args["reason"] = options.reason
        describe = _signed if operation == "asset.sign" else None
        return submit(options, client, operation, args, describe=describe)

    return run


def _request_row(row: dict[str, Any], currencies: dict[str, str]) -> dict[str, Any]:
    record: dict[str, Any] = renamed(row, ID_KEY)
    if row["isin"] in currencies:
        record["currency"] = currencies[row["isin"]]
    return record


@with_client(identity=True)
def pending_requests(options: argparse.Namespace, client: Client) -> int:
    participant = options.participant or client.sender
    answer = client.query("asset_requests", {"participant": participant})
    currencies = {row["isin"]: row["currency"] for row in client.query("instruments")}
    rows = [_request_row(row, currencies) for row in answer]
    shown = [
        row | {"quantity": show_amount(row["quantity"], row.get("currency", ""))} for row in rows
    ]
    text = table(
        shown,
        [
            ("request_id", "REQUEST"),
            ("action", "ACTION"),
            ("isin", "ISIN"),
            ("quantity", "QUANTITY"),
            ("holder", "HOLDER"),
            ("counterparty", "TO ANSWER"),
            ("expires_day", "EXPIRES"),
        ],
    )
    emit(options, {"participant": participant, "requests": rows}, text)
    return 0


@with_client(identity=True)
def show_request(options: argparse.Namespace, client: Client) -> int:
    request_id = _request_id(options.request_id)
    answer = client.query("asset_request", {"request_id": request_id})
    record = _request_row(answer, {answer["isin"]: _currency(client, answer["isin"])})
    emit(options, record, "\n".join(render(record)), currency=record.get("currency"))
    return 0


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
                for name in ("available", "pledged", "frozen", "reserved", "quantity")
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
            ("reserved", "RESERVED"),
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
    and freezes (keyed by case reference) as lists of objects that name the key. What its
    ``reserved`` part is reserved for is listed by 'asset requests'."""
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
