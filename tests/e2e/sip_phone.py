"""A real SIP user agent for tests: one Debian ``baresip`` process on 127.0.0.1, driven over its
ctrl_tcp socket (netstring-framed JSON commands and events).

    phone = SipPhone("op101", tmp, user="101", password="lab-phone-secret-101", pbx_port=5060)
    await phone.start()                   # waits for REGISTER_OK when it registers
    await phone.wait_event("CALL_INCOMING"); await phone.accept()
    await phone.dial("0301110000"); await phone.send_dtmf("2"); await phone.transfer("201")
    phone.heard()                         # what it received, as a WAV (baresip's sndfile dump)

Audio without a sound card: the phone "speaks" a sine tone from a WAV file (aufile) and plays what
it receives into an aubridge device nobody reads; the sndfile module writes the decoded audio of
every call to <workdir>/sound, which is how a test hears what a caller heard. DTMF goes out as
RFC 4733 telephone-events (baresip's only mode). Codec: PCMU only, as the shipped pjsip.conf allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import shutil
import socket
import struct
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

BARESIP = "/usr/bin/baresip"
MODULES = "/usr/lib/baresip/modules"
Event = dict[str, Any]


def free_udp_port(low: int = 0, high: int = 0) -> int:
    """A UDP port free on 127.0.0.1: any (the kernel's choice), or a random one in [low, high]."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", random.randint(low, high) if high else 0))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError(f"no free UDP port in {low}-{high}")


def free_sip_port() -> int:
    """A port for a user agent's SIP: baresip listens on UDP and TCP at it and TLS at the next one.
    Taken below the kernel's ephemeral range (32768-), where outgoing connections do not land."""
    for _ in range(200):
        port = random.randint(30000, 32700)
        try:
            with contextlib.ExitStack() as stack:
                for kind, number in ((socket.SOCK_DGRAM, port), (socket.SOCK_STREAM, port),
                                     (socket.SOCK_STREAM, port + 1)):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, kind))
                    sock.bind(("127.0.0.1", number))
        except OSError:
            continue
        return port
    raise OSError("no free SIP port in 30000-32701")


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_tone(path: Path, hz: float, seconds: float = 180.0, rate: int = 8000) -> Path:
    """A mono 16-bit sine WAV at `rate` (what aufile sends for PCMU)."""
    frames = bytearray()
    for n in range(int(seconds * rate)):
        frames += struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * n / rate)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return path


def _netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


class SipPhone:
    def __init__(
        self,
        name: str,
        workdir: Path,
        *,
        user: str,
        pbx_port: int,
        password: str | None = None,
        register: bool = True,
        auto_answer: bool = False,
        sip_port: int | None = None,
        tone_hz: float = 440.0,
    ) -> None:
        self.name = name
        self.user = user
        self.pbx_port = pbx_port
        self.password = password
        self.register = register
        self.auto_answer = auto_answer
        self._fixed_port = sip_port is not None
        self.sip_port = sip_port or free_sip_port()
        self.ctrl_port = free_tcp_port()
        self.dir = workdir / name
        self.sound_dir = self.dir / "sound"
        self.tone_hz = tone_hz
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._responses: dict[str, asyncio.Future[Event]] = {}
        self._token = 0

    # ---- lifecycle --------------------------------------------------------------------------
    def _write_config(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sound_dir.mkdir(exist_ok=True)
        tone = write_tone(self.dir / "voice.wav", self.tone_hz)
        (self.dir / "config").write_text(
            "\n".join([
                "poll_method epoll",
                f"sip_listen 127.0.0.1:{self.sip_port}",
                "net_interface 127.0.0.1",
                "net_af ipv4",
                "call_local_timeout 120",
                f"audio_source aufile,{tone}",
                f"audio_player aubridge,{self.name}-ear",
                f"audio_alert aubridge,{self.name}-bell",
                "ausrc_channels 1",
                "auplay_channels 1",
                "rtp_ports 20000-29998",
                f"module_path {MODULES}",
                "module g711.so",
                "module aufile.so",
                "module aubridge.so",
                "module sndfile.so",
                "module_app account.so",
                "module_app menu.so",
                "module_app ctrl_tcp.so",
                f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
                f"snd_path {self.sound_dir}",
                "",
            ]),
            encoding="utf-8",
        )
        params = [f"answermode={'auto' if self.auto_answer else 'manual'}", "audio_codecs=PCMU"]
        if self.password is not None:
            params.append(f"auth_pass={self.password}")
        params.append("regint=300" if self.register else "regint=0")
        aor = f"<sip:{self.user}@127.0.0.1:{self.pbx_port}>"
        (self.dir / "accounts").write_text(aor + ";" + ";".join(params) + "\n", encoding="utf-8")
        (self.dir / "contacts").write_text("", encoding="utf-8")

    async def start(self, wait_s: float = 15) -> None:
        if shutil.which(BARESIP) is None:
            raise RuntimeError("baresip is not installed (apt-get install baresip-core; scripts/setup does it)")
        for attempt in range(3):
            try:
                await self._start(wait_s)
                return
            except BaseException as exc:
                # A phone that failed to start (did not register in time) must not keep running on its
                # port: a leftover dept201 made every later SIP test fail to bind.
                await self.stop()
                # Another process took the port between our check and baresip's bind: try another one.
                if (not isinstance(exc, RuntimeError) or self._fixed_port
                        or "Address already in use" not in str(exc) or attempt == 2):
                    raise
                self.sip_port, self.ctrl_port = free_sip_port(), free_tcp_port()

    async def _start(self, wait_s: float) -> None:
        self._write_config()
        with (self.dir / "baresip.log").open("wb") as log:  # the process keeps its own copy of the fd
            self._proc = await asyncio.create_subprocess_exec(
                BARESIP, "-f", str(self.dir), stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log
            )
        async with asyncio.timeout(wait_s):
            while True:
                try:
                    self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
                    break
                except OSError:
                    if self._proc.returncode is not None:
                        raise RuntimeError(f"baresip {self.name} exited: {self.log_tail()}") from None
                    await asyncio.sleep(0.05)
        self._task = asyncio.create_task(self._read())
        if self.register:
            # It may register before the control socket is up (no REGISTER_OK event then): ask.
            deadline = asyncio.get_running_loop().time() + wait_s
            while not await self.registered():
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"{self.name} did not register: {self.log_tail()}")
                await asyncio.sleep(0.1)

    async def registered(self) -> bool:
        info = await self.command("reginfo")
        return "\x1b[32mOK" in str(info.get("data")) or " OK " in str(info.get("data"))

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 5)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        path = self.dir / "baresip.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # ---- the control socket -----------------------------------------------------------------
    async def _read(self) -> None:
        assert self._reader is not None
        try:
            while True:
                length = int((await self._reader.readuntil(b":"))[:-1])
                payload = await self._reader.readexactly(length + 1)  # the trailing comma
                message: Event = json.loads(payload[:-1])
                if message.get("response"):
                    future = self._responses.pop(str(message.get("token")), None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif message.get("event"):
                    self.events.append(message)
                    self._changed.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._changed.set()

    async def command(self, command: str, params: str = "", wait_s: float = 5) -> Event:
        assert self._writer is not None, "start() first"
        self._token += 1
        token = str(self._token)
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._responses[token] = future
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._writer.write(_netstring(body))
        await self._writer.drain()
        return await asyncio.wait_for(future, wait_s)

    async def wait_event(
        self, kind: str, wait_s: float = 15, start: int = 0, where: Callable[[Event], bool] | None = None
    ) -> Event:
        """The first event of type `kind` (from index `start`), e.g. CALL_INCOMING, CALL_ESTABLISHED."""
        index = start
        async with asyncio.timeout(wait_s):
            while True:
                while index < len(self.events):
                    event = self.events[index]
                    index += 1
                    if event.get("type") == kind and (where is None or where(event)):
                        return event
                if self._proc is not None and self._proc.returncode is not None:
                    raise RuntimeError(f"baresip {self.name} exited: {self.log_tail()}")
                self._changed.clear()
                await self._changed.wait()

    def seen(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.get("type") == kind]

    # ---- what a person does with a phone ----------------------------------------------------
    async def dial(self, number: str) -> None:
        await self.command("dial", f"sip:{number}@127.0.0.1:{self.pbx_port}")

    async def accept(self) -> None:
        await self.command("accept")

    async def hangup(self) -> None:
        await self.command("hangup")

    async def send_dtmf(self, digits: str) -> None:
        """RFC 4733 telephone-events on the current call."""
        await self.command("sndcode", digits)

    async def transfer(self, number: str) -> None:
        """The phone's own transfer key: a blind transfer by SIP REFER."""
        await self.command("transfer", number)

    def heard(self) -> list[Path]:
        """WAV files of the audio this phone received (decoded), one per call so far."""
        return sorted(p for p in self.sound_dir.glob("*.wav") if "-dec" in p.name)
