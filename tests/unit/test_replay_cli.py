"""`cti replay FILE [--json] [--filtered]` on every capture of tests/fixtures/ami/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cti.cli import main
from telephony.cli import replay_text
from telephony.events import EVENT_TYPES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ami"
CAPTURES = sorted(FIXTURES.glob("0*.txt"))
# Domain event types per capture, read from the captures (see test_tracker_captures.py for times).
EXPECTED = {
    "01-inbound-queue-answered.txt": ["call_arrived", "call_routed", "call_queued", "operator_ringing",
                                      "operator_connected", "call_ended"],
    "02-inbound-queue-abandon.txt": ["call_arrived", "call_routed", "call_queued", "operator_ringing",
                                     "operator_missed", "operator_ringing", "operator_missed", "call_abandoned",
                                     "call_ended"],
    "03-inbound-closed-hours.txt": ["call_arrived", "call_routed", "call_ended"],
    "04-outbound-callback.txt": ["callback_ringing_staff", "callback_staff_answered", "callback_dialing_citizen",
                                 "callback_citizen_answered", "callback_ended"],
    "05-two-concurrent-calls.txt": ["call_arrived", "call_arrived", "call_routed", "call_routed", "call_queued",
                                    "call_queued", "operator_ringing", "operator_ringing", "operator_connected",
                                    "operator_connected", "call_ended", "call_ended"],
    "06-sip-trunk-ivr-queue-refer-transfer.txt": ["call_arrived", "call_routed", "call_queued", "operator_ringing",
                                                  "operator_connected", "call_transferred", "call_ended"],
    "08-ami-restart-reconnect.txt": [],
}


def test_every_capture_has_an_expectation() -> None:
    assert sorted(p.name for p in CAPTURES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_replay_json_lines(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [line["type"] for line in lines] == EXPECTED[path.name]
    for line in lines:
        assert set(line) >= {"type", "call_id", "at"}
        assert line["type"] in EVENT_TYPES
        assert line["at"].endswith("+09:00")  # the capture's rx time, in Tokyo
    assert "0 calls still live" in captured.err
    frames = int(captured.err.split("replay: ")[1].split(" frames")[0])
    header = next(line for line in path.read_text().splitlines() if line.startswith("# Frames:"))
    assert frames == int(header.split(":")[1])  # the parser found every frame of the wire bytes


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_replay_readable_lines(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(EXPECTED[path.name])
    if path.name.startswith("01"):
        assert "着信 (call arrived)" in out[0] and "0312345678" in out[0]
        assert out[0].startswith("08:29:32.631 1795822172.0 ")  # 23:29:32.631 UTC in Tokyo
        assert "終話 (ended) answered" in out[-1]


def test_replay_filtered_as_the_adapter_subscribes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(FIXTURES / "02-inbound-queue-abandon.txt"), "--json", "--filtered"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["type"] for line in lines] == EXPECTED["02-inbound-queue-abandon.txt"]


def test_replay_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["replay", str(tmp_path / "none.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_replay_raw_ami_text_without_notes() -> None:
    text = (
        "Event: Newchannel\nChannel: PJSIP/trunk-00000001\nUniqueid: 5.1\nLinkedid: 5.1\nContext: from-pstn\n"
        "Exten: 0301110000\nCallerIDNum: 0311112222\nCallerIDName: \n\n"
        "Event: Hangup\nChannel: PJSIP/trunk-00000001\nUniqueid: 5.1\nLinkedid: 5.1\nCause: 16\n\n"
    )
    result = replay_text(text)
    assert result.frames == 2
    assert [e.type for e in result.events] == ["call_arrived", "call_ended"]
    assert result.events[0].as_dict()["caller_name"] is None
    assert result.events[1].as_dict()["reason"] == "not_answered"
    assert result.live == []


def test_replay_of_the_restart_sees_two_connections(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(FIXTURES / "08-ami-restart-reconnect.txt")]) == 0
    assert "7 frames, 0 domain events, 0 calls still live, 2 AMI connection(s)" in capsys.readouterr().err
