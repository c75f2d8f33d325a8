"""Operator desks: each operator's seat and presence (受付可 / 離席 with a reason), the one store of both.

A desk row lives in the database (table ``operator_desks``, through the gateway) and in memory:
the :class:`~screenpop.seats.SeatMap` index (who sits where, read by the pop router, the wall and
``/api/me``) and the presence per user. Every change is written first and applied in memory
only after ``await db.write(...)`` returned, so what the screen shows is what survives a restart.
``DeskBook.load()`` restores both at start.

What Asterisk really has (the queue member's pause flag) is telephony's
(telephony/presence.py ``PresenceBoard``); this store holds what the operator chose, and
``QueuePauseResync`` re-asserts it on Asterisk after every AMI (re)connect.

A seat freed outside this module (``SeatMap.release_user`` at logout, in access/) is deleted
from the table too: the book listens to the map's releases. Whoever frees a seat, ``seat_freed``
(set by screenpop/desk_service.py) is awaited afterwards: it pauses the queue member, since
nobody answers that phone any more.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, Protocol

from cti.core.clock import Clock
from cti.core.logs import log_event
from cti.gateway import Gateway
from screenpop.seats import SeatMap, SeatTaken

logger = logging.getLogger("cti.screenpop.desks")

PresenceState = Literal["ready", "pause"]
# Away reasons cti sets by itself (the page's own list of reasons does not offer them).
WRAPUP_REASON = "後処理"  # after-call work: ends by 結果を記録, by hand, or after settings.desk.wrapup_seconds
MISSED_RING_REASON = "不在着信"  # a ring the operator did not answer
NEW_SEAT_REASON = "受付開始前"  # a seat just taken: calls come once the operator says 受付可
SEAT_FREED_REASON = "席を離れました"  # the seat was released or its operator logged out

SeatFreed = Callable[[str, str], Awaitable[None]]  # (user id, interface)


@dataclass(frozen=True, slots=True)
class Desk:
    user_id: str
    interface: str | None
    presence: PresenceState | None
    reason: str | None
    changed_at: datetime


class DeskBook:
    """Seats and presence, written through the gateway, indexed in memory."""

    def __init__(self, db: Gateway, seats: SeatMap, clock: Clock) -> None:
        self._db = db
        self.seats = seats
        self._clock = clock
        self._desks: dict[str, Desk] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self._forgetting: set[str] = set()  # users whose row is being deleted (a release elsewhere)
        self.seat_freed: SeatFreed | None = None
        seats.on_release = self._released_elsewhere

    async def load(self) -> list[Desk]:
        """Restore every desk from the table (at start); returns them."""

        def read(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            return conn.execute("SELECT * FROM operator_desks ORDER BY user_id").fetchall()

        rows = await self._db.read(read)
        self._desks = {}
        for row in rows:
            desk = Desk(row["user_id"], row["interface"], row["presence"], row["reason"],
                        datetime.fromisoformat(row["changed_at"]))
            self._desks[desk.user_id] = desk
            if desk.interface is not None:
                self.seats.restore(desk.user_id, desk.interface)
        log_event(logger, "desks_restored", desks=len(rows), seated=sum(1 for r in rows if r["interface"]))
        return list(self._desks.values())

    def desk(self, user_id: str) -> Desk | None:
        return self._desks.get(user_id)

    async def refresh_user(self, user_id: str) -> Desk | None:
        """Read the user's desk again from the table and index it; returns it (None: no row).

        With two cti nodes on one store the table is the one truth: an operator whose browser was on
        the other node took their seat there, after this node loaded the desks. When that node dies
        and the browser reconnects here, this is how this node learns the seat (for the snapshot, the
        pops of the next calls and the desk changes)."""

        def read(conn: sqlite3.Connection) -> sqlite3.Row | None:
            row: sqlite3.Row | None = conn.execute(
                "SELECT * FROM operator_desks WHERE user_id = ?", (user_id,)).fetchone()
            return row

        row = await self._db.read(read)
        if user_id in self._forgetting:  # released here a moment ago: its delete is on its way
            return self._desks.get(user_id)
        if row is None:
            self._desks.pop(user_id, None)
            self.seats.release_user(user_id, notify=False)
            return None
        desk = Desk(row["user_id"], row["interface"], row["presence"], row["reason"],
                    datetime.fromisoformat(row["changed_at"]))
        if desk.interface is None:
            self.seats.release_user(user_id, notify=False)
        else:
            holder = self.seats.user_at(desk.interface)
            if holder is not None and holder != user_id:  # the seat changed hands on the other node
                self.seats.release_user(holder, notify=False)
                self._desks.pop(holder, None)
            self.seats.restore(user_id, desk.interface)
        self._desks[user_id] = desk
        return desk

    def desks(self) -> list[Desk]:
        return sorted(self._desks.values(), key=lambda d: d.user_id)

    async def take_seat(self, user_id: str, interface: str) -> Desk:
        """Seat the user (moving them if seated elsewhere; a seat may be said as 101 / 席101). SeatTaken
        names the holder, SeatUnknown lists the queue's seats."""
        interface = self.seats.checked(interface)
        holder = self.seats.user_at(interface)
        if holder is not None and holder != user_id:
            raise SeatTaken(interface, holder)
        now = self._clock()
        old = self._desks.get(user_id)
        same = old is not None and old.interface == interface
        # A new seat starts with no presence chosen: the operator says 受付可 when ready.
        desk = Desk(user_id, interface, old.presence if same and old else None,
                    old.reason if same and old else None, now)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO operator_desks(user_id, interface, presence, reason, changed_at) VALUES (?,?,?,?,?)"
                " ON CONFLICT(user_id) DO UPDATE SET interface = excluded.interface, presence = excluded.presence,"
                " reason = excluded.reason, changed_at = excluded.changed_at",
                (user_id, interface, desk.presence, desk.reason, now.isoformat()),
            )

        try:
            await self._db.write(write)
        except sqlite3.IntegrityError:  # someone else took it between the check and the write
            raise SeatTaken(interface, self._holder_hint(interface)) from None
        self.seats.take(user_id, interface)
        self._desks[user_id] = desk
        if old is not None and old.interface is not None and old.interface != interface:
            await self._seat_freed(user_id, old.interface)  # moved: the old phone is nobody's now
        return desk

    async def release_seat(self, user_id: str) -> str | None:
        """Free the user's seat and forget their desk; returns the interface it held."""
        await self._db.write(_delete(user_id))
        self._desks.pop(user_id, None)
        interface = self.seats.release_user(user_id, notify=False)
        if interface is not None:
            await self._seat_freed(user_id, interface)
        return interface

    async def set_presence(self, user_id: str, state: PresenceState, reason: str | None) -> Desk:
        now = self._clock()
        reason = reason if state == "pause" else None
        old = self._desks.get(user_id)
        desk = (replace(old, presence=state, reason=reason, changed_at=now) if old is not None
                else Desk(user_id, None, state, reason, now))

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO operator_desks(user_id, interface, presence, reason, changed_at) VALUES (?,?,?,?,?)"
                " ON CONFLICT(user_id) DO UPDATE SET presence = excluded.presence, reason = excluded.reason,"
                " changed_at = excluded.changed_at",
                (user_id, desk.interface, state, reason, now.isoformat()),
            )

        await self._db.write(write)
        self._desks[user_id] = desk
        return desk

    async def close(self) -> None:
        """Wait for the deletes of seats released elsewhere (at shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    # ---- internals ---------------------------------------------------------------------------

    def _holder_hint(self, interface: str) -> str:
        return self.seats.user_at(interface) or "他のオペレーター"

    def _released_elsewhere(self, user_id: str, interface: str) -> None:
        # Called by SeatMap.release_user from code that does not await (logout, session sweep):
        # the row is deleted right away on the gateway; in memory the seat is already free.
        self._desks.pop(user_id, None)
        self._forgetting.add(user_id)
        task = asyncio.get_running_loop().create_task(self._forget(user_id, interface), name="desk-forget")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _forget(self, user_id: str, interface: str) -> None:
        try:
            await self._db.write(_delete(user_id))
        except Exception as exc:
            log_event(logger, "desk_forget_failed", logging.ERROR, user_id=user_id, error=type(exc).__name__)
        finally:
            self._forgetting.discard(user_id)
        await self._seat_freed(user_id, interface)

    async def _seat_freed(self, user_id: str, interface: str) -> None:
        if self.seat_freed is None or self.seats.user_at(interface) is not None:
            return  # nobody to tell, or someone sits there again already
        try:
            await self.seat_freed(user_id, interface)
        except Exception as exc:
            log_event(logger, "seat_freed_hook_failed", logging.WARNING, user_id=user_id, error=type(exc).__name__)


def _delete(user_id: str) -> Callable[[sqlite3.Connection], None]:
    def unit(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM operator_desks WHERE user_id = ?", (user_id,))

    return unit


class QueueControl(Protocol):
    """What the resync needs from telephony.control.CallControl."""

    def pause_member(self, interface: str, reason: str, queue: str | None = None) -> Awaitable[None]: ...

    def unpause_member(self, interface: str, queue: str | None = None) -> Awaitable[None]: ...


class QueuePauseResync:
    """An AMI sink: after every (re)connect, each seated operator's queue pause is set from their desk.

    Asterisk forgets pauses when it restarts (and cti may have recorded a change while the link
    was down); cti's record is the operator's choice, so it is asserted again. A seat whose
    presence was never chosen is left as Asterisk has it.
    """

    def __init__(self, book: DeskBook, control: QueueControl) -> None:
        self.book = book
        self.control = control

    def on_event(self, event: object) -> None:
        return None

    async def on_resync(self, snapshot: object) -> None:
        await self.assert_all()

    async def assert_all(self) -> int:
        return await assert_desks(self.book.desks(), self.control)


async def assert_desks(desks: Iterable[Desk], control: QueueControl) -> int:
    sent = failed = 0
    for desk in desks:
        if desk.interface is None or desk.presence is None:
            continue
        try:
            if desk.presence == "pause":
                await control.pause_member(desk.interface, desk.reason or "")
            else:
                await control.unpause_member(desk.interface)
            sent += 1
        except Exception as exc:  # e.g. the seat is not a member of the queue: the others still go
            failed += 1
            log_event(logger, "queue_pause_reassert_failed", logging.WARNING, user_id=desk.user_id,
                      error=type(exc).__name__)
    log_event(logger, "queue_pause_reasserted", sent=sent, failed=failed)
    return sent
