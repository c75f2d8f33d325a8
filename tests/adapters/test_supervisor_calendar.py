"""Supervisor calendar control: the emergency switch and overrides change routing at once, are audited,
need a supervisor/admin from the operator room with the CSRF token, and a refused request changes nothing."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request
from supervisor_env import make_env

from cti import keys
from cti.config import Settings
from cti.core.clock import TOKYO
from cti.core.principal import Principal, Role
from records.audit import verify_chain
from records.keys import trail_of
from supervision import calendar_api
from supervision import calendar_store as store

FRIDAY_10 = datetime(2026, 11, 27, 10, 0, tzinfo=TOKYO)


async def test_emergency_close_flips_routing_at_once_and_is_audited(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_10, store=store_target) as env:
        cal = env.app[keys.CALENDARS]
        assert cal.call_center(FRIDAY_10).open
        csrf = await env.login("sv1")
        resp = await env.client.post("/api/calendar/emergency", json={"active": True, "reason": "台風のため"},
                                     headers=csrf)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["active"] is True and body["call_center"]["open"] is False
        status = cal.call_center(FRIDAY_10)
        assert not status.open and status.reason == "emergency"
        [row] = await env.audit(action="emergency_on")
        assert row["actor"] == "sv1" and row["record_type"] == "calendar" and row["outcome"] == "ok"
        resp = await env.client.post("/api/calendar/emergency", json={"active": False}, headers=csrf)
        assert resp.status == 200
        assert cal.call_center(FRIDAY_10).open
        assert len(await env.audit(action="emergency_off")) == 1
        assert verify_chain(await env.audit()) == []  # records' hash chain, unbroken


async def test_calendar_audit_rows_carry_the_configured_audit_key(tmp_path: Path) -> None:
    """Rows the supervisor's calendar control appends are keyed like every other row of the one trail,
    so `cti audit verify` with the key passes (and without the key it does not)."""
    key = "calendar-audit-key-0123456789"
    settings = Settings.model_validate({"records": {"audit_key": key}})
    async with make_env(tmp_path, FRIDAY_10, settings=settings) as env:
        csrf = await env.login("sv1")
        resp = await env.client.post("/api/calendar/emergency", json={"active": True, "reason": "台風のため"},
                                     headers=csrf)
        assert resp.status == 200, await resp.text()
        rows = await env.audit()
        assert [r["action"] for r in rows if r["record_type"] == "calendar"] == ["emergency_on"]
        assert verify_chain(rows, key=key.encode()) == []
        assert verify_chain(rows) != []  # the rows are keyed, not plain SHA-256


async def test_emergency_state_survives_a_restart(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_10, store=store_target) as env:
        csrf = await env.login("sv1")
        resp = await env.client.post("/api/calendar/emergency", json={"active": True, "reason": "停電"},
                                     headers=csrf)
        assert resp.status == 200
    async with make_env(tmp_path, FRIDAY_10, store=store_target) as env:
        assert env.app[keys.CALENDARS].emergency_reason == "停電"
        assert not env.app[keys.CALENDARS].call_center(FRIDAY_10).open


async def test_only_supervisors_and_admins_with_csrf(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_10, store=store_target) as env:
        cal = env.app[keys.CALENDARS]
        for user in ("op1", "tax1"):
            csrf = await env.login(user)
            resp = await env.client.post("/api/calendar/emergency", json={"active": True, "reason": "x"},
                                         headers=csrf)
            assert resp.status == 403, user
            resp = await env.client.get("/api/calendar/overrides")
            assert resp.status == 403, user
        await env.login("sv1")
        resp = await env.client.post("/api/calendar/emergency", json={"active": True, "reason": "x"})  # no CSRF
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "csrf_failed"
        assert cal.call_center(FRIDAY_10).open
        assert await env.audit(action="emergency_on") == []
        csrf = await env.login("ad1")
        resp = await env.client.post("/api/calendar/emergency", json={"active": True, "reason": "訓練"}, headers=csrf)
        assert resp.status == 200
        assert not cal.call_center(FRIDAY_10).open


async def test_outside_the_operator_room_is_refused(tmp_path: Path, store_target: str) -> None:
    settings = Settings(security={"operator_networks": ["10.99.0.0/16"]})
    async with make_env(tmp_path, FRIDAY_10, store=store_target, settings=settings) as env:
        csrf = await env.login("ad1")  # admins may log in from anywhere; the calendar is room-only
        resp = await env.client.post("/api/calendar/emergency", json={"active": True, "reason": "x"}, headers=csrf)
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "outside_operator_room"
        assert env.app[keys.CALENDARS].call_center(FRIDAY_10).open
        resp = await env.client.get("/supervisor/")
        assert resp.status == 403


async def test_overrides_add_and_remove_change_routing(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_10, store=store_target) as env:
        cal = env.app[keys.CALENDARS]
        csrf = await env.login("sv1")
        resp = await env.client.post("/api/calendar/overrides", headers=csrf, json={
            "kind": "closure", "applies_to": "call_center", "start": "2026-11-27T09:00:00+09:00",
            "end": "2026-11-27T12:00", "reason": "システム点検"})
        assert resp.status == 201, await resp.text()
        created = await resp.json()
        assert created["id"].startswith("rt-") and created["removable"] is True
        assert created["end"] == "2026-11-27T12:00:00+09:00"  # a local time is Tokyo time
        status = cal.call_center(FRIDAY_10)
        assert not status.open and status.reason == "closure" and "システム点検" in status.reason_text
        assert cal.office(FRIDAY_10).open  # applies to the call center only
        resp = await env.client.get("/api/calendar/overrides")
        assert [o["id"] for o in (await resp.json())["items"]] == [created["id"]]
        [row] = await env.audit(action="override_add")
        assert row["record_id"] == created["id"]
        resp = await env.client.delete(f"/api/calendar/overrides/{created['id']}", headers=csrf)
        assert resp.status == 200
        assert cal.call_center(FRIDAY_10).open
        assert len(await env.audit(action="override_remove")) == 1
        resp = await env.client.delete(f"/api/calendar/overrides/{created['id']}", headers=csrf)
        assert resp.status == 404


async def test_extra_opening_opens_a_closed_office(tmp_path: Path, store_target: str) -> None:
    sunday = datetime(2026, 11, 29, 10, 0, tzinfo=TOKYO)
    async with make_env(tmp_path, sunday, store=store_target) as env:
        cal = env.app[keys.CALENDARS]
        assert not cal.office(sunday).open
        csrf = await env.login("sv1")
        resp = await env.client.post("/api/calendar/overrides", headers=csrf, json={
            "kind": "opening", "applies_to": "office", "start": "2026-11-29T09:00:00+09:00",
            "end": "2026-11-29T17:00:00+09:00", "reason": "休日開庁（確定申告）"})
        assert resp.status == 201
        assert cal.office(sunday).open


async def test_bad_override_is_refused_and_changes_nothing(tmp_path: Path, store_target: str) -> None:
    settings = Settings(calendar={"overrides": [{"kind": "closure", "applies_to": "both", "reason": "庁舎停電",
                                                 "start": "2026-12-05T00:00:00+09:00",
                                                 "end": "2026-12-06T00:00:00+09:00"}]})
    async with make_env(tmp_path, FRIDAY_10, store=store_target, settings=settings) as env:
        cal = env.app[keys.CALENDARS]
        csrf = await env.login("sv1")
        before = (list(cal.overrides), len(await env.audit()))
        cases = [
            ({"kind": "holiday", "start": "2026-11-27T09:00", "end": "2026-11-27T10:00", "reason": "x"}, "kind"),
            ({"kind": "closure", "start": "2026-11-27T11:00", "end": "2026-11-27T10:00", "reason": "x"}, "end"),
            ({"kind": "closure", "start": "yesterday", "end": "2026-11-27T10:00", "reason": "x"}, "start"),
            ({"kind": "closure", "start": "2026-11-27T09:00", "end": "2026-11-27T10:00", "reason": " "}, "reason"),
            ({"kind": "closure", "start": "2026-11-27T09:00", "end": "2026-11-27T10:00", "reason": "x",
              "who": "me"}, "who"),
        ]
        for body, field in cases:
            resp = await env.client.post("/api/calendar/overrides", json=body, headers=csrf)
            assert resp.status == 422, body
            error = (await resp.json())["error"]
            assert error["field"] == field and error["message"]
        resp = await env.client.delete("/api/calendar/overrides/config-1", headers=csrf)
        assert resp.status == 409
        assert (list(cal.overrides), len(await env.audit())) == before
        assert await env.scalar("SELECT count(*) FROM calendar_overrides") == 0


async def test_delete_on_the_collection_with_an_id(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_10, store=store_target) as env:
        csrf = await env.login("sv1")
        resp = await env.client.post("/api/calendar/overrides", headers=csrf, json={
            "kind": "closure", "start": "2026-11-27T09:00", "end": "2026-11-27T12:00", "reason": "点検"})
        override_id = (await resp.json())["id"]
        assert not env.app[keys.CALENDARS].call_center(FRIDAY_10).open  # applies_to defaults to both
        resp = await env.client.delete("/api/calendar/overrides", headers=csrf)
        assert resp.status == 422
        resp = await env.client.delete(f"/api/calendar/overrides?id={override_id}", headers=csrf)
        assert resp.status == 200
        assert env.app[keys.CALENDARS].call_center(FRIDAY_10).open


# ---- a failed COMMIT changes nothing in memory -------------------------------------------------------

# A deferred foreign key is checked at COMMIT only: the unit itself succeeds, the COMMIT fails.
FAILING_COMMIT = """
CREATE TABLE commit_blocker_parent (id INTEGER PRIMARY KEY);
CREATE TABLE commit_blocker (parent INTEGER REFERENCES commit_blocker_parent(id) DEFERRABLE INITIALLY DEFERRED);
CREATE TRIGGER emergency_insert_fails_at_commit AFTER INSERT ON calendar_state
BEGIN INSERT INTO commit_blocker VALUES (42); END;
CREATE TRIGGER emergency_update_fails_at_commit AFTER UPDATE ON calendar_state
BEGIN INSERT INTO commit_blocker VALUES (42); END;
CREATE TRIGGER override_insert_fails_at_commit AFTER INSERT ON calendar_overrides
BEGIN INSERT INTO commit_blocker VALUES (42); END
"""

# The same on PostgreSQL (triggers are functions there; the deferred foreign key fails the COMMIT alike).
FAILING_COMMIT_PG = """
CREATE TABLE commit_blocker_parent (id BIGINT PRIMARY KEY);
CREATE TABLE commit_blocker (parent BIGINT REFERENCES commit_blocker_parent(id) DEFERRABLE INITIALLY DEFERRED);
CREATE FUNCTION block_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO commit_blocker VALUES (42); RETURN NULL; END $$;
CREATE TRIGGER emergency_fails_at_commit AFTER INSERT OR UPDATE ON calendar_state
FOR EACH ROW EXECUTE FUNCTION block_commit();
CREATE TRIGGER override_insert_fails_at_commit AFTER INSERT ON calendar_overrides
FOR EACH ROW EXECUTE FUNCTION block_commit()
"""


async def test_a_failed_commit_leaves_routing_and_the_calendar_unchanged(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_10, store=store_target) as env:
        cal = env.app[keys.CALENDARS]
        db = env.app[keys.DATABASE]
        blocker = FAILING_COMMIT_PG if store_target.startswith("postgresql://") else FAILING_COMMIT
        await db.maintenance(lambda conn: conn.executescript(blocker))
        csrf = await env.login("sv1")
        seen_during_unit: list[str | None] = []
        original_write = db.write

        async def spying_write(fn):  # type: ignore[no-untyped-def]
            def unit(conn):  # type: ignore[no-untyped-def]
                seen_during_unit.append(cal.emergency_reason)
                return fn(conn)
            return await original_write(unit)

        db.write = spying_write  # type: ignore[method-assign]
        resp = await env.client.post("/api/calendar/emergency", json={"active": True, "reason": "台風のため"},
                                     headers=csrf)
        assert resp.status == 503, await resp.text()
        assert (await resp.json())["error"]["code"] == "store_failed"
        assert seen_during_unit == [None]
        assert cal.emergency_reason is None and cal.call_center(FRIDAY_10).open  # calls still routed
        assert await env.audit(action="emergency_on") == []
        assert await env.scalar("SELECT count(*) FROM calendar_state") == 0
        resp = await env.client.get("/api/calendar/emergency")
        assert (await resp.json())["active"] is False
        resp = await env.client.post("/api/calendar/overrides", headers=csrf, json={
            "kind": "closure", "start": "2026-11-27T09:00", "end": "2026-11-27T12:00", "reason": "点検"})
        assert resp.status == 503
        assert cal.overrides == [] and cal.call_center(FRIDAY_10).open
        assert await env.audit(action="override_add") == []
        db.write = original_write  # type: ignore[method-assign]
        unblock = ("DROP TRIGGER emergency_fails_at_commit ON calendar_state"
                   if store_target.startswith("postgresql://") else
                   "DROP TRIGGER emergency_insert_fails_at_commit; DROP TRIGGER emergency_update_fails_at_commit;")
        await db.maintenance(lambda conn: conn.executescript(unblock))
        resp = await env.client.post("/api/calendar/emergency", json={"active": True, "reason": "台風のため"},
                                     headers=csrf)
        assert resp.status == 200
        assert cal.emergency_reason == "台風のため"


async def test_overrides_outside_2000_to_2100_are_refused(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, FRIDAY_10, store=store_target) as env:
        cal = env.app[keys.CALENDARS]
        csrf = await env.login("sv1")
        for start, end, field in [("0001-01-01T00:00", "9999-12-31T23:59", "start"),
                                  ("2026-11-27T09:00", "9999-12-31T23:59:59+00:00", "end"),
                                  ("1999-12-31T23:00", "2026-11-27T12:00", "start")]:
            resp = await env.client.post("/api/calendar/overrides", headers=csrf, json={
                "kind": "closure", "start": start, "end": end, "reason": "長期休業"})
            assert resp.status == 422, (start, end)
            error = (await resp.json())["error"]
            assert error["code"] == "out_of_range" and error["field"] == field
            assert "2000年から2100年" in error["message"]
        assert cal.overrides == []
        assert await env.scalar("SELECT count(*) FROM calendar_overrides") == 0


async def test_a_request_cancelled_during_its_write_still_applies_what_was_stored(tmp_path: Path) -> None:
    async with make_env(tmp_path, FRIDAY_10) as env:
        cal = env.app[keys.CALENDARS]
        request = make_mocked_request("POST", "/api/calendar/emergency", app=env.app)
        who = Principal(user_id="sv1", role=Role.SUPERVISOR, department=None, client_ip="127.0.0.1")
        unit_started = threading.Event()
        trail = trail_of(request.app)

        def slow_unit(conn: sqlite3.Connection) -> None:
            unit_started.set()
            time.sleep(0.2)  # the client leaves meanwhile
            store.save_emergency(conn, trail, who, "停電", False, FRIDAY_10)

        task = asyncio.create_task(calendar_api._store_then_apply(
            request, "emergency", slow_unit, lambda _: cal.set_emergency("停電")))
        await asyncio.to_thread(unit_started.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if cal.emergency_reason is not None:
                break
            await asyncio.sleep(0.02)
        assert cal.emergency_reason == "停電"  # stored, so routing follows
        assert await env.scalar("SELECT value FROM calendar_state WHERE key = 'emergency_reason'") == "停電"
