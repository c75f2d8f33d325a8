"""Department staff API: the handed-over inbox and click-to-call.

    GET  /api/department/inbox                    callbacks of the user's department (区政情報課: all),
                                                  overdue first, then by deadline; closed ones last
    POST /api/department/callbacks/{id}/call      {"extension": "201", "version": 3}
                                                  rings the staff phone, then the citizen (ward caller ID)
    GET  /api/department/callbacks/{id}/call      the attempt's state (sending/queued/answered/...)

Reading, scoping (404 + audit for another department's record, the same answer as a missing one),
starting, attempts and closing all go through records' own service (records.service.RecordsService),
which audits each of them. A record is marked in progress only once the Originate was accepted;
attempt outcomes and the close use records' API (/api/records/callbacks/{id}/attempts, /close).
The live progress of a call arrives on the websocket as ``callback_progress`` messages.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from aiohttp import web

from access.route_access import DEPARTMENT_STAFF, require
from cti.core.http import ApiError, json_response
from cti.core.logs import log_event
from cti.core.principal import Role
from cti.core.run_once import node_name
from cti.gateway import DATABASE
from records import dial_claims
from records import keys as records_keys
from records.api import guarded, read_json_object
from records.rules import SQLITE_MAX_ROWID, RecordsError, parse_record_id
from records.settings import DepartmentScreenSettings
from telephony import keys as telephony_keys

logger = logging.getLogger("screenpop.department")

EXTENSION = re.compile(r"^[0-9]{2,8}$")
CLOSED = ("closed", "closed_unreached")

# The `[department_screen]` section (set by the composition root; tests may set their own before startup).
SCREEN_SETTINGS: web.AppKey[DepartmentScreenSettings] = web.AppKey("department_screen", DepartmentScreenSettings)

# callback id -> user id of the staff member who placed the call (progress goes to them)
CALL_OWNERS: web.AppKey[dict[str, str]] = web.AppKey("department_call_owners", dict)


def inbox_order(item: dict[str, Any]) -> tuple[int, int, str, int]:
    """Overdue first, then open ones by deadline, closed ones last (newest closed first is not needed)."""
    closed = item["status"] in CLOSED
    due: datetime = item["due_by"]
    return (1 if closed else 0, 0 if item.get("overdue") else 1, due.isoformat(), int(item["id"]))


@guarded
async def inbox(request: web.Request) -> web.StreamResponse:
    who = require(request, DEPARTMENT_STAFF)
    service = request.app[records_keys.SERVICE]
    include_closed = request.query.get("closed") == "true"
    items = await service.list_callbacks(who, limit=500)
    if not include_closed:
        items = [i for i in items if i["status"] not in CLOSED]
    items.sort(key=inbox_order)
    names = {d.code: d.name for d in request.app[records_keys.SETTINGS].departments}
    for item in items:
        item["department_name"] = names.get(item["department"], item["department"])
    summary = {
        "total": len(items),
        "overdue": sum(1 for i in items if i.get("overdue")),
        "handed_over": sum(1 for i in items if i["status"] == "handed_over"),
        "in_progress": sum(1 for i in items if i["status"] == "in_progress"),
    }
    return json_response({"items": items, "summary": summary, "department": who.department,
                          "department_name": names.get(who.department or "", who.department),
                          "sees_all": who.role == Role.ADMIN or who.department
                          == request.app[records_keys.SETTINGS].public_information_department})


def staff_phone(app: web.Application, extension: str) -> str:
    """The dial string of the staff member's own phone (settings.department_screen.staff_phone)."""
    settings = app.get(SCREEN_SETTINGS)
    template = settings.staff_phone if settings is not None else "PJSIP/{extension}"
    return template.replace("{extension}", extension)


def _default_extension(request: web.Request, department: str | None) -> str | None:
    for d in request.app[records_keys.SETTINGS].departments:
        if d.code == department:
            return d.transfer_extension
    return None


def _version(body: dict[str, Any], record: dict[str, Any]) -> int:
    raw = body.get("version", record["version"])
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= SQLITE_MAX_ROWID:
        raise ApiError(422, "invalid_field", "version は読み込んだ版の番号（1以上の整数）です", "version")
    return raw


@guarded
async def place_call(request: web.Request) -> web.StreamResponse:
    who = require(request, DEPARTMENT_STAFF)
    callback_id = parse_record_id(request.match_info["id"])
    if callback_id is None:
        raise ApiError(404, "not_found", "折り返し依頼の番号が正しくありません", "id")
    body = await read_json_object(request)
    extension = body.get("extension") or _default_extension(request, who.department)
    if not isinstance(extension, str) or not EXTENSION.match(extension):
        raise ApiError(422, "invalid_extension", "ご自身の内線番号を数字2〜8桁で入力してください", "extension")
    service = request.app[records_keys.SERVICE]
    # The audited, scoped read: another department's record answers 404 here (audited as denied).
    record = await service.get_callback(who, callback_id)
    version = _version(body, record)
    if record["status"] in CLOSED:
        raise ApiError(409, "already_closed", "この依頼は完了しています", "status")
    if version != record["version"]:
        raise ApiError(409, "version_conflict", "他の職員が先に更新しました。最新の内容を読み込み直してください",
                       "version")
    telephony = request.app.get(telephony_keys.AMI)
    if telephony is None:
        raise ApiError(503, "telephony_unavailable", "電話設備に接続されていないため発信できません")
    from telephony.ami.actions import AmiError
    from telephony.control import CallbackAlreadyActive

    # Dial once across cti nodes: a click retried on another node finds the claim (records/dial_claims.py).
    db, node = request.app[DATABASE], node_name()
    if not await db.write(lambda conn: dial_claims.claim(conn, callback_id, who.user_id, node, service.now())):
        raise ApiError(409, "call_in_progress", "この依頼は別の画面から発信中です")
    owners = request.app[CALL_OWNERS]
    previous_owner = owners.get(str(callback_id))
    owners[str(callback_id)] = who.user_id  # before the Originate: its first events arrive at once
    try:
        try:
            attempt = await _originate(telephony, str(callback_id), staff_phone(request.app, extension),
                                       record["phone"], owners, previous_owner)
        except BaseException as exc:
            if not isinstance(exc, CallbackAlreadyActive):  # that live attempt keeps the claim
                await db.write(lambda conn: dial_claims.release(conn, callback_id, node))
            raise
    except CallbackAlreadyActive as exc:
        raise ApiError(409, "call_in_progress", f"この依頼は発信中です（状態: {exc.state.value}）") from None
    except ValueError:
        raise ApiError(422, "invalid_number", "電話番号または内線番号の形式が発信に使えません", "phone") from None
    except AmiError as exc:
        await service.audit_alone(who, "call", "callback", callback_id, "failed", {"error": type(exc).__name__})
        raise ApiError(502, "originate_failed",
                       "電話設備が発信を受け付けませんでした。時間をおいてお試しください") from None
    # Only a call that really went out marks the record in progress.
    if record["status"] == "handed_over":
        try:
            record = await service.start(who, callback_id, version)
        except RecordsError as err:  # changed meanwhile: the call is placed, the record stays as the other left it
            log_event(logger, "callback_start_after_call_refused", level=logging.WARNING,
                      callback_id=callback_id, code=err.code)
    await service.audit_alone(who, "call", "callback", callback_id, "ok",
                              {"extension": extension, "state": attempt.state.value})
    log_event(logger, "callback_call_placed", callback_id=callback_id, user=who.user_id, state=attempt.state.value)
    return json_response({"callback_id": callback_id, "state": attempt.state.value, "callback": record}, 202)


async def _originate(telephony: Any, callback_id: str, staff: str, citizen: str, owners: dict[str, str],
                     previous_owner: str | None) -> Any:
    """Originate; on any failure the progress owner goes back to what it was."""
    try:
        return await telephony.control.originate_callback(callback_id, staff, citizen)
    except BaseException:
        if previous_owner is None:
            owners.pop(callback_id, None)
        else:
            owners[callback_id] = previous_owner
        raise


@guarded
async def call_status(request: web.Request) -> web.StreamResponse:
    who = require(request, DEPARTMENT_STAFF)
    callback_id = parse_record_id(request.match_info["id"])
    if callback_id is None:
        raise ApiError(404, "not_found", "折り返し依頼の番号が正しくありません", "id")
    # Only for records of one's own department (区政情報課 and admins: all); others are 404, audited.
    await request.app[records_keys.SERVICE].check_scope(who, callback_id)
    owner = request.app[CALL_OWNERS].get(str(callback_id))
    if owner is not None and owner != who.user_id and who.role != Role.ADMIN:
        raise ApiError(403, "forbidden", "他の職員の発信状況は参照できません")
    telephony = request.app.get(telephony_keys.AMI)
    attempt = telephony.control.callback_status(str(callback_id)) if telephony is not None else None
    if attempt is None:
        raise ApiError(404, "no_call", "この依頼の発信はありません", "id")
    return json_response({"callback_id": str(callback_id), "state": attempt.state.value, "reason": attempt.reason,
                          "active": attempt.active})


def setup_routes(app: web.Application) -> None:
    from access.web import requires

    app.setdefault(CALL_OWNERS, {})
    app.router.add_get("/api/department/inbox", requires(DEPARTMENT_STAFF)(inbox))
    app.router.add_post("/api/department/callbacks/{id}/call", requires(DEPARTMENT_STAFF)(place_call))
    app.router.add_get("/api/department/callbacks/{id}/call", requires(DEPARTMENT_STAFF)(call_status))


__all__ = ["CALL_OWNERS", "RecordsError", "inbox", "setup_routes"]
