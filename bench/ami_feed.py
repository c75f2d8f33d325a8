"""A local AMI server that streams the real Asterisk 22 captures, re-keyed so every call is unique.

Used by the benchmarks only. It answers the banner and Login (any other action gets a plain
Success), then streams `calls` copies of the chosen captures' call events back to back, at `rate`
events per second (0 = as fast as the socket takes them).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telephony.frames import read_capture

CAPTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ami"
SCENARIOS = ("01-inbound-queue-answered.txt", "02-inbound-queue-abandon.txt", "03-inbound-closed-hours.txt",
             "04-outbound-callback.txt", "05-two-concurrent-calls.txt")
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
_LISTS = {"coreshowchannels": "CoreShowChannelsComplete", "queuestatus": "QueueStatusComplete"}
_UNIQUEID = re.compile(r"\b(\d{10})\.(\d+)\b")
_LOCAL_SUFFIX = re.compile(r"-([0-9a-f]{8});")
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def capture_frames(path: Path) -> list[str]:
    """The call events of a capture as wire text (without the final CRLF CRLF), login frames left out."""
    # The first three frames are the login exchange (Response, FullyBooted, SuccessfulAuth).
    frames = read_capture(path)[3:]
    return ["\n".join(f.lines) for f in frames if f.lines and f.lines[0].startswith("Event:")]


def rekey(frame: str, copy: int) -> str:
    """The same frame as it would look for the `copy`-th distinct call."""
    frame = _UNIQUEID.sub(lambda m: f"{2_000_000_000 + copy}.{m.group(2)}", frame)
    frame = _LOCAL_SUFFIX.sub(lambda m: f"-{(copy << 12) | int(m.group(1), 16):08x};", frame)
    return _UUID.sub(lambda m: str(uuid.uuid5(uuid.NAMESPACE_OID, f"{m.group(0)}/{copy}")), frame)


def stream(calls: int, scenarios: tuple[str, ...] = SCENARIOS) -> Iterator[bytes]:
    templates = [capture_frames(CAPTURES / name) for name in scenarios]
    for copy in range(calls):
        for frame in templates[copy % len(templates)]:
            yield (rekey(frame, copy).replace("\n", "\r\n") + "\r\n\r\n").encode()


def encoded_stream(calls: int, scenarios: tuple[str, ...] = SCENARIOS) -> list[bytes]:
    return list(stream(calls, scenarios))


@dataclass
class AmiFeedServer:
    frames: list[bytes]
    rate: float = 0.0  # events per second; 0 = unthrottled
    port: int = 0
    sent: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _sessions: dict[asyncio.Task[Any], asyncio.StreamWriter] = field(default_factory=dict)

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            # End live sessions by closing their sockets (their reads see EOF) rather than leaving
            # them to asyncio.run's cancellation, which logs a CancelledError from asyncio.streams.
            for writer in self._sessions.values():
                writer.close()
            if self._sessions:
                await asyncio.wait(list(self._sessions), timeout=5)
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        streaming: asyncio.Task[None] | None = None
        session = asyncio.current_task()
        if session is not None:
            self._sessions[session] = writer
        try:
            while True:
                action = await _read_frame(reader)
                if action is None:
                    break
                action_id = action.get("actionid", "")
                name = action.get("action", "").lower()
                if name in _LISTS:
                    writer.write(f"Response: Success\r\nActionID: {action_id}\r\nEventList: start\r\n"
                                 f"Message: list follows\r\n\r\nEvent: {_LISTS[name]}\r\nActionID: {action_id}\r\n"
                                 "EventList: Complete\r\nListItems: 0\r\n\r\n".encode())
                else:
                    writer.write(f"Response: Success\r\nActionID: {action_id}\r\nMessage: ok\r\n\r\n".encode())
                if name == "login" and streaming is None:
                    writer.write(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n")
                    streaming = asyncio.create_task(self._stream(writer))
        finally:
            if streaming is not None:
                streaming.cancel()
                await asyncio.gather(streaming, return_exceptions=True)
            writer.close()
            if session is not None:
                self._sessions.pop(session, None)

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        batch = 64
        interval = batch / self.rate if self.rate else 0.0
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(0, len(self.frames), batch):
            writer.write(b"".join(self.frames[i : i + batch]))
            self.sent += len(self.frames[i : i + batch])
            await writer.drain()
            if interval:
                delay = start + (i // batch + 1) * interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
        self.done.set()


async def _read_frame(reader: asyncio.StreamReader) -> dict[str, str] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    headers: dict[str, str] = {}
    for line in raw.decode(errors="replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return headers
