"""The client commands of the ``ibledger`` CLI against a fake node: output with and without
--json, exit statuses, input checks before signing, and whole bill and asset workflows."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import grpc

from ibledger.contracts.testing import fabricate_uscc
from ibledger.node.crypto import generate_keypair, public_key_pem, write_private_key

from .conftest import CliResult, Network, package_no

ISIN = "CND10006PJH0"
Cli = Any


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, (result.code, result.out, result.err)
    return result


def _later(
    network: Network, operation: str, args: dict[str, Any], identity: str = "ADMIN"
) -> threading.Timer:
    """Submit a transaction from another thread shortly (while a command follows the chain);
    callers follow from a known height, so the order of the two never matters."""

    def run() -> None:
        with network.client(identity) as client:
            client.submit(operation, args)

    timer = threading.Timer(0.3, run)
    timer.start()
    return timer


def _register_bond(cli: Cli) -> None:
    ok(
        cli(
            "asset",
            "register",
            ISIN,
            "--as",
            "CSDC",
            "--name",
            "Treasury bond 230015",
            "--issuer-lei",
            "5493002ERZU2K9PZDL40",
            "--cfi",
            "DBFTFB",
            "--denomination",
            "100.00",
            "--issue-size",
            "10000000.00",
            "--issue-date",
            "2026-03-02",
            "--maturity-date",
            "2029-03-02",
            "--local-code",
            "CFETS_BOND:230015",
        )
    )


# --- status, errors, exit statuses ------------------------------------------------------------


def test_status_prints_height_view_primary(cli: Cli, network: Network) -> None:
    data = ok(cli("status", "--json")).json()
    assert (data["height"], data["view"], data["primary_node_id"]) == (0, 0, "v0")
    assert data["chain_id"] == network.ledger.chain_id and len(data["peers"]) == 3
    text = ok(cli("status")).out
    assert "height 0  view 0  primary v0" in text and "peers:" in text


def test_status_all_marks_unreachable_nodes(cli: Cli, network: Network, unused_port: int) -> None:
    network.write_manifest([network.address, f"127.0.0.1:{unused_port}"])
    data = ok(cli("status", "--all", "--json")).json()
    assert [row["up"] for row in data["nodes"]] == [True, False]
    assert data["nodes"][1]["code"] == "UNAVAILABLE"


def test_unreachable_node_exits_3_and_deadline_exits_4(
    cli: Cli, network: Network, unused_port: int
) -> None:
    down = cli("status", "--node", f"127.0.0.1:{unused_port}", "--timeout", "2")
    assert down.code == 3 and down.err.startswith("error: UNAVAILABLE: ")
    network.node.hold = True
    late = cli(
        "tx",
        "submit",
        "asset.suspend",
        "--args",
        f'{{"isin": "{ISIN}"}}',
        "--as",
        "CSDC",
        "--timeout",
        "0.3",
        "--json",
    )
    assert late.code == 4 and late.error()["code"] == "TIMEOUT"  # the node's own code


def test_node_errors_print_code_and_sentence(cli: Cli, network: Network) -> None:
    network.node.fail_next(
        "GetStatus",
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "MEMPOOL_FULL: the mempool holds 10000 transactions",
    )
    text = cli("status")
    assert text.code == 1
    assert text.err.strip() == "error: MEMPOOL_FULL: the mempool holds 10000 transactions"
    network.node.fail_next("GetStatus", grpc.StatusCode.PERMISSION_DENIED, "FORBIDDEN: not for you")
    as_json = cli("status", "--json")
    assert as_json.code == 1
    assert as_json.error() == {"code": "FORBIDDEN", "message": "not for you"}


def test_signed_commands_need_an_identity(cli: Cli, network: Network) -> None:
    missing = cli("asset", "suspend", ISIN)
    assert missing.code == 2 and "NO_IDENTITY" in missing.err and "CSDC" in missing.err
    unknown = cli("asset", "suspend", ISIN, "--as", "NOBODY", "--json")
    assert unknown.code == 2 and unknown.error()["code"] == "UNKNOWN_IDENTITY"
    usage = cli("asset", "transfer", ISIN, "--as", "ICBC")  # argparse: --to, --quantity missing
    assert usage.code == 2 and "required" in usage.err


def test_amounts_are_checked_before_anything_is_signed(cli: Cli, network: Network) -> None:
    _register_bond(cli)
    calls_before = len(network.node.calls)
    fractional = cli(
        "asset", "transfer", ISIN, "--to", "CIB", "--quantity", "1.005", "--as", "ICBC", "--json"
    )
    assert fractional.code == 2
    error = fractional.error()
    assert error["code"] == "AMOUNT_INVALID" and "3 decimals but CNY has 2" in error["message"]
    negative = cli("asset", "transfer", ISIN, "--to", "CIB", "--quantity", "-5.00", "--as", "ICBC")
    assert negative.code == 2 and "error: AMOUNT_INVALID: --quantity:" in negative.err
    grouped = cli(
        "bill",
        "issue",
        package_no(1),
        "--kind",
        "BANK",
        "--amount",
        "1,200,000.00",
        "--maturity-date",
        "2026-08-31",
        "--acceptor",
        "ICBC",
        "--payee",
        "SUPPLIER",
        "--as",
        "HUAWEI",
    )
    assert grouped.code == 2 and "BILL_AMOUNT_INVALID" in grouped.err
    zero = cli(
        "bill", "endorse", package_no(1), "--to", "CIB", "--amount", "0.00", "--as", "SUPPLIER"
    )
    assert zero.code == 2 and "above zero" in zero.err
    bad_date = cli(
        "bill",
        "issue",
        package_no(1),
        "--kind",
        "BANK",
        "--amount",
        "1.00",
        "--maturity-date",
        "2026-02-30",
        "--acceptor",
        "ICBC",
        "--payee",
        "SUPPLIER",
        "--as",
        "HUAWEI",
    )
    assert bad_date.code == 2 and "DATE_INVALID" in bad_date.err
    bad_rate = cli(
        "bill",
        "discount",
        package_no(1),
        "--discounter",
        "SPDB",
        "--rate",
        "2.35%",
        "--as",
        "SUPPLIER",
    )
    assert bad_rate.code == 2 and "RATE_INVALID" in bad_rate.err
    # Only the instrument lookup for the currency reached the node; nothing was submitted.
    assert "Submit" not in network.node.calls[calls_before:]


def test_failed_transactions_exit_1_with_code_tx_and_height(cli: Cli, network: Network) -> None:
    _register_bond(cli)
    text = cli("asset", "suspend", ISIN, "--as", "ICBC")
    assert text.code == 1
    assert text.err.startswith("error: FORBIDDEN: Only CSDC, the registrar of")
    assert "(tx " in text.err and ", height 2)" in text.err
    as_json = cli("asset", "suspend", ISIN, "--as", "ICBC", "--json")
    assert as_json.code == 1
    receipt = as_json.json()  # the failed receipt on stdout, the error on stderr
    assert (receipt["code"], receipt["height"], receipt["ok"]) == ("FORBIDDEN", 3, False)
    assert as_json.error()["code"] == "FORBIDDEN"
    assert receipt["tx_id"] in as_json.error()["message"]


# --- tx and block ---------------------------------------------------------------------------


def test_tx_submit_show_verify_and_no_wait(cli: Cli, network: Network) -> None:
    submitted = ok(
        cli(
            "tx",
            "submit",
            "identity.update_details",
            "--args",
            '{"participant": "CIB", "name": "Industrial Bank"}',
            "--as",
            "ADMIN",
            "--json",
        )
    ).json()
    tx_id = submitted["tx_id"]
    assert submitted["events"][0]["kind"] == "identity.details_updated"
    shown = ok(cli("tx", "show", tx_id, "--verify", "--json")).json()
    assert shown["verification"]["verified"] is True
    assert shown["args"] == {"participant": "CIB", "name": "Industrial Bank"}
    text = ok(cli("tx", "show", tx_id, "--verify")).out
    assert "VERIFIED" in text and "[ok  ] certificate" in text and "+08:00" in text
    floats = cli("tx", "submit", "x.y", "--args", '{"rate": 2.5}', "--as", "ADMIN")
    assert floats.code == 2 and "BAD_JSON" in floats.err
    bad_id = cli("tx", "show", "abc")
    assert bad_id.code == 2 and "BAD_TX_ID" in bad_id.err
    unknown = cli("tx", "show", "00" * 32, "--json")
    assert unknown.code == 1 and unknown.error()["code"] == "NOT_FOUND"

    network.node.hold = True
    admitted = ok(
        cli(
            "tx",
            "submit",
            "identity.update_details",
            "--args",
            '{"participant": "CIB", "name": "CIB"}',
            "--as",
            "ADMIN",
            "--no-wait",
            "--json",
        )
    ).json()
    assert admitted["status"] == "ADMITTED"
    threading.Timer(0.2, network.node.release).start()
    waited = ok(cli("tx", "wait", admitted["tx_id"], "--json")).json()
    assert waited["height"] == 2 and waited["code"] == "OK"


def test_tx_show_verify_rejects_a_lying_node(cli: Cli, network: Network) -> None:
    tx_id = ok(
        cli(
            "tx",
            "submit",
            "identity.update_details",
            "--args",
            '{"participant": "CIB", "name": "x"}',
            "--as",
            "ADMIN",
            "--json",
        )
    ).json()["tx_id"]
    real = network.ledger.get_receipt(bytes.fromhex(tx_id))
    assert real is not None
    # The node now serves blocks whose certificates were signed by strangers' keys.
    network.node.validators = {rid: generate_keypair() for rid in network.validator_keys}
    other = ok(
        cli(
            "tx",
            "submit",
            "identity.update_details",
            "--args",
            '{"participant": "CIB", "name": "y"}',
            "--as",
            "ADMIN",
            "--json",
        )
    ).json()
    result = cli("tx", "show", other["tx_id"], "--verify")
    assert result.code == 1 and "NOT VERIFIED" in result.out
    assert "error: VERIFICATION_FAILED:" in result.err and "certificate" in result.err
    assert ok(cli("tx", "show", tx_id, "--verify"))  # the earlier block is still good


def test_block_show_and_tail(cli: Cli, network: Network) -> None:
    _register_bond(cli)
    shown = ok(cli("block", "show", "1", "--verify", "--json")).json()
    assert shown["transactions"][0]["operation"] == "asset.register"
    assert shown["verification"]["verified"] is True
    assert "asset.register" in ok(cli("block", "show", "1")).out
    missing = cli("block", "show", "99")
    assert missing.code == 1 and "NOT_FOUND" in missing.err
    lines = ok(cli("block", "tail", "--from", "0", "--count", "2", "--json")).out.splitlines()
    assert [json.loads(line)["height"] for line in lines] == [0, 1]
    # Without --follow a tail stops at the tip.
    lines = ok(cli("block", "tail", "--from", "0", "--json")).out.splitlines()
    assert [json.loads(line)["height"] for line in lines] == [0, 1]
    later = _later(network, "identity.update_details", {"participant": "CIB", "name": "CIB"})
    # From the bond's block, so the new block is followed whether it commits before or after
    # the command starts (the timer races the command's start-up on a loaded machine).
    followed = ok(cli("block", "tail", "--from", "1", "--follow", "--count", "2")).out
    later.join()
    assert "asset.register by CSDC: OK" in followed
    assert "identity.update_details by ADMIN: OK" in followed


def test_supervise_events_follows_new_events(cli: Cli, network: Network) -> None:
    _register_bond(cli)
    lines = ok(cli("supervise", "events", "--from", "1", "--count", "1", "--json")).out
    assert '"kind": "asset.registered"' in lines
    # Without --follow the events up to the current height are printed, then the command ends.
    upto = ok(cli("supervise", "events", "--json")).out.splitlines()
    assert [json.loads(line)["kind"] for line in upto] == ["asset.registered"]
    later = _later(network, "identity.update_details", {"participant": "CIB", "name": "CIB"})
    text = ok(
        cli(
            "supervise",
            "events",
            "--from",
            "1",
            "--follow",
            "--kind",
            "identity.details_updated",
            "--count",
            "1",
        )
    ).out
    later.join()
    assert 'identity.details_updated: fields=["name"] participant=CIB' in text


# --- participants ---------------------------------------------------------------------------


def test_participant_register_show_and_own_key_management(
    cli: Cli, network: Network, tmp_path: Path
) -> None:
    first, second = generate_keypair(), generate_keypair()
    public_file = tmp_path / "zte.pub.pem"
    public_file.write_bytes(public_key_pem(first.public_key))
    private_file = tmp_path / "zte.key.pem"
    write_private_key(private_file, first)
    uscc = fabricate_uscc(7)
    registered = ok(
        cli(
            "participant",
            "register",
            "ZTE",
            "--name",
            "ZTE Corporation",
            "--role",
            "enterprise",
            "--uscc",
            uscc,
            "--public-key-file",
            str(public_file),
            "--as",
            "ADMIN",
            "--json",
        )
    ).json()
    assert registered["key_ids"] == [first.key_id.hex()]
    shown = ok(
        cli(
            "participant",
            "show",
            "ZTE",
            "--as",
            "ZTE",
            "--key",
            str(private_file),
            "--sender",
            "ZTE",
            "--json",
        )
    ).json()
    assert shown["uscc"] == uscc and shown["roles"] == ["enterprise"]
    listed = ok(cli("participant", "list", "--role", "enterprise", "--as", "ICBC")).out
    assert "ZTE Corporation" in listed and "HUAWEI" in listed
    own = ("--key", str(private_file), "--sender", "ZTE")
    added = ok(
        cli("participant", "add-key", "--public-key", second.public_key.hex(), *own, "--json")
    ).json()
    assert added["key_ids"] == [second.key_id.hex()]
    ok(cli("participant", "revoke-key", second.key_id.hex(), *own))
    again = cli("participant", "revoke-key", second.key_id.hex(), *own)
    assert again.code == 1 and "KEY_ALREADY_REVOKED" in again.err
    lonely = cli("participant", "revoke-key", first.key_id.hex(), *own)
    assert lonely.code == 1 and "KEY_LAST_ACTIVE" in lonely.err
    denied = cli("participant", "deactivate", "ZTE", "--as", "ICBC")
    assert denied.code == 1 and "FORBIDDEN" in denied.err
    no_sender = cli("participant", "show", "ZTE", "--key", str(private_file))
    assert no_sender.code == 2 and "--sender" in no_sender.err


# --- whole workflows ------------------------------------------------------------------------


def test_asset_lifecycle_through_the_cli(cli: Cli, network: Network) -> None:
    _register_bond(cli)
    ok(
        cli(
            "asset",
            "issue",
            ISIN,
            "--allot",
            "ICBC=6000000.00",
            "--allot",
            "CIB=4000000.00",
            "--as",
            "CSDC",
        )
    )
    asked = ok(
        cli(
            "asset",
            "transfer",
            ISIN,
            "--to",
            "CIB",
            "--quantity",
            "500000.00",
            "--as",
            "ICBC",
            "--json",
        )
    ).json()
    request_id = asked["request_id"]
    assert asked["counterparty"] == "CIB"
    pending = ok(cli("asset", "requests", "--as", "CIB", "--json")).json()["requests"]
    assert [(row["request_id"], row["quantity"]["amount"]) for row in pending] == [
        (request_id, "500000.00")
    ]
    reserved = ok(cli("asset", "holdings", "--as", "ICBC", "--json")).json()["holdings"][0]
    assert reserved["reserved"]["amount"] == "500000.00"
    assert "RESERVED" in ok(cli("asset", "holdings", "--as", "ICBC")).out
    shown_request = ok(cli("asset", "request", request_id, "--as", "ICBC", "--json")).json()
    assert shown_request["status"] == "PENDING" and shown_request["action"] == "TRANSFER"
    wrong = cli("asset", "sign", request_id, "--as", "ICBC")
    assert wrong.code == 1 and "SIGNATURE_INVALID" in wrong.err
    assert cli("asset", "sign", "--as", "CIB").code == 2  # neither REQUEST_ID nor --isin
    assert cli("asset", "sign", "not-hex", "--as", "CIB").code == 2
    none = cli("asset", "revoke", "--isin", ISIN, "--as", "CIB")
    assert none.code == 2 and "NO_PENDING_REQUEST" in none.err
    moved = ok(cli("asset", "sign", request_id, "--as", "CIB")).out
    assert "asset.sign" in moved
    again = cli("asset", "sign", request_id, "--as", "CIB")
    assert again.code == 1 and "DUPLICATE_ANSWER" in again.err
    revoked = ok(
        cli(
            "asset",
            "pledge",
            ISIN,
            "--pledgee",
            "SPDB",
            "--quantity",
            "1000000.00",
            "--as",
            "CIB",
        )
    ).out
    assert "ibledger asset sign " in revoked
    ok(cli("asset", "revoke", "--isin", ISIN, "--as", "CIB"))
    ok(
        cli(
            "asset",
            "pledge",
            ISIN,
            "--pledgee",
            "SPDB",
            "--quantity",
            "1000000.00",
            "--as",
            "CIB",
        )
    )
    pledge = ok(cli("asset", "sign", "--isin", ISIN, "--as", "SPDB", "--json")).json()
    pledge_id = pledge["pledge_id"]
    holdings = ok(cli("asset", "holdings", "--as", "CIB", "--json")).json()["holdings"]
    assert holdings[0]["currency"] == "CNY"
    assert holdings[0]["available"] == {
        "amount": "3500000.00",
        "currency": "CNY",
        "amount_minor": 350_000_000,
    }
    assert holdings[0]["pledged"]["amount_minor"] == 100_000_000
    assert [pledge["pledge_id"] for pledge in holdings[0]["pledges"]] == [pledge_id]
    assert "pledge " + pledge_id in ok(cli("asset", "holdings", "--as", "CIB")).out
    ok(cli("asset", "release", ISIN, "--pledgor", "CIB", "--pledge-id", pledge_id, "--as", "SPDB"))
    ok(
        cli(
            "asset",
            "freeze",
            ISIN,
            "--holder",
            "CIB",
            "--quantity",
            "100000.00",
            "--case",
            "COURT-2026-001",
            "--as",
            "REGULATOR",
        )
    )
    too_much = cli(
        "asset", "transfer", ISIN, "--to", "ICBC", "--quantity", "4500000.00", "--as", "CIB"
    )
    assert too_much.code == 1 and "QUANTITY_EXCEEDS_AVAILABLE" in too_much.err
    odd = cli("asset", "transfer", ISIN, "--to", "ICBC", "--quantity", "0.50", "--as", "CIB")
    assert odd.code == 1 and "QUANTITY_INVALID" in odd.err  # the ledger's rule, not ours
    ok(
        cli(
            "asset",
            "unfreeze",
            ISIN,
            "--holder",
            "CIB",
            "--case",
            "COURT-2026-001",
            "--as",
            "REGULATOR",
        )
    )
    holders = ok(cli("asset", "holders", ISIN, "--as", "CSDC", "--json")).json()
    assert {row["holder"]: row["quantity"]["amount"] for row in holders["holders"]} == {
        "CIB": "4500000.00",
        "ICBC": "5500000.00",
    }
    assert holders["outstanding"]["amount_minor"] == 1_000_000_000
    text = ok(cli("asset", "holders", ISIN, "--as", "CSDC")).out
    assert "outstanding 10000000.00 CNY" in text and "5500000.00" in text
    shown = ok(cli("asset", "show", ISIN, "--as", "ICBC")).out
    assert "issue_size_minor: 10000000.00 CNY" in shown and "status: ACTIVE" in shown
    assert ISIN in ok(cli("asset", "list", "--status", "ACTIVE", "--as", "ICBC")).out
    history = ok(cli("asset", "history", ISIN, "--as", "REGULATOR", "--json")).json()["history"]
    assert [entry["kind"] for entry in history] == [
        "asset.registered",
        "asset.issued",
        "asset.requested",
        "asset.transferred",
        "asset.requested",
        "asset.request_revoked",
        "asset.requested",
        "asset.pledged",
        "asset.released",
        "asset.frozen",
        "asset.unfrozen",
    ]
    ok(cli("asset", "redeem", ISIN, "--early", "--as", "CSDC"))
    ok(cli("asset", "deregister", ISIN, "--as", "CSDC"))
    final = ok(
        cli("query", "instrument", "--args", f'{{"isin": "{ISIN}"}}', "--as", "ICBC", "--json")
    ).json()
    assert final["result"]["status"] == "DEREGISTERED"


def _request_id(result: CliResult) -> str:
    data = ok(result).json()
    request_id: str = data["request_id"]
    return request_id


def test_bill_walk_issue_accept_deliver_endorse_discount_pay(cli: Cli, network: Network) -> None:
    bill = package_no(1)
    issued = ok(
        cli(
            "bill",
            "issue",
            bill,
            "--kind",
            "BANK",
            "--amount",
            "1200000.00",
            "--maturity-date",
            "2026-08-31",
            "--acceptor",
            "ICBC",
            "--payee",
            "SUPPLIER",
            "--splittable",
            "--as",
            "HUAWEI",
        )
    ).out
    assert "next: ibledger bill request-acceptance" in issued
    request = _request_id(cli("bill", "request-acceptance", bill, "--as", "HUAWEI", "--json"))
    wrong = cli("bill", "sign", request, "--as", "SUPPLIER")
    assert wrong.code == 1 and "SIGNATURE_INVALID" in wrong.err
    ok(cli("bill", "sign", request, "--as", "ICBC"))
    delivered = ok(cli("bill", "request-receipt", bill, "--as", "HUAWEI")).out
    assert "waiting for SUPPLIER to sign" in delivered
    pending = ok(cli("bill", "requests", "--as", "SUPPLIER", "--json")).json()["requests"]
    assert [row["action"] for row in pending] == ["RECEIPT"]
    ok(cli("bill", "sign", "--bill", bill, "--as", "SUPPLIER"))

    # Endorse 200,000.00 of the 1,200,000.00 to CIB: the bill splits.
    endorse = _request_id(
        cli(
            "bill",
            "endorse",
            bill,
            "--to",
            "CIB",
            "--amount",
            "200000.00",
            "--as",
            "SUPPLIER",
            "--json",
        )
    )
    ok(cli("bill", "sign", endorse, "--as", "CIB"))
    rest = "20000001-120000000"
    # SPDB refuses an endorsement; then SUPPLIER discounts the rest with SPDB at 2.35 %.
    refused = _request_id(
        cli("bill", "endorse", bill, "--range", rest, "--to", "SPDB", "--as", "SUPPLIER", "--json")
    )
    ok(cli("bill", "reject", refused, "--reason", "no credit line", "--as", "SPDB"))
    discount = _request_id(
        cli(
            "bill",
            "discount",
            bill,
            "--range",
            rest,
            "--discounter",
            "SPDB",
            "--rate",
            "2.35",
            "--as",
            "SUPPLIER",
            "--json",
        )
    )
    signed = ok(cli("bill", "sign", discount, "--as", "SPDB", "--json")).json()
    assert signed["events"][0]["kind"] == "bill.discount_signed"

    # Only the holder may act on a piece.
    thief = cli("bill", "endorse", bill, "--range", rest, "--to", "CIB", "--as", "CIB")
    assert thief.code == 1 and "NOT_HOLDER" in thief.err and "height" in thief.err

    # CIB presents its piece early; the acceptor pays.
    present = _request_id(
        cli("bill", "present", bill, "--range", "1-20000000", "--as", "CIB", "--json")
    )
    ok(cli("bill", "sign", present, "--as", "ICBC"))

    view = ok(cli("bill", "show", bill, "--as", "REGULATOR", "--json")).json()
    pieces = {piece["range"]: piece for piece in view["pieces"]}
    assert (pieces["1-20000000"]["status"], pieces["1-20000000"]["paid_to"]) == ("SETTLED", "CIB")
    assert (pieces[rest]["holder"], pieces[rest]["discounted"]) == ("SPDB", True)
    text = ok(cli("bill", "chain", bill, "--as", "SUPPLIER")).out
    assert "1200000.00 CNY" in text and "ENDORSE: SUPPLIER -> CIB 200000.00" in text
    assert "SETTLED (CS06)" in text and "DISCOUNT: SUPPLIER -> SPDB 1000000.00" in text
    kinds = [
        entry["kind"]
        for entry in ok(cli("bill", "history", bill, "--as", "HUAWEI", "--json")).json()["history"]
    ]
    assert kinds[0] == "bill.issued" and "bill.request_rejected" in kinds
    assert kinds[-1] == "bill.present_signed"
    assert (
        ok(cli("bill", "dates", bill, "--as", "CIB", "--json")).json()["maturity_date"]
        == "2026-08-31"
    )
    listed = ok(cli("bill", "list", "--as", "SPDB", "--json")).json()["bills"]
    assert listed[0]["package_no"] == bill
    positions = ok(cli("supervise", "positions", "SPDB", "--as", "REGULATOR", "--json")).json()
    assert positions["totals"]["held"] == {
        "amount": "1000000.00",
        "currency": "CNY",
        "amount_minor": 100_000_000,
    }
    exposures = ok(cli("supervise", "exposures", "--as", "REGULATOR")).out
    assert exposures.splitlines()[1].split() == ["ICBC", "1", "1000000.00", "200000.00", "0"]
    history = ok(cli("supervise", "history", "--bill", bill, "--as", "REGULATOR")).out
    assert "bill.discount_signed by SPDB" in history
    forbidden = cli("supervise", "positions", "SPDB", "--as", "CIB", "--json")
    assert forbidden.code == 1 and forbidden.error()["code"] == "FORBIDDEN"


# --- flags shared by every command ----------------------------------------------------------


def test_every_command_has_help_and_json(cli: Cli) -> None:
    from ibledger.cli.main import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    checked = 0
    for name in ("status", "tx", "block", "participant", "asset", "bill", "query", "supervise"):
        command = commands.choices[name]  # type: ignore[index]
        verbs = [a for a in command._actions if a.dest in ("verb",)]
        parsers = list(verbs[0].choices.values()) if verbs else [command]  # type: ignore[union-attr]
        for sub in parsers:
            assert "--json" in sub.format_help(), sub.prog
            checked += 1
    assert checked > 60
    assert ok(cli("bill", "--help")).out.startswith("usage: ibledger bill")


def test_identity_from_environment_and_node_with_default_manifest(
    cli: Cli, network: Network, monkeypatch: Any
) -> None:
    monkeypatch.setenv("IBLEDGER_AS", "ICBC")
    assert ok(cli("bill", "list", "--json")).json()["participant"] == "ICBC"
    tx_id = ok(
        cli(
            "tx",
            "submit",
            "identity.update_details",
            "--args",
            '{"participant": "CIB", "name": "x"}',
            "--as",
            "ADMIN",
            "--node",
            network.address,
            "--json",
        )
    ).json()["tx_id"]
    # --node alone still finds the genesis (for --verify) in the default network directory.
    verified = ok(cli("tx", "show", tx_id, "--verify", "--node", network.address, "--json"))
    assert verified.json()["verification"]["verified"] is True


def test_every_bill_command_sends_arguments_the_contract_accepts(cli: Cli) -> None:
    """Business rules may refuse these calls, but never as BAD_ARGUMENT (a wrong field name)."""
    bill = package_no(2)
    ok(
        cli(
            "bill",
            "issue",
            bill,
            "--kind",
            "BANK",
            "--amount",
            "1000.00",
            "--maturity-date",
            "2026-08-31",
            "--acceptor",
            "ICBC",
            "--payee",
            "SUPPLIER",
            "--as",
            "HUAWEI",
        )
    )
    calls = [
        ("HUAWEI", "guarantee", bill, "--guarantor", "SPDB", "--capacity", "DRAWER"),
        ("SPDB", "revoke", "--bill", bill),
        ("HUAWEI", "revoke", "--bill", bill),
        ("HUAWEI", "request-acceptance", bill),
        ("ICBC", "reject", "--bill", bill, "--reason", "no"),
        ("HUAWEI", "request-receipt", bill),
        ("SUPPLIER", "clear-request", "--bill", bill),
        (
            "SUPPLIER",
            "discount",
            bill,
            "--discounter",
            "SPDB",
            "--rate",
            "2.5",
            "--end-date",
            "2026-06-30",
            "--amount",
            "10.00",
        ),
        ("SUPPLIER", "rediscount", bill, "--buyer", "SPDB", "--rate", "2"),
        (
            "SUPPLIER",
            "central-bank-rediscount",
            bill,
            "--central-bank",
            "PBOC",
            "--rate",
            "2",
            "--end-date",
            "2026-06-30",
        ),
        (
            "SUPPLIER",
            "outright-repo",
            bill,
            "--counterparty",
            "SPDB",
            "--rate",
            "2",
            "--end-date",
            "2026-06-30",
        ),
        (
            "SUPPLIER",
            "pledge-repo",
            bill,
            "--counterparty",
            "SPDB",
            "--rate",
            "2",
            "--end-date",
            "2026-06-30",
        ),
        ("SUPPLIER", "pledge", bill, "--pledgee", "SPDB"),
        ("SPDB", "release-pledge", bill),
        ("SUPPLIER", "redeem", bill),
        ("SUPPLIER", "revoke-nt", bill),
        ("SUPPLIER", "present", bill, "--amount", "10.00"),
        (
            "SUPPLIER",
            "recourse",
            bill,
            "--recoursee",
            "HUAWEI",
            "--ground",
            "ACCEPTOR_BANKRUPT",
            "--interest",
            "1.00",
            "--costs",
            "0.50",
        ),
        ("HUAWEI", "withdraw", bill),
        ("ICBC", "cleanup", bill),
        ("ICBC", "disclose", bill),
        ("REGULATOR", "freeze", bill, "--case", "C-1"),
        ("REGULATOR", "unfreeze", bill, "--case", "C-1"),
        ("ADMIN", "sweep", bill),
        ("ADMIN", "settle-confirm", "00" * 32),
        ("ADMIN", "settle-fail", "00" * 32, "--reason", "no reserves"),
    ]
    for identity, *argv in calls:
        result = cli("bill", *argv, "--as", identity, "--json")
        assert result.code in (0, 1, 2), (argv, result.err)
        if result.code:
            code = result.error()["code"]
            assert code not in ("BAD_ARGUMENT", "UNKNOWN_OPERATION"), (argv, result.err)


# --- governance -----------------------------------------------------------------------------


def test_identity_changes_to_others_go_through_governance(cli: Cli, network: Network) -> None:
    """The client network has three admins and a quorum of two."""
    key = generate_keypair().public_key.hex()
    refused = cli(
        "participant", "add-key", "--participant", "CIB", "--public-key", key, "--as", "ADMIN"
    )
    assert refused.code == 1 and "GOVERNANCE_REQUIRED" in refused.err
    assert f"ibledger governance propose add-key CIB --public-key {key} --as ADMIN" in refused.err
    denied = cli("participant", "deactivate", "CIB", "--as", "ADMIN", "--json")
    assert denied.code == 1 and denied.error()["code"] == "GOVERNANCE_REQUIRED"
    assert "governance propose deactivate CIB" in denied.error()["message"]

    proposed = ok(
        cli(
            "governance",
            "propose",
            "add-key",
            "CIB",
            "--public-key",
            key,
            "--as",
            "ADMIN",
            "--json",
        )
    ).json()
    proposal = proposed["proposal"]
    assert len(proposal) == 64 and proposed["executed"] is False
    text = ok(cli("governance", "list", "--as", "ICBC")).out
    assert proposal in text and "identity.add_key" in text and "admin quorum 2" in text
    assert len(ok(cli("participant", "show", "CIB", "--as", "CIB", "--json")).json()["keys"]) == 1

    twice = cli("governance", "approve", proposal, "--as", "ADMIN")
    assert twice.code == 1 and "ALREADY_VOTED" in twice.err
    outsider = cli("governance", "approve", proposal, "--as", "ICBC")
    assert outsider.code == 1 and "FORBIDDEN" in outsider.err
    approved = ok(cli("governance", "approve", proposal, "--as", "ADMIN3"))
    assert "executed: identity.add_key for CIB" in approved.out
    assert len(ok(cli("participant", "show", "CIB", "--as", "CIB", "--json")).json()["keys"]) == 2
    shown = ok(cli("governance", "show", proposal, "--as", "ICBC", "--json")).json()
    assert shown["status"] == "executed"
    assert [vote["admin"] for vote in shown["approvals"]] == ["ADMIN", "ADMIN3"]
    listed = ok(cli("governance", "list", "--as", "ICBC", "--json")).json()
    assert listed["proposals"] == [] and listed["admin_quorum"] == 2

    # A proposal withdrawn by its proposer can no longer be approved.
    second = ok(
        cli("governance", "propose", "deactivate", "SUPPLIER", "--as", "ADMIN2", "--json")
    ).json()["proposal"]
    foreign = cli("governance", "withdraw", second, "--as", "ADMIN")
    assert foreign.code == 1 and "FORBIDDEN" in foreign.err
    ok(cli("governance", "withdraw", second, "--as", "ADMIN2"))
    closed = cli("governance", "approve", second, "--as", "ADMIN", "--json")
    assert closed.code == 1 and closed.error()["code"] == "PROPOSAL_CLOSED"
    raised = ok(cli("governance", "propose", "set-quorum", "3", "--as", "ADMIN", "--json")).json()[
        "proposal"
    ]
    approved = ok(cli("governance", "approve", raised, "--as", "ADMIN2"))
    assert "executed: governance.set_admin_quorum\n" in approved.out
    assert ok(cli("governance", "list", "--as", "ICBC", "--json")).json()["admin_quorum"] == 3
    bad_hours = cli(
        "governance", "propose", "deactivate", "CIB", "--expires-in-hours", "0", "--as", "ADMIN"
    )
    assert bad_hours.code == 2 and "--expires-in-hours" in bad_hours.err


def test_supervise_look_through_views_now_and_as_of_a_height(cli: Cli, network: Network) -> None:
    _register_bond(cli)
    issue = ["asset", "issue", ISIN, "--allot", "ICBC=6000000.00", "--allot", "CIB=4000000.00"]
    ok(cli(*issue, "--as", "CSDC"))
    issued = network.ledger.height
    asked = cli(
        "asset",
        "transfer",
        ISIN,
        "--to",
        "CIB",
        "--quantity",
        "6000000.00",
        "--as",
        "ICBC",
        "--json",
    )
    ok(cli("asset", "sign", ok(asked).json()["request_id"], "--as", "CIB"))
    now = ok(cli("supervise", "owners", ISIN, "--as", "REGULATOR", "--json")).json()
    assert [(row["owner"], row["share"]) for row in now["owners"]] == [("CIB", "1")]
    assert now["outstanding"]["amount"] == "10000000.00" and now["as_of_height"] is None
    then = ok(
        cli("supervise", "owners", ISIN, "--height", str(issued), "--as", "REGULATOR", "--json")
    ).json()
    assert then["as_of_height"] == issued
    assert [(row["owner"], row["share"]) for row in then["owners"]] == [
        ("CIB", "2/5"),
        ("ICBC", "3/5"),
    ]
    text = ok(cli("supervise", "owners", ISIN, "--height", str(issued), "--as", "REGULATOR")).out
    assert f"at height {issued}" in text and "ICBC" in text and "600000000" in text
    underlying = ok(cli("supervise", "underlying", "CIB", "--as", "REGULATOR")).out
    assert ISIN in underlying and "1000000000" in underlying
    sums = ok(cli("supervise", "aggregates", "--as", "REGULATOR", "--json")).json()
    assert sums["by_cfi_category"] == [
        {"cfi_category": "D", "currency": "CNY", "quantity_exact": "1000000000"}
    ]
    forbidden = cli("supervise", "owners", ISIN, "--as", "CIB", "--json")
    assert forbidden.code == 1 and forbidden.error()["code"] == "FORBIDDEN"
    negative = cli("supervise", "aggregates", "--height", "-1", "--as", "REGULATOR")
    assert negative.code == 2 and "--height" in negative.err


def test_read_commands_answer_as_of_a_height_with_height(cli: Cli, network: Network) -> None:
    _register_bond(cli)
    query = ("query", "instrument", "--args", f'{{"isin": "{ISIN}"}}', "--as", "ICBC")
    registered = ok(cli(*query, "--json"))
    then = registered.json()["height"]
    shown_then = ok(cli("asset", "show", ISIN, "--as", "ICBC", "--json")).json()
    holders_then = ok(cli("asset", "holders", ISIN, "--as", "CSDC", "--json")).json()
    ok(cli("asset", "issue", ISIN, "--allot", "ICBC=10000000.00", "--as", "CSDC"))
    assert ok(cli("asset", "show", ISIN, "--as", "ICBC", "--json")).json() != shown_then
    as_of = ("--height", str(then))
    assert ok(cli("asset", "show", ISIN, *as_of, "--as", "ICBC", "--json")).json() == shown_then
    assert ok(cli("asset", "holders", ISIN, *as_of, "--as", "CSDC", "--json")).json() == (
        holders_then
    )
    holdings = ok(cli("asset", "holdings", *as_of, "--as", "ICBC", "--json")).json()
    assert holdings["holdings"] == []
    assert ok(cli(*query, *as_of, "--json")).json() == registered.json()
    assert f"height {then}" in ok(cli("supervise", "positions", "ICBC", *as_of, "--as", "ICBC")).out
    before = cli(*query, "--height", "0", "--json")
    assert before.code == 1 and before.error()["code"] == "NOT_FOUND"
    future = cli(*query, "--height", "100000", "--json")
    assert future.code == 1 and future.error()["code"] == "HEIGHT_IN_FUTURE"
    negative = cli(*query, "--height", "-1")
    assert negative.code == 2 and "--height" in negative.err
