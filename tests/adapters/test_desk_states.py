"""The operator's states driven by calls (screenpop/desk_service.py), over the real app, websockets
and SQLite: a ring not answered sets 離席（不在着信）; an answered call that ends starts 後処理,
which ends by itself after settings.desk.wrapup_seconds or by hand; every call gets the next
受付番号 of the day."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse
from aiohttp.test_utils import TestClient, TestServer

from cti.core.clock import TOKYO
from screenpop.keys import DISPATCHER
from telephony.events import CallArrived, CallEnded, CallQueued, OperatorConnected, OperatorMissed, OperatorRinging

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from browser import PASSWORD, MovableClock, StaffUser, build_operator_app, next_of, operator_settings

TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
ORIGIN = "http://127.0.0.1:8080"
SEAT = "PJSIP/101"

Client = TestClient[Any, Any]


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(TUESDAY)


@pytest.fixture
async def page(tmp_path: Path, clock: MovableClock) -> AsyncIterator[tuple[TestServer, ClientWebSocketResponse]]:
    settings = operator_settings(tmp_path, 8080, desk={"wrapup_seconds": 30})
    async with TestServer(build_operator_app(settings, clock, [StaffUser("tanaka")])) as server:
        client: Client = TestClient(server)
        await client.start_server()
        resp = await client.post("/api/login", json={"user_id": "tanaka", "password": PASSWORD},
                                 headers={"Origin": ORIGIN})
        me = await resp.json()
        resp = await client.post("/api/seat", json={"interface": SEAT},
                                 headers={"X-CSRF-Token": me["csrf_token"], "Origin": ORIGIN})
        assert resp.status == 200
        ws = await client.ws_connect("/ws", headers={"Origin": ORIGIN})
        hello = json.loads((await ws.receive(timeout=5)).data)
        await ws.send_str(json.dumps({"type": "resume", "last_seq": 0, "epoch": hello["epoch"]}))
        try:
            yield server, ws
        finally:
            await ws.close()
            await client.close()


def ringing(call_id: str, at: datetime) -> list[Any]:
    return [
        CallArrived(call_id=call_id, at=at - timedelta(seconds=20), caller_number="0312345678", caller_name=None,
                    dialled_number="0355550000"),
        CallQueued(call_id=call_id, at=at - timedelta(seconds=15), queue="operators", position=1),
        OperatorRinging(call_id=call_id, at=at, interface=SEAT, member_name=None, queue="operators",
                        caller_number="0312345678", caller_name=None),
    ]


def ended(call_id: str, at: datetime) -> CallEnded:
    return CallEnded(call_id=call_id, at=at, reason="answered", hung_up_by="citizen", cause=16,
                     cause_text="Normal Clearing", last_state="Up", duration_s=60.0, talk_s=50.0, interface=SEAT)


async def test_missed_ring_sets_away_and_each_call_ends_in_wrapup(
    page: tuple[TestServer, ClientWebSocketResponse], clock: MovableClock
) -> None:
    server, ws = page
    dispatcher = server.app[DISPATCHER]
    await ws.send_str(json.dumps({"type": "presence_set", "state": "ready"}))
    assert (await next_of(ws, "presence"))["state"] == "ready"

    await dispatcher.on_events(ringing("c-1", clock()))
    ring = await next_of(ws, "ringing")
    assert (ring["reference"], ring["category_label"], ring["waited_seconds"]) == ("20261201-0001", "未選択", 15)
    await dispatcher.on_events(OperatorMissed(call_id="c-1", at=clock(), interface=SEAT, reason="no_answer"))
    away = await next_of(ws, "presence")
    assert (away["state"], away["reason"], away["wrapup_until"]) == ("pause", "不在着信", None)

    await ws.send_str(json.dumps({"type": "presence_set", "state": "ready"}))
    assert (await next_of(ws, "presence"))["state"] == "ready"
    await dispatcher.on_events([*ringing("c-2", clock()), OperatorConnected(
        call_id="c-2", at=clock(), interface=SEAT, member_name=None, queue="operators", hold_time=15)])
    assert (await next_of(ws, "pop"))["reference"] == "20261201-0002"
    await dispatcher.on_events(ended("c-2", clock()))
    wrapup = await next_of(ws, "presence")
    assert (wrapup["state"], wrapup["reason"]) == ("pause", "後処理")
    assert datetime.fromisoformat(wrapup["wrapup_until"]) == clock() + timedelta(seconds=30)
    clock.advance(29)
    await asyncio.sleep(1.2)  # two rounds of the wrap-up check: not yet
    clock.advance(2)
    back = await next_of(ws, "presence", within=3)
    assert (back["state"], back["reason"], back["wrapup_until"]) == ("ready", None, None)

    # 後処理 ended by hand (the page's 受付可, or after 結果を記録)
    await dispatcher.on_events([*ringing("c-3", clock()), OperatorConnected(
        call_id="c-3", at=clock(), interface=SEAT, member_name=None, queue="operators", hold_time=1)])
    await dispatcher.on_events(ended("c-3", clock()))
    assert (await next_of(ws, "presence"))["reason"] == "後処理"
    await ws.send_str(json.dumps({"type": "presence_set", "state": "ready"}))
    assert (await next_of(ws, "presence"))["state"] == "ready"


async def test_an_away_chosen_during_the_call_is_not_replaced_by_wrapup(
    page: tuple[TestServer, ClientWebSocketResponse], clock: MovableClock
) -> None:
    server, ws = page
    dispatcher = server.app[DISPATCHER]
    await dispatcher.on_events([*ringing("c-1", clock()), OperatorConnected(
        call_id="c-1", at=clock(), interface=SEAT, member_name=None, queue="operators", hold_time=1)])
    await ws.send_str(json.dumps({"type": "presence_set", "state": "pause", "reason": "休憩"}))
    assert (await next_of(ws, "presence"))["reason"] == "休憩"
    await dispatcher.on_events(ended("c-1", clock()))
    await next_of(ws, "call_update")
    with pytest.raises(TimeoutError):
        await next_of(ws, "presence", within=0.5)
