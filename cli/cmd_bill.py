"""``ibledger bill``: electronic commercial bills (电子商业汇票), from issue to payment.

Most bill actions take two signatures, as on the national bill system: one party *requests*
(e.g. the holder endorses to a new holder) and the counterparty *signs* (签收) or *rejects* (驳回)
the request; until then the bill is locked, and the requester may *revoke* (撤回) it. Each
request command prints a request id; the counterparty answers with

    ibledger bill sign REQUEST_ID        (or: ibledger bill sign --bill PACKAGE_NO)
    ibledger bill reject REQUEST_ID --reason "..."

A typical life: the drawer (出票人) issues the bill and asks the acceptor to accept it
(request-acceptance, the acceptor signs), then delivers it to the payee (request-receipt, the
payee signs); the holder endorses, discounts or pledges it; at maturity the holder presents it
for payment (present, the acceptor signs = pays) or, if payment is refused, claims recourse.

Amounts are in yuan as written on the bill ("1200000.00"); a splittable bill (等分化票据) can move
part of its amount with --amount, which splits off a sub-bill interval (子票区间, e.g.
1-60000000). Dates are YYYY-MM-DD; rates are annual percentages ("2.35").
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ibledger.contracts.vocabulary import BillKind, GuaranteeCapacity, RecourseGround, values

from .client import Client, TxReceipt
from .client_options import (
    add_client_flags,
    amount_arg,
    date_arg,
    history_lines,
    rate_arg,
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

# The record's own "id", as the JSON output names it (cli.convention).
ID_KEY = {"id": "request_id"}

# The contracts' vocabularies, so that argument choices never drift from what they accept.
KINDS = values(BillKind)
CAPACITIES = values(GuaranteeCapacity)
RECOURSE_GROUNDS = values(RecourseGround)


@dataclass(frozen=True)
class RequestCommand:
    """A two-step action: the flags it reads and the contract arguments they become."""

    verb: str
    operation: str
    help: str
    partial: bool  # may move part of a splittable bill (--amount)
    flags: Callable[[argparse.ArgumentParser], None]
    read: Callable[[argparse.Namespace], dict[str, Any]]


def _none(parser: argparse.ArgumentParser) -> None:
    return None


def _no_args(options: argparse.Namespace) -> dict[str, Any]:
    return {}


def _trade_flags(
    counterparty: str, what: str, *, repo: str
) -> Callable[[argparse.ArgumentParser], None]:
    """Flags of the discount family; ``repo`` is "never", "optional" or "always"."""

    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            f"--{counterparty.replace('_', '-')}",
            dest="counterparty",
            required=True,
            metavar="PARTICIPANT",
            help=what,
        )
        parser.set_defaults(counterparty_flag=f"--{counterparty.replace('_', '-')}")
        parser.add_argument(
            "--rate", required=True, metavar="PERCENT", help="annual rate in percent, e.g. 2.35"
        )
        if repo != "never":
            parser.add_argument(
                "--end-date",
                required=repo == "always",
                metavar="YYYY-MM-DD",
                help="repo end date: the bill is sold back (redeemed) then"
                + ("" if repo == "always" else "; gives a repo-type instead of an outright trade"),
            )

    return add


def _trade_args(counterparty: str, *, repo: str) -> Callable[[argparse.Namespace], dict[str, Any]]:
    def read(options: argparse.Namespace) -> dict[str, Any]:
        args: dict[str, Any] = {
            counterparty: options.counterparty,
            "rate_ppm": rate_arg(options.rate),
        }
        end = getattr(options, "end_date", None)
        if end is not None:
            args["end_date"] = date_arg(end, "--end-date")
            args["mode"] = "repo"
        elif repo == "optional":
            args["mode"] = "outright"
        return args

    return read


def _endorse_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, metavar="PARTICIPANT", help="the endorsee")
    parser.add_argument(
        "--non-transferable",
        action="store_true",
        help="mark the bill not transferable (不得转让) by the endorsee",
    )


def _endorse_args(options: argparse.Namespace) -> dict[str, Any]:
    args: dict[str, Any] = {"endorsee": options.to}
    if options.non_transferable:
        args["non_transferable"] = True
    return args


def _pledge_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pledgee", required=True, metavar="PARTICIPANT")


def _guarantee_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--guarantor", required=True, metavar="PARTICIPANT")
    parser.add_argument(
        "--capacity",
        required=True,
        choices=CAPACITIES,
        help="whose obligation is guaranteed: DRAWER, ACCEPTOR or ENDORSER (the holder)",
    )


def _recourse_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recoursee",
        required=True,
        metavar="PARTICIPANT",
        help="the liable party claimed against (see 'bill recourse-parties')",
    )
    parser.add_argument(
        "--ground",
        choices=RECOURSE_GROUNDS,
        default="REFUSAL",
        help="REFUSAL of payment (default), or a ground for recourse before maturity",
    )
    parser.add_argument("--interest", metavar="AMOUNT", help="interest claimed, in yuan")
    parser.add_argument("--costs", metavar="AMOUNT", help="costs claimed, in yuan")


def _recourse_args(options: argparse.Namespace) -> dict[str, Any]:
    args: dict[str, Any] = {"recoursee": options.recoursee, "ground": options.ground}
    if options.interest is not None:
        args["interest_fen"] = amount_arg(options.interest, "--interest", allow_zero=True)
    if options.costs is not None:
        args["costs_fen"] = amount_arg(options.costs, "--costs", allow_zero=True)
    return args


REQUESTS: tuple[RequestCommand, ...] = (
    RequestCommand(
        "request-acceptance",
        "bill.request_acceptance",
        "drawer: ask the acceptor to accept the bill (提示承兑)",
        False,
        _none,
        _no_args,
    ),
    RequestCommand(
        "request-receipt",
        "bill.request_receipt",
        "drawer: deliver the accepted bill to the payee (提示收票)",
        False,
        _none,
        _no_args,
    ),
    RequestCommand(
        "endorse",
        "bill.endorse",
        "holder: endorse the bill to a new holder (背书转让)",
        True,
        _endorse_flags,
        _endorse_args,
    ),
    RequestCommand(
        "discount",
        "bill.discount",
        "enterprise holder: sell the bill to a bank at a discount (贴现)",
        True,
        _trade_flags("discounter", "the discounting bank", repo="optional"),
        _trade_args("discounter", repo="optional"),
    ),
    RequestCommand(
        "rediscount",
        "bill.rediscount",
        "institution holder: sell a discounted bill to another bank (转贴现)",
        True,
        _trade_flags("buyer", "the buying bank", repo="never"),
        _trade_args("buyer", repo="never"),
    ),
    RequestCommand(
        "central-bank-rediscount",
        "bill.central_bank_rediscount",
        "bank: rediscount a discounted bill at the central bank (再贴现)",
        True,
        _trade_flags("central_bank", "the central bank", repo="optional"),
        _trade_args("central_bank", repo="optional"),
    ),
    RequestCommand(
        "outright-repo",
        "bill.outright_repo",
        "bank: sell the bill under an outright repo (买断式回购)",
        True,
        _trade_flags("counterparty", "the cash-providing bank", repo="always"),
        _trade_args("counterparty", repo="always"),
    ),
    RequestCommand(
        "pledge-repo",
        "bill.pledge_repo",
        "bank: pledge the bill under a pledge-style repo (质押式回购)",
        True,
        _trade_flags("counterparty", "the cash-providing bank", repo="always"),
        _trade_args("counterparty", repo="always"),
    ),
    RequestCommand(
        "pledge",
        "bill.pledge",
        "holder: pledge the bill to a pledgee (质押)",
        True,
        _pledge_flags,
        lambda options: {"pledgee": options.pledgee},
    ),
    RequestCommand(
        "release-pledge",
        "bill.release_pledge",
        "pledgee: give the pledged bill back to the holder (解除质押)",
        False,
        _none,
        _no_args,
    ),
    RequestCommand(
        "redeem",
        "bill.redeem",
        "repo seller: buy the bill back at the repo end date (回购赎回)",
        False,
        _none,
        _no_args,
    ),
    RequestCommand(
        "guarantee",
        "bill.guarantee",
        "drawer, acceptor or holder: ask a guarantor to guarantee the bill (保证)",
        False,
        _guarantee_flags,
        lambda options: {"guarantor": options.guarantor, "capacity": options.capacity},
    ),
    RequestCommand(
        "revoke-nt",
        "bill.revoke_nt",
        "holder: ask whoever marked the bill not transferable to lift the mark (撤销不得转让)",
        False,
        _none,
        _no_args,
    ),
    RequestCommand(
        "present",
        "bill.present",
        "holder (or pledgee): present the bill to the acceptor for payment (提示付款)",
        True,
        _none,
        _no_args,
    ),
    RequestCommand(
        "recourse",
        "bill.recourse",
        "holder: claim payment from a liable party after refusal (追索)",
        True,
        _recourse_flags,
        _recourse_args,
    ),
)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "bill",
        help="electronic commercial bills: issue, accept, endorse, discount, pledge, pay",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = subcommands(parser)

    issue = verbs.add_parser(
        "issue",
        help="drawer (enterprise): issue a new bill (出票)",
        description="Issue a bill package. PACKAGE_NO is the 30-digit bill number: kind digit "
        "(5/6 new bank/commercial acceptance), the 12-digit CNAPS code, today's date YYYYMMDD, "
        "an 8-digit sequence and a check digit. Next: 'ibledger bill request-acceptance "
        "PACKAGE_NO'.",
    )
    issue.add_argument("package_no", metavar="PACKAGE_NO")
    issue.add_argument(
        "--kind",
        required=True,
        choices=KINDS,
        help="BANK or FINANCE (bank acceptance) or COMMERCIAL acceptance",
    )
    issue.add_argument(
        "--amount", required=True, metavar="AMOUNT", help="face amount in yuan, e.g. 1200000.00"
    )
    issue.add_argument("--maturity-date", required=True, metavar="YYYY-MM-DD")
    issue.add_argument("--acceptor", required=True, metavar="PARTICIPANT")
    issue.add_argument("--payee", required=True, metavar="PARTICIPANT")
    issue.add_argument(
        "--splittable",
        action="store_true",
        help="allow the bill to be split into sub-bill intervals (等分化)",
    )
    issue.add_argument(
        "--non-transferable", action="store_true", help="mark the bill not transferable (不得转让)"
    )
    issue.add_argument("--currency", default="CNY", help=argparse.SUPPRESS)
    add_client_flags(issue, transaction=True)
    issue.set_defaults(handler=issue_bill)

    for request in REQUESTS:
        sub = verbs.add_parser(
            request.verb,
            help=request.help,
            description=request.help[0].upper() + request.help[1:] + ". The "
            "counterparty answers with 'ibledger bill sign REQUEST_ID' or "
            "'ibledger bill reject REQUEST_ID'.",
        )
        _piece_flags(sub, partial=request.partial)
        request.flags(sub)
        add_client_flags(sub, transaction=True)
        sub.set_defaults(handler=_request_handler(request))

    for verb, operation, text in (
        ("sign", "bill.sign", "counterparty: sign (签收) a pending request"),
        ("reject", "bill.reject", "counterparty: reject (驳回) a pending request"),
        ("revoke", "bill.revoke", "requester: withdraw (撤回) your own pending request"),
        (
            "clear-request",
            "bill.clear_request",
            "operator or a party: clear a request that expired unanswered",
        ),
        (
            "settle-confirm",
            "bill.settle_confirm",
            "settlement agent: confirm the cash leg of a signed DVP request (the piece moves)",
        ),
        (
            "settle-fail",
            "bill.settle_fail",
            "settlement agent: fail the cash leg of a signed DVP request (the piece is restored)",
        ),
    ):
        sub = verbs.add_parser(
            verb,
            help=text,
            description=text[0].upper() + text[1:] + ". Name the request by its id, or by the "
            "bill (and --range) it is pending on.",
        )
        sub.add_argument("request_id", nargs="?", metavar="REQUEST_ID")
        sub.add_argument(
            "--bill", metavar="PACKAGE_NO", help="answer the request pending on this bill instead"
        )
        sub.add_argument(
            "--range", metavar="RANGE", help="with --bill: the sub-bill interval, e.g. 1-60000000"
        )
        if verb in ("reject", "settle-fail"):
            sub.add_argument("--reason", help="why (shown to the requester)")
        add_client_flags(sub, transaction=True)
        sub.set_defaults(handler=_answer_handler(operation))

    for verb, operation, text in (
        ("withdraw", "bill.withdraw", "drawer: withdraw a bill the payee has not received"),
        (
            "cleanup",
            "bill.cleanup",
            "acceptor or operator: clean up a bill the payee never received",
        ),
    ):
        sub = verbs.add_parser(verb, help=text)
        _piece_flags(sub, partial=False)
        add_client_flags(sub, transaction=True)
        sub.set_defaults(handler=_unilateral_handler(operation))

    disclose = verbs.add_parser(
        "disclose", help="acceptor: disclose a commercial acceptance (承兑信息披露)"
    )
    disclose.add_argument("package_no", metavar="PACKAGE_NO")
    add_client_flags(disclose, transaction=True)
    disclose.set_defaults(handler=_package_handler("bill.disclose"))

    sweep = verbs.add_parser(
        "sweep", help="apply what the calendar made due (maturity, expired requests)"
    )
    sweep.add_argument("package_no", metavar="PACKAGE_NO")
    add_client_flags(sweep, transaction=True)
    sweep.set_defaults(handler=_package_handler("bill.sweep"))

    for verb, operation, text in (
        ("freeze", "bill.freeze", "authority: freeze a bill under a case reference (冻结)"),
        ("unfreeze", "bill.unfreeze", "authority: lift the freeze of a case (解冻)"),
    ):
        sub = verbs.add_parser(verb, help=text)
        _piece_flags(sub, partial=False)
        sub.add_argument("--case", required=True, metavar="REF", help="case reference")
        add_client_flags(sub, transaction=True)
        sub.set_defaults(handler=_freeze_handler(operation))

    show = verbs.add_parser("show", help="show a bill: parties, amount, dates, its pieces")
    show.add_argument("package_no", metavar="PACKAGE_NO")
    add_client_flags(show, as_of=True)
    show.set_defaults(handler=_read_handler("bill"))

    chain = verbs.add_parser("chain", help="show a bill with its full endorsement chain")
    chain.add_argument("package_no", metavar="PACKAGE_NO")
    add_client_flags(chain, as_of=True)
    chain.set_defaults(handler=_read_handler("bill_chain"))

    history = verbs.add_parser("history", help="everything that happened to a bill")
    history.add_argument("package_no", metavar="PACKAGE_NO")
    history.add_argument(
        "--from",
        dest="from_height",
        type=int,
        metavar="H",
        help="only entries from block height H on",
    )
    add_client_flags(history, as_of=True)
    history.set_defaults(handler=bill_history)

    dates = verbs.add_parser(
        "dates", help="a bill's key dates: maturity, end of presentment, rights expiry"
    )
    dates.add_argument("package_no", metavar="PACKAGE_NO")
    add_client_flags(dates, as_of=True)
    dates.set_defaults(handler=bill_dates)

    listing = verbs.add_parser("list", help="the bills a participant is involved in")
    listing.add_argument(
        "participant", nargs="?", metavar="PARTICIPANT", help="whose bills (default: your own)"
    )
    add_client_flags(listing, as_of=True)
    listing.set_defaults(handler=list_bills)

    pending = verbs.add_parser("requests", help="pending requests you made or must answer (待签收)")
    pending.add_argument(
        "participant", nargs="?", metavar="PARTICIPANT", help="whose requests (default: your own)"
    )
    add_client_flags(pending, as_of=True)
    pending.set_defaults(handler=pending_requests)

    request = verbs.add_parser("request", help="show one request")
    request.add_argument("request_id", metavar="REQUEST_ID")
    add_client_flags(request, as_of=True)
    request.set_defaults(handler=show_request)

    parties = verbs.add_parser(
        "recourse-parties", help="who the holder of a piece may claim recourse against"
    )
    parties.add_argument("package_no", metavar="PACKAGE_NO")
    parties.add_argument(
        "--range",
        required=True,
        metavar="RANGE",
        help="the sub-bill interval, or 0 for a non-splittable bill",
    )
    add_client_flags(parties, as_of=True)
    parties.set_defaults(handler=recourse_parties)


def _piece_flags(parser: argparse.ArgumentParser, *, partial: bool) -> None:
    parser.add_argument("package_no", metavar="PACKAGE_NO")
    parser.add_argument(
        "--range",
        metavar="RANGE",
        help="which sub-bill interval, e.g. 1-60000000 (needed once a bill has been split)",
    )
    if partial:
        parser.add_argument(
            "--amount",
            metavar="AMOUNT",
            help="move only this much (yuan) of a splittable bill: the piece is "
            "split and the low end moves",
        )


def _piece_args(options: argparse.Namespace) -> dict[str, Any]:
    args: dict[str, Any] = {"package_no": options.package_no}
    if options.range is not None:
        args["range"] = options.range
    if getattr(options, "amount", None) is not None:
        args["amount_fen"] = amount_arg(options.amount, "--amount")
    return args


def _requested(receipt: TxReceipt) -> tuple[dict[str, Any], list[str]]:
    event = receipt.event("bill.requested")
    if event is None:
        return {}, []
    attrs = event.attrs
    request_id = attrs.get("request_id")
    return {"request_id": request_id, "counterparty": attrs.get("counterparty")}, [
        f"  request {request_id}",
        f"  waiting for {attrs.get('counterparty')} to sign by {attrs.get('expires')}: "
        f"ibledger bill sign {request_id}",
    ]


@with_client(identity=True)
def issue_bill(options: argparse.Namespace, client: Client) -> int:
    amount_arg(options.amount, "--amount", options.currency, code="BILL_AMOUNT_INVALID")
    args: dict[str, Any] = {
        "package_no": options.package_no,
        "kind": options.kind,
        "amount": options.amount,
        "currency": options.currency,
        "maturity_date": date_arg(options.maturity_date, "--maturity-date"),
        "acceptor": options.acceptor,
        "payee": options.payee,
    }
    if options.splittable:
        args["splittable"] = True
    if options.non_transferable:
        args["non_transferable"] = True

    def describe(receipt: TxReceipt) -> tuple[dict[str, Any], list[str]]:
        return {"package_no": options.package_no}, [
            f"  next: ibledger bill request-acceptance {options.package_no}"
        ]

    return submit(options, client, "bill.issue", args, describe=describe)


def _request_handler(request: RequestCommand) -> Callable[[argparse.Namespace], int]:
    @with_client(identity=True)
    def run(options: argparse.Namespace, client: Client) -> int:
        args = _piece_args(options) | request.read(options)
        return submit(options, client, request.operation, args, describe=_requested)

    return run


def _pending_request_id(client: Client, package_no: str, range_text: str | None) -> str:
    bill = client.query("bill", {"package_no": package_no})
    pieces = [
        piece
        for piece in bill["pieces"]
        if piece.get("request") and (range_text is None or piece["range"] == range_text)
    ]
    if not pieces:
        where = f" on range {range_text}" if range_text else ""
        raise usage("NO_PENDING_REQUEST", f"no request is pending on bill {package_no}{where}")
    if len(pieces) > 1:
        ranges = ", ".join(piece["range"] for piece in pieces)
        raise usage(
            "RANGE_REQUIRED", f"requests are pending on several pieces ({ranges}); pass --range"
        )
    return str(pieces[0]["request"])


def _answer_handler(operation: str) -> Callable[[argparse.Namespace], int]:
    @with_client(identity=True)
    def run(options: argparse.Namespace, client: Client) -> int:
        if (options.request_id is None) == (options.bill is None):
            raise usage("BAD_ARGUMENT", "name the request: REQUEST_ID or --bill PACKAGE_NO")
        request_id = options.request_id or _pending_request_id(client, options.bill, options.range)
        args: dict[str, Any] = {"request_id": request_id}
        if getattr(options, "reason", None):
            args["reason"] = options.reason
        return submit(options, client, operation, args)

    return run


def _unilateral_handler(operation: str) -> Callable[[argparse.Namespace], int]:
    @with_client(identity=True)
    def run(options: argparse.Namespace, client: Client) -> int:
        return submit(options, client, operation, _piece_args(options))

    return run


def _package_handler(operation: str) -> Callable[[argparse.Namespace], int]:
    @with_client(identity=True)
    def run(options: argparse.Namespace, client: Client) -> int:
        return submit(options, client, operation, {"package_no": options.package_no})

    return run


def _freeze_handler(operation: str) -> Callable[[argparse.Namespace], int]:
    @with_client(identity=True)
    def run(options: argparse.Namespace, client: Client) -> int:
        args = _piece_args(options) | {"case_ref": options.case}
        return submit(options, client, operation, args)

    return run


def bill_text(bill: dict[str, Any]) -> str:
    lines = [
        f"bill {bill['package_no']}  {bill['kind']} acceptance  "
        f"{show_amount(bill['amount_fen'])} {bill['currency']}"
        + ("  splittable" if bill.get("splittable") else ""),
        f"  drawer {bill['drawer']}  acceptor {bill['acceptor']}  payee {bill['payee']}",
        f"  issued {bill['issue_date']}  accepted {bill.get('acceptance_date') or '-'}  "
        f"matures {bill['maturity_date']}",
    ]
    if bill.get("viewer_capacities"):
        lines.append(f"  you are: {', '.join(bill['viewer_capacities'])}")
    rows = [
        piece
        | {
            "amount": show_amount(piece["amount_fen"]),
            "state": f"{piece['status']} ({piece['status_code']})",
            "flag_text": f"{piece['flag']} ({piece['flag_code']})",
            "pending": piece.get("request") or "-",
        }
        for piece in bill["pieces"]
    ]
    lines.append(
        table(
            rows,
            [
                ("range", "RANGE"),
                ("amount", "AMOUNT"),
                ("state", "STATUS"),
                ("flag_text", "FLAG"),
                ("holder", "HOLDER"),
                ("pending", "PENDING REQUEST"),
            ],
        )
    )
    for piece in bill["pieces"]:
        if piece.get("frozen"):
            lines.append(
                f"  piece {piece['range']} is frozen under case {piece['frozen']['case_ref']}"
            )
        for entry in piece.get("chain", []):
            amount = show_amount(entry["amount_fen"]) if "amount_fen" in entry else ""
            lines.append(
                f"  {piece['range']} #{entry['seq']} {entry['day']} {entry['type']}: "
                f"{entry.get('from') or '-'} -> {entry.get('to') or '-'} {amount}".rstrip()
            )
    return "\n".join(lines)


def _read_handler(query: str) -> Callable[[argparse.Namespace], int]:
    @with_client(identity=True)
    def run(options: argparse.Namespace, client: Client) -> int:
        bill = client.query(query, {"package_no": options.package_no})
        text = bill_text(bill)
        if bill.get("history"):
            text += "\nhistory:\n" + history_lines(bill["history"])
        emit(options, bill, text)
        return 0

    return run


@with_client(identity=True)
def bill_history(options: argparse.Namespace, client: Client) -> int:
    args: dict[str, Any] = {"package_no": options.package_no}
    if options.from_height is not None:
        args["from_height"] = options.from_height
    entries = client.query("bill_history", args)
    emit(options, {"package_no": options.package_no, "history": entries}, history_lines(entries))
    return 0


@with_client(identity=True)
def bill_dates(options: argparse.Namespace, client: Client) -> int:
    dates = client.query("bill_dates", {"package_no": options.package_no})
    emit(options, dates, "\n".join(render(dates)))
    return 0


@with_client(identity=True)
def list_bills(options: argparse.Namespace, client: Client) -> int:
    participant = options.participant or client.sender
    rows = client.query("bills", {"participant": participant})
    emit(
        options,
        {"participant": participant, "bills": rows},
        table(rows, [("package_no", "PACKAGE NO"), ("capacities", "CAPACITIES")]),
    )
    return 0


@with_client(identity=True)
def pending_requests(options: argparse.Namespace, client: Client) -> int:
    participant = options.participant or client.sender
    rows = [
        renamed(row, ID_KEY)
        for row in client.query("pending_requests", {"participant": participant})
    ]
    shown = [
        row | {"range": "0" if row["start"] == 0 else f"{row['start']}-{row['end']}"}
        for row in rows
    ]
    text = table(
        shown,
        [
            ("request_id", "REQUEST"),
            ("action", "ACTION"),
            ("package_no", "PACKAGE NO"),
            ("range", "RANGE"),
            ("initiator", "FROM"),
            ("counterparty", "TO ANSWER"),
            ("expires_day", "EXPIRES"),
        ],
    )
    emit(options, {"participant": participant, "requests": rows}, text)
    return 0


@with_client(identity=True)
def show_request(options: argparse.Namespace, client: Client) -> int:
    record = renamed(client.query("request", {"request_id": options.request_id}), ID_KEY)
    emit(options, record, "\n".join(render(record)))
    return 0


@with_client(identity=True)
def recourse_parties(options: argparse.Namespace, client: Client) -> int:
    answer = client.query(
        "recourse_parties", {"package_no": options.package_no, "range": options.range}
    )
    # The ledger maps each liable party to its capacity; JSON lists them as objects.
    parties = answer.get("parties") or {}
    shown = answer | {
        "parties": [
            {"participant": party, "capacity": capacity} for party, capacity in parties.items()
        ]
    }
    emit(options, shown, "\n".join(render(answer)))
    return 0
