"""The composition root: create_app(settings) wires every package into one aiohttp application.

Every long-lived resource and background task is owned by a cleanup_ctx: started before the
server accepts requests, cancelled and awaited on shutdown, in reverse order.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

from cti import keys
from cti.calendar import Calendars
from cti.clock import Clock, system_clock
from cti.config import Settings
from cti.db import open_database
from cti.readiness import Readiness

_STARTED = Gauge("cti_start_time_seconds", "Unix time the cti app started")


def migrations() -> Mapping[str, Sequence[str]]:
    """Every package's schema scripts, by component."""
    return {}


def create_app(settings: Settings, *, clock: Clock = system_clock) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock
    app[keys.CALENDARS] = Calendars.from_settings(settings.calendar)
    app[keys.READINESS] = Readiness()
    app.cleanup_ctx.append(database_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    _STARTED.set(time.time())
    return app


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """The one long-lived SQLite connection, migrated before anything uses it."""
    db = await open_database(app[keys.SETTINGS].store.path, migrations())
    app[keys.DB] = db
    app[keys.READINESS].register("database", lambda: (True, {}))
    try:
        yield
    finally:
        app[keys.READINESS].unregister("database")
        await db.close()


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and its event loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ready, components = request.app[keys.READINESS].report()
    return web.json_response(
        {"ready": ready, "components": components}, status=200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
