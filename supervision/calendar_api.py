"""Supervisor calendar control: the emergency close switch and runtime overrides (closures, extra openings).

Each change is one unit of work for the database gateway holding the persisted state (so it survives
a restart) and its hash-chained audit row (supervision.calendar_store). The in-memory Calendars object - the
very one the FastAGI server and the records handover ask - is changed only after that unit's COMMIT
returned, so routing follows at once and a failed request (or a failed COMMIT) changes nothing.
Supervisors and admins only, from the operator room; the auth middleware checks the CSRF token of
every POST/DELETE.

    GET  /api/calendar/emergency          {"active", "reason", "call_center": Status, "office": Status}
    POST /api/calendar/emergency          {"active": true, "reason": "..."} | {"active": false}
    GET  /api/calendar/overrides          {"items": [...]} (configured ones are read-only)
    POST /api/calendar/overrides          {"kind", "applies_to", "start", "end", "reason"}
    DELETE /api/calendar/overrides/{id}   (or DELETE /api/calendar/overrides?id=rt-3)
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web

from access.route_access import SUPERVISORS, require
from cti.calendar import keys as calendar_keys
from cti.calendar.rules import Override, Which
from cti.core import keys as core_keys
from cti.core.clock import TOKYO
from cti.core.http import ApiError, current_principal, json_object, json_response
from cti.core.logs import log_event
from cti.gateway import DATABASE
from records.api import guarded
from supervision import calendar_store as store
from supervision.calendar_store import RUNTIME_PREFIX

logger = logging.getLogger("cti.calendar.api")
T = TypeVar("T")

MAX_REASON_CHARS = 200
# Runtime overrides must lie within these years: a typo such as 0001 or 9999 is refused with a
# message instead of reaching the calendars (dates near datetime's limits overflow in arithmetic).
FIRST_YEAR, LAST_YEAR = 2000, 2100


def _store_failed() -> ApiError:
    return ApiError(503, "store_failed",
                    "保存できませんでした。しばらくしてからもう一度お試しください（設定は変わっていません）")


async def _store_then_apply(
    request: web.Request, change: str, unit: Callable[[sqlite3.Connection], T], apply: Callable[[T], None]
) -> T:
    """Run the unit of work, then - only after its COMMIT - change the in-memory calendar.

    Both run in one shielded task: a request cancelled meanwhile (the client left) cannot leave a
    stored change that routing does not follow. A failed unit or COMMIT changes nothing: 503.
    """
    db = request.app[DATABASE]

    async def stored_then_applied() -> T:
        result = await db.write(unit)
        apply(result)
        return result

    try:
        return await asyncio.shield(stored_then_applied())
    except sqlite3.Error:
        user = current_principal(request)
        log_event(logger, "calendar_store_failed", logging.ERROR, change=change,
                  user=user.user_id if user else None, exc_info=True)
        raise _store_failed() from None


def _override_dict(o: Override) -> dict[str, Any]:
    return {"id": o.id, "kind": o.kind, "applies_to": o.applies_to.value, "start": o.start.isoformat(),
            "end": o.end.isoformat(), "reason": o.reason, "removable": o.id.startswith(RUNTIME_PREFIX)}


def _reason(raw: Any, field: str = "reason") -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ApiError(422, "missing_field", "理由を入力してください", field)
    text = raw.strip()
    if len(text) > MAX_REASON_CHARS:
        raise ApiError(422, "too_long", f"理由が長すぎます（{MAX_REASON_CHARS}文字以内、入力は{len(text)}文字）", field)
    return text


def _instant(raw: Any, field: str) -> datetime:
    label = {"start": "開始日時", "end": "終了日時"}[field]
    if not isinstance(raw, str) or not raw.strip():
        raise ApiError(422, "missing_field", f"{label}を入力してください", field)
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ApiError(422, "invalid_field", f"{label}の形式が正しくありません（例: 2026-12-01T09:00:00+09:00）",
                       field) from None
    if value.tzinfo is None:  # the screen's datetime-local input: local time in Tokyo
        value = value.replace(tzinfo=TOKYO)
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ApiError(422, "out_of_range", f"{label}は{FIRST_YEAR}年から{LAST_YEAR}年の間で指定してください", field)
    return value


def _emergency_dict(request: web.Request) -> dict[str, Any]:
    cal = request.app[calendar_keys.CALENDARS]
    now = request.app[core_keys.CLOCK]()
    return {"active": cal.emergency_reason is not None, "reason": cal.emergency_reason,
            "call_center": cal.call_center(now).as_dict(), "office": cal.office(now).as_dict()}


@guarded
async def get_emergency(request: web.Request) -> web.StreamResponse:
    require(request, SUPERVISORS, operator_room_only=True)
    return json_response(_emergency_dict(request))


@guarded
async def set_emergency(request: web.Request) -> web.StreamResponse:
    who = require(request, SUPERVISORS, operator_room_only=True)
    body = await json_object(request)
    unknown = set(body) - {"active", "reason"}
    if unknown:
        raise ApiError(422, "unknown_field", f"項目「{sorted(unknown)[0]}」は受け付けていません", sorted(unknown)[0])
    active = body.get("active")
    if not isinstance(active, bool):
        raise ApiError(422, "invalid_field", "active は true か false です", "active")
    reason = _reason(body.get("reason")) if active else None
    cal = request.app[calendar_keys.CALENDARS]
    now = request.app[core_keys.CLOCK]()
    was_active = cal.emergency_reason is not None
    # routing follows only a change that is stored
    await _store_then_apply(request, "emergency", lambda conn: store.save_emergency(conn, who, reason, was_active, now),
                            lambda _: cal.set_emergency(reason))
    log_event(logger, "calendar_emergency_changed", active=active, user=who.user_id)
    return json_response(_emergency_dict(request))


@guarded
async def list_overrides(request: web.Request) -> web.StreamResponse:
    require(request, SUPERVISORS, operator_room_only=True)
    cal = request.app[calendar_keys.CALENDARS]
    items = sorted((_override_dict(o) for o in cal.overrides), key=lambda o: (o["start"], o["id"]))
    return json_response({"items": items})


@guarded
async def add_override(request: web.Request) -> web.StreamResponse:
    who = require(request, SUPERVISORS, operator_room_only=True)
    body = await json_object(request)
    unknown = set(body) - {"kind", "applies_to", "start", "end", "reason"}
    if unknown:
        raise ApiError(422, "unknown_field", f"項目「{sorted(unknown)[0]}」は受け付けていません", sorted(unknown)[0])
    kind = body.get("kind")
    if kind not in ("closure", "opening"):
        raise ApiError(422, "invalid_field", "種類は closure（臨時休業）か opening（臨時開庁）です", "kind")
    applies_to = body.get("applies_to", "both")
    if applies_to not in ("call_center", "office", "both"):
        raise ApiError(422, "invalid_field", "対象は call_center・office・both のいずれかです", "applies_to")
    start, end = _instant(body.get("start"), "start"), _instant(body.get("end"), "end")
    if end <= start:
        raise ApiError(422, "invalid_period", "終了日時は開始日時より後にしてください", "end")
    reason = _reason(body.get("reason"))
    cal = request.app[calendar_keys.CALENDARS]
    now = request.app[core_keys.CLOCK]()
    wanted = Override(kind=kind, applies_to=Which(applies_to), start=start, end=end, reason=reason)
    override = await _store_then_apply(request, "override_add",
                                       lambda conn: store.insert_override(conn, who, wanted, now), cal.add_override)
    log_event(logger, "calendar_override_added", override_id=override.id, kind=kind, user=who.user_id)
    return json_response(_override_dict(override), 201)


@guarded
async def remove_override(request: web.Request) -> web.StreamResponse:
    who = require(request, SUPERVISORS, operator_room_only=True)
    override_id = request.match_info.get("id") or request.query.get("id", "")
    if not override_id:
        raise ApiError(422, "missing_field", "削除する例外設定の id を指定してください", "id")
    cal = request.app[calendar_keys.CALENDARS]
    existing = next((o for o in cal.overrides if o.id == override_id), None)
    if existing is None:
        raise ApiError(404, "not_found", f"例外設定 {override_id} はありません", "id")
    if not override_id.startswith(RUNTIME_PREFIX):
        raise ApiError(409, "configured_override",
                       "設定ファイルで定められた例外は画面から削除できません（cti.toml を変更してください）", "id")
    now = request.app[core_keys.CLOCK]()

    def forget(_: None) -> None:
        if any(o.id == override_id for o in cal.overrides):  # a concurrent removal may have taken it already
            cal.remove_override(override_id)

    try:
        await _store_then_apply(request, "override_remove",
                                lambda conn: store.delete_override(conn, who, existing, now), forget)
    except store.OverrideGone:
        raise ApiError(404, "not_found", f"例外設定 {override_id} はありません", "id") from None
    log_event(logger, "calendar_override_removed", override_id=override_id, user=who.user_id)
    return json_response(_override_dict(existing))


def setup_routes(app: web.Application) -> None:
    from access.web import requires

    only = requires(SUPERVISORS, operator_room_only=True)
    app.router.add_get("/api/calendar/emergency", only(get_emergency))
    app.router.add_post("/api/calendar/emergency", only(set_emergency))
    app.router.add_get("/api/calendar/overrides", only(list_overrides))
    app.router.add_post("/api/calendar/overrides", only(add_override))
    app.router.add_delete("/api/calendar/overrides", only(remove_override))
    app.router.add_delete("/api/calendar/overrides/{id}", only(remove_override))
