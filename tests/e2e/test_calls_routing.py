"""Real calls through Asterisk 22 with the shipped dialplan: routing by cti's calendars through the
routing state cti keeps in Asterisk (CTI_ROUTE_STATE, telephony/route_state.py; no AGI), the
static fallback when that state is absent or stale, the IVR category, the operators' queue.

Each call is an AMI Originate of ``Local/<ward number>@from-pstn`` (the trunk leg that runs
our dialplan) whose other leg is the simulated caller in ``citizen-sim``. cti's state publisher
runs in this process with an injected clock, so open/closed is fixed; it logs in as the
production-privileged "cti" user, so its Setvar is what production does.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr

from cti.calendar.rules import Calendars
from cti.config import CalendarSettings
from cti.core.clock import TOKYO, fixed_clock
from telephony.ami.link import AmiClient as CtiAmiClient
from telephony.events import CallRouted, DomainEvent
from telephony.plugin import TrackerSink
from telephony.route_state import STATE_VARIABLE, RouteStatePublisher
from telephony.settings import AmiSettings
from telephony.tracker import CallTracker

if TYPE_CHECKING:  # the fixtures' types (tests/e2e/conftest.py); pytest provides the objects
    from conftest import AmiClient, Event, Pbx

pytestmark = pytest.mark.asterisk

WARD_NUMBER = "0301110000"
CALLER = "0312345678"
DAY = datetime.fromisoformat("2026-12-28T10:00:00+09:00")  # Monday, open
NIGHT = datetime.fromisoformat("2026-12-28T23:30:00+09:00")


@dataclass
class Routing:
    calendars: Calendars
    publisher: RouteStatePublisher
    domain: list[DomainEvent]  # what cti's call tracker made of the calls (production user's events)


@asynccontextmanager
async def cti_routing(pbx: Pbx, at: datetime, interval: float = 1.0, reset: bool = True) -> AsyncIterator[Routing]:
    """cti's routing state publisher, deciding as if it were `at`; the state is removed afterwards
    (unless `reset` is False: as when a node dies, its last publication stays in Asterisk)."""
    calendars = Calendars.from_settings(CalendarSettings())
    client = CtiAmiClient(AmiSettings(host=pbx.ami_host, port=pbx.ami_port, username=pbx.ami_username,
                                      secret=SecretStr(pbx.ami_secret)))
    domain: list[DomainEvent] = []
    client.add_sink(TrackerSink(CallTracker(fixed_clock(at)), [domain.extend]))
    client.start()
    publisher = RouteStatePublisher(client, calendars, fixed_clock(at), interval=interval)
    try:
        await client.wait_connected(15)
        publisher.start()
        await until(lambda: publisher.published > 0, 10, "the first routing state")
        yield Routing(calendars, publisher, domain)
    finally:
        async with asyncio.timeout(30):  # a stop that hangs fails here, not at pytest's 300 s
            await publisher.stop()
            await client.stop()
        if reset:
            pbx.reset_globals()  # clearglobalvars=yes: no routing state left for the next test


async def until(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {within} s"
        await asyncio.sleep(0.02)


@dataclass
class Call:
    caller_leg: str  # Uniqueid of Local/...;1 (the simulated caller; also the Linkedid)
    trunk_leg: str  # Uniqueid of Local/...;2 (runs from-pstn)
    ami: AmiClient

    def mine(self, event: Event) -> bool:
        return event.get("Linkedid") == self.caller_leg or event.get("Uniqueid") in (
            self.caller_leg,
            self.trunk_leg,
        )

    def var(self, name: str) -> Callable[[Event], bool]:
        return lambda e: e.get("Event") == "VarSet" and e.get("Variable", "").lstrip("_") == name and self.mine(e)

    async def value(self, name: str, wait_s: float = 15) -> str:
        """The value the trunk leg's variable `name` was first set to."""
        event = await self.ami.wait_event(lambda e: self.var(name)(e) and e.get("Uniqueid") == self.trunk_leg, wait_s)
        return event["Value"]

    async def event(self, name: str, wait_s: float = 15, **fields: str) -> Event:
        return await self.ami.wait_event(
            lambda e: e.get("Event") == name and self.mine(e) and all(e.get(k) == v for k, v in fields.items()),
            wait_s,
        )

    async def hung_up(self, wait_s: float = 30) -> Event:
        return await self.event("Hangup", wait_s, Uniqueid=self.trunk_leg)

    def seen(self, name: str) -> list[Event]:
        return self.ami.matching(lambda e: e.get("Event") == name and self.mine(e))


async def place_call(ami: AmiClient, dtmf: str | None = None, **variables: str) -> Call:
    caller_leg, trunk_leg = f"test-{uuid.uuid4().hex[:12]}", f"test-{uuid.uuid4().hex[:12]}"
    if dtmf is not None:
        variables["SIM_DTMF"] = dtmf
    fields = {
        "Channel": f"Local/{WARD_NUMBER}@from-pstn",
        "Context": "citizen-sim",
        "Exten": "dtmf" if dtmf is not None else "talk",
        "Priority": "1",
        "CallerID": f'"Citizen" <{CALLER}>',
        "ChannelId": caller_leg,
        "OtherChannelId": trunk_leg,
        "Async": "true",
        "Timeout": "10000",
    }
    if variables:
        fields["Variable"] = "\n".join(f"{k}={v}" for k, v in variables.items())
    response = await ami.action("Originate", **fields)
    assert response["Response"] == "Success", response
    return Call(caller_leg=caller_leg, trunk_leg=trunk_leg, ami=ami)


async def test_open_hours_call_reaches_an_operator(pbx: Pbx, ami: AmiClient) -> None:
    async with cti_routing(pbx, DAY):
        started = time.monotonic()
        call = await place_call(ami, dtmf="1")
        assert await call.value("CTI_ROUTE") == "open"
        routed_s = time.monotonic() - started
        assert await call.value("CTI_OFFICE") == "open"
        assert await call.value("CTI_ROUTE_SOURCE") == "cti"
        joined = await call.event("QueueCallerJoin", Queue="operators")
        connected = await call.event("AgentConnect", Queue="operators")
        assert connected["Interface"] in ("Local/101@operator-phones", "Local/102@operator-phones")
        assert joined["Uniqueid"] == call.trunk_leg
        assert await call.value("CTI_CATEGORY") == "koseki"
        # setinterfacevar=yes: the caller's channel learns which operator took it.
        assert await call.value("MEMBERINTERFACE") == connected["Interface"]
        await call.hung_up()
    assert routed_s < 3.0, routed_s  # the bound; about 0.5 s measured (no round trip to cti)
    assert not call.seen("AGIExecStart")  # the call never waited on cti
    assert not [e for e in call.seen("VarSet") if e["Variable"] == "CTI_CLOSED_REASON"]
    assert not call.seen("QueueCallerAbandon")


async def test_night_call_hears_the_announcement_and_never_queues(pbx: Pbx, ami: AmiClient) -> None:
    async with cti_routing(pbx, NIGHT) as routing:
        call = await place_call(ami)
        assert await call.value("CTI_ROUTE") == "closed"
        assert await call.value("CTI_CLOSED_REASON") == "night"
        assert await call.value("CTI_NEXT_OPEN") == "2026-12-29T08:00:00+09:00"
        playback = await call.event("Newexten", Context="cti-prompt", Application="Playback")
        assert playback["AppData"].startswith("cti/closed-night")
        # No Japanese recording is installed in the test PBX: the stock prompt is the fallback.
        fallback = await call.event("Newexten", Context="cti-prompt", Application="Playback", Priority="4")
        assert fallback["AppData"].startswith("please-try-call-later")
        # The channel language is ja and only English files exist: Asterisk falls back per file.
        assert await call.ami.wait_event(lambda e: call.var("PLAYBACKSTATUS")(e) and e["Value"] == "SUCCESS")
        await call.event("Newexten", Context="cti-say-datetime", Application="SayUnixTime")
        await call.hung_up()
        # cti's tracker, on the production user's filtered events, has the route with its reason.
        await until(lambda: any(isinstance(d, CallRouted) for d in routing.domain), 5, "call_routed")
    [routed] = [d for d in routing.domain if isinstance(d, CallRouted)]
    assert (routed.call_id, routed.route, routed.reason) == (call.caller_leg, "closed", "night")
    assert not call.seen("QueueCallerJoin")


async def test_emergency_close_applies_to_the_next_call(pbx: Pbx, ami: AmiClient) -> None:
    # A refresh only every minute: the state can only follow the switch through the calendar's change hook.
    async with cti_routing(pbx, DAY, interval=60) as routing:
        before = routing.publisher.published
        routing.calendars.set_emergency("庁舎停電")
        await until(lambda: routing.publisher.published > before, 2, "republished state after the switch")
        call = await place_call(ami)
        assert await call.value("CTI_ROUTE") == "closed"
        assert await call.value("CTI_CLOSED_REASON") == "emergency"
        assert not [e for e in call.seen("VarSet") if e["Variable"] == "CTI_NEXT_OPEN"]
        await call.hung_up()
        assert not call.seen("QueueCallerJoin")
        # The closed branch skips "we open again at ..." when there is no next opening.
        assert not call.seen("Newexten") or not [
            e for e in call.seen("Newexten") if e.get("Application") == "SayUnixTime"
        ]


def tokyo_weekday_other_than_today() -> str:
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    return names[(datetime.now(TOKYO) + timedelta(days=3)).weekday()]


def new_year_today() -> bool:
    now = datetime.now(TOKYO)
    return now.month == 1 and now.day <= 3


async def test_cti_down_falls_back_to_static_schedule_open(pbx: Pbx, ami: AmiClient) -> None:
    # No routing state in Asterisk: cti never ran (or Asterisk restarted since).
    pbx.reset_globals()
    pbx.set_global("CTI_FALLBACK_HOURS", "00:00-23:59")
    try:
        call = await place_call(ami, dtmf="0")
        assert await call.value("CTI_ROUTE_SOURCE") == "fallback"
        if new_year_today():
            assert await call.value("CTI_CLOSED_REASON") == "year_end"
            return
        assert await call.value("CTI_ROUTE") == "open"
        await call.event("QueueCallerJoin", Queue="operators")
        await call.event("AgentConnect", Queue="operators")
        assert await call.value("CTI_CATEGORY") == "other"
        await call.hung_up()
        assert not call.seen("AGIExecStart")
    finally:
        pbx.reset_globals()


async def test_cti_down_falls_back_to_static_schedule_closed(pbx: Pbx, ami: AmiClient) -> None:
    pbx.reset_globals()
    pbx.set_global("CTI_FALLBACK_DAYS", tokyo_weekday_other_than_today())
    try:
        call = await place_call(ami)
        assert await call.value("CTI_ROUTE_SOURCE") == "fallback"
        assert await call.value("CTI_ROUTE") == "closed"
        assert await call.value("CTI_CLOSED_REASON") == ("year_end" if new_year_today() else "night")
        await call.event("Newexten", Context="cti-closed")
        await call.hung_up()
        assert not call.seen("QueueCallerJoin")
    finally:
        pbx.reset_globals()


@pytest.mark.parametrize(
    ("state", "why"),
    [
        ("{stale}/closed/closed/emergency//", "stale: cti stopped refreshing 60 s ago"),
        ("{future}/closed/closed/emergency//", "from the future: the clock stepped back"),
        ("{now}/maybe/closed///", "a route the dialplan does not know"),
        ("garbage", "malformed"),
    ],
)
async def test_unusable_state_takes_the_fallback(pbx: Pbx, ami: AmiClient, state: str, why: str) -> None:
    now = int(time.time())
    value = state.format(stale=now - 60, future=now + 60, now=now)
    pbx.set_global("CTI_FALLBACK_HOURS", "00:00-23:59")
    try:
        await ami.action("Setvar", Variable=STATE_VARIABLE, Value=value)
        call = await place_call(ami, dtmf="0")
        assert await call.value("CTI_ROUTE_SOURCE") == "fallback", why
        expected = "closed" if new_year_today() else "open"
        assert await call.value("CTI_ROUTE") == expected, why
        reasons = [e["Value"] for e in call.seen("VarSet") if e["Variable"].lstrip("_") == "CTI_CLOSED_REASON"]
        assert "emergency" not in reasons, why
        await call.hung_up()
    finally:
        pbx.reset_globals()


@pytest.mark.parametrize(("digit", "category"), [("2", "zei"), ("5", "kosodate"), ("9", "other")])
async def test_ivr_choice_arrives_as_category(pbx: Pbx, ami: AmiClient, digit: str, category: str) -> None:
    async with cti_routing(pbx, DAY):
        call = await place_call(ami, dtmf=digit)
        assert await call.value("CTI_CATEGORY") == category
        await call.event("QueueCallerJoin", Queue="operators")
        await call.hung_up()


async def test_no_choice_goes_to_the_queue_as_other(pbx: Pbx, ami: AmiClient) -> None:
    async with cti_routing(pbx, DAY):
        call = await place_call(ami)
        assert await call.value("CTI_CATEGORY", wait_s=20) == "other"
        await call.event("QueueCallerJoin", Queue="operators")
        await call.hung_up()


async def test_unanswered_operator_is_skipped(pbx: Pbx, ami: AmiClient) -> None:
    async with cti_routing(pbx, DAY):
        call = await place_call(ami, dtmf="1", __SIM_OP101="noanswer")
        connected = await call.event("AgentConnect", wait_s=40, Queue="operators")
        assert connected["Interface"] == "Local/102@operator-phones"
        await call.hung_up()


async def test_either_of_two_nodes_keeps_routing_and_the_dialplan_routes_alone_when_both_are_gone(
    pbx: Pbx, ami: AmiClient
) -> None:
    """Two cti nodes publish the same decision (issue 18): when one is gone the other keeps the state
    fresh, so calls are still routed by cti's calendars; when both are gone, the static schedule
    takes over as soon as the state is older than CTI_STATE_MAX_AGE (5 s). A node's end here is its
    AMI session closing with its last state left in Asterisk, which is what Asterisk sees of a kill -9."""
    pbx.reset_globals()
    pbx.set_global("CTI_FALLBACK_DAYS", tokyo_weekday_other_than_today())  # the static schedule: closed
    max_age = 5
    try:
        async with cti_routing(pbx, DAY, reset=False):  # node B (cti's calendars: open)
            async with cti_routing(pbx, DAY, reset=False):  # node A
                pass  # node A is gone: its last state stays in Asterisk and ages
            await asyncio.sleep(max_age + 1.5)  # A's last state alone would be stale by now
            call = await place_call(ami, dtmf="1")
            assert await call.value("CTI_ROUTE_SOURCE") == "cti"  # node B's refreshes
            assert await call.value("CTI_ROUTE") == "open"
            await call.hung_up()
        await asyncio.sleep(max_age + 1.5)  # both gone: their state is stale
        call = await place_call(ami, dtmf="1")
        assert await call.value("CTI_ROUTE_SOURCE") == "fallback"
        assert await call.value("CTI_ROUTE") == "closed"
        await call.hung_up()
    finally:
        pbx.reset_globals()
