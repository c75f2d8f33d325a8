"""How records plugs into the app: a cleanup context, the routes, the tracker subscription.

create_app should: merge ``records.schema.migrations()`` into the database migrations, append
``records_ctx`` to ``app.cleanup_ctx`` AFTER the database context, and call ``setup_routes(app)``
(which also subscribes records to the tracker's events once every context has started).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from cti.calendar import keys as calendar_keys
from cti.core import keys as core_keys
from cti.core.logs import log_event
from cti.core.run_once import leases_of
from cti.gateway import DATABASE
from records import api
from records import keys as records_keys
from records.call_feed import CallFeed
from records.periodic import run_periodic
from records.service import RecordsService
from telephony import keys as telephony_keys

HANDOVER_INTERVAL_SECONDS = 60.0
logger = logging.getLogger("records")


class NoSeats:
    """No seat map handed over (records alone, in tests): nobody sits anywhere."""

    def user_at(self, interface: str) -> str | None:
        return None


def build_service(app: web.Application) -> RecordsService:
    return RecordsService(
        app[DATABASE], app[records_keys.SETTINGS], app[calendar_keys.CALENDARS], app[core_keys.CLOCK],
        office_closes=app[calendar_keys.SETTINGS].office.closes,
    )


async def records_ctx(app: web.Application) -> AsyncIterator[None]:
    """Owns the records service and its periodic task (handover every minute; at start and then daily:
    the retention purge, old backups deleted, the audit anchor logged)."""
    service = build_service(app)
    app[records_keys.SERVICE] = service
    app[records_keys.CALL_FEED] = CallFeed(service, app.get(records_keys.SEATS) or NoSeats(),
                                           app.get(telephony_keys.TRACKER))
    if service.trail.key is None:
        log_event(logger, "audit_key_missing", level=logging.WARNING,
                  hint="set records.audit_key (CTI_RECORDS__AUDIT_KEY_FILE): without it the chain is plain SHA-256")
    backup_dir = Path(app[records_keys.SETTINGS].backup_dir)
    # Run once across cti nodes sharing a PostgreSQL store (cti/core/run_once.py); alone, it always leads.
    task = asyncio.create_task(leases_of(app).lead(
        "records-periodic", lambda: run_periodic(service, HANDOVER_INTERVAL_SECONDS, "all", backup_dir),
    ), name="records-periodic")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def subscribe_to_calls(app: web.Application) -> None:
    """(on_startup, after every context) The AMI context starts after records_ctx: subscribe now."""
    feed = app.get(records_keys.CALL_FEED)
    telephony = app.get(telephony_keys.AMI)
    listeners = getattr(telephony, "domain_listeners", None)
    if feed is None or listeners is None:
        return
    feed.tracker = app.get(telephony_keys.TRACKER)
    listeners.insert(0, feed.on_events)


def setup_routes(app: web.Application) -> None:
    api.setup_routes(app)
    app.on_startup.append(subscribe_to_calls)
