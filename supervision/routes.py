"""The supervisor's HTTP routes: the wall, the access alerts (list, acknowledge) and the pages.

    GET  /api/supervisor/wall                    the live wall (counts and ids only)
    GET  /api/supervisor/alerts[?all=1]          alerts not yet acknowledged (all: the acknowledged too)
    POST /api/supervisor/alerts/{id}/ack         a supervisor acknowledges an alert (audited)

Supervisors and admins from the operator room; the auth middleware checks the CSRF token of POSTs.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from aiohttp import web

from access.route_access import SUPERVISORS, Handler, require
from cti.core.http import ApiError, json_response
from cti.core.logs import log_event
from cti.core.principal import Role
from cti.gateway import DATABASE
from records import department_api
from records.api import guarded
from supervision import alert_store, calendar_api, reports_api
from supervision.keys import SUPERVISOR
from supervision.messages import AlertAcknowledged

logger = logging.getLogger("supervision.routes")

SUPERVISOR_WEB = Path(__file__).parent / "web"
DEPARTMENT_WEB = Path(__file__).parent.parent / "records" / "web"


@guarded
async def get_wall(request: web.Request) -> web.StreamResponse:
    require(request, SUPERVISORS, operator_room_only=True)
    return json_response(request.app[SUPERVISOR].feed.view())


@guarded
async def get_alerts(request: web.Request) -> web.StreamResponse:
    require(request, SUPERVISORS, operator_room_only=True)
    everything = request.query.get("all") in ("1", "true")
    items = await request.app[DATABASE].read(
        lambda conn: alert_store.open_alerts(conn, with_acknowledged=everything))
    return json_response({"items": items})


@guarded
async def acknowledge_alert(request: web.Request) -> web.StreamResponse:
    who = require(request, SUPERVISORS, operator_room_only=True)
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise ApiError(404, "not_found", f"警告 {raw} はありません", "id")
    alert_id = int(raw)
    sup = request.app[SUPERVISOR]
    now = sup.feed.clock()
    try:
        alert = await request.app[DATABASE].write(
            lambda conn: alert_store.acknowledge(conn, alert_id, who, now))
    except alert_store.AlertNotFound:
        raise ApiError(404, "not_found", f"警告 {alert_id} はありません", "id") from None
    except alert_store.AlreadyAcknowledged as done:
        raise ApiError(409, "already_acknowledged",
                       f"警告 {alert_id} は {done.alert['acknowledged_by']} が確認済みです", "id") from None
    except sqlite3.Error:
        log_event(logger, "alert_ack_failed", logging.ERROR, alert_id=alert_id, user=who.user_id, exc_info=True)
        raise ApiError(503, "store_failed", "保存できませんでした。もう一度お試しください") from None
    log_event(logger, "access_alert_acknowledged", alert_id=alert_id, user=who.user_id)
    sup.feed.send_to_supervisors(AlertAcknowledged(id=alert_id, acknowledged_by=who.user_id,
                                                   acknowledged_at=alert["acknowledged_at"]))
    return json_response(alert)


def _page(folder: Path) -> Handler:
    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(folder / "index.html", headers={"Cache-Control": "no-store"})

    return index


def setup_routes(app: web.Application) -> None:
    from access.rules import Access
    from access.web import add_path_access, requires

    room = requires(SUPERVISORS, operator_room_only=True)
    app.router.add_get("/api/supervisor/wall", room(get_wall))
    app.router.add_get("/api/supervisor/alerts", room(get_alerts))
    app.router.add_post("/api/supervisor/alerts/{id}/ack", room(acknowledge_alert))
    calendar_api.setup_routes(app)
    reports_api.setup_routes(app)
    department_api.setup_routes(app)
    add_path_access(app, "/supervisor/", Access(roles=SUPERVISORS, operator_room_only=True))
    add_path_access(app, "/department/", Access(roles=frozenset({Role.DEPARTMENT, Role.ADMIN})))
    app.router.add_get("/supervisor/", room(_page(SUPERVISOR_WEB)))
    app.router.add_get("/department/", requires({Role.DEPARTMENT, Role.ADMIN})(_page(DEPARTMENT_WEB)))
    app.router.add_static("/supervisor/assets/", SUPERVISOR_WEB, name="supervisor_assets")
    app.router.add_static("/department/assets/", DEPARTMENT_WEB, name="department_assets")
