"""How records plugs into the app: a cleanup context and the routes.

create_app should: merge ``records.schema.migrations()`` into the database migrations, append
``records_ctx`` to ``app.cleanup_ctx`` AFTER the database context, and call ``setup_routes(app)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from cti import keys
from records import api
from records.store import RecordsService, run_periodic

HANDOVER_INTERVAL_SECONDS = 60.0


def build_service(app: web.Application) -> RecordsService:
    settings = app[keys.SETTINGS]
    return RecordsService(
        app[keys.DB], settings.records, app[keys.CALENDARS], app[keys.CLOCK],
        office_closes=settings.calendar.office.closes,
    )


async def records_ctx(app: web.Application) -> AsyncIterator[None]:
    """Owns the records service and its periodic task (handover every minute, purge once a day)."""
    # aiosqlite logs every statement's parameters (names, phone numbers) at DEBUG: keep it quiet.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    service = build_service(app)
    app[keys.RECORDS] = service
    task = asyncio.create_task(run_periodic(service, HANDOVER_INTERVAL_SECONDS, "all"), name="records-periodic")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def setup_routes(app: web.Application) -> None:
    api.setup_routes(app)
