"""Telephony's typed application keys: the AMI side (client, call control, presence, listeners) and
the call tracker, both set by telephony.plugin.ami_ctx (absent when the AMI link is disabled)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from telephony.settings import TelephonySettings

if TYPE_CHECKING:
    from telephony.plugin import Telephony
    from telephony.tracker import CallTracker

SETTINGS: web.AppKey[TelephonySettings] = web.AppKey("telephony_settings", TelephonySettings)
AMI: web.AppKey[Telephony] = web.AppKey("ami")
TRACKER: web.AppKey[CallTracker] = web.AppKey("tracker")
