"""``ibledger demo``: a guided tour.

* ``ibledger demo`` (what ``make run`` does) drives a running network *through the CLI itself*:
  every step prints the command line it runs, then that command's own output.  A registrar
  registers and issues a bond and a bank sells part of it; an enterprise issues a bank
  acceptance bill that the acceptor signs, the supplier receives, splits by endorsement and
  discounts; the regulator looks through the bill's chain and a bank's positions; finally one
  receipt is verified offline against the genesis validator keys.  Identifiers and bill numbers
  are made fresh on every run, so the demo can run again on the same network.

The demo is a client like any other: it never opens a node's database in-process (an earlier
single-process tour did, and bypassed the network's signatures, admission and consensus).
"""

from __future__ import annotations

import argparse
import datetime
import secrets
import shlex
import sys
from pathlib import Path
from typing import Any

from ibledger.contracts.identifiers import isin_check_digit
from ibledger.node import clock

from .output import plain

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="a guided tour of a bond and a bill, through the CLI, on a running network",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--network", type=Path, help="network directory (default: $IBLEDGER_HOME/network)"
    )
    parser.set_defaults(handler=run)


def run(options: argparse.Namespace) -> int:
    return run_network(options)


def _step(argv: list[str]) -> int:
    """Run one CLI command in this process, echoing it first; its output is its own."""
    from .main import main

    print(f"\n$ ibledger {' '.join(shlex.quote(arg) for arg in argv)}", flush=True)
    code = main(argv)
    sys.stdout.flush()
    return code


def run_network(options: argparse.Namespace) -> int:
    network = ["--network", str(options.network)] if options.network else []
    now = datetime.datetime.fromtimestamp(clock.now_ms() / 1000, SHANGHAI)
    # Random, not the clock's second: the whole tour now commits in under a second, and a
    # second run started in the same second reused the first one's ISIN and bill number.
    serial = secrets.randbelow(10**8)
    isin_body = f"CND{serial:08d}"
    isin = isin_body + str(isin_check_digit(isin_body))
    # Kind 5 (bank acceptance), ICBC's CNAPS code, today's business date, a fresh serial.
    bill = f"5102100099996{now:%Y%m%d}{serial:08d}0"
    maturity = now.date() + datetime.timedelta(days=120)
    while maturity.weekday() >= 5:
        maturity += datetime.timedelta(days=1)
    rest = "20000001-120000000"
    steps: list[list[str]] = [
        ["status"],
        [
            "asset",
            "register",
            isin,
            "--name",
            "Demo Bank One 2026 Financial Bond",
            "--issuer-lei",
            "5493002ERZU2K9PZDL40",
            "--cfi",
            "DBFTFB",
            "--currency",
            "CNY",
            "--denomination",
            "100.00",
            "--issue-size",
            "10000000.00",
            "--issue-date",
            f"{now:%Y-%m-%d}",
            "--maturity-date",
            f"{now.year + 3}-{now:%m}-{min(now.day, 28):02d}",
            "--as",
            "CSDC",
        ],
        [
            "asset",
            "issue",
            isin,
            "--allot",
            "ICBC=6000000.00",
            "--allot",
            "CIB=4000000.00",
            "--as",
            "CSDC",
        ],
        ["asset", "transfer", isin, "--to", "CIB", "--quantity", "500000.00", "--as", "ICBC"],
        ["asset", "sign", "--isin", isin, "--as", "CIB"],
        ["asset", "holders", isin, "--as", "CSDC"],
        [
            "bill",
            "issue",
            bill,
            "--kind",
            "BANK",
            "--amount",
            "1200000.00",
            "--maturity-date",
            maturity.isoformat(),
            "--acceptor",
            "ICBC",
            "--payee",
            "SUPPLIER",
            "--splittable",
            "--as",
            "HUAWEI",
        ],
        ["bill", "request-acceptance", bill, "--as", "HUAWEI"],
        ["bill", "sign", "--bill", bill, "--as", "ICBC"],
        ["bill", "request-receipt", bill, "--as", "HUAWEI"],
        ["bill", "sign", "--bill", bill, "--as", "SUPPLIER"],
        ["bill", "endorse", bill, "--to", "CIB", "--amount", "200000.00", "--as", "SUPPLIER"],
        ["bill", "sign", "--bill", bill, "--range", "1-20000000", "--as", "CIB"],
        [
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
        ],
        ["bill", "sign", "--bill", bill, "--range", rest, "--as", "SPDB"],
        ["bill", "chain", bill, "--as", "REGULATOR"],
        ["supervise", "positions", "SPDB", "--as", "REGULATOR"],
    ]
    print(f"ibledger demo: a bond and a bank acceptance bill ({bill}) on the running network")
    for argv in steps:
        code = _step(
            [*argv[:2], *network, *argv[2:]] if argv[0] != "status" else ["status", *network]
        )
        if code != 0:
            print(f"\nthe demo stopped: that command exited with status {code}", file=sys.stderr)
            return code
    # Check the last block against the genesis validator keys, trusting no single node; as the
    # regulator, who is shown every transaction (anyone else sees its own, and digests).
    height = _current_height(options.network)
    code = _step(["block", "show", str(height), *network, "--verify", "--as", "REGULATOR"])
    if code != 0:
        return code
    print("\nThe network keeps running. Try: ibledger bill show " + bill + " --as ICBC")
    return 0


def _current_height(network: Path | None) -> int:
    from .client import Client
    from .network import default_network_dir

    with Client.from_network(network or default_network_dir()) as client:
        return int(client.status().height)
