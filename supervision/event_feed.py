"""The telephony side of supervision: the tracker's domain events and queue presence turned into the
live wall, call-log entries (queued for the call-log writer) and click-to-call progress for the
staff member who placed the call. Listeners never block and never raise into telephony.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from cti.core.clock import Clock
from cti.core.logs import log_event
from cti.core.principal import Role
from supervision.call_log import CallLogQueue
from supervision.messages import CallbackProgress
from supervision.wall import OperatorState, Wall
from supervision.wall_view import ReferenceLookup, present

logger = logging.getLogger("supervision.events")


class Hub(Protocol):
    """What supervision needs of the operators' websocket hub (screenpop.hub)."""

    def send_to_role(self, role: Role, msg: BaseModel) -> int: ...
    def send_to_user(self, user_id: str, msg: BaseModel) -> int: ...


class Seats(Protocol):
    def user_at(self, interface: str) -> str | None: ...


class CallCenterCalendar(Protocol):
    def call_center(self, at: datetime) -> Any: ...


@dataclass
class EventFeed:
    clock: Clock
    wall: Wall = field(default_factory=Wall)
    call_log: CallLogQueue = field(default_factory=asyncio.Queue)
    hub: Hub | None = None
    seats: Seats | None = None
    calendars: CallCenterCalendar | None = None
    call_owners: dict[str, str] = field(default_factory=dict)
    category_labels: Mapping[str, str] = field(default_factory=dict)
    references: ReferenceLookup | None = None  # 受付番号 (screenpop.references)

    # -- outbound -----------------------------------------------------------------------------
    def send_to_supervisors(self, msg: BaseModel) -> None:
        if self.hub is None:
            return
        for role in (Role.SUPERVISOR, Role.ADMIN):
            try:
                self.hub.send_to_role(role, msg)
            except Exception:
                log_event(logger, "supervisor_push_failed", logging.ERROR, exc_info=True)

    # -- domain events (telephony listener) -----------------------------------------------------------
    def operator_of(self, interface: str | None) -> str | None:
        """The wall's key for an operator: the queue seat (interface), whoever sits there now; the
        screen shows the seated user (supervision.wall_view), so sitting down never adds a row."""
        return interface or None

    def view(self) -> dict[str, Any]:
        """The wall for the supervisors' screen (seated operators, Japanese labels)."""
        return present(self.wall.snapshot(self.clock()), self.seats, self.category_labels, self.references)

    def on_domain_events(self, events: Any) -> None:
        for event in events if isinstance(events, list | tuple) else [events]:
            try:
                self.on_domain_event(event)
            except Exception:
                log_event(logger, "wall_event_failed", logging.ERROR, type=getattr(event, "type", "?"), exc_info=True)

    def on_domain_event(self, event: Any) -> None:
        kind: str = getattr(event, "type", "")
        call_id: str = getattr(event, "call_id", "")
        at: datetime = event.at
        wall = self.wall
        log: Callable[[tuple[str, str, dict[str, Any]]], None] = self.call_log.put_nowait
        if kind.startswith("callback_"):
            self._callback_progress(event)
            return
        if kind == "call_arrived":
            after = self.calendars is not None and not self.calendars.call_center(at).open
            log(("arrived", call_id, {"at": at, "after_hours": after}))
        elif kind == "call_routed":
            log(("routed", call_id, {"at": at, "closed": event.route == "closed", "category": event.category}))
        elif kind == "call_queued":
            wall.call_waiting(call_id, at, event.category)
            log(("queued", call_id, {"at": at, "category": event.category}))
        elif kind == "operator_ringing":
            op = self.operator_of(event.interface)
            if op:
                wall.call_ringing(call_id, op)
        elif kind == "operator_missed":
            op = self.operator_of(event.interface)
            if op:
                wall.ringing_stopped(op, call_id)
        elif kind == "operator_connected":
            op = self.operator_of(event.interface)
            wall.call_answered(call_id, op, at)
            log(("answered", call_id, {"at": at, "operator": op, "hold_time": event.hold_time}))
        elif kind == "call_hold_changed":
            wall.call_hold(call_id, bool(event.on_hold))
        elif kind == "call_abandoned":
            wall.call_left_queue(call_id)
            log(("abandoned", call_id, {"at": at}))
        elif kind == "call_ended":
            wall.call_ended(call_id)
            log(("ended", call_id, {"at": at, "abandoned": event.reason == "abandoned"}))

    def _callback_progress(self, event: Any) -> None:
        callback_id = getattr(event, "callback_id", None)
        if not callback_id or self.hub is None:
            return
        owner = self.call_owners.get(str(callback_id))
        if owner is None:
            return
        self.hub.send_to_user(owner, CallbackProgress(
            callback_id=str(callback_id), event=event.type.removeprefix("callback_"), at=event.at.isoformat(),
            outcome=getattr(event, "outcome", None), talk_s=getattr(event, "talk_s", None),
        ))

    def on_presence(self, changed: Any) -> None:
        members = changed if isinstance(changed, list | tuple) else [changed]
        now = self.clock()
        for m in members:
            op = self.operator_of(getattr(m, "interface", None))
            if not op:
                continue
            activity = str(getattr(m, "activity", "available"))
            if activity in ("logged_out", "unavailable"):
                state = OperatorState.OFFLINE
            elif activity == "paused" or getattr(m, "paused", False):
                state = OperatorState.PAUSED
            else:
                state = OperatorState.READY
            self.wall.operator_presence(op, state, now, reason=getattr(m, "pause_reason", None) or None)
