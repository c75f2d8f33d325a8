"""The composition root: create_app(settings) wires every package into one aiohttp application.

Every long-lived resource and background task is owned by a cleanup_ctx: started before the
server accepts requests, cancelled and awaited on shutdown, in reverse order.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

from access import accounts
from access import keys as access_keys
from access import web as wiring_auth
from access.middleware import client_address_middleware
from access.settings import AccessSettings
from cti import cluster, keys
from cti.calendar import keys as calendar_keys
from cti.calendar.rules import Calendars
from cti.config import Settings
from cti.core.clock import Clock, system_clock
from cti.core.http import error_middleware, json_guard_middleware, security_headers_middleware
from cti.core.readiness import Readiness
from cti.store_backend import open_store
from faq import api as wiring_faq
from faq import keys as faq_keys
from faq import store as faq_store
from records import department_api
from records import keys as records_keys
from records import plugin as records_wiring
from records import schema as records_schema
from screenpop import consult_api, desk_service, operator_api, seat_api
from screenpop import dispatcher as wiring_web
from screenpop import keys as screenpop_keys
from screenpop import schema as screenpop_schema
from screenpop import websocket as wiring_hub
from screenpop.seats import SeatMap
from screenpop.settings import ScreenSettings
from supervision import calendar_store
from supervision import keys as supervision_keys
from supervision import service as wiring_supervisor
from telephony import keys as telephony_keys
from telephony import plugin as telephony_wiring
from telephony import route_state
from telephony.agi import plugin as wiring_agi
from telephony.settings import TelephonySettings

_STARTED = Gauge("cti_start_time_seconds", "Unix time the cti app started")
_CALLS = Gauge("cti_calls", "Live calls by tracker state", ["state"])
_CALLBACKS = Gauge("cti_callbacks", "Callback requests by status (no personal data)", ["status"])


def migrations() -> Mapping[str, Sequence[str]]:
    """Every package's schema scripts, by component."""
    return {
        **records_schema.migrations(),
        **accounts.MIGRATIONS,
        faq_store.COMPONENT: faq_store.MIGRATIONS,
        screenpop_schema.COMPONENT: screenpop_schema.MIGRATIONS,
        **wiring_supervisor.migrations(),
    }


def create_app(settings: Settings, *, clock: Clock = system_clock) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024, middlewares=http_middlewares())
    put_settings(app, settings)
    share_seats(app)
    app[keys.CLOCK] = clock
    app[keys.CALENDARS] = Calendars.from_settings(settings.calendar)
    app[keys.READINESS] = Readiness()
    # Order matters: each context may use what the ones before it put into the app.
    app.cleanup_ctx.extend([
        database_ctx,
        # The stored runtime overrides / emergency switch, before anything routes calls or hands records over.
        calendar_store.calendar_ctx(keys.DATABASE, keys.CALENDARS),
        cluster.cluster_ctx,  # leases for run-once jobs; on PostgreSQL the calendar follows other nodes
        wiring_auth.auth_ctx,  # accounts, sessions
        seat_api.seats_ctx,  # the seat map follows access's sessions (logout frees the seat; /api/me)
        # The FAQ's import_on_start writes on the shared connection: before any periodic writer starts.
        wiring_faq.faq_ctx,  # FAQ index
        records_wiring.records_ctx,  # records service; handover and retention tasks
        telephony_wiring.ami_ctx,  # AMI link, call tracker, call control, presence
        route_state.route_state_ctx,  # the routing decision kept in Asterisk (calls never wait on cti)
        wiring_agi.agi_ctx,  # FastAGI routing server
        wiring_hub.hub_ctx,  # operators' websockets
        desk_service.desks_ctx,  # seats and presence, restored; queue pause re-asserted on AMI resync
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
    operator_api.setup_web_routes(app)
    consult_api.setup_consult_routes(app)
    seat_api.setup_seat_routes(app)
    wiring_supervisor.setup_routes(app)
    # Last: the AMI link connects once every listener of the tracker subscribed (contexts and the
    # on_startup handlers above, such as the call log's).
    app.on_startup.append(telephony_wiring.start_ami_link)
    _STARTED.set(time.time())
    return app


def put_settings(app: web.Application, settings: Settings) -> None:
    """The whole Settings for the root, and each package's own sections under that package's key (the
    same objects: a section changed in one place is changed for everyone)."""
    app[keys.SETTINGS] = settings
    app[calendar_keys.SETTINGS] = settings.calendar
    app[access_keys.SETTINGS] = AccessSettings(
        security=settings.security,
        tls=settings.http.tls_cert is not None,
        known_departments=tuple(d.code for d in settings.records.departments),
    )
    app[faq_keys.SETTINGS] = settings.faq
    app[records_keys.SETTINGS] = settings.records
    app[department_api.SCREEN_SETTINGS] = settings.department_screen
    app[screenpop_keys.SETTINGS] = ScreenSettings(hub=settings.hub, desk=settings.desk)
    app[telephony_keys.SETTINGS] = TelephonySettings(ami=settings.ami, agi=settings.agi,
                                                     call_control=settings.call_control)
    app[supervision_keys.ALERT_SETTINGS] = settings.alerts


def share_seats(app: web.Application) -> SeatMap:
    """Screenpop's seat map (who sits where), also handed to records as its seat lookup (the operator
    of a contact) so records need not import screenpop."""
    seats = SeatMap()
    app[screenpop_keys.SEATS] = seats
    app[records_keys.SEATS] = seats
    return seats


def http_middlewares() -> list[Middleware]:
    """Outermost first: errors become the envelope, the client address is resolved, every answer gets
    the security headers, access is decided, and only then is a JSON body read and checked."""
    return [
        error_middleware,
        client_address_middleware,  # the client behind a trusted proxy, for everything after it
        security_headers_middleware,
        wiring_auth.auth_middleware,
        json_guard_middleware,
    ]


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """The database gateway (every write goes through it), migrated before anything uses it."""
    gateway = await open_store(app[keys.SETTINGS].store.target, migrations())
    app[keys.DATABASE] = gateway
    app[keys.READINESS].register("database", lambda: (True, {}))
    try:
        yield
    finally:
        app[keys.READINESS].unregister("database")
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
    db = app.get(keys.DATABASE)  # the store the records are in (SQLite or PostgreSQL)
    if db is not None:
        rows = await db.read(lambda conn: [tuple(r) for r in conn.execute(
            "SELECT status, count(*) FROM callbacks GROUP BY status")])
        _CALLBACKS.clear()
        for status, count in rows:
            _CALLBACKS.labels(status=status).set(count)
