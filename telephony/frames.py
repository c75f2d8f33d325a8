"""AMI framing, sans-I/O: bytes in, ``dict[str, str]`` frames out (h11 style), and a capture reader.

The Asterisk Manager Interface sends ``Key: Value`` lines ended by CRLF, one empty line after each
frame, and one banner line (``Asterisk Call Manager/11.0.0``) right after the TCP connect. Real-wire
quirks handled here (see tests/fixtures/ami/README.md):

* CRLF or bare LF line ends (captures store LF; a chunk may end between CR and LF);
* empty frames: an extra CRLF before a frame (``\\r\\n\\r\\n\\r\\n``) yields no frame;
* a key repeated inside one frame (``State:`` twice in a ``TestEvent``): the first value is kept,
  except ``ChanVariable: NAME=value`` lines, each kept as ``ChanVariable(NAME)``;
* empty values (``AccountCode: `` with a trailing space) become ``""``; values are stripped of
  surrounding blanks;
* the banner line (and any other line without a colon) is never turned into a header;
  the banner text is kept in ``FrameParser.banner``.

Nothing here does I/O or logs: the live AMI link (telephony.ami.protocol), ``cti replay``, the
tests and the benches all feed bytes and get the same frames.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

Frame = dict[str, str]

BANNER_PREFIX = "Asterisk Call Manager/"
# A frame larger than this without its end is garbage (or an attack): refuse rather than grow.
DEFAULT_MAX_FRAME_BYTES = 1 << 20


class FrameTooLarge(ValueError):
    """More than `max_frame_bytes` arrived without a frame end."""


_CHANNEL_VARIABLE_KEYS = frozenset({"ChanVariable", "DestChanVariable"})


def parse_frame(text: str) -> Frame:
    """Parse one frame's text (lines separated by LF, no CR) into a dict; first value of a key wins.

    ``ChanVariable: NAME=value`` (one line per variable listed in manager.conf ``channelvars``,
    ``DestChanVariable`` for the destination channel) becomes the key ``ChanVariable(NAME)``, so
    every variable is kept.
    """
    frame: Frame = {}
    for line in text.split("\n"):
        key, sep, value = line.partition(": ")  # the usual shape: one pass, no key strip
        if not sep:
            key, sep, value = line.partition(":")  # "Key:" with nothing after it
            if not sep:
                continue  # banner, or a stray line without a colon
            key = key.strip()
            if not key:
                continue
        if key in _CHANNEL_VARIABLE_KEYS:
            name, _, value = value.partition("=")
            key = f"{key}({name.strip()})"
        if key not in frame:
            frame[key] = value.strip()
    return frame


class FrameParser:
    """Incremental AMI frame parser: ``feed(data) -> list[Frame]``.

    Bytes may be split anywhere (inside a line, between CR and LF, inside a UTF-8 sequence).
    Call ``reset()`` on a new connection: the next connection starts with a banner again.
    """

    __slots__ = ("_buffer", "_max", "banner", "frames_parsed")

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 64:
            raise ValueError(f"max_frame_bytes must be >= 64, got {max_frame_bytes}")
        self._max = max_frame_bytes
        self._buffer = b""
        self.banner: str | None = None
        self.frames_parsed = 0

    def reset(self) -> None:
        """Forget any partial frame and the banner (a new TCP connection)."""
        self._buffer = b""
        self.banner = None

    @property
    def pending_bytes(self) -> int:
        """Bytes held back waiting for the end of a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return every frame they complete, in order (possibly none)."""
        if b"\r" in data:
            data = data.replace(b"\r", b"")
        buffer = self._buffer + data if self._buffer else data
        if b"\n\n" not in buffer:
            # Only the banner (a single LF-ended line before the first frame) ends without an
            # empty line; take it out as soon as it is complete.
            if self.banner is None and buffer.startswith(BANNER_PREFIX.encode()) and b"\n" in buffer:
                line, _, buffer = buffer.partition(b"\n")
                self.banner = line.decode("utf-8", "replace").strip()
            if len(buffer) > self._max:
                self._buffer = b""
                raise FrameTooLarge(f"AMI frame larger than {self._max} bytes without an end")
            self._buffer = buffer
            return []
        end = buffer.rfind(b"\n\n")
        rest = buffer[end + 2 :]
        if len(rest) > self._max:
            self._buffer = b""
            raise FrameTooLarge(f"AMI frame larger than {self._max} bytes without an end")
        self._buffer = rest
        frames: list[Frame] = []
        # One decode for every complete frame: the cut is at an ASCII LF, never inside a character.
        for text in buffer[:end].decode("utf-8", "replace").split("\n\n"):
            if not text or text == "\n":
                continue  # empty frame: extra CRLF on the wire
            if self.banner is None and text.startswith(BANNER_PREFIX):
                banner_line, _, text = text.partition("\n")
                self.banner = banner_line.strip()
            frame = parse_frame(text)
            if frame:
                frames.append(frame)
        self.frames_parsed += len(frames)
        return frames


# ---- captures (tests/fixtures/ami/*.txt) ---------------------------------------------------------

_RX = re.compile(r"^# rx=(\d+(?:\.\d+)?)")
_T = re.compile(r"\bt=([+-]?\d+(?:\.\d+)?)")
_EXTRA = re.compile(r"preceded on the wire by (\d+) extra CRLF")
_NEW_CONNECTION = "--- new TCP connection"


@dataclass(frozen=True)
class CapturedFrame:
    """One frame of a capture, with its receive time (unix seconds) and wire quirk notes."""

    frame: Frame
    rx: float | None
    t: float | None
    extra_crlf: int
    lines: tuple[str, ...]
    new_connection: bool = False  # a "new TCP connection" note came before this frame


def read_capture_text(text: str) -> Iterator[CapturedFrame]:
    """Frames of a capture's text: ``#`` lines are notes, frames are separated by blank lines.

    The ``# rx=... t=...`` note before a frame gives its time; ``(preceded on the wire by N extra
    CRLF)`` is recorded in ``extra_crlf``; a ``--- new TCP connection`` note sets ``new_connection``
    on the next frame. Other notes are skipped.
    """
    rx: float | None = None
    t: float | None = None
    extra = 0
    reconnected = False
    lines: list[str] = []

    def flush() -> CapturedFrame | None:
        nonlocal reconnected
        if not lines:
            return None
        captured = CapturedFrame(parse_frame("\n".join(lines)), rx, t, extra, tuple(lines), reconnected)
        lines.clear()
        reconnected = False
        return captured

    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if line.startswith("#"):
            done = flush()
            if done is not None:
                yield done
            if _NEW_CONNECTION in line:
                reconnected = True
            match = _RX.match(line)
            if match:
                rx = float(match.group(1))
                t_match = _T.search(line)
                t = float(t_match.group(1)) if t_match else None
                extra_match = _EXTRA.search(line)
                extra = int(extra_match.group(1)) if extra_match else 0
            continue
        if not line.strip():
            done = flush()
            if done is not None:
                yield done
                rx, t, extra = None, None, 0
            continue
        lines.append(line)
    done = flush()
    if done is not None:
        yield done


def read_capture(path: str | Path) -> list[CapturedFrame]:
    """All frames of a capture file (UTF-8)."""
    return list(read_capture_text(Path(path).read_text(encoding="utf-8")))


def capture_wire_bytes(frames: list[CapturedFrame], banner: str = "Asterisk Call Manager/11.0.0") -> bytes:
    """The bytes Asterisk sent: banner, CRLF lines, and the extra CRLFs the capture notes."""
    parts = [banner.encode() + b"\r\n"] if banner else []
    for captured in frames:
        parts.append(b"\r\n" * captured.extra_crlf)
        parts.append(("\r\n".join(captured.lines) + "\r\n\r\n").encode("utf-8"))
    return b"".join(parts)
