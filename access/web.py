"""aiohttp side of access: what other packages import, and the seat routes (moving to screenpop).

The pieces live in modules named after what they hold: access/context.py (AUTH, auth_ctx),
access/middleware.py (auth_middleware), access/route_access.py (requires, public, add_path_access),
access/routes.py (login, logout, me), access/login_page.py (the one login screen). The names below
are re-exported so ``from access.web import ...`` keeps working. The lead's create_app calls::

    app.cleanup_ctx.append(auth_ctx)          # after the database context (needs app[DATABASE], app[SETTINGS])
    app.middlewares.append(auth_middleware)   # before any middleware that reads the principal
    setup_auth_routes(app)
"""

from __future__ import annotations

import logging

from aiohttp import web

from access.context import AUTH, PASSWORD_HASHER, SEATS, AuthContext, auth_ctx
from access.middleware import (
    SESSION_KEY,
    SESSION_STATE_KEY,
    auth_middleware,
    denial_response,
    log_outside_room,
    principal_of,
    wants_json,
)
from access.route_access import ACCESS_ATTR, PATH_RULES, access_for, add_path_access, public, requires
from access.routes import setup_login_routes
from access.rules import OPERATOR_ROOM_ROLES, Access
from cti.core.http import current_principal, error_response
from cti.core.http import dumps as _dumps
from cti.core.logs import log_event
from cti.core.principal import Role
from screenpop.seats import SeatError, SeatTaken

__all__ = [
    "ACCESS_ATTR",
    "AUTH",
    "PASSWORD_HASHER",
    "PATH_RULES",
    "SEATS",
    "SESSION_KEY",
    "SESSION_STATE_KEY",
    "Access",
    "AuthContext",
    "access_for",
    "add_path_access",
    "auth_ctx",
    "auth_middleware",
    "denial_response",
    "log_outside_room",
    "principal_of",
    "public",
    "requires",
    "setup_auth_routes",
    "wants_json",
]

logger = logging.getLogger("cti.screenpop.auth")


def _bad_request(message: str) -> web.Response:
    return error_response(400, "bad_request", message)


# The seat routes as they were (screenpop moves them to its own package).


@requires(roles=OPERATOR_ROOM_ROLES | {Role.ADMIN}, operator_room_only=True)
async def list_seats(request: web.Request) -> web.Response:
    return web.json_response({"seats": request.app[AUTH].seats.snapshot()})


@requires(roles=OPERATOR_ROOM_ROLES, operator_room_only=True)
async def take_seat(request: web.Request) -> web.Response:
    ctx = request.app[AUTH]
    principal = current_principal(request)
    assert principal is not None
    try:
        body = await request.json()
    except ValueError:
        return _bad_request("本文がJSONではありません / body is not valid JSON")
    interface = body.get("interface") if isinstance(body, dict) else None
    if not isinstance(interface, str):
        return _bad_request("interface が必要です / interface (e.g. PJSIP/op101) is required")
    try:
        ctx.seats.take(principal.user_id, interface)
    except SeatTaken as exc:
        return web.json_response(
            {"error": "seat_taken", "message": str(exc), "holder": exc.holder}, status=409, dumps=_dumps
        )
    except SeatError as exc:
        return _bad_request(str(exc))
    log_event(logger, "seat_taken", user_id=principal.user_id, interface=interface)
    return web.json_response({"seat": interface})


@requires(roles=OPERATOR_ROOM_ROLES, operator_room_only=True)
async def release_seat(request: web.Request) -> web.Response:
    principal = current_principal(request)
    assert principal is not None
    released = request.app[AUTH].seats.release_user(principal.user_id)
    if released:
        log_event(logger, "seat_released", user_id=principal.user_id, interface=released)
    return web.json_response({"released": released})


def setup_auth_routes(app: web.Application) -> None:
    setup_login_routes(app)
    app.router.add_get("/api/seats", list_seats)
    app.router.add_post("/api/seat", take_seat)
    app.router.add_delete("/api/seat", release_seat)
