"""Call control and presence over the real AMI client and a real TCP AMI server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from ami_replay_server import AmiReplayServer, load_capture
from test_ami_link import Recorder, ami_settings, eventually

from cti.core.clock import TOKYO, fixed_clock
from telephony.ami.actions import AmiActionError
from telephony.ami.link import AmiClient
from telephony.control import CallbackAlreadyActive, CallbackState, CallControl
from telephony.plugin import PresenceSink
from telephony.presence import Activity, PresenceBoard
from telephony.settings import CallControlSettings

CLOCK = fixed_clock(datetime(2026, 11, 27, 10, 0, tzinfo=TOKYO))
STAFF = "Local/101@operator-phones"
CITIZEN = "0312345678"


@pytest.fixture
async def server() -> AsyncIterator[AmiReplayServer]:
    srv = AmiReplayServer()
    await srv.start()
    yield srv
    await srv.close()


@pytest.fixture
async def linked(server: AmiReplayServer) -> AsyncIterator[tuple[AmiClient, CallControl, Recorder]]:
    client = AmiClient(ami_settings(server.port), [], clock=CLOCK, rnd=lambda: 1.0)
    control = CallControl(client, CallControlSettings(), queue="operators", clock=CLOCK)
    recorder = Recorder()
    client.add_sink(control)
    client.add_sink(recorder)
    client.start()
    await client.wait_connected(5)
    yield client, control, recorder
    await client.stop()


async def test_callback_originate_replayed_from_capture_04(
    server: AmiReplayServer, linked: tuple[AmiClient, CallControl, Recorder]
) -> None:
    server.scenario = load_capture("04-outbound-callback.txt")
    _, control, _ = linked
    attempt = await control.originate_callback("cb-42", STAFF, CITIZEN)
    assert attempt.state is CallbackState.QUEUED
    [sent] = server.actions_named("originate")
    assert sent["Channel"] == STAFF
    assert sent["Context"] == "outbound-callback" and sent["Exten"] == CITIZEN and sent["Priority"] == "1"
    assert sent["Variable"] == "CTI_CALLBACK_ID=cb-42"
    assert sent["Async"] == "true" and sent["Timeout"] == "30000"
    assert sent["CallerID"] == "<0301110000>"
    # OriginateResponse (carrying our ActionID) marks it answered; the leg's Hangup ends it
    await eventually(lambda: control.callback_status("cb-42").state is CallbackState.ENDED)  # type: ignore[union-attr]
    final = control.callback_status("cb-42")
    assert final is not None and final.channels == frozenset()
    assert len(server.actions_named("originate")) == 1


async def test_second_originate_for_a_live_callback_is_refused(
    server: AmiReplayServer, linked: tuple[AmiClient, CallControl, Recorder]
) -> None:
    _, control, _ = linked
    first = await control.originate_callback("cb-1", STAFF, CITIZEN)
    assert first.state is CallbackState.QUEUED
    with pytest.raises(CallbackAlreadyActive) as info:
        await control.originate_callback("cb-1", STAFF, CITIZEN)
    assert "発信処理中" in str(info.value)
    assert len(server.actions_named("originate")) == 1
    # another record is independent
    await control.originate_callback("cb-2", STAFF, "0398765432")
    assert len(server.actions_named("originate")) == 2


async def test_concurrent_originates_for_one_record_send_one(
    server: AmiReplayServer, linked: tuple[AmiClient, CallControl, Recorder]
) -> None:
    _, control, _ = linked
    results = await asyncio.gather(
        *[control.originate_callback("cb-9", STAFF, CITIZEN) for _ in range(5)], return_exceptions=True
    )
    assert sum(1 for r in results if isinstance(r, CallbackAlreadyActive)) == 4
    assert len(server.actions_named("originate")) == 1


@pytest.mark.parametrize("how", ["chanvariable", "getvar"])
async def test_originate_pending_at_disconnect_is_found_by_resync_not_resent(
    server: AmiReplayServer, linked: tuple[AmiClient, CallControl, Recorder], how: str
) -> None:
    _, control, _ = linked
    server.silent.add("originate")
    task = asyncio.ensure_future(control.originate_callback("cb-7", STAFF, CITIZEN))
    await eventually(lambda: len(server.actions_named("originate")) == 1)
    channel = {
        "Channel": "Local/101@operator-phones-00000006;1",
        "Uniqueid": "1795822203.12",
        "Linkedid": "1795822203.12",
        "ChannelState": "5",
    }
    if how == "chanvariable":
        channel["ChanVariable"] = "CTI_CALLBACK_ID=cb-7"
    else:
        server.channel_vars[("Local/101@operator-phones-00000006;1", "CTI_CALLBACK_ID")] = "cb-7"
    server.channels = [channel]
    await server.drop()
    attempt = await task
    assert attempt.state is CallbackState.UNCERTAIN
    with pytest.raises(CallbackAlreadyActive):  # undecided blocks a new attempt
        await control.originate_callback("cb-7", STAFF, CITIZEN)
    await eventually(lambda: control.callback_status("cb-7").state is CallbackState.QUEUED)  # type: ignore[union-attr]
    assert control.callback_status("cb-7").channels == frozenset({"1795822203.12"})  # type: ignore[union-attr]
    assert len(server.actions_named("originate")) == 1
    assert server.logins == 2
    if how == "getvar":
        assert len(server.actions_named("getvar")) == 1


async def test_originate_pending_at_disconnect_without_channel_is_lost_never_resent(
    server: AmiReplayServer, linked: tuple[AmiClient, CallControl, Recorder]
) -> None:
    _, control, _ = linked
    server.silent.add("originate")
    task = asyncio.ensure_future(control.originate_callback("cb-8", STAFF, CITIZEN))
    await eventually(lambda: len(server.actions_named("originate")) == 1)
    await server.drop()
    assert (await task).state is CallbackState.UNCERTAIN
    await eventually(lambda: control.callback_status("cb-8").state is CallbackState.LOST)  # type: ignore[union-attr]
    await asyncio.sleep(0.2)
    assert len(server.actions_named("originate")) == 1
    # only an explicit new request (a person deciding to call again) sends another
    server.silent.discard("originate")
    again = await control.originate_callback("cb-8", STAFF, CITIZEN)
    assert again.state is CallbackState.QUEUED
    assert len(server.actions_named("originate")) == 2


async def test_asterisk_refusal_is_a_clear_error_and_allows_a_retry(
    server: AmiReplayServer, linked: tuple[AmiClient, CallControl, Recorder]
) -> None:
    _, control, _ = linked
    server.errors["originate"] = "Extension does not exist."
    with pytest.raises(AmiActionError) as info:
        await control.originate_callback("cb-3", STAFF, CITIZEN)
    assert info.value.action == "Originate" and info.value.message == "Extension does not exist."
    assert control.callback_status("cb-3").state is CallbackState.FAILED  # type: ignore[union-attr]
    del server.errors["originate"]
    assert (await control.originate_callback("cb-3", STAFF, CITIZEN)).state is CallbackState.QUEUED


async def test_failed_originate_response_marks_failure(
    server: AmiReplayServer, linked: tuple[AmiClient, CallControl, Recorder]
) -> None:
    def reply_failure(session: Any, action: dict[str, Any]) -> None:
        if action.get("Action") == "Originate":
            asyncio.get_running_loop().call_later(
                0.05,
                server.push_event,
                {
                    "Event": "OriginateResponse",
                    "Privilege": "call,all",
                    "ActionID": action["ActionID"],
                    "Response": "Failure",
                    "Channel": STAFF,
                    "Reason": "3",
                    "Uniqueid": "<null>",
                },
            )

    server.on_action = reply_failure
    _, control, _ = linked
    await control.originate_callback("cb-4", STAFF, CITIZEN)
    await eventually(lambda: control.callback_status("cb-4").state is CallbackState.FAILED)  # type: ignore[union-attr]
    assert control.callback_status("cb-4").reason == "no_answer"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("cb 1", STAFF, CITIZEN), "callback_id"),
        (("cb-1", "101", CITIZEN), "staff_interface"),
        (("cb-1", STAFF, "03-1234-5678"), "citizen_number"),
        (("cb-1", STAFF, "0312345678\r\nAction: Hangup"), "citizen_number"),
    ],
)
async def test_bad_input_names_the_field_sends_nothing_and_hides_the_number(
    server: AmiReplayServer,
    linked: tuple[AmiClient, CallControl, Recorder],
    args: tuple[str, str, str],
    field: str,
) -> None:
    _, control, _ = linked
    with pytest.raises(ValueError) as info:
        await control.originate_callback(*args)
    assert str(info.value).startswith(field)
    assert "1234" not in str(info.value)
    assert not server.actions_named("originate")
    assert control.callback_status("cb-1") is None


async def test_blind_transfer_redirects_to_the_department(
    server: AmiReplayServer, linked: tuple[AmiClient, CallControl, Recorder]
) -> None:
    _, control, _ = linked
    await control.transfer("Local/0301110000@from-pstn-00000000;2", "200")
    [sent] = server.actions_named("redirect")
    assert sent["Channel"] == "Local/0301110000@from-pstn-00000000;2"
    assert (sent["Context"], sent["Exten"], sent["Priority"]) == ("departments", "200", "1")
    server.errors["redirect"] = "Channel specified does not exist"
    with pytest.raises(AmiActionError, match="does not exist"):
        await control.transfer("Local/gone;2", "200")
    with pytest.raises(ValueError, match=r"^extension"):
        await control.transfer("Local/x;2", "20 0")


async def test_hangup(server: AmiReplayServer, linked: tuple[AmiClient, CallControl, Recorder]) -> None:
    _, control, _ = linked
    await control.hangup("Local/0301110000@from-pstn-00000000;2")
    [sent] = server.actions_named("hangup")
    assert sent["Channel"] == "Local/0301110000@from-pstn-00000000;2"


async def test_pause_and_unpause_member(
    server: AmiReplayServer, linked: tuple[AmiClient, CallControl, Recorder]
) -> None:
    _, control, _ = linked
    await control.pause_member(STAFF, "休憩")
    await control.unpause_member(STAFF)
    paused, unpaused = server.actions_named("queuepause")
    assert (paused["Interface"], paused["Paused"], paused["Queue"], paused["Reason"]) == (
        STAFF,
        "true",
        "operators",
        "休憩",
    )
    assert (unpaused["Paused"], "Reason" in unpaused) == ("false", False)
    server.errors["queuepause"] = "Interface not found"
    with pytest.raises(AmiActionError, match="Interface not found"):
        await control.pause_member("PJSIP/999", "休憩")


async def test_presence_from_queue_status_then_events(server: AmiReplayServer) -> None:
    server.queue_status = [
        {"Event": "QueueParams", "Queue": "operators", "Max": "0", "Strategy": "linear", "Calls": "0"},
        {
            "Event": "QueueMember",
            "Queue": "operators",
            "Name": "Operator 101",
            "Location": STAFF,
            "StateInterface": STAFF,
            "Membership": "static",
            "Penalty": "0",
            "CallsTaken": "3",
            "Status": "1",
            "Paused": "0",
            "PausedReason": "",
        },
        {
            "Event": "QueueMember",
            "Queue": "operators",
            "Name": "Operator 102",
            "Location": "Local/102@operator-phones",
            "Status": "1",
            "Paused": "1",
            "PausedReason": "研修",
        },
    ]
    board = PresenceBoard()
    changes: list[Any] = []
    client = AmiClient(ami_settings(server.port), [PresenceSink(board, [changes.append])], clock=CLOCK)
    client.start()
    try:
        await client.wait_connected(5)
        await eventually(lambda: len(board.members()) == 2)
        op101 = board.get("operators", STAFF)
        assert op101 is not None and op101.activity is Activity.AVAILABLE and op101.calls_taken == 3
        op102 = board.get("operators", "Local/102@operator-phones")
        assert op102 is not None and op102.activity is Activity.PAUSED and op102.pause_reason == "研修"
        server.push_event(
            {
                "Event": "QueueMemberPause",
                "Privilege": "agent,all",
                "Queue": "operators",
                "MemberName": "Operator 101",
                "Interface": STAFF,
                "Status": "1",
                "Paused": "1",
                "PausedReason": "休憩",
            }
        )
        await eventually(lambda: board.get("operators", STAFF).paused)  # type: ignore[union-attr]
        assert board.get("operators", STAFF).pause_reason == "休憩"  # type: ignore[union-attr]
        assert changes[-1].interface == STAFF
    finally:
        await client.stop()
