"""The operator screen's server side over real HTTP and websockets (aiohttp test client, temp
SQLite, the real FAQ): the page and its headers, the operator APIs, and pops dispatched through the
hub to the answering operator only, with caller history and open callbacks from records."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from cti import keys
from cti.core.clock import TOKYO
from records.keys import CALL_FEED
from screenpop.dispatcher import DISPATCHER
from telephony.events import CallArrived, CallEnded, CallQueued, CallRouted, OperatorConnected, OperatorRinging

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from browser import FAQ_CREDIT, PASSWORD, MovableClock, StaffUser, build_operator_app, operator_settings

SATURDAY = datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO)  # ward office closed
TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)  # ward office open
PORT = 8080  # only names the allowed origin; the test server picks its own port
ORIGIN = f"http://127.0.0.1:{PORT}"
SEAT1, SEAT2 = "PJSIP/101", "PJSIP/102"
CALLER = "0312345678"
USERS = [StaffUser("tanaka"), StaffUser("suzuki")]

Client = TestClient[Any, Any]


class Operator:
    def __init__(self, client: Client, me: dict[str, Any]) -> None:
        self.client = client
        self.me = me

    def headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.me["csrf_token"], "Origin": ORIGIN}

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        resp = await self.client.post(path, json=body, headers=self.headers())
        return resp.status, await resp.json()


@pytest.fixture
async def clock() -> MovableClock:
    return MovableClock(SATURDAY)


@pytest.fixture
async def server(tmp_path: Path, clock: MovableClock) -> AsyncIterator[TestServer]:
    app = build_operator_app(operator_settings(tmp_path, PORT), clock, USERS)
    async with TestServer(app) as srv:
        yield srv


async def operator(server: TestServer, user_id: str, seat: str | None) -> Operator:
    client: Client = TestClient(server)
    await client.start_server()
    resp = await client.post("/api/login", json={"user_id": user_id, "password": PASSWORD}, headers={"Origin": ORIGIN})
    assert resp.status == 200
    op = Operator(client, await resp.json())
    if seat:
        status, body = await op.post("/api/seat", {"interface": seat})
        assert status == 200, body
    return op


async def connect(op: Operator) -> ClientWebSocketResponse:
    ws = await op.client.ws_connect("/ws", headers={"Origin": ORIGIN})
    hello = json.loads((await ws.receive(timeout=5)).data)
    assert hello["type"] == "hello"
    await ws.send_str(json.dumps({"type": "resume", "last_seq": 0, "epoch": hello["epoch"]}))
    return ws


async def sequenced(ws: ClientWebSocketResponse, wait: float = 0.3) -> list[dict[str, Any]]:
    """Every ringing/pop/call_update that arrives within `wait` seconds."""
    out: list[dict[str, Any]] = []
    while True:
        try:
            msg = await ws.receive(timeout=wait)
        except TimeoutError:
            return out
        if msg.type is not WSMsgType.TEXT:
            return out
        data = json.loads(msg.data)
        if data["type"] in ("ringing", "pop", "call_update"):
            out.append(data)


def call(call_id: str, at: datetime, seat: str) -> list[Any]:
    return [
        CallArrived(call_id=call_id, at=at, caller_number=CALLER, caller_name=None, dialled_number="0355550000"),
        CallRouted(call_id=call_id, at=at, route="open", reason=None, category="kosodate"),
        CallQueued(call_id=call_id, at=at, queue="operators", position=1),
        OperatorRinging(call_id=call_id, at=at, interface=seat, member_name=None, queue="operators",
                        caller_number=CALLER, caller_name=None),
        OperatorConnected(call_id=call_id, at=at, interface=seat, member_name=None, queue="operators", hold_time=7),
    ]


def ended(call_id: str, at: datetime, seat: str) -> CallEnded:
    return CallEnded(call_id=call_id, at=at, reason="answered", hung_up_by="citizen", cause=16,
                     cause_text="Normal Clearing", last_state="Up", duration_s=60.0, talk_s=50.0, interface=seat)


async def test_the_page_and_its_assets_are_served_with_strict_headers(server: TestServer) -> None:
    async with TestClient(server) as client:
        for path in ("/", "/operator/"):
            resp = await client.get(path)
            text = await resp.text()
            assert resp.status == 200 and resp.content_type == "text/html"
            assert '<html lang="ja">' in text and "/static/app.js" in text
            assert resp.headers["Cache-Control"] == "no-store"
            assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
            assert resp.headers["X-Frame-Options"] == "DENY"
        for asset, kind in (("app.js", "javascript"), ("ws.js", "javascript"), ("api.js", "javascript"),
                            ("style.css", "css")):
            resp = await client.get(f"/static/{asset}")
            assert resp.status == 200 and kind in resp.content_type
        assert (await client.get("/static/../wiring_web.py")).status in (403, 404)
        assert (await client.get("/static/nope.js")).status == 404


async def test_operator_apis_need_a_login_and_answer_in_japanese(server: TestServer, clock: MovableClock) -> None:
    anonymous: Client = TestClient(server)
    await anonymous.start_server()
    try:
        for path in ("/api/operator/config", "/api/operator/office", "/api/operator/calls"):
            assert (await anonymous.get(path)).status == 401
    finally:
        await anonymous.session.close()  # (closing the TestClient would stop the shared server)
    op = await operator(server, "tanaka", SEAT1)
    try:
        config = await (await op.client.get("/api/operator/config")).json()
        settings = server.app[keys.SETTINGS]
        assert config["consent_script"]["text"] == settings.records.consent_script.text
        assert config["faq_credit"] == FAQ_CREDIT
        assert {"code": "kosodate", "name": "子育て支援課", "transfer": "205"} in config["departments"]
        assert SEAT1 in config["seats"]  # seats taken are known seats
        office = await (await op.client.get("/api/operator/office")).json()
        assert office["open"] is False and office["reason"] == "weekend" and office["reason_text"]
        assert office["next_open"].startswith("2026-11-30T08:30")
    finally:
        await op.client.session.close()
    clock.at = TUESDAY  # (three days later: log in again, the old session is idle-expired)
    op = await operator(server, "tanaka", None)
    try:
        office = await (await op.client.get("/api/operator/office")).json()
        assert office["open"] is True and office["reason"] is None
    finally:
        await op.client.session.close()


async def test_pop_reaches_the_answering_operator_only_with_history_and_open_callbacks(
    server: TestServer, clock: MovableClock
) -> None:
    app = server.app
    op1 = await operator(server, "tanaka", SEAT1)
    op2 = await operator(server, "suzuki", SEAT2)
    try:
        # an earlier call from the same number, with consent and a callback request (office closed)
        clock.at = SATURDAY.replace(hour=9)
        await app[CALL_FEED].on_events(call("old-1", clock(), SEAT1))  # the server creates the contact on answer
        assert (await op1.post("/api/records/contacts/old-1/consent", {"answer": "yes"}))[0] == 201
        status, cb = await op1.post("/api/records/contacts/old-1/callbacks", {
            "name": "区民 花子", "phone": "03-1234-5678", "question": "保育園の申込み", "department": "kosodate"})
        assert status == 201, cb
        resp = await op1.client.patch("/api/records/contacts/old-1", json={"outcome": "callback_requested"},
                                      headers=op1.headers())
        assert resp.status == 200
        await app[CALL_FEED].on_events([ended("old-1", clock(), SEAT1)])
        clock.at = SATURDAY

        ws1, ws2 = await connect(op1), await connect(op2)
        assert await sequenced(ws1) == [] and await sequenced(ws2) == []  # synced, nothing pending
        dispatcher = app[DISPATCHER]
        await dispatcher.on_events(call("new-1", clock(), SEAT1))
        got1 = await sequenced(ws1)
        assert [m["type"] for m in got1] == ["ringing", "pop"]
        ringing, pop = got1
        assert ringing == {"type": "ringing", "seq": ringing["seq"], "call_id": "new-1", "interface": SEAT1,
                           "reference": "20261128-0001", "category": "kosodate", "category_label": "子育て",
                           "waited_seconds": 0}
        assert pop["reference"] == "20261128-0001"  # the same 受付番号 on the ringing notice and the pop
        # what the dispatcher sent is exactly what the published schema describes (no field more)
        schema = await (await op1.client.get("/api/ws/schema.json")).json()
        validator = jsonschema_rs.validator_for(schema["server_to_client"])
        for message in got1:
            errors = [e.message for e in validator.iter_errors(message)]
            assert errors == [], (message["type"], errors)
        assert not validator.is_valid({**pop, "unpublished": 1})
        assert set(pop) == set(schema["server_to_client"]["$defs"]["Pop"]["properties"])
        assert pop["call_id"] == "new-1" and pop["caller_number"] == CALLER and pop["category"] == "kosodate"
        assert pop["waited_seconds"] == 7 and pop["office_open"] is False
        assert [(h["date"], h["outcome"]) for h in pop["history"]] == [("2026-11-28", "callback_requested")]
        assert [(c["id"], c["department"], c["department_name"], c["status"]) for c in pop["open_callbacks"]] == [
            (cb["id"], "kosodate", "子育て支援課", "received")]
        assert 1 <= len(pop["faq_suggestions"]) <= app[keys.SETTINGS].faq.suggestions
        assert await sequenced(ws2) == []  # the other operator: nothing at all

        current = (await (await op1.client.get("/api/operator/current")).json())["pop"]
        assert (current["call_id"], current["call_state"], current["caller_number"]) == ("new-1", "talking", CALLER)
        assert (await (await op2.client.get("/api/operator/current")).json())["pop"] is None

        today = await (await op1.client.get("/api/operator/calls")).json()
        assert [(r["call_id"], r["category_label"], r["state"]) for r in today["items"]] == [
            ("new-1", "子育て", "通話中")]
        assert CALLER not in json.dumps(today)
        assert (await (await op2.client.get("/api/operator/calls")).json())["items"] == []

        # only the operator who answered may transfer, and only while the office is open
        status, body = await op2.post("/api/operator/calls/new-1/transfer", {"department": "kosodate"})
        assert status == 403 and body["error"]["code"] == "not_your_call"
        status, body = await op1.post("/api/operator/calls/new-1/transfer", {"department": "kosodate"})
        assert status == 409 and body["error"]["code"] == "office_closed" and "閉庁" in body["error"]["message"]
        status, body = await op1.post("/api/operator/calls/new-1/transfer", {"department": "nowhere"})
        assert status == 422 and body["error"]["field"] == "department"

        await dispatcher.on_events([ended("new-1", clock(), SEAT1)])
        [update] = await sequenced(ws1)
        assert update["type"] == "call_update" and update["event"] == "hangup"
        assert update["detail"]["reason"] == "answered"
        current = (await (await op1.client.get("/api/operator/current")).json())["pop"]
        assert (current["call_id"], current["call_state"]) == ("new-1", "ended")
        assert await sequenced(ws2) == []
        await asyncio.gather(ws1.close(), ws2.close())
    finally:
        await op1.client.session.close()
        await op2.client.session.close()


async def test_faq_search_over_the_websocket(server: TestServer) -> None:
    op = await operator(server, "tanaka", SEAT1)
    try:
        ws = await connect(op)
        await ws.send_str(json.dumps({"type": "faq_search", "q": "保育"}))
        while True:
            data = json.loads((await ws.receive(timeout=5)).data)
            if data["type"] == "faq_results":
                break
        assert data["q"] == "保育" and 1 <= len(data["results"]) <= 10
        assert all({"id", "question", "snippet", "question_highlights"} <= set(r) for r in data["results"])
        assert any("保育" in r["question"] for r in data["results"])
        await ws.close()
    finally:
        await op.client.session.close()
