"""Record real AMI captures from the lab PBX (scripts/pbx) in the format of tests/fixtures/ami/README.md.

    uv run --frozen python -m tests.ami_capture_recorder [SCENARIO ...]

Starts a private PBX instance (``running_pbx`` of tests/e2e, unique CTI_PBX_INSTANCE), logs in as the
lab's all-rights ``cti-admin`` with every event on (the full stream, like the 2026-11-27 captures),
runs each scenario and writes ``tests/fixtures/ami/<scenario>.txt``: ``#`` header lines, then every
frame as received (CRLF written as LF), each after a ``# rx=<unix time> t=<s>`` line. No FastAGI
server listens on the AGI port, so the dialplan's static fallback schedule routes the call
(``CTI_ROUTE_SOURCE=fallback``); the lab's fallback hours are 08:00-22:00 Asia/Tokyo.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.conftest import Pbx, running_pbx

OUT = Path(__file__).resolve().parent / "fixtures" / "ami"
Frame = dict[str, str]


@dataclass
class Recorder:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    banner: str = ""
    frames: list[tuple[float, bytes, int, Frame]] = field(default_factory=list)  # rx, raw text, extra CRLF
    actions: list[tuple[float, str]] = field(default_factory=list)
    t0: float | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _next_id: int = 0

    async def read(self) -> None:
        buffer = b""
        while True:
            chunk = await self.reader.read(65536)
            if not chunk:
                return
            rx = time.time()
            buffer += chunk
            if not self.banner and b"\r\n" in buffer:
                banner, _, buffer = buffer.partition(b"\r\n")
                self.banner = banner.decode()
            while (end := buffer.find(b"\r\n\r\n")) >= 0:
                raw, buffer = buffer[:end], buffer[end + 4:]
                extra = 0
                while raw.startswith(b"\r\n"):
                    raw, extra = raw[2:], extra + 1
                if not raw:
                    continue
                text = raw.decode("utf-8", "replace").replace("\r\n", "\n")
                frame: Frame = {}
                for header in text.split("\n"):
                    key, sep, value = header.partition(":")
                    if sep and key not in frame:
                        frame[key] = value.strip()
                self.frames.append((rx, text.encode(), extra, frame))
                self.changed.set()

    async def send(self, **fields: str) -> None:
        self._next_id += 1
        fields.setdefault("ActionID", f"rec-{self._next_id}")
        now = time.time()
        if self.t0 is None and fields.get("Action") != "Login":
            self.t0 = now
        shown = "; ".join(f"{k}: {'***' if k == 'Secret' else v}" for k, v in fields.items())
        self.actions.append((now, shown))
        self.writer.write(("\r\n".join(f"{k}: {v}" for k, v in fields.items()) + "\r\n\r\n").encode())
        await self.writer.drain()

    async def wait(self, predicate: Callable[[Frame], bool], within: float = 60.0, start: int = 0) -> Frame:
        deadline = time.monotonic() + within
        index = start
        while True:
            while index < len(self.frames):
                frame = self.frames[index][3]
                index += 1
                if predicate(frame):
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("capture: event not seen in time")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except TimeoutError:
                pass

    async def quiet(self, seconds: float = 2.0) -> None:
        """Until no frame arrived for `seconds`."""
        while True:
            count = len(self.frames)
            await asyncio.sleep(seconds)
            if len(self.frames) == count:
                return

    def write(self, name: str, description: str, version: str) -> Path:
        t0 = self.t0 or 0.0
        lines = [
            "# Real AMI capture (tests/ami_capture_recorder.py, raw frames as received on the wire)",
            f"# Asterisk: {version}",
            f"# AMI banner: {self.banner}",
            f"# Scenario {name}: {description}",
            f"# Produced by: uv run --frozen python -m tests.ami_capture_recorder {name}",
            "# Format: AMI frames (Key: Value lines, one blank line between frames), CRLF normalised to LF.",
            "#   Each frame is preceded by one comment line \"# rx=<unix time> t=<seconds relative to the first",
            "#   scenario action written>\" (host receive time of the TCP chunk that completed the frame).",
            "#   Includes the Login response and all events/responses received until the stream was quiet.",
            "#   A note \"(preceded on the wire by N extra CRLF)\" marks a frame that followed an extra empty line.",
            "# Actions sent by the client (t relative to the first scenario action):",
        ]
        for at, shown in self.actions:
            lines.append(f"#   t={at - t0:+.6f} {shown}")
        lines.append("# FastAGI server side: none listening; the dialplan's static fallback schedule routed the call")
        lines.append(f"# Frames: {len(self.frames)}")
        lines.append("")
        for rx, raw, extra, _frame in self.frames:
            note = f" (preceded on the wire by {extra} extra CRLF)" if extra else ""
            lines.append(f"# rx={rx:.6f} t={rx - t0:+.6f}{note}")
            lines.append(raw.decode("utf-8", "replace"))
            lines.append("")
        path = OUT / f"{name}.txt"
        path.write_text("\n".join(lines), encoding="utf-8")
        return path


def _is(name: str, **headers: str) -> Callable[[Frame], bool]:
    return lambda f: f.get("Event") == name and all(f.get(k) == v for k, v in headers.items())


async def _inbound(rec: Recorder, action_id: str) -> None:
    await rec.send(Action="Originate", Channel="Local/0301110000@from-pstn", Context="citizen-sim", Exten="talk",
                   Priority="1", CallerID='"Citizen One" <0312345678>', Timeout="30000", Async="true",
                   ActionID=action_id)


async def _all_hung_up(rec: Recorder, start: int, within: float = 60.0) -> None:
    """Until every channel created since frame `start` has hung up."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        frames = [f for _, _, _, f in rec.frames[start:]]
        made = {f["Uniqueid"] for f in frames if f.get("Event") == "Newchannel"}
        gone = {f["Uniqueid"] for f in frames if f.get("Event") == "Hangup"}
        if made and made <= gone:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("capture: channels still up")


async def requeue_second_operator(rec: Recorder, pbx: Pbx) -> None:
    """101 answers, call control sends the citizen back to the queue (Redirect to cti-queue), 102 answers."""
    start = len(rec.frames)
    pbx.set_global("SIM_OP_TALK_TIME", "4")
    pbx.set_global("SIM_OP102", "noanswer")  # the first round goes to 101
    await _inbound(rec, "requeue-call")
    connect = await rec.wait(_is("AgentConnect"), start=start)
    pbx.set_global("SIM_OP102", "answer")
    pbx.set_global("SIM_OP101", "noanswer")  # the second round: 101 would not answer anyway (wrap-up)
    await asyncio.sleep(0.5)
    await rec.send(Action="Redirect", Channel=connect["Channel"], Context="cti-queue", Exten="s", Priority="1")
    await rec.wait(lambda f: f.get("Event") == "AgentConnect" and f is not connect, start=start + 1, within=40)
    await _all_hung_up(rec, start)


async def transfer_citizen_hangs_up(rec: Recorder, pbx: Pbx) -> None:
    """101 answers, call control Redirects the citizen to department 201, the citizen hangs up on 201."""
    start = len(rec.frames)
    pbx.set_global("SIM_OP_TALK_TIME", "30")  # operators and departments talk long ...
    pbx.set_global("SIM_CALLER_WAIT", "16")  # ... the citizen hangs up first (the IVR alone takes ~7.5 s)
    await _inbound(rec, "transfer-call")
    connect = await rec.wait(_is("AgentConnect"), start=start)
    await asyncio.sleep(0.5)
    await rec.send(Action="Redirect", Channel=connect["Channel"], Context="departments", Exten="201", Priority="1")
    await _all_hung_up(rec, start)


async def blind_transfer_key(rec: Recorder, pbx: Pbx) -> None:
    """101 answers and presses its phone's blind transfer (AMI BlindTransfer of its own channel) to 201."""
    start = len(rec.frames)
    pbx.set_global("SIM_OP_TALK_TIME", "30")
    pbx.set_global("SIM_CALLER_WAIT", "16")
    await _inbound(rec, "blind-call")
    connect = await rec.wait(_is("AgentConnect"), start=start)
    await asyncio.sleep(0.5)
    await rec.send(Action="BlindTransfer", Channel=connect["DestChannel"], Context="departments", Exten="201")
    await _all_hung_up(rec, start)


async def consult_call(rec: Recorder, pbx: Pbx) -> None:
    """Operator 102's phone calls department 201 itself (a consult leg: neither inbound nor callback)."""
    start = len(rec.frames)
    pbx.set_global("SIM_OP_TALK_TIME", "6")
    await rec.send(Action="Originate", Channel="Local/102@operator-phones", Context="departments", Exten="201",
                   Priority="1", CallerID='"Operator 102" <102>', Timeout="30000", Async="true",
                   ActionID="consult-call")
    await _all_hung_up(rec, start)


async def blind_transfer_phone_context(rec: Recorder, pbx: Pbx) -> None:
    """As 13, but the phone's transfer context is a site context that jumps into departments (added
    to the running lab dialplan only: ``[phone-transfer] exten => _X.,1,Goto(departments,${EXTEN},1)``)."""
    pbx.cli("dialplan add extension _X.,1,Goto(departments,${EXTEN},1) into phone-transfer")
    start = len(rec.frames)
    pbx.set_global("SIM_OP_TALK_TIME", "30")
    pbx.set_global("SIM_CALLER_WAIT", "16")
    await _inbound(rec, "phone-transfer-call")
    connect = await rec.wait(_is("AgentConnect"), start=start)
    await asyncio.sleep(0.5)
    await rec.send(Action="BlindTransfer", Channel=connect["DestChannel"], Context="phone-transfer", Exten="201")
    await _all_hung_up(rec, start)


async def transfer_department_hangs_up(rec: Recorder, pbx: Pbx) -> None:
    """As 12, but the department hangs up first (talk 4 s) while the citizen stays on the line."""
    start = len(rec.frames)
    pbx.set_global("SIM_OP_TALK_TIME", "4")
    pbx.set_global("SIM_CALLER_WAIT", "40")
    await _inbound(rec, "department-hangup-call")
    connect = await rec.wait(_is("AgentConnect"), start=start)
    await asyncio.sleep(0.5)
    await rec.send(Action="Redirect", Channel=connect["Channel"], Context="departments", Exten="201", Priority="1")
    await _all_hung_up(rec, start)


SCENARIOS: dict[str, tuple[str, Callable[[Recorder, Pbx], Awaitable[None]]]] = {
    "11-requeue-second-operator": (
        "Inbound call 0312345678 -> 0301110000, member Local/101 answers; the citizen's trunk leg is Redirected to "
        "cti-queue (back into the queue); Local/102 answers the second round and hangs up after 4 s.",
        requeue_second_operator),
    "12-transfer-citizen-hangs-up": (
        "Inbound call answered by Local/101; the citizen's trunk leg is Redirected to 201@departments; the "
        "department answers after 1 s; the citizen hangs up on the department (caller Wait 16 s).",
        transfer_citizen_hangs_up),
    "13-blind-transfer-key": (
        "Inbound call answered by Local/101; AMI BlindTransfer of 101's own channel (its phone's transfer key) to "
        "201@departments; the department answers; the citizen hangs up (caller Wait 16 s).",
        blind_transfer_key),
    "14-consult-call": (
        "Operator phone Local/102@operator-phones calls department 201@departments itself (AMI Originate, a consult "
        "leg: neither an inbound call nor a callback); 102 hangs up after 6 s.",
        consult_call),
    "15-blind-transfer-phone-context": (
        "Inbound call answered by a member; AMI BlindTransfer of the member's own channel (its phone's transfer "
        "key) to 201 in the phone's transfer context phone-transfer, which Goto()s 201@departments (a context "
        "added to the running lab dialplan by the recorder); the department answers; the citizen hangs up.",
        blind_transfer_phone_context),
    "16-transfer-department-hangs-up": (
        "Inbound call answered by a member; the citizen's trunk leg is Redirected to 201@departments; the "
        "department answers and hangs up after 4 s; the dialplan then plays its prompt and hangs the citizen up.",
        transfer_department_hangs_up),
}


async def record(pbx: Pbx, name: str) -> Path:
    description, scenario = SCENARIOS[name]
    pbx.reset_globals()
    version = pbx.cli("core show version").strip()
    reader, writer = await asyncio.open_connection(pbx.ami_host, pbx.ami_port)
    rec = Recorder(reader, writer)
    task = asyncio.create_task(rec.read())
    try:
        await rec.send(Action="Login", Username=pbx.admin_username, Secret=pbx.admin_secret, Events="on")
        await rec.wait(lambda f: f.get("Event") == "FullyBooted")
        await asyncio.sleep(0.5)
        await asyncio.wait_for(scenario(rec, pbx), 120)
        await rec.quiet()
    finally:
        writer.close()
        task.cancel()
    return rec.write(name, description, version)


async def main(names: list[str]) -> None:
    with running_pbx(f"capture-{os.getpid()}") as pbx:
        for name in names or list(SCENARIOS):
            print(record_path := await record(pbx, name), flush=True)
            del record_path


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
