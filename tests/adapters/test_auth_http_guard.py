"""Issue 14.2/14.4: one guard in front of every JSON body, one error envelope, no bare 500, and the
security headers (CSP frame-ancestors 'none') on every page, in the real app (create_app)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from argon2 import PasswordHasher

from access.web import AUTH, PASSWORD_HASHER, public
from cti.app import create_app
from cti.config import load_settings

ORIGIN = "http://127.0.0.1:8080"
PASSWORD = "correct horse battery"
PHONE = "090-1234-5678"
Client = TestClient[Any, Any]


@public
async def boom(request: web.Request) -> web.Response:
    raise RuntimeError(f"caller {PHONE} broke it")  # an exception message quoting personal data


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    settings = load_settings(None, {
        "CTI_STORE__PATH": str(tmp_path / "cti.sqlite3"), "CTI_AMI__ENABLED": "false", "CTI_AGI__ENABLED": "false",
    })
    app = create_app(settings)
    app[PASSWORD_HASHER] = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    app.router.add_post("/api/test/boom", boom)
    app.router.add_get("/test/boom", boom)
    async with TestClient(TestServer(app)) as c:
        await app[AUTH].accounts.add("sv1", "supervisor", PASSWORD)
        await app[AUTH].accounts.add("zei1", "department", PASSWORD, department="zeimu",
                                     known_departments=["zeimu"])
        yield c


async def login(client: Client, user_id: str) -> dict[str, str]:
    resp = await client.post("/api/login", json={"user_id": user_id, "password": PASSWORD}, headers={"Origin": ORIGIN})
    assert resp.status == 200
    return {"X-CSRF-Token": (await resp.json())["csrf_token"]}


def assert_envelope(body: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"code", "message", "field"}
    if code is not None:
        assert error["code"] == code, (status, error)
    return dict(error)


GUARD_CODES = {"invalid_json", "invalid_encoding", "too_deep", "number_too_long", "invalid_text"}
MALFORMED = {
    "deep_nesting": ("[" * 5000 + "]" * 5000).encode(),
    "deep_objects": ('{"a":' * 40 + "1" + "}" * 40).encode(),
    "huge_number": b'{"user_id": "op1", "password": ' + b"9" * 5000 + b"}",
    "huge_float": b'{"x": 1.' + b"5" * 5000 + b"}",
    "overflowing_float": b'{"x": 1e999}',
    "nan": b'{"x": NaN}',
    "lone_surrogate_user": json.dumps({"user_id": "\ud800", "password": "x" * 12}).encode(),
    "lone_surrogate_password": json.dumps({"user_id": "op1", "password": "abc\udfffdefghij"}).encode(),
    "lone_surrogate_key": b'{"\\udc00": 1}',
    "invalid_utf8": b'{"user_id": "\xff\xfe", "password": "x"}',
    "truncated": b'{"user_id": "op1", ',
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_login_bodies_get_a_4xx_envelope(
    client: Client, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    resp = await client.post("/api/login", data=MALFORMED[name],
                             headers={"Content-Type": "application/json", "Origin": ORIGIN})
    assert 400 <= resp.status < 500, (name, resp.status)
    assert_envelope(await resp.json(), resp.status)
    refused = [r for r in caplog.records if r.getMessage() == "request_body_refused"]
    assert refused and all("9999" not in str(r.__dict__) for r in refused)


@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_bodies_to_any_api_get_a_4xx_envelope(client: Client, name: str) -> None:
    csrf = await login(client, "sv1")
    for path in ("/api/calendar/emergency", "/api/seat", "/api/records/contacts", "/api/logout"):
        resp = await client.post(path, data=MALFORMED[name], headers={**csrf, "Content-Type": "application/json"})
        assert resp.status == 400, (name, path, resp.status)
        assert assert_envelope(await resp.json(), 400)["code"] in GUARD_CODES


async def test_a_body_sent_as_text_plain_is_guarded_too(client: Client) -> None:
    csrf = await login(client, "sv1")
    resp = await client.post("/api/seat", data=MALFORMED["deep_nesting"],
                             headers={**csrf, "Content-Type": "text/plain"})
    assert resp.status == 400
    assert_envelope(await resp.json(), 400, "too_deep")


async def test_nesting_up_to_the_limit_is_accepted(client: Client) -> None:
    body = '{"user_id": "sv1", "password": "' + PASSWORD + '", "x": ' + "[" * 30 + "]" * 30 + "}"
    resp = await client.post("/api/login", data=body.encode(),
                             headers={"Content-Type": "application/json", "Origin": ORIGIN})
    assert resp.status == 200


async def test_form_logins_with_control_characters_are_refused_without_a_500(client: Client) -> None:
    resp = await client.post("/api/login", data={"user_id": "sv1\x00", "password": PASSWORD},
                             headers={"Origin": ORIGIN})
    assert resp.status == 400 and resp.content_type == "text/html"


async def test_an_unhandled_exception_is_a_500_envelope_and_logs_no_personal_data(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for method, path in (("POST", "/api/test/boom"), ("GET", "/test/boom")):
        resp = await client.request(method, path, json={} if method == "POST" else None, headers={"Origin": ORIGIN})
        text = await resp.text()
        assert resp.status == 500
        assert "Traceback" not in text and PHONE not in text and "RuntimeError" not in text
        assert_envelope(json.loads(text), 500, "internal_error")
    logged = [r for r in caplog.records if r.getMessage() == "unhandled_exception"]
    assert len(logged) == 2
    fields = logged[0].cti_fields  # type: ignore[attr-defined]
    assert fields["error"] == "RuntimeError" and any("boom" in frame for frame in fields["where"])
    assert all(PHONE not in (r.getMessage() + str(r.__dict__)) for r in caplog.records)


async def test_unknown_api_paths_and_methods_answer_the_envelope(client: Client) -> None:
    await login(client, "sv1")
    resp = await client.get("/api/no/such/thing")
    assert resp.status == 404
    assert_envelope(await resp.json(), 404)


async def test_every_page_forbids_framing(client: Client) -> None:
    resp = await client.get("/login")
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    await login(client, "sv1")
    resp = await client.get("/supervisor/")
    assert resp.status == 200 and resp.content_type == "text/html"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["X-Content-Type-Options"] == "nosniff"
    client.session.cookie_jar.clear()
    await login(client, "zei1")
    resp = await client.get("/department/")
    assert resp.status == 200 and resp.content_type == "text/html"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    resp = await client.get("/operator/")
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in resp.headers  # plain HTTP here (see test_auth_tls.py)
