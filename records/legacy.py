"""Transitional: `RecordsService.transaction()` / `.audit()` for packages not yet on the gateway.

supervision/ and cti/calendar/ still open transactions on the old shared aiosqlite connection
(keys.DB) through records and append audit rows there. Until they pass units to ``db.write`` (with
``service.trail.append(conn, ...)`` inside), this keeps them working: their transactions are
serialised among themselves by a lock and against the gateway by SQLite's write lock
(BEGIN IMMEDIATE + busy_timeout); the chain stays one chain because each append reads the last
hash inside its own write transaction. Delete this module once nothing calls it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import aiosqlite

from cti.core.principal import Principal
from records.audit import GENESIS, row_hash
from records.trail import AuditTrail


class LegacyTransactions:
    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail
        self.conn: aiosqlite.Connection | None = None
        self.lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = self.conn
        if conn is None:
            raise RuntimeError("no legacy connection: use service.db.write(unit) with service.trail.append")
        async with self.lock:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await asyncio.shield(conn.execute("ROLLBACK"))
                raise
            await asyncio.shield(conn.execute("COMMIT"))

    async def audit(self, who: Principal, action: str, record_type: str, record_id: str | int | None,
                    outcome: str = "ok", detail: Mapping[str, Any] | None = None, at: datetime | None = None) -> None:
        """Append one audit row inside `transaction()`."""
        assert self.conn is not None
        content = self.trail.content(who, action, record_type, record_id, outcome, detail, at)
        async with self.conn.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1") as cur:
            last = await cur.fetchone()
        prev = str(last[0]) if last else GENESIS
        await self.conn.execute(
            "INSERT INTO audit(at, actor, role, department, client_ip, action, record_type, record_id, outcome,"
            " detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (*content.values(), prev, row_hash(prev, content, self.trail.key)),
        )
