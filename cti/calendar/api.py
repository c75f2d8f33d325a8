"""Supervisor calendar control: the emergency close switch and runtime overrides (closures, extra openings).

Each change is one SQLite transaction holding the persisted state (so it survives a restart) and
its hash-chained audit row (records' audit writer); the in-memory Calendars object - the very one
the FastAGI server asks - is changed inside that transaction, so routing follows at once and a
failed request changes nothing. Supervisors and admins only, from the operator room; the auth
middleware checks the CSRF token of every POST/DELETE.

    GET  /api/calendar/emergency          {"active", "reason", "call_center": Status}
    POST /api/calendar/emergency          {"active": true, "reason": "..."} | {"active": false}
    GET  /api/calendar/overrides          {"items": [...]} (configured ones are read-only)
    POST /api/calendar/overrides          {"kind", "applies_to", "start", "end", "reason"}
    DELETE /api/calendar/overrides/{id}   (or DELETE /api/calendar/overrides?id=rt-3)
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import aiosqlite
from aiohttp import web

from cti import keys
from cti.calendar.rules import Calendars, Override, Which
from cti.core.clock import TOKYO
from cti.core.logs import log_event
from supervision.http import SUPERVISORS, ApiError, guarded, json_body, json_response, require

logger = logging.getLogger("cti.calendar.api")

RUNTIME_PREFIX = "rt-"
MAX_REASON_CHARS = 200

SCHEMA = """
CREATE TABLE calendar_overrides (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('closure','opening')),
    applies_to  TEXT NOT NULL CHECK (applies_to IN ('call_center','office','both')),
    start       TEXT NOT NULL,
    end         TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    removed_by  TEXT,
    removed_at  TEXT
);
CREATE TABLE calendar_state (
    key         TEXT PRIMARY KEY,
    value       TEXT
)
"""


def _override_dict(o: Override) -> dict[str, Any]:
    return {"id": o.id, "kind": o.kind, "applies_to": o.applies_to.value, "start": o.start.isoformat(),
            "end": o.end.isoformat(), "reason": o.reason, "removable": o.id.startswith(RUNTIME_PREFIX)}


async def load_runtime_state(db: aiosqlite.Connection, calendars: Calendars) -> int:
    """Re-apply persisted runtime overrides and the emergency switch after a restart."""
    count = 0
    async with db.execute("SELECT * FROM calendar_overrides WHERE removed_at IS NULL ORDER BY id") as cur:
        for row in await cur.fetchall():
            override = Override(kind=row["kind"], applies_to=Which(row["applies_to"]),
                                start=datetime.fromisoformat(row["start"]), end=datetime.fromisoformat(row["end"]),
                                reason=row["reason"], id=f"{RUNTIME_PREFIX}{row['id']}")
            if not any(o.id == override.id for o in calendars.overrides):
                calendars.add_override(override)
                count += 1
    async with db.execute("SELECT value FROM calendar_state WHERE key = 'emergency_reason'") as cur:
        state = await cur.fetchone()
    if state is not None and state[0]:
        calendars.set_emergency(str(state[0]))
    return count


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
    return value


def _emergency_dict(request: web.Request) -> dict[str, Any]:
    cal = request.app[keys.CALENDARS]
    now = request.app[keys.CLOCK]()
    return {"active": cal.emergency_reason is not None, "reason": cal.emergency_reason,
            "call_center": cal.call_center(now).as_dict()}


@guarded
async def get_emergency(request: web.Request) -> web.StreamResponse:
    require(request, SUPERVISORS, operator_room_only=True)
    return json_response(_emergency_dict(request))


@guarded
async def set_emergency(request: web.Request) -> web.StreamResponse:
    who = require(request, SUPERVISORS, operator_room_only=True)
    body = await json_body(request)
    unknown = set(body) - {"active", "reason"}
    if unknown:
        raise ApiError(422, "unknown_field", f"項目「{sorted(unknown)[0]}」は受け付けていません", sorted(unknown)[0])
    active = body.get("active")
    if not isinstance(active, bool):
        raise ApiError(422, "invalid_field", "active は true か false です", "active")
    reason = _reason(body.get("reason")) if active else None
    cal = request.app[keys.CALENDARS]
    service = request.app[keys.RECORDS]
    previous = cal.emergency_reason
    async with service.transaction() as db:
        await db.execute("INSERT INTO calendar_state(key, value) VALUES ('emergency_reason', ?)"
                         " ON CONFLICT(key) DO UPDATE SET value = excluded.value", (reason,))
        await service.audit(who, "emergency_on" if active else "emergency_off", "calendar", "emergency",
                            detail={"was_active": previous is not None})
        cal.set_emergency(reason)
    log_event(logger, "calendar_emergency_changed", active=active, user=who.user_id)
    return json_response(_emergency_dict(request))


@guarded
async def list_overrides(request: web.Request) -> web.StreamResponse:
    require(request, SUPERVISORS, operator_room_only=True)
    cal = request.app[keys.CALENDARS]
    items = sorted((_override_dict(o) for o in cal.overrides), key=lambda o: (o["start"], o["id"]))
    return json_response({"items": items})


@guarded
async def add_override(request: web.Request) -> web.StreamResponse:
    who = require(request, SUPERVISORS, operator_room_only=True)
    body = await json_body(request)
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
    cal = request.app[keys.CALENDARS]
    service = request.app[keys.RECORDS]
    now = request.app[keys.CLOCK]()
    async with service.transaction() as db:
        cur = await db.execute(
            "INSERT INTO calendar_overrides(kind, applies_to, start, end, reason, created_by, created_at)"
            " VALUES (?,?,?,?,?,?,?)",
            (kind, applies_to, start.isoformat(), end.isoformat(), reason, who.user_id, now.isoformat()),
        )
        override = Override(kind=kind, applies_to=Which(applies_to), start=start, end=end, reason=reason,
                            id=f"{RUNTIME_PREFIX}{cur.lastrowid}")
        await service.audit(who, "override_add", "calendar", override.id,
                            detail={"kind": kind, "applies_to": applies_to, "start": start.isoformat(),
                                    "end": end.isoformat()})
        cal.add_override(override)
    log_event(logger, "calendar_override_added", override_id=override.id, kind=kind, user=who.user_id)
    return json_response(_override_dict(override), 201)


@guarded
async def remove_override(request: web.Request) -> web.StreamResponse:
    who = require(request, SUPERVISORS, operator_room_only=True)
    override_id = request.match_info.get("id") or request.query.get("id", "")
    if not override_id:
        raise ApiError(422, "missing_field", "削除する例外設定の id を指定してください", "id")
    cal = request.app[keys.CALENDARS]
    existing = next((o for o in cal.overrides if o.id == override_id), None)
    if existing is None:
        raise ApiError(404, "not_found", f"例外設定 {override_id} はありません", "id")
    if not override_id.startswith(RUNTIME_PREFIX):
        raise ApiError(409, "configured_override",
                       "設定ファイルで定められた例外は画面から削除できません（cti.toml を変更してください）", "id")
    service = request.app[keys.RECORDS]
    now = request.app[keys.CLOCK]()
    async with service.transaction() as db:
        await db.execute("UPDATE calendar_overrides SET removed_at = ?, removed_by = ? WHERE id = ?",
                         (now.isoformat(), who.user_id, int(override_id.removeprefix(RUNTIME_PREFIX))))
        await service.audit(who, "override_remove", "calendar", override_id, detail={"kind": existing.kind})
        cal.remove_override(override_id)
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
