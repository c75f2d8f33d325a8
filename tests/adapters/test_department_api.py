"""Department screen API: the inbox is scoped to the user's department (区政情報課 sees all), another
department's record answers 404 (like a missing one) and is audited, and click-to-call goes through the real AMI client
(a real TCP AMI server) with the staff phone first, then the citizen; outcome and close are recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from ami_replay_server import AmiReplayServer
from supervisor_env import Env, make_env
from test_ami_link import ami_settings

from cti import keys
from cti.core.clock import TOKYO
from supervision.service import SUPERVISOR
from telephony.ami.link import AmiClient
from telephony.control import CallControl
from telephony.events import CallbackDialingCitizen, CallbackEnded
from telephony.plugin import Telephony
from telephony.presence import PresenceBoard
from telephony.settings import CallControlSettings

FRIDAY_EVENING = datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO)
MONDAY_10 = datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO)
MONDAY_NIGHT = datetime(2026, 12, 7, 19, 0, tzinfo=TOKYO)


async def take_callback(env: Env, call_id: str, department: str, phone: str = "09012345678") -> int:
    csrf = await env.login("op1")
    await env.app[keys.RECORDS].call_taken(call_id, "op1")  # the server, when op1 answers
    r = await env.client.post(f"/api/records/contacts/{call_id}/consent", json={"answer": "yes"}, headers=csrf)
    assert r.status == 201, await r.text()
    r = await env.client.post(f"/api/records/contacts/{call_id}/callbacks", headers=csrf, json={
        "name": "山田花子", "phone": phone, "question": "児童手当の申請", "department": department})
    assert r.status == 201, await r.text()
    return int((await r.json())["id"])


async def handed_over(env: Env, departments: list[str]) -> list[int]:
    env.clock.at = FRIDAY_EVENING
    ids = [await take_callback(env, f"call-{i}", d) for i, d in enumerate(departments)]
    env.clock.at = MONDAY_10
    await env.app[keys.RECORDS].hand_over_due()
    return ids


async def test_inbox_is_scoped_and_overdue_first(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_EVENING, store=store_target) as env:
        zeimu_a, koseki, zeimu_b = await handed_over(env, ["zeimu", "koseki", "zeimu"])
        env.clock.at = MONDAY_NIGHT  # past the 17:15 deadline: all overdue
        await env.login("tax1")
        r = await env.client.get("/api/department/inbox")
        assert r.status == 200
        body = await r.json()
        assert [i["id"] for i in body["items"]] == [zeimu_a, zeimu_b]
        assert body["summary"] == {"total": 2, "overdue": 2, "handed_over": 2, "in_progress": 0}
        await env.login("pi1")  # 区政情報課 sees every department
        body = await (await env.client.get("/api/department/inbox")).json()
        assert sorted(i["id"] for i in body["items"]) == sorted([zeimu_a, koseki, zeimu_b])
        assert body["sees_all"] is True
        await env.login("op1")
        assert (await env.client.get("/api/department/inbox")).status == 403
        assert (await env.client.get("/department/")).status == 403


async def test_other_departments_record_is_404_and_audited(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_EVENING, store=store_target) as env:
        [zeimu] = await handed_over(env, ["zeimu"])
        csrf = await env.login("reg1")
        r = await env.client.get(f"/api/records/callbacks/{zeimu}")
        assert r.status == 404  # the same answer as a record that does not exist
        r = await env.client.post(f"/api/department/callbacks/{zeimu}/call", json={"extension": "201"},
                                  headers=csrf)
        assert r.status == 404
        denied = await env.audit(actor="reg1", outcome="denied")
        assert [(d["action"], d["record_id"]) for d in denied] == [("read", str(zeimu)), ("read", str(zeimu))]
        assert await env.scalar("SELECT status FROM callbacks WHERE id = ?", (zeimu,)) == "handed_over"


async def test_call_without_telephony_changes_nothing(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_EVENING, store=store_target) as env:
        [cb] = await handed_over(env, ["zeimu"])
        csrf = await env.login("tax1")
        r = await env.client.post(f"/api/department/callbacks/{cb}/call", json={"extension": "202"}, headers=csrf)
        assert r.status == 503
        assert "発信できません" in (await r.json())["error"]["message"]
        assert await env.scalar("SELECT status FROM callbacks WHERE id = ?", (cb,)) == "handed_over"
        r = await env.client.post(f"/api/department/callbacks/{cb}/call", json={"extension": "x1"}, headers=csrf)
        assert r.status == 422 and (await r.json())["error"]["field"] == "extension"


@pytest.fixture
async def telephony() -> AsyncIterator[tuple[Telephony, AmiReplayServer]]:
    server = AmiReplayServer()
    await server.start()
    clock = lambda: MONDAY_10  # noqa: E731
    client = AmiClient(ami_settings(server.port), [], clock=clock, rnd=lambda: 1.0)
    control = CallControl(client, CallControlSettings(), queue="operators", clock=clock)
    client.add_sink(control)
    client.start()
    await client.wait_connected(5)
    yield Telephony(client, control, PresenceBoard(), tracker=None), server
    await client.stop()
    await server.close()


async def test_click_to_call_outcome_and_close(
    tmp_path: Path, store_target: str, telephony: tuple[Telephony, AmiReplayServer],
) -> None:
    tel, server = telephony
    async with make_env(tmp_path, FRIDAY_EVENING, store=store_target, telephony=tel) as env:
        [cb] = await handed_over(env, ["zeimu"])
        csrf = await env.login("tax1")
        r = await env.client.post(f"/api/department/callbacks/{cb}/call", json={"extension": "202"}, headers=csrf)
        assert r.status == 202, await r.text()
        body = await r.json()
        assert body["state"] == "queued"
        assert body["callback"]["status"] == "in_progress"
        [sent] = server.actions_named("originate")
        assert sent["Channel"] == "PJSIP/202"  # the staff phone rings first
        assert sent["Exten"] == "09012345678"  # then the citizen, from the outbound-callback context
        assert sent["Variable"] == f"CTI_CALLBACK_ID={cb}"
        assert sent["CallerID"] == "<0301110000>"  # the ward's number
        # a second click while the first is live is refused, nothing re-sent
        r = await env.client.post(f"/api/department/callbacks/{cb}/call", json={"extension": "202"}, headers=csrf)
        assert r.status == 409
        assert len(server.actions_named("originate")) == 1
        r = await env.client.get(f"/api/department/callbacks/{cb}/call")
        assert (await r.json())["state"] == "queued"
        # progress events of this callback reach the staff member who placed it (no number)
        sup = env.app[SUPERVISOR].feed
        sup.on_domain_events([
            CallbackDialingCitizen(call_id="x.1", at=MONDAY_10, callback_id=str(cb), number="09012345678"),
            CallbackEnded(call_id="x.1", at=MONDAY_10, callback_id=str(cb), outcome="completed", hung_up_by="staff",
                          cause=16, duration_s=60.0, talk_s=42.0, interface="PJSIP/202"),
        ])
        progress = [(kind, user, m) for kind, user, m in env.hub.sent if m["type"] == "callback_progress"]
        assert [(u, m["event"]) for _, u, m in progress] == [("tax1", "dialing_citizen"), ("tax1", "ended")]
        assert progress[1][2]["outcome"] == "completed" and progress[1][2]["talk_s"] == 42.0
        assert "09012345678" not in str(progress)
        # the outcome and the close, through records' API (audited there)
        version = body["callback"]["version"]
        r = await env.client.post(f"/api/records/callbacks/{cb}/attempts", json={"outcome": "reached",
                                                                                   "version": version}, headers=csrf)
        assert r.status == 200, await r.text()
        version = (await r.json())["version"]
        r = await env.client.post(f"/api/records/callbacks/{cb}/close", headers=csrf,
                                  json={"summary": "申請書の送付先を案内した", "version": version})
        assert r.status == 200
        assert (await r.json())["status"] == "closed"
        actions = [a["action"] for a in await env.audit(actor="tax1", outcome="ok")]
        assert {"read", "start", "call", "attempt_reached", "close"} <= set(actions)
        r = await env.client.post(f"/api/department/callbacks/{cb}/call", json={"extension": "202"}, headers=csrf)
        assert r.status == 409


async def test_a_failed_originate_leaves_the_record_handed_over(
    tmp_path: Path, store_target: str, telephony: tuple[Telephony, AmiReplayServer]
) -> None:
    tel, server = telephony
    server.errors["originate"] = "Originate failed"
    async with make_env(tmp_path, FRIDAY_EVENING, store=store_target, telephony=tel) as env:
        [cb] = await handed_over(env, ["zeimu"])
        csrf = await env.login("tax1")
        r = await env.client.post(f"/api/department/callbacks/{cb}/call", json={"extension": "202"}, headers=csrf)
        assert r.status == 502
        # nobody is calling the citizen: the record is not marked in progress
        assert await env.scalar("SELECT status FROM callbacks WHERE id = ?", (cb,)) == "handed_over"
        assert [a["outcome"] for a in await env.audit(actor="tax1", action="call")] == ["failed"]


async def test_a_malformed_version_is_422_not_500(
    tmp_path: Path, store_target: str, telephony: tuple[Telephony, AmiReplayServer],
) -> None:
    tel, server = telephony
    async with make_env(tmp_path, FRIDAY_EVENING, store=store_target, telephony=tel) as env:
        [cb] = await handed_over(env, ["zeimu"])
        csrf = await env.login("tax1")
        for version in ("abc", 1.5, True, -1, 10**30):
            r = await env.client.post(f"/api/department/callbacks/{cb}/call", headers=csrf,
                                      json={"extension": "202", "version": version})
            assert r.status == 422, version
            assert (await r.json())["error"]["field"] == "version"
        r = await env.client.post(f"/api/department/callbacks/{cb}/call", headers=csrf,
                                  data='{"extension": "202", "version": ' + "9" * 5000 + "}")
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"
        r = await env.client.post(f"/api/department/callbacks/{cb}/call", headers=csrf,
                                  json={"extension": "202", "version": 1})
        assert r.status == 409 and (await r.json())["error"]["code"] == "version_conflict"
        assert server.actions_named("originate") == []  # nothing was dialled for any of them


async def test_call_status_is_limited_to_the_department(
    tmp_path: Path, store_target: str, telephony: tuple[Telephony, AmiReplayServer]
) -> None:
    tel, _ = telephony
    async with make_env(tmp_path, FRIDAY_EVENING, store=store_target, telephony=tel) as env:
        [cb] = await handed_over(env, ["zeimu"])
        csrf = await env.login("tax1")
        assert (await env.client.post(f"/api/department/callbacks/{cb}/call", json={"extension": "202"},
                                      headers=csrf)).status == 202
        await env.login("reg1")  # another department: the same 404 as a record that does not exist
        r = await env.client.get(f"/api/department/callbacks/{cb}/call")
        missing = await env.client.get("/api/department/callbacks/999999/call")
        assert r.status == missing.status == 404
        assert (await r.json())["error"]["code"] == (await missing.json())["error"]["code"]
        assert [(a["action"], a["record_id"]) for a in await env.audit(actor="reg1", outcome="denied")] == [
            ("call_status", str(cb))]
