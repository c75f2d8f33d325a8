"""Actions awaiting their answer, and which frames answer them.

A ``Response`` frame with a pending ActionID answers that action. An *event* belongs to an action
only while that action is a list being read (``CoreShowChannels`` until
``CoreShowChannelsComplete``...); any other event is delivered as an event even when it carries a
pending ActionID (the ``OriginateResponse`` of an async Originate). When the link drops, every
pending action fails with ``AmiConnectionLost``: its outcome is unknown and it is never re-sent.
"""

from __future__ import annotations

import asyncio

from telephony.ami.actions import AmiActionError, AmiConnectionLost, AmiResponse
from telephony.frames import Frame

_SUCCESS = frozenset({"Success", "Follows", "Goodbye"})


class Pending:
    __slots__ = ("done_event", "events", "future", "listing", "name")

    def __init__(self, name: str, future: asyncio.Future[AmiResponse], done_event: str | None) -> None:
        self.name = name
        self.future = future
        self.done_event = done_event  # list actions: the event that ends the list
        self.listing = False
        self.events: list[Frame] = []


class PendingActions:
    def __init__(self) -> None:
        self._by_id: dict[str, Pending] = {}

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, action_id: str, name: str, done_event: str | None) -> asyncio.Future[AmiResponse]:
        if action_id in self._by_id:
            raise ValueError(f"ActionID {action_id!r} is already pending")
        future: asyncio.Future[AmiResponse] = asyncio.get_running_loop().create_future()
        self._by_id[action_id] = Pending(name, future, done_event)
        return future

    def discard(self, action_id: str) -> None:
        self._by_id.pop(action_id, None)

    def take_event(self, frame: Frame) -> bool:
        """True if this event frame is part of a list action's answer (and was taken)."""
        if not self._by_id:
            return False
        action_id = frame.get("ActionID")
        pending = self._by_id.get(action_id) if action_id else None
        if pending is None or not pending.listing:
            return False
        pending.events.append(frame)
        if frame["Event"] == pending.done_event and not pending.future.done():
            pending.future.set_result(AmiResponse({}, pending.events))
        return True

    def answer(self, frame: Frame) -> None:
        """A Response frame: resolve (or fail, or start the list of) its pending action."""
        action_id = frame.get("ActionID")
        pending = self._by_id.get(action_id) if action_id else None
        if pending is None or pending.future.done():
            return
        if frame["Response"] not in _SUCCESS:
            pending.future.set_exception(AmiActionError(pending.name, frame.get("Message", "")))
        elif pending.done_event is not None:
            pending.listing = True
            pending.events = []
            if frame.get("EventList", "").lower() != "start":  # an empty or non-list answer
                pending.future.set_result(AmiResponse(frame, []))
        else:
            pending.future.set_result(AmiResponse(frame))

    def fail_all(self, reason: str) -> None:
        pending, self._by_id = self._by_id, {}
        for item in pending.values():
            if not item.future.done():
                item.future.set_exception(AmiConnectionLost(item.name, reason))
