"""受付番号 (screenpop/references.py) with two cti nodes on one PostgreSQL store: the day's counter is
shared, so no number is ever given twice, and the look-up row of a call both nodes numbered is written
once: both nodes show the number the first one stored (the ringing notice on one node and the pop on
the other name the call alike)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import pytest
from pg_support import PgCluster

from cti.core.clock import TOKYO
from cti.store_backend import open_store
from screenpop import schema as screenpop_schema
from screenpop.references import CallReferences

AT = datetime(2026, 12, 2, 10, 0, tzinfo=TOKYO)


async def test_two_nodes_never_give_one_number_twice_and_record_each_call_once(
    pg_cluster: PgCluster, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    url = pg_cluster.new_url()
    migrations = {screenpop_schema.COMPONENT: screenpop_schema.MIGRATIONS}
    db_a, db_b = await asyncio.gather(open_store(url, migrations), open_store(url, migrations))
    try:
        a, b = CallReferences(db_a, shared=True), CallReferences(db_b, shared=True)
        given = []
        for i in range(30):  # beyond one reserved block on each node
            given += [await a.assign(f"a-{i}", AT), await b.assign(f"b-{i}", AT)]
        shared_a, shared_b = await a.assign("both", AT), await b.assign("both", AT)
        await a.close()
        await b.close()
        assert shared_a == shared_b
        assert len(set([*given, shared_a])) == len(given) + 1
        rows = await db_a.read(lambda c: [tuple(r) for r in c.execute(
            "SELECT call_id, count(*) FROM call_references GROUP BY call_id HAVING call_id = 'both'")])
        assert rows == [("both", 1)]
        assert await db_b.read(lambda c: c.execute("SELECT count(*) FROM call_references").fetchone()[0]) == 61
        assert "reference_record_failed" not in caplog.text
    finally:
        await db_a.close()
        await db_b.close()
