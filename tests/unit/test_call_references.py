"""受付番号 (screenpop/references.py) on a real SQLite file through the gateway: numbered per Tokyo
day, one per call, never given twice across restarts (numbers are reserved before they are given)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from cti.core.clock import TOKYO
from cti.gateway import Database
from screenpop import schema
from screenpop.references import BLOCK, CallReferences, format_reference

DAY = datetime(2026, 12, 2, 9, 0, tzinfo=TOKYO)


async def open_db(path: Path) -> Database:
    return await Database.open(path, {schema.COMPONENT: schema.MIGRATIONS})


def test_format() -> None:
    assert format_reference("2026-12-02", 7) == "20261202-0007"
    assert format_reference("2026-12-02", 12345) == "20261202-12345"


async def test_numbers_per_day_one_per_call_and_unique_across_restarts(tmp_path: Path) -> None:
    db = await open_db(tmp_path / "cti.sqlite3")
    refs = CallReferences(db)
    await refs.prime(DAY)
    first = [await refs.assign(f"c{i}", DAY) for i in range(3)]
    assert first == ["20261202-0001", "20261202-0002", "20261202-0003"]
    assert await refs.assign("c1", DAY) == "20261202-0002"  # the same call keeps its number
    # just after midnight in Tokyo (15:00 UTC of the day before) the count starts again
    assert await refs.assign("n1", datetime(2026, 12, 2, 15, 0, 1, tzinfo=UTC)) == "20261203-0001"
    # many at once (beyond a block): all distinct, none lost
    burst = await asyncio.gather(*(refs.assign(f"b{i}", DAY) for i in range(3 * BLOCK)))
    assert len(set(burst)) == 3 * BLOCK and not set(burst) & set(first)
    await refs.close()
    await db.close()

    db = await open_db(tmp_path / "cti.sqlite3")  # a restart: nothing given before is given again
    again = CallReferences(db)
    later = await again.assign("after-restart", DAY)
    assert later not in {*first, *burst}
    assert int(later.split("-")[1]) > max(int(r.split("-")[1]) for r in [*first, *burst])
    await again.close()
    await db.close()
    with sqlite3.connect(tmp_path / "cti.sqlite3") as conn:
        stored = dict(conn.execute("SELECT call_id, number FROM call_references WHERE day = '2026-12-02'"))
    assert stored["c1"] == 2 and len(stored) == 3 + 3 * BLOCK + 1


async def test_old_days_are_forgotten(tmp_path: Path) -> None:
    db = await open_db(tmp_path / "cti.sqlite3")
    refs = CallReferences(db)
    await refs.assign("old", datetime(2025, 11, 30, 9, 0, tzinfo=TOKYO))
    await refs.assign("new", DAY)
    await refs.close()
    assert await refs.forget_before("2025-12-02") == 1
    await db.close()
    with sqlite3.connect(tmp_path / "cti.sqlite3") as conn:
        assert [r[0] for r in conn.execute("SELECT call_id FROM call_references")] == ["new"]
        assert [r[0] for r in conn.execute("SELECT day FROM call_reference_days")] == ["2026-12-02"]


async def test_blocks_that_are_not_contiguous_are_each_used_up_alone(tmp_path: Path) -> None:
    """Two counters on one store (as two nodes on PostgreSQL): each node's blocks have the other's
    between them; a node must never run on from its block into the other's."""
    db = await open_db(tmp_path / "cti.sqlite3")
    a, b = CallReferences(db), CallReferences(db)
    given = []
    for i in range(3 * BLOCK):
        given += [await a.assign(f"a{i}", DAY), await b.assign(f"b{i}", DAY)]
        await asyncio.gather(a.close(), b.close())  # close() waits for the refills: each lands early
    await a.close()
    await b.close()
    await db.close()
    assert len(set(given)) == len(given)
