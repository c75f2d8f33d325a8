"""Access alerts fed from the audit trail and failed logins; the live wall fed by domain events and
presence, pushed to supervisors through the hub. No personal data in either."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

from supervisor_env import Env, make_env

from cti import keys
from cti.core.clock import TOKYO
from screenpop.keys import SEATS
from supervision.alerts import Alert
from supervision.event_feed import EventFeed
from supervision.service import SUPERVISOR, _flush_on_shutdown
from supervision.settings import AlertSettings
from supervision.wall_push import count_overdue
from telephony.events import CallArrived, CallEnded, CallQueued, OperatorConnected, OperatorRinging
from telephony.presence import DeviceStatus, MemberPresence

FRIDAY_EVENING = datetime(2026, 12, 4, 19, 0, tzinfo=TOKYO)
MONDAY_10 = datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO)
MONDAY_NIGHT = datetime(2026, 12, 7, 19, 0, tzinfo=TOKYO)
CALLER = "0312345678"


async def callbacks(env: Env, count: int) -> list[int]:
    env.clock.at = FRIDAY_EVENING
    csrf = await env.login("op1")
    ids = []
    for n in range(count):
        await env.app[keys.RECORDS].call_taken(f"k{n}", "op1")  # the server, when op1 answers
        await env.client.post(f"/api/records/contacts/k{n}/consent", json={"answer": "yes"}, headers=csrf)
        r = await env.client.post(f"/api/records/contacts/k{n}/callbacks", headers=csrf, json={
            "name": "山田花子", "phone": "09012345678", "question": "国民健康保険の手続き", "department": "zeimu"})
        assert r.status == 201
        ids.append(int((await r.json())["id"]))
    env.clock.at = MONDAY_10
    await env.app[keys.RECORDS].hand_over_due()
    return ids


async def one_callback(env: Env) -> int:
    return (await callbacks(env, 1))[0]


async def check_audit(env: Env) -> list[tuple[str, str | None, int]]:
    """One round of the alert monitor; the stored, not yet acknowledged alerts (kind, account, count)."""
    await env.app[SUPERVISOR].monitor.check_audit()
    rows = await env.app[keys.DATABASE].read(
        lambda conn: conn.execute("SELECT kind, user_id, count FROM access_alerts WHERE acknowledged_at IS NULL"
                                  " ORDER BY id").fetchall())
    return [(r[0], r[1], r[2]) for r in rows]


async def test_a_scripted_burst_of_reads_raises_one_alert(tmp_path: Path, store_target: str) -> None:
    alerts = AlertSettings(reads_per_hour=3, poll_seconds=3600)
    async with make_env(tmp_path, FRIDAY_EVENING, store=store_target, alerts=alerts) as env:
        ids = await callbacks(env, 5)
        assert await check_audit(env) == []  # history so far: operator work, no reads
        await env.login("tax1")
        for cb in ids[:3]:
            for _ in range(4):  # re-reading the same records counts each once
                assert (await env.client.get(f"/api/records/callbacks/{cb}")).status == 200
        assert await check_audit(env) == []  # 3 distinct records: at the threshold, not above
        assert (await env.client.get("/api/department/inbox")).status == 200  # lists all five
        assert await check_audit(env) == [("bulk_reads", "tax1", 5)]
        for cb in ids:
            assert (await env.client.get(f"/api/records/callbacks/{cb}")).status == 200
        assert await check_audit(env) == [("bulk_reads", "tax1", 5)]  # one alert per burst (cooldown)
        pushed = env.hub.of_type("access_alert")
        assert [p["alert"]["kind"] for p in pushed] == ["bulk_reads", "bulk_reads"]  # supervisors and admins
        assert pushed[0]["alert"]["id"] == pushed[1]["alert"]["id"]  # the stored alert's id
        await env.login("sv1")
        body = await (await env.client.get("/api/supervisor/alerts")).json()
        assert [a["kind"] for a in body["items"]] == ["bulk_reads"]
        text = json.dumps(body, ensure_ascii=False)
        for personal in ("山田", "09012345678", "国民健康保険"):
            assert personal not in text
        await env.login("tax1")
        assert (await env.client.get("/api/supervisor/alerts")).status == 403


async def test_department_reads_after_hours(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_EVENING, store=store_target) as env:
        cb = await one_callback(env)
        await check_audit(env)
        await env.login("tax1")
        assert (await env.client.get(f"/api/records/callbacks/{cb}")).status == 200  # office open
        assert await check_audit(env) == []
        env.clock.at = MONDAY_NIGHT
        await env.login("tax1")
        assert (await env.client.get(f"/api/records/callbacks/{cb}")).status == 200
        assert [(k, u) for k, u, _ in await check_audit(env)] == [("off_hours_read", "tax1")]


async def test_a_burst_of_failed_logins(tmp_path: Path, store_target: str) -> None:
    alerts = AlertSettings(failed_logins=3, failed_login_window_seconds=60, poll_seconds=3600)
    async with make_env(tmp_path, MONDAY_10, store=store_target, alerts=alerts) as env:
        for user in ("sv1", "nobody", "tax1"):
            r = await env.client.post("/api/login", json={"user_id": user, "password": "wrong password!"})
            assert r.status == 401
        assert await check_audit(env) == [("login_failures", None, 3)]
        assert await env.scalar("SELECT count(*) FROM access_alerts") == 1


def presence(interface: str, *, paused: bool = False, reason: str = "", logged_in: bool = True) -> MemberPresence:
    return MemberPresence(queue="operators", interface=interface, name="x", logged_in=logged_in, paused=paused,
                          pause_reason=reason, status=DeviceStatus.NOT_INUSE, ringing=False, calls_taken=0)


async def test_wall_follows_calls_and_presence_and_is_pushed(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, MONDAY_10, store=store_target) as env:
        sup = env.app[SUPERVISOR].feed
        seats = env.app[SEATS]
        seats.take("op2", "PJSIP/op102")
        sup.on_presence([presence("PJSIP/op101"), presence("PJSIP/op102", paused=True, reason="lunch"),
                         presence("Local/103@operator-phones")])
        seats.take("op1", "PJSIP/op101")  # sits down after the queue reported the seat: still one row
        sup.on_domain_events([
            CallArrived(call_id="w1", at=MONDAY_10, caller_number=CALLER, caller_name="ヤマダ", dialled_number=None),
            CallQueued(call_id="w1", at=MONDAY_10, queue="operators", position=1, category="koseki"),
            CallQueued(call_id="w2", at=MONDAY_10, queue="operators", position=2, category=None),
            OperatorRinging(call_id="w1", at=MONDAY_10, interface="PJSIP/op101", member_name=None,
                            queue="operators", caller_number=CALLER, caller_name="ヤマダ"),
        ])
        env.clock.at = datetime(2026, 12, 7, 10, 0, 30, tzinfo=TOKYO)
        await env.login("sv1")
        wall = await (await env.client.get("/api/supervisor/wall")).json()
        assert wall["waiting"] == 2 and wall["longest_wait_seconds"] == 30
        states = {o["operator_id"]: (o["seat"], o["state"], o["pause_reason"]) for o in wall["operators"]}
        assert states == {"op1": ("PJSIP/op101", "ringing", None), "op2": ("PJSIP/op102", "paused", "lunch")}
        assert wall["unseated_seats"] == 1  # the queue's dial string is no extra operator
        assert "Local/103@operator-phones" not in json.dumps(wall)
        assert wall["operator_counts"]["ringing"] == 1 and wall["operator_counts"]["offline"] == 0
        assert [(w["call_id"], w["category_label"]) for w in wall["waiting_calls"]] == [
            ("w1", "戸籍・住民票"), ("w2", "未分類")]
        sup.on_domain_events([
            OperatorConnected(call_id="w1", at=env.clock.at, interface="PJSIP/op101", member_name=None,
                              queue="operators", hold_time=30),
        ])
        wall = await (await env.client.get("/api/supervisor/wall")).json()
        assert wall["waiting"] == 1 and wall["in_progress"] == 1
        assert wall["calls"] == [{"call_id": "w1", "operator_id": "op1", "talk_seconds": 0, "on_hold": False,
                                  "reference": None}]
        sup.on_domain_events([CallEnded(call_id="w1", at=env.clock.at, reason="answered", hung_up_by="citizen",
                                        cause=16, cause_text=None, last_state="Up", duration_s=40.0, talk_s=10.0,
                                        interface="PJSIP/op101")])
        for _ in range(300):  # pushed by the owned wall task (every second when it changed)
            pushed = env.hub.of_type("wall")
            if pushed and pushed[-1]["state"]["in_progress"] == 0 and pushed[-1]["state"]["waiting"] == 1:
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError(f"the wall was not pushed: {env.hub.of_type('wall')[-1:]}")
        roles = {who for kind, who, m in env.hub.sent if m["type"] == "wall"}
        assert roles == {"supervisor", "admin"}
        text = json.dumps(env.hub.of_type("wall"), ensure_ascii=False)
        assert CALLER not in text and "ヤマダ" not in text
        for user in ("op1", "tax1"):
            await env.login(user)
            assert (await env.client.get("/api/supervisor/wall")).status == 403


async def test_overdue_callbacks_on_the_wall(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_EVENING, store=store_target) as env:
        await one_callback(env)
        env.clock.at = MONDAY_NIGHT
        sup = env.app[SUPERVISOR].feed
        db = env.app[keys.DATABASE]
        assert await count_overdue(db, MONDAY_NIGHT) == 1
        assert await count_overdue(db, MONDAY_10) == 0
        sup.wall.set_overdue_callbacks(await count_overdue(db, MONDAY_NIGHT))
        assert sup.wall.snapshot(MONDAY_NIGHT)["overdue_callbacks"] == 1


async def test_call_log_events_and_alerts_left_at_shutdown_are_written(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, MONDAY_10, store=store_target) as env:
        sup = env.app[SUPERVISOR]
        idle = EventFeed(clock=env.clock)  # a feed whose writer task never ran (as after the cancel)
        idle.on_domain_events([
            CallArrived(call_id="s1", at=MONDAY_10, caller_number=CALLER, caller_name=None, dialled_number=None),
            CallQueued(call_id="s1", at=MONDAY_10, queue="operators", position=1, category="zei"),
        ])
        sup.monitor.pending.append(Alert("login_failures", MONDAY_10, "60秒間にログインの失敗が3回ありました",
                                         None, 3, 60))
        await _flush_on_shutdown(env.app[keys.DATABASE], idle, sup.monitor)
        assert idle.call_log.empty() and sup.monitor.pending == []
        assert await env.scalar("SELECT category FROM call_log WHERE call_id = 's1'") == "zei"
        assert await env.scalar("SELECT count(*) FROM access_alerts") == 1
