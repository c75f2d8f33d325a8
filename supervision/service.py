"""Wiring of the supervisor and department screens: live wall, call log, access alerts, calendar
control, reports and the department inbox / click-to-call.

create_app should:

    migrations: merge ``supervision.service.migrations()`` (component "supervisor")
    app.cleanup_ctx.append(supervisor_ctx)   # after the DB, records_ctx, auth_ctx, the hub and ami_ctx
    supervision.service.setup_routes(app)

supervisor_ctx owns three tasks (started, cancelled and awaited here): the wall pusher, the call-log
writer and the audit-trail reader of the alert monitor. It subscribes to the tracker's domain
events and to presence changes when telephony is wired (``app[keys.AMI]``), reloads the runtime
calendar state (emergency switch, overrides) into ``app[keys.CALENDARS]``, and attaches a log
handler that counts failed logins (``login_failed`` of cti.screenpop.auth).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from cti import keys
from cti.calendar import api as calendar_api
from cti.core.clock import Clock
from cti.core.logs import log_event
from cti.core.principal import Role
from records import department_api
from records.rules import iso
from screenpop.settings import AlertSettings
from supervision import reports_api
from supervision.alerts import Alert, AlertDetector, LoginFailure, RecordRead, Thresholds
from supervision.http import SUPERVISORS, guarded, json_response, require
from supervision.wall import OperatorState, Wall

logger = logging.getLogger("screenpop.supervisor")

SUPERVISOR_WEB = Path(__file__).parent / "web"
DEPARTMENT_WEB = Path(__file__).parent.parent / "records" / "web"
AUTH_LOGGER = "cti.screenpop.auth"

ALERTS_SCHEMA = """
CREATE TABLE access_alerts (
    id             INTEGER PRIMARY KEY,
    at             TEXT NOT NULL,
    kind           TEXT NOT NULL,
    user_id        TEXT,
    count          INTEGER NOT NULL,
    window_seconds INTEGER NOT NULL,
    text           TEXT NOT NULL               -- ids and numbers only
)
"""


def migrations() -> dict[str, list[str]]:
    """Component "supervisor": runtime calendar state, the call log (reports), access alerts."""
    return {"supervisor": [calendar_api.SCHEMA + ";\n" + reports_api.CALL_LOG_SCHEMA + ";\n" + ALERTS_SCHEMA]}


# ---- websocket messages (server -> supervisor / department clients) --------------------------------


class WallUpdate(BaseModel):
    type: Literal["wall"] = "wall"
    seq: int = 0
    state: dict[str, Any] = Field(default_factory=dict)


class AccessAlert(BaseModel):
    type: Literal["access_alert"] = "access_alert"
    seq: int = 0
    alert: dict[str, Any] = Field(default_factory=dict)


class CallbackProgress(BaseModel):
    """A click-to-call's progress for the staff member who placed it (no phone number)."""

    type: Literal["callback_progress"] = "callback_progress"
    seq: int = 0
    callback_id: str
    event: str
    at: str
    outcome: str | None = None
    talk_s: float | None = None


# ---- runtime -------------------------------------------------------------------------------------


@dataclass
class Supervisor:
    """Live state owned by supervisor_ctx (app[SUPERVISOR])."""

    clock: Clock
    detector: AlertDetector
    wall: Wall = field(default_factory=Wall)
    alerts: deque[Alert] = field(default_factory=lambda: deque(maxlen=200))
    pending_alerts: list[Alert] = field(default_factory=list)
    call_log: asyncio.Queue[tuple[str, str, dict[str, Any]]] = field(default_factory=asyncio.Queue)
    last_audit_seq: int = 0
    hub: Any = None
    seats: Any = None
    calendars: Any = None
    call_owners: dict[str, str] = field(default_factory=dict)

    # -- outbound -----------------------------------------------------------------------------
    def send_to_supervisors(self, msg: BaseModel) -> None:
        if self.hub is None:
            return
        for role in (Role.SUPERVISOR, Role.ADMIN):
            try:
                self.hub.send_to_role(role, msg)
            except Exception:
                log_event(logger, "supervisor_push_failed", logging.ERROR, exc_info=True)

    def raise_alerts(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            self.alerts.append(alert)
            self.pending_alerts.append(alert)
            log_event(logger, "access_alert", logging.WARNING, kind=alert.kind, user=alert.user_id,
                      count=alert.count, window_seconds=alert.window_seconds)
            self.send_to_supervisors(AccessAlert(alert=alert.as_dict()))

    # -- domain events (telephony listener) -----------------------------------------------------------
    def operator_of(self, interface: str | None) -> str | None:
        if not interface:
            return None
        if self.seats is not None:
            user = self.seats.user_at(interface)
            if user:
                return str(user)
        return interface

    def on_domain_events(self, events: Any) -> None:
        for event in events if isinstance(events, list | tuple) else [events]:
            try:
                self.on_domain_event(event)
            except Exception:
                log_event(logger, "wall_event_failed", logging.ERROR, type=getattr(event, "type", "?"), exc_info=True)

    def on_domain_event(self, event: Any) -> None:
        kind: str = getattr(event, "type", "")
        call_id: str = getattr(event, "call_id", "")
        at: datetime = event.at
        wall = self.wall
        if kind.startswith("callback_"):
            self._callback_progress(event)
            return
        if kind == "call_arrived":
            after = self.calendars is not None and not self.calendars.call_center(at).open
            self.call_log.put_nowait(("arrived", call_id, {"at": at, "after_hours": after}))
        elif kind == "call_routed":
            self.call_log.put_nowait(("routed", call_id, {"at": at, "closed": event.route == "closed",
                                                          "category": event.category}))
        elif kind == "call_queued":
            wall.call_waiting(call_id, at, event.category)
            self.call_log.put_nowait(("queued", call_id, {"at": at, "category": event.category}))
        elif kind == "operator_ringing":
            op = self.operator_of(event.interface)
            if op:
                wall.call_ringing(call_id, op)
        elif kind == "operator_missed":
            op = self.operator_of(event.interface)
            if op:
                wall.ringing_stopped(op, call_id)
        elif kind == "operator_connected":
            op = self.operator_of(event.interface)
            wall.call_answered(call_id, op, at)
            self.call_log.put_nowait(("answered", call_id, {"at": at, "operator": op,
                                                            "hold_time": event.hold_time}))
        elif kind == "call_abandoned":
            wall.call_left_queue(call_id)
            self.call_log.put_nowait(("abandoned", call_id, {"at": at}))
        elif kind == "call_ended":
            wall.call_ended(call_id)
            self.call_log.put_nowait(("ended", call_id, {"at": at, "abandoned": event.reason == "abandoned"}))

    def _callback_progress(self, event: Any) -> None:
        callback_id = getattr(event, "callback_id", None)
        if not callback_id or self.hub is None:
            return
        owner = self.call_owners.get(str(callback_id))
        if owner is None:
            return
        self.hub.send_to_user(owner, CallbackProgress(
            callback_id=str(callback_id), event=event.type.removeprefix("callback_"), at=event.at.isoformat(),
            outcome=getattr(event, "outcome", None), talk_s=getattr(event, "talk_s", None),
        ))

    def on_presence(self, changed: Any) -> None:
        members = changed if isinstance(changed, list | tuple) else [changed]
        now = self.clock()
        for m in members:
            op = self.operator_of(getattr(m, "interface", None))
            if not op:
                continue
            activity = str(getattr(m, "activity", "available"))
            if activity in ("logged_out", "unavailable"):
                state = OperatorState.OFFLINE
            elif activity == "paused" or getattr(m, "paused", False):
                state = OperatorState.PAUSED
            else:
                state = OperatorState.READY
            self.wall.operator_presence(op, state, now, reason=getattr(m, "pause_reason", None) or None)


SUPERVISOR: web.AppKey[Supervisor] = web.AppKey("supervisor", Supervisor)


# ---- background work -----------------------------------------------------------------------------------


async def write_call_log(app: web.Application, sup: Supervisor) -> None:
    """Owned task: drain call-log updates into SQLite (in records' transaction lock)."""
    service = app[keys.RECORDS]
    while True:
        batch = [await sup.call_log.get()]
        while not sup.call_log.empty():
            batch.append(sup.call_log.get_nowait())
        try:
            async with service.transaction() as db:
                for kind, call_id, d in batch:
                    await _log_one(db, kind, call_id, d)
        except asyncio.CancelledError:
            raise
        except Exception:
            log_event(logger, "call_log_write_failed", logging.ERROR, count=len(batch), exc_info=True)


async def _log_one(db: Any, kind: str, call_id: str, d: dict[str, Any]) -> None:
    at = iso(d["at"])
    await db.execute("INSERT INTO call_log(call_id, arrived_at, after_hours) VALUES (?,?,?)"
                     " ON CONFLICT(call_id) DO NOTHING", (call_id, at, int(bool(d.get("after_hours")))))
    if kind == "routed":
        await db.execute("UPDATE call_log SET after_hours = max(after_hours, ?), category = coalesce(?, category)"
                         " WHERE call_id = ?", (int(d["closed"]), d["category"], call_id))
    elif kind == "queued":
        await db.execute("UPDATE call_log SET queued_at = coalesce(queued_at, ?), category = coalesce(?, category)"
                         " WHERE call_id = ?", (at, d["category"], call_id))
    elif kind == "answered":
        await db.execute("UPDATE call_log SET answered_at = coalesce(answered_at, ?), operator = ? WHERE call_id = ?",
                         (at, d["operator"], call_id))
    elif kind == "abandoned":
        await db.execute("UPDATE call_log SET abandoned = 1 WHERE call_id = ? AND answered_at IS NULL", (call_id,))
    elif kind == "ended":
        await db.execute("UPDATE call_log SET ended_at = ?, abandoned = max(abandoned, ?) WHERE call_id = ?",
                         (at, int(d["abandoned"]), call_id))


async def push_wall(app: web.Application, sup: Supervisor, interval: float = 1.0, refresh_every: int = 5) -> None:
    """Owned task: push the wall to supervisors when it changed (and every few seconds for the waits);
    refresh the overdue-callback count every 30 s."""
    last_version = -1
    ticks = 0
    while True:
        try:
            if ticks % 30 == 0:
                sup.wall.set_overdue_callbacks(await count_overdue(app, sup.clock()))
            if sup.wall.version != last_version or ticks % refresh_every == 0:
                last_version = sup.wall.version
                sup.send_to_supervisors(WallUpdate(state=sup.wall.snapshot(sup.clock())))
        except asyncio.CancelledError:
            raise
        except Exception:
            log_event(logger, "wall_push_failed", logging.ERROR, exc_info=True)
        ticks += 1
        await asyncio.sleep(interval)


async def count_overdue(app: web.Application, now: datetime) -> int:
    async with app[keys.DB].execute(
        "SELECT count(*) FROM callbacks WHERE status NOT IN ('closed','closed_unreached') AND purged_at IS NULL"
        " AND due_by < ?", (iso(now),)
    ) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


READ_ACTIONS = frozenset({"read", "list"})
READ_TYPES = frozenset({"callback", "call", "faq_gap"})


async def check_audit(app: web.Application, sup: Supervisor) -> int:
    """Feed new audit rows (reads of personal data, failed logins) to the detector; returns rows seen."""
    async with app[keys.DB].execute(
        "SELECT seq, at, actor, role, department, action, record_type, record_id, outcome, detail FROM audit"
        " WHERE seq > ? ORDER BY seq LIMIT 5000", (sup.last_audit_seq,)
    ) as cur:
        rows = list(await cur.fetchall())
    for row in rows:
        sup.last_audit_seq = int(row["seq"])
        at = datetime.fromisoformat(row["at"])
        if row["action"] in READ_ACTIONS and row["record_type"] in READ_TYPES and row["outcome"] == "ok":
            ids = [row["record_id"]]
            if row["action"] == "list":
                try:
                    ids = list(json.loads(row["detail"]).get("ids", []))
                except (ValueError, AttributeError):
                    ids = []
            record_ids = tuple(f"{row['record_type']}:{i}" for i in ids if i is not None)
            if record_ids:
                sup.raise_alerts(sup.detector.record_read(
                    RecordRead(row["actor"], row["role"], row["department"], at, record_ids)))
        elif row["action"] == "login" and row["outcome"] in ("failed", "denied"):
            sup.raise_alerts(sup.detector.login_failed(LoginFailure(at, row["actor"])))
    await store_alerts(app, sup)
    return len(rows)


async def store_alerts(app: web.Application, sup: Supervisor) -> None:
    if not sup.pending_alerts:
        return
    pending, sup.pending_alerts = sup.pending_alerts, []
    async with app[keys.RECORDS].transaction() as db:
        for a in pending:
            await db.execute("INSERT INTO access_alerts(at, kind, user_id, count, window_seconds, text)"
                             " VALUES (?,?,?,?,?,?)", (iso(a.at), a.kind, a.user_id, a.count, a.window_seconds, a.text))


async def watch_audit(app: web.Application, sup: Supervisor, interval: float) -> None:
    while True:
        try:
            await check_audit(app, sup)
        except asyncio.CancelledError:
            raise
        except Exception:
            log_event(logger, "alert_monitor_failed", logging.ERROR, exc_info=True)
        await asyncio.sleep(interval)


class LoginFailureHandler(logging.Handler):
    """Counts ``login_failed`` and ``login_throttled`` log events of the auth routes (they are not in the
    audit trail); a throttled attempt is a failed one too."""

    def __init__(self, sup: Supervisor) -> None:
        super().__init__(logging.WARNING)
        self.sup = sup

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg not in ("login_failed", "login_throttled"):
            return
        try:
            user = getattr(record, "cti_fields", {}).get("user_id")
            self.sup.raise_alerts(self.sup.detector.login_failed(LoginFailure(self.sup.clock(), user)))
        except Exception:
            self.handleError(record)


# Optional, set before startup: alert thresholds when Settings has no `alerts` section yet (tests).
ALERT_SETTINGS: web.AppKey[AlertSettings] = web.AppKey("alert_settings", AlertSettings)


def _alert_settings(app: web.Application) -> AlertSettings:
    if ALERT_SETTINGS in app:
        return app[ALERT_SETTINGS]
    configured = getattr(app[keys.SETTINGS], "alerts", None)
    return configured if isinstance(configured, AlertSettings) else AlertSettings()


async def supervisor_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = _alert_settings(app)
    calendars = app[keys.CALENDARS]
    await calendar_api.load_runtime_state(app[keys.DB], calendars)
    thresholds = Thresholds(reads_per_hour=settings.reads_per_hour, failed_logins=settings.failed_logins,
                            failed_login_window_seconds=settings.failed_login_window_seconds,
                            cooldown_seconds=settings.cooldown_seconds,
                            off_hours_department_reads=settings.off_hours_department_reads)
    sup = Supervisor(clock=app[keys.CLOCK], detector=AlertDetector(thresholds, lambda at: calendars.office(at).open))
    sup.hub = app.get(keys.HUB)
    sup.calendars = calendars
    sup.call_owners = app.setdefault(department_api.CALL_OWNERS, {})
    from access.web import SEATS

    sup.seats = app.get(SEATS)
    async with app[keys.DB].execute("SELECT coalesce(max(seq), 0) FROM audit") as cur:
        row = await cur.fetchone()
    sup.last_audit_seq = int(row[0]) if row else 0  # alert on what happens from now on
    app[SUPERVISOR] = sup
    telephony = app.get(keys.AMI)
    if telephony is not None:
        telephony.domain_listeners.append(sup.on_domain_events)
        telephony.presence_listeners.append(sup.on_presence)
        sup.on_presence(telephony.presence.members())
    handler = LoginFailureHandler(sup)
    logging.getLogger(AUTH_LOGGER).addHandler(handler)
    tasks = [
        asyncio.create_task(push_wall(app, sup), name="supervisor-wall"),
        asyncio.create_task(write_call_log(app, sup), name="supervisor-call-log"),
        asyncio.create_task(watch_audit(app, sup, settings.poll_seconds), name="supervisor-alerts"),
    ]
    try:
        yield
    finally:
        logging.getLogger(AUTH_LOGGER).removeHandler(handler)
        if telephony is not None:
            with contextlib.suppress(ValueError):
                telephony.domain_listeners.remove(sup.on_domain_events)
            with contextlib.suppress(ValueError):
                telephony.presence_listeners.remove(sup.on_presence)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


# ---- routes ------------------------------------------------------------------------------------------


@guarded
async def get_wall(request: web.Request) -> web.StreamResponse:
    require(request, SUPERVISORS, operator_room_only=True)
    sup = request.app[SUPERVISOR]
    return json_response(sup.wall.snapshot(sup.clock()))


@guarded
async def get_alerts(request: web.Request) -> web.StreamResponse:
    require(request, SUPERVISORS, operator_room_only=True)
    sup = request.app[SUPERVISOR]
    return json_response({"items": [a.as_dict() for a in reversed(sup.alerts)]})


def _page(folder: Path) -> Any:
    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(folder / "index.html", headers={"Cache-Control": "no-store"})

    return index


def setup_routes(app: web.Application) -> None:
    from access.rules import Access
    from access.web import add_path_access, requires

    room = requires(SUPERVISORS, operator_room_only=True)
    app.router.add_get("/api/supervisor/wall", room(get_wall))
    app.router.add_get("/api/supervisor/alerts", room(get_alerts))
    calendar_api.setup_routes(app)
    reports_api.setup_routes(app)
    department_api.setup_routes(app)
    add_path_access(app, "/supervisor/", Access(roles=SUPERVISORS, operator_room_only=True))
    add_path_access(app, "/department/", Access(roles=frozenset({Role.DEPARTMENT, Role.ADMIN})))
    app.router.add_get("/supervisor/", room(_page(SUPERVISOR_WEB)))
    app.router.add_get("/department/", requires({Role.DEPARTMENT, Role.ADMIN})(_page(DEPARTMENT_WEB)))
    app.router.add_static("/supervisor/assets/", SUPERVISOR_WEB, name="supervisor_assets")
    app.router.add_static("/department/assets/", DEPARTMENT_WEB, name="department_assets")
