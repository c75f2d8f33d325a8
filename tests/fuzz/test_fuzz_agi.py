"""Fuzzing the FastAGI server (telephony/agi/server.py) over real TCP.

Hostile peers, many at once: random bytes, requests cut anywhere, mutated headers, over-long
lines, peers that stall, and peers that answer the server's commands with garbage. Between them,
well-behaved "Asterisk" requests must keep getting the right answer (CTI_ROUTE & co.) in time.
At the end no session is left behind. CI: 600 hostile sessions; CTI_FUZZ_LONG=1: 20,000.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime

from fuzz_support import LONG, figures

from cti.calendar.rules import Calendars
from cti.config import CalendarSettings
from cti.core.clock import fixed_clock
from telephony.agi.server import FastAgiServer, make_route_script

NIGHT = datetime.fromisoformat("2026-12-28T23:30:00+09:00")
HOSTILE = 20_000 if LONG else 600
CONCURRENCY = 40


def request_bytes(uniqueid: str = "1795822517.1") -> bytes:
    headers = [
        "agi_network: yes",
        "agi_network_script: route",
        "agi_request: agi://127.0.0.1:4573/route",
        "agi_channel: Local/0301110000@from-pstn-00000000;2",
        "agi_language: ja",
        f"agi_uniqueid: {uniqueid}",
        "agi_context: from-pstn",
        "agi_extension: 0301110000",
        "agi_accountcode: ",
        "agi_arg_1: 0301110000",
    ]
    return ("\n".join(headers) + "\n\n").encode()


async def good_request(port: int, uniqueid: str) -> dict[str, str]:
    """Behave like Asterisk; return the variables the server set."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_bytes(uniqueid))
        await writer.drain()
        variables: dict[str, str] = {}
        while True:
            line = (await reader.readline()).decode()
            if not line:
                return variables
            if line.startswith("EXEC MSet "):
                pairs = line.removeprefix("EXEC MSet ").rstrip("\n").strip('"')
                variables.update(p.split("=", 1) for p in pairs.split(","))  # type: ignore[misc]
            elif line.startswith("SET VARIABLE "):
                name, value = line.removeprefix("SET VARIABLE ").rstrip("\n").split(" ", 1)
                variables[name] = value.strip('"')
            writer.write(b"200 result=1\n")
            await writer.drain()
    finally:
        writer.close()


def hostile_payload(rnd: random.Random) -> tuple[str, bytes, bytes | None]:
    """(kind, what to send first, how to answer commands or None to not answer)."""
    good = request_bytes(f"{rnd.randint(1, 10**9)}.{rnd.randint(0, 999)}")
    kind = rnd.choice(["random", "truncated", "mutated", "long_line", "stall", "bad_reply", "many_lines"])
    if kind == "random":
        return kind, rnd.randbytes(rnd.randint(0, 600)), None
    if kind == "truncated":
        return kind, good[: rnd.randint(0, len(good) - 1)], None
    if kind == "mutated":
        data = bytearray(good)
        for _ in range(rnd.randint(1, 12)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        return kind, bytes(data), rnd.randbytes(rnd.randint(0, 40)) + b"\n"
    if kind == "long_line":
        return kind, b"agi_network: yes\nagi_channel: " + b"A" * rnd.randint(5_000, 200_000) + b"\n\n", None
    if kind == "stall":
        return kind, good[: rnd.randint(0, 40)], None  # then nothing: the server's timeout must end it
    if kind == "many_lines":
        return kind, b"".join(b"agi_x%d: y\n" % n for n in range(rnd.randint(100, 3000))) + b"\n", None
    return kind, good, rnd.choice([b"520-Invalid\n", b"511 result=-1\n", b"HANGUP\n", b"\xff\xfe\n", b"200\n",
                                   b"200 result=-2\n", b"garbage"])


async def hostile(port: int, rnd: random.Random) -> str:
    kind, first, reply = hostile_payload(rnd)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return kind
    try:
        writer.write(first)
        await writer.drain()
        if reply is None and rnd.random() < 0.5:
            writer.write_eof()  # a peer that half-closes
        async with asyncio.timeout(5):
            while True:
                line = await reader.readline()
                if not line:
                    break
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, RuntimeError):
        pass
    finally:
        writer.close()
    return kind


async def test_hostile_peers_never_stop_good_requests() -> None:
    cal = Calendars.from_settings(CalendarSettings())
    rnd = random.Random(4573)
    kinds: dict[str, int] = {}
    good_answered = 0
    worst_good = 0.0
    started = time.monotonic()
    async with FastAgiServer({"route": make_route_script(cal, fixed_clock(NIGHT))}, port=0,
                             request_timeout=0.3) as server:
        done = 0
        while done < HOSTILE:
            batch = min(CONCURRENCY, HOSTILE - done)
            hostile_tasks = [asyncio.create_task(hostile(server.port, random.Random(rnd.random())))
                             for _ in range(batch)]
            t0 = time.monotonic()
            variables = await asyncio.wait_for(good_request(server.port, f"good.{done}"), 3)
            worst_good = max(worst_good, time.monotonic() - t0)
            assert variables.get("CTI_ROUTE") == "closed" and variables.get("CTI_CLOSED_REASON") == "night", variables
            good_answered += 1
            for kind in await asyncio.gather(*hostile_tasks):
                kinds[kind] = kinds.get(kind, 0) + 1
            done += batch
        async with asyncio.timeout(5):
            while server.active_sessions:  # noqa: ASYNC110 (a counter, no event to wait on)
                await asyncio.sleep(0.02)
        assert (await good_request(server.port, "good.final"))["CTI_ROUTE"] == "closed"
        answered, failed = server.requests_answered, server.requests_failed
    figures("fuzz_agi", hostile_sessions=sum(kinds.values()), by_kind=kinds, good_requests=good_answered + 1,
            worst_good_request_ms=round(worst_good * 1000, 1), server_answered=answered, server_failed=failed,
            seconds=round(time.monotonic() - started, 1))
    assert good_answered + 1 <= answered
