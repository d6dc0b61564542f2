"""The committed generated code matches what grpcio-tools produces from the .proto files, and the
generated package lives under ibledger.proto, never as a top-level ``proto`` module."""

from __future__ import annotations

from pathlib import Path

from ibledger.proto import generate


def test_regenerating_the_proto_code_changes_nothing(tmp_path: Path) -> None:
    written = generate.generate(tmp_path)
    assert {path.name for path in written} >= {
        "ledger_pb2.py",
        "ledger_pb2_grpc.py",
        "peer_pb2.py",
        "peer_pb2_grpc.py",
        "types_pb2.py",
    }
    for path in written:
        committed = generate.PROTO_DIR / path.name
        assert committed.read_bytes() == path.read_bytes(), f"{path.name} is stale: make proto"


def test_generated_modules_import_inside_the_package() -> None:
    from ibledger.proto import ledger_pb2, ledger_pb2_grpc, peer_pb2, peer_pb2_grpc

    assert ledger_pb2.DESCRIPTOR.name == "ibledger/proto/ledger.proto"
    assert peer_pb2.DESCRIPTOR.package == "ibledger.v1"
    assert hasattr(ledger_pb2_grpc, "LedgerServicer")
    assert hasattr(peer_pb2_grpc, "PeerStub")
    source = (generate.PROTO_DIR / "ledger_pb2_grpc.py").read_text()
    assert "from ibledger.proto import" in source
    assert "\nimport ledger_pb2" not in source
