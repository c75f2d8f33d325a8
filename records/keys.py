"""Typed application keys of records."""

from __future__ import annotations

from aiohttp import web

from records.call_feed import CallFeed, Seats
from records.service import RecordsService
from records.settings import RecordsSettings

SERVICE: web.AppKey[RecordsService] = web.AppKey("records_service", RecordsService)
SETTINGS: web.AppKey[RecordsSettings] = web.AppKey("records_settings", RecordsSettings)
# The tracker-event listener that creates contacts (tests without an AMI link feed it directly).
CALL_FEED: web.AppKey[CallFeed] = web.AppKey("records_call_feed", CallFeed)
# Who sits at which interface (the operator of a contact), handed over by the composition root; without
# it contacts are stored with no operator.
SEATS: web.AppKey[Seats] = web.AppKey("records_seats")
