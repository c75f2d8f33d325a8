"""Supervisor side: a month's report (pure computation) and live-wall snapshots.

- build_report over one month of calls (about 300,000 at 10,000 a day) and its CSV;
  target: under 2 s, so the report page answers at once.
- Wall.snapshot with 200 calls waiting / in progress and 100 operators, what the pusher does every
  second; target: under 5 ms.
`python -m bench.supervisor_bench [--quick]`. Not registered in bench/__main__.py (the lead's file):
run it directly, or add "supervisor_bench" to BENCHES.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench.report import Figure, table
from cti.core.clock import TOKYO
from cti.gateway import Database
from records.rules import iso
from records.schema import migrations as records_migrations
from supervision.call_log import Entry, write_entries
from supervision.reports import CallbackRow, CallRow, build_report, monthly, report_csv
from supervision.reports_api import load_rows
from supervision.service import migrations
from supervision.wall import Wall

START = datetime(2026, 11, 1, tzinfo=TOKYO)
CATEGORIES = ("koseki", "zei", "hoken", "gomi", "kosodate", None)


def month_of_calls(per_day: int, seed: int = 7) -> list[CallRow]:
    rnd = random.Random(seed)
    calls = []
    for day in range(30):
        for i in range(per_day):
            at = START + timedelta(days=day, seconds=rnd.randrange(8 * 3600, 22 * 3600))
            answered = rnd.random() < 0.9
            wait = rnd.expovariate(1 / 40)
            calls.append(CallRow(f"{day}-{i}", at, rnd.choice(CATEGORIES),
                                 answered_at=at + timedelta(seconds=wait) if answered else None,
                                 abandoned=not answered, after_hours=rnd.random() < 0.05,
                                 wait_seconds=wait if answered else None,
                                 outcome="resolved" if answered else None))
    return calls


def callbacks(n: int) -> list[CallbackRow]:
    return [CallbackRow(i, ("zeimu", "koseki", "hoken")[i % 3], START + timedelta(hours=i),
                        START + timedelta(hours=i + 20), "closed" if i % 2 else "handed_over",
                        START + timedelta(hours=i + 12), START + timedelta(hours=i + 15) if i % 2 else None)
            for i in range(n)]


async def run(quick: bool) -> list[Figure]:
    per_day = 500 if quick else 10_000
    calls, cbs = month_of_calls(per_day), callbacks(3000)
    t0 = time.perf_counter()
    report = build_report(monthly(2026, 11), calls, cbs, now=START + timedelta(days=31))
    report_csv(report)
    report_s = time.perf_counter() - t0

    wall = Wall()
    for n in range(100):
        wall.operator_presence(f"op{n}", "ready", START)
    for n in range(200):
        wall.call_waiting(f"w{n}", START + timedelta(seconds=n))
        if n % 2:
            wall.call_answered(f"w{n}", f"op{n % 100}", START + timedelta(seconds=n + 5))
    rounds = 200 if quick else 2000
    t0 = time.perf_counter()
    for _ in range(rounds):
        wall.snapshot(START + timedelta(minutes=5))
    snap_ms = (time.perf_counter() - t0) / rounds * 1000
    db_s, stall_ms = await from_database(calls)
    log_events = 2_000 if quick else 20_000
    log_rate = await call_log_writes(log_events)
    return [
        Figure("supervisor", f"monthly report + CSV, {len(calls):,} calls", report_s, "s", target=2.0),
        Figure("supervisor", f"monthly report read from SQLite, {len(calls):,} calls", db_s, "s", target=5.0,
               note="GET /api/reports path: load_rows + build_report"),
        Figure("supervisor", "longest event-loop stall while that report runs", stall_ms, "ms", target=100.0,
               note="row conversion and the computation run in a thread"),
        Figure("supervisor", "wall snapshot, 200 calls / 100 operators", snap_ms, "ms", target=5.0),
        Figure("supervisor", f"call-log events written through the gateway ({log_events:,}, batches of 50)",
               log_rate, "events/s", target=2000.0, higher_is_better=True,
               note="one unit of work per batch; a busy call center makes ~10 events/s"),
    ]


async def call_log_writes(count: int) -> float:
    """Events per second the call-log writer's units sustain (arrived/queued/answered/ended per call)."""
    kinds = ("arrived", "queued", "answered", "ended")
    entries: list[Entry] = []
    for n in range(count):
        at = START + timedelta(seconds=n)
        kind = kinds[n % 4]
        entries.append((kind, f"call-{n // 4}", {"at": at, "after_hours": False, "category": "zei",
                                                   "operator": "op1", "hold_time": 3, "abandoned": False}))
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.sqlite3", {**records_migrations(), **migrations()})
        try:
            t0 = time.perf_counter()
            for i in range(0, count, 50):
                batch = entries[i:i + 50]
                await db.write(functools.partial(write_entries, batch=batch))
            return count / (time.perf_counter() - t0)
        finally:
            await db.close()


async def from_database(calls: list[CallRow]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.sqlite3", {**records_migrations(), **migrations()})
        try:
            await db.write(lambda conn: conn.executemany(
                "INSERT INTO call_log(call_id, arrived_at, category, queued_at, answered_at, abandoned, after_hours)"
                " VALUES (?,?,?,?,?,?,?)",
                [(c.call_id, iso(c.arrived_at), c.category, iso(c.arrived_at),
                  iso(c.answered_at) if c.answered_at else None, int(c.abandoned), int(c.after_hours))
                 for c in calls]))
            gaps: list[float] = []
            done = asyncio.Event()

            async def ticker() -> None:  # how long the event loop stalls while a report is computed
                last = time.perf_counter()
                while not done.is_set():
                    await asyncio.sleep(0.005)
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            tick = asyncio.create_task(ticker())
            t0 = time.perf_counter()
            period = monthly(2026, 11)
            rows, cbs = await load_rows(db, period)
            await asyncio.to_thread(build_report, period, rows, cbs, now=START + timedelta(days=31))
            elapsed = time.perf_counter() - t0
            done.set()
            await tick
            return elapsed, max(gaps, default=0.0) * 1000
        finally:
            await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    print(table(asyncio.run(run(args.quick))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
