"""Real SIP user agents (Debian's baresip) against the shipped PJSIP configuration, on a PBX of its own
in SIP mode (see sip_lab.py for who is who). cti's own parts run here too: the FastAGI route server
(with a fixed clock), and cti's AMI client with the production ``cti`` user, CallControl and the call
tracker.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from ami_capture import AmiCapture
from figures_support import record_figures
from pydantic import SecretStr
from sip_lab import (
    CALLER,
    ROOT,
    WARD_NUMBER,
    Phones,
    SipLab,
    assert_loopback_only,
    is_event,
    only_japanese_prompts,
    played,
    rtp_counts,
    rtp_source,
    speech_level_db,
    trunk_call,
)
from test_calls_routing import DAY, NIGHT, cti_routing

from cti.core.clock import TOKYO
from telephony.ami.link import AmiClient as CtiAmiClient
from telephony.control import CallControl
from telephony.events import DomainEvent
from telephony.frames import read_capture
from telephony.plugin import TrackerSink
from telephony.settings import AmiSettings, CallControlSettings
from telephony.tracker import CallTracker

if TYPE_CHECKING:
    from conftest import AmiClient

pytestmark = pytest.mark.asterisk

CAPTURE_NAME = "06-sip-trunk-ivr-queue-refer-transfer.txt"


SIP_LAB_NAME = "sip"  # the lab PBX instance (the sip_lab fixture, tests/e2e/conftest.py)


@dataclass
class Cti:
    """cti's AMI side as `cti serve` wires it: production user, CallControl, the call tracker."""

    client: CtiAmiClient
    control: CallControl
    domain: list[DomainEvent]


@pytest.fixture
async def cti(sip_lab: SipLab) -> AsyncIterator[Cti]:
    settings = AmiSettings(host=sip_lab.pbx.ami_host, port=sip_lab.pbx.ami_port, username=sip_lab.pbx.ami_username,
                           secret=SecretStr(sip_lab.pbx.ami_secret), ping_interval=1.0, action_timeout=5.0)
    client = CtiAmiClient(settings, clock=lambda: datetime.now(TOKYO))
    control = CallControl(client, CallControlSettings(), queue="operators", clock=lambda: datetime.now(TOKYO))
    domain: list[DomainEvent] = []
    client.add_sink(TrackerSink(CallTracker(lambda: datetime.now(TOKYO)), [domain.extend]))
    client.add_sink(control)
    client.start()
    await client.wait_connected(15)
    try:
        yield Cti(client, control, domain)
    finally:
        await client.stop()


# ---- tests ---------------------------------------------------------------------------------------
def test_installed_pjsip_conf_is_the_shipped_one_with_only_site_lines_changed(sip_lab: SipLab) -> None:
    """The set-up guide (dialplan/README.md) says: change the SITE lines, nothing else. The lab does
    exactly that, and the phones below register to the result."""
    shipped = (ROOT / "dialplan" / "pjsip.conf").read_text(encoding="utf-8").splitlines()
    installed = (sip_lab.home / "etc" / "pjsip.conf").read_text(encoding="utf-8").splitlines()
    assert len(shipped) == len(installed)
    changed = [(a, b) for a, b in zip(shipped, installed, strict=True) if a != b]
    assert changed, "the lab adapts the file"
    for before, after in changed:
        assert "; SITE" in before, f"the lab changed a line the guide does not mark: {before!r} -> {after!r}"
        assert "127.0.0.1" in after or sip_lab.secret in after
    site_lines = [line for line in shipped if "; SITE" in line]
    assert len(changed) == len(site_lines), "every SITE line is adapted (no documentation address left)"
    guide = (ROOT / "dialplan" / "README.md").read_text(encoding="utf-8")
    for key in {line.split("=")[0].strip() for line in site_lines}:
        assert f"`{key}`" in guide, f"the set-up guide explains {key}"


async def test_phones_register_and_asterisk_listens_on_loopback_only(sip_lab: SipLab, phones: Phones) -> None:
    contacts = sip_lab.pbx.cli("pjsip show contacts")
    for user in ("101", "102", "201"):
        assert re.search(rf"Contact:\s+{user}/sip:{user}\S*@127\.0\.0\.1:\d+\s+\S+\s+Avail", contacts), contacts
    assert_loopback_only(sip_lab.pbx, sip_lab.sip_port)


async def test_trunk_call_ivr_operator_and_transfer_by_the_phones_own_key(
    sip_lab: SipLab, phones: Phones, admin: AmiClient, cti: Cti, tmp_path: Path
) -> None:
    """A citizen calls over the trunk, keys 2 (税) by RFC 4733, operator 101's phone rings and is
    answered (RTP both ways), the operator transfers to 201 with the phone's own key (REFER), the
    department answers, the citizen hangs up. Recorded as an AMI capture (full stream, cti-admin)."""
    await cti.control.pause_member("PJSIP/102", "test")  # operator 102 is on a break: 101 gets the call
    capture = AmiCapture()
    await capture.connect(sip_lab.pbx.ami_host, sip_lab.pbx.ami_port, sip_lab.pbx.admin_username,
                          sip_lab.pbx.admin_secret)
    await asyncio.sleep(0.3)
    try:
        async with cti_routing(sip_lab.pbx, DAY):
            capture.start_scenario()
            capture.note_action(f"trunk user agent {CALLER} dials {WARD_NUMBER} (SIP INVITE from the trunk's address)")
            channel = await trunk_call(admin, phones, dtmf="2")
            capture.note_action("the caller keys 2 (RFC 4733) during the IVR menu")
            category = await admin.wait_event(lambda e: is_event("VarSet", Channel=channel)(e)
                                              and e.get("Variable", "").lstrip("_") == "CTI_CATEGORY")
            assert category["Value"] == "zei"
            await phones.op101.wait_event("CALL_INCOMING", wait_s=20)
            called = await admin.wait_event(is_event("AgentCalled", Channel=channel))
            assert called["Interface"] == "PJSIP/101"
            await asyncio.sleep(1.5)  # it rings
            capture.note_action("operator 101 answers on the phone")
            await phones.op101.accept()
            connected = await admin.wait_event(is_event("AgentConnect", Channel=channel))
            assert connected["Interface"] == "PJSIP/101"
            await asyncio.sleep(2.0)  # they talk

            operator_leg = connected["DestChannel"]
            rtp: dict[str, dict[str, str]] = {}
            for role, leg in (("trunk", channel), ("operator", operator_leg)):
                counts = rtp[role] = await rtp_counts(admin, leg)
                assert int(counts["rxcount"]) > 50 and int(counts["txcount"]) > 50, (leg, counts)
                assert (await rtp_source(admin, leg)).startswith("127.0.0.1:"), leg
            assert_loopback_only(sip_lab.pbx, sip_lab.sip_port)  # RTP sockets included, mid-call

            capture.note_action("operator 101 presses the phone's transfer key: REFER to 201")
            await phones.op101.transfer("201")
            blind = await admin.wait_event(is_event("BlindTransfer"))
            assert (blind["Extension"], blind["Context"]) == ("201", "departments")
            await phones.dept201.wait_event("CALL_ESTABLISHED", wait_s=20)
            await phones.op101.wait_event("CALL_CLOSED")
            await asyncio.sleep(1.5)  # the citizen talks with 戸籍住民課
            assert not phones.trunk.seen("CALL_CLOSED"), "the citizen is still on the line"
            capture.note_action("the citizen hangs up")
            await phones.trunk.hangup()
            await admin.wait_event(is_event("Hangup", Channel=channel))
            await phones.dept201.wait_event("CALL_CLOSED")
            await asyncio.sleep(1.0)
    finally:
        await capture.close()
        await cti.control.unpause_member("PJSIP/102")

    assert len(admin.matching(is_event("BlindTransfer"))) == 1, "one transfer, one event"
    mine = [e for e in cti.domain if e.call_id == cti.domain[0].call_id]
    kinds = [e.type for e in mine]
    assert kinds == ["call_arrived", "call_routed", "call_queued", "operator_ringing", "operator_connected",
                     "call_transferred", "call_ended"], kinds
    arrived, ringing, transferred = mine[0].as_dict(), mine[3].as_dict(), mine[5].as_dict()
    assert (arrived["caller_number"], arrived["dialled_number"]) == (CALLER, WARD_NUMBER)
    assert ringing["interface"] == "PJSIP/101"
    assert transferred["target"].startswith("201"), transferred

    # Japanese from the first words: the IVR played sounds/ja (Asterisk's log), the caller heard speech.
    log = sip_lab.log()
    assert played(log, "cti/welcome") and played(log, "cti/menu") and played(log, "cti/transfer"), log[-3000:]
    assert only_japanese_prompts(log)
    heard_by_caller, heard_by_operator = phones.trunk.heard(), phones.op101.heard()
    assert heard_by_caller and heard_by_operator
    caller_level, operator_level = speech_level_db(heard_by_caller[-1]), speech_level_db(heard_by_operator[-1])
    assert caller_level[0] > -35
    assert operator_level[0] > -35  # the citizen's voice reached the operator
    record_figures("e2e", "sip", {
        "rtp_after_2s_talk": {role: {k: counts.get(k) for k in ("rxcount", "txcount", "rxjitter", "rlp", "rtt")}
                              for role, counts in rtp.items()},
        "heard_by_caller_rms_db_and_s": caller_level, "heard_by_operator_rms_db_and_s": operator_level,
        "blind_transfer_events": 1,
    })

    # The recording replays through a fresh tracker to the same domain events.
    path = tmp_path / CAPTURE_NAME
    frames = capture.write(path, "trunk caller 0312345678 -> 0301110000, IVR 2 (zei), queue operators, PJSIP/101 "
                           "answers, REFER blind transfer to 201 (departments), 201 answers, the caller hangs up",
                           sip_lab.pbx.cli("core show version").strip())
    assert frames > 50
    if os.environ.get("CTI_SIP_CAPTURE_OUT"):  # how tests/fixtures/ami/06-sip-*.txt was made
        shutil.copy(path, os.environ["CTI_SIP_CAPTURE_OUT"])
    replayed = CallTracker(lambda: datetime.now(TOKYO))
    replay_kinds = [e.type for f in read_capture(path) for e in replayed.feed(dict(f.frame))]
    assert replay_kinds == kinds


async def test_transfer_by_cti_plays_the_japanese_transfer_prompt(
    sip_lab: SipLab, phones: Phones, admin: AmiClient, cti: Cti
) -> None:
    await cti.control.pause_member("PJSIP/102", "test")
    try:
        async with cti_routing(sip_lab.pbx, DAY):
            channel = await trunk_call(admin, phones, dtmf="5")
            await phones.op101.wait_event("CALL_INCOMING", wait_s=20)
            await phones.op101.accept()
            await admin.wait_event(is_event("AgentConnect", Channel=channel))
            await asyncio.sleep(1.0)
            mark = len(admin.events)
            await cti.control.transfer(channel, "201")  # what the operator screen's transfer button does
            await phones.dept201.wait_event("CALL_ESTABLISHED", wait_s=20)
            await phones.op101.wait_event("CALL_CLOSED")
            await phones.trunk.hangup()
            await admin.wait_event(is_event("Hangup", Channel=channel))
    finally:
        await cti.control.unpause_member("PJSIP/102")
    transfers = [e for e in cti.domain if e.type == "call_transferred"]
    assert len(transfers) == 1 and transfers[0].as_dict()["target"].startswith("201")
    dials = [e for e in admin.events[mark:]
             if is_event("Newexten", Context="departments", Channel=channel)(e) and e.get("Application") == "Dial"]
    assert len(dials) == 1, dials
    assert played(sip_lab.log(), "cti/transfer")


async def test_click_to_call_rings_the_staff_phone_first_then_the_citizen_hears_the_greeting(
    sip_lab: SipLab, phones: Phones, admin: AmiClient, cti: Cti
) -> None:
    attempt = await cti.control.originate_callback(f"sip-{uuid.uuid4().hex[:8]}", "PJSIP/201", CALLER)
    assert attempt is not None
    # Both answer by themselves (auto-answer phones give no CALL_INCOMING event).
    await phones.dept201.wait_event("CALL_ESTABLISHED", wait_s=20)
    citizen = await phones.trunk.wait_event("CALL_ESTABLISHED", wait_s=20)
    assert WARD_NUMBER in str(citizen.get("peeruri", "")), citizen  # the ward's number as caller ID
    await asyncio.sleep(3.0)
    await phones.dept201.hangup()
    await phones.trunk.wait_event("CALL_CLOSED", wait_s=15)
    # The staff phone rang first: its channel was made (and answered) before the trunk's.
    made = [e["Channel"] for e in admin.matching(is_event("Newchannel"))]
    staff_at = next(i for i, ch in enumerate(made) if ch.startswith("PJSIP/201-"))
    citizen_at = next(i for i, ch in enumerate(made) if ch.startswith("PJSIP/pstn-trunk-"))
    assert staff_at < citizen_at, made
    assert played(sip_lab.log(), "cti/callback-greeting")
    heard = phones.trunk.heard()
    assert heard and speech_level_db(heard[-1])[0] > -35


async def test_a_waiting_caller_hears_the_japanese_wait_message(
    sip_lab: SipLab, phones: Phones, admin: AmiClient, cti: Cti
) -> None:
    """Both operators on a break: the caller waits in the queue and hears cti/queue-wait (every 5 s in
    the lab, 30 s as shipped), then gives up."""
    for seat in ("PJSIP/101", "PJSIP/102"):
        await cti.control.pause_member(seat, "test")
    try:
        async with cti_routing(sip_lab.pbx, DAY):
            channel = await trunk_call(admin, phones, dtmf="0")
            await admin.wait_event(is_event("QueueCallerJoin", Channel=channel))
            await asyncio.sleep(9.0)  # longer than one announcement period
            await phones.trunk.hangup()
            await admin.wait_event(is_event("QueueCallerAbandon", Channel=channel))
    finally:
        for seat in ("PJSIP/101", "PJSIP/102"):
            await cti.control.unpause_member(seat)
    assert played(sip_lab.log(), "cti/queue-wait")
    assert not phones.op101.seen("CALL_INCOMING") and not phones.op102.seen("CALL_INCOMING")
    assert [e.type for e in cti.domain if e.type == "call_abandoned"] == ["call_abandoned"]


async def test_a_phone_dials_a_department_but_not_the_pstn(
    sip_lab: SipLab, phones: Phones, admin: AmiClient
) -> None:
    await phones.op101.dial("201")
    await phones.dept201.wait_event("CALL_ESTABLISHED", wait_s=20)
    await phones.op101.hangup()
    await phones.dept201.wait_event("CALL_CLOSED")
    start = len(phones.op101.events)
    await phones.op101.dial(CALLER)  # context "phones" has no route out
    closed = await phones.op101.wait_event("CALL_CLOSED", start=start)
    assert not phones.trunk.seen("CALL_INCOMING")
    assert "404" in str(closed.get("param", "")) or "Not Found" in str(closed.get("param", "")), closed


async def test_closed_hours_say_why_and_when_we_reopen_in_japanese(
    sip_lab: SipLab, phones: Phones, admin: AmiClient
) -> None:
    async with cti_routing(sip_lab.pbx, NIGHT):  # Monday 2026-12-28 23:30: next opening Tue 12-29 08:00
        channel = await trunk_call(admin, phones)
        await admin.wait_event(is_event("Hangup", Channel=channel), wait_s=40)
        await phones.trunk.wait_event("CALL_CLOSED")
    log = sip_lab.log()
    for name in ("cti/closed-night", "cti/next-open", "cti/month-12", "cti/day-29", "cti/wday-2", "cti/am",
                 "cti/hour-8", "cti/next-open-end"):
        assert played(log, name), name
    assert only_japanese_prompts(log)
    heard = phones.trunk.heard()
    rms, length = speech_level_db(heard[-1])
    assert rms > -35 and length > 8


def test_every_generated_prompt_is_speech_in_the_format_asterisk_plays(sip_lab: SipLab) -> None:
    table = ROOT / "dialplan" / "prompts" / "ja.tsv"
    names = [line.split("\t")[0] for line in table.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(names) > 100
    sounds = sip_lab.home / "data" / "sounds" / "ja"
    quiet = []
    for name in names:
        path = sounds / f"{name}.wav"
        with wave.open(str(path)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2), name
        rms, length = speech_level_db(path)
        if rms < -30 or length < 0.25:
            quiet.append((name, rms, length))
    assert not quiet, f"silent or too short: {quiet}"



@pytest.mark.parametrize(("at", "said"), [
    # Monday 2027-01-04 13:05 JST: 1月4日 月曜日 午後1時5分
    (1799035500, ["cti/month-1", "cti/day-4", "cti/wday-1", "cti/pm", "cti/hour-1", "cti/minute-5"]),
    # Wednesday 2027-01-06 12:00 JST: 1月6日 水曜日 午後0時 (no minutes on the hour)
    (1799204400, ["cti/month-1", "cti/day-6", "cti/wday-3", "cti/pm", "cti/hour-0"]),
])
async def test_dates_and_times_are_said_in_japanese(
    sip_lab: SipLab, admin: AmiClient, at: int, said: list[str]
) -> None:
    """[cti-say-datetime] on its own: the files it joins, in order, for a time with and without minutes."""
    channel_id = f"say-{uuid.uuid4().hex[:8]}"
    answer = await admin.action(
        "Originate", Channel="Local/0312345678@lab-citizen", Context="lab-say-datetime", Exten=str(at), Priority="1",
        ChannelId=channel_id, Variable="CHANNEL(language)=ja", Async="true")
    assert answer["Response"] == "Success", answer
    await admin.wait_event(is_event("Newexten", Uniqueid=channel_id, Application="Return"), wait_s=20)
    await asyncio.sleep(0.5)
    played_here = re.findall(r"<(Local/0312345678@lab-citizen-\w+;1)> Playing '([^']+)\.\w+' \(language 'ja'\)",
                             sip_lab.log())
    mine = [name for channel, name in played_here if channel == played_here[-1][0]]
    assert mine == said
