"""``ibledger demo``: a guided tour.

* ``ibledger demo`` (what ``make run`` does) drives a running network *through the CLI itself*:
  every step prints the command line it runs, then that command's own output.  A registrar
  registers and issues a bond and a bank sells part of it; an enterprise issues a bank
  acceptance bill that the acceptor signs, the supplier receives, splits by endorsement and
  discounts; the regulator looks through the bill's chain and a bank's positions; finally one
  receipt is verified offline against the genesis validator keys.  Identifiers and bill numbers
  are made fresh on every run, so the demo can run again on the same network.
* ``ibledger demo --offline`` needs no network: it creates keys, a genesis and a fresh ledger
  under ``$IBLEDGER_HOME/demo``, signs transactions, writes them as blocks, reads every receipt
  back with its Merkle proof, re-verifies the chain on reopening, and prints a summary.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from ibledger.contracts.identifiers import isin_check_digit
from ibledger.node import clock
from ibledger.node.crypto import KeyPair, generate_keypair, write_private_key
from ibledger.node.ledger import Ledger
from ibledger.node.tx import build_transaction, decode_envelope

from .output import add_json_flag, emit, home

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
CHAIN_ID = "ibledger-demo"
GENESIS_TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
BLOCK_INTERVAL_MS = 2_000
DEMO_ISIN_BODY = "CND1000DEMO"  # a CN prefix and a made-up basic code; the check digit is computed

PARTICIPANTS: list[dict[str, Any]] = [
    {"id": "ICBC", "name": "Demo Bank One", "roles": ["bank"], "lei": "5493002ERZU2K9PZDL40"},
    {"id": "CIB", "name": "Demo Bank Two", "roles": ["bank"], "lei": "300300C1030935001303"},
    {"id": "CSDC", "name": "Demo Registrar", "roles": ["registrar"]},
    {"id": "REGULATOR", "name": "Demo Supervisor", "roles": ["regulator"]},
]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="run a single-process tour: keys, signed transactions, blocks, proofs",
        description=__doc__,
    )
    parser.add_argument(
        "--offline", action="store_true", help="the single-process ledger tour (no network)"
    )
    parser.add_argument(
        "--dir", type=Path, help="--offline: where to build it (default: $IBLEDGER_HOME/demo)"
    )
    parser.add_argument(
        "--network", type=Path, help="network directory (default: $IBLEDGER_HOME/network)"
    )
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(options: argparse.Namespace) -> int:
    if options.offline:
        return run_offline(options)
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
    serial = int(now.timestamp()) % 10**8
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


def _key_entry(keypair: KeyPair) -> dict[str, str]:
    return {"suite": keypair.suite, "public_key": keypair.public_key.hex()}


def run_offline(options: argparse.Namespace) -> int:
    base: Path = options.dir or home() / "demo"
    if base.exists():
        shutil.rmtree(base)
    (base / "keys").mkdir(parents=True, mode=0o700)
    keys = {name: generate_keypair() for name in ["ADMIN", *(p["id"] for p in PARTICIPANTS)]}
    for name, keypair in keys.items():
        write_private_key(base / "keys" / f"{name.lower()}.key.pem", keypair)
    genesis = {
        "chain_id": CHAIN_ID,
        "crypto_suite": "ed25519-sha256",
        "genesis_time_ms": GENESIS_TIME_MS,
        "participants": [
            {
                "id": "ADMIN",
                "name": "Consortium operator",
                "roles": ["consortium_admin"],
                "keys": [_key_entry(keys["ADMIN"])],
            }
        ],
        "governance": {"admin_quorum": 1},
    }
    nonce = iter(range(1, 1_000_000))

    def tx(sender: str, operation: str, **args: Any) -> bytes:
        return build_transaction(
            keys[sender],
            chain_id=CHAIN_ID,
            sender=sender,
            operation=operation,
            args=args,
            nonce=next(nonce),
            expires_at_ms=GENESIS_TIME_MS + 12 * 3600 * 1000,  # within the expiry horizon
        )

    isin = DEMO_ISIN_BODY + str(isin_check_digit(DEMO_ISIN_BODY))
    blocks: list[tuple[str, list[tuple[str, bytes]]]] = [
        (
            "the operator registers four participants",
            [
                (
                    f"register {p['id']}",
                    tx("ADMIN", "identity.register", **p, keys=[_key_entry(keys[p["id"]])]),
                )
                for p in PARTICIPANTS
            ],
        ),
        (
            "the registrar registers a 3-year bond",
            [
                (
                    f"register {isin}",
                    tx(
                        "CSDC",
                        "asset.register",
                        isin=isin,
                        issuer_lei="5493002ERZU2K9PZDL40",
                        cfi="DBFTFB",
                        currency="CNY",
                        denomination_minor=10_000,
                        issue_size_minor=100_000_000_00,
                        issue_date="2026-01-05",
                        maturity_date="2029-01-05",
                        name="Demo Bank One 2026 Financial Bond 01",
                    ),
                )
            ],
        ),
        (
            "the bond is issued; one bank sells to the other; an oversized sale fails",
            [
                (
                    "issue to ICBC and CIB",
                    tx(
                        "CSDC",
                        "asset.issue",
                        isin=isin,
                        allotments=[
                            {"holder": "ICBC", "quantity": 60_000_000_00},
                            {"holder": "CIB", "quantity": 40_000_000_00},
                        ],
                    ),
                ),
                (
                    "ICBC transfers 5,000,000.00 to CIB",
                    tx("ICBC", "asset.transfer", isin=isin, to="CIB", quantity=5_000_000_00),
                ),
                (
                    "CIB tries to transfer more than it holds",
                    tx("CIB", "asset.transfer", isin=isin, to="ICBC", quantity=90_000_000_00),
                ),
            ],
        ),
    ]

    data_dir = base / "ledger"
    report: list[dict[str, Any]] = []
    lines = [f"ibledger demo: a fresh single-node ledger in {data_dir}", ""]
    with Ledger.open(data_dir, genesis) as ledger:
        lines.append(f"genesis block 0   state root {ledger.state_root.hex()[:16]}...")
        for title, labelled in blocks:
            envelopes = [envelope for _, envelope in labelled]
            header = ledger.next_header(ledger.tip_timestamp_ms + BLOCK_INTERVAL_MS, envelopes)
            applied = ledger.append_block(header, envelopes)
            lines.append(
                f"block {header.height}: {title}  (hash {applied.block_hash.hex()[:16]}...)"
            )
            for (label, envelope), result in zip(labelled, applied.results, strict=True):
                tx_id = decode_envelope(envelope, hash_fn=ledger.suite.hash).tx_id
                receipt = ledger.get_receipt(tx_id)
                assert receipt is not None
                proven = receipt.proof.verify(envelope, receipt.header)
                outcome = result.code if result.ok else f"{result.code}: {result.message}"
                lines.append(
                    f"  tx {tx_id.hex()[:12]}  {label:<42} {outcome}"
                    f"  [proof {'ok' if proven else 'BAD'}]"
                )
                report.append(
                    {
                        "height": header.height,
                        "tx_id": tx_id,
                        "label": label,
                        "code": result.code,
                        "message": result.message,
                        "proof_verified": proven,
                    }
                )
        height, state_root, tip = ledger.height, ledger.state_root, ledger.tip_hash
    with Ledger.open(data_dir, genesis, verify="full") as reopened:
        chain_ok = (reopened.height, reopened.state_root) == (height, state_root)
    lines += [
        "",
        f"reopened and re-verified the whole chain: {'ok' if chain_ok else 'MISMATCH'}",
        f"height {height}, tip {tip.hex()[:16]}..., state root {state_root.hex()[:16]}...",
        f"committed {len(report)} transactions, "
        f"{sum(1 for r in report if r['code'] == 'OK')} succeeded, "
        f"{sum(1 for r in report if r['code'] != 'OK')} failed as expected",
        f"keys are in {base / 'keys'}",
    ]
    emit(
        options,
        {
            "chain_id": CHAIN_ID,
            "data_dir": str(data_dir),
            "height": height,
            "state_root": state_root,
            "tip_hash": tip,
            "chain_verified": chain_ok,
            "transactions": report,
        },
        "\n".join(lines),
    )
    all_proven = all(r["proof_verified"] for r in report)
    return 0 if chain_ok and all_proven else 1
