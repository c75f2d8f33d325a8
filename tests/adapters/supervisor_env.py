"""An app wired like create_app for the supervisor/department tests: a temp store (SQLite or
PostgreSQL), records, the real
auth middleware (logins, sessions, CSRF, operator-room rule) and the supervisor wiring."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from access.accounts import MIGRATIONS as ACCOUNTS_MIGRATIONS
from access.web import AUTH, PASSWORD_HASHER, auth_ctx, auth_middleware, setup_auth_routes
from cti import keys
from cti.app import put_settings, share_seats
from cti.calendar.rules import Calendars
from cti.config import Settings
from cti.core.principal import Role
from cti.store_backend import open_store
from records.plugin import records_ctx
from records.plugin import setup_routes as records_routes
from records.schema import migrations as records_migrations
from screenpop.seat_api import seats_ctx
from supervision import service as wiring_supervisor
from supervision.calendar_store import calendar_ctx
from supervision.settings import AlertSettings

PASSWORD = "correct horse battery"
USERS = [
    ("op1", "operator", None),
    ("sv1", "supervisor", None),
    ("ad1", "admin", None),
    ("tax1", "department", "zeimu"),
    ("reg1", "department", "koseki"),
    ("pi1", "department", "kuseijoho"),
]


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


class RecordingHub:
    """Collects what would go to the websockets (send_to_role / send_to_user never await)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def send_to_role(self, role: Role, msg: Any) -> int:
        self.sent.append(("role", str(role), json.loads(msg.model_dump_json())))
        return 1

    def send_to_user(self, user_id: str, msg: Any) -> int:
        self.sent.append(("user", user_id, json.loads(msg.model_dump_json())))
        return 1

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for _, _, m in self.sent if m.get("type") == kind]

    def expire_session(self, session_hash: str) -> int:
        return 0


class Env:
    def __init__(self, client: TestClient[Any, Any], app: web.Application, clock: Clock, hub: RecordingHub) -> None:
        self.client = client
        self.app = app
        self.clock = clock
        self.hub = hub
        self.csrf: dict[str, str] = {}

    async def login(self, user: str) -> dict[str, str]:
        """Log in (the cookie jar keeps one session at a time); returns the CSRF header."""
        self.client.session.cookie_jar.clear()
        resp = await self.client.post("/api/login", json={"user_id": user, "password": PASSWORD})
        assert resp.status == 200, await resp.text()
        token = (await resp.json())["csrf_token"]
        return {"X-CSRF-Token": token}

    async def audit(self, **where: Any) -> list[dict[str, Any]]:
        sql = "SELECT * FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(f"{k} = ?" for k in where)
        rows = await self.app[keys.DATABASE].read(
            lambda conn: conn.execute(sql + " ORDER BY seq", tuple(where.values())).fetchall())
        return [dict(r) for r in rows]

    async def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        row = await self.app[keys.DATABASE].read(lambda conn: conn.execute(sql, params).fetchone())
        return row[0] if row else None


@asynccontextmanager
async def make_env(
    tmp_path: Path, at: datetime, *, settings: Settings | None = None, alerts: AlertSettings | None = None,
    telephony: Any = None, db_name: str = "cti.sqlite3", store: str | None = None,
) -> AsyncIterator[Env]:
    """`store`: where the gateway's stores live (a postgresql:// URL from tests/pg_support.py, or a SQLite
    file); accounts and sessions stay on the legacy SQLite connection in tmp_path until access moves."""
    settings = settings or Settings()
    clock = Clock(at)
    hub = RecordingHub()
    app = web.Application(middlewares=[auth_middleware])
    put_settings(app, settings)
    share_seats(app)
    app[keys.CLOCK] = clock
    app[keys.CALENDARS] = Calendars.from_settings(settings.calendar)
    app[keys.HUB] = hub
    app[PASSWORD_HASHER] = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    app[wiring_supervisor.ALERT_SETTINGS] = alerts or AlertSettings(poll_seconds=3600)
    if telephony is not None:
        app[keys.AMI] = telephony

    async def db_ctx(app: web.Application) -> AsyncIterator[None]:
        migrations = {**records_migrations(), **wiring_supervisor.migrations(), **ACCOUNTS_MIGRATIONS}
        # accounts use the gateway too; `store` is a PostgreSQL URL in the two-backend tests
        app[keys.DATABASE] = await open_store(store or tmp_path / db_name, migrations)
        yield
        await app[keys.DATABASE].close()

    async def users_ctx(app: web.Application) -> AsyncIterator[None]:
        accounts = app[AUTH].accounts
        if await accounts.get("op1") is None:
            for user, role, dept in USERS:
                await accounts.add(user, role, PASSWORD, department=dept,
                                   known_departments=[d.code for d in settings.records.departments])
        yield

    app.cleanup_ctx.extend([db_ctx, calendar_ctx(keys.DATABASE, keys.CALENDARS), auth_ctx, seats_ctx, users_ctx,
                            records_ctx, wiring_supervisor.supervisor_ctx])
    setup_auth_routes(app)
    records_routes(app)
    wiring_supervisor.setup_routes(app)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Env(client, app, clock, hub)
