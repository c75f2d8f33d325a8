"""Access alerts are stored with a stable id: listed once however often the page reloads, still
there after cti restarts, hidden once a supervisor acknowledged them (audited). The monitor survives
extreme calendar overrides and a failing round, and logs the failure with its traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from supervisor_env import Env, make_env

from cti import keys
from cti.core.clock import TOKYO
from cti.core.logs import JsonLineFormatter
from cti.core.principal import Principal, Role
from records.audit import verify_chain
from records.keys import trail_of
from supervision import alert_store
from supervision.alert_monitor import AlertMonitor
from supervision.alerts import Alert
from supervision.keys import SUPERVISOR
from supervision.settings import AlertSettings

MONDAY_10 = datetime(2026, 12, 7, 10, 0, tzinfo=TOKYO)
ALERTS = AlertSettings(failed_logins=3, failed_login_window_seconds=60, poll_seconds=3600)


async def burst_of_failed_logins(env: Env) -> None:
    for user in ("sv1", "nobody", "tax1"):
        r = await env.client.post("/api/login", json={"user_id": user, "password": "wrong password!"})
        assert r.status == 401
    await env.app[SUPERVISOR].monitor.check_audit()


async def listed(env: Env, query: str = "") -> list[dict[str, object]]:
    resp = await env.client.get(f"/api/supervisor/alerts{query}")
    assert resp.status == 200, await resp.text()
    items: list[dict[str, object]] = (await resp.json())["items"]
    return items


async def test_an_alert_survives_a_restart_once_and_is_acknowledged(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, MONDAY_10, store=store_target, alerts=ALERTS) as env:
        await burst_of_failed_logins(env)
        await env.login("sv1")
        [alert] = await listed(env)
        assert alert["kind"] == "login_failures" and alert["acknowledged_at"] is None
        assert await listed(env) == [alert]  # a reload lists it once, with the same id
        [pushed, _admin] = env.hub.of_type("access_alert")
        assert pushed["alert"]["id"] == alert["id"]  # the page replaces it by id rather than adding it
    async with make_env(tmp_path, MONDAY_10, store=store_target, alerts=ALERTS) as env:  # cti restarted, same database
        csrf = await env.login("sv1")
        assert await listed(env) == [alert]
        url = f"/api/supervisor/alerts/{alert['id']}/ack"
        resp = await env.client.post(url)  # no CSRF token
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf_failed"
        op = await env.login("op1")
        assert (await env.client.post(url, headers=op)).status == 403
        csrf = await env.login("sv1")
        assert await listed(env) == [alert]
        resp = await env.client.post(url, headers=csrf)
        assert resp.status == 200, await resp.text()
        acked = await resp.json()
        assert acked["id"] == alert["id"] and acked["acknowledged_by"] == "sv1" and acked["acknowledged_at"]
        assert await listed(env) == []  # hidden
        assert [a["id"] for a in await listed(env, "?all=1")] == [alert["id"]]  # kept for the record
        [row] = await env.audit(action="acknowledge")
        assert (row["actor"], row["record_type"], row["record_id"]) == ("sv1", "access_alert", str(alert["id"]))
        assert verify_chain(await env.audit()) == []
        assert [m["id"] for m in env.hub.of_type("alert_acknowledged")] == [alert["id"]] * 2  # every screen
        resp = await env.client.post(url, headers=csrf)
        assert resp.status == 409 and (await resp.json())["error"]["code"] == "already_acknowledged"
        assert (await env.client.post("/api/supervisor/alerts/9999/ack", headers=csrf)).status == 404
        assert len(await env.audit(action="acknowledge")) == 1
    async with make_env(tmp_path, MONDAY_10, store=store_target, alerts=ALERTS) as env:
        await env.login("sv1")
        assert await listed(env) == []  # still acknowledged after another restart


async def test_a_later_burst_of_failed_logins_alerts_again(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, MONDAY_10, store=store_target, alerts=ALERTS) as env:
        await burst_of_failed_logins(env)
        env.clock.at = datetime(2026, 12, 7, 10, 20, tzinfo=TOKYO)  # 20 minutes later, within the cooldown
        await burst_of_failed_logins(env)
        await env.login("sv1")
        assert [a["kind"] for a in await listed(env)] == ["login_failures", "login_failures"]


async def test_an_extreme_stored_closure_does_not_stop_the_monitor(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, MONDAY_10, store=store_target) as env:
        await env.app[keys.DATABASE].write(lambda conn: conn.execute(
            "INSERT INTO calendar_overrides(kind, applies_to, start, end, reason, created_by, created_at)"
            " VALUES ('closure', 'both', '0001-01-01T00:00:00+00:00', '9999-12-31T23:59:59+00:00', '長期休業',"
            " 'sv1', '2026-12-07T09:00:00+09:00')"))
    async with make_env(tmp_path, MONDAY_10, store=store_target) as env:  # loaded at startup
        assert not env.app[keys.CALENDARS].office(MONDAY_10).open
        await env.login("op1")
        await env.app[keys.RECORDS].call_taken("x1", "op1")  # the server, on the answer
        await env.login("tax1")
        assert (await env.client.get("/api/department/inbox")).status == 200
        await env.app[SUPERVISOR].monitor.check_audit()
        await env.login("sv1")
        resp = await env.client.get("/api/calendar/emergency")
        assert resp.status == 200
        assert (await env.client.get("/api/calendar/overrides")).status == 200


async def test_a_failing_row_is_logged_with_its_traceback_and_the_monitor_goes_on(
        tmp_path: Path, store_target: str, caplog: pytest.LogCaptureFixture) -> None:
    async with make_env(tmp_path, MONDAY_10, store=store_target, alerts=ALERTS) as env:
        monitor = env.app[SUPERVISOR].monitor
        detector = monitor.detector
        real = detector.login_failed
        calls = 0

        def failing_once(event):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            if calls == 1:
                raise OverflowError("date value out of range 09012345678")
            return real(event)

        detector.login_failed = failing_once  # type: ignore[method-assign]
        for user in ("sv1", "nobody", "tax1", "reg1"):  # the first one fails, the next three make a burst
            r = await env.client.post("/api/login", json={"user_id": user, "password": "wrong password!"})
            assert r.status == 401
        with caplog.at_level(logging.ERROR, logger="supervision.alerts"):
            await monitor.check_audit()
        assert calls == 4
        await env.login("sv1")
        assert [a["kind"] for a in await listed(env)] == ["login_failures"]
        [record] = [r for r in caplog.records if r.getMessage() == "login_alert_failed"]
        line = json.loads(JsonLineFormatter().format(record))
        assert line["error"].startswith("OverflowError") and "09012345678" not in json.dumps(line)
        assert any("test_supervisor_alerts_ack.py" in f and "failing_once" in f for f in line["traceback"])
        assert any("alert_monitor.py" in f for f in line["traceback"])


async def test_a_failing_audit_row_and_a_failing_round_are_logged_and_the_monitor_goes_on(
        tmp_path: Path, store_target: str, caplog: pytest.LogCaptureFixture) -> None:
    night = datetime(2026, 12, 7, 19, 0, tzinfo=TOKYO)
    async with make_env(tmp_path, night, store=store_target) as env:
        monitor = env.app[SUPERVISOR].monitor
        real = monitor.detector.record_read
        calls = 0

        def failing_once(event):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ValueError("bad row 09012345678")
            return real(event)

        monitor.detector.record_read = failing_once  # type: ignore[method-assign]
        staff = Principal(user_id="tax1", role=Role.DEPARTMENT, department="zeimu", client_ip="127.0.0.1")
        trail = trail_of(env.app)
        for record_id in (1, 2):  # two off-hours reads in the audit trail
            await env.app[keys.DATABASE].write(
                lambda conn, r=record_id: trail.append(conn, staff, "read", "callback", r, at=night))  # type: ignore[misc]
        with caplog.at_level(logging.ERROR, logger="supervision.alerts"):
            assert await monitor.check_audit() == 2
        await env.login("sv1")
        assert [(a["kind"], a["user_id"]) for a in await listed(env)] == [("off_hours_read", "tax1")]
        [record] = [r for r in caplog.records if r.getMessage() == "alert_row_failed"]
        line = json.loads(JsonLineFormatter().format(record))
        assert line["error"].startswith("ValueError") and "09012345678" not in json.dumps(line)
        assert any("failing_once" in f for f in line["traceback"])

        # a whole round failing (the database read) is logged too, and the task's next round works
        rounds = 0
        real_round = monitor._check_audit

        async def failing_round() -> int:
            nonlocal rounds
            rounds += 1
            if rounds == 1:
                raise RuntimeError("the database is busy")
            return await real_round()

        monitor._check_audit = failing_round  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="supervision.alerts"):
            for wanted in (1, 2):
                monitor.wake.set()
                for _ in range(200):
                    if rounds >= wanted:
                        break
                    await asyncio.sleep(0.01)
        assert rounds >= 2
        [failed] = [r for r in caplog.records if r.getMessage() == "alert_monitor_failed"]
        assert any("failing_round" in f for f in json.loads(JsonLineFormatter().format(failed))["traceback"])


async def test_a_flush_cancelled_mid_write_does_not_store_the_alert_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with make_env(tmp_path, MONDAY_10) as env:
        live = env.app[SUPERVISOR].monitor  # its task could take the alert first: a monitor of our own
        monitor = AlertMonitor(live.detector, env.app[keys.DATABASE], env.clock, env.hub.sent.append)
        started = threading.Event()
        real_insert = alert_store.insert_alerts

        def slow_insert(conn, alerts):  # type: ignore[no-untyped-def]
            started.set()
            time.sleep(0.2)  # shutdown cancels the round meanwhile
            return real_insert(conn, alerts)

        monkeypatch.setattr(alert_store, "insert_alerts", slow_insert)
        monitor.pending.append(Alert("login_failures", MONDAY_10, "60秒間にログインの失敗が3回ありました", None, 3, 60))
        task = asyncio.create_task(monitor.flush())
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await monitor.flush()  # what the shutdown does next
        assert await env.scalar("SELECT count(*) FROM access_alerts") == 1
        assert monitor.pending == []
