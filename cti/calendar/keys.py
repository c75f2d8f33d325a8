"""The calendar's typed application keys: the live calendars (rules plus runtime overrides)."""

from __future__ import annotations

from aiohttp import web

from cti.calendar.rules import Calendars

CALENDARS: web.AppKey[Calendars] = web.AppKey("calendars", Calendars)
