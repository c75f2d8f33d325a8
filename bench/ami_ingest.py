"""AMI ingest: events/s through cti's pipeline beside raw panoramisk parse-and-dispatch.

Both read the same stream (real Asterisk 22 captures, re-keyed so every call is unique) from a
local TCP server. The baseline is panoramisk 1.4's Manager with one catch-all event handler that
only counts; the pipeline is cti's AMI client (telephony.frames' FrameParser under panoramisk's
asyncio Protocol base) -> call tracker. Target: pipeline >= 1.5 x raw (FrameParser parses ~2.5x
faster than panoramisk's Message, and the client adds little on top).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from panoramisk import Manager  # type: ignore[import-untyped]

from bench.ami_feed import AmiFeedServer, encoded_stream
from bench.report import Figure
from cti.core.clock import system_clock
from telephony.ami.link import AmiClient
from telephony.ami.sinks import Snapshot
from telephony.settings import AmiSettings
from telephony.tracker import CallTracker

TARGET_RATIO = 1.5
ROUNDS = 2


async def _raw_panoramisk(frames: list[bytes]) -> float:
    server = AmiFeedServer(frames)
    port = await server.start()
    total = len(frames)
    seen = 0
    finished = asyncio.Event()
    started = 0.0

    def on_event(manager: Any, message: Any) -> None:
        nonlocal seen, started
        if message.get("Event") == "FullyBooted":
            return
        if seen == 0:
            started = time.perf_counter()
        seen += 1
        if seen >= total:
            finished.set()

    manager = Manager(host="127.0.0.1", port=port, username="bench", secret="bench", ping_delay=3600,
                      forgetable_actions=("ping", "login"))
    manager.register_event("*", on_event)
    await manager.connect()
    try:
        await asyncio.wait_for(finished.wait(), 300)
        return total / (time.perf_counter() - started)
    finally:
        manager.close()
        await server.close()


class _PipelineSink:
    """The production path minus the network writes: tracker, then the pop router's decisions."""

    def __init__(self, total: int) -> None:
        self.tracker = CallTracker(system_clock)
        self.total = total
        self.seen = 0
        self.domain_events = 0
        self.started = 0.0
        self.finished = asyncio.Event()

    def on_event(self, event: Mapping[str, str]) -> None:
        if self.seen == 0:
            self.started = time.perf_counter()
        self.seen += 1
        self.domain_events += len(self.tracker.feed(event))
        if self.seen >= self.total:
            self.finished.set()

    def on_resync(self, snapshot: Snapshot) -> None:
        self.tracker.resync(list(snapshot.channels))


async def _pipeline(frames: list[bytes]) -> tuple[float, int]:
    server = AmiFeedServer(frames)
    port = await server.start()
    sink = _PipelineSink(len(frames))
    settings = AmiSettings(host="127.0.0.1", port=port, username="bench", ping_interval=3600)
    client = AmiClient(settings, [sink], event_names=())
    client.start()
    try:
        await asyncio.wait_for(sink.finished.wait(), 300)
        return sink.total / (time.perf_counter() - sink.started), sink.domain_events
    finally:
        await client.stop()
        await server.close()


async def run(quick: bool) -> list[Figure]:
    calls = 100 if quick else 2000
    frames = encoded_stream(calls)
    # Alternated rounds, best of each: on a shared 2-core machine one load spike in one phase
    # would otherwise decide the ratio.
    raws: list[float] = []
    pipelines: list[float] = []
    for _ in range(1 if quick else ROUNDS):
        raws.append(await _raw_panoramisk(frames))
        rate, domain_events = await _pipeline(frames)
        pipelines.append(rate)
    raw, pipeline = max(raws), max(pipelines)
    ratio = pipeline / raw
    return [
        Figure("ami_ingest", "raw panoramisk parse+dispatch", raw, "events/s",
               note=f"{len(frames)} events, best of {len(raws)} alternated rounds"),
        Figure("ami_ingest", "pipeline (client+tracker)", pipeline, "events/s",
               note=f"{domain_events} domain events, best of {len(pipelines)}"),
        Figure("ami_ingest", "pipeline / raw", ratio, "x", target=TARGET_RATIO, higher_is_better=True),
    ]
