"""Fuzzing the AMI frame parser (telephony/frames.py): arbitrary bytes cut anywhere.

Claims: ``FrameParser.feed`` only ever raises ``FrameTooLarge``; the bytes it holds back never
exceed its limit; well-formed frames come out identical however the stream is cut, with garbage
between them or not. CI runs a few thousand hypothesis examples; CTI_FUZZ_LONG=1 adds a seeded
random run of 1,000,000 chunks (and 20x the hypothesis examples).
"""

from __future__ import annotations

import random
import time

from fuzz_support import LONG, figures
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony.frames import FrameParser, FrameTooLarge, parse_frame

EXAMPLES = 40_000 if LONG else 2_000
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
COUNTS = {"arbitrary_bytes": 0, "well_formed": 0}

KEY = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":"),
              min_size=1, max_size=12)
VALUE = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40).map(str.strip)
FRAME = st.dictionaries(KEY, VALUE, min_size=1, max_size=8)


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return pieces


def feed_all(parser: FrameParser, pieces: list[bytes]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for piece in pieces:
        try:
            out += parser.feed(piece)
        except FrameTooLarge:
            assert parser.pending_bytes == 0  # the oversized frame was dropped, not kept
        assert parser.pending_bytes <= parser._max
    return out


@FUZZ
@given(st.binary(max_size=2048), st.lists(st.integers(0, 4096), max_size=30), st.integers(64, 512))
def test_arbitrary_bytes_never_crash_and_stay_bounded(data: bytes, cuts: list[int], limit: int) -> None:
    COUNTS["arbitrary_bytes"] += 1
    parser = FrameParser(max_frame_bytes=limit)
    for frame in feed_all(parser, cut(data, cuts)):
        assert frame and all(isinstance(k, str) and isinstance(v, str) for k, v in frame.items())
        assert all(k and k == k.strip() for k in frame)


def wire(frame: dict[str, str], crlf: bool) -> bytes:
    end = "\r\n" if crlf else "\n"
    return (end.join(f"{k}: {v}" for k, v in frame.items()) + end + end).encode()


@FUZZ
@given(st.lists(FRAME, min_size=1, max_size=6), st.lists(st.integers(0, 4096), max_size=30), st.booleans(),
       st.integers(0, 3))
def test_well_formed_frames_survive_any_cut(frames: list[dict[str, str]], cuts: list[int], crlf: bool,
                                            extra: int) -> None:
    COUNTS["well_formed"] += 1
    data = b"Asterisk Call Manager/11.0.0\r\n" + b"".join(b"\r\n" * extra + wire(f, crlf) for f in frames)
    parser = FrameParser()
    got = feed_all(parser, cut(data, cuts))
    assert got == [parse_frame("\n".join(f"{k}: {v}" for k, v in f.items())) for f in frames]
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert parser.pending_bytes == 0


def test_zz_figures_short_run() -> None:
    figures("fuzz_frames", hypothesis_examples=dict(COUNTS), long_mode=LONG)
    assert COUNTS["arbitrary_bytes"] > 0 and COUNTS["well_formed"] > 0


def test_long_random_stream() -> None:
    """1,000,000 random chunks in long mode (10,000 in CI): garbage, frames, oversized runs."""
    chunks = 1_000_000 if LONG else 10_000
    rnd = random.Random(20261128)
    parser = FrameParser(max_frame_bytes=4096)
    good = b"Event: Newchannel\r\nChannel: PJSIP/op101-00000001\r\nUniqueid: 1.1\r\n\r\n"
    frames = too_large = 0
    started = time.monotonic()
    for _ in range(chunks):
        kind = rnd.random()
        if kind < 0.4:
            piece = rnd.randbytes(rnd.randint(0, 64))
        elif kind < 0.8:
            at = rnd.randint(0, len(good))
            piece = good[:at] if rnd.random() < 0.5 else good[at:]
        elif kind < 0.99:
            piece = good
        else:
            piece = b"X" * rnd.randint(100, 5000)  # no frame end
        try:
            frames += len(parser.feed(piece))
        except FrameTooLarge:
            too_large += 1
        assert parser.pending_bytes <= 4096
    elapsed = time.monotonic() - started
    # the parser still works: a clean frame after the storm comes out intact
    parser.feed(b"\r\n\r\n")
    assert parser.feed(good) == [{"Event": "Newchannel", "Channel": "PJSIP/op101-00000001", "Uniqueid": "1.1"}]
    figures("fuzz_frames", random_chunks=chunks, frames_out=frames, frame_too_large=too_large,
            random_seconds=round(elapsed, 1))
    assert frames > 0
