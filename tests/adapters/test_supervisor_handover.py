"""A same-day office closure holds the handover of records until the office really opens: the
department must not get (and then read, off-hours) records during the closure."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from supervisor_env import Env, make_env

from cti import keys
from cti.core.clock import TOKYO

WEDNESDAY = (2026, 12, 2)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(*WEDNESDAY, hour, minute, tzinfo=TOKYO)


CLOSURE = {"kind": "closure", "applies_to": "office", "start": "2026-12-02T08:00", "end": "2026-12-02T12:00",
           "reason": "庁舎の停電"}


async def add_closure(env: Env) -> None:
    csrf = await env.login("sv1")
    resp = await env.client.post("/api/calendar/overrides", json=CLOSURE, headers=csrf)
    assert resp.status == 201, await resp.text()


async def collect(env: Env, call_id: str) -> int:
    csrf = await env.login("op1")
    await env.app[keys.RECORDS].call_taken(call_id, "op1")  # the server, on the answer
    await env.client.post(f"/api/records/contacts/{call_id}/consent", json={"answer": "yes"}, headers=csrf)
    resp = await env.client.post(f"/api/records/contacts/{call_id}/callbacks", headers=csrf, json={
        "name": "山田花子", "phone": "09012345678", "question": "住民票の写し", "department": "zeimu"})
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["id"])


async def handed_over_at(env: Env, when: datetime) -> list[int]:
    env.clock.at = when
    return await env.app[keys.RECORDS].hand_over_due(when)


async def test_a_record_taken_before_a_known_closure_is_handed_over_when_it_ends(
    tmp_path: Path, store_target: str,
) -> None:
    async with make_env(tmp_path, at(6), store=store_target) as env:
        await add_closure(env)
        env.clock.at = at(7)
        cb = await collect(env, "c-early")
        assert await env.scalar("SELECT handover_at FROM callbacks WHERE id = ?", (cb,)) == at(12).isoformat(
            timespec="microseconds")
        assert await handed_over_at(env, at(8, 30)) == []
        assert await handed_over_at(env, at(11, 59)) == []
        assert await handed_over_at(env, at(12)) == [cb]


async def test_a_closure_added_after_the_record_was_taken_holds_its_handover(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, at(7), store=store_target) as env:
        cb = await collect(env, "c-before")  # handover planned for 08:30
        env.clock.at = at(7, 30)
        await add_closure(env)
        assert await handed_over_at(env, at(8, 30)) == []
        assert await handed_over_at(env, at(10)) == []
        assert await handed_over_at(env, at(12)) == [cb]


async def test_after_a_restart_the_stored_closure_holds_the_handover(tmp_path: Path, store_target: str) -> None:
    async with make_env(tmp_path, at(6), store=store_target) as env:
        await add_closure(env)
    async with make_env(tmp_path, at(7), store=store_target) as env:  # restarted: the closure comes from the database
        assert [o.reason for o in env.app[keys.CALENDARS].overrides] == ["庁舎の停電"]
        cb = await collect(env, "c-restart")
        assert await handed_over_at(env, at(8, 30)) == []
        assert await handed_over_at(env, at(12)) == [cb]
