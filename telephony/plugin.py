"""Wiring of the AMI link into the aiohttp app (one cleanup context).

create_app: ``app.cleanup_ctx.append(ami_ctx)`` (after SETTINGS, CLOCK and READINESS are set).
It puts a `Telephony` at ``app[telephony_keys.AMI]`` (client, call control, presence board, listeners) and
the call tracker at ``app[telephony_keys.TRACKER]``. Other packages subscribe to the tracker's domain events
with ``app[telephony_keys.AMI].domain_listeners.append(fn)`` (fn(events) may be sync or async) and to
presence changes with ``presence_listeners``; a listener's exception is logged, never fatal.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from cti.core import keys as core_keys
from cti.core.clock import Clock
from cti.core.logs import log_event
from telephony import keys as telephony_keys
from telephony.ami.link import AmiClient
from telephony.ami.sinks import Snapshot
from telephony.consult import ConsultControl
from telephony.control import CallControl
from telephony.presence import MemberPresence, PresenceBoard
from telephony.tracker import CallTracker, TrackerConfig

logger = logging.getLogger(__name__)

Listener = Callable[[Any], Awaitable[None] | None]


def _notify(listeners: Sequence[Listener], payload: Any) -> Awaitable[None] | None:
    """Call every listener; exceptions are logged; awaitable results are returned as one."""
    pending: list[Awaitable[None]] = []
    for listener in list(listeners):
        try:
            result = listener(payload)
        except Exception:
            log_event(logger, "telephony_listener_failed", logging.ERROR, exc_info=True)
            continue
        if inspect.isawaitable(result):
            pending.append(result)
    if not pending:
        return None
    return _gather_logged(pending)


async def _gather_logged(pending: list[Awaitable[None]]) -> None:
    for outcome in await asyncio.gather(*pending, return_exceptions=True):
        if isinstance(outcome, BaseException):
            log_event(logger, "telephony_listener_failed", logging.ERROR, error=type(outcome).__name__)


class TrackerSink:
    """Feeds the pure tracker and passes its domain events on."""

    def __init__(self, tracker: Any, listeners: list[Listener]) -> None:
        self.tracker = tracker
        self.listeners = listeners

    def on_event(self, event: Mapping[str, str]) -> Awaitable[None] | None:
        domain = self.tracker.feed(event)
        return _notify(self.listeners, domain) if domain else None

    def on_resync(self, snapshot: Snapshot) -> Awaitable[None] | None:
        domain = self.tracker.resync(snapshot.channels, snapshot.queue_entries)
        return _notify(self.listeners, domain) if domain else None


class PresenceSink:
    def __init__(self, board: PresenceBoard, listeners: list[Listener]) -> None:
        self.board = board
        self.listeners = listeners

    def on_event(self, event: Mapping[str, str]) -> Awaitable[None] | None:
        changed = self.board.apply(event)
        return _notify(self.listeners, changed) if changed is not None else None

    def on_resync(self, snapshot: Snapshot) -> Awaitable[None] | None:
        members = self.board.resync(snapshot.queue_members)
        return _notify(self.listeners, members)


@dataclass
class Telephony:
    client: AmiClient
    control: CallControl
    presence: PresenceBoard
    tracker: Any
    domain_listeners: list[Listener] = field(default_factory=list)
    presence_listeners: list[Listener] = field(default_factory=list)
    consult: ConsultControl | None = None  # consult transfer and hold (telephony.consult)


def build_telephony(app_settings: Any, clock: Clock, tracker: Any) -> Telephony:
    """The client with its three sinks (tracker, call control, presence), not started."""
    config = tracker.config
    client = AmiClient(
        app_settings.ami,
        clock=clock,
        # Newexten reaches the tracker only where it reads it (see telephony.ami.event_filters)
        newexten_contexts=sorted(config.callback_contexts | config.transfer_contexts),
    )
    control = CallControl(client, app_settings.call_control, queue=app_settings.ami.queue, clock=clock)
    board = PresenceBoard()
    consult = ConsultControl(client, app_settings.call_control.consult_context)
    telephony = Telephony(client, control, board, tracker, consult=consult)
    client.add_sink(TrackerSink(tracker, telephony.domain_listeners))
    client.add_sink(control)
    client.add_sink(PresenceSink(board, telephony.presence_listeners))
    return telephony


async def ami_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the AMI link while the app runs (settings.ami); readiness check "ami"."""
    settings = app[telephony_keys.SETTINGS]
    if not settings.ami.enabled:
        yield
        return
    clock = app[core_keys.CLOCK]
    # Callback and transfer contexts come from settings, as the dialplan names them.
    tracker = CallTracker(clock, TrackerConfig.from_call_control(settings.call_control))
    telephony = build_telephony(settings, clock, tracker)
    app[telephony_keys.AMI] = telephony
    app[telephony_keys.TRACKER] = tracker
    readiness = app[core_keys.READINESS]
    readiness.register("ami", telephony.client.readiness)
    try:
        yield
    finally:
        readiness.unregister("ami")
        await telephony.client.stop()


async def start_ami_link(app: web.Application) -> None:
    """(on_startup, the last handler create_app adds) Connect the AMI link once every listener of the
    tracker's events has subscribed: screen pops and the wall in their contexts, the call log in its
    own on_startup handler. The first resync after a restart of cti reports the calls already up (a
    call at an operator's seat, on hold); a link started earlier could resync before they listened,
    and those calls were never shown. ami_ctx's cleanup stops it."""
    telephony = app.get(telephony_keys.AMI)
    if telephony is not None:
        telephony.client.start()


__all__ = ["MemberPresence", "PresenceSink", "Telephony", "TrackerSink", "ami_ctx", "build_telephony", "start_ami_link"]
