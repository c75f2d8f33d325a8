"""The store on PostgreSQL: callback creations/s with two cti nodes on one PostgreSQL beside one node on
SQLite, and a simulated multi-ward load (calls arriving at a fixed rate, split over two nodes).

Each node is its own process (as in production: its own event loop, its own gateway thread and
connection). PostgreSQL is Debian's postgresql-15, started by this bench in a temporary directory on
127.0.0.1 with fsync on (durable, like SQLite's synchronous=FULL here) and stopped afterwards
(tests/pg_support.py). The SQLite baseline is bench/records_bench.py's service path, 32 clients.

The multi-ward load: the 23 wards' calls (a burst of `RATE` calls/s for `SECONDS`) arrive at two nodes
alternately; for every call the node records the contact, the consent and a callback request (3
audited units), as an operator's browser would. Measured: whether the nodes keep up (achieved rate)
and the latency of each callback creation (p50 / p99), one audit chain verified at the end.

`python -m bench.pg_bench [--quick]`; a node alone: `python -m bench.pg_bench node URL ...` (internal).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.records_bench import AT, OPERATOR, TARGET, _callback, service_rate
from bench.report import Figure, table
from cti.calendar.rules import Calendars
from cti.config import CalendarSettings
from cti.store_backend import open_store
from records.models import ConsentIn
from records.retention import verify_audit
from records.schema import migrations
from records.service import RecordsService
from records.settings import RecordsSettings

ROOT = Path(__file__).resolve().parents[1]
LOAD_TARGET_P99_MS = 100.0


def _cluster_class() -> type:
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_support import PgCluster

    return PgCluster


async def _node_creations(url: str, prefix: str, n: int, concurrency: int, go_at: float) -> dict[str, float]:
    """One node: set up n consented calls, then at wall time `go_at` create their callbacks."""
    db = await open_store(url, migrations())
    try:
        service = RecordsService(db, RecordsSettings.model_validate({}), Calendars.from_settings(CalendarSettings()),
                                 lambda: AT)
        for i in range(n):
            await service.call_taken(f"{prefix}-{i}", OPERATOR.user_id, caller_number="0312345678")
            await service.record_consent(OPERATOR, f"{prefix}-{i}", ConsentIn.model_validate({"answer": "yes"}))
        bodies = [_callback(i) for i in range(n)]
        queue = list(range(n))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                await service.create_callback(OPERATOR, f"{prefix}-{i}", bodies[i])

        await asyncio.sleep(max(0.0, go_at - time.time()))
        started = time.time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {"started": started, "ended": time.time(), "n": n}
    finally:
        await db.close()


async def _node_load(url: str, prefix: str, rate: float, seconds: float, go_at: float) -> dict[str, object]:
    """One node's share of the multi-ward load: a call every 1/rate s, each contact+consent+callback."""
    db = await open_store(url, migrations())
    latencies: list[float] = []
    try:
        service = RecordsService(db, RecordsSettings.model_validate({}), Calendars.from_settings(CalendarSettings()),
                                 lambda: AT)

        async def one_call(i: int) -> None:
            call = f"{prefix}-{i}"
            await service.call_taken(call, OPERATOR.user_id, caller_number="0312345678")
            await service.record_consent(OPERATOR, call, ConsentIn.model_validate({"answer": "yes"}))
            t0 = time.perf_counter()
            await service.create_callback(OPERATOR, call, _callback(i))
            latencies.append(time.perf_counter() - t0)

        await asyncio.sleep(max(0.0, go_at - time.time()))
        started = time.time()
        total = int(rate * seconds)
        tasks = []
        for i in range(total):
            await asyncio.sleep(max(0.0, started + i / rate - time.time()))
            tasks.append(asyncio.create_task(one_call(i)))
        await asyncio.gather(*tasks)
        return {"started": started, "ended": time.time(), "n": total, "latencies": latencies}
    finally:
        await db.close()


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "bench.pg_bench", "node", *args], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)


def _collect(nodes: list[subprocess.Popen[str]]) -> list[dict[str, object]]:
    results = []
    for node in nodes:
        out, _ = node.communicate(timeout=600)
        if node.returncode != 0:
            raise RuntimeError(f"bench node failed ({node.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _span(results: list[dict[str, object]]) -> float:
    return max(float(str(r["ended"])) for r in results) - min(float(str(r["started"])) for r in results)


async def pop_reads_ms(target: str, n: int) -> list[float]:
    """What a screen pop asks the store (the caller's history and open callbacks), n times, in ms."""
    db = await open_store(target, migrations())
    try:
        service = RecordsService(db, RecordsSettings.model_validate({}), Calendars.from_settings(CalendarSettings()),
                                 lambda: AT)
        for i in range(50):  # a caller with history
            call = f"pop-{i}"
            await service.call_taken(call, OPERATOR.user_id, caller_number="0312345678")
            await service.record_consent(OPERATOR, call, ConsentIn.model_validate({"answer": "yes"}))
            await service.create_callback(OPERATOR, call, _callback(i))
        latencies = []
        for _ in range(n):
            t0 = time.perf_counter()
            await service.caller_history("0312345678")
            await service.open_callbacks_for("0312345678")
            latencies.append((time.perf_counter() - t0) * 1000)
        return sorted(latencies)
    finally:
        await db.close()


async def _migrated(url: str) -> None:
    db = await open_store(url, migrations())
    await db.close()


async def _chain_ok(url: str) -> tuple[int, int]:
    db = await open_store(url, migrations())
    try:
        count, problems = await verify_audit(db)
        return count, len(problems)
    finally:
        await db.close()


async def run(quick: bool) -> list[Figure]:
    n, rate, seconds = (200, 50.0, 2.0) if quick else (2000, 200.0, 10.0)
    cluster = _cluster_class().start(durable=True)
    figures: list[Figure] = []
    try:
        with tempfile.TemporaryDirectory(prefix="pg-bench-", dir=Path.cwd()) as tmp:
            sqlite_rate = await service_rate(Path(tmp) / "one-node.sqlite3", n, 32)
        url = cluster.new_url()
        await _migrated(url)
        go = time.time() + (5 if quick else 15)  # after both nodes' untimed setup
        results = _collect([_spawn(["creations", url, f"a{i}", str(n // 2), "16", str(go)]) for i in range(2)])
        pg_rate = sum(int(str(r["n"])) for r in results) / _span(results)
        count, problems = await _chain_ok(url)
        figures += [
            Figure("pg_bench", "callback creations, 1 node on SQLite, 32 clients", sqlite_rate, "creations/s",
                   target=TARGET, higher_is_better=True, note="baseline: records_bench's path, same run"),
            Figure("pg_bench", "callback creations, 2 nodes on PostgreSQL, 16 clients each", pg_rate, "creations/s",
                   target=TARGET, higher_is_better=True,
                   note=f"{n} creations, PostgreSQL 15 fsync=on on loopback; audit rows {count}, problems {problems}"),
            Figure("pg_bench", "2 nodes PostgreSQL / 1 node SQLite", pg_rate / sqlite_rate, "x"),
        ]
        with tempfile.TemporaryDirectory(prefix="pg-bench-", dir=Path.cwd()) as tmp:
            on_sqlite = await pop_reads_ms(str(Path(tmp) / "pop.sqlite3"), 100 if quick else 1000)
        on_pg = await pop_reads_ms(cluster.new_url(), 100 if quick else 1000)
        for engine, values in (("SQLite", on_sqlite), ("PostgreSQL", on_pg)):
            p99_ms = values[int(0.99 * (len(values) - 1))]
            figures.append(Figure("pg_bench", f"pop's store reads on {engine}: p99", p99_ms, "ms",
                                  note=f"caller history + open callbacks; p50 {statistics.median(values):.2f} ms"))
        url = cluster.new_url()
        await _migrated(url)
        go = time.time() + 3
        results = _collect([_spawn(["load", url, f"w{i}", str(rate / 2), str(seconds), str(go)]) for i in range(2)])
        latencies = sorted(x * 1000 for r in results for x in r["latencies"])  # type: ignore[attr-defined]
        achieved = sum(int(str(r["n"])) for r in results) / _span(results)
        count, problems = await _chain_ok(url)
        p99 = latencies[int(0.99 * (len(latencies) - 1))]
        figures += [
            Figure("pg_bench", f"multi-ward load: {rate:g} calls/s offered over 2 nodes", achieved, "calls/s",
                   target=rate * 0.95, higher_is_better=True,
                   note=f"{len(latencies)} calls x (contact, consent, callback);"
                        f" audit rows {count}, problems {problems}"),
            Figure("pg_bench", "multi-ward load: callback creation p50", statistics.median(latencies), "ms"),
            Figure("pg_bench", "multi-ward load: callback creation p99", p99, "ms", target=LOAD_TARGET_P99_MS),
        ]
    finally:
        cluster.stop()
    return figures


def node_main(argv: list[str]) -> int:
    kind, url, prefix, a, b, c = argv[:6]
    if kind == "creations":
        result = asyncio.run(_node_creations(url, prefix, int(a), int(b), float(c)))
    else:
        result = asyncio.run(_node_load(url, prefix, float(a), float(b), float(c)))
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "node":
        return node_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.pg_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run (CI)")
    args = parser.parse_args(argv)
    print(table(asyncio.run(run(args.quick))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
