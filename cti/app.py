"""The composition root: create_app(settings) wires every package into one aiohttp application.

Every long-lived resource and background task is owned by a cleanup_ctx: started before the
server accepts requests, cancelled and awaited on shutdown, in reverse order.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

from access import accounts
from access import web as wiring_auth
from cti import cluster, keys
from cti.calendar import store as calendar_store
from cti.calendar.rules import Calendars
from cti.config import Settings
from cti.core.clock import Clock, system_clock
from cti.core.readiness import Readiness
from cti.db import open_database
from cti.store_backend import open_store
from faq import api as wiring_faq
from faq import store as faq_store
from records import plugin as records_wiring
from records import schema as records_schema
from screenpop import dispatcher as wiring_web
from screenpop import websocket as wiring_hub
from supervision import service as wiring_supervisor
from telephony import plugin as telephony_wiring
from telephony.agi import plugin as wiring_agi

_STARTED = Gauge("cti_start_time_seconds", "Unix time the cti app started")
_CALLS = Gauge("cti_calls", "Live calls by tracker state", ["state"])
_CALLBACKS = Gauge("cti_callbacks", "Callback requests by status (no personal data)", ["status"])


def migrations() -> Mapping[str, Sequence[str]]:
    """Every package's schema scripts, by component."""
    return {
        **records_schema.migrations(),
        **accounts.MIGRATIONS,
        faq_store.COMPONENT: faq_store.MIGRATIONS,
        **wiring_supervisor.migrations(),
    }


def create_app(settings: Settings, *, clock: Clock = system_clock) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024, middlewares=[wiring_auth.auth_middleware])
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock
    app[keys.CALENDARS] = Calendars.from_settings(settings.calendar)
    app[keys.READINESS] = Readiness()
    # Order matters: each context may use what the ones before it put into the app.
    app.cleanup_ctx.extend([
        database_ctx,
        # The stored runtime overrides / emergency switch, before anything routes calls or hands records over.
        calendar_store.calendar_ctx(keys.DATABASE, keys.CALENDARS),
        cluster.cluster_ctx,  # leases for run-once jobs; on PostgreSQL the calendar follows other nodes
        wiring_auth.auth_ctx,  # accounts, sessions, seats
        # The FAQ's import_on_start writes on the shared connection: before any periodic writer starts.
        wiring_faq.faq_ctx,  # FAQ index
        records_wiring.records_ctx,  # records service; handover and retention tasks
        telephony_wiring.ami_ctx,  # AMI link, call tracker, call control, presence
        wiring_agi.agi_ctx,  # FastAGI routing server
        wiring_hub.hub_ctx,  # operators' websockets
        wiring_web.pop_ctx,  # tracker events -> screen pops
        wiring_supervisor.supervisor_ctx,  # wall, call log, access alerts
    ])
    app.router.add_get("/healthz", wiring_auth.public(healthz))
    app.router.add_get("/readyz", wiring_auth.public(readyz))
    app.router.add_get("/metrics", wiring_auth.public(metrics))
    wiring_auth.setup_auth_routes(app)
    records_wiring.setup_routes(app)
    wiring_faq.setup_faq_routes(app)
    wiring_hub.setup_ws_routes(app)
    wiring_web.setup_web_routes(app)
    wiring_supervisor.setup_routes(app)
    _STARTED.set(time.time())
    return app


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """The database gateway (every write goes through it), migrated before anything uses it.

    keys.DB, the old shared aiosqlite connection, stays only while stores move to the gateway.
    """
    gateway = await open_store(app[keys.SETTINGS].store.target, migrations())
    app[keys.DATABASE] = gateway
    try:
        db = await open_database(app[keys.SETTINGS].store.path, migrations())
    except BaseException:
        await gateway.close()
        raise
    app[keys.DB] = db
    app[keys.READINESS].register("database", lambda: (True, {}))
    try:
        yield
    finally:
        app[keys.READINESS].unregister("database")
        await db.close()
        await gateway.close()


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and its event loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ready, components = request.app[keys.READINESS].report()
    return web.json_response(
        {"ready": ready, "components": components}, status=200 if ready else 503
    )


async def metrics(request: web.Request) -> web.Response:
    await _refresh_domain_gauges(request.app)
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _refresh_domain_gauges(app: web.Application) -> None:
    """Calls by state and callbacks by status, counted at scrape time (ids and counts only)."""
    tracker = app.get(keys.TRACKER)
    if tracker is not None:
        by_state: dict[str, int] = {}
        for call in tracker.live_calls():
            by_state[call.state] = by_state.get(call.state, 0) + 1
        _CALLS.clear()
        for state, count in by_state.items():
            _CALLS.labels(state=state).set(count)
    gateway = app.get(keys.DATABASE)  # the store the records are in (SQLite or PostgreSQL)
    if gateway is not None:
        rows = await gateway.read(lambda conn: [tuple(r) for r in conn.execute(
            "SELECT status, count(*) FROM callbacks GROUP BY status")])
        _CALLBACKS.clear()
        for status, count in rows:
            _CALLBACKS.labels(status=status).set(count)
