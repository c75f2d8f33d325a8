"""The AMI frame parser and the capture reader, against the real captures' wire quirks."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telephony.frames import (
    FrameParser,
    FrameTooLarge,
    capture_wire_bytes,
    parse_frame,
    read_capture,
    read_capture_text,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
# Frame counts stated in the captures' README (and their "# Frames:" header line).
README_FRAME_COUNTS = {
    "01-inbound-queue-answered.txt": 120,
    "02-inbound-queue-abandon.txt": 133,
    "03-inbound-closed-hours.txt": 39,
    "04-outbound-callback.txt": 114,
    "05-two-concurrent-calls.txt": 235,
    "08-ami-restart-reconnect.txt": 7,
    "11-requeue-second-operator.txt": 255,
    "12-transfer-citizen-hangs-up.txt": 239,
    "13-blind-transfer-key.txt": 244,
    "14-consult-call.txt": 101,
    "15-blind-transfer-phone-context.txt": 245,
    "16-transfer-department-hangs-up.txt": 240,
}


def test_crlf_frames_and_the_banner() -> None:
    parser = FrameParser()
    data = (
        b"Asterisk Call Manager/11.0.0\r\n"
        b"Response: Success\r\nActionID: a1\r\nMessage: Authentication accepted\r\n\r\n"
        b"Event: FullyBooted\r\nPrivilege: system,all\r\n\r\n"
    )
    frames = parser.feed(data)
    assert frames == [
        {"Response": "Success", "ActionID": "a1", "Message": "Authentication accepted"},
        {"Event": "FullyBooted", "Privilege": "system,all"},
    ]
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert parser.pending_bytes == 0


def test_banner_alone_then_frames_later() -> None:
    parser = FrameParser()
    assert parser.feed(b"Asterisk Call Manager/11.0.0\r\n") == []
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert parser.feed(b"Response: Success\r\n\r\n") == [{"Response": "Success"}]


def test_lf_only_line_ends() -> None:
    assert FrameParser().feed(b"Event: Hangup\nCause: 16\n\nEvent: Newstate\n\n") == [
        {"Event": "Hangup", "Cause": "16"},
        {"Event": "Newstate"},
    ]


def test_extra_crlf_yields_no_empty_frame() -> None:
    data = b"Event: TestEvent\r\nState: RINGING_INBAND\r\n\r\n\r\n\r\n\r\nEvent: Newchannel\r\n\r\n"
    frames = FrameParser().feed(data)
    assert [f["Event"] for f in frames] == ["TestEvent", "Newchannel"]


def test_duplicated_key_keeps_the_first_value() -> None:
    frame = parse_frame("Event: TestEvent\nState: CallIDChange\nAppLine: 677\nState: Other")
    assert frame == {"Event": "TestEvent", "State": "CallIDChange", "AppLine": "677"}


def test_empty_values_and_trailing_spaces() -> None:
    frame = parse_frame("AccountCode: \nLanguage: en   \nPriorCallID:\nAppData: a: b")
    assert frame == {"AccountCode": "", "Language": "en", "PriorCallID": "", "AppData": "a: b"}


def test_utf8_split_inside_a_character() -> None:
    data = "Event: NewCallerid\r\nCallerIDName: 山田\r\n\r\n".encode()
    cut = data.index("田".encode()) + 1
    parser = FrameParser()
    assert parser.feed(data[:cut]) == []
    assert parser.feed(data[cut:]) == [{"Event": "NewCallerid", "CallerIDName": "山田"}]


@pytest.mark.parametrize("name", sorted(README_FRAME_COUNTS))
def test_capture_frame_counts_match_the_readme(name: str) -> None:
    captured = read_capture(FIXTURES / name)
    assert len(captured) == README_FRAME_COUNTS[name]
    assert all(c.frame for c in captured)
    assert all(c.rx is not None for c in captured)
    assert [c.rx for c in captured] == sorted(c.rx for c in captured if c.rx is not None)


def test_capture_notes_extra_crlf_and_times() -> None:
    captured = read_capture(FIXTURES / "01-inbound-queue-answered.txt")
    assert captured[0].frame["Response"] == "Success"
    assert captured[0].t is not None and captured[0].t < 0  # login frames come before t=0
    quirky = [c for c in captured if c.extra_crlf]
    assert len(quirky) == 1
    assert quirky[0].frame["Event"] == "Newchannel"
    assert quirky[0].frame["Channel"] == "Local/101@operator-phones-00000001;1"


@pytest.mark.parametrize("name", sorted(README_FRAME_COUNTS))
@pytest.mark.parametrize("chunk", [1, 7, 1460, 1 << 20])
def test_wire_bytes_parse_back_to_the_same_frames_whatever_the_chunking(name: str, chunk: int) -> None:
    captured = read_capture(FIXTURES / name)
    wire = capture_wire_bytes(captured)
    assert b"\r\n\r\n\r\n" in wire or not any(c.extra_crlf for c in captured)
    parser = FrameParser()
    frames = []
    for start in range(0, len(wire), chunk):
        frames.extend(parser.feed(wire[start : start + chunk]))
    assert frames == [c.frame for c in captured]
    assert parser.frames_parsed == len(captured)
    assert parser.banner == "Asterisk Call Manager/11.0.0"


def test_split_between_cr_and_lf_of_the_frame_end() -> None:
    parser = FrameParser()
    assert parser.feed(b"Event: A\r\n\r") == []
    assert parser.feed(b"\nEvent: B\r\n\r\n") == [{"Event": "A"}, {"Event": "B"}]


def test_reset_forgets_partial_frame_and_banner() -> None:
    parser = FrameParser()
    parser.feed(b"Asterisk Call Manager/11.0.0\r\nEvent: Half")
    parser.reset()
    assert parser.banner is None and parser.pending_bytes == 0
    assert parser.feed(b"Asterisk Call Manager/11.0.0\r\nEvent: Whole\r\n\r\n") == [{"Event": "Whole"}]


def test_an_endless_frame_is_refused() -> None:
    parser = FrameParser(max_frame_bytes=64)
    with pytest.raises(FrameTooLarge, match="larger than 64 bytes"):
        parser.feed(b"Key: " + b"x" * 100)
    assert parser.pending_bytes == 0  # the garbage is dropped, the parser is usable again
    assert parser.feed(b"Event: Ok\r\n\r\n") == [{"Event": "Ok"}]


def test_capture_text_comment_lines_are_not_headers() -> None:
    text = "# header: not a frame\n\n# rx=1.5 t=+0.1\nEvent: A\nX: 1\n\n# t=+2 --- connection lost ---\n"
    frames = list(read_capture_text(text))
    assert len(frames) == 1
    assert frames[0].frame == {"Event": "A", "X": "1"}
    assert frames[0].rx == 1.5 and frames[0].t == 0.1


def test_capture_08_marks_the_reconnect() -> None:
    captured = read_capture(FIXTURES / "08-ami-restart-reconnect.txt")
    marked = [c for c in captured if c.new_connection]
    assert len(marked) == 1
    assert marked[0].frame == {"Response": "Success", "ActionID": "action/9d5b09c1-f1a1-4f6c-b26e-70ad1bc4b7d5/1/2",
                               "Message": "Authentication accepted"}
    assert captured[captured.index(marked[0]) - 1].frame["Event"] == "Shutdown"


_WIRE = {name: capture_wire_bytes(read_capture(FIXTURES / name)) for name in README_FRAME_COUNTS}


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(README_FRAME_COUNTS)), st.lists(st.integers(0, 120_000), max_size=40))
def test_random_split_points_give_the_same_frames(name: str, cuts: list[int]) -> None:
    wire = _WIRE[name]
    points = sorted({c % (len(wire) + 1) for c in cuts})
    parser = FrameParser()
    frames = []
    start = 0
    for point in [*points, len(wire)]:
        frames.extend(parser.feed(wire[start:point]))
        start = point
    assert frames == [c.frame for c in read_capture(FIXTURES / name)]
    assert parser.pending_bytes == 0
