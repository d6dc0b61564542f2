"""Regenerate the Python code for the .proto files in this package.

The .proto files are compiled as ``ibledger/proto/<name>.proto`` so that the generated modules
import each other as ``ibledger.proto.<name>_pb2`` and register under a file name no other
distribution uses.  ``python -m ibledger.proto.generate --check`` fails when the committed code is
stale.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
PROTOS = ("types.proto", "ledger.proto", "peer.proto")


def generate(out_dir: Path) -> list[Path]:
    """Compile every .proto into ``out_dir``; returns the generated files."""
    from grpc_tools import protoc  # type: ignore[import-untyped]  # development only

    with tempfile.TemporaryDirectory() as staging_name:
        staging = Path(staging_name)
        source_root = staging / "src"
        package_dir = source_root / "ibledger" / "proto"
        package_dir.mkdir(parents=True)
        for name in PROTOS:
            shutil.copyfile(PROTO_DIR / name, package_dir / name)
        build = staging / "out"
        build.mkdir()
        well_known = Path(protoc.__file__).resolve().parent / "_proto"
        # mypy-protobuf's plugins write typed stubs for the messages and the gRPC services (the
        # .pyi files); they are installed beside this interpreter as a development dependency.
        plugins = Path(sys.executable).parent
        args = [
            "grpc_tools.protoc",
            f"-I{source_root}",
            f"-I{well_known}",
            f"--python_out={build}",
            f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
            f"--mypy_out={build}",
            f"--grpc_python_out={build}",
            f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
            f"--mypy_grpc_out={build}",
            *(f"ibledger/proto/{name}" for name in PROTOS),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for generated in sorted((build / "ibledger" / "proto").iterdir()):
            target = out_dir / generated.name
            shutil.copyfile(generated, target)
            written.append(target)
        return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed code is stale")
    options = parser.parse_args()
    if not options.check:
        for path in generate(PROTO_DIR):
            print(f"wrote {path.name}")
        return 0
    with tempfile.TemporaryDirectory() as fresh_name:
        stale = []
        for path in generate(Path(fresh_name)):
            committed = PROTO_DIR / path.name
            if not committed.exists() or committed.read_bytes() != path.read_bytes():
                stale.append(path.name)
        if stale:
            print(f"stale generated code: {', '.join(stale)}; run make proto", file=sys.stderr)
            return 1
    print("generated code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
