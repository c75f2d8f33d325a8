"""Authorisation matrix over every route of the real app (create_app), every role, both networks.

Every route of ``app.router.routes()`` must have a row in ``TABLE`` (a new route without a row
fails the test: it cannot be missed). Each row says who may use the route; each cell (route x
role x network) is requested once and its status class asserted against the one expectation the
table gives. Plus: no 4xx/5xx body carries personal data, the websocket Origin and session checks,
CSRF, login throttling, session fixation and logout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from rel_app import ORIGIN, PASSWORD, USERS, Browser, Env, running_app, set_operator_room, settings_for
from reliability_support import figures

from cti import keys

ROLES = ["anonymous", *(u[0] for u in USERS)]
OP, SV, DA, DB, PI, AD = "operator", "supervisor", "dept_a", "dept_b", "kuseijoho", "admin"
EVERYONE = frozenset({OP, SV, DA, DB, PI, AD})
ROOM_ROLES = frozenset({OP, SV})
NAME, PHONE, QUESTION = "鈴木一郎", "09087654321", "児童手当の振込日について知りたい"
CALLER = "0398765432"


@dataclass(frozen=True)
class Rule:
    """Who may use a route. allowed=None: public (anonymous too)."""

    allowed: frozenset[str] | None
    room_only: bool = False  # everyone, anonymous too, must be in the operator room
    page: bool = False  # an HTML page: anonymous GET is redirected to /login (303)
    forbidden_by_handler: frozenset[str] = frozenset()  # logged in and past the middleware, refused by the handler
    # past the role check, but the record is outside their scope: the same 404 as a missing record
    hidden_by_handler: frozenset[str] = frozenset()


PUBLIC = Rule(None)
ANY = Rule(EVERYONE)
SV_AD = frozenset({SV, AD})
DEPT = frozenset({DA, DB, PI, AD})
FAQ_EDITORS = Rule(DEPT, forbidden_by_handler=frozenset({DA, DB}))
# hold/consult of a call nobody here answered (no pop was routed): the handler's 403 not_your_call
NOT_YOUR_CALL = Rule(ROOM_ROLES, room_only=True, forbidden_by_handler=ROOM_ROLES)


def handler_rule(allowed: frozenset[str], hidden: frozenset[str] = frozenset()) -> Rule:
    """Routes the middleware lets any login through; the handler (records.rules) decides."""
    return Rule(EVERYONE, forbidden_by_handler=EVERYONE - allowed - hidden, hidden_by_handler=hidden)


# (method, path template) -> rule. HEAD rows follow their GET rows (same rule).
TABLE: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/api/login"): PUBLIC,
    ("GET", "/ws"): PUBLIC,  # the handler checks Origin and session itself: test_websocket_*
    ("GET", "/api/ws/schema.json"): PUBLIC,
    ("GET", "/"): PUBLIC,  # the page shell; its data needs a login
    ("GET", "/operator/"): Rule(None, room_only=True),  # the operator screen: only from the room
    ("GET", "/static"): PUBLIC,
    ("POST", "/api/logout"): ANY,
    ("GET", "/api/me"): ANY,
    ("GET", "/api/seats"): Rule(ROOM_ROLES | {AD}, room_only=True),
    ("POST", "/api/seat"): Rule(ROOM_ROLES, room_only=True),
    ("DELETE", "/api/seat"): Rule(ROOM_ROLES, room_only=True),
    # records: the call below was taken by op1; the callback is zeimu's (dept_a), handed over
    ("POST", "/api/records/contacts"): handler_rule(frozenset({OP, SV, AD})),
    ("GET", "/api/records/contacts/{call_id}"): handler_rule(frozenset({OP, AD}), hidden=frozenset({SV})),
    ("PATCH", "/api/records/contacts/{call_id}"): handler_rule(frozenset({OP, SV, AD})),
    ("POST", "/api/records/contacts/{call_id}/consent"): handler_rule(frozenset({OP, SV, AD})),
    ("POST", "/api/records/contacts/{call_id}/callbacks"): handler_rule(frozenset({OP, SV, AD})),
    ("GET", "/api/records/callbacks"): handler_rule(DEPT),
    ("GET", "/api/records/callbacks/{id}"): handler_rule(frozenset({DA, PI, AD}), hidden=frozenset({DB})),
    ("POST", "/api/records/callbacks/{id}/start"): handler_rule(frozenset({DA, PI, AD}), hidden=frozenset({DB})),
    ("POST", "/api/records/callbacks/{id}/attempts"): handler_rule(frozenset({DA, PI, AD}), hidden=frozenset({DB})),
    ("POST", "/api/records/callbacks/{id}/close"): handler_rule(frozenset({DA, PI, AD}), hidden=frozenset({DB})),
    ("GET", "/api/records/faq-gaps"): handler_rule(frozenset({SV, PI, AD})),
    ("GET", "/api/openapi.json"): ANY,
    ("GET", "/api/faq/search"): ANY,
    ("GET", "/api/faq/{id}"): ANY,
    ("POST", "/api/faq/gaps"): Rule(frozenset({OP, SV, AD})),
    # FAQ editing: department staff and admins pass the middleware; only 区政情報課 (and admins) edit
    ("GET", "/faq/editor/"): Rule(DEPT, page=True),
    ("GET", "/faq/editor/assets"): Rule(DEPT, page=True),
    ("GET", "/api/faq/export"): FAQ_EDITORS,
    ("GET", "/api/faq/editor/entries"): FAQ_EDITORS,
    ("GET", "/api/faq/editor/entries/{id}"): FAQ_EDITORS,
    ("POST", "/api/faq/editor/drafts"): FAQ_EDITORS,
    ("GET", "/api/faq/editor/drafts"): FAQ_EDITORS,
    ("POST", "/api/faq/editor/entries/{id}/versions/{version}/publish"): FAQ_EDITORS,
    ("POST", "/api/faq/editor/entries/{id}/retire"): FAQ_EDITORS,
    ("GET", "/api/faq/editor/gaps"): FAQ_EDITORS,
    ("GET", "/api/faq/editor/gaps/report"): FAQ_EDITORS,
    ("GET", "/api/faq/editor/synonyms"): FAQ_EDITORS,
    ("POST", "/api/faq/editor/synonyms"): FAQ_EDITORS,
    ("DELETE", "/api/faq/editor/synonyms/{id}"): FAQ_EDITORS,
    ("POST", "/api/faq/editor/documents/reimport"): FAQ_EDITORS,
    ("GET", "/api/operator/config"): ANY,
    ("GET", "/api/operator/office"): ANY,
    ("GET", "/api/operator/calls"): Rule(ROOM_ROLES, room_only=True),
    ("GET", "/api/operator/current"): Rule(ROOM_ROLES, room_only=True),
    ("POST", "/api/operator/calls/{call_id}/transfer"): Rule(ROOM_ROLES, room_only=True),
    ("POST", "/api/operator/calls/{call_id}/consult"): Rule(ROOM_ROLES, room_only=True),
    ("POST", "/api/operator/calls/{call_id}/consult/complete"): NOT_YOUR_CALL,
    ("POST", "/api/operator/calls/{call_id}/consult/cancel"): NOT_YOUR_CALL,
    ("POST", "/api/operator/calls/{call_id}/hold"): NOT_YOUR_CALL,
    ("POST", "/api/operator/calls/{call_id}/resume"): NOT_YOUR_CALL,
    ("GET", "/api/supervisor/wall"): Rule(SV_AD, room_only=True),
    ("GET", "/api/supervisor/alerts"): Rule(SV_AD, room_only=True),
    ("POST", "/api/supervisor/alerts/{id}/ack"): Rule(SV_AD, room_only=True),
    ("GET", "/api/calendar/emergency"): Rule(SV_AD, room_only=True),
    ("POST", "/api/calendar/emergency"): Rule(SV_AD, room_only=True),
    ("GET", "/api/calendar/overrides"): Rule(SV_AD, room_only=True),
    ("POST", "/api/calendar/overrides"): Rule(SV_AD, room_only=True),
    ("DELETE", "/api/calendar/overrides"): Rule(SV_AD, room_only=True),
    ("DELETE", "/api/calendar/overrides/{id}"): Rule(SV_AD, room_only=True),
    ("GET", "/api/reports"): Rule(SV_AD),
    ("GET", "/api/reports.csv"): Rule(SV_AD),
    ("GET", "/api/supervisor/faq-gaps"): Rule(SV_AD),
    ("GET", "/api/department/inbox"): Rule(DEPT),
    ("POST", "/api/department/callbacks/{id}/call"): Rule(DEPT, hidden_by_handler=frozenset({DB})),
    # no call was placed (no PBX here): 404 "no call" for the department, 404 "not found" for another
    ("GET", "/api/department/callbacks/{id}/call"): Rule(DEPT),
    ("GET", "/supervisor/"): Rule(SV_AD, room_only=True, page=True),
    ("GET", "/department/"): Rule(DEPT, page=True),
    ("GET", "/supervisor/assets"): Rule(SV_AD, room_only=True, page=True),
    ("GET", "/department/assets"): Rule(DEPT, page=True),
}
# Bodies valid for each records route, so that the cell tests the access decision and not the
# input validation (which the records API runs first).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/records/contacts"): {"call_id": "matrix-new-call"},
    ("POST", "/api/records/contacts/{call_id}/consent"): {"answer": "yes"},
    ("POST", "/api/records/contacts/{call_id}/callbacks"): {"name": NAME, "phone": PHONE, "question": QUESTION,
                                                            "department": "zeimu"},
    ("POST", "/api/records/callbacks/{id}/start"): {"version": 1},
    ("POST", "/api/records/callbacks/{id}/attempts"): {"version": 1, "outcome": "reached"},
    ("POST", "/api/records/callbacks/{id}/close"): {"version": 1, "summary": "案内済み"},
}
STATIC_FILE = {"/static": "/static/app.js", "/supervisor/assets": "/supervisor/assets/app.js",
               "/department/assets": "/department/assets/app.js", "/faq/editor/assets": "/faq/editor/assets/editor.js"}


def expected(rule: Rule, role: str, inside: bool, method: str) -> int | str:
    """The status class of one cell: "ok" (the request reached the handler and was not refused
    for who or where: 2xx, or a 4xx about the input such as 400/404/409/422), 401, 403 or 303."""
    if rule.room_only and not inside:
        return 403
    if rule.allowed is None:
        return "ok"
    if role == "anonymous":
        return 303 if rule.page and method == "GET" else 401  # HEAD gets the plain 401
    if role in ROOM_ROLES and not inside:
        return 403
    if role not in rule.allowed or role in rule.forbidden_by_handler:
        return 403
    if role in rule.hidden_by_handler:
        return 404
    return "ok"


def routes_of(env: Env) -> list[tuple[str, str]]:
    out = []
    for route in env.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        out.append((route.method, str(path)))
    return out


def concrete(path: str, call_id: str, callback_id: int) -> str:
    path = STATIC_FILE.get(path, path)
    return path.replace("{call_id}", call_id).replace("{id}", str(callback_id))


async def seed(env: Env) -> tuple[str, int]:
    """A call taken by op1 with consent and a callback for zeimu, handed over (Monday morning)."""
    op = await env.browser(OP)
    call_id = "1764900000.42"
    await env.app[keys.RECORDS].call_taken(call_id, op.user_id, caller_number=CALLER)  # the server, on the answer
    r = await op.client.post(f"/api/records/contacts/{call_id}/consent", json={"answer": "yes"},
                             headers=op.headers())
    assert r.status == 201, await r.text()
    r = await op.client.post(f"/api/records/contacts/{call_id}/callbacks", headers=op.headers(),
                             json={"name": NAME, "phone": PHONE, "question": QUESTION, "department": "zeimu"})
    assert r.status == 201, await r.text()
    callback_id = (await r.json())["id"]
    from datetime import datetime

    from cti.core.clock import TOKYO

    env.clock.at = datetime(2026, 12, 7, 9, 0, tzinfo=TOKYO)  # Monday: handed over to zeimu
    await env.app[keys.RECORDS].hand_over_due()
    await op.close()
    return call_id, callback_id


PERSONAL = [NAME, PHONE, QUESTION, CALLER, "090-8765-4321", "03-9876-5432"]
AUTH_DENIALS = {"not_logged_in", "forbidden_role", "outside_operator_room", "unauthenticated", "forbidden",
                "not_handed_over", "csrf_failed", "bad_origin"}


def error_code(body: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    err = data.get("error")
    if isinstance(err, dict):
        return str(err.get("code"))
    return str(err) if err is not None else None


async def test_every_route_every_role_both_networks(tmp_path: Path) -> None:
    async with running_app(tmp_path) as env:
        call_id, callback_id = await seed(env)
        routes = routes_of(env)
        missing = sorted({(m, p) for m, p in routes if m != "HEAD" and (m, p) not in TABLE})
        assert not missing, f"routes without a row in the authorisation table: {missing}"
        heads = {(m, p) for m, p in routes if m == "HEAD"}
        assert all(("GET", p) in TABLE for _, p in heads)
        stale = sorted(set(TABLE) - {(m, p) for m, p in routes})
        assert not stale, f"table rows for routes that no longer exist: {stale}"

        cells = mismatches = 0
        problems: list[str] = []
        leaks: list[str] = []
        for inside in (True, False):
            set_operator_room(env.app, True)
            browsers: dict[str, Browser] = {role: await env.browser(None if role == "anonymous" else role)
                                            for role in ROLES}
            set_operator_room(env.app, inside)
            for method, path in routes:
                rule = TABLE[("GET", path) if method == "HEAD" else (method, path)]
                for role in ROLES:
                    browser = browsers[role]
                    if (method, path) == ("POST", "/api/logout") and role != "anonymous":
                        set_operator_room(env.app, True)
                        browser = await env.browser(role)  # its own session: the logout ends it
                        set_operator_room(env.app, inside)
                    url = concrete(path, call_id, callback_id)
                    kwargs: dict[str, Any] = {"headers": browser.headers(), "allow_redirects": False}
                    if method in ("POST", "PATCH", "PUT", "DELETE"):
                        kwargs["json"] = BODIES.get((method, path), {})
                    if path == "/ws":
                        kwargs["headers"] = {}  # a plain GET, not an upgrade: checked in test_websocket_*
                    resp = await browser.client.request(method, url, **kwargs)
                    body = await resp.text()
                    want = expected(rule, role, inside, method)
                    cells += 1
                    code = error_code(body)
                    if want == "ok":
                        good = resp.status < 500 and resp.status not in (401, 403) and code not in AUTH_DENIALS
                        if path == "/api/department/callbacks/{id}/call" and resp.status == 503:
                            good = True  # no PBX in this app: "cannot place the call now"
                        if path == "/ws":
                            good = resp.status < 500
                    else:
                        good = resp.status == want
                    if not good:
                        mismatches += 1
                        problems.append(f"{method} {url} as {role} ({'in' if inside else 'out'}side): "
                                        f"want {want}, got {resp.status} {body[:120]!r}")
                    if resp.status >= 400 and method != "HEAD":
                        leaks += [f"{method} {url} as {role}: {p}" for p in PERSONAL if p in body]
                    if (method, path) == ("POST", "/api/logout") and role != "anonymous":
                        await browser.close()
            for browser in browsers.values():
                await browser.close()
        figures("authz_matrix", routes=len(routes), roles=len(ROLES), networks=2, cells_asserted=cells,
                mismatches=mismatches, personal_data_leaks=len(leaks))
        assert not problems, "\n".join(problems)
        assert not leaks, leaks
        assert cells == len(routes) * len(ROLES) * 2


async def test_websocket_origin_and_session_checks(tmp_path: Path) -> None:
    async with running_app(tmp_path) as env:
        op = await env.browser(OP)
        anon = await env.browser(None)
        checks = 0
        for browser, headers, want in (
            (op, {"Origin": "http://evil.example"}, 403),
            (op, {}, 403),  # a browser always sends Origin; none is refused for the socket
            (anon, {"Origin": ORIGIN}, 401),
        ):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await browser.client.ws_connect("/ws", headers=headers)
            assert info.value.status == want, (headers, info.value.status)
            checks += 1
        ws = await op.client.ws_connect("/ws", headers={"Origin": ORIGIN})
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello" and hello["user_id"] == "op1"
        checks += 1
        # logout ends the socket's session: it is told and closed with 4401
        r = await op.client.post("/api/logout", headers=op.headers())
        assert r.status == 200
        codes = []
        while True:
            msg = await ws.receive(timeout=5)
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                break
            codes.append(json.loads(msg.data).get("type"))
        assert ws.close_code == 4401, (ws.close_code, codes)
        checks += 1
        # an operator's socket from outside the room is refused
        op2 = await env.browser(OP)
        set_operator_room(env.app, False)
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await op2.client.ws_connect("/ws", headers={"Origin": ORIGIN})
        assert info.value.status == 403
        checks += 1
        for b in (op, anon, op2):
            await b.close()
        figures("authz_matrix", websocket_checks=checks)


async def test_csrf_login_throttle_fixation_and_logout(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, CTI_SECURITY__LOGIN_MAX_FAILURES="3")
    async with running_app(tmp_path, settings=settings) as env:
        sv = await env.browser(SV)
        checks = 0
        # CSRF: a state-changing request with the session but without / with a wrong token
        for headers in ({"Origin": ORIGIN}, {"Origin": ORIGIN, "X-CSRF-Token": "nope"}):
            r = await sv.client.post("/api/calendar/emergency", json={"reason": "停電"}, headers=headers)
            assert r.status == 403 and error_code(await r.text()) == "csrf_failed"
            checks += 1
        assert env.app[keys.CALENDARS].call_center(env.clock()).reason != "emergency"  # nothing changed
        # a cross-site login form post is refused by Origin
        anon = await env.browser(None)
        r = await anon.client.post("/api/login", json={"user_id": "sv1", "password": PASSWORD},
                                   headers={"Origin": "http://evil.example"})
        assert r.status == 403 and error_code(await r.text()) == "bad_origin"
        checks += 1
        # session fixation: a cookie planted before login is never the session after it
        planted = "planted-session-token-0123456789"
        anon.client.session.cookie_jar.update_cookies({"cti_session": planted})
        r = await anon.client.post("/api/login", json={"user_id": "tax1", "password": PASSWORD},
                                   headers={"Origin": ORIGIN})
        assert r.status == 200
        new = r.cookies["cti_session"].value
        assert new and new != planted
        checks += 1
        # logout: the old cookie is dead afterwards, even replayed by hand
        r = await anon.client.post("/api/logout", headers={"Origin": ORIGIN, "X-CSRF-Token":
                                                           (await r.json())["csrf_token"]})
        assert r.status == 200
        replay = await env.browser(None)
        replay.client.session.cookie_jar.update_cookies({"cti_session": new})
        r = await replay.client.get("/api/me")
        assert r.status == 401
        checks += 1
        # throttling: 3 failures for an account -> 429 with Retry-After, even with the right password
        for _ in range(3):
            r = await replay.client.post("/api/login", json={"user_id": "reg1", "password": "wrong password!"})
            assert r.status == 401
        r = await replay.client.post("/api/login", json={"user_id": "reg1", "password": PASSWORD})
        assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
        checks += 1
        from datetime import timedelta

        env.clock.at += timedelta(seconds=settings.security.login_window_seconds + 1)
        r = await replay.client.post("/api/login", json={"user_id": "reg1", "password": PASSWORD})
        assert r.status == 200
        checks += 1
        for b in (sv, anon, replay):
            await b.close()
        figures("authz_matrix", csrf_throttle_fixation_logout_checks=checks)
