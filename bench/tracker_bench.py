"""Pure pipeline throughput, no sockets: bytes -> FrameParser -> CallTracker, beside panoramisk 1.4's
own parse (``Message.from_line`` on the ``CRLF CRLF``-split text, what ``AMIProtocol.data_received``
does). The stream is every captured call event, unfiltered (Newexten, VarSet, TestEvent included),
re-keyed so that each copy is a distinct call. Target: pipeline >= 0.5 x raw panoramisk parse.
"""

from __future__ import annotations

import time
from datetime import datetime

from panoramisk.message import Message  # type: ignore[import-untyped]

from bench.ami_feed import encoded_stream
from bench.report import Figure
from cti.core.clock import TOKYO
from telephony.frames import FrameParser
from telephony.tracker import CallTracker

TARGET_RATIO = 0.5
CHUNK = 65536
FIXED = datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO)


def _panoramisk_parse(blob: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    count = 0
    for chunk in blob.decode("utf-8", "ignore").split("\r\n\r\n"):
        if chunk.strip():
            Message.from_line(chunk)
            count += 1
    return count, time.perf_counter() - started


def _pipeline(blob: bytes) -> tuple[int, int, int, float]:
    started = time.perf_counter()
    parser = FrameParser()
    tracker = CallTracker(lambda: FIXED)
    frames = domain = 0
    feed = tracker.feed
    for start in range(0, len(blob), CHUNK):
        for frame in parser.feed(blob[start : start + CHUNK]):
            frames += 1
            domain += len(feed(frame))
    return frames, domain, len(tracker), time.perf_counter() - started


def _parser_only(blob: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    parser = FrameParser()
    frames = 0
    for start in range(0, len(blob), CHUNK):
        frames += len(parser.feed(blob[start : start + CHUNK]))
    return frames, time.perf_counter() - started


async def run(quick: bool) -> list[Figure]:
    calls = 60 if quick else 1200
    blob = b"".join(encoded_stream(calls))
    rounds = 1 if quick else 7
    # Interleaved rounds, best of each: the host is shared, so a slow moment hits both sides.
    raws, parses, pipes = [], [], []
    for _ in range(rounds):
        raws.append(_panoramisk_parse(blob))
        parses.append(_parser_only(blob))
        pipes.append(_pipeline(blob))
    raw = min(raws, key=lambda r: r[1])
    parsed = min(parses, key=lambda r: r[1])
    pipe = min(pipes, key=lambda r: r[3])
    if pipe[0] != raw[0] or parsed[0] != raw[0]:
        raise AssertionError(f"frame counts differ: panoramisk {raw[0]}, parser {parsed[0]}, pipeline {pipe[0]}")
    if pipe[2] != 0:
        raise AssertionError(f"{pipe[2]} calls leaked")
    raw_rate = raw[0] / raw[1]
    parse_rate = parsed[0] / parsed[1]
    pipe_rate = pipe[0] / pipe[3]
    note = f"{raw[0]} events, {calls} calls"
    return [
        Figure("tracker", "raw panoramisk Message parse", raw_rate, "events/s", note=note),
        Figure("tracker", "FrameParser only", parse_rate, "events/s", note=note),
        Figure("tracker", "FrameParser + CallTracker", pipe_rate, "events/s", note=f"{pipe[1]} domain events"),
        Figure("tracker", "pipeline / raw parse", pipe_rate / raw_rate, "x", target=TARGET_RATIO,
               higher_is_better=True),
    ]


if __name__ == "__main__":  # pragma: no cover
    import asyncio

    from bench.report import table

    print(table(asyncio.run(run(quick=False))))
