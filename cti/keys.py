"""Typed application keys: every shared resource of the aiohttp app, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    import aiosqlite

    from cti.calendar.rules import Calendars
    from cti.config import Settings
    from cti.core.clock import Clock
    from cti.core.readiness import Readiness
    from cti.gateway import Database

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
CALENDARS: web.AppKey[Calendars] = web.AppKey("calendars")
DATABASE: web.AppKey[Database] = web.AppKey("database")  # the gateway: every write goes through it
DB: web.AppKey[aiosqlite.Connection] = web.AppKey("db")  # legacy shared connection, being retired
READINESS: web.AppKey[Readiness] = web.AppKey("readiness")
# Filled in by the packages' wiring (telephony, records, screenpop); typed Any here to keep
# this module free of their imports.
AMI: web.AppKey[Any] = web.AppKey("ami")
TRACKER: web.AppKey[Any] = web.AppKey("tracker")
HUB: web.AppKey[Any] = web.AppKey("hub")
FAQ: web.AppKey[Any] = web.AppKey("faq")
RECORDS: web.AppKey[Any] = web.AppKey("records")
