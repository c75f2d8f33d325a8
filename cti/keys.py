"""The application keys, all in one place for the composition root, the tests and the benches.

Each key lives with the package that owns what it holds (cti.core.keys, cti.gateway, cti.calendar.keys,
and each domain's ``keys`` module); this module re-exports them under their historic names and keeps
the one key that only the composition root may read: the whole Settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from cti.calendar.keys import CALENDARS
from cti.core.keys import CLOCK, READINESS
from cti.gateway import DATABASE  # the gateway: every write goes through it
from faq.keys import FAQ
from records.keys import SERVICE as RECORDS
from screenpop.keys import HUB
from telephony.keys import AMI, TRACKER

if TYPE_CHECKING:
    from cti.config import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")

__all__ = ["AMI", "CALENDARS", "CLOCK", "DATABASE", "FAQ", "HUB", "READINESS", "RECORDS", "SETTINGS", "TRACKER"]
