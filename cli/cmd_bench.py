"""``ibledger bench``: load runs, sweeps and fault runs against a network (see ``bench/cli.py``).

The engine lives in the ``bench`` package (installed as ``ibledger.bench``), which starts
networks and client processes; this module only hands the command to it, so cli/ reaches node/
through nothing new.
"""

from __future__ import annotations

import argparse
from typing import Any

from .output import plain


def register(commands: Any) -> None:
    from ibledger.bench import cli as bench_cli

    parser = commands.add_parser(
        "bench",
        help="measure throughput and latency: closed or open loop, sweeps, faults",
        description=plain(bench_cli.__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench_cli.add_verbs(parser)
    parser.set_defaults(handler=run)


def run(options: argparse.Namespace) -> int:
    from ibledger.bench import cli as bench_cli

    return bench_cli.run(options)
