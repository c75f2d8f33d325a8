"""Login, sessions, CSRF, throttling, the operator-room allowlist and seats over real HTTP."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from argon2 import PasswordHasher
from authhub_harness import (
    ORIGIN,
    PASSWORD,
    Clock,
    add_user,
    login,
    make_settings,
    rows,
    session_cookie,
    start,
)
from yarl import URL

Client = TestClient[Any, Any]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(tmp_path: Path, clock: Clock, store_target: str) -> AsyncIterator[Client]:
    """On both engines: accounts and sessions live behind the gateway."""
    c = await start(
        tmp_path,
        clock,
        make_settings(security={"login_max_failures": 3, "login_window_seconds": 300, "session_idle_minutes": 30}),
        store=store_target,
    )
    await add_user(c, "op1", "operator")
    await add_user(c, "op2", "operator")
    await add_user(c, "tax1", "department", "zeimu")
    yield c
    await c.close()


def use_cookie(client: Client, token: str) -> None:
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({"cti_session": token}, URL(str(client.make_url("/"))))


async def test_login_page_is_a_japanese_form(client: Client) -> None:
    resp = await client.get("/login")
    text = await resp.text()
    assert resp.status == 200
    assert 'lang="ja"' in text and "ログイン" in text and 'action="/api/login"' in text


async def test_login_ok_sets_a_strict_httponly_cookie_and_me_shows_the_principal(client: Client) -> None:
    resp = await client.post("/api/login", json={"user_id": "op1", "password": PASSWORD}, headers={"Origin": ORIGIN})
    body = await resp.json()
    assert resp.status == 200
    assert body["user_id"] == "op1" and body["role"] == "operator" and len(body["csrf_token"]) >= 32
    set_cookie = resp.headers.getone("Set-Cookie")
    assert "cti_session=" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert "Secure" not in set_cookie  # plain HTTP in this test; request.secure decides
    me = await client.get("/api/me")
    assert me.status == 200
    assert (await me.json())["csrf_token"] == body["csrf_token"]


async def test_the_database_keeps_only_a_hash_of_the_session_token(client: Client) -> None:
    await login(client, "op1")
    token = session_cookie(client)
    assert token
    assert client.app is not None
    stored = [r[0] for r in await rows(client, "SELECT token_hash FROM sessions")]
    assert len(stored) == 1 and token not in stored[0]
    assert stored[0] != hashlib.sha256(token.encode()).hexdigest()  # keyed (HMAC): not computable from the cookie alone


async def test_form_login_redirects_operators_to_their_screen(client: Client) -> None:
    resp = await client.post(
        "/api/login", data={"user_id": "op1", "password": PASSWORD}, headers={"Origin": ORIGIN}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == "/operator/"


@pytest.mark.parametrize(("role", "department", "screen"), [
    ("supervisor", None, "/supervisor/"), ("department", "zeimu", "/department/"), ("faq_editor", None, "/faq/editor/"),
])
async def test_form_login_lands_each_role_on_its_own_screen(
    client: Client, role: str, department: str | None, screen: str
) -> None:
    await add_user(client, "someone", role, department)
    resp = await client.post(
        "/api/login", data={"user_id": "someone", "password": PASSWORD}, headers={"Origin": ORIGIN},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == screen


async def test_wrong_password_is_401_and_the_log_holds_no_password(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    resp = await client.post("/api/login", json={"user_id": "op1", "password": "wrong-password-XYZ"})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "login_failed"
    assert session_cookie(client) is None
    failed = [r for r in caplog.records if r.getMessage() == "login_failed"]
    assert failed and failed[0].cti_fields["reason"] == "wrong_password"  # type: ignore[attr-defined]
    assert all("wrong-password-XYZ" not in (r.getMessage() + str(r.__dict__)) for r in caplog.records)


async def test_unknown_user_gets_the_same_answer_as_a_wrong_password(client: Client) -> None:
    resp = await client.post("/api/login", json={"user_id": "nobody", "password": PASSWORD})
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "login_failed"


async def test_bad_login_bodies_are_400_with_a_reason(client: Client) -> None:
    resp = await client.post("/api/login", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    resp = await client.post("/api/login", json={"user_id": "op1"})
    assert resp.status == 400 and (await resp.json())["error"]["field"] == "password"


async def test_failures_per_account_are_throttled_with_retry_after(client: Client, clock: Clock) -> None:
    for _ in range(3):
        resp = await client.post("/api/login", json={"user_id": "op1", "password": "nope-nope-nope"})
        assert resp.status == 401
    resp = await client.post("/api/login", json={"user_id": "op1", "password": PASSWORD})
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 300
    assert session_cookie(client) is None
    clock.advance(seconds=301)
    assert (await login(client, "op1"))["user_id"] == "op1"


async def test_failures_per_client_ip_are_throttled_across_accounts(client: Client) -> None:
    for user in ("a1", "a2", "a3"):
        resp = await client.post("/api/login", json={"user_id": user, "password": "nope-nope-nope"})
        assert resp.status == 401
    resp = await client.post("/api/login", json={"user_id": "op2", "password": PASSWORD})
    assert resp.status == 429


async def test_a_disabled_account_cannot_log_in_and_loses_its_sessions(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await login(client, "op1")
    assert client.app is not None
    from access.web import AUTH

    await client.app[AUTH].accounts.set_disabled("op1")
    assert (await client.get("/api/me")).status == 401
    right = await client.post("/api/login", json={"user_id": "op1", "password": PASSWORD}, headers={"Origin": ORIGIN})
    wrong = await client.post("/api/login", json={"user_id": "op1", "password": "not-the-password"})
    # The answer does not confirm the password: the same as a wrong one. The log says why.
    assert (right.status, await right.json()) == (wrong.status, await wrong.json())
    assert right.status == 401 and (await right.json())["error"]["code"] == "login_failed"
    reasons = [r.cti_fields["reason"] for r in caplog.records if r.getMessage() == "login_failed"]  # type: ignore[attr-defined]
    assert reasons == ["disabled", "wrong_password"]


async def test_state_changing_requests_need_the_csrf_token(client: Client) -> None:
    body = await login(client, "op1")
    resp = await client.post("/api/logout")
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf_failed"
    resp = await client.post("/api/logout", headers={"X-CSRF-Token": "forged"})
    assert resp.status == 403
    assert (await client.get("/api/me")).status == 200  # the failed requests changed nothing
    resp = await client.post("/api/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert resp.status == 200


async def test_login_from_a_foreign_origin_is_rejected(client: Client) -> None:
    resp = await client.post(
        "/api/login", json={"user_id": "op1", "password": PASSWORD}, headers={"Origin": "https://evil.example"}
    )
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "bad_origin"
    assert session_cookie(client) is None


async def test_login_issues_a_new_session_id_and_the_old_one_dies(client: Client) -> None:
    await login(client, "op1")
    first = session_cookie(client)
    await login(client, "op1")
    second = session_cookie(client)
    assert first and second and first != second
    use_cookie(client, first)
    assert (await client.get("/api/me")).status == 401
    use_cookie(client, second)
    assert (await client.get("/api/me")).status == 200


async def test_a_planted_session_id_is_never_adopted(client: Client) -> None:
    use_cookie(client, "attacker-chosen-value")
    await login(client, "op1")
    assert session_cookie(client) != "attacker-chosen-value"


async def test_logout_invalidates_the_session(client: Client) -> None:
    body = await login(client, "op1")
    token = session_cookie(client)
    assert token
    resp = await client.post("/api/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert resp.status == 200
    use_cookie(client, token)
    assert (await client.get("/api/me")).status == 401


async def test_idle_timeout_follows_the_injected_clock(client: Client, clock: Clock) -> None:
    await login(client, "op1")
    clock.advance(minutes=29)
    assert (await client.get("/api/me")).status == 200  # activity moves the idle deadline
    clock.advance(minutes=29)
    assert (await client.get("/api/me")).status == 200
    clock.advance(minutes=30)
    resp = await client.get("/api/me")
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "not_logged_in"


async def test_pages_without_login_redirect_to_the_login_page(tmp_path: Path, clock: Clock) -> None:
    from aiohttp import web

    from access.web import Access, add_path_access

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="operator screen")

    def setup(app: web.Application) -> None:
        # an operator page as the operator-screen package will declare it
        app.router.add_get("/operator/", page)
        add_path_access(app, "/operator/", Access(operator_room_only=True))

    c = await start(tmp_path, clock, make_settings(), setup=setup)
    try:
        resp = await c.get("/operator/", allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/login"
        await add_user(c, "op1", "operator")
        await login(c, "op1")
        resp = await c.get("/operator/")
        assert resp.status == 200 and await resp.text() == "operator screen"
    finally:
        await c.close()


async def test_logout_frees_the_seat(client: Client) -> None:
    a = await login(client, "op1")
    csrf = {"X-CSRF-Token": a["csrf_token"]}
    await client.post("/api/seat", json={"interface": "Local/101@operator-phones"}, headers=csrf)
    await client.post("/api/logout", headers=csrf)
    assert client.app is not None
    from screenpop.keys import SEATS

    assert client.app[SEATS].user_at("Local/101@operator-phones") is None


async def test_department_staff_may_not_take_seats(client: Client) -> None:
    t = await login(client, "tax1")
    resp = await client.post("/api/seat", json={"interface": "PJSIP/op101"}, headers={"X-CSRF-Token": t["csrf_token"]})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "forbidden_role"


async def test_argon2_hash_is_upgraded_at_login_when_parameters_change(
        tmp_path: Path, clock: Clock, store_target: str) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    c = await start(tmp_path, clock, make_settings(), hasher=weak, store=store_target)
    await add_user(c, "op1", "operator")
    await c.close()
    c = await start(tmp_path, clock, make_settings(), hasher=stronger, store=store_target)
    try:
        assert c.app is not None
        await login(c, "op1")
        (row,) = await rows(c, "SELECT password_hash FROM users WHERE user_id = 'op1'")
        assert row is not None and row[0].startswith("$argon2id$") and "m=2048,t=2" in row[0]
        await c.post("/api/logout", headers={"X-CSRF-Token": (await (await c.get("/api/me")).json())["csrf_token"]})
        await login(c, "op1")  # the new hash verifies
    finally:
        await c.close()


async def test_outside_the_operator_room_a_right_password_gets_the_wrong_password_answer_and_is_logged(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    c = await start(tmp_path, clock, make_settings(security={"operator_networks": ["10.20.0.0/16"]}))
    try:
        await add_user(c, "op1", "operator")
        await add_user(c, "tax1", "department", "zeimu")
        resp = await c.post("/api/login", json={"user_id": "op1", "password": PASSWORD}, headers={"Origin": ORIGIN})
        body = await resp.json()
        wrong = await c.post("/api/login", json={"user_id": "op1", "password": "not the password"},
                             headers={"Origin": ORIGIN})
        # no password oracle outside the room: the right password answers exactly as a wrong one,
        # and that answer tells operators and supervisors why (they log in from the room only)
        assert (resp.status, body) == (wrong.status, await wrong.json())
        assert resp.status == 401 and body["error"]["code"] == "login_failed"
        assert "オペレーター室" in body["error"]["message"]
        assert session_cookie(c) is None
        reasons = [r.cti_fields["reason"] for r in caplog.records  # type: ignore[attr-defined]
                   if r.getMessage() == "login_failed"]
        assert reasons == ["outside_operator_room", "wrong_password"]  # the log tells them apart
        resp = await c.get("/api/seats")  # room-only page, even before any login
        assert resp.status == 403
        denied = [r for r in caplog.records if r.getMessage() == "access_denied_outside_operator_room"]
        assert len(denied) == 2
        assert denied[0].cti_fields["client_ip"] == "127.0.0.1"  # type: ignore[attr-defined]
        # department staff are not confined to the room
        await login(c, "tax1")
        assert (await c.get("/api/me")).status == 200
    finally:
        await c.close()


async def test_a_failed_form_login_shows_the_form_again_with_the_reason(client: Client) -> None:
    resp = await client.post(
        "/api/login", data={"user_id": "op1", "password": "not the password"}, headers={"Origin": ORIGIN}
    )
    text = await resp.text()
    assert resp.status == 401 and resp.content_type == "text/html"
    assert "IDまたはパスワードが違います" in text and 'role="alert"' in text and "not the password" not in text


async def test_a_password_reset_ends_the_accounts_sessions(client: Client) -> None:
    await login(client, "op1")
    assert client.app is not None
    from access.web import AUTH

    await client.app[AUTH].accounts.reset_password("op1", "a brand new password")
    assert (await client.get("/api/me")).status == 401
    await login(client, "op1", "a brand new password")
    assert (await client.get("/api/me")).status == 200


async def test_the_login_page_shows_only_its_fixed_notices(client: Client) -> None:
    text = await (await client.get("/login?m=expired")).text()
    assert "セッションの有効期限が切れました" in text and 'role="status"' in text
    text = await (await client.get("/login?m=%3Cscript%3Ealert(1)%3C/script%3E")).text()
    assert "<script>" not in text and "alert(1)" not in text and 'id="login-notice"' not in text
