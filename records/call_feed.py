"""The tracker's events -> the server-side contact of every answered call.

On ``operator_connected`` the server creates the contact: the operator is whoever sits at the
answering interface (the seat map), the caller number comes from Asterisk (the tracker), the time
from the server's clock. The browser names none of them, so nobody can claim another's call or
date a record out of the retention purge. On ``call_ended`` the contact gets its end time and the
call moves to after-call work (records.calls).

The call is marked open synchronously, when the listener is called, before any coroutine of this
batch runs: the screen pop's caller history (read concurrently) then never lists the live call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from typing import Any, Protocol

from cti.core.logs import log_event
from records.service import RecordsService

logger = logging.getLogger("records.calls")


class Seats(Protocol):
    def user_at(self, interface: str) -> str | None: ...


class Snapshot(Protocol):
    @property
    def caller_number(self) -> str | None: ...
    @property
    def category(self) -> str | None: ...


class Tracker(Protocol):
    def get(self, call_id: str) -> Any: ...


class CallFeed:
    def __init__(self, service: RecordsService, seats: Seats, tracker: Tracker | None = None) -> None:
        self.service = service
        self.seats = seats
        self.tracker = tracker
        # call id -> (caller number, category) from the events, for when no tracker is at hand
        self._arrived: dict[str, tuple[str | None, str | None]] = {}

    def on_events(self, events: Any) -> Awaitable[None] | None:
        """A telephony domain listener (one event or a list)."""
        batch: Iterable[Any] = events if isinstance(events, list | tuple) else [events]
        work: list[Awaitable[Any]] = []
        for event in batch:
            kind = getattr(event, "type", None)
            if kind == "call_arrived":
                if len(self._arrived) < 10_000:
                    self._arrived[event.call_id] = (event.caller_number, None)
            elif kind in ("call_routed", "call_queued") and event.call_id in self._arrived and event.category:
                self._arrived[event.call_id] = (self._arrived[event.call_id][0], event.category)
            elif kind == "operator_connected":
                operator = self.seats.user_at(event.interface)
                if operator is None:
                    log_event(logger, "contact_without_operator", level=logging.WARNING, call_id=event.call_id)
                    continue
                number, category = self._call_data(event.call_id)
                self.service.calls.connected(event.call_id, operator)
                work.append(self.service.call_taken(event.call_id, operator, caller_number=number,
                                                    ivr_category=category))
            elif kind == "call_ended":
                self._arrived.pop(event.call_id, None)
                if self.service.calls.is_live(event.call_id):  # answered: it has a contact to end
                    self.service.calls.ended(event.call_id, self.service.now())
                    work.append(self.service.call_ended(event.call_id))
        return self._run(work) if work else None

    def _call_data(self, call_id: str) -> tuple[str | None, str | None]:
        snapshot = self.tracker.get(call_id) if self.tracker is not None else None
        if snapshot is not None:
            return snapshot.caller_number, snapshot.category
        return self._arrived.get(call_id, (None, None))

    async def _run(self, work: list[Awaitable[Any]]) -> None:
        for outcome in await asyncio.gather(*work, return_exceptions=True):
            if isinstance(outcome, BaseException):
                log_event(logger, "contact_write_failed", level=logging.ERROR, error=type(outcome).__name__)
