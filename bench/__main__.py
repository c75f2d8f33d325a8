"""`python -m bench [--quick] [--only NAME ...] [--out FILE]`: every benchmark, one table, one JSON file.

Each benchmark module exposes `async def run(quick: bool) -> list[Figure]` and measures its
baseline in the same run. `--quick` is the seconds-long smoke that CI runs (no timing asserts).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import time
from pathlib import Path

from bench.report import Figure, machine, table, write_json

BENCHES = (
    "tracker_bench",
    "ami_ingest",
    "hub_bench",
    "agi_bench",
    "faq_bench",
    "records_bench",
    "pg_bench",
    "pop_latency",
    "memory",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run (CI)")
    parser.add_argument("--only", nargs="*", choices=BENCHES, help="run only these")
    parser.add_argument("--out", default="artifacts/bench.json", help="where to write the JSON figures")
    args = parser.parse_args(argv)
    figures: list[Figure] = []
    for name in args.only or BENCHES:
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        result: list[Figure] = asyncio.run(module.run(args.quick))
        figures += result
        print(f"# {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print(f"machine: {machine()}")
    print(table(figures))
    write_json(figures, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
