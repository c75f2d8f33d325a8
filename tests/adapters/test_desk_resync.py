"""The operator's pause kept in step with Asterisk through restarts, against the AMI replay server
(a real TCP AMI peer that answers QueuePause and reports QueueMemberPause as Asterisk does):

* the page's away (with its reason) pauses the queue member, and the wall shows Asterisk's flag;
* Asterisk restarts (forgets every pause, drops the link): after the reconnect cti pauses the
  member again from its own record;
* cti restarts on the same database: at start it restores the desk and asserts the pause again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from ami_replay_server import AmiReplayServer, Session
from argon2 import PasswordHasher

from access.web import AUTH, PASSWORD_HASHER
from cti import keys
from cti.app import create_app
from cti.config import Settings
from cti.core.clock import TOKYO
from supervision.service import SUPERVISOR

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
ORIGIN = "http://127.0.0.1:8080"
SEAT = "PJSIP/op101"
OTHER_SEAT = "PJSIP/op102"
PASSWORD = "correct horse battery"

Client = TestClient[Any, Any]


class FakeAsterisk:
    """The replay server plus the one thing of Asterisk this needs: a queue member's pause flag."""

    def __init__(self, server: AmiReplayServer) -> None:
        self.server = server
        self.paused = False
        self.reason = ""
        server.on_action = self.on_action
        self.refresh()

    def refresh(self) -> None:
        self.server.queue_status = [
            {"Event": "QueueParams", "Queue": "operators", "Max": "0", "Strategy": "ringall", "Calls": "0"},
            {"Event": "QueueMember", "Queue": "operators", "Name": "op101", "Location": SEAT, "StateInterface": SEAT,
             "Membership": "static", "Status": "1", "Paused": "1" if self.paused else "0",
             "PausedReason": self.reason},
            {"Event": "QueueMember", "Queue": "operators", "Name": "op102", "Location": OTHER_SEAT,
             "StateInterface": OTHER_SEAT, "Membership": "static", "Status": "1", "Paused": "0", "PausedReason": ""},
        ]

    def on_action(self, session: Session, action: dict[str, Any]) -> None:
        if str(action.get("Action", "")).lower() != "queuepause" or action.get("Interface") != SEAT:
            return
        self.paused = action.get("Paused") == "true"
        self.reason = str(action.get("Reason", "")) if self.paused else ""
        self.refresh()
        self.server.push_event({
            "Event": "QueueMemberPause", "Privilege": "agent,all", "Queue": "operators", "MemberName": "op101",
            "Interface": SEAT, "Status": "1", "Paused": "1" if self.paused else "0", "PausedReason": self.reason,
        })

    def restart(self) -> None:
        """Asterisk's restart: static members come back unpaused."""
        self.paused, self.reason = False, ""
        self.refresh()

    def pauses_sent(self, session: Session | None = None) -> list[tuple[str, str]]:
        sessions = [session] if session is not None else self.server.sessions
        return [(str(a.get("Paused")), str(a.get("Reason", ""))) for s in sessions for a in s.actions
                if str(a.get("Action", "")).lower() == "queuepause" and a.get("Interface") == SEAT]


@pytest.fixture
async def asterisk() -> AsyncIterator[FakeAsterisk]:
    server = AmiReplayServer()
    await server.start()
    yield FakeAsterisk(server)
    await server.close()


def settings(tmp_path: Path, port: int) -> Settings:
    return Settings(**{
        "store": {"path": str(tmp_path / "cti.sqlite3")},
        "security": {"allowed_origins": [ORIGIN], "operator_networks": ["127.0.0.0/8", "::1/128"]},
        "ami": {"enabled": True, "host": "127.0.0.1", "port": port, "username": "cti", "secret": "s3cret",
                "reconnect_initial": 0.05, "reconnect_max": 0.2, "action_timeout": 2.0},
        "agi": {"enabled": False},
    })


async def start_cti(tmp_path: Path, port: int) -> Client:
    app = create_app(settings(tmp_path, port), clock=lambda: NOW)
    app[PASSWORD_HASHER] = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    client: Client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        await asyncio.sleep(0.02)


def wall_operator(client: Client) -> dict[str, Any]:
    assert client.app is not None
    [op] = [o for o in client.app[SUPERVISOR].feed.view()["operators"] if o["operator_id"] == "op1"]
    return op


async def test_pause_follows_the_record_through_asterisk_and_cti_restarts(
    tmp_path: Path, asterisk: FakeAsterisk
) -> None:
    server = asterisk.server
    client = await start_cti(tmp_path, server.port)
    try:
        assert client.app is not None
        await client.app[keys.AMI].client.wait_connected(5)
        await client.app[AUTH].accounts.add("op1", "operator", PASSWORD)
        resp = await client.post("/api/login", json={"user_id": "op1", "password": PASSWORD},
                                 headers={"Origin": ORIGIN})
        me = await resp.json()
        resp = await client.post("/api/seat", json={"interface": SEAT}, headers={"X-CSRF-Token": me["csrf_token"]})
        assert resp.status == 200
        # a new seat starts away in Asterisk too, whatever the phone had: calls come after 受付可
        assert asterisk.pauses_sent() == [("true", "受付開始前")]

        ws = await client.ws_connect("/ws", headers={"Origin": ORIGIN})
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "hello"
        await ws.send_str(json.dumps({"type": "presence_set", "state": "pause", "reason": "休憩"}))
        seen: list[dict[str, Any]] = []
        while not any(m.get("type") == "presence" and m.get("queue_paused") is True for m in seen):
            msg = await ws.receive(timeout=5)
            assert msg.type is WSMsgType.TEXT
            seen.append(json.loads(msg.data))
        assert asterisk.pauses_sent() == [("true", "受付開始前"), ("true", "休憩")]
        await eventually(lambda: wall_operator(client)["pause_reason"] == "休憩")
        assert wall_operator(client)["state"] == "paused"

        # Asterisk restarts: every pause forgotten, the link drops; cti reconnects and re-asserts.
        asterisk.restart()
        sessions_before = len(server.sessions)
        await server.drop()
        await eventually(lambda: len(server.sessions) > sessions_before and server.current.logged_in)
        await eventually(lambda: asterisk.pauses_sent(server.current) == [("true", "休憩")])
        await eventually(lambda: asterisk.paused and wall_operator(client)["state"] == "paused")
        assert wall_operator(client)["pause_reason"] == "休憩"
        await ws.close()
        # logging out frees the seat: nobody answers that phone, so its member is paused
        await client.post("/api/logout", headers={"X-CSRF-Token": me["csrf_token"]})
        await eventually(lambda: asterisk.pauses_sent(server.current)[-1:] == [("true", "席を離れました")])
        resp = await client.post("/api/login", json={"user_id": "op1", "password": PASSWORD},
                                 headers={"Origin": ORIGIN})
        me = await resp.json()
        resp = await client.post("/api/seat", json={"interface": SEAT}, headers={"X-CSRF-Token": me["csrf_token"]})
        assert resp.status == 200
        ws = await client.ws_connect("/ws", headers={"Origin": ORIGIN})
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "hello"
        await ws.send_str(json.dumps({"type": "presence_set", "state": "pause", "reason": "休憩"}))
        await eventually(lambda: asterisk.reason == "休憩")
        await ws.close()
    finally:
        await client.close()

    # cti restarts on the same database while Asterisk forgot again: the record is asserted at start.
    asterisk.restart()
    client = await start_cti(tmp_path, server.port)
    try:
        assert client.app is not None
        await eventually(lambda: asterisk.pauses_sent(server.current) == [("true", "休憩")])
        await eventually(lambda: wall_operator(client)["state"] == "paused")
    finally:
        await client.close()


async def test_moving_to_another_seat_pauses_the_one_left(tmp_path: Path, asterisk: FakeAsterisk) -> None:
    server = asterisk.server
    client = await start_cti(tmp_path, server.port)
    try:
        assert client.app is not None
        await client.app[keys.AMI].client.wait_connected(5)
        await client.app[AUTH].accounts.add("op1", "operator", PASSWORD)
        resp = await client.post("/api/login", json={"user_id": "op1", "password": PASSWORD},
                                 headers={"Origin": ORIGIN})
        csrf = {"X-CSRF-Token": (await resp.json())["csrf_token"]}
        assert (await client.post("/api/seat", json={"interface": OTHER_SEAT}, headers=csrf)).status == 200
        ws = await client.ws_connect("/ws", headers={"Origin": ORIGIN})
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "hello"
        await ws.send_str(json.dumps({"type": "presence_set", "state": "ready"}))
        await eventually(lambda: [a.get("Interface") for a in server.actions_named("QueuePause")][-1:] == [
            "PJSIP/op102"] and server.actions_named("QueuePause")[-1].get("Paused") == "false")
        assert (await client.post("/api/seat", json={"interface": SEAT}, headers=csrf)).status == 200
        # the phone left behind rings for nobody now: paused; the new seat starts away too
        await eventually(lambda: any(a.get("Interface") == "PJSIP/op102" and a.get("Reason") == "席を離れました"
                                     for a in server.actions_named("QueuePause")))
        assert asterisk.pauses_sent()[-1:] == [("true", "受付開始前")]
        await ws.close()
    finally:
        await client.close()


async def test_a_change_while_the_link_is_down_is_recorded_and_applied_when_it_is_back(
    tmp_path: Path, asterisk: FakeAsterisk
) -> None:
    server = asterisk.server
    client = await start_cti(tmp_path, server.port)
    try:
        assert client.app is not None
        link = client.app[keys.AMI].client
        await link.wait_connected(5)
        await client.app[AUTH].accounts.add("op1", "operator", PASSWORD)
        resp = await client.post("/api/login", json={"user_id": "op1", "password": PASSWORD},
                                 headers={"Origin": ORIGIN})
        csrf = {"X-CSRF-Token": (await resp.json())["csrf_token"]}
        assert (await client.post("/api/seat", json={"interface": SEAT}, headers=csrf)).status == 200
        ws = await client.ws_connect("/ws", headers={"Origin": ORIGIN})
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "hello"
        await ws.send_str(json.dumps({"type": "presence_set", "state": "ready"}))
        await eventually(lambda: not asterisk.paused and asterisk.pauses_sent()[-1:] == [("false", "")])

        server.frozen = True  # Asterisk hangs: the link drops and cannot log in again for now
        await server.drop()
        await eventually(lambda: not link.connected)
        seen: list[dict[str, Any]] = []

        async def presence_until(check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
            while True:
                msg = await ws.receive(timeout=10)
                assert msg.type is WSMsgType.TEXT
                data = json.loads(msg.data)
                seen.append(data)
                if data.get("type") == "presence" and check(data):
                    return data

        down = await presence_until(lambda p: p["link"] == "down")  # the page learns it cannot be sure
        assert (down["state"], down["queue_paused"]) == ("ready", None)
        await ws.send_str(json.dumps({"type": "presence_set", "state": "pause", "reason": "休憩"}))
        recorded = await presence_until(lambda p: p["state"] == "pause")
        assert (recorded["reason"], recorded["link"]) == ("休憩", "down")  # recorded, not yet in Asterisk
        assert not asterisk.paused

        server.frozen = False  # Asterisk answers again: the record is applied at the resync
        await eventually(lambda: link.connected, within=15)
        await eventually(lambda: asterisk.paused and asterisk.reason == "休憩")
        back = await presence_until(lambda p: p["link"] == "up" and p["queue_paused"] is True)
        assert (back["state"], back["reason"]) == ("pause", "休憩")
        await ws.close()
    finally:
        await client.close()


async def test_seats_are_the_queue_members_asterisk_reports(tmp_path: Path, asterisk: FakeAsterisk) -> None:
    """A seat outside the queue's members is refused naming the seats that exist (an operator seated on
    a wrong interface would get no ringing and no pops); a seat can be said as people say it (席102)."""
    client = await start_cti(tmp_path, asterisk.server.port)
    try:
        assert client.app is not None
        await client.app[keys.AMI].client.wait_connected(5)
        await client.app[AUTH].accounts.add("op1", "operator", PASSWORD)
        resp = await client.post("/api/login", json={"user_id": "op1", "password": PASSWORD},
                                 headers={"Origin": ORIGIN})
        csrf = {"X-CSRF-Token": (await resp.json())["csrf_token"]}
        resp = await client.post("/api/seat", json={"interface": "PJSIP/101"}, headers=csrf)
        body = await resp.json()
        assert resp.status == 400 and body["error"]["code"] == "unknown_seat"
        assert body["seats"] == {SEAT: "席101（内線101）", OTHER_SEAT: "席102（内線102）"}
        assert "席101（内線101）" in body["error"]["message"] and "PJSIP/101" in body["error"]["message"]
        resp = await client.post("/api/seat", json={"interface": "席102"}, headers=csrf)
        assert resp.status == 200 and await resp.json() == {"seat": OTHER_SEAT, "label": "席102（内線102）"}
        listed = await (await client.get("/api/seats")).json()
        assert listed["seats"] == {OTHER_SEAT: "op1"}
        assert listed["labels"] == {SEAT: "席101（内線101）", OTHER_SEAT: "席102（内線102）"}
    finally:
        await client.close()
