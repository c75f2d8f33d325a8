"""The websocket hub through a real aiohttp server and real websocket clients (and one raw TCP
client that never reads)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from authhub_harness import ORIGIN, Clock, add_user, login, make_settings, session_cookie, start
from prometheus_client import REGISTRY

from cti import keys
from cti.core.principal import Principal, Role
from screenpop import messages as m
from screenpop.hub import Hub
from screenpop.websocket import sweep_sessions

Client = TestClient[Any, Any]
WS = aiohttp.ClientWebSocketResponse


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(tmp_path: Path, clock: Clock) -> AsyncIterator[Client]:
    c = await start(
        tmp_path,
        clock,
        make_settings(
            hub={"client_queue_size": 8, "replay_window": 5, "max_message_bytes": 2048},
            security={"session_idle_minutes": 30},
        ),
    )
    for user, role in (("op1", "operator"), ("op2", "operator"), ("sv1", "supervisor"), ("stall", "operator")):
        await add_user(c, user, role)
    yield c
    await c.close()


def hub_of(client: Client) -> Hub:
    assert client.app is not None
    hub = client.app[keys.HUB]
    assert isinstance(hub, Hub)
    return hub


async def as_user(client: Client, user_id: str) -> Client:
    """Another browser (own cookie jar) on the same server, logged in as `user_id`."""
    assert client.server is not None
    other: Client = TestClient(client.server)
    await login(other, user_id)
    return other


async def recv(ws: WS, wait: float = 5.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=wait)
    assert msg.type is WSMsgType.TEXT, (msg.type, msg.data, ws.close_code)
    value: dict[str, Any] = json.loads(msg.data)
    return value


async def connect(c: Client, last_seq: int | None = 0, epoch: str | None = None) -> tuple[WS, dict[str, Any]]:
    ws = await c.ws_connect("/ws", headers={"Origin": ORIGIN})
    hello = await recv(ws)
    assert hello["type"] == "hello"
    if last_seq is not None:
        await ws.send_str(json.dumps({"type": "resume", "last_seq": last_seq, "epoch": epoch or hello["epoch"]}))
    return ws, hello


async def close_code(ws: WS) -> int:
    """The code in the server's close frame (aiohttp's client may report 1006 afterwards when the
    server drops TCP right after its close frame, as aiohttp's server does for a concurrent close)."""
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type is WSMsgType.CLOSE:
            return int(msg.data)
        if msg.type in (WSMsgType.CLOSED, WSMsgType.ERROR):
            return int(ws.close_code or 0)


HISTORY_15K = m.PopHistoryItem(date="2026-12-01", category=None, category_label="未選択", outcome="あ" * 5000)
HISTORY_1K = m.PopHistoryItem(date="2026-12-01", category=None, category_label="未選択", outcome="x" * 1100)


def ringing(n: int) -> m.Ringing:
    return m.Ringing(call_id=f"call-{n}", interface="PJSIP/op101")


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def wait_until(predicate: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_hello_then_live_messages_in_sequence(client: Client) -> None:
    await login(client, "op1")
    ws, hello = await connect(client)
    assert hello["user_id"] == "op1" and hello["role"] == "operator" and hello["seq"] == 0
    hub = hub_of(client)
    for n in range(1, 4):
        hub.send_to_user("op1", ringing(n))
    got = [await recv(ws) for _ in range(3)]
    assert [g["seq"] for g in got] == [1, 2, 3]
    assert [g["call_id"] for g in got] == ["call-1", "call-2", "call-3"]
    pops_before = metric("cti_pops_sent_total")
    clients_now = metric("cti_ws_clients")
    hub.send_to_user("op1", m.Pop(call_id="call-4", caller_number="0312345678", office_open=False))
    pop = await recv(ws)
    assert pop["type"] == "pop" and pop["seq"] == 4 and pop["caller_number"] == "0312345678"
    assert metric("cti_pops_sent_total") == pops_before + 1
    await ws.close()
    await wait_until(lambda: hub.connection_count() == 0)
    assert metric("cti_ws_clients") == clients_now - 1


async def test_every_socket_of_a_user_gets_the_message_and_roles_are_addressed(client: Client) -> None:
    await login(client, "op1")
    ws_a, _ = await connect(client)
    ws_b, _ = await connect(client)
    sv = await as_user(client, "sv1")
    try:
        ws_sv, _ = await connect(sv)
        hub = hub_of(client)
        assert hub.send_to_user("op1", ringing(1)) == 2
        assert (await recv(ws_a))["call_id"] == "call-1"
        assert (await recv(ws_b))["call_id"] == "call-1"
        assert hub.send_to_role(Role.SUPERVISOR, m.Presence(user_id="op1", state="pause", reason="休憩")) == 1
        got = await recv(ws_sv)
        assert got["type"] == "presence" and got["seq"] == 1
        assert hub.send_to_user("sv1", m.CallUpdate(call_id="c9", event="hangup")) == 1
        assert hub.send_to_user("op1", m.CallUpdate(call_id="c9", event="hangup")) == 2
        assert (await recv(ws_sv))["seq"] == 2  # per-user numbering
        assert (await recv(ws_a))["seq"] == 2
        await ws_sv.close()
    finally:
        await sv.session.close()
    await ws_a.close()
    await ws_b.close()


async def test_resume_within_the_window_replays_what_was_missed(client: Client) -> None:
    await login(client, "op1")
    hub = hub_of(client)
    ws, hello = await connect(client)
    for n in range(1, 3):
        hub.send_to_user("op1", ringing(n))
    assert [(await recv(ws))["seq"] for _ in range(2)] == [1, 2]
    await ws.close()
    await wait_until(lambda: hub.connection_count() == 0)
    for n in range(3, 6):  # sent while the browser was away
        hub.send_to_user("op1", ringing(n))
    ws, _ = await connect(client, last_seq=2, epoch=hello["epoch"])
    hub.send_to_user("op1", ringing(6))  # live, while the replay is pending
    got = [await recv(ws) for _ in range(4)]
    assert [(g["type"], g["seq"]) for g in got] == [("ringing", 3), ("ringing", 4), ("ringing", 5), ("ringing", 6)]
    await ws.close()


async def test_resume_outside_the_window_gets_a_snapshot_without_duplicates(client: Client) -> None:
    await login(client, "op1")
    hub = hub_of(client)
    ws, hello = await connect(client)
    await ws.close()
    await wait_until(lambda: hub.connection_count() == 0)
    for n in range(1, 10):  # 9 missed > replay_window 5
        hub.send_to_user("op1", ringing(n))
    ws, _ = await connect(client, last_seq=1, epoch=hello["epoch"])
    snap = await recv(ws)
    assert snap["type"] == "snapshot" and snap["seq"] == 9
    assert snap["state"]["seat"] is None
    hub.send_to_user("op1", ringing(10))
    nxt = await recv(ws)
    assert nxt["seq"] == 10
    await ws.close()


async def test_a_new_server_epoch_means_a_snapshot(client: Client) -> None:
    await login(client, "op1")
    ws, _ = await connect(client, last_seq=0, epoch="another-server-run")
    assert (await recv(ws))["type"] == "snapshot"
    await ws.close()


async def test_a_foreign_or_missing_origin_is_rejected(client: Client) -> None:
    await login(client, "op1")
    for headers in ({"Origin": "https://evil.example"}, {}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await client.ws_connect("/ws", headers=headers)
        assert info.value.status == 403
    assert hub_of(client).connection_count() == 0


async def test_no_session_is_rejected(client: Client) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/ws", headers={"Origin": ORIGIN})
    assert info.value.status == 401


async def test_an_expired_session_gets_session_expired_then_4401(client: Client, clock: Clock) -> None:
    await login(client, "op1")
    ws, _ = await connect(client)
    clock.advance(minutes=31)
    await ws.send_str(json.dumps({"type": "ping"}))
    got = await recv(ws)
    assert got["type"] == "session_expired"
    assert await close_code(ws) == m.CLOSE_SESSION_EXPIRED
    # and reconnecting with the dead cookie says so the same way
    ws2 = await client.ws_connect("/ws", headers={"Origin": ORIGIN})
    assert (await recv(ws2))["type"] == "session_expired"
    assert await close_code(ws2) == m.CLOSE_SESSION_EXPIRED


async def test_the_sweep_closes_idle_sockets_and_frees_the_seat(client: Client, clock: Clock) -> None:
    me = await login(client, "op1")
    await client.post("/api/seat", json={"interface": "PJSIP/op101"}, headers={"X-CSRF-Token": me["csrf_token"]})
    ws, _ = await connect(client)
    assert client.app is not None
    assert await sweep_sessions(client.app) == 0
    clock.advance(minutes=30)
    assert await sweep_sessions(client.app) == 1
    assert (await recv(ws))["type"] == "session_expired"
    assert await close_code(ws) == m.CLOSE_SESSION_EXPIRED
    from screenpop.keys import SEATS

    assert client.app[SEATS].user_at("PJSIP/op101") is None


async def test_logout_closes_the_sessions_sockets_and_forgets_the_replay_buffer(client: Client) -> None:
    me = await login(client, "op1")
    ws, hello = await connect(client)
    hub = hub_of(client)
    hub.send_to_user("op1", m.Pop(call_id="c1", caller_number="0312345678"))
    assert (await recv(ws))["type"] == "pop"
    await client.post("/api/logout", headers={"X-CSRF-Token": me["csrf_token"]})
    assert (await recv(ws))["type"] == "session_expired"
    assert await close_code(ws) == m.CLOSE_SESSION_EXPIRED
    await login(client, "op1")
    ws, _ = await connect(client, last_seq=0, epoch=hello["epoch"])
    snap = await recv(ws)  # no replay of the caller's number after a logout
    assert snap["type"] == "snapshot" and snap["seq"] == 1
    await ws.close()


async def test_malformed_and_unknown_messages_get_an_error_and_the_socket_stays(client: Client) -> None:
    await login(client, "op1")
    ws, _ = await connect(client)
    for bad in ("{not json", json.dumps({"type": "launch_missiles"}), json.dumps({"type": "resume", "last_seq": -3})):
        await ws.send_str(bad)
        got = await recv(ws)
        assert got["type"] == "error" and got["code"] == "bad_message", got
    await ws.send_bytes(b"\x00\x01")
    assert (await recv(ws))["code"] == "bad_message"
    await ws.send_str(json.dumps({"type": "ping"}))
    assert (await recv(ws))["type"] == "pong"
    assert not ws.closed
    await ws.close()


async def test_an_oversized_frame_closes_with_1009(client: Client) -> None:
    await login(client, "op1")
    ws, _ = await connect(client)
    before = metric("cti_ws_disconnects_total", reason="too_big")
    await ws.send_str(json.dumps({"type": "faq_search", "q": "x" * 4000}))
    assert await close_code(ws) == 1009
    await wait_until(lambda: hub_of(client).connection_count() == 0)
    assert metric("cti_ws_disconnects_total", reason="too_big") == before + 1


async def test_presence_goes_to_the_user_and_the_supervisors(client: Client) -> None:
    await login(client, "op1")
    ws, _ = await connect(client)
    sv = await as_user(client, "sv1")
    try:
        ws_sv, _ = await connect(sv)
        await ws.send_str(json.dumps({"type": "presence_set", "state": "pause", "reason": "休憩"}))
        mine = await recv(ws)
        theirs = await recv(ws_sv)
        assert mine["type"] == theirs["type"] == "presence"
        assert theirs["user_id"] == "op1" and theirs["state"] == "pause" and theirs["reason"] == "休憩"
        await ws_sv.close()
    finally:
        await sv.session.close()
    await ws.close()


async def test_faq_search_uses_the_hook_or_says_unavailable(client: Client) -> None:
    await login(client, "op1")
    ws, _ = await connect(client)
    await ws.send_str(json.dumps({"type": "faq_search", "q": "ごみ"}))
    assert (await recv(ws))["code"] == "faq_unavailable"

    async def search(principal: Principal, q: str) -> list[dict[str, Any]]:
        return [{"id": "1", "question": f"{q}の出し方"}]

    hub_of(client).on_faq_search = search
    await ws.send_str(json.dumps({"type": "faq_search", "q": "ごみ"}))
    got = await recv(ws)
    assert got["type"] == "faq_results" and got["results"][0]["question"] == "ごみの出し方"
    await ws.close()


async def test_schema_is_published(client: Client) -> None:
    resp = await client.get("/api/ws/schema.json")
    body = await resp.json()
    assert resp.status == 200
    server_types = set(body["server_to_client"]["discriminator"]["mapping"])
    client_types = set(body["client_to_server"]["discriminator"]["mapping"])
    expected = {"hello", "ringing", "pop", "call_update", "presence", "snapshot", "error", "session_expired"}
    assert expected <= server_types
    assert client_types == {"resume", "ping", "presence_set", "faq_search"}
    assert body["close_codes"]["4401"]


async def test_operators_outside_the_room_cannot_open_a_socket(tmp_path: Path, clock: Clock) -> None:
    c = await start(tmp_path, clock, make_settings())
    try:
        await add_user(c, "op1", "operator")
        await login(c, "op1")
        assert c.app is not None
        from access.rules import parse_networks
        from access.web import AUTH

        c.app[AUTH].networks = parse_networks(["10.20.0.0/16"])  # the room moved away from us
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await c.ws_connect("/ws", headers={"Origin": ORIGIN})
        assert info.value.status == 403
    finally:
        await c.close()


async def test_an_overflowing_client_is_told_why_and_closed_with_1008(client: Client) -> None:
    await login(client, "op1")
    ws, _ = await connect(client)
    hub = hub_of(client)
    await asyncio.sleep(0.05)  # let the writer pass the resume gate
    before = metric("cti_ws_disconnects_total", reason="too_slow")
    for n in range(1, 30):  # no await in between: the writer cannot drain, the bound (8) overflows
        hub.send_to_user("op1", ringing(n))
    seen = []
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type is not WSMsgType.TEXT:
            break
        seen.append(json.loads(msg.data))
    assert seen[-1]["type"] == "error" and seen[-1]["code"] == "too_slow"
    assert msg.type is WSMsgType.CLOSE and msg.data == m.CLOSE_TOO_SLOW
    await wait_until(lambda: hub.connection_count() == 0)
    assert metric("cti_ws_disconnects_total", reason="too_slow") == before + 1


def _client_frame(text: str) -> bytes:
    payload = text.encode()
    assert len(payload) < 126
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def _stalled_socket(client: Client, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket client over raw TCP that completes the handshake, resumes, then never reads."""
    assert client.server is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", client.server.port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{client.server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {ORIGIN}\r\nCookie: cti_session={token}\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    writer.write(_client_frame(json.dumps({"type": "resume", "last_seq": 0})))
    await writer.drain()
    return reader, writer


async def test_a_stalled_client_never_delays_the_others_and_is_disconnected(client: Client) -> None:
    hub = hub_of(client)
    stall = await as_user(client, "stall")
    token = session_cookie(stall)
    assert token
    await stall.session.close()
    _, stalled_writer = await _stalled_socket(client, token)
    others = [await as_user(client, u) for u in ("op1", "op2")]
    sockets = [(await connect(o))[0] for o in others]
    await wait_until(lambda: hub.connection_count() == 3)
    before = metric("cti_ws_disconnects_total", reason="too_slow")
    latencies: list[float] = []
    received: dict[int, list[int]] = {0: [], 1: []}

    async def read(i: int, ws: WS) -> None:
        while True:
            got = await recv(ws, wait=10)
            latencies.append(time.monotonic() - float(got["call_id"]))
            received[i].append(got["seq"])

    readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(sockets)]
    big = m.Pop(call_id="x", history=[HISTORY_15K])  # ~15 kB per frame for the stalled one
    sent = 0
    try:
        for _ in range(5000):
            if not any(c.user_id == "stall" for c in hub.connections()):
                break
            for _ in range(4):  # below the bound of 8 per turn of the loop
                hub.send_to_user("stall", big)
            for user in ("op1", "op2"):
                hub.send_to_user(user, m.Ringing(call_id=repr(time.monotonic()), interface="PJSIP/op101"))
            sent += 1
            await asyncio.sleep(0.002)
        await wait_until(lambda: not any(c.user_id == "stall" for c in hub.connections()), within=15)
        await wait_until(lambda: len(received[0]) == sent and len(received[1]) == sent)
    finally:
        for t in readers:
            t.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        stalled_writer.close()
        for ws in sockets:
            await ws.close()
        for o in others:
            await o.session.close()
    assert metric("cti_ws_disconnects_total", reason="too_slow") == before + 1
    assert received[0] == list(range(1, sent + 1)) and received[1] == list(range(1, sent + 1))
    assert max(latencies) < 1.0, f"slowest delivery to a healthy client: {max(latencies):.3f} s"
    print(f"stalled client cut after {sent} rounds; healthy max latency {max(latencies) * 1000:.1f} ms")


async def test_heartbeat_drops_a_browser_that_stopped_answering(tmp_path: Path, clock: Clock) -> None:
    c = await start(tmp_path, clock, make_settings(hub={"heartbeat_seconds": 0.2}))
    try:
        await add_user(c, "op1", "operator")
        await login(c, "op1")
        token = session_cookie(c)
        assert token
        before = metric("cti_ws_disconnects_total", reason="heartbeat")
        _, writer = await _stalled_socket(c, token)  # never answers a PING
        hub = hub_of(c)
        await wait_until(lambda: hub.connection_count() == 1)
        await wait_until(lambda: hub.connection_count() == 0, within=5)
        assert metric("cti_ws_disconnects_total", reason="heartbeat") == before + 1
        writer.close()
    finally:
        await c.close()


async def test_shutdown_closes_sockets_with_1001_promptly(tmp_path: Path, clock: Clock) -> None:
    c = await start(tmp_path, clock, make_settings())
    await add_user(c, "op1", "operator")
    await login(c, "op1")
    ws, _ = await connect(c)
    started = time.monotonic()
    closing = asyncio.create_task(close_code(ws))
    assert c.server is not None
    await c.server.close()
    assert await closing == m.CLOSE_GOING_AWAY
    assert time.monotonic() - started < 5
    await c.close()


async def test_the_replay_buffer_is_bounded_in_bytes_too(client: Client) -> None:
    await login(client, "op1")
    hub = hub_of(client)
    hub.replay_max_bytes = 3000
    ws, hello = await connect(client)
    await ws.close()
    await wait_until(lambda: hub.connection_count() == 0)
    for n in range(1, 4):  # 3 messages of ~1.2 kB: only 2 fit in 3000 bytes
        hub.send_to_user("op1", m.Pop(call_id=f"c{n}", history=[HISTORY_1K]))
    ws, _ = await connect(client, last_seq=1, epoch=hello["epoch"])
    got = [await recv(ws) for _ in range(2)]
    assert [(g["type"], g["seq"]) for g in got] == [("pop", 2), ("pop", 3)]
    await ws.close()
    ws, _ = await connect(client, last_seq=0, epoch=hello["epoch"])
    assert (await recv(ws))["type"] == "snapshot"  # seq 1 was evicted by size
    await ws.close()
