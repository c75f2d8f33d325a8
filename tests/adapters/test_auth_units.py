"""Issue 12: a logout and an account disable stay done when they share a commit with another
component's FAILING unit of work (the real app, create_app, through aiohttp's TestClient).

With the old shared aiosqlite connection a logout's DELETE could land inside a records unit and be
rolled back with it. Through the gateway each unit has its own savepoint: the failing unit's rows
go, the logout's stay, and the caller of the failing unit gets its error.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher
from yarl import URL

from access.web import AUTH, PASSWORD_HASHER
from cti import gateway, keys
from cti.app import create_app, migrations
from cti.config import load_settings
from cti.gateway import Database

ORIGIN = "http://127.0.0.1:8080"
PASSWORD = "correct horse battery"
Client = TestClient[Any, Any]


class RecordsUnitFailed(RuntimeError):
    pass


def failing_records_unit(conn: sqlite3.Connection) -> None:
    """What a records unit looks like when it breaks half-way: a row written, then an error."""
    conn.execute(
        "INSERT INTO audit(at, actor, role, client_ip, action, record_type, outcome, prev_hash, hash)"
        " VALUES ('2026-12-02T09:00:00+09:00', 'op2', 'operator', '127.0.0.1', 'update', 'call', 'ok', 'x', 'y')"
    )
    raise RecordsUnitFailed("records unit failed half-way")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    settings = load_settings(None, {
        "CTI_STORE__PATH": str(tmp_path / "cti.sqlite3"), "CTI_AMI__ENABLED": "false", "CTI_AGI__ENABLED": "false",
    })
    app = create_app(settings)
    app[PASSWORD_HASHER] = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    async with TestClient(TestServer(app)) as c:
        await app[AUTH].accounts.add("op1", "operator", PASSWORD)
        yield c


def batches_seen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many units each committed batch held."""
    sizes: list[int] = []
    real = gateway._run_batch

    def run(conn: sqlite3.Connection, units: list[Callable[[sqlite3.Connection], Any]]) -> list[tuple[bool, Any]]:
        sizes.append(len(units))
        return real(conn, units)

    monkeypatch.setattr(gateway, "_run_batch", run)
    return sizes


def pair_next_write_with(db: Database, monkeypatch: pytest.MonkeyPatch) -> asyncio.Future[Any]:
    """The next unit written through `db` is queued right after the failing records unit, so both run
    in one batch (one BEGIN ... COMMIT). Returns the failing unit's outcome."""
    real_write = db.write
    outcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def write(fn: Callable[[sqlite3.Connection], Any]) -> Any:
        monkeypatch.setattr(db, "write", real_write)
        failing = asyncio.ensure_future(real_write(failing_records_unit))
        failing.add_done_callback(lambda t: outcome.set_exception(t.exception()) if t.exception()
                                  else outcome.set_result(t.result()))
        mine: Awaitable[Any] = asyncio.ensure_future(real_write(fn))
        return await mine

    monkeypatch.setattr(db, "write", write)
    return outcome


async def login(client: Client) -> tuple[str, str]:
    resp = await client.post("/api/login", json={"user_id": "op1", "password": PASSWORD}, headers={"Origin": ORIGIN})
    assert resp.status == 200
    token = next(c.value for c in client.session.cookie_jar if c.key == "cti_session")
    return token, (await resp.json())["csrf_token"]


def use_cookie(client: Client, token: str) -> None:
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({"cti_session": token}, URL(str(client.make_url("/"))))


async def count(db: Database, sql: str) -> int:
    return int(await db.read(lambda conn: conn.execute(sql).fetchone()[0]))


async def test_a_logout_sharing_a_commit_with_a_failing_unit_stays_done(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.app is not None
    db = client.app[keys.DATABASE]
    token, csrf = await login(client)
    audit_before = await count(db, "SELECT count(*) FROM audit")
    sizes = batches_seen(monkeypatch)
    failed = pair_next_write_with(db, monkeypatch)

    resp = await client.post("/api/logout", headers={"X-CSRF-Token": csrf})

    assert resp.status == 200
    with pytest.raises(RecordsUnitFailed):
        await failed  # the other component's caller hears of its failure ...
    assert 2 in sizes  # ... and it really shared the logout's batch
    assert await count(db, "SELECT count(*) FROM audit") == audit_before  # its half-written row is gone
    assert await count(db, "SELECT count(*) FROM sessions") == 0  # the logout is not
    use_cookie(client, token)
    assert (await client.get("/api/me")).status == 401  # the old cookie is refused


async def test_a_disable_sharing_a_commit_with_a_failing_unit_stays_done(
    client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert client.app is not None
    db = client.app[keys.DATABASE]
    token, _ = await login(client)
    sizes = batches_seen(monkeypatch)
    failed = pair_next_write_with(db, monkeypatch)

    await client.app[AUTH].accounts.set_disabled("op1")

    with pytest.raises(RecordsUnitFailed):
        await failed
    assert 2 in sizes
    assert await count(db, "SELECT disabled FROM users WHERE user_id = 'op1'") == 1
    assert await count(db, "SELECT count(*) FROM sessions") == 0
    use_cookie(client, token)
    assert (await client.get("/api/me")).status == 401  # the old cookie is refused
    resp = await client.post("/api/login", json={"user_id": "op1", "password": PASSWORD}, headers={"Origin": ORIGIN})
    assert resp.status == 401  # and the account stays disabled
    await client.close()
    # ... on disk too, after the app has stopped
    reopened = await Database.open(tmp_path / "cti.sqlite3", migrations())
    try:
        assert await count(reopened, "SELECT disabled FROM users WHERE user_id = 'op1'") == 1
        assert await count(reopened, "SELECT count(*) FROM sessions") == 0
    finally:
        await reopened.close()


def test_the_session_key_is_kept_beside_the_database_so_sessions_survive_a_restart(tmp_path: Path) -> None:
    import stat

    from access.context import stored_session_key

    store = tmp_path / "cti.sqlite3"
    first = stored_session_key(store)
    assert first is not None and len(first) == 64
    assert stored_session_key(store) == first  # the same key at the next start
    key_file = tmp_path / "cti.sqlite3.session-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stored_session_key(Path(":memory:")) is None
