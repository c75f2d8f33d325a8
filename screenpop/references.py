"""受付番号: the call reference people read and say ("20261202-0007"), instead of Asterisk's Linkedid.

One number per call, counted per day in Asia/Tokyo from 0001, given at the call's first ringing
notice (or its pop) and kept in the table ``call_references`` (screenpop/schema.py), so it is the
same after a reload or a restart. The Linkedid stays the call's id between machines.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from datetime import datetime

from cti.core.clock import TOKYO, require_aware
from cti.gateway import Gateway

MAX_CACHED = 5000


def format_reference(day: str, number: int) -> str:
    """'2026-12-02', 7 -> '20261202-0007' (more than 9999 calls a day widen the number)."""
    return f"{day.replace('-', '')}-{number:04d}"


class CallReferences:
    def __init__(self, db: Gateway) -> None:
        self._db = db
        self._known: OrderedDict[str, str] = OrderedDict()  # call_id -> reference (recent calls)

    def known(self, call_id: str) -> str | None:
        return self._known.get(call_id)

    async def assign(self, call_id: str, at: datetime) -> str:
        """The call's reference, given now if it has none (idempotent)."""
        found = self._known.get(call_id)
        if found is not None:
            return found
        day = require_aware(at, "at").astimezone(TOKYO).date().isoformat()

        def unit(conn: sqlite3.Connection) -> tuple[str, int]:
            row = conn.execute("SELECT day, number FROM call_references WHERE call_id = ?", (call_id,)).fetchone()
            if row is not None:
                return str(row["day"]), int(row["number"])
            (number,) = conn.execute(
                "SELECT coalesce(max(number), 0) + 1 FROM call_references WHERE day = ?", (day,)
            ).fetchone()
            conn.execute("INSERT INTO call_references(call_id, day, number) VALUES (?, ?, ?)", (call_id, day, number))
            return day, int(number)

        # one unit on the database thread: the read of max(number) and the insert are not interleaved
        stored_day, number = await self._db.write(unit)
        reference = format_reference(stored_day, number)
        self._known[call_id] = reference
        while len(self._known) > MAX_CACHED:
            self._known.popitem(last=False)
        return reference
