"""Wiring of the FastAGI routing server into the aiohttp app (one cleanup context).

create_app: ``app.cleanup_ctx.append(agi_ctx)`` (after the calendars and clock are set).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from cti.calendar import keys as calendar_keys
from cti.core import keys as core_keys
from telephony import keys as telephony_keys
from telephony.agi.server import FastAgiServer, make_route_script

AGI_SERVER: web.AppKey[FastAgiServer] = web.AppKey("agi_server", FastAgiServer)


async def agi_ctx(app: web.Application) -> AsyncIterator[None]:
    """Listen for Asterisk's AGI(agi://.../route) while the app runs (settings.agi)."""
    settings = app[telephony_keys.SETTINGS].agi
    if not settings.enabled:
        yield
        return
    server = FastAgiServer(
        {"route": make_route_script(app[calendar_keys.CALENDARS], app[core_keys.CLOCK])},
        host=settings.host,
        port=settings.port,
        backlog=settings.backlog,
        request_timeout=settings.request_timeout,
    )
    await server.start()
    app[AGI_SERVER] = server
    readiness = app[core_keys.READINESS]
    readiness.register(
        "fastagi",
        lambda: (
            server.listening,
            {"port": server.port, "answered": server.requests_answered, "failed": server.requests_failed},
        ),
    )
    try:
        yield
    finally:
        readiness.unregister("fastagi")
        await server.close()
