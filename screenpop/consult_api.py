"""Consult (attended) transfer and hold from the operator's screen (issue 16).

Routes (``setup_consult_routes``), each for the call the principal's seat answered (the server
decides, like the blind transfer), answered 202 once Asterisk accepted the action; the screen
shows the result from Asterisk's events (``call_update`` ``hold`` / ``consult``), not from this
answer:

  POST /api/operator/calls/{call_id}/consult           {"department"}: the citizen is put on
                                                       hold, the operator is put through to it
                                                       (office open only)
  POST /api/operator/calls/{call_id}/consult/complete  citizen <-> department, the operator leaves
  POST /api/operator/calls/{call_id}/consult/cancel    back to the citizen
  POST /api/operator/calls/{call_id}/hold              the citizen hears hold music
  POST /api/operator/calls/{call_id}/resume            back to the citizen (a hold cti made only)

How Asterisk does it, and what is not possible over AMI: telephony/consult.py.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from access.rules import OPERATOR_ROOM_ROLES
from access.web import requires
from cti.core.http import ApiError, error_response, json_response
from cti.core.logs import log_event
from screenpop.operator_api import answered_call, read_json_object, require_office_open, transfer_department
from telephony import keys as telephony_keys

logger = logging.getLogger("cti.screenpop.consult")

_operator_only = requires(roles=OPERATOR_ROOM_ROLES, operator_room_only=True)


def _my_call(request: web.Request) -> tuple[str, str, Any, Any]:
    """(user id, call id, tracker snapshot, consult control) of a connected call this operator answered."""
    user_id, call_id = answered_call(request)
    telephony = request.app.get(telephony_keys.AMI)
    tracker = getattr(telephony, "tracker", None)
    consult = getattr(telephony, "consult", None)
    snapshot = tracker.get(call_id) if tracker is not None else None
    if consult is None or snapshot is None or snapshot.state != "connected" or not snapshot.operator_channel:
        message = "通話中ではありません（すでに終了または転送された可能性があります）"
        raise ApiError(409, "call_gone", message, "call_id")
    return user_id, call_id, snapshot, consult


def _telephony_failed(call_id: str, step: str, exc: Exception) -> web.Response:
    log_event(logger, f"{step}_failed", logging.WARNING, call_id=call_id, error=type(exc).__name__)
    return error_response(502, "telephony_failed", "電話機を操作できませんでした。もう一度お試しください")


async def _send(call_id: str, user_id: str, step: str, action: Awaitable[None], **fields: Any) -> web.Response:
    try:
        await action
    except ValueError:
        return error_response(409, "call_gone", "通話が見つかりません（すでに終了した可能性があります）", "call_id")
    except Exception as exc:
        return _telephony_failed(call_id, step, exc)
    log_event(logger, f"{step}_requested", user_id=user_id, call_id=call_id, **fields)
    return json_response({"call_id": call_id, "requested": step, **fields}, 202)


@_operator_only
async def start_consult(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    if isinstance(body, web.Response):
        return body
    department = transfer_department(request, body)
    if department is None:
        return error_response(422, "invalid_field", "相談先の課が正しくありません", "department")
    user_id, call_id, snapshot, consult = _my_call(request)
    require_office_open(request, "相談転送")
    if snapshot.consult_extension is not None:
        raise ApiError(409, "consult_active", "相談中です（転送完了か取消を選んでください）")
    if snapshot.on_hold:
        raise ApiError(409, "on_hold", "保留中は相談転送できません（保留を解除してください）")
    action = consult.start(snapshot.operator_channel, department.transfer_extension)
    return await _send(call_id, user_id, "consult", action, department=department.code)


@_operator_only
async def complete_consult(request: web.Request) -> web.Response:
    user_id, call_id, snapshot, consult = _my_call(request)
    if snapshot.consult_extension is None:
        raise ApiError(409, "no_consult", "相談中ではありません")
    require_office_open(request, "転送")
    return await _send(call_id, user_id, "consult_complete", consult.complete(snapshot.operator_channel))


@_operator_only
async def cancel_consult(request: web.Request) -> web.Response:
    user_id, call_id, snapshot, consult = _my_call(request)
    if snapshot.consult_extension is None:
        raise ApiError(409, "no_consult", "相談中ではありません")
    return await _send(call_id, user_id, "consult_cancel", consult.cancel(snapshot.operator_channel))


@_operator_only
async def hold_call(request: web.Request) -> web.Response:
    user_id, call_id, snapshot, consult = _my_call(request)
    if snapshot.consult_extension is not None:
        raise ApiError(409, "consult_active", "相談中は保留できません（相談先と話している間、市民は保留中です）")
    if snapshot.on_hold:
        raise ApiError(409, "on_hold", "すでに保留中です")
    return await _send(call_id, user_id, "hold", consult.hold(snapshot.operator_channel))


@_operator_only
async def resume_call(request: web.Request) -> web.Response:
    user_id, call_id, snapshot, consult = _my_call(request)
    if not snapshot.on_hold or snapshot.consult_extension is not None:
        raise ApiError(409, "not_on_hold", "保留中ではありません")
    try:
        held_by_cti = await consult.held_by_cti(snapshot.operator_channel)
    except Exception as exc:  # the AMI link is down or slow: whose hold it is cannot be told
        return _telephony_failed(call_id, "resume", exc)
    if not held_by_cti:
        raise ApiError(409, "phone_hold", "電話機で保留されています。電話機の保留ボタンで解除してください")
    return await _send(call_id, user_id, "resume", consult.resume(snapshot.operator_channel))


def setup_consult_routes(app: web.Application) -> None:
    base = "/api/operator/calls/{call_id}"
    app.router.add_post(f"{base}/consult", start_consult)
    app.router.add_post(f"{base}/consult/complete", complete_consult)
    app.router.add_post(f"{base}/consult/cancel", cancel_consult)
    app.router.add_post(f"{base}/hold", hold_call)
    app.router.add_post(f"{base}/resume", resume_call)
