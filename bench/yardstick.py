"""The raw limits a load run is measured against, measured on the same machine in the same run:

    python -m bench yardstick [--json]

* one-thread Ed25519 verification (the suite's libsodium path), verifications/s;
* synced LevelDB batches: one 1 KiB ``WriteBatch`` per write, ``sync=True``, writes/s (each
  block and each consensus step pays one);
* a grpc.aio unary round trip on loopback, without TLS, median microseconds (each consensus
  phase and each client call pays at least one).

These machines move by 2x between days, so a figure of a load run means something only as a
ratio to these, taken beside it (``bench suite`` measures them before and after its steps).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import grpc
import plyvel

from ._util import median_rate
from .bench_verify import single_core_rate

ECHO_METHOD = "/ibledger.bench.Echo/Call"


def synced_batch_rate(writes: int = 200, repeats: int = 3) -> float:
    """Synced 1 KiB LevelDB batches per second, the median of ``repeats`` runs."""
    value = b"v" * 1024
    with tempfile.TemporaryDirectory(prefix="ibledger-yardstick-") as scratch:
        db = plyvel.DB(str(Path(scratch) / "db"), create_if_missing=True)
        try:
            counter = 0

            def run() -> int:
                nonlocal counter
                for _ in range(writes):
                    counter += 1
                    with db.write_batch(sync=True) as batch:
                        batch.put(counter.to_bytes(8, "big"), value)
                return writes

            rate, _ = median_rate(run, repeats)
        finally:
            db.close()
    return rate


async def _round_trips(calls: int) -> list[float]:
    def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        "ibledger.bench.Echo",
        {"Call": grpc.unary_unary_rpc_method_handler(echo)},
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(ECHO_METHOD)
            payload = b"x" * 200
            for _ in range(50):  # warm the channel up
                await call(payload)
            seconds = []
            for _ in range(calls):
                started = time.perf_counter()
                await call(payload)
                seconds.append(time.perf_counter() - started)
    finally:
        await server.stop(None)
    return seconds


def grpc_round_trip_us(calls: int = 2_000) -> float:
    """The median of ``calls`` grpc.aio unary round trips on loopback, in microseconds."""
    return statistics.median(asyncio.run(_round_trips(calls))) * 1e6


def measure(
    *, verify_count: int = 5_000, writes: int = 200, calls: int = 2_000
) -> dict[str, float]:
    return {
        "ed25519_verify_per_s_one_thread": round(single_core_rate(verify_count), 1),
        "leveldb_synced_batches_per_s": round(synced_batch_rate(writes), 1),
        "grpc_aio_round_trip_us": round(grpc_round_trip_us(calls), 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench yardstick")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    options = parser.parse_args(argv)
    figures = measure()
    if options.json:
        print(json.dumps(figures, indent=2))
        return
    print("\nraw limits, this machine, now")
    print(f"  Ed25519 verify, one thread   {figures['ed25519_verify_per_s_one_thread']:>10,.0f} /s")
    print(f"  synced LevelDB 1 KiB batch   {figures['leveldb_synced_batches_per_s']:>10,.0f} /s")
    print(f"  grpc.aio unary round trip    {figures['grpc_aio_round_trip_us']:>10,.0f} us")


if __name__ == "__main__":
    main()
