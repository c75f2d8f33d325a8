"""A small AMI server on a real TCP socket, for adapter tests.

It speaks enough of Asterisk 22's manager protocol to exercise the real AMI client: the banner,
Login (with the `Events:` class mask), per-session `Filter` (the advanced include/exclude syntax
the client uses), Ping, CoreShowChannels and QueueStatus lists, Getvar, and answers for Originate,
Redirect, Hangup and QueuePause. Recorded captures (tests/fixtures/ami/*.txt) are replayed frame by
frame once the scenario's Originate actions have arrived, with the capture's ActionIDs replaced by
the client's, exactly as Asterisk would echo them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
_EXTRA_CRLF = re.compile(r"preceded on the wire by (\d+) extra CRLF")
_T = re.compile(r"\bt=([+-]\d+\.\d+)")
_ACTION_ID = re.compile(r"ActionID: ([^;\s]+)")


@dataclass
class Frame:
    lines: list[str]
    t: float
    extra_crlf: int = 0

    @property
    def headers(self) -> dict[str, str]:
        return parse_headers(self.lines)

    def wire(self, id_map: dict[str, str]) -> bytes:
        lines = []
        for line in self.lines:
            key, sep, value = line.partition(": ")
            if sep and key == "ActionID" and value in id_map:
                line = f"ActionID: {id_map[value]}"
            lines.append(line)
        return b"\r\n" * self.extra_crlf + ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Capture:
    name: str
    originate_ids: list[str]
    frames: list[Frame]  # from the first scenario action on (login frames left out)
    login_frames: list[Frame]

    @property
    def events(self) -> list[dict[str, str]]:
        return [f.headers for f in self.frames if "Event" in f.headers]


def parse_headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep:
            headers[key] = value[1:] if value.startswith(" ") else value
    return headers


def load_capture(name: str) -> Capture:
    """Parse a capture: '#' lines dropped, frames split on blank lines, timing notes kept."""
    path = FIXTURES / name
    originate_ids: list[str] = []
    frames: list[Frame] = []
    current: list[str] = []
    t = 0.0
    extra = 0
    connection_lost = False

    def flush() -> None:
        nonlocal current, extra
        if current and not connection_lost:
            frames.append(Frame(current, t, extra))
        current, extra = [], 0

    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("#"):
            flush()
            if raw.startswith("#   t=") and "Action: Originate" in raw:
                match = _ACTION_ID.search(raw)
                if match:
                    originate_ids.append(match.group(1))
            if "--- connection lost" in raw:
                connection_lost = True  # 08: what follows is the next session's login
            if raw.startswith("# rx="):
                found = _T.search(raw)
                t = float(found.group(1)) if found else t
                more = _EXTRA_CRLF.search(raw)
                extra = int(more.group(1)) if more else 0
            continue
        if raw == "":
            flush()
            continue
        current.append(raw)
    flush()
    return Capture(
        name=name,
        originate_ids=originate_ids,
        frames=[f for f in frames if f.t >= 0],
        login_frames=[f for f in frames if f.t < 0],
    )


@dataclass
class _Filter:
    include: bool
    name: str | None
    header: str | None
    regex: re.Pattern[str] | None


_CRITERIA = re.compile(r"(action|name|header|method)\(([^)]*)\)")


def _parse_filter(action: dict[str, str]) -> _Filter:
    criteria = dict(_CRITERIA.findall(action.get("MatchCriteria", "")))
    text = action.get("Filter", "")
    include = criteria.get("action", "include") == "include"
    if not criteria and text.startswith("!"):
        include, text = False, text[1:]
    method = criteria.get("method", "regex" if text else "none")
    if method not in ("regex", "none"):
        raise ValueError(f"method {method} not emulated")
    return _Filter(include, criteria.get("name"), criteria.get("header"), re.compile(text) if text else None)


def _matches(flt: _Filter, headers: dict[str, str], payload: str) -> bool:
    if flt.name is not None and headers.get("Event") != flt.name:
        return False
    if flt.header is not None:
        if flt.header not in headers:
            return False
        return flt.regex is None or flt.regex.search(headers[flt.header]) is not None
    return flt.regex is None or flt.regex.search(payload) is not None


@dataclass
class Session:
    writer: asyncio.StreamWriter
    actions: list[dict[str, str | list[str]]] = field(default_factory=list)
    filters: list[_Filter] = field(default_factory=list)
    event_mask: set[str] | None = None  # None = all ("on")
    logged_in: bool = False
    id_map: dict[str, str] = field(default_factory=dict)

    def wants(self, frame: Frame) -> bool:
        headers = frame.headers
        if "Event" not in headers:
            return True
        if self.event_mask is not None:
            classes = {c.strip() for c in headers.get("Privilege", "").split(",")} - {"all"}
            if not classes & self.event_mask:
                return False
        payload = "\r\n".join(frame.lines)
        includes = [f for f in self.filters if f.include]
        excludes = [f for f in self.filters if not f.include]
        if includes and not any(_matches(f, headers, payload) for f in includes):
            return False
        return not any(_matches(f, headers, payload) for f in excludes)


class AmiReplayServer:
    def __init__(self, *, username: str = "cti", secret: str = "s3cret") -> None:
        self.username = username
        self.secret = secret
        self.sessions: list[Session] = []
        self.channels: list[dict[str, str]] = []  # CoreShowChannel bodies
        self.queue_status: list[dict[str, str]] = []  # QueueParams / QueueMember / QueueEntry bodies
        self.channel_vars: dict[tuple[str, str], str] = {}
        self.errors: dict[str, str] = {}  # action name (lower) -> Error message to answer
        self.silent: set[str] = set()  # action names (lower) never answered
        self.frozen = False  # answer nothing at all (a half-open peer)
        self.scenario: Capture | None = None
        self.on_action: Callable[[Session, dict[str, str | list[str]]], None] | None = None
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.replays_done = asyncio.Event()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        await self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drop(self) -> None:
        """Close every client connection from the server side (like Asterisk going away)."""
        for session in self.sessions:
            session.writer.close()
            with contextlib.suppress(Exception):
                await session.writer.wait_closed()

    @property
    def current(self) -> Session:
        return self.sessions[-1]

    @property
    def logins(self) -> int:
        return sum(1 for s in self.sessions if s.logged_in)

    def actions_named(self, name: str) -> list[dict[str, str | list[str]]]:
        return [a for s in self.sessions for a in s.actions if str(a.get("Action", "")).lower() == name.lower()]

    async def push(self, frames: list[Frame], id_map: dict[str, str] | None = None) -> None:
        session = self.current
        for frame in frames:
            if session.wants(frame):
                session.writer.write(frame.wire(id_map or session.id_map))
        await session.writer.drain()

    async def push_raw(self, data: bytes) -> None:
        self.current.writer.write(data)
        await self.current.writer.drain()

    def push_event(self, headers: dict[str, str]) -> None:
        frame = Frame([f"{k}: {v}" for k, v in headers.items()], 0.0)
        session = self.current
        if session.wants(frame):
            session.writer.write(frame.wire({}))

    # ---- protocol -----------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(writer)
        self.sessions.append(session)
        writer.write(BANNER)
        try:
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                action: dict[str, str | list[str]] = {}
                for line in raw.decode().split("\r\n"):
                    key, sep, value = line.partition(": ")
                    if not sep:
                        continue
                    if key in action:
                        old = action[key]
                        action[key] = [*(old if isinstance(old, list) else [old]), value]
                    else:
                        action[key] = value
                session.actions.append(action)
                if self.on_action is not None:
                    self.on_action(session, action)
                if not self.frozen:
                    self._answer(session, action)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _write(self, session: Session, headers: dict[str, str]) -> None:
        session.writer.write(Frame([f"{k}: {v}" for k, v in headers.items()], 0.0).wire({}))

    def _answer(self, session: Session, action: dict[str, str | list[str]]) -> None:
        name = str(action.get("Action", "")).lower()
        aid = str(action.get("ActionID", ""))
        if name in self.silent:
            return
        if name in self.errors:
            self._write(session, {"Response": "Error", "ActionID": aid, "Message": self.errors[name]})
            return
        ok = {"Response": "Success", "ActionID": aid}
        if name == "login":
            if action.get("Username") != self.username or action.get("Secret") != self.secret:
                self._write(session, {"Response": "Error", "ActionID": aid, "Message": "Authentication failed"})
                session.writer.close()
                return
            events = str(action.get("Events", "on")).lower()
            session.event_mask = None if events in ("on", "yes", "all") else set(events.split(","))
            session.logged_in = True
            self._write(session, {**ok, "Message": "Authentication accepted"})
            booted = Frame(
                ["Event: FullyBooted", "Privilege: system,all", "Uptime: 5", "LastReload: 5", "Status: Fully Booted"],
                0.0,
            )
            if session.wants(booted):
                session.writer.write(booted.wire({}))
        elif not session.logged_in:
            self._write(session, {"Response": "Error", "ActionID": aid, "Message": "Permission denied"})
        elif name == "filter":
            session.filters.append(_parse_filter({k: str(v) for k, v in action.items()}))
            self._write(session, {**ok, "Message": "Filter Added"})
        elif name == "ping":
            self._write(session, {**ok, "Ping": "Pong", "Timestamp": "1795822481.567795"})
        elif name == "coreshowchannels":
            self._list(
                session,
                aid,
                "Channels will follow",
                [{"Event": "CoreShowChannel", "ActionID": aid, **c} for c in self.channels],
                "CoreShowChannelsComplete",
            )
        elif name == "queuestatus":
            self._list(
                session,
                aid,
                "Queue status will follow",
                [{**e, "ActionID": aid} for e in self.queue_status],
                "QueueStatusComplete",
            )
        elif name == "getvar":
            key = (str(action.get("Channel", "")), str(action.get("Variable", "")))
            self._write(session, {**ok, "Variable": key[1], "Value": self.channel_vars.get(key, "")})
        elif name == "originate":
            if self.scenario is not None:
                pending = [i for i in self.scenario.originate_ids if i not in session.id_map]
                if pending:
                    session.id_map[pending[0]] = aid
                    if len(pending) == 1:
                        self._spawn(self._replay(session, self.scenario))
                    return  # the capture's own Response frame answers it
            self._write(session, {**ok, "Message": "Originate successfully queued"})
        elif name == "setvar":  # e.g. cti's routing state (a global variable)
            self._write(session, {**ok, "Message": "Variable Set"})
        elif name in ("redirect", "hangup", "queuepause"):
            self._write(
                session,
                {
                    **ok,
                    "Message": {
                        "redirect": "Redirect successful",
                        "hangup": "Channel Hungup",
                        "queuepause": "Interface paused successfully",
                    }[name],
                },
            )
        else:
            self._write(session, {"Response": "Error", "ActionID": aid, "Message": "Invalid/unknown command"})

    def _list(self, session: Session, aid: str, message: str, items: list[dict[str, str]], done: str) -> None:
        self._write(session, {"Response": "Success", "ActionID": aid, "EventList": "start", "Message": message})
        for item in items:
            self._write(session, item)
        self._write(session, {"Event": done, "ActionID": aid, "EventList": "Complete", "ListItems": str(len(items))})

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replay(self, session: Session, capture: Capture) -> None:
        for frame in capture.frames:
            if session.wants(frame):
                session.writer.write(frame.wire(session.id_map))
                await asyncio.sleep(0)  # let frames arrive in several TCP reads
        await session.writer.drain()
        self.replays_done.set()
