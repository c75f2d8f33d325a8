"""The AMI client against a real TCP server speaking AMI: login, filters, resync, replay of real
captures, the panoramisk flaws it works around, reconnect, half-open detection, timeouts."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from ami_replay_server import AmiReplayServer, Frame, load_capture
from prometheus_client import REGISTRY
from pydantic import SecretStr

from telephony.ami.actions import AmiActionError, AmiConnectionLost, AmiNotConnected, AmiTimeout
from telephony.ami.filters import DEFAULT_EVENT_NAMES, LOGIN_EVENT_MASK
from telephony.ami.link import AmiClient, LinkState
from telephony.ami.sinks import Snapshot
from telephony.settings import AmiSettings

CAPTURES = [
    "01-inbound-queue-answered.txt",
    "02-inbound-queue-abandon.txt",
    "03-inbound-closed-hours.txt",
    "04-outbound-callback.txt",
    "05-two-concurrent-calls.txt",
]
# Recorded for issue 13's tracker fixes (re-queue, transfers, a consult leg): through the live link
# the tracker must give what it gives on the file (tests/unit/test_tracker_fixes.py).
FIX_CAPTURES = [
    "11-requeue-second-operator.txt",
    "12-transfer-citizen-hangs-up.txt",
    "13-blind-transfer-key.txt",
    # 14 (a consult leg) makes no domain event at all: tests/unit/test_tracker_fixes.py covers it
    "15-blind-transfer-phone-context.txt",
    "16-transfer-department-hangs-up.txt",
]


class Recorder:
    """A sink that records everything, in order."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []

    def on_event(self, event: Mapping[str, str]) -> None:
        self.log.append(("event", dict(event)))

    def on_resync(self, snapshot: Snapshot) -> None:
        self.log.append(("resync", snapshot))

    @property
    def events(self) -> list[dict[str, str]]:
        return [item for kind, item in self.log if kind == "event"]

    @property
    def resyncs(self) -> list[Snapshot]:
        return [item for kind, item in self.log if kind == "resync"]


def ami_settings(port: int, **overrides: Any) -> AmiSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "username": "cti",
        "secret": SecretStr("s3cret"),
        "ping_interval": 5.0,
        "action_timeout": 2.0,
        "reconnect_initial": 0.05,
        "reconnect_max": 0.4,
    }
    values.update(overrides)
    return AmiSettings(**values)


@pytest.fixture
async def server() -> AsyncIterator[AmiReplayServer]:
    srv = AmiReplayServer()
    await srv.start()
    yield srv
    await srv.close()


async def started(server: AmiReplayServer, *sinks: Any, **overrides: Any) -> AmiClient:
    client = AmiClient(ami_settings(server.port, **overrides), list(sinks), rnd=lambda: 1.0)
    client.start()
    await client.wait_connected(5)
    return client


async def eventually(predicate: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def expected_after_filter(events: list[dict[str, str]]) -> list[dict[str, str]]:
    """What Asterisk should send us: our login class mask, then our include filters."""
    mask = set(LOGIN_EVENT_MASK.split(","))
    kept = []
    for event in events:
        classes = {c.strip() for c in event.get("Privilege", "").split(",")} - {"all"}
        if not classes & mask:
            continue
        name = event["Event"]
        if (
            name in DEFAULT_EVENT_NAMES
            or (name == "VarSet" and event["Variable"].startswith("CTI_"))
            or (
                name == "Newexten"
                and (event["Application"] == "Hangup" or event["Context"] in ("outbound-callback", "departments"))
            )
        ):
            kept.append(event)
    return kept


def without_action_ids(events: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in e.items() if k != "ActionID"} for e in events]


async def test_login_uses_least_privilege_mask_then_filters_then_resyncs(server: AmiReplayServer) -> None:
    recorder = Recorder()
    client = await started(server, recorder)
    try:
        names = [str(a["Action"]) for a in server.current.actions]
        assert names[0] == "Login"
        login = server.current.actions[0]
        assert login["Events"] == "call,agent,dialplan,system"
        filters = [a for a in server.current.actions if a["Action"] == "Filter"]
        criteria = [str(f["MatchCriteria"]) for f in filters]
        assert "action(include),name(OriginateResponse)" in criteria
        assert "action(include),name(Newexten)" not in criteria
        newexten = {
            str(f["MatchCriteria"]): f["Filter"] for f in filters if "name(Newexten)" in str(f["MatchCriteria"])
        }
        assert newexten == {
            "action(include),name(Newexten),header(Application),method(regex)": "^Hangup$",
            "action(include),name(Newexten),header(Context),method(regex)": "^(departments|outbound-callback)$",
        }
        varset = [f for f in filters if "name(VarSet)" in str(f["MatchCriteria"])]
        assert len(varset) == 1 and varset[0]["Filter"] == "^_{0,2}CTI_"
        assert names[len(filters) + 1 :] == ["CoreShowChannels", "QueueStatus"]
        assert client.filters_installed
        assert len(recorder.resyncs) == 1
    finally:
        await client.stop()


@pytest.mark.parametrize("capture_name", CAPTURES)
async def test_replayed_capture_reaches_sink_filtered_and_in_order(server: AmiReplayServer, capture_name: str) -> None:
    capture = load_capture(capture_name)
    server.scenario = capture
    recorder = Recorder()
    client = await started(server, recorder)
    try:
        await eventually(lambda: len(recorder.events) == 1)
        assert recorder.events[0]["Event"] == "FullyBooted"
        recorder.log.clear()
        answers = await asyncio.gather(
            *[
                client.send_action(
                    {
                        "Action": "Originate",
                        "Channel": "Local/0301110000@from-pstn",
                        "Application": "Wait",
                        "Data": "60",
                        "Async": "true",
                    }
                )
                for _ in capture.originate_ids
            ]
        )
        assert all(a.headers["Response"] == "Success" for a in answers)
        expected = expected_after_filter(capture.events)
        await eventually(lambda: len(recorder.events) >= len(expected))
        await asyncio.sleep(0.05)
        got = recorder.events
        assert without_action_ids(got) == without_action_ids(expected)
        # TestEvent never reaches us, Newexten only where the tracker reads it, VarSet only CTI_*
        assert not [e for e in got if e["Event"] == "TestEvent"]
        assert len([e for e in got if e["Event"] == "Newexten"]) < len(
            [e for e in capture.events if e["Event"] == "Newexten"]
        )
        assert all(e["Variable"].startswith("CTI_") for e in got if e["Event"] == "VarSet")
        # The panoramisk flaw: OriginateResponse carries our Originate's ActionID and must still
        # be delivered as an event, with that ActionID.
        ours = {str(a) for a in server.current.id_map.values()}
        originate_responses = [e for e in got if e["Event"] == "OriginateResponse"]
        expected_or = [e for e in expected if e["Event"] == "OriginateResponse"]
        assert len(originate_responses) == len(expected_or)
        assert all(e["ActionID"] in ours for e in originate_responses)
    finally:
        await client.stop()


async def test_event_with_pending_action_id_is_delivered_not_swallowed(server: AmiReplayServer) -> None:
    """The OriginateResponse event arrives while the Originate is still pending (before its Response)."""

    def early_event(session: Any, action: dict[str, Any]) -> None:
        if action.get("Action") == "Originate":
            server.push_event(
                {
                    "Event": "OriginateResponse",
                    "Privilege": "call,all",
                    "ActionID": action["ActionID"],
                    "Response": "Failure",
                    "Channel": "Local/101@operator-phones",
                    "Reason": "0",
                }
            )

    server.on_action = early_event
    recorder = Recorder()
    client = await started(server, recorder)
    try:
        answer = await client.send_action(
            {
                "Action": "Originate",
                "Channel": "Local/101@operator-phones",
                "Exten": "200",
                "Context": "departments",
                "Async": "true",
            }
        )
        assert answer.headers["Message"] == "Originate successfully queued"
        await eventually(lambda: any(e["Event"] == "OriginateResponse" for e in recorder.events))
        event = next(e for e in recorder.events if e["Event"] == "OriginateResponse")
        assert event["ActionID"] == answer.headers["ActionID"] and event["Response"] == "Failure"
    finally:
        await client.stop()


async def test_action_while_disconnected_fails_at_once() -> None:
    client = AmiClient(ami_settings(1), [])
    with pytest.raises(AmiNotConnected):
        await asyncio.wait_for(client.send_action({"Action": "Ping"}), 0.5)


async def test_asterisk_error_message_is_raised(server: AmiReplayServer) -> None:
    server.errors["redirect"] = "Channel specified does not exist"
    client = await started(server)
    try:
        with pytest.raises(AmiActionError) as info:
            await client.send_action(
                {"Action": "Redirect", "Channel": "PJSIP/x", "Exten": "200", "Context": "departments", "Priority": "1"}
            )
        assert info.value.action == "Redirect"
        assert info.value.message == "Channel specified does not exist"
        assert client.connected
    finally:
        await client.stop()


async def test_action_timeout_raises_and_link_stays_up(server: AmiReplayServer) -> None:
    server.silent.add("hangup")
    client = await started(server)
    try:
        began = time.monotonic()
        with pytest.raises(AmiTimeout):
            await client.send_action({"Action": "Hangup", "Channel": "PJSIP/x"}, within=0.2)
        assert 0.15 < time.monotonic() - began < 1.0
        assert client.connected
        assert (await client.send_action({"Action": "Ping"})).headers["Ping"] == "Pong"
    finally:
        await client.stop()


async def test_values_with_line_breaks_are_refused(server: AmiReplayServer) -> None:
    client = await started(server)
    try:
        with pytest.raises(ValueError, match="line breaks"):
            await client.send_action({"Action": "Hangup", "Channel": "x\r\nAction: Originate"})
        assert not server.actions_named("hangup")
    finally:
        await client.stop()


async def test_failing_handlers_do_not_stop_the_reader(server: AmiReplayServer) -> None:
    class Broken:
        def on_event(self, event: Mapping[str, str]) -> None:
            raise RuntimeError("handler bug")

        def on_resync(self, snapshot: Snapshot) -> None:
            raise RuntimeError("handler bug")

    class BrokenAsync:
        async def on_event(self, event: Mapping[str, str]) -> None:
            raise RuntimeError("async handler bug")

        async def on_resync(self, snapshot: Snapshot) -> None:
            return None

    capture = load_capture("03-inbound-closed-hours.txt")
    server.scenario = capture
    recorder = Recorder()
    client = await started(server, Broken(), BrokenAsync(), recorder)
    try:
        await client.send_action(
            {
                "Action": "Originate",
                "Channel": "Local/0301110000@from-pstn",
                "Application": "Wait",
                "Data": "60",
                "Async": "true",
            }
        )
        expected = expected_after_filter(capture.events)
        await eventually(lambda: len(recorder.events) == len(expected) + 1)  # + FullyBooted at login
        assert client.connected
        assert (await client.send_action({"Action": "Ping"})).headers["Ping"] == "Pong"
    finally:
        await client.stop()
    assert not client._tasks  # every handler task was awaited or cancelled


async def test_events_during_resync_are_delivered_after_it(server: AmiReplayServer) -> None:
    server.channels = [
        {
            "Channel": "Local/0301110000@from-pstn-00000001;2",
            "Uniqueid": "1795822172.2",
            "Linkedid": "1795822172.1",
            "ChannelState": "6",
            "Context": "from-pstn",
        }
    ]

    def hangup_during_resync(session: Any, action: dict[str, Any]) -> None:
        if action.get("Action") == "CoreShowChannels":
            server.push_event(
                {
                    "Event": "Hangup",
                    "Privilege": "call,all",
                    "Channel": "Local/0301110000@from-pstn-00000001;2",
                    "Uniqueid": "1795822172.2",
                    "Cause": "16",
                }
            )

    server.on_action = hangup_during_resync
    recorder = Recorder()
    client = await started(server, recorder)
    try:
        await eventually(lambda: any(e["Event"] == "Hangup" for e in recorder.events))
        assert recorder.log[0][0] == "resync"
        assert [c["Uniqueid"] for c in recorder.log[0][1].channels] == ["1795822172.2"]
        # FullyBooted (sent at login) and the Hangup were held back until the resync was delivered
        assert [item["Event"] for kind, item in recorder.log[1:]] == ["FullyBooted", "Hangup"]
    finally:
        await client.stop()


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    value = REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


async def test_reconnect_after_server_closes_resyncs_and_never_resends_originate(
    server: AmiReplayServer,
) -> None:
    server.silent.add("originate")  # the Originate is pending when the link drops
    recorder = Recorder()
    reconnects_before = sample("cti_ami_reconnects_total")
    client = await started(server, recorder)
    try:
        assert sample("cti_ami_connected") == 1.0
        pending = asyncio.ensure_future(
            client.send_action(
                {
                    "Action": "Originate",
                    "Channel": "Local/101@operator-phones",
                    "Context": "outbound-callback",
                    "Exten": "0312345678",
                    "Async": "true",
                    "Variable": "CTI_CALLBACK_ID=cb-1",
                },
                within=5,
            )
        )
        await eventually(lambda: len(server.actions_named("originate")) == 1)
        server.channels = [
            {
                "Channel": "Local/101@operator-phones-00000006;1",
                "Uniqueid": "1795822203.12",
                "ChanVariable": "CTI_CALLBACK_ID=cb-1",
            }
        ]
        await server.drop()
        with pytest.raises(AmiConnectionLost):
            await pending
        await eventually(lambda: len(recorder.resyncs) == 2)
        status = client.status()
        assert status.state is LinkState.CONNECTED and status.reconnects == 1
        assert sample("cti_ami_reconnects_total") == reconnects_before + 1
        assert server.logins == 2
        assert len(server.actions_named("originate")) == 1  # never re-sent
        # the second session was filtered and resynced too
        assert [a["Action"] for a in server.current.actions][-2:] == ["CoreShowChannels", "QueueStatus"]
        assert recorder.resyncs[1].channels[0]["ChanVariable(CTI_CALLBACK_ID)"] == "cb-1"
    finally:
        await client.stop()
    assert client.status().state is LinkState.STOPPED
    assert sample("cti_ami_connected") == 0.0


async def test_shutdown_event_from_capture_08_leads_to_reconnect(server: AmiReplayServer) -> None:
    capture = load_capture("08-ami-restart-reconnect.txt")
    assert [f.headers.get("Event") for f in capture.frames] == ["Shutdown"]
    recorder = Recorder()
    client = await started(server, recorder)
    try:
        await server.push(capture.frames)
        await eventually(lambda: len(recorder.resyncs) == 2)
        assert any(e["Event"] == "Shutdown" for e in recorder.events)
        assert server.logins == 2 and client.status().reconnects == 1
    finally:
        await client.stop()


async def test_backoff_grows_exponentially_and_is_capped(server: AmiReplayServer) -> None:
    """Every attempt fails (login refused): the gaps between attempts double up to the cap."""
    server.errors["login"] = "Authentication failed"
    client = AmiClient(ami_settings(server.port, reconnect_initial=0.05, reconnect_max=0.2), [], rnd=lambda: 1.0)
    stamps: list[float] = []
    server.on_action = lambda session, action: stamps.append(time.monotonic())
    client.start()
    try:
        await eventually(lambda: len(stamps) >= 6, within=5)
    finally:
        await client.stop()
    gaps = [b - a for a, b in itertools.pairwise(stamps)][:5]
    for gap, nominal in zip(gaps, [0.05, 0.1, 0.2, 0.2, 0.2], strict=True):
        assert nominal * 0.9 <= gap <= nominal + 0.15, (gaps, nominal)
    assert client.status().last_error == "AmiActionError"


async def test_half_open_connection_detected_within_two_ping_intervals(server: AmiReplayServer) -> None:
    interval = 0.5
    recorder = Recorder()
    client = await started(server, recorder, ping_interval=interval)
    try:
        await asyncio.sleep(interval * 1.5)  # at least one ping answered
        assert len(server.actions_named("ping")) >= 1 and client.connected
        server.frozen = True  # the peer still holds the socket but answers nothing
        frozen_at = time.monotonic()
        await eventually(lambda: not client.connected, within=3 * interval + 1)
        detected = time.monotonic() - frozen_at
        assert detected <= 2 * interval + 0.2, detected  # 3 intervals (1.5 s) would fail
        server.frozen = False
        await eventually(lambda: len(recorder.resyncs) == 2)
        assert client.status().last_error == "ping timeout" and client.status().reconnects == 1
    finally:
        await client.stop()


async def test_readiness_reports_link_state(server: AmiReplayServer) -> None:
    client = AmiClient(ami_settings(server.port), [])
    ready, detail = client.readiness()
    assert not ready and detail["state"] == "disconnected"
    client.start()
    try:
        await client.wait_connected(5)
        ready, detail = client.readiness()
        assert ready and detail["state"] == "connected" and detail["reconnects"] == 0
    finally:
        await client.stop()


def test_frame_helper_roundtrip() -> None:
    frame = Frame(["Event: Hangup", "AccountCode: "], 0.0)
    assert frame.headers == {"Event": "Hangup", "AccountCode": ""}


async def test_utf8_character_split_across_reads_survives(server: AmiReplayServer) -> None:
    recorder = Recorder()
    client = await started(server, recorder)
    try:
        frame = (
            "Event: NewCallerid\r\nPrivilege: call,all\r\nChannel: PJSIP/trunk-00000001\r\n"
            "CallerIDName: 区役所 太郎\r\nUniqueid: 1.1\r\nAccountCode: \r\n\r\n"
        ).encode()
        cut = frame.index("区".encode()) + 1  # inside the 3-byte character
        await server.push_raw(frame[:cut])
        await asyncio.sleep(0.05)
        await server.push_raw(frame[cut:])
        await eventually(lambda: any(e["Event"] == "NewCallerid" for e in recorder.events))
        event = next(e for e in recorder.events if e["Event"] == "NewCallerid")
        assert event["CallerIDName"] == "区役所 太郎"
        assert event["AccountCode"] == ""  # an empty last header is kept
    finally:
        await client.stop()


async def test_endless_frame_drops_the_link(server: AmiReplayServer) -> None:
    recorder = Recorder()
    client = await started(server, recorder)
    try:
        await server.push_raw(b"Event: Junk\r\n" + b"X: " + b"y" * (1 << 20) + b"\r\n")
        await eventually(lambda: len(recorder.resyncs) == 2)  # dropped, reconnected, resynced
        assert not any(e["Event"] == "Junk" for e in recorder.events)
    finally:
        await client.stop()


@pytest.mark.parametrize("capture_name", CAPTURES + FIX_CAPTURES)
async def test_tracker_through_the_link_equals_tracker_fed_directly(server: AmiReplayServer, capture_name: str) -> None:
    """The filtered stream, through TCP and the client, gives the tracker the same domain events
    as the whole capture fed directly: the filter keeps everything the tracker uses."""
    from datetime import datetime

    from cti.core.clock import TOKYO, fixed_clock
    from telephony.plugin import TrackerSink
    from telephony.tracker import CallTracker

    clock = fixed_clock(datetime(2026, 11, 27, 10, 0, tzinfo=TOKYO))
    capture = load_capture(capture_name)
    direct = CallTracker(clock)
    expected = [d.as_dict() for e in capture.events for d in direct.feed(e)]
    assert expected, "the capture produces domain events"

    server.scenario = capture
    via_link = CallTracker(clock)
    got: list[dict[str, Any]] = []
    client = await started(server, TrackerSink(via_link, [lambda events: got.extend(d.as_dict() for d in events)]))
    try:
        await asyncio.gather(
            *[
                client.send_action(
                    {
                        "Action": "Originate",
                        "Channel": "Local/0301110000@from-pstn",
                        "Application": "Wait",
                        "Data": "60",
                        "Async": "true",
                    }
                )
                for _ in capture.originate_ids
            ]
        )
        await asyncio.wait_for(server.replays_done.wait(), 5)
        await eventually(lambda: len(got) >= len(expected))
        await asyncio.sleep(0.05)
        assert got == expected
        assert [c.as_dict() for c in via_link.live_calls()] == [c.as_dict() for c in direct.live_calls()]
    finally:
        await client.stop()


async def test_a_cancel_that_meets_the_answer_is_not_swallowed(server: AmiReplayServer) -> None:
    """The answer and a cancel in the same loop turn: the caller must see the cancel. Python 3.11's
    asyncio.wait_for returned the answer instead (CPython gh-86296), and a stop() that cancelled a
    supervisor at that moment waited forever (the e2e routing test hung 300 s in CI)."""
    server.silent.add("hangup")
    client = await started(server)
    try:
        sending = asyncio.create_task(client.send_action({"Action": "Hangup", "Channel": "PJSIP/x"}, within=5))
        await eventually(lambda: len(client._pending) == 1)
        (action_id,) = list(client._pending._by_id)
        client._pending.answer({"Response": "Success", "ActionID": action_id})
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        assert client.connected
    finally:
        await client.stop()
