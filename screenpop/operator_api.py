"""The operator page and its small APIs (the pop itself goes over the websocket: dispatcher.py).

Routes (``setup_web_routes``):
  GET  /, /operator/                  the operator page (screenpop/web/index.html)
  GET  /static/...                    its CSS and ES modules, and the staff pages' shared ones
  GET  /api/operator/config           departments, consent script, FAQ credit, known seats
  GET  /api/operator/office           is the ward office open now (and why not)
  GET  /api/operator/calls            today's calls popped to me (ids, times, categories only)
  GET  /api/operator/current          my latest pop again (after a reload), with call_state
  POST /api/operator/calls/{call_id}/transfer   {"department"}: blind transfer (office open only)
  (consult transfer and hold: screenpop/consult_api.py)

Errors are ``{"error": {"code", "message" (Japanese), "field"}}``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from access.rules import OPERATOR_ROOM_ROLES, Access
from access.web import ACCESS_ATTR, AUTH, public, requires
from cti.calendar import keys as calendar_keys
from cti.core import keys as core_keys
from cti.core.http import ApiError, current_principal, error_response, json_response
from cti.core.logs import log_event
from faq import keys as faq_keys
from records import keys as records_keys
from records.settings import Department
from screenpop.keys import DISPATCHER, SEATS
from telephony import keys as telephony_keys

logger = logging.getLogger("cti.screenpop.web")

WEB_DIR = Path(__file__).parent / "web"
FAQ_CREDIT = "出典：子育てオープンデータ協議会「汎用FAQ」（CC BY 4.0）"

_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
}

_operator_only = requires(roles=OPERATOR_ROOM_ROLES, operator_room_only=True)
_any_login = requires()


async def read_json_object(request: web.Request) -> dict[str, Any] | web.Response:
    """The request's JSON object body, or the 400 to answer."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "invalid_json", "リクエストの本文がJSONではありません")
    if not isinstance(body, dict):
        return error_response(400, "invalid_json", "リクエストの本文はJSONオブジェクトにしてください")
    return body


# ---- routes ---------------------------------------------------------------------------------------


@public
async def landing(request: web.Request) -> web.StreamResponse:
    """`/`: the operator screen inside the operator room; department staff elsewhere go to theirs."""
    if not request.app[AUTH].from_operator_room(request.remote):
        raise web.HTTPFound("/department/")
    return await operator_page(request)


async def operator_page(request: web.Request) -> web.StreamResponse:
    """`/operator/`: served to the operator room's networks only (declared in setup_web_routes)."""
    headers = {**_PAGE_HEADERS, "Content-Type": "text/html; charset=utf-8"}
    return web.FileResponse(WEB_DIR / "index.html", headers=headers)


# The page carries no personal data, but operator screens work only from the operator room.
setattr(operator_page, ACCESS_ATTR, Access(public=True, operator_room_only=True))


@_any_login
async def operator_config(request: web.Request) -> web.Response:
    app = request.app
    settings = app[records_keys.SETTINGS]
    faq = app.get(faq_keys.FAQ)
    script = settings.consent_script
    seats: set[str] = set()
    telephony = app.get(telephony_keys.AMI)
    board = getattr(telephony, "presence", None)
    if board is not None:
        seats |= {m.interface for m in board.members()}
    seat_map = app.get(SEATS)
    if seat_map is not None:
        seats |= set(seat_map.snapshot())
    return json_response({
        "departments": [
            {"code": d.code, "name": d.name, "transfer": d.transfer_extension} for d in settings.departments
        ],
        "category_departments": {
            category: code for category, code in settings.category_departments.items()
            if any(d.code == code for d in settings.departments)
        },
        "consent_script": {"id": script.id, "version": script.version, "text": script.text, "lead": script.lead,
                           "closed_leads": script.closed_leads},
        "faq_credit": (faq.credit if faq is not None else "") or FAQ_CREDIT,
        "seats": sorted(seats),
    })


@_any_login
async def office_status(request: web.Request) -> web.Response:
    now = request.app[core_keys.CLOCK]()
    status = request.app[calendar_keys.CALENDARS].office(now)
    return json_response({
        "open": status.open,
        "reason": status.reason,
        "reason_text": status.reason_text,
        "next_open": status.next_open,
    })


@_operator_only
async def today_calls(request: web.Request) -> web.Response:
    principal = current_principal(request)
    assert principal is not None
    dispatcher = request.app.get(DISPATCHER)
    items = dispatcher.today(principal.user_id, request.app[core_keys.CLOCK]()) if dispatcher else []
    return json_response({"items": items})


@_operator_only
async def current_call(request: web.Request) -> web.Response:
    principal = current_principal(request)
    assert principal is not None
    dispatcher = request.app.get(DISPATCHER)
    pop = await dispatcher.current(principal.user_id) if dispatcher else None
    if pop is not None:
        # hold and consult as Asterisk reported them last (the page shows 保留中 / 相談中 again)
        tracker = getattr(request.app.get(telephony_keys.AMI), "tracker", None)
        snapshot = tracker.get(pop["call_id"]) if tracker is not None else None
        pop["on_hold"] = bool(getattr(snapshot, "on_hold", False))
        pop["consult_extension"] = getattr(snapshot, "consult_extension", None)
    return json_response({"pop": pop})


def answered_call(request: web.Request) -> tuple[str, str]:
    """(user id, call id) of the path's call when this operator answered it, else ApiError 403: the
    server's record of who answered decides (screenpop.router), never the page."""
    principal = current_principal(request)
    assert principal is not None
    call_id = request.match_info["call_id"]
    dispatcher = request.app.get(DISPATCHER)
    if dispatcher is None or dispatcher.router.answered_by(call_id) != principal.user_id:
        raise ApiError(403, "not_your_call", "この通話はあなたが対応中の通話ではありません", "call_id")
    return principal.user_id, call_id


def require_office_open(request: web.Request, what: str) -> None:
    """ApiError 409 while the ward office is closed (a department cannot take the call then)."""
    office = request.app[calendar_keys.CALENDARS].office(request.app[core_keys.CLOCK]())
    if not office.open:
        message = f"区役所が閉庁中（{office.reason_text}）のため{what}できません"
        raise ApiError(409, "office_closed", message, "department")


def transfer_department(request: web.Request, body: dict[str, Any]) -> Department | None:
    """The department named by the body's "department" code, if calls can be transferred to it."""
    code = body.get("department")
    departments = {d.code: d for d in request.app[records_keys.SETTINGS].departments}
    department = departments.get(code) if isinstance(code, str) else None
    return department if department is not None and department.transfer_extension else None


def _control(request: web.Request) -> Any:
    telephony = request.app.get(telephony_keys.AMI)
    return getattr(telephony, "control", None)


@_operator_only
async def transfer_call(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return body
    department = transfer_department(request, body)
    if department is None:
        return error_response(422, "invalid_field", "転送先の課が正しくありません", "department")
    user_id, call_id = answered_call(request)
    require_office_open(request, "転送")
    telephony = request.app.get(telephony_keys.AMI)
    tracker = getattr(telephony, "tracker", None)
    snapshot = tracker.get(call_id) if tracker is not None else None
    channel = getattr(snapshot, "citizen_channel", None)
    control = _control(request)
    if control is None or not channel:
        return error_response(409, "call_gone", "通話が見つかりません（すでに終了した可能性があります）", "call_id")
    if getattr(snapshot, "consult_extension", None) or getattr(snapshot, "on_hold", False):
        # the citizen waits on hold (cti's hold or a consult): take the call back first
        message = "保留中・相談中は転送できません（保留解除か取消のあとで転送してください）"
        return error_response(409, "on_hold", message)
    try:
        await control.transfer(channel, department.transfer_extension)
    except Exception as exc:
        log_event(logger, "transfer_failed", logging.WARNING, call_id=call_id, error=type(exc).__name__)
        return error_response(502, "telephony_failed", "転送できませんでした。もう一度お試しください")
    log_event(logger, "transfer_requested", user_id=user_id, call_id=call_id, department=department.code)
    return json_response(
        {"call_id": call_id, "department": department.code, "extension": department.transfer_extension}, 202
    )


def setup_web_routes(app: web.Application) -> None:
    app.router.add_get("/", landing)
    app.router.add_get("/operator/", operator_page)
    app.router.add_static("/static/", WEB_DIR, follow_symlinks=False, show_index=False)
    app.router.add_get("/api/operator/config", operator_config)
    app.router.add_get("/api/operator/office", office_status)
    app.router.add_get("/api/operator/calls", today_calls)
    app.router.add_get("/api/operator/current", current_call)
    app.router.add_post("/api/operator/calls/{call_id}/transfer", transfer_call)
