"""What the load consists of: signed transactions, built by each client process on the fly.

* ``noop``: operation ``bench.noop``, which no contract defines.  Admission does not look at
  the operation, so the transaction is verified, ordered, committed and stored like any other;
  execution stops at ``UNKNOWN_OPERATION`` and writes no state.  It is the ledger's nearest
  counterpart of a server that does nothing with a request (BFT-SMaRt's ThroughputLatency),
  and the only workload ``--tx-size`` pads (an extra ``pad`` argument).
* ``identity``: the consortium admins update the other participants' display names (only an
  admin may).
* ``asset-transfer``: the registrar registers and issues one bond to three banks at set-up;
  each bank then requests the sale of one unit to the next (ICBC -> CIB -> SPDB -> ICBC): the
  first step of a two-step transfer, which reserves the unit (the buyer's signature would need
  the request's id, which only the committed request gives; unanswered, it times out). Each
  bank holds far more units than a run requests.
* ``bill``: the two enterprises issue bank acceptance bills (ICBC accepting), one fresh bill
  number per transaction.
* ``mixed``: the four above in turn.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibledger.cli.manifest import Manifest
from ibledger.contracts.identifiers import isin_check_digit
from ibledger.node.crypto import KeyPair, load_private_key
from ibledger.node.tx import build_transaction

WORKLOADS = ("noop", "identity", "asset-transfer", "bill", "mixed")
SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
TTL_MS = 3_600_000
BANKS = ("ICBC", "CIB", "SPDB")
ENTERPRISES = ("HUAWEI", "SUPPLIER")
# Kind 5 (bank acceptance) and ICBC's CNAPS code open every bill number (see ``ibledger demo``).
BILL_PREFIX = "5102100099996"


class SetupError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    """What a client process needs to build the load (picklable: it crosses processes)."""

    name: str
    tx_size: int | None = None
    isin: str | None = None
    bill_serial_base: int = 0
    senders: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def _cli(directory: Path, argv: list[str]) -> None:
    """One ``ibledger`` command in this process, its output kept for the error message."""
    from ibledger.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv[:2], "--network", str(directory), *argv[2:]])
    if code != 0:
        raise SetupError(f"set-up step `ibledger {' '.join(argv)}` failed: {err.getvalue()}")


def prepare(name: str, manifest: Manifest, tx_size: int | None, seed: int) -> WorkloadSpec:
    """Do the workload's set-up on the network (for asset-transfer: register and issue a bond)
    and return what the client processes need."""
    if name not in WORKLOADS:
        raise SetupError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    rng = random.Random(seed)
    isin = None
    if name in ("asset-transfer", "mixed"):
        missing = [p for p in (*BANKS, "CSDC") if p not in manifest.identities]
        if missing:
            raise SetupError(f"asset-transfer needs the identities {', '.join(missing)}")
        body = f"BNC{rng.randrange(10**8):08d}"
        isin = body + str(isin_check_digit(body))
        today = datetime.datetime.now(SHANGHAI)
        _cli(
            manifest.directory,
            [
                "asset",
                "register",
                isin,
                "--name",
                "Benchmark Bond",
                "--issuer-lei",
                "5493002ERZU2K9PZDL40",
                "--cfi",
                "DBFTFB",
                "--currency",
                "CNY",
                "--denomination",
                "1.00",
                "--issue-size",
                "3000000000.00",
                "--issue-date",
                f"{today:%Y-%m-%d}",
                "--maturity-date",
                f"{today.year + 3}-{today:%m}-{min(today.day, 28):02d}",
                "--as",
                "CSDC",
            ],
        )
        allot = [arg for bank in BANKS for arg in ("--allot", f"{bank}=1000000000.00")]
        _cli(manifest.directory, ["asset", "issue", isin, *allot, "--as", "CSDC"])
    if name in ("bill", "mixed"):
        missing = [p for p in (*ENTERPRISES, "ICBC") if p not in manifest.identities]
        if missing:
            raise SetupError(f"bill needs the identities {', '.join(missing)}")
    admins = tuple(
        sorted(n for n, i in manifest.identities.items() if "consortium_admin" in i.roles)
    )
    if name in ("identity", "mixed") and not admins:
        raise SetupError("the identity workload needs a consortium admin identity")
    if name == "asset-transfer":
        senders: tuple[str, ...] = BANKS
    elif name == "identity":
        senders = admins
    elif name == "bill":
        senders = ENTERPRISES
    else:
        senders = tuple(sorted(manifest.identities))
    return WorkloadSpec(
        name=name,
        tx_size=tx_size,
        isin=isin,
        bill_serial_base=rng.randrange(10**7) * 10,
        senders=senders,
        extra={"admins": admins},
    )


class Builder:
    """Builds the ``n``-th transaction of client ``client`` in process ``process``."""

    def __init__(
        self, spec: WorkloadSpec, manifest: Manifest, process: int, processes: int
    ) -> None:
        self.spec = spec
        self.chain_id = manifest.chain_id
        self.process = process
        self.processes = processes
        names = set(spec.senders)
        if spec.name == "mixed":
            names |= {*BANKS, *ENTERPRISES, *spec.extra["admins"]}
        self.admins: tuple[str, ...] = spec.extra.get("admins", ())
        self.subjects = tuple(n for n in sorted(manifest.identities) if n not in self.admins)
        self.keys: dict[str, KeyPair] = {
            name: load_private_key(manifest.identities[name].key_file) for name in sorted(names)
        }
        self.sequence = 0
        self.maturity = _maturity()
        self.pad = 0
        if spec.name == "noop" and spec.tx_size:
            base = len(self._noop(spec.senders[0], ""))
            self.pad = max(0, spec.tx_size - base)
            # msgpack's string header grows with the string: correct once for the difference.
            self.pad = max(
                0, self.pad - (len(self._noop(spec.senders[0], "x" * self.pad)) - base - self.pad)
            )
        self._kinds: dict[str, Callable[[int], bytes]] = {
            "noop": self._noop_tx,
            "identity": self._identity_tx,
            "asset-transfer": self._transfer_tx,
            "bill": self._bill_tx,
        }

    def build(self, client: int) -> bytes:
        self.sequence += 1
        kind = self.spec.name
        if kind == "mixed":
            kind = ("noop", "identity", "asset-transfer", "bill")[self.sequence % 4]
        return self._kinds[kind](client)

    def _sign(self, sender: str, operation: str, args: dict[str, Any]) -> bytes:
        return build_transaction(
            self.keys[sender],
            chain_id=self.chain_id,
            sender=sender,
            operation=operation,
            args=args,
            expires_at_ms=int(datetime.datetime.now(datetime.UTC).timestamp() * 1000) + TTL_MS,
        )

    def _sender(self, client: int, among: tuple[str, ...]) -> str:
        return among[(client * self.processes + self.process) % len(among)]

    def _noop(self, sender: str, pad: str) -> bytes:
        return self._sign(sender, "bench.noop", {"pad": pad} if pad else {})

    def _noop_tx(self, client: int) -> bytes:
        senders = self.spec.senders if self.spec.name == "noop" else tuple(self.keys)
        return self._noop(self._sender(client, senders), "x" * self.pad)

    def _identity_tx(self, client: int) -> bytes:
        sender = self._sender(client, self.admins)
        subject = self.subjects[self.sequence % len(self.subjects)]
        name = f"{subject} benchmark revision {self.process}.{self.sequence}"
        return self._sign(sender, "identity.update_details", {"participant": subject, "name": name})

    def _transfer_tx(self, client: int) -> bytes:
        sender = self._sender(client, BANKS)
        to = BANKS[(BANKS.index(sender) + 1) % len(BANKS)]
        args = {"isin": self.spec.isin, "to": to, "quantity": 100}  # 1.00 in minor units
        return self._sign(sender, "asset.transfer", args)

    def _bill_tx(self, client: int) -> bytes:
        sender = self._sender(client, ENTERPRISES)
        payee = ENTERPRISES[(ENTERPRISES.index(sender) + 1) % len(ENTERPRISES)]
        serial = (self.spec.bill_serial_base + self.sequence * self.processes + self.process) % (
            10**8
        )
        today = datetime.datetime.now(SHANGHAI)
        args = {
            "package_no": f"{BILL_PREFIX}{today:%Y%m%d}{serial:08d}0",
            "kind": "BANK",
            "amount": "10000.00",
            "currency": "CNY",
            "maturity_date": self.maturity,
            "acceptor": "ICBC",
            "payee": payee,
        }
        return self._sign(sender, "bill.issue", args)


def _maturity() -> str:
    day = datetime.datetime.now(SHANGHAI).date() + datetime.timedelta(days=120)
    while day.weekday() >= 5:
        day += datetime.timedelta(days=1)
    return day.isoformat()
