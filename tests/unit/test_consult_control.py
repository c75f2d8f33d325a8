"""telephony.consult: the AMI actions of the consult transfer and the hold, and that their codes
are the ones dialplan/features.conf defines (a mismatch would send keys nobody listens to)."""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from telephony import consult
from telephony.ami.actions import (
    AmiActionError,
    AmiConnectionLost,
    AmiNotConnected,
    AmiResponse,
    AmiTimeout,
)
from telephony.ami.link import AmiClient
from telephony.consult import ConsultControl
from telephony.tracker.hold import runs_cti_hold

ROOT = Path(__file__).resolve().parents[2]
OP = "PJSIP/101-0000000a"


class FakeAmi:
    def __init__(self) -> None:
        self.sent: list[Mapping[str, str]] = []
        self.fail: Exception | None = None
        self.status: list[dict[str, str]] = []  # the Status events Asterisk would list

    async def send_action(
        self, action: Mapping[str, str], *, within: float | None = None, list_complete: str | None = None
    ) -> Any:
        if self.fail is not None:
            raise self.fail
        self.sent.append(dict(action))
        if action["Action"] == "Status":
            assert list_complete == "StatusComplete"
            return AmiResponse({"Response": "Success"}, [*self.status, {"Event": "StatusComplete"}])
        return None


@pytest.fixture
def ami(monkeypatch: pytest.MonkeyPatch) -> FakeAmi:
    monkeypatch.setattr(consult, "DIGIT_GAP_S", 0)
    return FakeAmi()


def control(ami: FakeAmi) -> ConsultControl:
    return ConsultControl(cast(AmiClient, ami), "consult")


def features() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(delimiters=("=>", "="), inline_comment_prefixes=(";",), strict=False)
    parser.read(ROOT / "dialplan" / "features.conf", encoding="utf-8")
    return parser


async def test_start_is_an_atxfer_of_the_operator_leg_into_the_consult_context(ami: FakeAmi) -> None:
    await control(ami).start(OP, "201")
    assert ami.sent == [{"Action": "Atxfer", "Channel": OP, "Exten": "201", "Context": "consult"}]


async def test_complete_hold_and_resume_are_received_dtmf(ami: FakeAmi) -> None:
    c = control(ami)
    await c.complete(OP)
    await c.hold(OP)
    await c.resume(OP)
    assert [(a["Action"], a["Digit"], a["Receive"], a["Channel"]) for a in ami.sent] == [
        ("PlayDTMF", "*", "true", OP), ("PlayDTMF", "3", "true", OP),
        ("PlayDTMF", "*", "true", OP), ("PlayDTMF", "7", "true", OP),
        ("PlayDTMF", "9", "true", OP),
    ]


async def test_cancel_is_cancel_atxfer(ami: FakeAmi) -> None:
    await control(ami).cancel(OP)
    assert ami.sent == [{"Action": "CancelAtxfer", "Channel": OP}]


@pytest.mark.parametrize("channel, extension", [("", "201"), ("PJSIP/101 x", "201"), (OP, "201\r\nAction: Hangup"),
                                                (OP, ""), (OP, "20a")])
async def test_bad_input_sends_nothing(ami: FakeAmi, channel: str, extension: str) -> None:
    with pytest.raises(ValueError):
        await control(ami).start(channel, extension)
    assert ami.sent == []


async def test_asterisk_refusal_propagates(ami: FakeAmi) -> None:
    ami.fail = AmiActionError("CancelAtxfer", "No active transfer")
    with pytest.raises(AmiActionError):
        await control(ami).cancel(OP)


async def test_a_hold_is_ctis_when_asterisk_reports_the_leg_running_cti_hold(ami: FakeAmi) -> None:
    # As Asterisk 22 reports an operator's leg during cti-hold (Status: Application, Data)
    ami.status = [{"Event": "Status", "Channel": OP, "Application": "Read", "Data": "CTI_HOLD_KEY,,1,,1,3600"}]
    assert await control(ami).held_by_cti(OP) is True
    assert ami.sent == [{"Action": "Status", "Channel": OP}]
    ami.status = [{"Event": "Status", "Channel": OP, "Application": "AppQueue", "Data": "(Outgoing Line)"}]
    assert await control(ami).held_by_cti(OP) is False  # the phone's own hold: the leg still runs AppQueue
    ami.status = [{"Event": "Status", "Channel": OP, "Application": "Read", "Data": "OTHER,,1"}]
    assert await control(ami).held_by_cti(OP) is False  # another Read() is not cti's hold


async def test_a_gone_channel_is_not_held(ami: FakeAmi) -> None:
    ami.fail = AmiActionError("Status", "No such channel")
    assert await control(ami).held_by_cti(OP) is False


@pytest.mark.parametrize("error", [AmiNotConnected, AmiTimeout, AmiConnectionLost])
async def test_a_link_that_cannot_answer_is_not_a_no(ami: FakeAmi, error: type[AmiActionError]) -> None:
    ami.fail = error("Status", "the link")
    with pytest.raises(error):
        await control(ami).held_by_cti(OP)


async def test_the_hold_state_is_asked_of_asterisk_not_remembered(ami: FakeAmi) -> None:
    first, second = control(ami), control(ami)  # a restarted cti, another node
    await first.hold(OP)
    ami.status = [{"Event": "Status", "Channel": OP, "Application": "Read", "Data": "CTI_HOLD_KEY,,1,,1,3600"}]
    assert await second.held_by_cti(OP) is True


def test_codes_match_features_conf() -> None:
    conf = features()
    assert conf["general"]["atxfercomplete"].strip() == consult.COMPLETE_CODE
    assert conf["featuremap"]["atxfer"].strip()  # Atxfer needs a code, whatever it is
    assert conf["general"]["atxferabort"].strip()  # CancelAtxfer needs one
    hold = conf["applicationmap"]["cti-hold"].split(",")
    assert hold[0].strip() == consult.HOLD_CODE and hold[1].strip() == "self/callee"
    assert hold[2].strip().startswith("Read(") and hold[-1].strip() == "default"  # callee hears music on hold
    # what Asterisk then reports the leg running (telephony.tracker.hold.runs_cti_hold)
    read_args = conf["applicationmap"]["cti-hold"].partition("Read(")[2].rpartition(")")[0]
    assert runs_cti_hold("Read", read_args)
    # a sound after a cancelled consult would swallow the keys of the next one (seen on Asterisk 22)
    assert conf["general"]["xferfailsound"].strip() == ""
    codes = [conf["general"][k].strip() for k in ("atxferabort", "atxfercomplete", "atxferthreeway", "atxferswap")]
    assert len({*codes, consult.HOLD_CODE, conf["featuremap"]["atxfer"].strip()}) == 6


def test_the_queue_lets_members_transfer_and_gives_them_the_hold_feature() -> None:
    extensions = (ROOT / "dialplan" / "extensions.conf").read_text(encoding="utf-8")
    options = next(line for line in extensions.splitlines() if line.startswith("CTI_QUEUE_OPTIONS="))
    assert "t" in options.partition("=")[2]
    assert "Set(__DYNAMIC_FEATURES=cti-hold)" in extensions
    lab = (ROOT / "dialplan" / "lab" / "extensions-local.conf").read_text(encoding="utf-8")
    lab_options = next(line for line in lab.splitlines() if line.startswith("CTI_QUEUE_OPTIONS="))
    assert "t" in lab_options.partition("=")[2]
    assert "[consult]" in extensions
