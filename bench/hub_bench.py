"""Websocket hub: delivery latency to healthy operator screens while some browsers stall.

N logged-in clients (real aiohttp websockets over loopback, in this same process and event loop,
so their own receive work is part of the figure) each receive a `ringing` 50 times a second;
S raw TCP clients complete the handshake and never read again, and are sent 15 kB pops.
A delivery is timed from `send_to_user` to the healthy client's receive. The baseline,
measured in the same run, is the naive fan-out the hub replaced: one loop awaiting
`ws.send_str` for each socket in turn (a stalled socket then holds everyone up).
Target: healthy p99 <= 50 ms with stalled clients present.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from argon2 import PasswordHasher

from access.accounts import MIGRATIONS
from access.settings import SecuritySettings
from access.web import AUTH, PASSWORD_HASHER, auth_ctx, auth_middleware, setup_auth_routes
from bench.report import Figure
from cti import keys
from cti.app import put_settings
from cti.config import Settings
from cti.gateway import Database
from screenpop import messages as m
from screenpop.hub import Hub
from screenpop.seat_api import seats_ctx
from screenpop.settings import HubSettings
from screenpop.websocket import hub_ctx, setup_ws_routes

ORIGIN = "http://bench.local"
PASSWORD = "bench password 1"
BIG_HISTORY = m.PopHistoryItem(date="2026-12-01", category=None, category_label="未選択", outcome="あ" * 5000)
BIG = m.Pop(call_id="x", history=[BIG_HISTORY])
BIG_PER_ROUND = 10  # 150 kB per round to each stalled client
ROUND_INTERVAL = 0.02  # 50 rounds/s: with 100 clients, 5,000 deliveries/s (clients share this process)


def _app(db: Path) -> web.Application:
    app = web.Application(middlewares=[auth_middleware])
    put_settings(app, Settings(
        security=SecuritySettings.model_validate({"allowed_origins": [ORIGIN], "login_max_failures": 1000}),
        hub=HubSettings.model_validate({"client_queue_size": 64, "heartbeat_seconds": 60.0}),
    ))
    app[PASSWORD_HASHER] = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

    async def db_ctx(app: web.Application) -> AsyncIterator[None]:
        app[keys.DATABASE] = await Database.open(db, MIGRATIONS)
        yield
        await app[keys.DATABASE].close()

    app.cleanup_ctx.extend([db_ctx, auth_ctx, seats_ctx, hub_ctx])
    setup_auth_routes(app)
    setup_ws_routes(app)
    return app


async def _stalled(port: int, path: str, cookie: str) -> asyncio.StreamWriter:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n{cookie}\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    payload = b'{"type":"resume","last_seq":0}'
    mask = os.urandom(4)
    writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return writer


async def _measure(
    n: int,
    rounds: int,
    connect: Callable[[int], Awaitable[aiohttp.ClientWebSocketResponse]],
    send_round: Callable[[float], Awaitable[None]],
) -> tuple[list[float], int]:
    sockets = [await connect(i) for i in range(n)]
    latencies: list[float] = []

    async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            data = json.loads(msg.data)
            if data.get("type") == "ringing":
                latencies.append(time.perf_counter() - float(data["call_id"]))

    readers = [asyncio.create_task(read(ws)) for ws in sockets]
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    for _ in range(rounds):
        await send_round(time.perf_counter())
        await asyncio.sleep(ROUND_INTERVAL)
        if time.perf_counter() - started > 20:  # the naive baseline can stall outright
            break
    await asyncio.sleep(0.5)
    for t in readers:
        t.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    for ws in sockets:
        await ws.close()
    return latencies, n * rounds


def _p(values: list[float], q: int) -> float:
    if not values:
        return float("inf")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def run(quick: bool) -> list[Figure]:
    n, stalled, rounds = (10, 2, 80) if quick else (100, 5, 300)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        app = _app(Path(tmp) / "bench.sqlite3")
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        auth = app[AUTH]
        hub: Hub = app[keys.HUB]
        sessions: list[aiohttp.ClientSession] = []
        try:
            cookies: list[str] = []
            for i in range(n + stalled):
                await auth.accounts.add(f"u{i}", "operator", PASSWORD)
                s = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
                sessions.append(s)
                async with s.post(f"{base}/api/login", json={"user_id": f"u{i}", "password": PASSWORD}) as r:
                    assert r.status == 200, await r.text()
                    cookies.append(f"Cookie: cti_session={r.cookies['cti_session'].value}\r\n")
            stalled_writers = [await _stalled(port, "/ws", cookies[n + j]) for j in range(stalled)]

            async def connect(i: int) -> aiohttp.ClientWebSocketResponse:
                ws = await sessions[i].ws_connect(f"{base}/ws", headers={"Origin": ORIGIN})
                await ws.receive()  # hello
                await ws.send_str('{"type":"resume","last_seq":0}')
                return ws

            async def hub_round(now: float) -> None:
                for j in range(stalled):
                    for _ in range(BIG_PER_ROUND):
                        hub.send_to_user(f"u{n + j}", BIG)
                msg = m.Ringing(call_id=repr(now), interface="PJSIP/op101")
                for i in range(n):
                    hub.send_to_user(f"u{i}", msg)

            lat, expected = await _measure(n, rounds, connect, hub_round)
            cut = stalled - sum(1 for c in hub.connections() if int(c.user_id[1:]) >= n)
            figures += [
                Figure("hub", f"healthy p50, {n} clients + {stalled} stalled", _p(lat, 50) * 1000, "ms"),
                Figure("hub", f"healthy p99, {n} clients + {stalled} stalled", _p(lat, 99) * 1000, "ms", target=50),
                Figure("hub", "healthy deliveries", len(lat), "msgs", target=expected, higher_is_better=True),
                Figure("hub", "stalled clients disconnected", cut, "clients", target=stalled, higher_is_better=True),
            ]
            for w in stalled_writers:
                w.close()
        finally:
            for s in sessions:
                await s.close()
            await runner.cleanup()

    figures += await _naive_baseline(n, stalled, rounds)
    return figures


async def _naive_baseline(n: int, stalled: int, rounds: int) -> list[Figure]:
    """The fan-out the hub replaced: await each socket's send in turn."""
    clients: list[web.WebSocketResponse] = []
    stalled_ws: list[web.WebSocketResponse] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        (stalled_ws if request.query.get("stall") else clients).append(ws)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    session = aiohttp.ClientSession()
    big = BIG.model_dump_json()
    writers = [await _stalled(port, "/ws?stall=1", "") for _ in range(stalled)]
    try:

        async def connect(i: int) -> aiohttp.ClientWebSocketResponse:
            return await session.ws_connect(f"http://127.0.0.1:{port}/ws")

        async def naive_round(now: float) -> None:
            text = m.Ringing(call_id=repr(now), interface="PJSIP/op101").model_dump_json()
            for ws in stalled_ws:
                for _ in range(BIG_PER_ROUND):
                    await ws.send_str(big)
            for ws in clients:
                await ws.send_str(text)

        stuck: list[bool] = []

        async def bounded(now: float) -> None:
            if stuck:  # a stalled socket has blocked the loop: nobody gets anything any more
                return
            try:
                async with asyncio.timeout(5):
                    await naive_round(now)
            except TimeoutError:
                stuck.append(True)

        lat, expected = await _measure(n, rounds, connect, bounded)
    finally:
        for w in writers:
            w.close()
        await session.close()
        await runner.cleanup()
    note = "stalled: blocked all sends" if stuck else "awaits each send"
    return [
        Figure("hub", "baseline naive fan-out: healthy p99", _p(lat, 99) * 1000, "ms", note=note),
        Figure("hub", "baseline naive fan-out: healthy deliveries", len(lat), "msgs", note=f"of {expected}"),
    ]


if __name__ == "__main__":
    import sys

    from bench.report import table

    print(table(asyncio.run(run("--quick" in sys.argv))))
