"""Access's typed application keys."""

from __future__ import annotations

from aiohttp import web

from access.settings import AccessSettings

SETTINGS: web.AppKey[AccessSettings] = web.AppKey("access_settings", AccessSettings)
