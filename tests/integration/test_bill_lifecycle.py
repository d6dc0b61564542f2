"""End to end on four real nodes, through the CLI: one bill from issue to payment, another into
refusal of payment and recourse, with the regulator's look-through view of both.

Maturity is driven by the agreed block time, so the test lets time pass the way an operator drill
would: the whole network is restarted with every process's clock shifted past maturity
(``IBLEDGER_CLOCK_OFFSET_MS``, shared by the nodes and the CLI like one real clock)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator

import pytest

from ibledger.cli.main import main
from ibledger.node import clock

from .cluster import SUITES, Cluster

pytestmark = pytest.mark.slow

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))


@pytest.fixture(scope="module", params=SUITES)
def cluster(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    # Frequent checkpoints, so that receipts here carry result proofs.
    cluster = Cluster.create(
        tmp_path_factory.mktemp("bills") / "network", checkpoint_interval=4, crypto=request.param
    )
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


class Cli:
    def __init__(self, cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
        self.network = str(cluster.directory)
        self.capsys = capsys

    def __call__(self, *argv: str, expect: int = 0) -> str:
        self.capsys.readouterr()
        code = main([*argv[:2], "--network", self.network, *argv[2:]])
        captured = self.capsys.readouterr()
        assert code == expect, f"ibledger {' '.join(argv)} -> {code}\n{captured.out}{captured.err}"
        return captured.out if code == 0 else captured.err

    def json(self, *argv: str) -> dict:  # type: ignore[type-arg]
        return json.loads(self(*argv, "--json"))


def _walk_to_endorsee(cli: Cli, bill: str, maturity: str, endorsee: str) -> None:
    cli(
        "bill",
        "issue",
        bill,
        "--kind",
        "BANK",
        "--amount",
        "500000.00",
        "--maturity-date",
        maturity,
        "--acceptor",
        "ICBC",
        "--payee",
        "SUPPLIER",
        "--as",
        "HUAWEI",
    )
    cli("bill", "request-acceptance", bill, "--as", "HUAWEI")
    cli("bill", "sign", "--bill", bill, "--as", "ICBC")
    cli("bill", "request-receipt", bill, "--as", "HUAWEI")
    cli("bill", "sign", "--bill", bill, "--as", "SUPPLIER")
    cli("bill", "endorse", bill, "--to", endorsee, "--as", "SUPPLIER")
    cli("bill", "sign", "--bill", bill, "--as", endorsee)


def test_payment_and_refusal_with_recourse(
    cluster: Cluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = Cli(cluster, capsys)
    today = datetime.datetime.fromtimestamp(clock.now_ms() / 1000, SHANGHAI).date()
    maturity = today + datetime.timedelta(days=30)
    while maturity.weekday() >= 5:
        maturity += datetime.timedelta(days=1)
    serial = clock.now_ms() % 10**7
    paid, refused = (f"5102100099996{today:%Y%m%d}{serial * 10 + i:08d}0" for i in (1, 2))
    _walk_to_endorsee(cli, paid, maturity.isoformat(), "CIB")
    _walk_to_endorsee(cli, refused, maturity.isoformat(), "SPDB")
    # Before maturity, presentment is early and a refusal would give no recourse.
    assert cli.json("bill", "show", paid, "--as", "CIB")["pieces"][0]["status"] == "RECEIVED"

    # Let time pass: every process's clock moves to noon of the maturity day (noon, so that the
    # rest of the test runs on that day: the exchange answers for the acceptor at its end).
    noon = datetime.datetime.combine(maturity, datetime.time(12), SHANGHAI)
    real_now_ms = clock.now_ms() - clock.offset_ms()
    cluster.down()
    monkeypatch.setenv(clock.OFFSET_VARIABLE, str(int(noon.timestamp() * 1000) - real_now_ms))
    cluster.up()

    # Both bills are held by banks, so the exchange presents them on the maturity day (B.5 row
    # 18); a sweep applies that. Bill one: paid by the acceptor.
    cli("bill", "sweep", paid, "--as", "CIB")
    cli("bill", "sweep", refused, "--as", "SPDB")
    cli("bill", "sign", "--bill", paid, "--as", "ICBC")
    piece = cli.json("bill", "show", paid, "--as", "CIB")["pieces"][0]
    assert (piece["status"], piece["paid_to"]) == ("SETTLED", "CIB")
    again = cli("bill", "present", paid, "--as", "CIB", "--json", expect=1)
    assert json.loads(again)["code"] == "WRONG_STATE"  # no double settlement

    # Bill two: refused on the presentment day, then recourse against an earlier endorser.
    cli("bill", "reject", "--bill", refused, "--reason", "insufficient funds", "--as", "ICBC")
    piece_range = cli.json("bill", "show", refused, "--as", "SPDB")["pieces"][0]["range"]
    parties = cli.json("bill", "recourse-parties", refused, "--range", piece_range, "--as", "SPDB")[
        "parties"
    ]
    liable = {party["participant"] for party in parties}
    assert {"HUAWEI", "ICBC", "SUPPLIER"} <= liable and "CIB" not in liable
    outsider = cli("bill", "recourse", refused, "--recoursee", "CIB", "--as", "SPDB", expect=1)
    assert "RECOURSE_NOT_ALLOWED" in outsider
    cli("bill", "recourse", refused, "--recoursee", "SUPPLIER", "--as", "SPDB")
    cli("bill", "sign", "--bill", refused, "--as", "SUPPLIER")

    # The regulator looks through both bills and the parties' positions.
    paid_chain = cli("bill", "chain", paid, "--as", "REGULATOR")
    assert "ENDORSE: SUPPLIER -> CIB" in paid_chain and "SETTLED" in paid_chain
    refused_history = [
        entry["kind"]
        for entry in cli.json("bill", "history", refused, "--as", "REGULATOR")["history"]
    ]
    assert refused_history[-6:] == [
        "bill.matured",
        "bill.requested",
        "bill.payment_refused",
        "bill.request_rejected",
        "bill.requested",
        "bill.recourse_signed",
    ]
    heights = [
        entry["height"]
        for entry in cli.json("bill", "history", refused, "--as", "REGULATOR")["history"]
    ]
    assert heights == sorted(heights) and heights[0] >= 1
    positions = cli.json("supervise", "positions", "ICBC", "--as", "REGULATOR")
    assert positions["participant"] == "ICBC"
    # A receipt from early in the test: a stable checkpoint now attests its result offline.
    first_tx = cli.json("bill", "history", paid, "--as", "REGULATOR")["history"][0]["tx_id"]
    verified = cli.json("tx", "show", first_tx, "--verify", "--as", "REGULATOR")
    checks = {c["name"]: c for c in verified["verification"]["checks"]}
    assert verified["verification"]["verified"], verified
    assert "attested by checkpoint" in checks["result"]["detail"]
    forbidden = cli("bill", "chain", refused, "--as", "CIB", "--json", expect=1)
    assert json.loads(forbidden)["code"] == "FORBIDDEN"  # CIB has no part in bill two
