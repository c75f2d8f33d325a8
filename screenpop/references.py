"""受付番号: the call reference people read and say ("20261202-0007"), instead of Asterisk's Linkedid.

One number per call, counted per day in Asia/Tokyo, given at the call's first ringing notice (or
its pop). The ringing path must not wait for the disk (a pop is due within milliseconds, and a
write can wait behind other writers), so numbers are reserved ahead in blocks: ``reserve`` commits
"numbers up to N of this day are taken" (table ``call_reference_days``) and only then hands them
out from memory. A number is therefore never given twice, even across a crash; what a crash costs
is a gap (the rest of a reserved block). Which call got which number is written after the fact
(``call_references``, for looking a call up by its 受付番号); the Linkedid stays the call's id
between machines.

Several nodes on one PostgreSQL store (``shared``): each follows every call, so two nodes can number
the same call (operators on both rang). There the number is claimed in the store before it is shown:
the first node's row wins and the other node shows that one (its own number becomes a gap). The
ringing then waits for one store write, a few milliseconds, for one number per call on every screen.
A node's reserved blocks are then not contiguous (the other node's lie between them), so each block
is used up on its own.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import OrderedDict, deque
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from cti.core.clock import TOKYO, require_aware
from cti.core.logs import log_event
from cti.gateway import Gateway

logger = logging.getLogger("cti.screenpop.references")

BLOCK = 20  # numbers reserved per write
REFILL_BELOW = 5  # reserve the next block when this few are left
MAX_CACHED = 5000


def format_reference(day: str, number: int) -> str:
    """'2026-12-02', 7 -> '20261202-0007' (more than 9999 calls a day widen the number)."""
    return f"{day.replace('-', '')}-{number:04d}"


def tokyo_day(at: datetime) -> str:
    return require_aware(at, "at").astimezone(TOKYO).date().isoformat()


class CallReferences:
    def __init__(self, db: Gateway, *, shared: bool = False) -> None:
        self._db = db
        self._shared = shared  # other nodes number calls in the same store
        self._known: OrderedDict[str, str] = OrderedDict()  # call_id -> reference (recent calls)
        self._day = ""
        # [next, last] of each block reserved for self._day, in order (see the module on nodes)
        self._blocks: deque[list[int]] = deque()
        self._refill: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()

    def known(self, call_id: str) -> str | None:
        return self._known.get(call_id)

    async def assign(self, call_id: str, at: datetime) -> str:
        """The call's reference, given now if it has none; waits for the disk only when no
        reserved number is left (the first call of a day, or a burst beyond the block)."""
        found = self._known.get(call_id)
        if found is not None:
            return found
        day = tokyo_day(at)
        while day != self._day or not self._blocks:
            await self._reserve(day)
            found = self._known.get(call_id)  # given meanwhile by a concurrent caller
            if found is not None:
                return found
        number = self._take()
        if self._shared:
            reference = await self._claim(call_id, day, number)
        else:
            reference = format_reference(day, number)
            self._spawn(self._record(call_id, day, number))
        self._known[call_id] = reference
        while len(self._known) > MAX_CACHED:
            self._known.popitem(last=False)
        if self._left() < REFILL_BELOW and (self._refill is None or self._refill.done()):
            self._refill = asyncio.get_running_loop().create_task(self._reserve(day), name="reference-refill")
        return reference

    async def existing_or_assign(self, call_id: str, at: datetime) -> str:
        """The reference the store has for the call (given by another cti node, or here), else this
        node's, else a new one: a call adopted from a node that died keeps the number people saw there.
        The store first: were both nodes to number one call, the first recorded is the call's."""

        def unit(conn: sqlite3.Connection) -> tuple[str, int] | None:
            row = conn.execute("SELECT day, number FROM call_references WHERE call_id = ?", (call_id,)).fetchone()
            return (str(row[0]), int(row[1])) if row is not None else None

        recorded = await self._db.read(unit)
        if recorded is None:
            return self._known.get(call_id) or await self.assign(call_id, at)
        reference = format_reference(*recorded)
        self._known[call_id] = reference
        return reference

    async def prime(self, at: datetime) -> None:
        """Reserve the day's first block ahead (at start), so the first ringing does not wait."""
        day = tokyo_day(at)
        if day != self._day or not self._blocks:
            await self._reserve(day)

    async def forget_before(self, day: str) -> int:
        """Drop the look-up rows of days before `day` (kept as long as the call records are)."""

        def unit(conn: sqlite3.Connection) -> int:
            removed = conn.execute("DELETE FROM call_references WHERE day < ?", (day,)).rowcount
            conn.execute("DELETE FROM call_reference_days WHERE day < ?", (day,))
            return int(removed)

        return await self._db.write(unit)

    async def close(self) -> None:
        """Let the pending writes finish (at shutdown)."""
        pending = [*self._writes, *([self._refill] if self._refill is not None else [])]
        await asyncio.gather(*pending, return_exceptions=True)

    # ---- internals ---------------------------------------------------------------------------

    async def _reserve(self, day: str) -> None:
        if self._refill is not None and not self._refill.done() and self._refill is not asyncio.current_task():
            await asyncio.shield(self._refill)  # one reservation at a time
            if day == self._day and self._blocks:
                return

        def unit(conn: sqlite3.Connection) -> int:
            conn.execute(
                "INSERT INTO call_reference_days(day, reserved) VALUES (?, ?)"
                " ON CONFLICT(day) DO UPDATE SET reserved = reserved + excluded.reserved",
                (day, BLOCK),
            )
            (reserved,) = conn.execute("SELECT reserved FROM call_reference_days WHERE day = ?", (day,)).fetchone()
            return int(reserved)

        reserved = await self._db.write(unit)
        if day != self._day:
            self._day = day
            self._blocks.clear()
        self._blocks.append([reserved - BLOCK + 1, reserved])

    def _take(self) -> int:
        block = self._blocks[0]
        number = block[0]
        block[0] += 1
        if block[0] > block[1]:
            self._blocks.popleft()
        return number

    def _left(self) -> int:
        return sum(last - next_ + 1 for next_, last in self._blocks)

    async def _record(self, call_id: str, day: str, number: int) -> None:
        def unit(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR IGNORE INTO call_references(call_id, day, number) VALUES (?, ?, ?)",
                         (call_id, day, number))

        try:
            await self._db.write(unit)
        except Exception as exc:  # the number stays unique (reserved); only the look-up row is missing
            log_event(logger, "reference_record_failed", logging.WARNING, error=type(exc).__name__)

    async def _claim(self, call_id: str, day: str, number: int) -> str:
        """The call's number as stored: ours, or the one another node stored first."""

        def unit(conn: sqlite3.Connection) -> tuple[str, int]:
            conn.execute("INSERT INTO call_references(call_id, day, number) VALUES (?, ?, ?)"
                         " ON CONFLICT(call_id) DO NOTHING", (call_id, day, number))
            row = conn.execute("SELECT day, number FROM call_references WHERE call_id = ?", (call_id,)).fetchone()
            return str(row[0]), int(row[1])

        return format_reference(*await self._db.write(unit))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro, name="reference-record")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
