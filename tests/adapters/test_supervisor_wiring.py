"""The supervisor and department screens as create_app wires them: pages and APIs behind the auth
middleware (login, role, operator room), the supervisor context running with telephony disabled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from access.web import AUTH, PASSWORD_HASHER
from cti import keys
from cti.app import create_app
from cti.config import Settings
from cti.core.clock import TOKYO
from supervision.service import SUPERVISOR

PASSWORD = "correct horse battery"
AT = datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    settings = Settings(store={"path": str(tmp_path / "cti.sqlite3")}, ami={"enabled": False},
                        agi={"enabled": False})
    app = create_app(settings, clock=lambda: AT)
    app[PASSWORD_HASHER] = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        accounts = app[AUTH].accounts
        await accounts.add("sv1", "supervisor", PASSWORD)
        await accounts.add("tax1", "department", PASSWORD, department="zeimu", known_departments=["zeimu"])
        yield c


async def login(client: TestClient[Any, Any], user: str) -> None:
    client.session.cookie_jar.clear()
    resp = await client.post("/api/login", json={"user_id": user, "password": PASSWORD})
    assert resp.status == 200


async def test_anonymous_gets_nothing(client: TestClient[Any, Any]) -> None:
    for path in ("/api/supervisor/wall", "/api/calendar/emergency", "/api/reports", "/api/department/inbox"):
        assert (await client.get(path)).status == 401, path
    for path in ("/supervisor/", "/department/", "/supervisor/assets/app.js"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status in (303, 401), path


async def test_pages_by_role(client: TestClient[Any, Any]) -> None:
    app = client.app
    assert app is not None and SUPERVISOR in app  # the context runs without telephony
    count = await app[keys.DATABASE].read(lambda conn: conn.execute("SELECT count(*) FROM call_log").fetchone()[0])
    assert count == 0  # migrated
    await login(client, "sv1")
    page = await client.get("/supervisor/")
    assert page.status == 200 and "監督者画面" in await page.text()
    assert (await client.get("/supervisor/assets/app.js")).status == 200
    wall = await (await client.get("/api/supervisor/wall")).json()
    assert wall["waiting"] == 0 and wall["operators"] == []
    assert (await client.get("/department/")).status == 403
    await login(client, "tax1")
    page = await client.get("/department/")
    assert page.status == 200 and "折り返し依頼" in await page.text()
    assert (await client.get("/department/assets/app.js")).status == 200
    assert (await client.get("/supervisor/", allow_redirects=False)).status == 403
    assert (await client.get("/api/department/inbox")).status == 200
