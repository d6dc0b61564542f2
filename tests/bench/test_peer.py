"""The peer benchmark's parts that need no Java: the client's output parsed, the figures of a
run, medians and ratios, the table, and the checks of packages, checkout and options."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
from pathlib import Path

import pytest

from ibledger.bench import bftsmart, peer, peer_report
from ibledger.bench.peer_report import BFTSMART, IBLEDGER, Measurement
from ibledger.bench.stats import TxRecord


def test_client_csv_is_parsed_to_records_on_the_window_clock() -> None:
    text = "sent_s,answered_s\n-0.5,0.1\n0.1,0.35\n4.9,\n\n"
    records = bftsmart.parse_client_csv(text)
    assert records[0] == TxRecord(-0.5, -0.5, 0.1)
    assert records[1] == TxRecord(0.1, 0.1, 0.35)
    assert records[2].submitted == 4.9 and not records[2].is_committed
    assert len(records) == 3


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "header"),
        ("sent,answered\n0.1,0.2\n", "header"),
        ("sent_s,answered_s\n0.1;0.2\n", "line 2"),
        ("sent_s,answered_s\n0.1,abc\n", "line 2"),
        ("sent_s,answered_s\n0.1,0.2\n0.5,0.4\n", "line 3"),
        ("sent_s,answered_s\nnan,0.4\n", "line 2"),
    ],
)
def test_a_broken_client_csv_is_refused_with_its_line(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        bftsmart.parse_client_csv(text)


def test_done_line() -> None:
    text = "CONNECTED 4\nnoise\nDONE threads=4 failures=2 late_threads=1\n"
    assert bftsmart.parse_done_line(text) == (2, 1)
    with pytest.raises(ValueError, match="DONE"):
        bftsmart.parse_done_line("CONNECTED 4\n")
    with pytest.raises(ValueError, match="DONE"):
        bftsmart.parse_done_line("DONE threads=4 failures=x late_threads=0\n")


def test_client_source_frames_requests_as_the_server_reads_them() -> None:
    source = bftsmart.CLIENT_SOURCE
    assert f"public final class {bftsmart.CLIENT_CLASS}" in source
    assert "DRAIN_S" not in source  # replaced by its value
    assert f"({bftsmart.DRAIN_S!r} * 1e9)" in source
    assert "framed.putInt(payloadBytes);" in source and "framed.putInt(0);" in source
    assert "proxy.invokeOrdered(command)" in source


def test_a_run_is_measured_by_the_bench_rules() -> None:
    # Window [0, 2): one answered before it opened (not counted), three sent and answered in
    # it at 100, 200 and 300 ms, one sent in it and answered after it closed (a latency, not
    # a commit in the window), one sent in it and never answered.
    records = [
        TxRecord(-0.4, -0.4, -0.1),
        TxRecord(-0.1, -0.1, 0.05),
        TxRecord(0.1, 0.1, 0.2),
        TxRecord(0.5, 0.5, 0.7),
        TxRecord(1.0, 1.0, 1.3),
        TxRecord(1.9, 1.9, 2.4),
        TxRecord(1.95, 1.95, math.nan),
    ]
    m = peer_report.from_records(BFTSMART, 4, 1, records, 2.0, "dir")
    assert m.committed_ops_per_s == pytest.approx(4 / 2.0)  # answers at .05, .2, .7, 1.3
    assert m.sent == 5
    assert m.unanswered == 1
    assert m.p50_ms == pytest.approx(200.0)
    assert m.p99_ms == pytest.approx(500.0)
    assert m.mean_ms == pytest.approx((100 + 200 + 300 + 500) / 4)


def _bench_json(committed: float, p50: float | None) -> str:
    return json.dumps(
        {
            "dir": "out/run",
            "summary": {
                "committed_tx_per_s": committed,
                "submitted": 40.0,
                "rejected": 1.0,
                "uncommitted": 2.0,
                "latency": {"p50_ms": p50, "p99_ms": 90.0, "mean_ms": 60.0},
            },
        }
    )


def test_an_ibledger_bench_summary_is_read() -> None:
    m = peer_report.from_bench_json(100, 2, _bench_json(180.5, 55.0))
    assert m == Measurement(IBLEDGER, 100, 2, 180.5, 55.0, 90.0, 60.0, 40, 3, "out/run")
    assert math.isnan(peer_report.from_bench_json(1, 1, _bench_json(0.0, None)).p50_ms)
    text_p50 = json.loads(_bench_json(1.0, 2.0))
    text_p50["summary"]["latency"]["p50_ms"] = "2.0"
    no_latency = json.loads(_bench_json(1.0, 2.0))
    del no_latency["summary"]["latency"]
    for broken in ("not json", "{}", json.dumps(text_p50), json.dumps(no_latency)):
        with pytest.raises(ValueError, match="ibledger bench"):
            peer_report.from_bench_json(1, 1, broken)


def _m(system: str, clients: int, run: int, ops: float, p50: float) -> Measurement:
    return Measurement(system, clients, run, ops, p50, p50 * 2, p50, 100, 0)


MEASUREMENTS = [
    _m(BFTSMART, 1, 1, 60.0, 15.0),
    _m(IBLEDGER, 1, 1, 12.0, 80.0),
    _m(IBLEDGER, 1, 2, 14.0, 70.0),
    _m(BFTSMART, 1, 2, 70.0, 14.0),
    _m(BFTSMART, 1, 3, 50.0, 20.0),
    _m(IBLEDGER, 1, 3, 13.0, 90.0),
    _m(BFTSMART, 100, 1, 1000.0, 95.0),
    _m(IBLEDGER, 100, 1, 700.0, 130.0),
]


def test_medians_and_ratios() -> None:
    table = peer_report.medians(MEASUREMENTS)
    assert list(table) == [(BFTSMART, 1), (IBLEDGER, 1), (BFTSMART, 100), (IBLEDGER, 100)]
    assert table[(BFTSMART, 1)]["committed_ops_per_s"] == 60.0
    assert table[(BFTSMART, 1)]["p50_ms"] == 15.0
    assert table[(BFTSMART, 1)]["p99_ms"] == 30.0
    assert table[(IBLEDGER, 1)]["p50_ms"] == 80.0
    assert table[(IBLEDGER, 1)]["committed_ops_per_s_runs"] == [12.0, 14.0, 13.0]
    assert table[(BFTSMART, 1)]["runs"] == 3
    result = peer_report.ratios(table)
    assert result["throughput_100_clients"]["ratio"] == pytest.approx(0.7)
    assert result["throughput_100_clients"]["met"] is True
    assert result["p50_1_client"]["ratio"] == pytest.approx(80.0 / 15.0)
    assert result["p50_1_client"]["met"] is False


def test_a_missing_side_gives_no_ratio_and_no_verdict() -> None:
    only_bft = [m for m in MEASUREMENTS if m.system == BFTSMART]
    result = peer_report.ratios(peer_report.medians(only_bft))
    assert math.isnan(result["throughput_100_clients"]["ratio"])
    assert result["throughput_100_clients"]["met"] is None
    nan_p50 = [*only_bft, _m(IBLEDGER, 1, 1, 0.0, math.nan)]
    assert peer_report.ratios(peer_report.medians(nan_p50))["p50_1_client"]["met"] is None


def test_document_and_table() -> None:
    config = {"runs": 3, "quick": False, "bftsmart_commit": bftsmart.COMMIT, "windows": "w"}
    machine = {
        "cpus": 2,
        "platform": "Linux",
        "loadavg_start": "0.10 0.20 0.30",
        "loadavg_end": "1.00 1.00 1.00",
        "ed25519_verify_per_s_1_core": [18700.4, 18000.0],
    }
    doc = peer_report.document(MEASUREMENTS, config, machine)
    assert json.loads(json.dumps(doc)) == doc  # JSON as it is, no NaN
    assert doc["ratios"]["throughput_100_clients"]["ratio"] == 0.7
    assert doc["ratios"]["p50_1_client"]["ratio"] == 5.333
    text = peer_report.markdown(doc)
    assert "| BFT-SMaRt (rwd) | 1 | 60.0 | 15.00 | 30.00 | 0 | 60.0, 70.0, 50.0 |" in text
    assert "| ibledger | 100 | 700.0 | 130.00 | 260.00 | 0 | 700.0 |" in text
    assert "at 100 clients | 0.70 | >= 0.6 | yes |" in text
    assert "at 1 client | 5.33 | <= 1.5 | no |" in text
    assert "2 cores" in text and "18,700/s / 18,000/s" in text and bftsmart.COMMIT in text
    assert "quick" not in text
    nan_doc = peer_report.document([_m(IBLEDGER, 1, 1, 0.0, math.nan)], config, machine)
    assert nan_doc["medians"][0]["p50_ms"] is None
    assert "| ibledger | 1 | 0.0 | - |" in peer_report.markdown(nan_doc)


def _jar_dir(tmp_path: Path) -> Path:
    jars = tmp_path / "java"
    jars.mkdir()
    for names in bftsmart.DEBIAN_PACKAGES.values():
        for name in names:
            (jars / name).write_bytes(b"PK")
    return jars


def _tools(tmp_path: Path, names: tuple[str, ...]) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in names:
        tool = bin_dir / name
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o755)
    return str(bin_dir)


def test_missing_packages_are_named(tmp_path: Path) -> None:
    jars = _jar_dir(tmp_path)
    path = _tools(tmp_path, bftsmart.JDK_TOOLS)
    assert bftsmart.missing_packages(jars, path) == []
    (jars / "netty-codec.jar").unlink()
    (jars / "bcutil.jar").unlink()
    assert bftsmart.missing_packages(jars, path) == ["libnetty-java", "libbcutil-java"]
    only_java = tmp_path / "jre"
    only_java.mkdir()
    assert bftsmart.missing_packages(jars, _tools(only_java, ("java",))) == [
        bftsmart.JDK_PACKAGE,
        "libnetty-java",
        "libbcutil-java",
    ]


def test_check_packages_names_the_apt_get_command(tmp_path: Path) -> None:
    jars = _jar_dir(tmp_path)
    (jars / "logback-core.jar").unlink()
    with pytest.raises(bftsmart.PeerError) as caught:
        bftsmart.check_packages(jars)
    assert caught.value.code == "PEER_PACKAGES_MISSING"
    assert "apt-get update && apt-get install -y" in caught.value.message
    assert "liblogback-java" in caught.value.message


def _git(directory: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(directory), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_the_checkout_must_be_bftsmart_at_the_commit(tmp_path: Path) -> None:
    with pytest.raises(bftsmart.PeerError) as caught:
        bftsmart.check_checkout(tmp_path)
    assert caught.value.code == "PEER_BFTSMART_CHECKOUT"
    assert bftsmart.COMMIT in caught.value.message
    server = tmp_path / "src/main/java/bftsmart/demo/microbenchmarks/ThroughputLatencyServer.java"
    server.parent.mkdir(parents=True)
    server.write_text("class ThroughputLatencyServer {}\n")
    with pytest.raises(bftsmart.PeerError) as caught:
        bftsmart.check_checkout(tmp_path)
    assert caught.value.code == "PEER_BFTSMART_CHECKOUT"
    assert "not a git checkout" in caught.value.message
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    with pytest.raises(bftsmart.PeerError) as caught:
        bftsmart.check_checkout(tmp_path)
    assert caught.value.code == "PEER_BFTSMART_COMMIT"
    assert _git(tmp_path, "rev-parse", "HEAD") in caught.value.message


def test_options_are_checked() -> None:
    with pytest.raises(bftsmart.PeerError) as caught:
        peer.check_options(argparse.Namespace(bftsmart=None, runs=3))
    assert caught.value.code == "BAD_ARGUMENT" and "git clone" in caught.value.message
    with pytest.raises(bftsmart.PeerError, match="--runs"):
        peer.check_options(argparse.Namespace(bftsmart=Path("x"), runs=0))
    peer.check_options(argparse.Namespace(bftsmart=Path("x"), runs=1))


def test_both_systems_have_a_window_at_each_client_count() -> None:
    for windows in (peer.WINDOWS, peer.QUICK_WINDOWS):
        for system in peer_report.SYSTEMS:
            for clients in peer.CLIENT_COUNTS:
                window = windows[(system, clients)]
                assert window.measure > 0 and window.warmup >= 0
        for clients in peer.CLIENT_COUNTS:
            # the same measured window for both: the ratios compare like with like
            assert windows[(BFTSMART, clients)].measure == windows[(IBLEDGER, clients)].measure
