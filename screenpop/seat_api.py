"""Seat routes: which queue member interface (phone) an operator answers at.

  GET    /api/seats   seats taken now (interface -> user id); operator room only
  POST   /api/seat    {"interface": "101"} (or 席101, PJSIP/101): take it (409 naming the holder when taken,
                       400 listing the queue's seats when it is not one of them)
  DELETE /api/seat    free my seat

Seats are kept by the desks (screenpop/desks.py, in the database), so they survive a restart.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from access.rules import OPERATOR_ROOM_ROLES
from access.web import AUTH, requires
from cti.core.http import current_principal, error_response, json_response
from cti.core.logs import log_event
from cti.core.principal import Role
from screenpop.desk_service import seat_taken
from screenpop.keys import DESKS, SEATS
from screenpop.operator_api import read_json_object
from screenpop.seats import SeatError, SeatMap, SeatTaken, SeatUnknown, seat_label

logger = logging.getLogger("cti.screenpop.seats")


async def seats_ctx(app: web.Application) -> AsyncIterator[None]:
    """Right after access's context: the seat map (the composition root's, or a new one), followed by
    access: a session's end (logout) frees the user's seat, and /api/me tells the user's seat."""
    seats = app.get(SEATS)
    if seats is None:
        seats = app[SEATS] = SeatMap()
    auth = app[AUTH]
    auth.session_ended.append(lambda _token_hash, user_id: _free_seat(seats, user_id))
    auth.me_parts.append(lambda user_id: {"seat": seats.seat_of(user_id)})
    yield


def _free_seat(seats: SeatMap, user_id: str | None) -> None:
    if user_id is not None:  # a login replacing a session keeps the seat
        seats.release_user(user_id)


@requires(roles=OPERATOR_ROOM_ROLES | {Role.ADMIN}, operator_room_only=True)
async def list_seats(request: web.Request) -> web.Response:
    seats = request.app[DESKS].seats
    taken = seats.snapshot()
    # labels: how people say each seat (席101（内線101）), for the known queue members and taken seats
    labels = {interface: seat_label(interface) for interface in sorted({*taken, *seats.known_seats()})}
    return json_response({"seats": taken, "labels": labels})


@requires(roles=OPERATOR_ROOM_ROLES, operator_room_only=True)
async def take_seat(request: web.Request) -> web.Response:
    principal = current_principal(request)
    assert principal is not None
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return body
    interface = body.get("interface")
    if not isinstance(interface, str):
        return error_response(400, "invalid_field", "席（例: 101）を指定してください", "interface")
    book = request.app[DESKS]
    try:
        desk = await book.take_seat(principal.user_id, interface)
    except SeatTaken as exc:
        return json_response({"error": {"code": "seat_taken", "message": str(exc), "field": "interface"},
                              "holder": exc.holder}, 409)
    except SeatUnknown as exc:
        return json_response({"error": {"code": "unknown_seat", "message": str(exc), "field": "interface"},
                              "seats": {k: seat_label(k) for k in exc.known}}, 400)
    except SeatError as exc:
        return error_response(400, "invalid_field", str(exc), "interface")
    log_event(logger, "seat_taken", user_id=principal.user_id, interface=desk.interface)
    await seat_taken(request.app, desk)
    return json_response({"seat": desk.interface, "label": seat_label(desk.interface or "")})


@requires(roles=OPERATOR_ROOM_ROLES, operator_room_only=True)
async def release_seat(request: web.Request) -> web.Response:
    principal = current_principal(request)
    assert principal is not None
    released = await request.app[DESKS].release_seat(principal.user_id)
    if released:
        log_event(logger, "seat_released", user_id=principal.user_id, interface=released)
    return json_response({"released": released})


def setup_seat_routes(app: web.Application) -> None:
    app.router.add_get("/api/seats", list_seats)
    app.router.add_post("/api/seat", take_seat)
    app.router.add_delete("/api/seat", release_seat)
