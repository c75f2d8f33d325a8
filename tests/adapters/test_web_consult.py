"""The consult-transfer and hold routes (screenpop/consult_api.py) over real HTTP, with the real
call tracker fed a real capture (tests/fixtures/ami/18-consult-cancel-hold-resume.txt: operator
101 answers) and a recording stand-in for the AMI actions: the server decides whose call it is,
refuses what does not apply now (in Japanese), and sends the action for the operator's own leg.
The actions against a real Asterisk: tests/e2e/test_consult_hold_pbx.py."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from cti.core.clock import TOKYO
from screenpop.dispatcher import DISPATCHER
from telephony import keys as telephony_keys
from telephony.ami.actions import AmiNotConnected
from telephony.ami.link import AmiClient
from telephony.control import CallControl
from telephony.frames import read_capture
from telephony.plugin import Telephony
from telephony.presence import PresenceBoard
from telephony.tracker import CallTracker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from browser import PASSWORD, MovableClock, StaffUser, build_operator_app, operator_settings

CAPTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ami" / "18-consult-cancel-hold-resume.txt"
CALL = "1800000100.100"
SEAT = "Local/101@operator-phones"
TUESDAY = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)  # ward office open
SATURDAY = datetime(2026, 11, 28, 10, 0, tzinfo=TOKYO)  # ward office closed
PORT = 8080
ORIGIN = f"http://127.0.0.1:{PORT}"
BASE = f"/api/operator/calls/{CALL}"


class RecordingConsult:
    """Stands in for telephony.consult.ConsultControl: records what would be sent to Asterisk."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, ...]] = []
        self.held: set[str] = set()
        self.fail: Exception | None = None
        self.status_fail: Exception | None = None  # asking Asterisk whose hold it is fails

    async def held_by_cti(self, channel: str) -> bool:
        if self.status_fail is not None:
            raise self.status_fail
        return channel in self.held

    async def _do(self, *what: str) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append(what)

    async def start(self, channel: str, extension: str) -> None:
        await self._do("start", channel, extension)

    async def complete(self, channel: str) -> None:
        await self._do("complete", channel)

    async def cancel(self, channel: str) -> None:
        await self._do("cancel", channel)

    async def hold(self, channel: str) -> None:
        await self._do("hold", channel)
        self.held.add(channel)

    async def resume(self, channel: str) -> None:
        await self._do("resume", channel)
        self.held.discard(channel)


class Env:
    def __init__(self, server: TestServer, clock: MovableClock, tracker: CallTracker, consult: RecordingConsult):
        self.server, self.clock, self.tracker, self.consult = server, clock, tracker, consult
        self.frames = [f.frame for f in read_capture(CAPTURE) if "Event" in f.frame]
        self.position = 0

    async def until(self, event: str, **fields: str) -> None:
        """Feed the capture to the tracker (and its events to the pop dispatcher) up to `event`."""
        while True:
            frame = self.frames[self.position]
            self.position += 1
            events = self.tracker.feed(frame)
            await self.server.app[DISPATCHER].on_events(events)
            if frame.get("Event") == event and all(frame.get(k) == v for k, v in fields.items()):
                return


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = MovableClock(TUESDAY)
    settings = operator_settings(tmp_path, PORT)
    app = build_operator_app(settings, clock, [StaffUser("tanaka"), StaffUser("suzuki")])
    tracker = CallTracker(clock)
    consult = RecordingConsult()
    client = AmiClient(settings.ami, clock=clock)  # never started: only the tracker and consult are used
    control = CallControl(client, settings.call_control, queue="operators", clock=clock)
    app[telephony_keys.AMI] = Telephony(client, control, PresenceBoard(), tracker, consult=consult)  # type: ignore[arg-type]
    async with TestServer(app) as server:
        yield Env(server, clock, tracker, consult)


async def login(env: Env, user: str, seat: str) -> tuple[TestClient[Any, Any], dict[str, str]]:
    client: TestClient[Any, Any] = TestClient(env.server)
    await client.start_server()
    resp = await client.post("/api/login", json={"user_id": user, "password": PASSWORD}, headers={"Origin": ORIGIN})
    headers = {"X-CSRF-Token": (await resp.json())["csrf_token"], "Origin": ORIGIN}
    assert (await client.post("/api/seat", json={"interface": seat}, headers=headers)).status == 200
    return client, headers


async def post(client: TestClient[Any, Any], headers: dict[str, str], path: str,
               body: dict[str, Any] | None = None) -> tuple[int, Any]:
    resp = await client.post(path, json=body if body is not None else {}, headers=headers)
    return resp.status, await resp.json()


async def test_the_answering_operator_holds_consults_and_completes_her_own_call(env: Env) -> None:
    op, h = await login(env, "tanaka", SEAT)
    other, oh = await login(env, "suzuki", "Local/102@operator-phones")
    try:
        await env.until("AgentConnect")
        leg = env.tracker.get(CALL).operator_channel  # type: ignore[union-attr]
        assert leg is not None and leg.startswith("Local/101@operator-phones-") and leg.endswith(";1")

        # another operator: never her call, whatever she asks
        for path in ("hold", "resume", "consult/complete", "consult/cancel"):
            status, body = await post(other, oh, f"{BASE}/{path}")
            assert (status, body["error"]["code"]) == (403, "not_your_call"), path
        status, body = await post(other, oh, f"{BASE}/consult", {"department": "hoken"})
        assert (status, body["error"]["code"]) == (403, "not_your_call")
        assert env.consult.sent == []

        # nothing to resume, complete or cancel yet; a department that does not exist
        assert (await post(op, h, f"{BASE}/resume"))[1]["error"]["code"] == "not_on_hold"
        assert (await post(op, h, f"{BASE}/consult/complete"))[1]["error"]["code"] == "no_consult"
        assert (await post(op, h, f"{BASE}/consult/cancel"))[1]["error"]["code"] == "no_consult"
        status, body = await post(op, h, f"{BASE}/consult", {"department": "nowhere"})
        assert (status, body["error"]["field"]) == (422, "department")

        status, body = await post(op, h, f"{BASE}/consult", {"department": "hoken"})
        assert status == 202 and body == {"call_id": CALL, "requested": "consult", "department": "hoken"}
        assert env.consult.sent == [("start", leg, "203")]
        # the capture's consult (to 202): Asterisk's Hold and the consult leg
        await env.until("Newchannel", Context="consult")
        assert (await post(op, h, f"{BASE}/hold"))[1]["error"]["code"] == "consult_active"
        # nor a blind transfer of the citizen waiting on hold (Redirect would strand the consult)
        status, body = await post(op, h, f"{BASE}/transfer", {"department": "hoken"})
        assert (status, body["error"]["code"]) == (409, "on_hold")
        assert (await post(op, h, f"{BASE}/consult", {"department": "hoken"}))[1]["error"]["code"] == "consult_active"
        status, _ = await post(op, h, f"{BASE}/consult/cancel")
        assert status == 202 and env.consult.sent[-1] == ("cancel", leg)
        await env.until("Hangup", Context="consult")
        await env.until("Hangup", Context="consult")
        assert (await post(op, h, f"{BASE}/consult/cancel"))[1]["error"]["code"] == "no_consult"

        status, _ = await post(op, h, f"{BASE}/hold")
        assert status == 202 and env.consult.sent[-1] == ("hold", leg)
        await env.until("Hold")
        assert (await post(op, h, f"{BASE}/hold"))[1]["error"]["code"] == "on_hold"  # a 2nd *7 would resume
        status, body = await post(op, h, f"{BASE}/consult", {"department": "hoken"})
        assert (status, body["error"]["code"]) == (409, "on_hold")
        current = (await (await op.get("/api/operator/current")).json())["pop"]
        assert (current["call_id"], current["on_hold"], current["consult_extension"]) == (CALL, True, None)
        status, _ = await post(op, h, f"{BASE}/resume")
        assert status == 202 and env.consult.sent[-1] == ("resume", leg)
        await env.until("MusicOnHoldStop")
        assert (await post(op, h, f"{BASE}/resume"))[1]["error"]["code"] == "not_on_hold"
    finally:
        await op.close()
        await other.close()


async def test_a_phone_hold_is_shown_but_not_resumed_with_a_digit(env: Env) -> None:
    op, h = await login(env, "tanaka", SEAT)
    try:
        await env.until("AgentConnect")
        await env.until("Hold")  # the consult's hold: cti did not send this one
        await env.until("Unhold")
        await env.until("Hold")  # as if the operator's phone had put the call on hold
        status, body = await post(op, h, f"{BASE}/resume")
        assert (status, body["error"]["code"]) == (409, "phone_hold") and "電話機" in body["error"]["message"]
        assert env.consult.sent == []
        # the AMI link is down: cti cannot tell whose hold it is, so it does not say it is the phone's
        env.consult.status_fail = AmiNotConnected("Status", "link is reconnecting")
        status, body = await post(op, h, f"{BASE}/resume")
        assert (status, body["error"]["code"]) == (502, "telephony_failed") and "もう一度" in body["error"]["message"]
        assert env.consult.sent == []
    finally:
        await op.close()


async def test_closed_office_refuses_the_consult_and_a_refusal_of_asterisk_is_a_502(env: Env) -> None:
    op, h = await login(env, "tanaka", SEAT)
    try:
        await env.until("AgentConnect")
        env.clock.at = SATURDAY.replace(hour=11)
        status, body = await post(op, h, f"{BASE}/consult", {"department": "hoken"})
        assert (status, body["error"]["code"]) == (409, "office_closed") and "閉庁" in body["error"]["message"]
        # hold works whether or not the office is open
        env.consult.fail = RuntimeError("AMI down")
        status, body = await post(op, h, f"{BASE}/hold")
        assert (status, body["error"]["code"]) == (502, "telephony_failed")
        assert "もう一度" in body["error"]["message"]
    finally:
        await op.close()


async def test_an_ended_call_has_nothing_to_hold(env: Env) -> None:
    op, h = await login(env, "tanaka", SEAT)
    try:
        await env.until("AgentConnect")
        while env.position < len(env.frames):
            await env.until(env.frames[env.position]["Event"])
        status, body = await post(op, h, f"{BASE}/hold")
        # the pop router forgets an ended call: no longer anybody's (as for the blind transfer)
        assert (status, body["error"]["code"]) == (403, "not_your_call")
        assert env.consult.sent == []
    finally:
        await op.close()
