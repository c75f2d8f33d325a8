"""A real aiohttp app with create_app's middlewares, the auth routes, the hub and a temp store behind
the database gateway (a SQLite file, or a PostgreSQL schema: `start(..., store=store_target)`), wired
the way create_app wires them; shared by tests/adapters/test_auth_*.py and test_hub_*.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from access.accounts import MIGRATIONS
from access.web import AUTH, PASSWORD_HASHER, auth_ctx, setup_auth_routes
from cti import keys
from cti.app import http_middlewares, put_settings
from cti.config import Settings
from cti.core.clock import TOKYO
from cti.store_backend import open_store
from screenpop import schema as screenpop_schema
from screenpop.desk_service import desks_ctx
from screenpop.seat_api import seats_ctx, setup_seat_routes
from screenpop.websocket import hub_ctx, setup_ws_routes

ORIGIN = "http://cti.test:8080"
PASSWORD = "correct horse battery"
START = datetime(2026, 12, 1, 9, 0, tzinfo=TOKYO)


class Clock:
    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def cheap_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def build_app(
    db_path: Path | str, clock: Clock, settings: Settings, hasher: PasswordHasher | None = None
) -> web.Application:
    app = web.Application(middlewares=http_middlewares())
    put_settings(app, settings)
    app[keys.CLOCK] = clock
    app[PASSWORD_HASHER] = hasher or cheap_hasher()

    async def db_ctx(app: web.Application) -> AsyncIterator[None]:
        db = await open_store(db_path, {**MIGRATIONS, screenpop_schema.COMPONENT: screenpop_schema.MIGRATIONS})
        app[keys.DATABASE] = db
        yield
        await db.close()

    app.cleanup_ctx.append(db_ctx)
    app.cleanup_ctx.append(auth_ctx)
    app.cleanup_ctx.append(seats_ctx)
    app.cleanup_ctx.append(hub_ctx)
    app.cleanup_ctx.append(desks_ctx)  # seats and presence (screenpop)
    setup_auth_routes(app)
    setup_seat_routes(app)
    setup_ws_routes(app)
    return app


def make_settings(**sections: dict[str, Any]) -> Settings:
    base: dict[str, Any] = {
        "security": {"allowed_origins": [ORIGIN], "operator_networks": ["127.0.0.0/8", "::1/128"]},
        "hub": {"heartbeat_seconds": 30.0},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return Settings(**base)


async def start(
    tmp_path: Path,
    clock: Clock,
    settings: Settings,
    setup: Callable[[web.Application], None] | None = None,
    store: str | None = None,
    **kw: Any,
) -> TestClient[Any, Any]:
    """`store`: a PostgreSQL URL (tests/pg_support.py's store_target) instead of tmp_path's SQLite file."""
    app = build_app(store or tmp_path / "cti.sqlite3", clock, settings, **kw)
    if setup is not None:
        setup(app)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    return client


async def add_user(client: TestClient[Any, Any], user_id: str, role: str, department: str | None = None) -> None:
    ctx = client.app[AUTH] if client.app is not None else None
    assert ctx is not None
    await ctx.accounts.add(user_id, role, PASSWORD, department=department, known_departments=ctx.known_departments)


async def login(client: TestClient[Any, Any], user_id: str, password: str = PASSWORD) -> dict[str, Any]:
    resp = await client.post("/api/login", json={"user_id": user_id, "password": password}, headers={"Origin": ORIGIN})
    body: dict[str, Any] = await resp.json()
    assert resp.status == 200, body
    return body


def session_cookie(client: TestClient[Any, Any]) -> str | None:
    for cookie in client.session.cookie_jar:
        if cookie.key == "cti_session":
            return cookie.value
    return None


async def rows(client: TestClient[Any, Any], sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the test database through the app's gateway."""
    assert client.app is not None
    return await client.app[keys.DATABASE].read(lambda conn: [tuple(r) for r in conn.execute(sql, params)])
