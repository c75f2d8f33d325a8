"""Screen pop latency: AgentConnect written to the AMI socket -> the pop frame read by that operator.

Three processes, as in production: the app (create_app: temp SQLite, AMI pointed at the feed,
FastAGI off, logging on as `cti serve` does, to a file), the operators' browsers (N aiohttp
websocket clients, logged in through POST /api/login and seated through POST /api/seat at
``PJSIP/op0001``...), and this process, which plays Asterisk: bench/ami_feed.py's server streams
re-keyed real captures in the background while test calls (capture 01, re-keyed, the member
``Interface`` set to an operator's seat) are injected into the same AMI socket. The time is taken
with time.monotonic() (CLOCK_MONOTONIC, system-wide on Linux) right before the AgentConnect frame
is written, and by the client right after the pop frame is read.

Every stream is what Asterisk sends the cti user: the adapter's event filters (manager.conf,
telephony.ami.adapter_keeps) applied to the captures.

Phases (same app, same clients):
  baseline   test calls only, no background load;
  load       + 5,000 background events/s, test calls to an extra *reading* client too;
  stalled    + 5,000 background events/s, the extra client is now stalled (connected, reading
             nothing): the others' p99 must not rise more than 10 % over `load`.
Target: p99 <= 10 ms under load.

Also run as the two helper processes: ``python -m bench.pop_latency serve|clients ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.ami_feed import CAPTURES, SCENARIOS, AmiFeedServer, capture_frames, rekey
from bench.report import Figure

ORIGIN = "http://bench.local"
PASSWORD = "bench password 1"
ROOT = Path(__file__).resolve().parent.parent
TEST_COPY_BASE = 50_000_000  # re-key copies of injected test calls (background copies count from 0)
BACKGROUND_RATE = 5000.0  # events/s
TARGET_P99_MS = 10.0
TARGET_STALL_RISE = 1.10
EXTRA_EVERY = 4  # load and stalled phases: 1 call to the extra seat per 4 measured calls
CONNECT_DELAY = 0.010  # s between a test call's earlier frames and its AgentConnect
HANGUP_DELAY = 0.150  # s between AgentConnect and the rest of the call (bridge, hangups)
_INTERFACE = re.compile(r"^Interface: Local/10\d@operator-phones$", re.M)
_LINKEDID = re.compile(r"^Linkedid: (\S+)$", re.M)


def seat(i: int) -> str:
    return f"PJSIP/op{i:04d}"


def user(i: int) -> str:
    return f"op{i:04d}"


# ---- what Asterisk sends ------------------------------------------------------------------------


def _headers(frame: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in frame.split("\n"):
        key, sep, value = line.partition(":")
        if sep and key not in out:
            out[key] = value.strip()
    return out


def filtered_templates(scenarios: tuple[str, ...] = SCENARIOS) -> list[list[str]]:
    """The captures' call frames as the cti user gets them (manager.conf event filters applied)."""
    from telephony.ami.filters import adapter_keeps

    return [[f for f in capture_frames(CAPTURES / name) if adapter_keeps(_headers(f))] for name in scenarios]


def _wire(frame: str) -> bytes:
    return (frame.replace("\n", "\r\n") + "\r\n\r\n").encode()


def background_frames(events: int, filtered: bool, first_copy: int = 0) -> list[bytes]:
    """At least `events` frames of re-keyed captures (as filtered for the cti user, or all), whole calls."""
    templates = filtered_templates() if filtered else [capture_frames(CAPTURES / name) for name in SCENARIOS]
    out: list[bytes] = []
    copy = first_copy
    while len(out) < events:
        out += [_wire(rekey(f, copy)) for f in templates[copy % len(templates)]]
        copy += 1
    return out


@dataclass(frozen=True)
class TestCall:
    call_id: str
    before: bytes  # from Newchannel to AgentCalled (ringing)
    connect: bytes  # the AgentConnect frame
    after: bytes  # AgentComplete, bridge, hangups


def test_call(k: int, interface: str) -> TestCall:
    """Capture 01 (answered in the queue) as the `k`-th test call, answered at `interface`."""
    frames = [_INTERFACE.sub(f"Interface: {interface}", rekey(f, TEST_COPY_BASE + k)) for f in _answered()]
    at = next(i for i, f in enumerate(frames) if f.startswith("Event: AgentConnect"))
    found = _LINKEDID.search(frames[at])
    assert found is not None
    return TestCall(found.group(1), b"".join(map(_wire, frames[:at])), _wire(frames[at]),
                    b"".join(map(_wire, frames[at + 1 :])))


_ANSWERED: list[str] = []


def _answered() -> list[str]:
    if not _ANSWERED:
        _ANSWERED.extend(filtered_templates(("01-inbound-queue-answered.txt",))[0])
    return _ANSWERED


class ControlledFeed(AmiFeedServer):
    """The feed server, with the background stream held until `go` and test calls injected."""

    def __init__(self) -> None:
        super().__init__([], rate=BACKGROUND_RATE)
        self.go = asyncio.Event()
        self.writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.connected.set()
        await self.go.wait()
        await super()._stream(writer)

    def write(self, data: bytes) -> float:
        """Write to the app's AMI socket now; the monotonic time just before the write."""
        assert self.writer is not None
        at = time.monotonic()
        self.writer.write(data)
        return at


# ---- helper processes -----------------------------------------------------------------------------


@dataclass
class Proc:
    """A helper process spoken to with JSON lines on stdin/stdout."""

    proc: asyncio.subprocess.Process
    name: str
    stderr_path: Path

    @classmethod
    async def start(cls, name: str, args: list[str], tmp: Path) -> Proc:
        stderr_path = tmp / f"{name}.stderr"
        with stderr_path.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.pop_latency", *args,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err, cwd=ROOT,
                limit=64 * 1024 * 1024,
            )
        return cls(proc, name, stderr_path)

    async def read(self, wait: float = 120.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), wait)
        if not line:
            tail = self.stderr_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"bench {self.name} process ended:\n{tail}")
        result: dict[str, Any] = json.loads(line)
        return result

    async def ask(self, command: str, wait: float = 120.0, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"cmd": command, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        return await self.read(wait)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            try:
                await self.ask("stop", wait=20)
            except (RuntimeError, TimeoutError, ConnectionError, json.JSONDecodeError):
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def _commands() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _reply(**payload: Any) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS / VmHWM of a process and VmRSS's anonymous and file-backed parts, in kB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0])
    return out


async def serve_main(ami_port: int, tmp: Path, users: int, faq: dict[str, str] | None = None) -> None:
    """The app as `cti serve` runs it (plus cheap password hashing for the bench users); `faq`: its
    [faq] settings (bench/memory.py loads the municipal FAQ and the ward documents)."""
    from aiohttp import web
    from argon2 import PasswordHasher

    from access.web import AUTH, PASSWORD_HASHER
    from cti import keys
    from cti.app import create_app
    from cti.config import Settings
    from cti.core.logs import configure_logging

    configure_logging("INFO", json_lines=True)
    if os.environ.get("BENCH_SWITCH_INTERVAL"):  # experiment: the GIL hand-off to the SQLite thread
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
    settings = Settings.model_validate({
        "store": {"path": str(tmp / "cti.sqlite3")},
        "ami": {"host": "127.0.0.1", "port": ami_port, "username": "bench", "ping_interval": 3600},
        "agi": {"enabled": False},
        "faq": faq or {},
        "security": {"allowed_origins": [ORIGIN], "operator_networks": ["127.0.0.0/8"],
                     "login_max_failures": 100000},
    })
    app = create_app(settings)
    app[PASSWORD_HASHER] = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    auth = app[AUTH]
    for i in range(users):
        await auth.accounts.add(user(i), "operator", PASSWORD)
    idle = proc_status()
    taps = _tap(app)
    pauses = _gc_pauses()
    profile_to = os.environ.get("BENCH_PROFILE")  # a path: cProfile the server's loop into it
    profiler = None
    if profile_to:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    _reply(port=port, pid=os.getpid(), idle=idle)
    commands = await _commands()
    try:
        while line := await commands.readline():
            cmd = json.loads(line)["cmd"]
            if cmd == "stop":
                break
            if cmd == "search":  # what GET /api/faq/search does, for each query (bench/memory.py)
                from faq.api import search_body
                from faq.keys import FAQ

                for query in json.loads(line)["queries"]:
                    search_body(app[FAQ], query, 10)
                _reply(searched=True)
                continue
            if cmd == "taps":
                gc_max = {str(g): max(p, default=0.0) for g, p in pauses.items()}
                gc_count = {str(g): len(p) for g, p in pauses.items()}
                _reply(**taps, gc_max=gc_max, gc_count=gc_count)
                for times in taps.values():
                    times.clear()
                for p in pauses.values():
                    p.clear()
                continue
            tracker = app.get(keys.TRACKER)
            hub = app[keys.HUB]
            used = os.times()
            _reply(**proc_status(), cpu=used.user + used.system,
                   tracker_calls=len(tracker) if tracker is not None else -1, sockets=hub.connection_count())
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile_to))
        await runner.cleanup()
        _reply(stopped=True)


def _gc_pauses() -> dict[int, list[float]]:
    """Durations of the app's garbage collections, by generation (a pause of its event loop)."""
    import gc

    pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[info["generation"]].append(time.perf_counter() - started[0])

    gc.callbacks.append(timed)
    return pauses


def _tap(app: Any) -> dict[str, dict[str, float]]:
    """Monotonic times, by call id, of the app reading each AgentConnect and queueing each pop."""
    from cti import keys

    taps: dict[str, dict[str, float]] = {"read": {}, "queued": {}}

    class Tap:  # the last AMI sink: runs right after the tracker took the frame
        def on_event(self, event: Any) -> None:
            if event.get("Event") == "AgentConnect":
                taps["read"][event.get("Linkedid", "")] = time.monotonic()

        def on_resync(self, snapshot: Any) -> None:
            return None

    app[keys.AMI].client.add_sink(Tap())
    hub = app[keys.HUB]
    send = hub.send_to_user

    def send_to_user(user_id: str, msg: Any) -> int:
        if getattr(msg, "type", "") == "pop":
            taps["queued"][msg.call_id] = time.monotonic()
        return int(send(user_id, msg))

    setattr(hub, "send_to_user", send_to_user)  # noqa: B010 - an instance attribute, for the bench only
    return taps


async def clients_main(port: int, n: int, extra: int) -> None:
    """N operators' browsers (+ `extra` seated users connected on command): login, seat, websocket."""
    import aiohttp

    from bench.hub_bench import _stalled

    base = f"http://127.0.0.1:{port}"
    received: dict[str, float] = {}
    sessions: dict[int, aiohttp.ClientSession] = {}
    cookies: dict[int, str] = {}
    sockets: dict[int, aiohttp.ClientWebSocketResponse] = {}
    readers: dict[int, asyncio.Task[None]] = {}
    stalled: list[asyncio.StreamWriter] = []

    async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            at = time.monotonic()
            if msg.type is aiohttp.WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data.get("type") == "pop":
                    received[data["call_id"]] = at

    async def login_and_seat(i: int) -> None:
        s = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Origin": ORIGIN})
        sessions[i] = s
        async with s.post(f"{base}/api/login", json={"user_id": user(i), "password": PASSWORD}) as r:
            body = await r.json()
            assert r.status == 200, body
            cookies[i] = f"Cookie: cti_session={r.cookies['cti_session'].value}\r\n"
        async with s.post(f"{base}/api/seat", json={"interface": seat(i)},
                          headers={"X-CSRF-Token": body["csrf_token"]}) as r:
            assert r.status == 200, await r.text()

    async def connect(i: int) -> None:
        ws = await sessions[i].ws_connect(f"{base}/ws")
        hello = await ws.receive_json()
        assert hello.get("type") == "hello", hello
        await ws.send_str('{"type":"resume","last_seq":0}')
        sockets[i] = ws
        readers[i] = asyncio.create_task(read(ws))

    async def bounded(ids: range, fn: Any) -> None:
        gate = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with gate:
                await fn(i)

        await asyncio.gather(*(one(i) for i in ids))

    await bounded(range(n + extra), login_and_seat)
    await bounded(range(n), connect)
    _reply(ready=n)
    commands = await _commands()
    try:
        while line := await commands.readline():
            cmd = json.loads(line)
            if cmd["cmd"] == "stop":
                break
            if cmd["cmd"] == "connect":  # an extra client that reads
                await connect(cmd["i"])
                _reply(connected=cmd["i"])
            elif cmd["cmd"] == "stall":  # an extra client that never reads
                stalled.append(await _stalled(port, "/ws", cookies[cmd["i"]]))
                _reply(stalled=cmd["i"])
            elif cmd["cmd"] == "report":
                _reply(received=received)
                received = {}
    finally:
        for task in readers.values():
            task.cancel()
        await asyncio.gather(*readers.values(), return_exceptions=True)
        for ws in sockets.values():
            await ws.close()
        for w in stalled:
            w.close()
        for s in sessions.values():
            await s.close()
        _reply(stopped=True)


# ---- the measurement --------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    cpu: float = 0.0  # the server's CPU seconds per second during the phase
    latencies: list[float] = field(default_factory=list)
    missing: int = 0
    extra_written: int = 0
    gc_max: float = 0.0  # the app's longest garbage collection during the phase, s
    gc: str = ""
    steps: list[tuple[float, float, float]] = field(default_factory=list)  # frame read, pop queued, pop read

    def step(self, i: int, q: float) -> float:
        return pct([s[i] for s in self.steps], q) * 1000


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("inf")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 10) - 1]


async def inject(feed: ControlledFeed, calls: list[tuple[TestCall, bool]], rate: float) -> dict[str, float]:
    """Write the calls at `rate` per second: earlier frames, AgentConnect (timed), the rest."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    plan: list[tuple[float, int, int]] = []  # (when, step, index)
    for k in range(len(calls)):
        at = start + k / rate
        plan += [(at, 0, k), (at + CONNECT_DELAY, 1, k), (at + CONNECT_DELAY + HANGUP_DELAY, 2, k)]
    plan.sort()
    written: dict[str, float] = {}
    for when, step, k in plan:
        delay = when - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        call = calls[k][0]
        if step == 0:
            feed.write(call.before)
        elif step == 1:
            written[call.call_id] = feed.write(call.connect)
        else:
            feed.write(call.after)
    await asyncio.sleep(0.5)  # the last pops
    return written


async def run_phase(name: str, feed: ControlledFeed, server: Proc, clients: Proc,
                    calls: list[tuple[TestCall, bool]], rate: float) -> Phase:
    before, started = (await server.ask("stats"))["cpu"], time.monotonic()
    written = await inject(feed, calls, rate)
    after, ended = (await server.ask("stats"))["cpu"], time.monotonic()
    received: dict[str, float] = (await clients.ask("report"))["received"]
    phase = Phase(name, cpu=(after - before) / (ended - started))
    taps: dict[str, Any] = await server.ask("taps")
    phase.gc_max = max(taps["gc_max"].values())
    phase.gc = f"{taps['gc_count']['2']} full collections, longest {taps['gc_max']['2'] * 1000:.0f} ms"
    for call, measured in calls:
        read, queued, got = (taps["read"].get(call.call_id), taps["queued"].get(call.call_id),
                             received.get(call.call_id))
        if measured and read is not None and queued is not None and got is not None:
            phase.steps.append((read - written[call.call_id], queued - read, got - queued))
    for call, measured in calls:
        if not measured:
            phase.extra_written += 1
            continue
        got = received.get(call.call_id)
        if got is None:
            phase.missing += 1
        else:
            phase.latencies.append(got - written[call.call_id])
    return phase


def plan_calls(first: int, count: int, n: int, extra_seat: int | None) -> list[tuple[TestCall, bool]]:
    """`count` test calls round-robin over the n seats; with `extra_seat`, one more call there after
    every EXTRA_EVERY of them (not measured: that client reads in one phase and stalls in the next)."""
    calls: list[tuple[TestCall, bool]] = []
    k = first
    for j in range(count):
        calls.append((test_call(k, seat(j % n)), True))
        k += 1
        if extra_seat is not None and j % EXTRA_EVERY == EXTRA_EVERY - 1:
            calls.append((test_call(k, seat(extra_seat)), False))
            k += 1
    return calls


async def run(quick: bool) -> list[Figure]:
    n = 20 if quick else 500
    rate = 10.0  # measured test calls (pops) per second; 500 busy operators at 3 min a call make ~3/s
    base_s, load_s = (1.5, 2.0) if quick else (6.0, 12.0)  # phase lengths (the runner's 5 min budget)
    extra_rate = rate * (1 + 1 / EXTRA_EVERY)
    bg_rate = float(os.environ.get("BENCH_BG_RATE", BACKGROUND_RATE))  # experiments: other loads
    total_rate = bg_rate + extra_rate * len(_answered())
    filtered = os.environ.get("BENCH_BG_FILTERED") == "1"  # default: the captures as ami_feed streams them
    background = background_frames(int(bg_rate * (3 * load_s + 2)), filtered)  # + margin
    base_calls = plan_calls(0, int(rate * base_s), n, None)
    load_calls = plan_calls(10_000, int(rate * load_s), n, n)
    stall_calls = plan_calls(20_000, int(rate * load_s), n, n + 1)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        feed = ControlledFeed()
        feed.frames = background
        feed.rate = bg_rate
        ami_port = await feed.start()
        server = await Proc.start("server", ["serve", "--ami-port", str(ami_port), "--tmp", str(tmp),
                                             "--users", str(n + 2)], tmp)
        clients: Proc | None = None
        try:
            info = await server.read()
            await asyncio.wait_for(feed.connected.wait(), 30)
            clients = await Proc.start("clients", ["clients", "--port", str(info["port"]), "--n", str(n),
                                                   "--extra", "2"], tmp)
            await clients.read(300)
            await asyncio.sleep(0.5)
            phases = [await run_phase("baseline", feed, server, clients, base_calls, rate)]
            await clients.ask("connect", i=n)
            feed.go.set()
            await asyncio.sleep(1.0)
            phases.append(await run_phase("load", feed, server, clients, load_calls, extra_rate))
            await clients.ask("stall", i=n + 1)
            await asyncio.sleep(0.5)
            phases.append(await run_phase("stalled", feed, server, clients, stall_calls, extra_rate))
            stats = await server.ask("stats")
            background_done = feed.done.is_set()
        finally:
            if clients is not None:
                await clients.stop()
            await server.stop()
            await feed.close()
    base, load, stall = phases
    missing = base.missing + load.missing + stall.missing
    measured = len(base.latencies) + len(load.latencies) + len(stall.latencies) + missing
    label = f"{n} operators"
    print(f"# pop_latency server CPU: baseline {base.cpu:.2f}, load {load.cpu:.2f}, stalled {stall.cpu:.2f}"
          f" (background filtered: {filtered})", file=sys.stderr)
    rise = pct(stall.latencies, 99) / pct(load.latencies, 99)
    note_load = (f"{bg_rate:,.0f} bg ev/s + {extra_rate:g} test calls/s (~{total_rate:,.0f} ev/s);"
                 f" app CPU {load.cpu:.0%}")
    if background_done:
        note_load += "; the background ran out before the end"
    figures += [
        Figure("pop_latency", f"baseline (no background) p50, {label}", pct(base.latencies, 50) * 1000, "ms",
               note=f"{rate:g} test calls/s; app CPU {base.cpu:.0%}"),
        Figure("pop_latency", f"baseline (no background) p99, {label}", pct(base.latencies, 99) * 1000, "ms"),
        Figure("pop_latency", f"load p50, {label}", pct(load.latencies, 50) * 1000, "ms", note=note_load),
        Figure("pop_latency", f"load p99, {label}", pct(load.latencies, 99) * 1000, "ms", target=TARGET_P99_MS,
               note=f"{len(load.latencies)} pops"),
        Figure("pop_latency", f"load max, {label}", max(load.latencies, default=float("inf")) * 1000, "ms"),
        Figure("pop_latency", "load: AMI write -> app read p99", load.step(0, 99), "ms", note="socket + parse"),
        Figure("pop_latency", "load: app read -> pop queued p99", load.step(1, 99), "ms",
               note=f"tracker, dispatcher, SQLite lookups; p50 {load.step(1, 50):.1f} ms"),
        Figure("pop_latency", "load: pop queued -> client read p99", load.step(2, 99), "ms", note="hub + websocket"),
        Figure("pop_latency", "1 client stalled: others' p50", pct(stall.latencies, 50) * 1000, "ms",
               note=f"app CPU {stall.cpu:.0%}; the stalled socket "
               + ("was closed by the hub" if stats["sockets"] <= n + 1 else "is still open")),
        Figure("pop_latency", "1 client stalled: others' p99", pct(stall.latencies, 99) * 1000, "ms",
               target=TARGET_P99_MS),
        Figure("pop_latency", "1 client stalled: others' max", max(stall.latencies, default=float("inf")) * 1000,
               "ms"),
        Figure("pop_latency", "stalled p99 / load p99", rise, "x", target=TARGET_STALL_RISE,
               note="others' p99 with 1 stalled client over without"),
        Figure("pop_latency", "pops missing", missing, "pops", target=0, note=f"of {measured}"),
        Figure("pop_latency", "server RSS at the end", stats["VmRSS"] / 1024, "MiB",
               note=f"sockets open {stats['sockets']}"),
    ]
    figures += [Figure("pop_latency", f"{p.name}: app's longest GC pause", p.gc_max * 1000, "ms", note=p.gc)
                for p in phases]
    return figures


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pop_latency")
    sub = parser.add_subparsers(dest="role")
    s = sub.add_parser("serve")
    s.add_argument("--ami-port", type=int, required=True)
    s.add_argument("--tmp", type=Path, required=True)
    s.add_argument("--users", type=int, required=True)
    s.add_argument("--faq-file", help="[faq] import_on_start")
    s.add_argument("--faq-documents", help="[faq] documents_dir")
    c = sub.add_parser("clients")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--n", type=int, required=True)
    c.add_argument("--extra", type=int, default=0)
    sub.add_parser("run").add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.role == "serve":
        faq = {"import_on_start": args.faq_file, "documents_dir": args.faq_documents} if args.faq_file else None
        asyncio.run(serve_main(args.ami_port, args.tmp, args.users, faq))
    elif args.role == "clients":
        asyncio.run(clients_main(args.port, args.n, args.extra))
    else:
        from bench.report import table

        print(table(asyncio.run(run(getattr(args, "quick", False)))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
