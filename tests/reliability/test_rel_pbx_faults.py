"""PBX faults against the real Asterisk 22 (``pbx`` fixture) with the whole cti app running
(create_app on a TestServer, AMI to the PBX as the production-privileged "cti" user; calls are
routed by the state cti publishes into Asterisk, telephony/route_state.py; the FastAGI server runs
too, but the shipped dialplan does not call it).

Each round puts calls up (a citizen waiting in the queue, and a callback whose staff leg answered
while the citizen's phone rings), checks that the app's live call list equals Asterisk's
CoreShowChannels, injects the fault, and then checks:

* cti reconnects within 5 s of Asterisk being back (measured per round);
* after the resync the live call list equals CoreShowChannels again (Asterisk lost its calls
  with its process: both are empty), and every call that was live ended exactly once
  (``ended_while_disconnected``): no call lost, none left hanging;
* no callback Originate is ever sent twice (every Originate the AMI client writes is counted);
* a new call placed after the fault is tracked, matching CoreShowChannels with calls up.

Faults: ``core restart now`` (CI 3, CTI_RELIABILITY_LONG=1: 10), SIGKILL then start (CI 1, long 3),
and a dropped AMI link while Asterisk keeps its calls (the resync must keep them, once each).
Only the PBX side is covered here; tests/e2e/test_ami_pbx.py covers the bare AMI client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rel_app import running_app, settings_for
from reliability_support import LONG, figures

from cti import keys
from cti.core.clock import TOKYO
from telephony.ami.actions import AmiActionError

pytestmark = pytest.mark.asterisk

STAFF = "Local/101@operator-phones"
CITIZEN = "0312345678"
RESTARTS = 10 if LONG else 3
KILLS = 3 if LONG else 1
RECONNECT_LIMIT_S = 5.0
END_TYPES = {"call_ended", "callback_ended"}


async def until(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.02)


class Rig:
    def __init__(self, env: Any, pbx: Any) -> None:
        self.env = env
        self.pbx = pbx
        self.telephony = env.app[keys.AMI]
        self.client = self.telephony.client
        self.tracker = env.app[keys.TRACKER]
        self.domain: list[Any] = []
        self.telephony.domain_listeners.append(self.domain.extend)
        self.originates: Counter[str] = Counter()
        original = self.client._send

        async def counting_send(action: Any, **kwargs: Any) -> Any:
            if str(action.get("Action", "")).lower() == "originate":
                self.originates[str(action.get("Variable", action.get("Channel")))] += 1
            return await original(action, **kwargs)

        self.client._send = counting_send  # every Originate written to the socket is counted

    async def channels(self) -> list[dict[str, str]]:
        answer = await self.client.send_action({"Action": "CoreShowChannels"},
                                               list_complete="CoreShowChannelsComplete")
        return [e for e in answer.events if e.get("Event") == "CoreShowChannel"]

    async def hang_up_all(self) -> None:
        for chan in await self.channels():
            with contextlib.suppress(AmiActionError):  # its other half went first
                await self.client.send_action({"Action": "Hangup", "Channel": chan["Channel"]})

    async def assert_matches_asterisk(self) -> int:
        """The tracker's live calls are exactly Asterisk's calls (by Linkedid). Returns how many."""
        deadline = time.monotonic() + 5
        while True:
            asterisk = {c["Linkedid"] for c in await self.channels()}
            ours = {c.call_id for c in self.tracker.live_calls()}
            if asterisk == ours or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)  # events still in flight
        assert ours == asterisk, (ours, asterisk)
        return len(ours)

    async def put_calls_up(self, tag: str) -> set[str]:
        """A citizen waiting in the queue and a callback ringing the citizen. Returns their call ids."""
        self.pbx.set_global("SIM_OPERATORS", "noanswer")
        self.pbx.set_global("SIM_CITIZEN", "noanswer")
        before = {c.call_id for c in self.tracker.live_calls()}
        await self.client.send_action({
            "Action": "Originate", "Channel": "Local/0301110000@from-pstn", "Context": "citizen-sim",
            "Exten": "talk", "Priority": "1", "CallerID": f"<{CITIZEN}>", "Async": "true", "Timeout": "20000",
        })
        await self.telephony.control.originate_callback(f"cb-{tag}", STAFF, CITIZEN)
        await until(lambda: len({c.call_id for c in self.tracker.live_calls()} - before) >= 2, 20,
                    "an inbound call and a callback live")
        return {c.call_id for c in self.tracker.live_calls()}


@pytest.fixture
async def rig(pbx: Any, tmp_path: Path) -> AsyncIterator[Rig]:
    pbx.reset_globals()
    now = datetime.now(TOKYO)
    # the call center is open for the test, whatever the wall clock says
    overrides = json.dumps([{"kind": "opening", "applies_to": "call_center", "reason": "試験",
                             "start": (now - timedelta(days=1)).isoformat(),
                             "end": (now + timedelta(days=1)).isoformat()}])
    settings = settings_for(
        tmp_path, CTI_AMI__ENABLED="true", CTI_AMI__HOST=pbx.ami_host, CTI_AMI__PORT=str(pbx.ami_port),
        CTI_AMI__USERNAME=pbx.ami_username, CTI_AMI__SECRET=pbx.ami_secret, CTI_AMI__PING_INTERVAL="1.0",
        CTI_AMI__RECONNECT_INITIAL="0.2", CTI_AMI__RECONNECT_MAX="1.0", CTI_AGI__ENABLED="true",
        CTI_AGI__PORT=str(pbx.agi_port), CTI_CALENDAR__OVERRIDES=overrides,
    )
    from rel_app import Clock

    class Wall(Clock):
        def __call__(self) -> datetime:
            return datetime.now(TOKYO)

    async with running_app(tmp_path, settings=settings, clock=Wall(), users=False) as env:
        r = Rig(env, pbx)
        await r.client.wait_connected(15)
        try:
            yield r
        finally:
            pbx.reset_globals()
            if r.client.connected:
                await r.hang_up_all()


async def one_fault(rig: Rig, how: str, tag: str) -> dict[str, Any]:
    live = await rig.put_calls_up(tag)
    matched_before = await rig.assert_matches_asterisk()
    assert matched_before >= 2
    reconnects = rig.client.status().reconnects
    seen = len(rig.domain)
    t_fault = time.monotonic()
    lost_at: list[float] = []

    async def watch() -> None:  # when cti noticed the link was gone
        while rig.client.connected:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        lost_at.append(time.monotonic())

    watcher = asyncio.create_task(watch())
    if how == "restart":
        await asyncio.to_thread(rig.pbx.restart)
    elif how == "kill9":
        await asyncio.to_thread(rig.pbx.kill9_and_start)
    else:  # the TCP link dies, Asterisk and its calls live on
        assert rig.client._protocol is not None
        rig.client._protocol.abort()
    t_back = time.monotonic()
    await until(lambda: rig.client.connected and rig.client.status().reconnects > reconnects, 30, "reconnected")
    t_up = time.monotonic()
    reconnect_s = t_up - t_back
    await asyncio.wait_for(watcher, 1)
    outage_s = t_up - lost_at[0]
    assert reconnect_s <= RECONNECT_LIMIT_S, f"{how}: reconnected {reconnect_s:.2f} s after Asterisk was back"
    await asyncio.sleep(1.5)  # anything that would be re-dialled would be by now
    matched_after = await rig.assert_matches_asterisk()
    ends = Counter(d.call_id for d in rig.domain[seen:] if d.type in END_TYPES)
    arrived_again = [d.call_id for d in rig.domain[seen:] if d.type == "call_arrived" and d.call_id in live]
    if how == "link_drop":
        assert matched_after == matched_before  # the calls survived, tracked once each
        assert not arrived_again
        assert not ends
    else:
        assert matched_after == 0  # Asterisk lost them with its process
        assert {c: ends[c] for c in live} == dict.fromkeys(live, 1), ends  # each ended exactly once
    callbacks = {k: n for k, n in rig.originates.items() if "CTI_CALLBACK_ID" in k}
    assert all(n == 1 for n in callbacks.values()), callbacks  # a callback Originate is never re-sent
    return {"how": how, "calls_live_at_fault": len(live), "reconnect_s": round(reconnect_s, 2),
            "link_down_s": round(outage_s, 2),
            "fault_s": round(t_back - t_fault, 2), "matched_after": matched_after}


async def test_pbx_restarts_kills_and_link_drops_lose_nothing_and_redial_nothing(rig: Rig) -> None:
    rounds: list[dict[str, Any]] = []
    plan = ["link_drop"] + ["restart"] * RESTARTS + ["kill9"] * KILLS
    for n, how in enumerate(plan):
        rounds.append(await one_fault(rig, how, f"rel{n}"))
        await rig.hang_up_all()  # clean slate for the next round
        await until(lambda: not rig.tracker.live_calls(), 15, "calls cleared")
    # after all that, a new call is tracked and matches Asterisk with calls up
    rig.pbx.set_global("SIM_OPERATORS", "noanswer")
    await rig.client.send_action({
        "Action": "Originate", "Channel": "Local/0301110000@from-pstn", "Context": "citizen-sim",
        "Exten": "talk", "Priority": "1", "CallerID": f"<{CITIZEN}>", "Async": "true", "Timeout": "20000",
    })
    await until(lambda: len(rig.tracker.live_calls()) == 1, 20, "new call tracked")
    assert await rig.assert_matches_asterisk() == 1
    originates_total = sum(rig.originates.values())
    callbacks = sum(1 for key in rig.originates if "CTI_CALLBACK_ID" in key)
    assert callbacks == len(plan)  # one callback per round, each sent exactly once
    figures("pbx_faults", rounds=rounds, restarts=RESTARTS, kills=KILLS, link_drops=1,
            reconnect_s_max=max(r["reconnect_s"] for r in rounds), originates_sent=originates_total,
            callback_originates_sent_twice=0, calls_lost=0)
