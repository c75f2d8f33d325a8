"""The whole app (cti.app.create_app) on a real TCP port, with users of every role, for the
reliability and security suite. AMI and FastAGI are off unless asked for.

``set_operator_room(app, inside)`` moves 127.0.0.1 in or out of the operator-room networks at
runtime (both the middleware's parsed copy and the settings the supervisor handlers read), so a
session made inside the room can be replayed from "outside" without a second process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from access.rules import parse_networks
from access.web import AUTH, PASSWORD_HASHER
from cti.app import create_app
from cti.config import load_settings
from cti.core.clock import TOKYO

ORIGIN = "http://cti.test:8080"
PASSWORD = "correct horse battery staple"
# A Friday evening: the office is closed (callbacks are taken), the call center is open.
FRIDAY_EVENING = datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO)
INSIDE = ["127.0.0.0/8", "::1/128"]
OUTSIDE = ["10.99.0.0/16"]  # 127.0.0.1 is not in the operator room

# (label, user id, role, department)
USERS = [
    ("operator", "op1", "operator", None),
    ("supervisor", "sv1", "supervisor", None),
    ("dept_a", "tax1", "department", "zeimu"),
    ("dept_b", "reg1", "department", "koseki"),
    ("kuseijoho", "pi1", "department", "kuseijoho"),
    ("admin", "ad1", "admin", None),
]


class Clock:
    def __init__(self, at: datetime = FRIDAY_EVENING) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Browser:
    """One logged-in browser: its own cookie jar and CSRF token."""

    label: str
    user_id: str
    client: TestClient[Any, Any]
    csrf: str = ""

    async def close(self) -> None:
        """Close this browser's session only (TestClient.close would stop the shared server)."""
        await self.client.session.close()

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Origin": ORIGIN, "X-CSRF-Token": self.csrf, **extra}


@dataclass
class Env:
    app: web.Application
    server: TestServer
    clock: Clock
    browsers: dict[str, Browser] = field(default_factory=dict)

    async def browser(self, label: str | None = None) -> Browser:
        """A new cookie jar; logged in as the user of `label` unless label is None (anonymous)."""
        client: TestClient[Any, Any] = TestClient(self.server)
        await client.start_server()
        if label is None:
            return Browser("anonymous", "", client)
        user = next(u for u in USERS if u[0] == label)
        resp = await client.post("/api/login", json={"user_id": user[1], "password": PASSWORD},
                                 headers={"Origin": ORIGIN})
        body = await resp.json()
        assert resp.status == 200, body
        return Browser(label, user[1], client, body["csrf_token"])


def settings_for(tmp_path: Path, **env: str) -> Any:
    values = {
        "CTI_STORE__PATH": str(tmp_path / "cti.sqlite3"),
        "CTI_AMI__ENABLED": "false",
        "CTI_AGI__ENABLED": "false",
        "CTI_SECURITY__ALLOWED_ORIGINS": f'["{ORIGIN}"]',
        **env,
    }
    return load_settings(None, values)


def set_operator_room(app: web.Application, inside: bool) -> None:
    nets = INSIDE if inside else OUTSIDE
    app[AUTH].networks = parse_networks(nets)
    from cti import keys

    app[keys.SETTINGS].security.operator_networks = list(nets)


@asynccontextmanager
async def running_app(tmp_path: Path, settings: Any = None, clock: Clock | None = None,
                      users: bool = True) -> AsyncIterator[Env]:
    clock = clock or Clock()
    settings = settings or settings_for(tmp_path)
    app = create_app(settings, clock=clock)
    app[PASSWORD_HASHER] = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        if users:
            ctx = app[AUTH]
            for _, user_id, role, dept in USERS:
                await ctx.accounts.add(user_id, role, PASSWORD, department=dept,
                                       known_departments=ctx.known_departments)
        yield Env(app, server, clock)
    finally:
        await server.close()
