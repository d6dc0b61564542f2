"""The workloads' transactions, built offline against a freshly initialised (not started)
network: each decodes, is signed by the sender it names, and noop honours --tx-size."""

from __future__ import annotations

import contextlib
import io

import pytest

from ibledger.bench.workloads import Builder, WorkloadSpec
from ibledger.cli.main import main
from ibledger.cli.manifest import Manifest, load_manifest
from ibledger.node.tx import decode_envelope


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    directory = tmp_path_factory.mktemp("bench") / "network"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["network", "init", "--nodes", "4", "--dir", str(directory)]) == 0
    return load_manifest(directory)


def _spec(name: str, manifest: Manifest, **extra: object) -> WorkloadSpec:
    admins = tuple(n for n, i in manifest.identities.items() if "consortium_admin" in i.roles)
    senders = {
        "noop": tuple(sorted(manifest.identities)),
        "identity": admins,
        "asset-transfer": ("ICBC", "CIB", "SPDB"),
        "bill": ("HUAWEI", "SUPPLIER"),
        "mixed": tuple(sorted(manifest.identities)),
    }[name]
    return WorkloadSpec(
        name=name,
        isin="BNC000000010",
        bill_serial_base=1230,
        senders=senders,
        extra={"admins": admins},
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("size", [300, 1000, 5000])
def test_noop_is_padded_to_the_requested_size(manifest: Manifest, size: int) -> None:
    builder = Builder(_spec("noop", manifest, tx_size=size), manifest, 0, 1)
    envelope = builder.build(0)
    assert abs(len(envelope) - size) <= 2
    assert decode_envelope(envelope).operation == "bench.noop"


def test_every_workload_builds_signed_distinct_transactions(manifest: Manifest) -> None:
    expected = {
        "noop": {"bench.noop"},
        "identity": {"identity.update_details"},
        "asset-transfer": {"asset.transfer"},
        "bill": {"bill.issue"},
        "mixed": {"bench.noop", "identity.update_details", "asset.transfer", "bill.issue"},
    }
    for name, operations in expected.items():
        builders = [Builder(_spec(name, manifest), manifest, p, 2) for p in range(2)]
        txs = [decode_envelope(b.build(c)) for b in builders for c in range(8)]
        assert {tx.operation for tx in txs} == operations, name
        assert len({tx.tx_id for tx in txs}) == len(txs), name
        for tx in txs:
            if tx.operation == "bill.issue":
                assert len(tx.args["package_no"]) == 30
            if tx.operation == "identity.update_details":
                assert tx.sender != tx.args["participant"]
    bills = [
        decode_envelope(b.build(c)).args["package_no"]
        for b in [Builder(_spec("bill", manifest), manifest, p, 2) for p in range(2)]
        for c in range(50)
    ]
    assert len(set(bills)) == len(bills)  # two processes never issue one bill number twice
