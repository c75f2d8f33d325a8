"""The operator screen in the aiohttp app: static page, small operator APIs, and the pop dispatcher.

create_app should (after database_ctx, auth_ctx, faq_ctx, records_ctx, the hub context and ami_ctx,
i.e. with app[SEATS], app[keys.HUB], app[keys.FAQ], app[keys.RECORDS], app[keys.AMI] set)::

    app.cleanup_ctx.append(pop_ctx)      # screenpop.dispatcher.pop_ctx
    setup_web_routes(app)                # screenpop.dispatcher.setup_web_routes

Routes:
  GET  /, /operator/                  the operator page (screenpop/web/index.html)
  GET  /static/...                    its CSS and ES modules
  GET  /api/operator/config           departments, consent script, FAQ credit, known seats
  GET  /api/operator/office           is the ward office open now (and why not)
  GET  /api/operator/calls            today's calls popped to me (ids, times, categories only)
  GET  /api/operator/current          my latest pop again (after a reload), with call_state
  POST /api/operator/calls/{call_id}/transfer   {"department"}: blind transfer (office open only)

``PopDispatcher`` listens to the tracker's domain events (``app[keys.AMI].domain_listeners``),
feeds the pure router (screenpop/router.py) and carries out its actions through the hub; a pop is
composed (screenpop/pop.py) from the caller's history and open callbacks (records), FAQ suggestions
and the office status at the moment of the answer.

FAQ search as you type goes over the websocket too (``faq_search`` -> ``faq_results``; ``pop_ctx``
sets the hub's ``on_faq_search`` hook), so the words typed never appear in a URL; the page falls
back to GET /api/faq/search only while the socket is down.

Ready / pause goes over the websocket (``presence_set``, handled by screenpop/websocket.py);
``pop_ctx`` sets the hub's ``on_presence`` hook (when unset) to pause / unpause the operator's
queue member in Asterisk, so a failed AMI action leaves the presence unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, time
from pathlib import Path
from typing import Any

from aiohttp import web

from access.rules import OPERATOR_ROOM_ROLES, Access
from access.web import ACCESS_ATTR, AUTH, SEATS, public, requires
from cti import keys
from cti.core.clock import TOKYO
from cti.core.http import current_principal
from cti.core.logs import log_event
from cti.core.principal import Principal
from screenpop import messages
from screenpop.pop import Contact, FaqSuggestion, category_of, compose_pop
from screenpop.router import ComposePop, Notify, PopRouter
from screenpop.seats import SeatMap

logger = logging.getLogger("cti.screenpop.web")

WEB_DIR = Path(__file__).parent / "web"
MAX_TODAY_PER_USER = 500
FAQ_RESULTS = 10
FAQ_CREDIT = "出典：子育てオープンデータ協議会「汎用FAQ」（CC BY 4.0）"

DISPATCHER: web.AppKey[PopDispatcher] = web.AppKey("pop_dispatcher")

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


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_default)


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps, headers={"Cache-Control": "no-store"})


def _error(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    return _json({"error": {"code": code, "message": message, "field": field}}, status)


# ---- the pop dispatcher ---------------------------------------------------------------------------


class PopDispatcher:
    """Router actions -> hub messages; owns nothing long-lived (no tasks), serialises its work."""

    def __init__(self, app: web.Application, seats: SeatMap) -> None:
        self.app = app
        self.router = PopRouter(seats)
        self._user_locks: dict[str, asyncio.Lock] = {}  # one per operator: their messages stay in order
        self._today: dict[str, dict[str, dict[str, Any]]] = {}  # user -> call_id -> row (no personal data)
        self._current: dict[str, tuple[ComposePop, str]] = {}  # user -> (their latest pop, call state)

    async def on_events(self, events: Any) -> None:
        """Listener for the tracker's domain events (one event or a list of them).

        The router is pure and synchronous, so it sees events in arrival order without a lock.
        Delivery is ordered per operator (a pop is never overtaken by that call's hangup) but one
        operator's pop lookups (SQLite) never hold up another operator's messages.
        """
        batch: Iterable[Any] = events if isinstance(events, list | tuple) else [events]
        per_user: dict[str, list[tuple[Any, Notify | ComposePop]]] = {}
        for event in batch:
            for action in self.router.feed(event):
                per_user.setdefault(action.user_id, []).append((event, action))
        if per_user:
            await asyncio.gather(*(self._deliver(user, items) for user, items in per_user.items()))

    async def _deliver(self, user_id: str, items: list[tuple[Any, Notify | ComposePop]]) -> None:
        lock = self._user_locks.setdefault(user_id, asyncio.Lock())
        async with lock:
            for event, action in items:
                try:
                    if isinstance(action, Notify):
                        self._note(action)
                        self._send(action.user_id, action.message)
                    else:
                        await self.send_pop(action)
                except Exception as exc:  # one failed pop must not stop the others
                    log_event(logger, "pop_action_failed", logging.ERROR, call_id=event.call_id,
                              error=type(exc).__name__)

    def _send(self, user_id: str, message: Any) -> None:
        hub = self.app.get(keys.HUB)
        if hub is None:
            log_event(logger, "pop_no_hub", logging.WARNING, user_id=user_id, type=message.type)
            return
        hub.send_to_user(user_id, message)

    def _note(self, action: Notify) -> None:
        msg = action.message
        if isinstance(msg, messages.CallUpdate) and not msg.detail.get("ringing"):
            state = "transferred" if msg.event == "transferred" else "ended"
            row = self._today.get(action.user_id, {}).get(msg.call_id)
            if row is not None:
                row["state"] = "転送済み" if state == "transferred" else "終了"
            current = self._current.get(action.user_id)
            if current is not None and current[0].call.call_id == msg.call_id and current[1] != "ended":
                self._current[action.user_id] = (current[0], state)

    async def build_pop(self, action: ComposePop) -> dict[str, Any]:
        """The pop payload for `action` (lookups + pure composition)."""
        app = self.app
        now = app[keys.CLOCK]()
        office = app[keys.CALENDARS].office(now)
        number = action.call.caller_number
        records = app.get(keys.RECORDS)
        history_rows: list[dict[str, Any]] = []
        callbacks: list[dict[str, Any]] = []
        if records is not None and number:
            history_rows = await records.caller_history(number, now)
            callbacks = await records.open_callbacks_for(number)
        history = [
            Contact(
                contacted_at=datetime.combine(row["date"], time(0), TOKYO),
                category=row.get("category"),
                outcome=row.get("outcome") or "",
            )
            for row in history_rows
        ]
        faq = app.get(keys.FAQ)
        suggestions: list[FaqSuggestion] = []
        credit = FAQ_CREDIT
        if faq is not None:
            limit = app[keys.SETTINGS].faq.suggestions
            category, _ = category_of(action.call.category)
            suggestions = [FaqSuggestion(id=e.id, question=e.question) for e in faq.suggest(category, [], limit)]
            credit = faq.credit or FAQ_CREDIT
        pop = compose_pop(action.call, office, history, [], suggestions, now=now, faq_credit=credit)
        payload = pop.as_dict()
        names = {d.code: d.name for d in app[keys.SETTINGS].records.departments}
        payload["open_callbacks"] = [
            {
                "id": cb["id"],
                "department": names.get(cb["department"], cb["department"]),
                "status": cb["status"],
                "status_text": cb.get("status_text"),
                "handover_date": cb["handover_date"].isoformat(),
            }
            for cb in callbacks
        ]
        return payload

    async def send_pop(self, action: ComposePop) -> None:
        payload = await self.build_pop(action)
        fields = messages.Pop.model_fields
        message = messages.Pop(**{k: v for k, v in payload.items() if k in fields and k != "type"})
        day = action.answered_at.astimezone(TOKYO).date().isoformat()
        rows = self._today.setdefault(action.user_id, {})
        rows[action.call.call_id] = {
            "call_id": action.call.call_id,
            "at": action.answered_at.isoformat(),
            "day": day,
            "category_label": payload["category_label"],
            "state": "通話中",
        }
        while len(rows) > MAX_TODAY_PER_USER:
            rows.pop(next(iter(rows)))
        self._current[action.user_id] = (action, "talking")
        self._send(action.user_id, message)
        log_event(logger, "pop_sent", user_id=action.user_id, call_id=action.call.call_id)

    async def current(self, user_id: str) -> dict[str, Any] | None:
        """The user's latest pop, composed again (fresh history and office status), with its state;
        for a page reloaded during (or right after) a call."""
        current = self._current.get(user_id)
        if current is None:
            return None
        action, state = current
        payload = await self.build_pop(action)
        payload["call_state"] = state
        return payload

    def today(self, user_id: str, now: datetime) -> list[dict[str, Any]]:
        day = now.astimezone(TOKYO).date().isoformat()
        rows = [dict(r) for r in self._today.get(user_id, {}).values() if r["day"] == day]
        for r in rows:
            r.pop("day")
        return sorted(rows, key=lambda r: r["at"], reverse=True)


async def pop_ctx(app: web.Application) -> AsyncIterator[None]:
    """Create the pop dispatcher and subscribe it to the tracker (when the AMI link runs)."""
    seats = app.get(SEATS)
    if seats is None:  # auth_ctx normally made it
        seats = SeatMap()
        app[SEATS] = seats
    dispatcher = PopDispatcher(app, seats)
    app[DISPATCHER] = dispatcher
    telephony = app.get(keys.AMI)
    listeners = getattr(telephony, "domain_listeners", None)
    if listeners is not None:
        listeners.append(dispatcher.on_events)
    hub = app.get(keys.HUB)
    control = getattr(telephony, "control", None)
    hooked = False
    if hub is not None and control is not None and getattr(hub, "on_presence", None) is None:

        async def on_presence(principal: Principal, msg: messages.PresenceSet) -> None:
            seat = seats.seat_of(principal.user_id)
            if seat is None:
                raise ValueError("no seat: take a seat before changing presence")
            if msg.state == "pause":
                await control.pause_member(seat, msg.reason or "")
            else:
                await control.unpause_member(seat)

        hub.on_presence = on_presence
        hooked = True
    faq = app.get(keys.FAQ)
    faq_hooked = False
    if hub is not None and faq is not None and getattr(hub, "on_faq_search", None) is None:

        async def on_faq_search(principal: Principal, q: str) -> list[dict[str, Any]]:
            # over the websocket, so what the operator types never lands in a URL or an access log
            return list(faq.operator_results(q, FAQ_RESULTS))  # FAQ hits, then the ward's documents

        hub.on_faq_search = on_faq_search
        faq_hooked = True
    try:
        yield
    finally:
        if faq_hooked and hub is not None:
            hub.on_faq_search = None
        if listeners is not None and dispatcher.on_events in listeners:
            listeners.remove(dispatcher.on_events)
        if hooked and hub is not None:
            hub.on_presence = None


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
    settings = app[keys.SETTINGS]
    faq = app.get(keys.FAQ)
    script = settings.records.consent_script
    seats: set[str] = set()
    telephony = app.get(keys.AMI)
    board = getattr(telephony, "presence", None)
    if board is not None:
        seats |= {m.interface for m in board.members()}
    seat_map = app.get(SEATS)
    if seat_map is not None:
        seats |= set(seat_map.snapshot())
    return _json({
        "departments": [
            {"code": d.code, "name": d.name, "transfer": d.transfer_extension} for d in settings.records.departments
        ],
        "consent_script": {"id": script.id, "version": script.version, "text": script.text},
        "faq_credit": (faq.credit if faq is not None else "") or FAQ_CREDIT,
        "seats": sorted(seats),
    })


@_any_login
async def office_status(request: web.Request) -> web.Response:
    now = request.app[keys.CLOCK]()
    status = request.app[keys.CALENDARS].office(now)
    return _json({
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
    items = dispatcher.today(principal.user_id, request.app[keys.CLOCK]()) if dispatcher else []
    return _json({"items": items})


@_operator_only
async def current_call(request: web.Request) -> web.Response:
    principal = current_principal(request)
    assert principal is not None
    dispatcher = request.app.get(DISPATCHER)
    pop = await dispatcher.current(principal.user_id) if dispatcher else None
    return _json({"pop": pop})


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _error(400, "invalid_json", "リクエストの本文がJSONではありません")
    if not isinstance(body, dict):
        return _error(400, "invalid_json", "リクエストの本文はJSONオブジェクトにしてください")
    return body


def _control(request: web.Request) -> Any:
    telephony = request.app.get(keys.AMI)
    return getattr(telephony, "control", None)


@_operator_only
async def transfer_call(request: web.Request) -> web.Response:
    principal = current_principal(request)
    assert principal is not None
    call_id = request.match_info["call_id"]
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    code = body.get("department")
    departments = {d.code: d for d in request.app[keys.SETTINGS].records.departments}
    department = departments.get(code) if isinstance(code, str) else None
    if department is None or not department.transfer_extension:
        return _error(422, "invalid_field", "転送先の課が正しくありません", "department")
    dispatcher = request.app.get(DISPATCHER)
    if dispatcher is None or dispatcher.router.answered_by(call_id) != principal.user_id:
        return _error(403, "not_your_call", "この通話はあなたが対応中の通話ではありません", "call_id")
    now = request.app[keys.CLOCK]()
    office = request.app[keys.CALENDARS].office(now)
    if not office.open:
        return _error(409, "office_closed", f"区役所が閉庁中（{office.reason_text}）のため転送できません", "department")
    telephony = request.app.get(keys.AMI)
    tracker = getattr(telephony, "tracker", None)
    snapshot = tracker.get(call_id) if tracker is not None else None
    channel = getattr(snapshot, "citizen_channel", None)
    control = _control(request)
    if control is None or not channel:
        return _error(409, "call_gone", "通話が見つかりません（すでに終了した可能性があります）", "call_id")
    try:
        await control.transfer(channel, department.transfer_extension)
    except Exception as exc:
        log_event(logger, "transfer_failed", logging.WARNING, call_id=call_id, error=type(exc).__name__)
        return _error(502, "telephony_failed", "転送できませんでした。もう一度お試しください")
    log_event(logger, "transfer_requested", user_id=principal.user_id, call_id=call_id, department=code)
    return _json({"call_id": call_id, "department": code, "extension": department.transfer_extension}, 202)


def setup_web_routes(app: web.Application) -> None:
    app.router.add_get("/", landing)
    app.router.add_get("/operator/", operator_page)
    app.router.add_static("/static/", WEB_DIR, follow_symlinks=False, show_index=False)
    app.router.add_get("/api/operator/config", operator_config)
    app.router.add_get("/api/operator/office", office_status)
    app.router.add_get("/api/operator/calls", today_calls)
    app.router.add_get("/api/operator/current", current_call)
    app.router.add_post("/api/operator/calls/{call_id}/transfer", transfer_call)
