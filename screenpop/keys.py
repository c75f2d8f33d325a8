"""Typed application keys of the screen side (the operator desks, the pop dispatcher)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from screenpop.seats import SeatMap
from screenpop.settings import ScreenSettings

if TYPE_CHECKING:
    from screenpop.desks import DeskBook
    from screenpop.dispatcher import PopDispatcher
    from screenpop.hub import Hub

DESKS: web.AppKey[DeskBook] = web.AppKey("screenpop_desks")
DISPATCHER: web.AppKey[PopDispatcher] = web.AppKey("pop_dispatcher")
SETTINGS: web.AppKey[ScreenSettings] = web.AppKey("screenpop_settings", ScreenSettings)
# Who sits where (set by the composition root; a context creates one when it runs alone in a test).
SEATS: web.AppKey[SeatMap] = web.AppKey("seats", SeatMap)
HUB: web.AppKey[Hub] = web.AppKey("hub")  # the operators' websockets (screenpop.websocket.hub_ctx)
