"""Memory: the app's resident set (VmRSS of its process) with 1,000 live calls and 500 websockets.

The app runs as in bench/pop_latency.py (create_app in its own process: temp SQLite, AMI pointed
at this process's feed server, FastAGI off). Baseline, in the same run: the same app idle (started,
AMI logged in, its 500 users created, nobody connected). Then 500 operators' browsers (another
process) log in, take a seat and keep a websocket open; then 1,000 calls arrive through the real
AMI path (capture 01 re-keyed, cut before the queue rings anyone: every call waits in the queue and
none ends) until the tracker holds them all. Target: RSS <= 200 MB.

That app has an empty FAQ (as the figures of a month ago). A second app, started the same way with
the municipal FAQ (661 entries) and the sample ward documents imported at start, is measured after
its start and after it answered the labelled queries (the three sets of tests/fixtures/faq, as GET
/api/faq/search does: FAQ and documents): the Sudachi dictionary the search maps is in its RSS.
Every RSS figure notes its anonymous part (RssAnon: private) and its file-backed part (RssFile:
libraries and the mmapped dictionary, shared with other processes and reclaimable).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path

from bench.ami_feed import CAPTURES, capture_frames, rekey
from bench.pop_latency import ControlledFeed, Proc
from bench.report import Figure

TARGET_MB = 200.0
FAQ_FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "faq"
QUERY_SETS = ("queries.jsonl", "queries-tuning2.jsonl", "queries-holdout.jsonl")


def waiting_calls(calls: int) -> list[bytes]:
    """`calls` distinct calls that arrive, pass the FastAGI route and join the queue, then wait."""
    frames = capture_frames(CAPTURES / "01-inbound-queue-answered.txt")
    cut = next(i for i, f in enumerate(frames) if f.startswith("Event: AgentCalled"))
    return [(rekey(f, copy).replace("\n", "\r\n") + "\r\n\r\n").encode() for copy in range(calls) for f in frames[:cut]]


def _mb(kb: int) -> float:
    return kb / 1024


def _parts(stats: dict[str, int]) -> str:
    return f"anon {_mb(stats['RssAnon']):.1f} + file {_mb(stats['RssFile']):.1f} MiB"


def labelled_queries(quick: bool) -> list[str]:
    queries = [json.loads(line)["query"] for name in QUERY_SETS
               for line in (FAQ_FIXTURES / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    return queries[::4] if quick else queries


async def faq_app(quick: bool) -> tuple[dict[str, int], dict[str, int], int]:
    """RSS of an app with the municipal FAQ and the ward documents: after start, after the searches."""
    queries = labelled_queries(quick)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        feed = ControlledFeed()
        ami_port = await feed.start()
        server = await Proc.start("server", [
            "serve", "--ami-port", str(ami_port), "--tmp", str(tmp), "--users", "1",
            "--faq-file", str(FAQ_FIXTURES / "kosodate_opendata_faq_corpus.json"),
            "--faq-documents", str(FAQ_FIXTURES / "ward-docs")], tmp)
        try:
            await server.read()
            await asyncio.wait_for(feed.connected.wait(), 30)
            await asyncio.sleep(1.0)
            started = await server.ask("stats")
            await server.ask("search", queries=queries)
            searched = await server.ask("stats")
        finally:
            await server.stop()
            await feed.close()
    return started, searched, len(queries)


async def run(quick: bool) -> list[Figure]:
    n, calls = (20, 100) if quick else (500, 1000)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        feed = ControlledFeed()
        feed.frames = waiting_calls(calls)
        feed.rate = 0.0  # as fast as the app reads
        ami_port = await feed.start()
        server = await Proc.start("server", ["serve", "--ami-port", str(ami_port), "--tmp", str(tmp),
                                             "--users", str(n)], tmp)
        clients: Proc | None = None
        try:
            port = (await server.read())["port"]
            await asyncio.wait_for(feed.connected.wait(), 30)
            await asyncio.sleep(1.0)
            idle = await server.ask("stats")
            clients = await Proc.start("clients", ["clients", "--port", str(port), "--n", str(n)], tmp)
            await clients.read(300)
            await asyncio.sleep(1.0)
            with_sockets = await server.ask("stats")
            feed.go.set()
            await asyncio.wait_for(feed.done.wait(), 120)
            deadline = time.monotonic() + 60
            while True:
                loaded = await server.ask("stats")
                if loaded["tracker_calls"] >= calls or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        finally:
            if clients is not None:
                await clients.stop()
            await server.stop()
            await feed.close()
    faq_started, faq_searched, searches = await faq_app(quick)
    what = f"{loaded['tracker_calls']} live calls, {loaded['sockets']} websockets"
    return [
        Figure("memory", "RSS idle (baseline)", _mb(idle["VmRSS"]), "MiB",
               note=f"started, AMI up, nobody connected, FAQ empty; {_parts(idle)}"),
        Figure("memory", f"RSS with {with_sockets['sockets']} websockets", _mb(with_sockets["VmRSS"]), "MiB",
               note=f"+{_mb(with_sockets['VmRSS'] - idle['VmRSS']):.1f} MiB over idle; {_parts(with_sockets)}"),
        Figure("memory", f"RSS with {what}", _mb(loaded["VmRSS"]), "MiB", target=TARGET_MB,
               note=f"+{_mb(loaded['VmRSS'] - idle['VmRSS']):.1f} MiB over idle; {_parts(loaded)}"),
        Figure("memory", "RSS idle, municipal FAQ + ward documents", _mb(faq_started["VmRSS"]), "MiB",
               note=f"661 entries, 15 sections indexed; {_parts(faq_started)}; "
                    f"peak {_mb(faq_started['VmHWM']):.1f} MiB while indexing"),
        Figure("memory", f"RSS after {searches} FAQ searches", _mb(faq_searched["VmRSS"]), "MiB",
               target=TARGET_MB, note=f"the labelled queries; {_parts(faq_searched)}"),
        Figure("memory", "peak RSS (VmHWM)", _mb(loaded["VmHWM"]), "MiB"),
        Figure("memory", "live calls in the tracker", loaded["tracker_calls"], "calls", target=calls,
               higher_is_better=True),
    ]


if __name__ == "__main__":
    import sys

    from bench.report import table

    print(table(asyncio.run(run("--quick" in sys.argv))))
