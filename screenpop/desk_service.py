"""The operator desks in the running app: restore at start, presence changes, their messages,
the page's snapshot, and Asterisk kept in step.

create_app: ``app.cleanup_ctx.append(desks_ctx)`` after the database, auth (the seat map), the AMI
link and the hub. It

* restores every desk (seat, presence, away reason) from the database (screenpop/desks.py);
* sets the hub's ``on_presence`` hook: a ``presence_set`` from the page pauses / unpauses the
  operator's queue member in Asterisk first (a failed AMI action changes nothing), then records
  it, then tells the operator and the supervisors;
* sets the hub's snapshot provider: a (re)connecting page learns its seat and presence as cti
  holds them, so after a restart it resumes with the same seat, or sees at once it has none; the
  desk is read again from the store first, so a browser that comes over from another cti node
  (that node died) finds the seat it took there;
* subscribes ``QueuePauseResync`` to the AMI client: after every (re)connect each seated
  operator's pause is asserted from their record;
* listens to telephony's presence board: when Asterisk's pause flag of a seat changes, its
  operator gets a fresh ``presence`` (``queue_paused``), so the page never shows 受付可 that
  Asterisk does not have;
* runs the after-call work: the dispatcher calls ``finish_call`` when an operator's answered call
  is over (away 後処理, ended by 結果を記録 or by hand, or by the ``wrapup_ends`` task after
  settings.desk.wrapup_seconds) and ``missed_ring`` when their phone rang out (away 不在着信).

The operator's states on the page: 受付可 (ready), 通話中 (a call of theirs is up: the page knows),
後処理 / 離席 (reason) / 不在着信 (pause with that reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

from aiohttp import web

from cti.core import keys as core_keys
from cti.core.logs import log_event
from cti.core.principal import Principal, Role
from cti.gateway import DATABASE
from screenpop import keys as screenpop_keys
from screenpop import messages as m
from screenpop.desks import (
    MISSED_RING_REASON,
    NEW_SEAT_REASON,
    SEAT_FREED_REASON,
    WRAPUP_REASON,
    Desk,
    DeskBook,
    PresenceState,
    QueuePauseResync,
)
from screenpop.hub import Hub
from screenpop.keys import DESKS, SEATS
from screenpop.seats import SeatMap
from telephony import keys as telephony_keys

logger = logging.getLogger("cti.screenpop.desks")

DESK_CHECK_SECONDS = 0.5  # how often 後処理 ends and the AMI link's state are looked at


class PresenceUnavailable(Exception):
    """The change cannot be carried out (e.g. no seat while Asterisk is linked)."""


def _telephony(app: web.Application) -> Any:
    return app.get(telephony_keys.AMI)


def link_state(app: web.Application) -> Literal["up", "down", "off"]:
    telephony = _telephony(app)
    if telephony is None:
        return "off"
    return "up" if telephony.client.connected else "down"


def queue_paused(app: web.Application, interface: str | None) -> bool | None:
    """Asterisk's pause flag of `interface` in cti's queue; None when not known."""
    telephony = _telephony(app)
    board = getattr(telephony, "presence", None)
    if board is None or interface is None or not telephony.client.connected:
        return None
    member = board.get(app[telephony_keys.SETTINGS].ami.queue, interface)
    if member is None or not member.logged_in:
        return None
    return bool(member.paused)


def wrapup_end(app: web.Application, desk: Desk) -> datetime | None:
    """When this desk's 後処理 ends by itself (None: it is not in 後処理)."""
    if desk.presence != "pause" or desk.reason != WRAPUP_REASON:
        return None
    return desk.changed_at + timedelta(seconds=app[screenpop_keys.SETTINGS].desk.wrapup_seconds)


def presence_message(app: web.Application, desk: Desk) -> m.Presence:
    until = wrapup_end(app, desk)
    return m.Presence(
        user_id=desk.user_id,
        state=desk.presence or "offline",
        reason=desk.reason,
        interface=desk.interface,
        queue_paused=queue_paused(app, desk.interface),
        link=link_state(app),
        wrapup_until=until.isoformat() if until is not None else None,
    )


def desk_state(app: web.Application, user_id: str) -> m.DeskState:
    book = app[DESKS]
    desk = book.desk(user_id)
    presence = presence_message(app, desk) if desk is not None and desk.presence is not None else None
    return m.DeskState(seat=book.seats.seat_of(user_id), presence=presence)


async def refresh_desk(app: web.Application, user_id: str) -> Desk | None:
    """The user's desk as the store holds it: with two cti nodes the operator may have been seated,
    or chosen 離席, through the other node. On a failed read, what this node holds."""
    book = app[DESKS]
    try:
        return await book.refresh_user(user_id)
    except Exception as exc:
        log_event(logger, "desk_refresh_failed", logging.WARNING, user_id=user_id, error=type(exc).__name__)
        return book.desk(user_id)


def announce(app: web.Application, desk: Desk) -> None:
    """Tell the operator (every socket) and the supervisors about this desk's presence."""
    hub = app.get(screenpop_keys.HUB)
    if not isinstance(hub, Hub):
        return
    update = presence_message(app, desk)
    hub.send_to_user(desk.user_id, update)
    hub.send_to_role(Role.SUPERVISOR, update)


async def change_presence(app: web.Application, user_id: str, state: PresenceState, reason: str | None) -> Desk:
    """Asterisk first (when linked), then the record, then the screens.

    While the AMI link is down the change is only recorded: QueuePauseResync applies it when the
    link is back (the screens say the link is down meanwhile)."""
    book = app[DESKS]
    seat = book.seats.seat_of(user_id)
    control = getattr(_telephony(app), "control", None)
    if control is not None and seat is None:
        raise PresenceUnavailable("no seat: take a seat before changing presence")
    if control is not None and link_state(app) == "up":
        if state == "pause":
            await control.pause_member(seat, reason or "")
        else:
            await control.unpause_member(seat)
    desk = await book.set_presence(user_id, state, reason)
    log_event(logger, "presence_changed", user_id=user_id, state=state)
    announce(app, desk)
    return desk


async def seat_taken(app: web.Application, desk: Desk) -> Desk:
    """A seat just taken starts away (受付開始前): Asterisk offers calls once the operator says 受付可,
    whatever pause the phone had before. A failure (e.g. the seat is not a queue member) leaves the
    presence unchosen and is logged; the seat is still taken."""
    if desk.presence is not None:
        return desk  # the same seat again: as it was
    try:
        return await change_presence(app, desk.user_id, "pause", NEW_SEAT_REASON)
    except Exception as exc:
        log_event(logger, "new_seat_pause_failed", logging.WARNING, user_id=desk.user_id, error=type(exc).__name__)
        announce(app, desk)
        return desk


async def _pause_freed_seat(app: web.Application, user_id: str, interface: str) -> None:
    """Nobody answers a freed seat's phone: pause its queue member (when Asterisk is linked)."""
    control = getattr(_telephony(app), "control", None)
    if control is not None:
        await control.pause_member(interface, SEAT_FREED_REASON)
        log_event(logger, "freed_seat_paused", user_id=user_id)


async def finish_call(app: web.Application, user_id: str, call_id: str) -> None:
    """The operator's answered call is over: 後処理, unless they chose another away reason meanwhile."""
    book = app.get(DESKS)
    if book is None or app[screenpop_keys.SETTINGS].desk.wrapup_seconds == 0:
        return
    desk = await refresh_desk(app, user_id)  # decided on the stored desk, not a copy the other node changed
    if desk is None or desk.interface is None:
        return
    if desk.presence == "pause" and desk.reason not in (WRAPUP_REASON, MISSED_RING_REASON):
        return  # their own 離席 stands
    await change_presence(app, user_id, "pause", WRAPUP_REASON)
    log_event(logger, "wrapup_started", user_id=user_id, call_id=call_id)


async def missed_ring(app: web.Application, user_id: str, call_id: str) -> None:
    """The operator's phone rang out: away (不在着信), so the queue stops offering them calls."""
    book = app.get(DESKS)
    if book is None or not app[screenpop_keys.SETTINGS].desk.away_on_missed_ring:
        return
    desk = await refresh_desk(app, user_id)
    if desk is None or desk.interface is None or desk.presence == "pause":
        return
    await change_presence(app, user_id, "pause", MISSED_RING_REASON)
    log_event(logger, "missed_ring_away", user_id=user_id, call_id=call_id)


async def end_expired_wrapups(app: web.Application) -> list[str]:
    """Back to 受付可 whoever's 後処理 has run its time; returns their user ids."""
    now = app[core_keys.CLOCK]()
    ended = []
    for desk in app[DESKS].desks():
        until = wrapup_end(app, desk)
        if until is None or until > now:
            continue
        # the operator may have ended it, or chosen 離席, through the other cti node meanwhile
        fresh = await refresh_desk(app, desk.user_id)
        until = wrapup_end(app, fresh) if fresh is not None else None
        if until is None or until > now:
            continue
        try:
            await change_presence(app, desk.user_id, "ready", None)
        except Exception as exc:  # e.g. the AMI link is down: tried again on the next round
            log_event(logger, "wrapup_end_failed", logging.WARNING, user_id=desk.user_id, error=type(exc).__name__)
            continue
        ended.append(desk.user_id)
        log_event(logger, "wrapup_ended", user_id=desk.user_id, by="limit")
    return ended


def _link_seen(app: web.Application) -> tuple[str, int]:
    """The link's state and how often it reconnected: a drop and a reconnect between two looks
    still count as a change."""
    telephony = _telephony(app)
    reconnects = telephony.client.status().reconnects if telephony is not None else 0
    return link_state(app), int(reconnects)


async def _desk_loop(app: web.Application, every_seconds: float) -> None:
    """Ends 後処理 on time, and tells every seated operator when the AMI link goes down or up."""
    link = _link_seen(app)
    while True:
        await asyncio.sleep(every_seconds)
        try:
            await end_expired_wrapups(app)
            now_link = _link_seen(app)
            if now_link != link:
                link = now_link
                for desk in app[DESKS].desks():
                    if desk.presence is not None:
                        announce(app, desk)
        except Exception as exc:
            log_event(logger, "desk_loop_failed", logging.ERROR, error=type(exc).__name__)


def _on_board_change(app: web.Application, seats: SeatMap) -> Any:
    def listener(changed: Any) -> None:
        members: Iterable[Any] = changed if isinstance(changed, list) else [changed]
        book = app[DESKS]
        for member in members:
            user = seats.user_at(getattr(member, "interface", ""))
            desk = book.desk(user) if user is not None else None
            if desk is not None and desk.presence is not None:
                announce(app, desk)

    return listener


def queue_member_interfaces(app: web.Application) -> list[str]:
    """The operators queue's members as the PBX reports them (the AMI link's presence board); empty
    while the link has not synced yet, when seats are only checked for their form."""
    telephony = app.get(telephony_keys.AMI)
    settings = app.get(telephony_keys.SETTINGS)
    if telephony is None or settings is None:
        return []
    return sorted({m.interface for m in telephony.presence.members(settings.ami.queue)})


async def desks_ctx(app: web.Application) -> AsyncIterator[None]:
    seats = app.get(SEATS)
    if seats is None:
        seats = app[SEATS] = SeatMap()
    if seats.known is None:
        seats.known = lambda: queue_member_interfaces(app)
    book = DeskBook(app[DATABASE], seats, app[core_keys.CLOCK])
    await book.load()

    async def seat_freed(user_id: str, interface: str) -> None:
        await _pause_freed_seat(app, user_id, interface)

    book.seat_freed = seat_freed
    app[DESKS] = book
    hub = app.get(screenpop_keys.HUB)
    if isinstance(hub, Hub):

        async def on_presence(principal: Principal, msg: m.PresenceSet) -> None:
            await change_presence(app, principal.user_id, msg.state, msg.reason)

        async def snapshot(principal: Principal) -> m.DeskState:
            await refresh_desk(app, principal.user_id)
            return desk_state(app, principal.user_id)

        hub.on_presence = on_presence
        hub.snapshot_provider = snapshot
    telephony = _telephony(app)
    listener = None
    if telephony is not None:
        resync = QueuePauseResync(book, telephony.control)
        telephony.client.add_sink(resync)  # before the link connects (start_ami_link): every resync
        listener = _on_board_change(app, seats)
        telephony.presence_listeners.append(listener)
    wrapups = asyncio.create_task(_desk_loop(app, DESK_CHECK_SECONDS), name="desk-loop")
    try:
        yield
    finally:
        wrapups.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await wrapups
        if telephony is not None and listener in telephony.presence_listeners:
            telephony.presence_listeners.remove(listener)
        if isinstance(hub, Hub):
            hub.on_presence = None
        await book.close()
