"""Seats and presence (screenpop/desks.py) over real HTTP and websockets on a real SQLite file:
one operator per seat, and a restart of the app on the same database restores both."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from authhub_harness import ORIGIN, Clock, add_user, login, make_settings, start

Client = TestClient[Any, Any]
SEAT = "PJSIP/op101"


async def recv(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.TEXT, (msg.type, msg.data)
    value: dict[str, Any] = json.loads(msg.data)
    return value


async def fresh_page(client: Client) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    """A page that has just loaded: it pings first and so gets a snapshot of its desk."""
    ws = await client.ws_connect("/ws", headers={"Origin": ORIGIN})
    assert (await recv(ws))["type"] == "hello"
    await ws.send_str(json.dumps({"type": "ping"}))
    got = {m["type"]: m for m in [await recv(ws), await recv(ws)]}
    assert set(got) == {"snapshot", "pong"}, got
    return ws, got["snapshot"]["state"]


def rows(tmp_path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "cti.sqlite3") as conn:
        return conn.execute("SELECT user_id, interface, presence, reason FROM operator_desks").fetchall()


async def test_one_operator_per_seat_and_the_holder_is_named(tmp_path: Path) -> None:
    client = await start(tmp_path, Clock(), make_settings())
    other: Client | None = None
    try:
        for user in ("op1", "op2"):
            await add_user(client, user, "operator")
        a = await login(client, "op1")
        resp = await client.post("/api/seat", json={"interface": SEAT}, headers={"X-CSRF-Token": a["csrf_token"]})
        assert resp.status == 200
        assert client.server is not None
        other = TestClient(client.server)
        b = await login(other, "op2")
        csrf_b = {"X-CSRF-Token": b["csrf_token"]}
        resp = await other.post("/api/seat", json={"interface": SEAT}, headers=csrf_b)
        body = await resp.json()
        assert resp.status == 409 and body["holder"] == "op1" and "op1" in body["error"]["message"]
        assert body["error"]["code"] == "seat_taken" and body["error"]["field"] == "interface"
        resp = await other.post("/api/seat", json={"interface": "nonsense"}, headers=csrf_b)
        assert resp.status == 400 and (await resp.json())["error"]["field"] == "interface"
        resp = await client.delete("/api/seat", headers={"X-CSRF-Token": a["csrf_token"]})
        assert (await resp.json())["released"] == SEAT
        assert rows(tmp_path) == []
        resp = await other.post("/api/seat", json={"interface": SEAT}, headers=csrf_b)
        assert resp.status == 200
        assert (await (await other.get("/api/seats")).json())["seats"] == {SEAT: "op2"}
        assert rows(tmp_path) == [("op2", SEAT, "pause", "受付開始前")]  # calls come after 受付可
    finally:
        if other is not None:
            await other.close()
        await client.close()


async def test_seat_and_away_reason_survive_a_restart_and_the_snapshot_says_so(tmp_path: Path) -> None:
    clock = Clock()
    client = await start(tmp_path, clock, make_settings())
    try:
        await add_user(client, "op1", "operator")
        await add_user(client, "op2", "operator")
        me = await login(client, "op1")
        resp = await client.post("/api/seat", json={"interface": SEAT}, headers={"X-CSRF-Token": me["csrf_token"]})
        assert resp.status == 200
        ws, state = await fresh_page(client)
        assert state["seat"] == SEAT  # a new seat starts away: never a 受付可 by default
        assert (state["presence"]["state"], state["presence"]["reason"]) == ("pause", "受付開始前")
        await ws.send_str(json.dumps({"type": "presence_set", "state": "pause", "reason": "研修"}))
        update = await recv(ws)
        assert (update["type"], update["state"], update["reason"], update["interface"]) == (
            "presence", "pause", "研修", SEAT), update
        assert update["queue_paused"] is None  # no AMI link here: Asterisk's flag is not known
        await ws.close()
    finally:
        await client.close()  # the app stops; only the database file is left
    assert rows(tmp_path) == [("op1", SEAT, "pause", "研修")]

    client = await start(tmp_path, clock, make_settings())  # a new process on the same database
    try:
        me = await login(client, "op1")
        assert me["seat"] == SEAT
        ws, state = await fresh_page(client)
        assert state["seat"] == SEAT
        assert (state["presence"]["state"], state["presence"]["reason"]) == ("pause", "研修")
        assert (await (await client.get("/api/seats")).json())["seats"] == {SEAT: "op1"}
        await ws.close()
        # a logout frees the seat in the database too: the next start has nobody there
        await client.post("/api/logout", headers={"X-CSRF-Token": me["csrf_token"]})
    finally:
        await client.close()
    assert rows(tmp_path) == []

    client = await start(tmp_path, clock, make_settings())
    try:
        await login(client, "op1")
        ws, state = await fresh_page(client)
        assert state == {"seat": None, "presence": None}  # the page must have the seat chosen again
        await ws.close()
    finally:
        await client.close()
