"""Two cti apps (the real create_app, in-process) on one PostgreSQL, the operator's browser moving from
node A to node B as after a failover: B finds the seat and presence taken through A (the snapshot
reads the desk from the store) and the call up at that seat (adopted, with A's 受付番号); and A, whose
copy of the desk is now stale, does not override what the operator chose through B."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient, TestServer
from pg_support import PgCluster

from cti import keys
from cti.core.clock import TOKYO
from screenpop.keys import DISPATCHER
from telephony.events import CallArrived, CallEnded, CallQueued, OperatorConnected

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from browser import PASSWORD, MovableClock, StaffUser, build_operator_app, next_of, operator_settings

TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
ORIGIN = "http://127.0.0.1:8080"
SEAT = "PJSIP/101"
KEY = "0123456789abcdef" * 4

Client = TestClient[Any, Any]


def answered(call_id: str, at: datetime) -> list[Any]:
    return [CallArrived(call_id=call_id, at=at, caller_number="0312345678", caller_name=None,
                        dialled_number="0355550000"),
            CallQueued(call_id=call_id, at=at, queue="operators", position=1),
            OperatorConnected(call_id=call_id, at=at, interface=SEAT, member_name=None, queue="operators",
                              hold_time=4)]


def ended(call_id: str, at: datetime) -> CallEnded:
    return CallEnded(call_id=call_id, at=at, reason="answered", hung_up_by="citizen", cause=16,
                     cause_text="Normal Clearing", last_state="Up", duration_s=60.0, talk_s=50.0, interface=SEAT)


@pytest.fixture
async def two_nodes(tmp_path: Path, pg_cluster: PgCluster) -> AsyncIterator[tuple[TestServer, TestServer]]:
    url = pg_cluster.new_url()
    clock = MovableClock(TUESDAY)
    servers = []
    for name, users in (("a", [StaffUser("tanaka")]), ("b", [])):  # the account is in the shared store
        (tmp_path / name).mkdir()
        settings = operator_settings(tmp_path / name, 8080, store={"url": url}, security={"session_key": KEY},
                                     desk={"wrapup_seconds": 30})
        server = TestServer(build_operator_app(settings, clock, users))
        await server.start_server()
        servers.append(server)
    try:
        yield servers[0], servers[1]
    finally:
        for server in servers:
            await server.close()


async def page_on(client: Client) -> tuple[ClientWebSocketResponse, dict[str, Any]]:
    """The operator page's socket on this node: a fresh page's first message gets a snapshot."""
    ws = await client.ws_connect("/ws", headers={"Origin": ORIGIN})
    assert (await next_of(ws, "hello"))["type"] == "hello"
    await ws.send_str(json.dumps({"type": "ping"}))
    return ws, (await next_of(ws, "snapshot"))["state"]


async def test_the_browser_moved_to_the_other_node_finds_seat_presence_and_call_and_the_old_node_keeps_off(
    two_nodes: tuple[TestServer, TestServer],
) -> None:
    server_a, server_b = two_nodes
    a: Client = TestClient(server_a)
    b: Client = TestClient(server_b)
    try:
        resp = await a.post("/api/login", json={"user_id": "tanaka", "password": PASSWORD}, headers={"Origin": ORIGIN})
        me = await resp.json()
        headers = {"X-CSRF-Token": me["csrf_token"], "Origin": ORIGIN}
        assert (await a.post("/api/seat", json={"interface": SEAT}, headers=headers)).status == 200
        ws_a, _ = await page_on(a)
        await ws_a.send_str(json.dumps({"type": "presence_set", "state": "ready"}))
        assert (await next_of(ws_a, "presence"))["state"] == "ready"
        # a call answered at the seat: both nodes follow it (AMI); only A knew the seat
        at = server_a.app[keys.CLOCK]()
        for server in (server_a, server_b):
            await server.app[DISPATCHER].on_events(answered("c-1", at))
        reference = (await next_of(ws_a, "pop"))["reference"]
        await ws_a.close()

        # the browser comes to B (A died): the session is valid there, B finds the seat and the call
        b.session.cookie_jar.update_cookies(a.session.cookie_jar.filter_cookies(a.make_url("/")))
        ws_b, state = await page_on(b)
        assert state["seat"] == SEAT and state["presence"]["state"] == "ready"
        current = (await (await b.get("/api/operator/current")).json())["pop"]
        assert (current["call_id"], current["reference"], current["call_state"]) == ("c-1", reference, "talking")

        # through B the operator goes on a break; then the call ends: both nodes see it
        await ws_b.send_str(json.dumps({"type": "presence_set", "state": "pause", "reason": "休憩"}))
        assert (await next_of(ws_b, "presence"))["reason"] == "休憩"
        for server in (server_a, server_b):
            await server.app[DISPATCHER].on_events(ended("c-1", at))
        assert (await next_of(ws_b, "call_update"))["event"] == "hangup"  # B followed the adopted call
        db = server_a.app[keys.DATABASE]
        row = await db.read(lambda c: c.execute(
            "SELECT presence, reason FROM operator_desks WHERE user_id = 'tanaka'").fetchone())
        assert tuple(row) == ("pause", "休憩")  # not 後処理: A decided on the stored desk, not its stale copy
        await ws_b.close()
    finally:
        await a.close()
        await b.close()
