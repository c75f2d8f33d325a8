"""Record an AMI session as raw frames, in the format of tests/fixtures/ami/*.txt (read back by
telephony.frames.read_capture): ``#`` header lines, then each frame after a ``# rx=<unix> t=<s>``
line, CRLF written as LF, frames separated by one blank line.

Used by tests/e2e/test_sip_phones.py to record a real PJSIP call; the file it wrote on the
development machine is tests/fixtures/ami/06-sip-trunk-ivr-queue-refer-transfer.txt.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path


class AmiCapture:
    def __init__(self) -> None:
        self.banner = ""
        self.frames: list[tuple[float, list[str], int]] = []  # (rx time, lines, extra CRLFs before it)
        self.actions: list[tuple[float, str]] = []
        self.t0: float | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self, host: str, port: int, username: str, secret: str) -> None:
        self._reader, self._writer = await asyncio.open_connection(host, port)
        self.banner = (await asyncio.wait_for(self._reader.readline(), 5)).decode().strip()
        self._task = asyncio.create_task(self._read())
        self._writer.write(
            f"Action: Login\r\nUsername: {username}\r\nSecret: {secret}\r\nEvents: on\r\n\r\n".encode()
        )
        await self._writer.drain()
        login = f"at connect: Action: Login; Username: {username}; Secret: (lab); Events: on"
        self.actions.append((time.time(), login))

    def start_scenario(self) -> None:
        """`t` of every frame is measured from here."""
        self.t0 = time.time()

    def note_action(self, text: str) -> None:
        self.actions.append((time.time(), text))

    async def _read(self) -> None:
        assert self._reader is not None
        lines: list[str] = []
        blank_run = 0
        while True:
            raw = await self._reader.readline()
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if line:
                lines.append(line)
                continue
            if lines:
                self.frames.append((time.time(), lines, max(0, blank_run)))
                lines = []
                blank_run = 0
            else:
                blank_run += 1  # an extra CRLF between frames: a real wire quirk, kept in the notes

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def write(self, path: Path, scenario: str, asterisk_version: str) -> int:
        t0 = self.t0 if self.t0 is not None else (self.frames[0][0] if self.frames else time.time())
        out = [
            "# Real AMI capture (raw frames as received on the wire)",
            f"# Asterisk: {asterisk_version}",
            f"# AMI banner: {self.banner}",
            f"# Scenario {path.stem}: {scenario}",
            "# Produced by: tests/e2e/test_sip_phones.py (tests/e2e/ami_capture.py), real SIP user agents (baresip)",
            "# Format: AMI frames (Key: Value lines, one blank line between frames), CRLF normalised to LF.",
            "#   Each frame is preceded by one comment line \"# rx=<unix time> t=<seconds relative to the first",
            "#   scenario action>\" (host receive time of the line that completed the frame).",
            "#   A note \"(preceded on the wire by N extra CRLF)\" marks a frame that followed an extra empty line.",
            "# Actions and phone key presses (t relative to the first scenario action):",
        ]
        for at, text in self.actions:
            out.append(f"#   t={at - t0:+.6f} {text}")
        out.append(f"# Frames: {len(self.frames)}")
        out.append("")
        for rx, lines, extra in self.frames:
            note = f" (preceded on the wire by {extra} extra CRLF)" if extra else ""
            out.append(f"# rx={rx:.6f} t={rx - t0:+.6f}{note}")
            out.extend(lines)
            out.append("")
        path.write_text("\n".join(out), encoding="utf-8")
        return len(self.frames)
