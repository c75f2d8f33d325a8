"""Supervision's app keys: the live state the supervisor context owns, and the alert settings."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from supervision.alert_monitor import AlertMonitor
from supervision.event_feed import EventFeed
from supervision.settings import AlertSettings


@dataclass
class Supervisor:
    """Owned by supervisor_ctx: the event feed (wall, call log, callback progress) and the alert monitor."""

    feed: EventFeed
    monitor: AlertMonitor


SUPERVISOR: web.AppKey[Supervisor] = web.AppKey("supervisor", Supervisor)
# The `[alerts]` section (set by the composition root; tests may set their own before startup).
ALERT_SETTINGS: web.AppKey[AlertSettings] = web.AppKey("alert_settings", AlertSettings)
