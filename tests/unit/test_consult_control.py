"""telephony.consult: the AMI actions of the consult transfer and the hold, and that their codes
are the ones dialplan/features.conf defines (a mismatch would send keys nobody listens to)."""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from telephony import consult
from telephony.ami.actions import AmiActionError
from telephony.ami.link import AmiClient
from telephony.consult import ConsultControl

ROOT = Path(__file__).resolve().parents[2]
OP = "PJSIP/101-0000000a"


class FakeAmi:
    def __init__(self) -> None:
        self.sent: list[Mapping[str, str]] = []
        self.fail: Exception | None = None

    async def send_action(self, action: Mapping[str, str], *, within: float | None = None) -> Any:
        if self.fail is not None:
            raise self.fail
        self.sent.append(dict(action))
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


def test_codes_match_features_conf() -> None:
    conf = features()
    assert conf["general"]["atxfercomplete"].strip() == consult.COMPLETE_CODE
    assert conf["featuremap"]["atxfer"].strip()  # Atxfer needs a code, whatever it is
    assert conf["general"]["atxferabort"].strip()  # CancelAtxfer needs one
    hold = conf["applicationmap"]["cti-hold"].split(",")
    assert hold[0].strip() == consult.HOLD_CODE and hold[1].strip() == "self/callee"
    assert hold[2].strip().startswith("Read(") and hold[-1].strip() == "default"  # callee hears music on hold
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
