"""FastAGI: routing decisions at 200 concurrent sessions, cti's server beside panoramisk 1.4's.

Each client plays Asterisk: it sends the real request format (the `agi_*` header block of
shared/ami-captures/fastagi-request-example.txt, kept in tests/fixtures/agi/), answers every
command with `200 result=1`, and stops when the server closes the socket. A decision is timed from
the first request byte to the close. The baseline is panoramisk's FastAGI `Application` with a
handler that sets the same variables from the same calendars (the server cti replaced).
Target: p99 <= 5 ms at 200 concurrent sessions.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import statistics
import time
from pathlib import Path
from typing import Any

from panoramisk.fast_agi import Application  # type: ignore[import-untyped]

from bench.report import Figure
from cti.calendar.rules import Calendars
from cti.config import CalendarSettings
from cti.core.clock import system_clock
from telephony.agi.route import route_variables
from telephony.agi.server import FastAgiServer, make_route_script

TARGET_P99_MS = 5.0
EXAMPLE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "agi" / "fastagi-request-example.txt"
_FALLBACK_EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "ami-captures" / "fastagi-request-example.txt"


def request_bytes() -> bytes:
    path = EXAMPLE if EXAMPLE.exists() else _FALLBACK_EXAMPLE
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("agi_"):
            lines.append(line)
    return ("\n".join(lines) + "\n\n").encode()


async def _one_session(port: int, request: bytes) -> float:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    while line := await reader.readline():
        if line.strip():
            writer.write(b"200 result=1\n")
    writer.close()
    return time.perf_counter() - started


async def _client(port: int, concurrency: int, sessions_each: int, rate: float) -> list[float]:
    """`concurrency` callers, each running `sessions_each` sessions with random pauses so that all
    together they open `rate` sessions per second (0: back to back, a closed loop)."""
    request = request_bytes()
    mean_pause = concurrency / rate if rate else 0.0

    async def caller(seed: int) -> list[float]:
        rnd = random.Random(seed)
        latencies = []
        for _ in range(sessions_each):
            if mean_pause:
                await asyncio.sleep(rnd.expovariate(1 / mean_pause))
            latencies.append(await _one_session(port, request))
        return latencies

    results = await asyncio.gather(*(caller(i) for i in range(concurrency)))
    return [latency for per_caller in results for latency in per_caller]


def _client_process(port: int, concurrency: int, sessions_each: int, rate: float, out: Any) -> None:
    out.send(asyncio.run(_client(port, concurrency, sessions_each, rate)))
    out.close()


async def _load(port: int, concurrency: int, sessions_each: int, rate: float) -> list[float]:
    """Run the callers in another process, as Asterisk would be: client work does not steal the
    server's event loop."""
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_client_process, args=(port, concurrency, sessions_each, rate, sender))
    process.start()
    latencies: list[float] = await asyncio.to_thread(receiver.recv)
    await asyncio.to_thread(process.join)
    return latencies


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def _cti(concurrency: int, sessions_each: int, rate: float,
               calendars: Calendars) -> tuple[list[float], list[float]]:
    decisions: list[float] = []
    async with FastAgiServer({"route": make_route_script(calendars, system_clock)}, port=0, backlog=1024,
                             on_decision=lambda _script, seconds: decisions.append(seconds)) as server:
        await _client(server.port, 5, 2, 0.0)  # warm-up: first use of the holiday tables, imports
        decisions.clear()
        return await _load(server.port, concurrency, sessions_each, rate), decisions


async def _panoramisk(concurrency: int, sessions_each: int, rate: float, calendars: Calendars) -> list[float]:
    app = Application()

    async def route(request: Any) -> None:
        for name, value in route_variables(calendars, system_clock()).items():
            await request.send_command(f'SET VARIABLE {name} "{value}"')

    app.add_route("route", route)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0, backlog=1024)
    try:
        port = server.sockets[0].getsockname()[1]
        await _client(port, 5, 2, 0.0)  # warm-up, as for cti
        return await _load(port, concurrency, sessions_each, rate)
    finally:
        server.close()
        await server.wait_closed()


async def _scenario(label: str, concurrency: int, sessions_each: int, rate: float,
                    calendars: Calendars) -> list[Figure]:
    ours, decisions = await _cti(concurrency, sessions_each, rate, calendars)
    theirs = await _panoramisk(concurrency, sessions_each, rate, calendars)
    note = f"{concurrency} callers x {sessions_each} sessions, {label}; callers in another process"
    ms = 1000
    return [
        Figure("fastagi", f"{label}: cti decision p50", _percentile(decisions, 50) * ms, "ms", note=note),
        Figure("fastagi", f"{label}: cti decision p99", _percentile(decisions, 99) * ms, "ms",
               target=TARGET_P99_MS, note=note),
        Figure("fastagi", f"{label}: cti session p99 (caller side)", _percentile(ours, 99) * ms, "ms"),
        Figure("fastagi", f"{label}: panoramisk session p99 (baseline)", _percentile(theirs, 99) * ms, "ms"),
    ]


async def run(quick: bool) -> list[Figure]:
    calendars = Calendars.from_settings(CalendarSettings())
    concurrency, sessions_each = (50, 2) if quick else (200, 10)
    figures = await _scenario("200/s open loop" if not quick else "open loop", concurrency, sessions_each,
                              200.0, calendars)
    figures += await _scenario("back to back", concurrency, sessions_each, 0.0, calendars)
    return figures
