"""The FastAGI server over real TCP: what Asterisk sends, and what a hostile or broken peer sends."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp import web

from cti import keys
from cti.app import put_settings
from cti.calendar.rules import Calendars
from cti.config import CalendarSettings, Settings
from cti.core.clock import fixed_clock
from cti.core.readiness import Readiness
from telephony.agi.plugin import AGI_SERVER, agi_ctx
from telephony.agi.protocol import AgiRequest
from telephony.agi.server import FastAgiServer, make_route_script
from telephony.settings import AgiSettings

CAPTURE = Path(__file__).resolve().parents[1] / "fixtures" / "agi" / "fastagi-request-example.txt"
NIGHT = datetime.fromisoformat("2026-12-28T23:30:00+09:00")
DAY = datetime.fromisoformat("2026-12-28T10:00:00+09:00")


def request_bytes(script: str = "route", uniqueid: str = "1795822517.1") -> bytes:
    headers = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: agi://127.0.0.1:4573/{script}",
        "agi_channel: Local/0301110000@from-pstn-00000000;2",
        "agi_language: ja",
        f"agi_uniqueid: {uniqueid}",
        "agi_context: from-pstn",
        "agi_extension: 0301110000",
        "agi_accountcode: ",
        "agi_arg_1: 0301110000",
    ]
    return ("\n".join(headers) + "\n\n").encode()


def capture_bytes() -> bytes:
    """The byte-exact Asterisk -> server block of the real capture, blank line included."""
    text = CAPTURE.read_text(encoding="utf-8")
    block = text.split("# ---- asterisk->server at +0.000 ms ----\n", 1)[1]
    return block.split("\n\n", 1)[0].encode() + b"\n\n"


class Decisions:
    def __init__(self) -> None:
        self.seen: list[tuple[str, float]] = []

    def __call__(self, script: str, seconds: float) -> None:
        self.seen.append((script, seconds))


@pytest.fixture
def decisions() -> Decisions:
    return Decisions()


@pytest.fixture
async def night_server(decisions: Decisions) -> AsyncIterator[FastAgiServer]:
    cal = Calendars.from_settings(CalendarSettings())
    server = FastAgiServer(
        {"route": make_route_script(cal, fixed_clock(NIGHT))},
        port=0,
        request_timeout=0.5,
        on_decision=decisions,
    )
    async with server:
        yield server


async def play_asterisk(port: int, payload: bytes, reply: bytes = b"200 result=1\n",
                        commands: list[str] | None = None) -> tuple[dict[str, str], bytes]:
    """Send a request like Asterisk, answer each command with `reply`; return variables set and
    whatever else came back before the server closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        variables: dict[str, str] = {}
        async with asyncio.timeout(5):
            while True:
                line = await reader.readline()
                if not line:
                    return variables, b""
                text = line.decode()
                if commands is not None:
                    commands.append(text)
                if text.startswith("EXEC MSet "):  # all variables in one command
                    pairs = text.removeprefix("EXEC MSet ").rstrip("\n").strip('"')
                    variables.update(pair.split("=", 1) for pair in pairs.split(","))  # type: ignore[arg-type]
                elif text.startswith("SET VARIABLE "):
                    name, value = text.removeprefix("SET VARIABLE ").rstrip("\n").split(" ", 1)
                    variables[name] = value.strip('"')
                else:
                    return variables, line + await reader.read()
                writer.write(reply)
                await writer.drain()
    finally:
        writer.close()


def events(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "telephony.agi"]


async def test_route_request_sets_all_variables(night_server: FastAgiServer, decisions: Decisions) -> None:
    variables, rest = await play_asterisk(night_server.port, request_bytes())
    assert variables == {
        "CTI_ROUTE": "closed",
        "CTI_CLOSED_REASON": "night",
        "CTI_OFFICE": "closed",
        "CTI_NEXT_OPEN": "2026-12-29T08:00:00+09:00",
        "CTI_NEXT_OPEN_EPOCH": str(int(datetime.fromisoformat("2026-12-29T08:00:00+09:00").timestamp())),
    }
    assert rest == b""  # the server hangs up after the last acknowledgement
    assert [script for script, _ in decisions.seen] == ["route"]
    assert 0 <= decisions.seen[0][1] < 1.0
    assert night_server.requests_answered == 1


async def test_real_capture_bytes(night_server: FastAgiServer) -> None:
    variables, _ = await play_asterisk(night_server.port, capture_bytes())
    assert variables["CTI_ROUTE"] == "closed"


async def test_open_hours_decision_uses_the_injected_clock() -> None:
    cal = Calendars.from_settings(CalendarSettings())
    async with FastAgiServer({"route": make_route_script(cal, fixed_clock(DAY))}, port=0) as server:
        variables, _ = await play_asterisk(server.port, request_bytes())
        assert variables == {"CTI_ROUTE": "open", "CTI_OFFICE": "open"}
        cal.set_emergency("停電")  # runtime emergency close applies to the very next call
        variables, _ = await play_asterisk(server.port, request_bytes())
        assert (variables["CTI_ROUTE"], variables["CTI_CLOSED_REASON"]) == ("closed", "emergency")


async def test_connect_and_close_does_not_spin(night_server: FastAgiServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="telephony.agi")
    for _ in range(50):  # what a TCP health check does
        _, writer = await asyncio.open_connection("127.0.0.1", night_server.port)
        writer.close()
        await writer.wait_closed()
    await asyncio.sleep(0.05)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    await asyncio.sleep(0.5)
    cpu = time.process_time() - cpu_before
    wall = time.perf_counter() - wall_before
    assert cpu < 0.25 * wall, f"the process burned {cpu:.2f}s CPU in {wall:.2f}s while idle"
    assert night_server.active_sessions == 0
    started = time.perf_counter()
    variables, _ = await play_asterisk(night_server.port, request_bytes())
    assert variables["CTI_ROUTE"] == "closed"
    assert time.perf_counter() - started < 0.5
    assert events(caplog).count("fastagi_closed_without_request") == 50


async def test_truncated_headers_are_closed_and_logged(
    night_server: FastAgiServer, caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", night_server.port)
    writer.write(request_bytes()[:120])  # headers cut mid-line, then the peer goes away
    await writer.drain()
    writer.write_eof()
    async with asyncio.timeout(2):
        assert await reader.read() == b""  # nothing was set
    writer.close()
    await asyncio.sleep(0.05)
    assert "fastagi_request_truncated" in events(caplog)
    assert night_server.requests_answered == 0


async def test_silent_client_is_timed_out(night_server: FastAgiServer, caplog: pytest.LogCaptureFixture) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", night_server.port)
    started = time.perf_counter()
    async with asyncio.timeout(3):
        assert await reader.read() == b""
    waited = time.perf_counter() - started
    writer.close()
    assert 0.4 <= waited < 2.0  # request_timeout is 0.5 s
    await asyncio.sleep(0.05)
    assert "fastagi_request_timeout" in events(caplog)
    # A client that trickles bytes without ever finishing the block is cut at the same deadline.
    reader, writer = await asyncio.open_connection("127.0.0.1", night_server.port)
    started = time.perf_counter()
    async with asyncio.timeout(3):
        for _ in range(20):
            writer.write(b"agi_x: 1\n")
            await asyncio.sleep(0.05)
            if reader.at_eof():
                break
        assert await reader.read() == b""
    assert time.perf_counter() - started < 1.5
    writer.close()


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\n\n",
        b"agi_request " + b"A" * 10_000 + b"\n\n",
        b"\n",
        b"agi_network: yes\n" * 200 + b"\n",
    ],
    ids=["http", "tls-hello", "overlong-line", "empty-block", "too-many-lines"],
)
async def test_garbage_is_closed_without_answer(
    night_server: FastAgiServer, caplog: pytest.LogCaptureFixture, garbage: bytes
) -> None:
    variables, rest = await play_asterisk(night_server.port, garbage)
    assert variables == {}
    assert rest == b""
    await asyncio.sleep(0.05)
    assert "fastagi_bad_request" in events(caplog)
    variables, _ = await play_asterisk(night_server.port, request_bytes())  # still serving
    assert variables["CTI_ROUTE"] == "closed"


async def test_unknown_script_sets_nothing_and_says_so(
    night_server: FastAgiServer, caplog: pytest.LogCaptureFixture
) -> None:
    variables, _ = await play_asterisk(night_server.port, request_bytes(script="rout"))
    assert variables == {}
    await asyncio.sleep(0.05)
    record = next(r for r in caplog.records if r.getMessage() == "fastagi_unknown_script")
    assert record.levelno == logging.ERROR
    assert record.cti_fields["script"] == "rout"  # type: ignore[attr-defined]
    assert record.cti_fields["known"] == ["route"]  # type: ignore[attr-defined]


async def test_rejected_command_and_hangup_stop_the_session(
    night_server: FastAgiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="telephony.agi")
    usage = b"520-Invalid command syntax.  Proper usage follows:\nUsage: SET VARIABLE\n520 End of proper usage.\n"
    for reply in (b"510 Invalid or unknown command\n", b"HANGUP\n", usage):
        sent: list[str] = []
        await play_asterisk(night_server.port, request_bytes(), reply=reply, commands=sent)
        assert len(sent) == 1  # nothing more after the first rejection
    await asyncio.sleep(0.05)
    seen = events(caplog)
    assert seen.count("fastagi_command_rejected") == 2
    assert "fastagi_caller_hung_up" in seen
    assert night_server.requests_answered == 0


async def test_failing_script_is_logged_and_the_server_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(request: AgiRequest) -> dict[str, str]:
        raise RuntimeError("boom")

    cal = Calendars.from_settings(CalendarSettings())
    scripts = {"broken": broken, "route": make_route_script(cal, fixed_clock(DAY))}
    async with FastAgiServer(scripts, port=0) as server:
        variables, _ = await play_asterisk(server.port, request_bytes(script="broken"))
        assert variables == {}
        variables, _ = await play_asterisk(server.port, request_bytes())
        assert variables["CTI_ROUTE"] == "open"
    assert "fastagi_script_failed" in events(caplog)


async def test_many_concurrent_sessions(night_server: FastAgiServer, decisions: Decisions) -> None:
    count = 300
    results = await asyncio.gather(
        *(play_asterisk(night_server.port, request_bytes(uniqueid=f"1.{i}")) for i in range(count))
    )
    assert all(variables["CTI_ROUTE"] == "closed" for variables, _ in results)
    assert night_server.requests_answered == count
    assert len(decisions.seen) == count


async def test_close_cancels_and_awaits_open_sessions() -> None:
    cal = Calendars.from_settings(CalendarSettings())
    server = FastAgiServer({"route": make_route_script(cal, fixed_clock(DAY))}, port=0, request_timeout=30)
    await server.start()
    clients = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(5)]
    await asyncio.sleep(0.05)
    assert server.active_sessions == 5
    started = time.perf_counter()
    await server.close()
    assert time.perf_counter() - started < 2.0
    assert server.active_sessions == 0
    assert not server.listening
    for reader, writer in clients:
        async with asyncio.timeout(2):
            assert await reader.read() == b""
        writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="request_timeout"):
        FastAgiServer({}, request_timeout=0)
    with pytest.raises(ValueError, match="backlog"):
        FastAgiServer({}, backlog=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_agi_ctx_serves_while_the_app_runs() -> None:
    port = free_port()
    settings = Settings(agi=AgiSettings(port=port, backlog=64, request_timeout=1.0))
    app = web.Application()
    put_settings(app, settings)
    app[keys.CLOCK] = fixed_clock(NIGHT)
    app[keys.CALENDARS] = Calendars.from_settings(settings.calendar)
    app[keys.READINESS] = Readiness()
    ctx = agi_ctx(app)
    await anext(ctx)
    try:
        assert app[AGI_SERVER].port == port
        variables, _ = await play_asterisk(port, request_bytes())
        assert variables["CTI_ROUTE"] == "closed"
        ready, detail = app[keys.READINESS].report()
        assert ready
        assert detail["fastagi"] == {"ready": True, "port": port, "answered": 1, "failed": 0}
    finally:
        with pytest.raises(StopAsyncIteration):
            await anext(ctx)
    assert "fastagi" not in app[keys.READINESS].report()[1]
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_log_lines_never_echo_request_content(
    night_server: FastAgiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="telephony.agi")
    for payload in (b"agi_request: agi://h/route\nTanaka 0312345678: x\n\n", b"Tanaka 0312345678\n\n"):
        await play_asterisk(night_server.port, payload)
    await play_asterisk(night_server.port, request_bytes().replace(b"0301110000", b"0312345678"))
    await asyncio.sleep(0.05)
    logged = [(r.getMessage(), r.cti_fields) for r in caplog.records if r.name == "telephony.agi"]  # type: ignore[attr-defined]
    assert len(logged) >= 3
    assert "0312345678" not in repr(logged) and "Tanaka" not in repr(logged)
