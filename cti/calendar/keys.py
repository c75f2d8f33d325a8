"""The calendar's typed application keys: the live calendars (rules plus runtime overrides)."""

from __future__ import annotations

from aiohttp import web

from cti.calendar.rules import Calendars
from cti.calendar.settings import CalendarSettings

CALENDARS: web.AppKey[Calendars] = web.AppKey("calendars", Calendars)
SETTINGS: web.AppKey[CalendarSettings] = web.AppKey("calendar_settings", CalendarSettings)
