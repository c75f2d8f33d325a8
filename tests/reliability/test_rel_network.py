"""Network faults: a websocket cut and resumed loses no message; an AMI link that goes silent
(half-open, through a TCP proxy that stops forwarding) is detected within two ping intervals and
replaced, with the app (create_app) running."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from rel_app import ORIGIN, running_app, settings_for
from reliability_support import LONG, ROOT, figures
from tcp_proxy import TcpProxy

from cti import keys
from screenpop import messages as m

sys.path.insert(0, str(ROOT / "tests" / "adapters"))
from ami_replay_server import AmiReplayServer

DROPS = 20 if LONG else 5
MESSAGES = 2000 if LONG else 300


async def test_websocket_cut_and_resumed_loses_no_message(tmp_path: Path) -> None:
    """An operator's socket goes through a proxy that is cut (TCP reset) again and again while
    pops keep coming; each time the client reconnects and resumes with its last seq and epoch."""
    async with running_app(tmp_path) as env:
        proxy = TcpProxy("127.0.0.1", env.server.port or 0)
        await proxy.start()
        hub = env.app[keys.HUB]
        op = await env.browser("operator")
        cookie = next(c.value for c in op.client.session.cookie_jar if c.key == "cti_session")
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), cookies={"cti_session": cookie})
        url = f"http://127.0.0.1:{proxy.port}/ws"
        received: list[str] = []
        seqs: list[int] = []
        last_seq, epoch = 0, None
        done = asyncio.Event()
        reconnect_ms: list[float] = []

        connected = asyncio.Event()

        async def produce() -> None:
            await connected.wait()  # the user has a socket: from here on nothing may be lost
            for n in range(MESSAGES):
                hub.send_to_user("op1", m.Ringing(call_id=f"call-{n}", interface="PJSIP/op101"))
                await asyncio.sleep(0.002)
            done.set()

        async def cutter() -> None:
            await connected.wait()
            for _ in range(DROPS):
                await asyncio.sleep(MESSAGES * 0.002 / (DROPS + 1))
                proxy.cut()

        producer = asyncio.create_task(produce())
        cuts = asyncio.create_task(cutter())
        deadline = time.monotonic() + 60
        try:
            while True:
                missing = sorted({f"call-{n}" for n in range(MESSAGES)} - set(received))
                assert time.monotonic() < deadline, (len(received), missing[:10], last_seq)
                t0 = time.monotonic()
                ws = await session.ws_connect(url, headers={"Origin": ORIGIN})
                hello = json.loads((await ws.receive(timeout=5)).data)
                assert hello["type"] == "hello"
                if epoch is not None:
                    reconnect_ms.append((time.monotonic() - t0) * 1000)
                    assert hello["epoch"] == epoch  # same server run: a resume, not a new start
                epoch = hello["epoch"]
                await ws.send_str(json.dumps({"type": "resume", "last_seq": last_seq, "epoch": epoch}))
                connected.set()
                while True:
                    try:
                        msg = await ws.receive(timeout=0.5)
                    except TimeoutError:
                        if done.is_set() and (len(received) >= MESSAGES or time.monotonic() > deadline):
                            break
                        continue
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break  # cut: reconnect
                    data: dict[str, Any] = json.loads(msg.data)
                    if data["type"] == "ringing":
                        assert data["seq"] > last_seq, (data["seq"], last_seq)  # no duplicate, in order
                        received.append(data["call_id"])
                        seqs.append(data["seq"])
                        last_seq = data["seq"]
                    elif data["type"] == "snapshot":
                        raise AssertionError("a snapshot instead of a replay: messages were lost")
                await ws.close()
                if done.is_set() and len(received) >= MESSAGES:
                    break
        finally:
            await asyncio.gather(producer, cuts, return_exceptions=True)
            await session.close()
            await op.close()
            await proxy.close()
        assert received == [f"call-{n}" for n in range(MESSAGES)]
        assert seqs == list(range(seqs[0], seqs[0] + MESSAGES))
        figures("network", ws_messages=MESSAGES, ws_cuts=DROPS, ws_reconnects=len(reconnect_ms),
                ws_lost=0, ws_duplicates=0,
                ws_reconnect_ms_max=round(max(reconnect_ms), 1) if reconnect_ms else None)
        assert len(reconnect_ms) >= 1


async def test_silent_ami_link_is_detected_and_replaced(tmp_path: Path) -> None:
    """The app's AMI link goes through a proxy that stops forwarding (no FIN, no RST): the ping
    goes unanswered, the link is dropped within two ping intervals, a new one is made and resynced."""
    interval = 0.5
    rounds = 5 if LONG else 2
    replay = AmiReplayServer()
    await replay.start()
    proxy = TcpProxy("127.0.0.1", replay.port)
    await proxy.start()
    settings = settings_for(tmp_path, CTI_AMI__ENABLED="true", CTI_AMI__HOST="127.0.0.1",
                            CTI_AMI__PORT=str(proxy.port), CTI_AMI__USERNAME="cti", CTI_AMI__SECRET="s3cret",
                            CTI_AMI__PING_INTERVAL=str(interval), CTI_AMI__RECONNECT_INITIAL="0.05",
                            CTI_AMI__RECONNECT_MAX="0.4")
    detections: list[float] = []
    replaced: list[float] = []
    try:
        async with running_app(tmp_path, settings=settings, users=False) as env:
            client = env.app[keys.AMI].client
            await client.wait_connected(5)
            for _ in range(rounds):
                await asyncio.sleep(interval * 1.5)  # a ping answered on the fresh link
                reconnects = client.status().reconnects
                frozen = proxy.freeze()
                assert frozen == 1
                t0 = time.monotonic()
                while client.connected:
                    assert time.monotonic() - t0 < 3 * interval + 1, "half-open link not detected"
                    await asyncio.sleep(0.01)
                detections.append(time.monotonic() - t0)
                while not (client.connected and client.status().reconnects > reconnects):
                    assert time.monotonic() - t0 < 10, "link not replaced"
                    await asyncio.sleep(0.01)
                replaced.append(time.monotonic() - t0)
                assert client.status().last_error == "ping timeout"
            assert env.app[keys.READINESS].report()[0] is True
    finally:
        await proxy.close()
        await replay.close()
    figures("network", ami_ping_interval_s=interval, ami_freezes=rounds,
            ami_detected_s=[round(d, 2) for d in detections], ami_replaced_s=[round(r, 2) for r in replaced],
            ami_proxy_connections=proxy.connections)
    assert all(d <= 2 * interval + 0.2 for d in detections), detections
